//! What the consumer runtime sends: deliveries, the status messages pull
//! clients branch on (nats-server's exact status lines and headers), and
//! advisories.

use bytes::Bytes;
use jetraft_gateway::{Gateway, Outgoing};
use jetraft_types::StoredMessage;

use super::{Led, Waiting};

pub(crate) const NO_MESSAGES: &str = "404 No Messages";
pub(crate) const IDLE_HEARTBEAT: &str = "100 Idle Heartbeat";
pub(crate) const MSG_SIZE_EXCEEDS: &str = "409 Message Size Exceeds MaxBytes";
pub(crate) const LEADERSHIP_CHANGE: &str = "409 Leadership Change";
pub(crate) const CONSUMER_DELETED: &str = "409 Consumer Deleted";
pub(crate) const EXCEEDED_MAX_WAITING: &str = "409 Exceeded MaxWaiting";
pub(crate) const PUSH_BASED: &str = "409 Consumer is push based";
pub(crate) const WRONG_PIN_ID: &str = "423 Nats-Wrong-Pin-Id";
const REQUEST_TIMEOUT: &str = "408 Request Timeout";

/// One message to send through the gateway, once the state lock is
/// released.
pub(crate) struct Out {
    account: String,
    to: String,
    delivered_as: Option<String>,
    reply: Option<String>,
    headers: Option<Bytes>,
    payload: Bytes,
}

/// A header-only status message: `NATS/1.0 <status>` and `headers`.
pub(crate) fn status_block(status: &str, headers: &[(&str, String)]) -> Bytes {
    let mut b = format!("NATS/1.0 {status}\r\n");
    for (k, v) in headers {
        b.push_str(&format!("{k}: {v}\r\n"));
    }
    b.push_str("\r\n");
    Bytes::from(b)
}

impl Out {
    /// A delivery; `pin`: the `Nats-Pin-Id` of a pinned-client consumer.
    pub(crate) fn message(
        led: &Led,
        to: &str,
        m: &StoredMessage,
        ack: String,
        pin: Option<&str>,
    ) -> Self {
        let headers_only = led.config.headers_only;
        let (headers, payload) = if headers_only || pin.is_some() {
            let mut h = m
                .headers
                .as_ref()
                .and_then(|b| jetraft_types::headers::HeaderMap::parse(b).ok())
                .unwrap_or_default();
            if headers_only {
                h.insert("Nats-Msg-Size", m.payload.len().to_string());
            }
            if let Some(pin) = pin {
                h.insert("Nats-Pin-Id", pin.to_string());
            }
            let payload = if headers_only {
                Bytes::new()
            } else {
                m.payload.clone()
            };
            (Some(h.to_bytes()), payload)
        } else {
            (m.headers.clone(), m.payload.clone())
        };
        Self {
            account: led.account.clone(),
            to: to.to_string(),
            delivered_as: Some(m.subject.clone()),
            reply: Some(ack),
            headers,
            payload,
        }
    }

    pub(crate) fn status(led: &Led, to: &str, status: &str) -> Self {
        let headers = if status == IDLE_HEARTBEAT {
            vec![
                ("Nats-Last-Consumer", led.last.0.to_string()),
                ("Nats-Last-Stream", led.last.1.to_string()),
            ]
        } else {
            Vec::new()
        };
        Self::raw(&led.account, to, status_block(status, &headers))
    }

    /// A status with the request's unfilled part (408 and the max-bytes 409).
    pub(crate) fn with_pending(led: &Led, w: &Waiting, status: &str) -> Self {
        let headers = [
            ("Nats-Pending-Messages", w.left.to_string()),
            ("Nats-Pending-Bytes", w.bytes_left.unwrap_or(0).to_string()),
        ];
        Self::raw(&led.account, &w.reply, status_block(status, &headers))
    }

    pub(crate) fn timeout(led: &Led, w: &Waiting) -> Self {
        Self::with_pending(led, w, REQUEST_TIMEOUT)
    }

    pub(crate) fn raw(account: &str, to: &str, headers: Bytes) -> Self {
        Self {
            account: account.to_string(),
            to: to.to_string(),
            delivered_as: None,
            reply: None,
            headers: Some(headers),
            payload: Bytes::new(),
        }
    }

