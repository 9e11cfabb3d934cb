//! Pull requests (`CONSUMER.MSG.NEXT`) and acknowledgements (`$JS.ACK.`),
//! on the stream leader the routing brought them to.

use bytes::Bytes;
use jetraft_gateway::Outbound;
use jetraft_stream::consumer::AckOp;
use jetraft_stream::{StreamCommand, StreamReply};
use jetraft_types::consumer::{
    AckKind, AckPolicy, AckSubject, NextRequest, PriorityPolicy, go_duration,
};

use super::priority::{self, Prio};
use super::status::{self, status_block};
use super::{Consumers, Key, Timer, Waiting, push_timer};
use crate::cluster::Cluster;
use crate::wire::ApiRequest;

fn status_reply(status: &str) -> Vec<Outbound> {
    vec![Outbound {
        headers: Some(status_block(status, &[])),
        payload: Bytes::new(),
    }]
}

/// The no-responders answer nats-server's core layer gives a request to a
/// consumer (or stream) that does not exist: nobody subscribes there.
fn no_responders(subject: &str) -> Vec<Outbound> {
    vec![Outbound {
        headers: Some(status_block(
            "503",
            &[("Nats-Subject", subject.to_string())],
        )),
        payload: Bytes::new(),
    }]
}

/// `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`: queue the request and
/// serve it as messages come. Refusals are answered at once; messages and
/// the final status go to the request's reply subject.
pub(crate) async fn pull(
    cluster: &Cluster,
    stream: &str,
    name: &str,
    req: ApiRequest,
) -> Vec<Outbound> {
    let Some(reply) = req.reply.clone() else {
        return Vec::new();
    };
    let Ok((_, g)) = cluster.led_group(&req.account, stream) else {
        return no_responders(&req.subject);
    };
    let Some(config) = g.sm.consumer_with(name, |c| c.config.clone()) else {
        return no_responders(&req.subject);
    };
    let cfg = &config;
    if cfg.is_push() {
        return status_reply(status::PUSH_BASED);
    }
    let r = match NextRequest::parse(&req.payload) {
        Ok(r) => r,
        Err(e) => return status_reply(&format!("400 Bad Request - {e}")),
    };
    if cfg.max_request_batch > 0 && r.batch > cfg.max_request_batch {
        return status_reply(&format!(
            "409 Exceeded MaxRequestBatch of {}",
            cfg.max_request_batch
        ));
    }
    if cfg.max_request_max_bytes > 0 && r.max_bytes > cfg.max_request_max_bytes {
        return status_reply(&format!(
            "409 Exceeded MaxRequestMaxBytes of {}",
            cfg.max_request_max_bytes
        ));
    }
    if cfg.max_request_expires > 0 && r.expires > cfg.max_request_expires {
        return status_reply(&format!(
            "409 Exceeded MaxRequestExpires of {}",
            go_duration(cfg.max_request_expires)
        ));
    }
    let prio = Prio::of(&r);
    if let Some(refused) = priority::refusal(cfg, prio.as_ref()) {
        return status_reply(refused);
    }
    // A consumer's max_expires bounds a request without one (silently).
    let expires = match (r.expires, cfg.max_request_expires) {
        (0, max) => max,
        (e, _) => e,
    };
    let key: Key = (g.id, name.to_string());
    let me = cluster.consumers_arc();
    let now = cluster.now_ns();
    let refused = {
        let mut st = me.lock();
        if let Err(e) = me.ensure_led(&mut st, &key, &req.account, stream) {
            tracing::debug!(error = %e, "pull request for a consumer not loaded");
            return no_responders(&req.subject);
        }
        st.next_id += 1;
        let id = st.next_id;
        let max_waiting = cfg.max_waiting.max(1) as usize;
        let Some(led) = st.led.get_mut(&key) else {
            return no_responders(&req.subject);
        };
        if let Err(refused) = priority::touch_pin(led, prio.as_ref(), now) {
            return status_reply(refused);
        }
        if led.waiting.len() >= max_waiting {
            true
        } else {
            let prioritized = led.config.priority_policy == PriorityPolicy::Prioritized;
            let w = Waiting {
                id,
                reply,
                left: r.batch.max(1) as u64,
                bytes_left: (r.max_bytes > 0).then_some(r.max_bytes as u64),
                delivered: 0,
                // With an expiry a no-wait request waits for a first
                // message (nats-server's one-shot).
                no_wait: r.no_wait && r.expires == 0,
                one_shot: r.no_wait && r.expires > 0,
                heartbeat_ns: r.idle_heartbeat,
                prio,
            };
            priority::enqueue(&mut led.waiting, w, prioritized);
            if expires > 0 {
                push_timer(
                    &mut st,
                    now + expires,
                    Timer::Expire {
                        key: key.clone(),
                        id,
                    },
                );
            }
            if r.idle_heartbeat > 0 {
                push_timer(
                    &mut st,
                    now + r.idle_heartbeat,
                    Timer::Heartbeat {
                        key: key.clone(),
                        id,
                    },
                );
            }
            false
        }
    };
    if refused {
        return status_reply(status::EXCEEDED_MAX_WAITING);
    }
    me.wake.notify_one();
    me.pump(&key);
    Vec::new()
}

