//! `$JS.API.DIRECT.GET.<stream>[.<subject>]` (ADR-31): answered by any
//! replica from its own store, as a headers message.

use bytes::{BufMut, Bytes, BytesMut};
use jetraft_gateway::Outbound;
use jetraft_types::api::MsgGetRequest;
use jetraft_types::headers::{self, NATS_SEQUENCE, NATS_STREAM, NATS_SUBJECT, NATS_TIME_STAMP};
use jetraft_types::{StoredMessage, rfc3339};

use super::streams::lookup;
use crate::cluster::Cluster;
use crate::wire::ApiRequest;

fn status(code: u16, desc: &str) -> Vec<Outbound> {
    vec![Outbound {
        headers: Some(headers::status_block(code, Some(desc))),
        payload: Bytes::new(),
    }]
}

pub fn get(
    cluster: &Cluster,
    stream: &str,
    subject: Option<&str>,
    req: &ApiRequest,
) -> Vec<Outbound> {
    let request = match subject {
        Some(s) => MsgGetRequest {
            last_by_subj: Some(s.to_string()),
            ..Default::default()
        },
        None if req.payload.iter().all(u8::is_ascii_whitespace) => {
            return status(408, "Empty Request");
        }
        None => match serde_json::from_slice::<MsgGetRequest>(&req.payload) {
            Ok(r) => r,
            Err(_) => return status(408, "Malformed Request"),
        },
    };
    let Ok(query) = request.query() else {
        return status(408, "Bad Request");
    };
    let Some(a) = cluster.catalog().stream(&req.account, stream).cloned() else {
        return status(404, "Message Not Found");
    };
    let Some(view) = cluster
        .host()
        .group(a.group)
        .and_then(|g| g.sm.stream_view())
    else {
        return status(503, "No Responders");
    };
    match lookup(&view, &query) {
        Ok(Some(m)) => vec![Outbound {
            headers: Some(direct_headers(stream, &m)),
            payload: m.payload.clone(),
        }],
        Ok(None) => status(404, "Message Not Found"),
        Err(e) => {
            tracing::error!(stream, error = %e, "direct get read failed");
            status(500, "Server Error")
        }
    }
}

/// The stored headers (if any) followed by the headers nats-server adds.
fn direct_headers(stream: &str, m: &StoredMessage) -> Bytes {
    let mut out = BytesMut::new();
    match m.headers.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => out.put_slice(h.strip_suffix(b"\r\n").unwrap_or(h)),
        None => out.put_slice(b"NATS/1.0\r\n"),
    }
    for (name, value) in [
        (NATS_STREAM, stream.to_string()),
        (NATS_SUBJECT, m.subject.clone()),
        (NATS_SEQUENCE, m.seq.to_string()),
        (NATS_TIME_STAMP, rfc3339::format_ns(m.time_ns)),
    ] {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.freeze()
}