    pub(crate) fn with_reply(mut self, reply: String) -> Self {
        self.reply = Some(reply);
        self
    }

    /// A JSON advisory on `subject`.
    pub(crate) fn advisory(account: &str, subject: String, body: serde_json::Value) -> Self {
        Self {
            account: account.to_string(),
            to: subject,
            delivered_as: None,
            reply: None,
            headers: None,
            payload: Bytes::from(body.to_string()),
        }
    }

    pub(crate) fn deliver(&self, gw: &Gateway) {
        gw.send(&Outgoing {
            account: &self.account,
            subject: &self.to,
            delivered_as: self.delivered_as.as_deref(),
            reply: self.reply.as_deref(),
            headers: self.headers.as_deref(),
            payload: &self.payload,
            taken_queues: &[],
        });
    }
}

/// `status` to every waiting request of `led`.
pub(crate) fn to_all(led: &Led, status: &str) -> Vec<Out> {
    led.waiting
        .iter()
        .map(|w| Out::status(led, &w.reply, status))
        .collect()
}

/// A deterministic advisory id (nats-server uses a random nuid).
fn advisory_id(parts: &[&str], n: u64) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    n.hash(&mut h);
    jetraft_stream::consumer::ephemeral_name(h.finish())
        + &jetraft_stream::consumer::ephemeral_name(n)
}

fn advisory(
    led: &Led,
    kind: &str,
    type_name: &str,
    now: i64,
    seq: u64,
    fields: serde_json::Map<String, serde_json::Value>,
) -> Out {
    consumer_advisory(
        &led.account,
        &led.stream,
        &led.name,
        kind,
        type_name,
        now,
        seq,
        fields,
    )
}

/// An advisory about consumer `name` of `stream` on
/// `$JS.EVENT.ADVISORY.CONSUMER.<kind>.<stream>.<name>`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn consumer_advisory(
    account: &str,
    stream: &str,
    name: &str,
    kind: &str,
    type_name: &str,
    now: i64,
    seq: u64,
    mut fields: serde_json::Map<String, serde_json::Value>,
) -> Out {
    let mut body = serde_json::Map::new();
    body.insert("type".into(), type_name.into());
    body.insert(
        "id".into(),
        advisory_id(&[kind, stream, name], seq ^ now as u64).into(),
    );
    body.insert(
        "timestamp".into(),
        jetraft_types::rfc3339::format_ns(now).into(),
    );
    body.insert("stream".into(), stream.into());
    body.insert("consumer".into(), name.into());
    body.append(&mut fields);
    Out::advisory(
        account,
        format!("$JS.EVENT.ADVISORY.CONSUMER.{kind}.{stream}.{name}"),
        serde_json::Value::Object(body),
    )
}

/// `CREATED` / `DELETED`: a consumer came or went.
pub(crate) fn action(account: &str, stream: &str, name: &str, created: bool, now: i64) -> Out {
    let (kind, action) = if created {
        ("CREATED", "create")
    } else {
        ("DELETED", "delete")
    };
    let mut f = serde_json::Map::new();
    f.insert("action".into(), action.into());
    consumer_advisory(
        account,
        stream,
        name,
        kind,
        "io.nats.jetstream.advisory.v1.consumer_action",
        now,
        0,
        f,
    )
}

/// `MAX_DELIVERIES`: a message reached `max_deliver` (the dead-letter
/// pattern listens here).
pub(crate) fn max_deliveries(led: &Led, seq: u64, deliveries: u64, now: i64) -> Out {
    let mut f = serde_json::Map::new();
    f.insert("stream_seq".into(), seq.into());
    f.insert("deliveries".into(), deliveries.into());
    advisory(
        led,
        "MAX_DELIVERIES",
        "io.nats.jetstream.advisory.v1.max_deliver",
        now,
        seq,
        f,
    )
}

