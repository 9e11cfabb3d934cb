//! Push consumers: deliveries to `deliver_subject` while someone listens
//! there (in the whole cluster), flow control (nats-server's window: a
//! `100 FlowControl Request`, answered on `$JS.FC.`, goes out once more
//! than half the window is sent and unanswered; sending stops when all of
//! it is; each answer frees what it covered and doubles the window), and
//! idle heartbeats. Ordered consumers (KV watch, object gets, the
//! clients' ordered API) are push consumers of this kind.

use jetraft_types::consumer::ConsumerConfig;

use super::status::{self, Out};
use super::{Consumers, Key, Led, Timer, push_timer};
use crate::cluster::Cluster;

/// Where flow-control answers go: `$JS.FC.<stream>.<consumer>.<n>`.
pub(crate) const FC_PREFIX: &str = "$JS.FC.";
/// Messages one delivery proposal of a push consumer takes.
pub(crate) const PUSH_BATCH: u32 = 256;
/// The flow-control window at first: bytes sent and not yet covered by an
/// answered request (nats-server: its 32 MiB limit / 16).
const FC_WINDOW_START_BYTES: u64 = 2 * 1024 * 1024;
/// What the window doubles up to, one answer at a time.
const FC_WINDOW_MAX_BYTES: u64 = 32 * 1024 * 1024;

/// The run-time state of a push consumer.
pub(crate) struct Push {
    pub(crate) subject: String,
    flow_control: bool,
    pub(crate) heartbeat_ns: i64,
    /// The flow-control request not answered yet (its reply subject).
    pub(crate) fc_waiting: Option<String>,
    /// The bytes that request covers (sent before it).
    fc_covers: u64,
    fc_sent: u64,
    /// Sent and not covered by an answered request yet.
    outstanding: u64,
    window: u64,
    /// Someone listened on the deliver subject at the last look.
    pub(crate) bound: bool,
    /// The next message alone is larger than the window: it goes by itself.
    oversize: bool,
}

impl Push {
    pub(crate) fn of(cfg: &ConsumerConfig) -> Option<Self> {
        cfg.is_push().then(|| Self {
            subject: cfg.deliver_subject.clone(),
            flow_control: cfg.flow_control,
            heartbeat_ns: cfg.heartbeat,
            fc_waiting: None,
            fc_covers: 0,
            fc_sent: 0,
            outstanding: 0,
            window: FC_WINDOW_START_BYTES,
            bound: false,
            oversize: false,
        })
    }

    /// Whether flow control lets more go out now.
    pub(crate) fn may_send(&self) -> bool {
        !self.flow_control || self.outstanding < self.window
    }

    /// The next delivery proposal's batch and byte limit (0: none): up to
    /// just past half the window (where the request is due) while none is
    /// outstanding, else what is left of it; a message larger than that
    /// goes alone.
    pub(crate) fn limits(&self) -> (u32, u64) {
        let upto = match self.fc_waiting {
            None => self.window / 2 + 1,
            Some(_) => self.window,
        };
        match (self.flow_control, self.oversize) {
            (true, false) => (PUSH_BATCH, upto.saturating_sub(self.outstanding).max(1)),
            (true, true) => (1, 0),
            (false, _) => (PUSH_BATCH, 0),
        }
    }

    /// Counts what was sent; returns the flow-control request to send
    /// when it is due.
    pub(crate) fn sent(
        &mut self,
        led_stream: &str,
        name: &str,
        bytes: u64,
        oversize: bool,
    ) -> Option<String> {
        if !self.flow_control {
            return None;
        }
        self.oversize = oversize;
        self.outstanding += bytes;
        if self.outstanding <= self.window / 2 || self.fc_waiting.is_some() {
            return None;
        }
        self.fc_covers = self.outstanding;
        self.fc_sent += 1;
        let reply = format!("{FC_PREFIX}{led_stream}.{name}.{}", self.fc_sent);
        self.fc_waiting = Some(reply.clone());
        Some(reply)
    }
}

impl Consumers {
    /// Whether the push consumer behind `key` may deliver now (someone
    /// listens, flow control is not waiting); refreshes `bound`.
    pub(super) fn push_ready(&self, cluster: &Cluster, key: &Key) -> bool {
        let (account, subject) = {
            let st = self.lock();
            match st.led.get(key).and_then(|l| Some((l, l.push.as_ref()?))) {
                Some((l, p)) => (l.account.clone(), p.subject.clone()),
                None => return false,
            }
        };
        let bound = cluster
            .gateway()
            .is_some_and(|gw| gw.has_interest_in(&account, &subject));
        let mut st = self.lock();
        let Some(p) = st.led.get_mut(key).and_then(|l| l.push.as_mut()) else {
            return false;
        };
        p.bound = bound;
        bound && p.may_send()
    }

    /// The client answered a flow-control request.
    pub(crate) fn flow_control_answered(&self, group: u64, name: &str, subject: &str) {
        let key: Key = (group, name.to_string());
        {
            let mut st = self.lock();
            let Some(p) = st.led.get_mut(&key).and_then(|l| l.push.as_mut()) else {
                return;
            };
            if p.fc_waiting.as_deref() != Some(subject) {
                return;
            }
            p.fc_waiting = None;
            p.outstanding = p.outstanding.saturating_sub(p.fc_covers);
            p.fc_covers = 0;
            p.window = (p.window * 2).min(FC_WINDOW_MAX_BYTES);
        }
        self.pump(&key);
    }

    /// A push consumer's heartbeat timer: a heartbeat if nothing was sent
    /// for an interval (saying what flow control waits for, if it does).
    pub(super) fn push_heartbeat(&self, key: Key, now: i64, sends: &mut Vec<Out>) {
        let mut st = self.lock();
        let Some(led) = st.led.get(&key) else {
            return;
        };
        let Some(p) = &led.push else {
            return;
        };
        let hb = p.heartbeat_ns;
        if hb <= 0 {
            return;
        }
        let next = if now - led.last_active_ns >= hb {
            if p.bound {
                sends.push(push_heartbeat_msg(led, p));
            }
            now + hb
        } else {
            led.last_active_ns + hb
        };
        push_timer(&mut st, next, Timer::PushHeartbeat { key });
    }
}

fn push_heartbeat_msg(led: &Led, p: &Push) -> Out {
    let mut headers = vec![
        ("Nats-Last-Consumer", led.last.0.to_string()),
        ("Nats-Last-Stream", led.last.1.to_string()),
    ];
    if let Some(fc) = &p.fc_waiting {
        headers.push(("Nats-Consumer-Stalled", fc.clone()));
    }
    Out::raw(
        &led.account,
        &p.subject,
        status::status_block(status::IDLE_HEARTBEAT, &headers),
    )
}

/// The flow-control request: a `100` status whose reply the client answers.
pub(super) fn flow_control_request(led: &Led, reply: String) -> Out {
    let to = led.push.as_ref().map_or("", |p| p.subject.as_str());
    Out::raw(
        &led.account,
        to,
        status::status_block("100 FlowControl Request", &[]),
    )
    .with_reply(reply)
}