/// A publish to a `$JS.ACK.` subject. `+ACK`, `+NXT` and `+TERM` are
/// committed before an ack with a reply subject is answered (the answer is
/// a durable promise); `-NAK` and `+WPI` change only this leader's timers.
pub(crate) async fn ack(
    cluster: &Cluster,
    stream: &str,
    name: &str,
    req: ApiRequest,
) -> Vec<Outbound> {
    let empty = || {
        vec![Outbound {
            headers: None,
            payload: Bytes::new(),
        }]
    };
    let (Some(ack), Some(kind)) = (
        AckSubject::parse(&req.subject),
        AckKind::parse(&req.payload),
    ) else {
        return empty();
    };
    let Ok((_, g)) = cluster.led_group(&req.account, stream) else {
        return Vec::new();
    };
    let key: Key = (g.id, name.to_string());
    let me = cluster.consumers_arc();
    let op = match &kind {
        AckKind::Ack | AckKind::Next(_) => AckOp::Ack,
        AckKind::Term(_) => AckOp::Term,
        AckKind::Nak { delay_ns } => {
            me.nak(
                &key,
                &req.account,
                stream,
                &ack,
                *delay_ns,
                cluster.now_ns(),
            );
            return empty();
        }
        AckKind::Progress => {
            me.progress(&key, ack.stream_seq, cluster.now_ns());
            return empty();
        }
    };
    // `sample_freq`: the delivery's time, for the ack metric.
    let sampled = (op == AckOp::Ack)
        .then(|| {
            g.sm.consumer_with(name, |c| {
                let explicit = c.config.ack_policy == AckPolicy::Explicit;
                let pct = c.config.sample_percent();
                let pending = c.pending.get(&ack.stream_seq);
                pending
                    .filter(|_| explicit && status::sampled(pct, ack.stream_seq))
                    .map(|p| p.ts_ns)
            })
            .flatten()
        })
        .flatten();
    let cmd = StreamCommand::Ack {
        consumer: name.to_string(),
        acks: vec![(ack.stream_seq, ack.delivered, op)],
    };
    let confirmed = match cluster.propose_stream(&g, cmd).await {
        Ok(StreamReply::Acked(c)) => c.first().copied().unwrap_or(false),
        Ok(other) => {
            tracing::debug!(?other, "ack not applied");
            return Vec::new();
        }
        // Not committed: no promise is made (the message is delivered
        // again after its ack wait).
        Err(_) => return Vec::new(),
    };
    if let AckKind::Term(reason) = &kind {
        me.terminated(&key, &req.account, stream, &ack, reason, cluster.now_ns());
    }
    if let Some(delivered_ns) = sampled.filter(|_| confirmed) {
        let now = cluster.now_ns();
        me.send(vec![status::ack_metric(
            &req.account,
            stream,
            name,
            &ack,
            now - delivered_ns,
            now,
        )]);
    }
    // Room under max_ack_pending: waiting pulls may go on.
    me.stored(g.id);
    if let AckKind::Next(body) = kind {
        let next = ApiRequest {
            payload: Bytes::from(body.unwrap_or_default()),
            subject: format!("{}{stream}.{name}", super::CONSUMER_NEXT),
            ..req
        };
        return pull(cluster, stream, name, next).await;
    }
    // A superseded delivery's ack is not confirmed: the newer copy is out.
    if confirmed { empty() } else { Vec::new() }
}

impl Consumers {
    fn nak(
        &self,
        key: &Key,
        account: &str,
        stream: &str,
        ack: &AckSubject,
        delay_ns: Option<i64>,
        now: i64,
    ) {
        let sends = {
            let mut st = self.lock();
            if self.ensure_led(&mut st, key, account, stream).is_err() {
                return;
            }
            let Some(led) = st.led.get_mut(key) else {
                return;
            };
            let advisory = status::naked(led, ack, now);
            match delay_ns.filter(|d| *d > 0) {
                Some(d) => push_timer(
                    &mut st,
                    now + d,
                    Timer::Nak {
                        key: key.clone(),
                        sseq: ack.stream_seq,
                    },
                ),
                None => {
                    led.make_due(ack.stream_seq);
                }
            }
            vec![advisory]
        };
        self.wake.notify_one();
        self.send(sends);
        self.pump(key);
    }

    fn progress(&self, key: &Key, sseq: u64, now: i64) {
        let mut st = self.lock();
        if let Some(led) = st.led.get_mut(key) {
            let until = now.saturating_add(led.config.ack_wait);
            led.progress.insert(sseq, until);
        }
    }

    fn terminated(
        &self,
        key: &Key,
        account: &str,
        stream: &str,
        ack: &AckSubject,
        reason: &str,
        now: i64,
    ) {
        let sends = {
            let mut st = self.lock();
            if self.ensure_led(&mut st, key, account, stream).is_err() {
                return;
            }
            st.led
                .get(key)
                .map(|led| vec![status::terminated(led, ack, reason, now)])
                .unwrap_or_default()
        };
        self.send(sends);
    }
}

/// A publish to `$JS.FC.<stream>.<consumer>.<n>`: the push client took
/// what was sent so far.
pub(crate) fn flow_control(cluster: &Cluster, stream: &str, name: &str, req: &ApiRequest) {
    if let Ok((_, g)) = cluster.led_group(&req.account, stream) {
        cluster
            .consumers()
            .flow_control_answered(g.id, name, &req.subject);
    }
}