/// `MSG_TERMINATED`: a `+TERM`.
pub(crate) fn terminated(
    led: &Led,
    ack: &jetraft_types::consumer::AckSubject,
    reason: &str,
    now: i64,
) -> Out {
    let mut f = serde_json::Map::new();
    f.insert("consumer_seq".into(), ack.consumer_seq.into());
    f.insert("stream_seq".into(), ack.stream_seq.into());
    f.insert("deliveries".into(), ack.delivered.into());
    f.insert("reason".into(), reason.into());
    advisory(
        led,
        "MSG_TERMINATED",
        "io.nats.jetstream.advisory.v1.terminated",
        now,
        ack.stream_seq,
        f,
    )
}

/// `MSG_NAKED`: a `-NAK`.
pub(crate) fn naked(led: &Led, ack: &jetraft_types::consumer::AckSubject, now: i64) -> Out {
    let mut f = serde_json::Map::new();
    f.insert("consumer_seq".into(), ack.consumer_seq.into());
    f.insert("stream_seq".into(), ack.stream_seq.into());
    f.insert("deliveries".into(), ack.delivered.into());
    advisory(
        led,
        "MSG_NAKED",
        "io.nats.jetstream.advisory.v1.nak",
        now,
        ack.stream_seq,
        f,
    )
}

/// `PINNED`: a priority group's pin was given to a client.
pub(crate) fn pinned(led: &Led, pin: &super::priority::Pin, now: i64) -> Out {
    let mut f = serde_json::Map::new();
    f.insert("account".into(), led.account.clone().into());
    f.insert("group".into(), pin.group.clone().into());
    f.insert("pinned_id".into(), pin.id.clone().into());
    advisory(
        led,
        "PINNED",
        "io.nats.jetstream.advisory.v1.consumer_group_pinned",
        now,
        0,
        f,
    )
}

/// `UNPINNED`: the pin was dropped (`admin`: the UNPIN request;
/// `timeout`: the client stopped pulling).
pub(crate) fn unpinned(led: &Led, group: &str, reason: &str, now: i64) -> Out {
    let mut f = serde_json::Map::new();
    f.insert("account".into(), led.account.clone().into());
    f.insert("group".into(), group.into());
    f.insert("reason".into(), reason.into());
    advisory(
        led,
        "UNPINNED",
        "io.nats.jetstream.advisory.v1.consumer_group_unpinned",
        now,
        0,
        f,
    )
}

/// Whether the ack of `seq` is sampled at `pct` percent (nats-server
/// draws at random; this is a fixed spread over sequences, so replays
/// agree).
pub(crate) fn sampled(pct: i64, seq: u64) -> bool {
    match pct {
        p if p <= 0 => false,
        p if p >= 100 => true,
        p => (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 100 < p as u64,
    }
}

/// `$JS.EVENT.METRIC.CONSUMER.ACK.<stream>.<consumer>`: a sampled ack and
/// how long after its delivery it came.
pub(crate) fn ack_metric(
    account: &str,
    stream: &str,
    name: &str,
    ack: &jetraft_types::consumer::AckSubject,
    delay_ns: i64,
    now: i64,
) -> Out {
    let body = serde_json::json!({
        "type": "io.nats.jetstream.metric.v1.consumer_ack",
        "id": advisory_id(&["ACK", stream, name], ack.stream_seq ^ now as u64),
        "timestamp": jetraft_types::rfc3339::format_ns(now),
        "stream": stream,
        "consumer": name,
        "consumer_seq": ack.consumer_seq,
        "stream_seq": ack.stream_seq,
        "ack_time": delay_ns,
        "deliveries": ack.delivered,
    });
    Out::advisory(
        account,
        format!("$JS.EVENT.METRIC.CONSUMER.ACK.{stream}.{name}"),
        body,
    )
}

/// `PAUSE`: the consumer was paused until a time, or resumed.
pub(crate) fn pause(account: &str, stream: &str, name: &str, until: Option<i64>, now: i64) -> Out {
    let mut f = serde_json::Map::new();
    f.insert("paused".into(), until.is_some_and(|t| t > now).into());
    f.insert(
        "pause_until".into(),
        jetraft_types::rfc3339::format_ns(until.unwrap_or(0)).into(),
    );
    consumer_advisory(
        account,
        stream,
        name,
        "PAUSE",
        "io.nats.jetstream.advisory.v1.consumer_pause",
        now,
        until.unwrap_or(0) as u64,
        f,
    )
}
