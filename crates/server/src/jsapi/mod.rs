//! The JetStream API (`$JS.API.>`) and publishes to stream subjects, with
//! nats-server's subjects, JSON and errors; one file per resource
//! (`account`, `streams`, `direct` gets, `publish`).
//!
//! [`client_op`] decides (from the local catalog) whether a client publish
//! is ours and what it asks for; [`target`] says which node must run it;
//! [`execute`] runs it on that node.

mod account;
mod consumers;
mod direct;
pub(crate) mod publish;
mod stepdown;
mod streams;

pub(crate) use account::local_usage;
pub(crate) use streams::{apply_config, expire};

use std::sync::Arc;

use bytes::Bytes;
use jetraft_gateway::Outbound;
use jetraft_types::ApiError;
use jetraft_types::api::{self, GoType, types};
use serde::de::DeserializeOwned;

use jetraft_meta::StreamAssignment;

use crate::cluster::Cluster;
use crate::wire::ApiRequest;

pub const API_PREFIX: &str = "$JS.API.";
pub const INFO: &str = "$JS.API.INFO";
pub const STREAM_CREATE: &str = "$JS.API.STREAM.CREATE.";
pub const STREAM_UPDATE: &str = "$JS.API.STREAM.UPDATE.";
pub const STREAM_INFO: &str = "$JS.API.STREAM.INFO.";
pub const STREAM_DELETE: &str = "$JS.API.STREAM.DELETE.";
pub const STREAM_PURGE: &str = "$JS.API.STREAM.PURGE.";
pub const STREAM_NAMES: &str = "$JS.API.STREAM.NAMES";
pub const STREAM_LIST: &str = "$JS.API.STREAM.LIST";
pub const STREAM_MSG_GET: &str = "$JS.API.STREAM.MSG.GET.";
pub const STREAM_MSG_DELETE: &str = "$JS.API.STREAM.MSG.DELETE.";
pub const DIRECT_GET: &str = "$JS.API.DIRECT.GET.";
pub const CONSUMER_PREFIX: &str = "$JS.API.CONSUMER.";
pub const STREAM_LEADER_STEPDOWN: &str = "$JS.API.STREAM.LEADER.STEPDOWN.";
/// The cluster name jetraft reports (its nodes form one cluster).
pub const CLUSTER_NAME: &str = "jetraft";
/// Where a request must run.
pub(crate) enum Target {
    MetaLeader,
    StreamLeader(StreamAssignment),
    StreamReplica(StreamAssignment),
}

/// One recognised operation, with the stream name it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    Info,
    Create(String),
    Update(String),
    StreamInfo(String),
    Delete(String),
    Purge(String),
    Names,
    List,
    MsgGet(String),
    MsgDelete(String),
    DirectGet {
        stream: String,
        subject: Option<String>,
    },
    Publish(String),
    /// `STREAM.LEADER.STEPDOWN.<stream>`.
    StreamStepDown(String),
    /// `CONSUMER.LEADER.STEPDOWN.<stream>.<consumer>`.
    ConsumerStepDown {
        stream: String,
        consumer: String,
    },
    /// `CONSUMER.CREATE.<stream>[.<name>[.<filter>]]` and the legacy
    /// `CONSUMER.DURABLE.CREATE.<stream>.<durable>`.
    ConsumerCreate(consumers::CreateSubject),
    ConsumerInfo {
        stream: String,
        consumer: String,
    },
    ConsumerDelete {
        stream: String,
        consumer: String,
    },
    ConsumerNames(String),
    ConsumerList(String),
    ConsumerPause {
        stream: String,
        consumer: String,
    },
    ConsumerReset {
        stream: String,
        consumer: String,
    },
    ConsumerUnpin {
        stream: String,
        consumer: String,
    },
    /// `CONSUMER.MSG.NEXT.<stream>.<consumer>`: a pull request.
    ConsumerNext {
        stream: String,
        consumer: String,
    },
    /// A publish to a `$JS.ACK.` subject.
    Ack {
        stream: String,
        consumer: String,
    },
    /// A push client's answer to a flow-control request (`$JS.FC.`).
    FlowControl {
        stream: String,
        consumer: String,
    },
}

impl Op {
    /// The stream a consumer operation names.
    fn consumer_stream(&self) -> Option<&str> {
        match self {
            Op::ConsumerCreate(c) => Some(&c.stream),
            Op::ConsumerInfo { stream, .. }
            | Op::ConsumerDelete { stream, .. }
            | Op::ConsumerNext { stream, .. }
            | Op::ConsumerPause { stream, .. }
            | Op::ConsumerReset { stream, .. }
            | Op::ConsumerUnpin { stream, .. }
            | Op::ConsumerStepDown { stream, .. }
            | Op::Ack { stream, .. }
            | Op::FlowControl { stream, .. }
            | Op::ConsumerNames(stream)
            | Op::ConsumerList(stream) => Some(stream),
            _ => None,
        }
    }
}

fn one_token(rest: &str) -> Option<String> {
    (!rest.is_empty() && !rest.contains('.')).then(|| rest.to_string())
}

/// Recognises an API subject; `None` for anything nats-server would not
/// answer (the client then gets no-responders).
pub(crate) fn parse_api(subject: &str) -> Option<Op> {
    type MakeOp = fn(String) -> Op;
    let table: [(&str, MakeOp); 8] = [
        (STREAM_CREATE, Op::Create),
        (STREAM_UPDATE, Op::Update),
        (STREAM_INFO, Op::StreamInfo),
        (STREAM_DELETE, Op::Delete),
        (STREAM_PURGE, Op::Purge),
        (STREAM_MSG_GET, Op::MsgGet),
        (STREAM_MSG_DELETE, Op::MsgDelete),
        (STREAM_LEADER_STEPDOWN, Op::StreamStepDown),
    ];
    match subject {
        INFO => return Some(Op::Info),
        STREAM_NAMES => return Some(Op::Names),
        STREAM_LIST => return Some(Op::List),
        _ => {}
    }
    if let Some(rest) = subject.strip_prefix(CONSUMER_PREFIX) {
        return consumers::parse_subject(rest);
    }
    if let Some(rest) = subject.strip_prefix(DIRECT_GET) {
        return match rest.split_once('.') {
            None if !rest.is_empty() => Some(Op::DirectGet {
                stream: rest.to_string(),
                subject: None,
            }),
            Some((stream, subj)) if !stream.is_empty() && !subj.is_empty() => Some(Op::DirectGet {
                stream: stream.to_string(),
                subject: Some(subj.to_string()),
            }),
            _ => None,
        };
    }
    table
        .iter()
        .find_map(|(prefix, make)| subject.strip_prefix(prefix).and_then(one_token).map(make))
}

/// What a subject asks for: an API call, a publish to a stream, or nothing
/// of ours. Run once per request on each node it reaches.
pub(crate) fn classify(cluster: &Cluster, account: &str, subject: &str) -> Option<Op> {
    if subject.starts_with(API_PREFIX) {
        return parse_api(subject);
    }
    if let Some(ack) = subject.strip_prefix(jetraft_types::consumer::ACK_PREFIX) {
        return consumers::parse_ack_subject(ack);
    }
    if let Some(fc) = subject.strip_prefix(crate::consumers::FC_PREFIX) {
        return match fc.split('.').collect::<Vec<_>>().as_slice() {
            [stream, consumer, _] => Some(Op::FlowControl {
                stream: stream.to_string(),
                consumer: consumer.to_string(),
            }),
            _ => None,
        };
    }
    cluster
        .catalog()
        .stream_for_subject(account, subject)
        .map(|a| Op::Publish(a.config.name.clone()))
}

/// The operation of a client publish that JetStream handles, or `None`.
pub(crate) fn client_op(cluster: &Cluster, account: &str, subject: &str) -> Option<Op> {
    let op = classify(cluster, account, subject)?;
    let taken = match &op {
        // nats-server subscribes to direct gets only for allow_direct streams.
        Op::DirectGet { stream, .. } => cluster
            .catalog()
            .stream(account, stream)
            .is_some_and(|a| a.config.allow_direct),
        _ => true,
    };
    taken.then_some(op)
}

/// Where the request must run. `Err` carries an immediate error reply.
pub(crate) fn target(cluster: &Cluster, account: &str, op: &Op) -> Result<Target, Vec<Outbound>> {
    let stream = |name: &str| {
        cluster
            .catalog()
            .stream(account, name)
            .cloned()
            .ok_or_else(|| error_reply(op, ApiError::stream_not_found()))
    };
    Ok(match op {
        // Reads of the catalog are answered by the meta leader after it
        // confirmed its leadership, as stream reads by the stream leader
        // (decision 33); nats-server also answers them from the meta leader.
        Op::Info | Op::Names | Op::List => Target::MetaLeader,
        Op::Create(_) | Op::Update(_) | Op::Delete(_) => Target::MetaLeader,
        Op::StreamInfo(n)
        | Op::Purge(n)
        | Op::MsgGet(n)
        | Op::MsgDelete(n)
        | Op::Publish(n)
        | Op::StreamStepDown(n) => Target::StreamLeader(stream(n)?),
        Op::DirectGet { stream: n, .. } => Target::StreamReplica(stream(n)?),
        op => match op.consumer_stream() {
            Some(n) => Target::StreamLeader(stream(n)?),
            None => return Err(error_reply(op, ApiError::bad_request())),
        },
    })
}

/// Runs a request on this node (the routing decided it belongs here).
pub(crate) async fn execute(cluster: Arc<Cluster>, op: Op, req: ApiRequest) -> Vec<Outbound> {
    match op {
        Op::Info => json(account::account_info(&cluster, &req.account).await),
        Op::Create(name) => json(streams::create(&cluster, &name, &req).await),
        Op::Update(name) => json(streams::update(&cluster, &name, &req).await),
        Op::StreamInfo(name) => json(streams::info(&cluster, &name, &req).await),
        Op::Delete(name) => json(streams::delete(&cluster, &req.account, &name).await),
        Op::Purge(name) => json(streams::purge(&cluster, &name, &req).await),
        Op::Names => json(streams::names(&cluster, &req).await),
        Op::List => json(streams::list(cluster.clone(), &req).await),
        Op::MsgGet(name) => json(streams::msg_get(&cluster, &name, &req).await),
        Op::MsgDelete(name) => json(streams::msg_delete(&cluster, &name, &req).await),
        Op::DirectGet { stream, subject } => {
            direct::get(&cluster, &stream, subject.as_deref(), &req)
        }
        Op::Publish(name) => publish::publish(&cluster, &name, req).await,
        Op::StreamStepDown(name) => json(stepdown::stream(&cluster, &name, &req).await),
        Op::ConsumerStepDown { stream, consumer } => {
            json(stepdown::consumer(&cluster, &stream, &consumer, &req).await)
        }
        Op::ConsumerCreate(c) => json(consumers::create(&cluster, &c, &req).await),
        Op::ConsumerInfo { stream, consumer } => {
            json(consumers::info(&cluster, &stream, &consumer, &req).await)
        }
        Op::ConsumerDelete { stream, consumer } => {
            json(consumers::delete(&cluster, &stream, &consumer, &req).await)
        }
        Op::ConsumerPause { stream, consumer } => {
            json(consumers::pause(&cluster, &stream, &consumer, &req).await)
        }
        Op::ConsumerUnpin { stream, consumer } => {
            json(consumers::unpin(&cluster, &stream, &consumer, &req).await)
        }
        // No reply for a consumer that does not exist, as nats-server.
        Op::ConsumerReset { stream, consumer } => {
            consumers::reset(&cluster, &stream, &consumer, &req)
                .await
                .map(json)
                .unwrap_or_default()
        }
        Op::ConsumerNames(stream) => json(consumers::names(&cluster, &stream, &req).await),
        Op::ConsumerList(stream) => json(consumers::list(&cluster, &stream, &req).await),
        Op::ConsumerNext { stream, consumer } => {
            crate::consumers::pull(&cluster, &stream, &consumer, req).await
        }
        Op::Ack { stream, consumer } => {
            crate::consumers::ack(&cluster, &stream, &consumer, req).await
        }
        Op::FlowControl { stream, consumer } => {
            crate::consumers::flow_control(&cluster, &stream, &consumer, &req);
            Vec::new()
        }
    }
}

pub(crate) fn json(body: Vec<u8>) -> Vec<Outbound> {
    vec![Outbound {
        headers: None,
        payload: Bytes::from(body),
    }]
}

/// The error reply nats-server would send for this request's kind.
pub(crate) fn error_reply(op: &Op, err: ApiError) -> Vec<Outbound> {
    let body = match op {
        Op::Publish(stream) => api::render_pub_error(stream, &err),
        // A pull request to a stream nobody serves: the core layer's
        // no-responders answer, as nats-server's (it has no subscription
        // there). An ack or flow-control answer expects nothing.
        Op::ConsumerNext { .. } => {
            return vec![Outbound {
                headers: Some(jetraft_types::headers::status_block(503, None)),
                payload: Bytes::new(),
            }];
        }
        Op::Ack { .. } | Op::FlowControl { .. } => return Vec::new(),
        op => api::render_error(response_type(op), &err),
    };
    json(body)
}

pub(crate) fn response_type(op: &Op) -> &'static str {
    match op {
        Op::Info => types::ACCOUNT_INFO,
        Op::Create(_) => types::STREAM_CREATE,
        Op::Update(_) => types::STREAM_UPDATE,
        Op::StreamInfo(_) => types::STREAM_INFO,
        Op::Delete(_) => types::STREAM_DELETE,
        Op::Purge(_) => types::STREAM_PURGE,
        Op::Names => types::STREAM_NAMES,
        Op::List => types::STREAM_LIST,
        Op::MsgGet(_) | Op::DirectGet { .. } => types::STREAM_MSG_GET,
        Op::MsgDelete(_) => types::STREAM_MSG_DELETE,
        Op::ConsumerCreate(_) => types::CONSUMER_CREATE,
        Op::ConsumerInfo { .. } => types::CONSUMER_INFO,
        Op::ConsumerDelete { .. } => types::CONSUMER_DELETE,
        Op::ConsumerNames(_) => types::CONSUMER_NAMES,
        Op::ConsumerList(_) => types::CONSUMER_LIST,
        Op::ConsumerPause { .. } => types::CONSUMER_PAUSE,
        Op::ConsumerReset { .. } => types::CONSUMER_RESET,
        Op::ConsumerUnpin { .. } => types::CONSUMER_UNPIN,
        Op::StreamStepDown(_) => types::STREAM_LEADER_STEPDOWN,
        Op::ConsumerStepDown { .. } => types::CONSUMER_LEADER_STEPDOWN,
        Op::Publish(_) | Op::ConsumerNext { .. } | Op::Ack { .. } | Op::FlowControl { .. } => "",
    }
}

/// nats-server's `isEmptyRequest`: nothing, or an empty JSON object.
pub(crate) fn is_empty_request(payload: &[u8]) -> bool {
    payload.is_empty()
        || matches!(
            serde_json::from_slice::<serde_json::Value>(payload),
            Ok(serde_json::Value::Object(m)) if m.is_empty()
        )
}

/// Whether a JSON reply is an API error (used when probing a stream).
pub fn is_error(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.get("error").is_some())
        .unwrap_or(true)
}

/// Parses a request body; empty means `T::default()`.
pub(crate) fn parse_body<T: DeserializeOwned + Default + GoType>(
    payload: &[u8],
) -> Result<T, ApiError> {
    if payload.iter().all(u8::is_ascii_whitespace) || payload.trim_ascii() == b"null" {
        return Ok(T::default());
    }
    parse_json(payload)
}

/// Parses JSON the way nats-server's Go decoder does: a `null` field means
/// "not given" (clients send `"consumer_limits":null` and the like).
pub(crate) fn parse_json<T: DeserializeOwned + GoType>(payload: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| go_json_error(payload, &e))?;
    // serde would take an array for a struct (its fields in order); Go's
    // decoder takes only an object.
    let kind = match &value {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Array(_) => Some("array"),
        serde_json::Value::String(_) => Some("string"),
        serde_json::Value::Number(_) => Some("number"),
        serde_json::Value::Bool(_) => Some("bool"),
        serde_json::Value::Null => None,
    };
    if let Some(kind) = kind {
        return Err(ApiError::invalid_json(format!(
            "json: cannot unmarshal {kind} into Go value of type server.{}",
            T::GO_TYPE
        )));
    }
    strip_nulls(&mut value);
    // Decoding from a `Value` carries no position, so a field's error reads
    // like Go's (`can not unmarshal "\"bogus\""`, see the config enums).
    serde_json::from_value(value).map_err(|e| ApiError::invalid_json(go_field_error(&e)))
}

/// serde's "unknown field `x`, expected one of ..." as Go's decoder says it.
fn go_field_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
    {
        Some((field, _)) => format!("json: unknown field \"{field}\""),
        None => text,
    }
}

/// The 10025 text nats-server sends for a malformed body: Go's decoder
/// error, syntax errors suffixed `at offset N` (the 1-based byte offset).
fn go_json_error(payload: &[u8], e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let at = {
        let lines_before = payload
            .split(|b| *b == b'\n')
            .take(e.line().saturating_sub(1));
        let line_start: usize = lines_before.map(|l| l.len() + 1).sum();
        line_start + e.column().saturating_sub(1)
    };
    match (e.classify(), payload.get(at)) {
        (Category::Eof, _) => ApiError::invalid_json("unexpected EOF"),
        (Category::Syntax, Some(c)) if e.to_string().starts_with("expected value") => {
            ApiError::invalid_json(format!(
                "invalid character {} looking for beginning of value at offset {}",
                go_quote_char(*c),
                at + 1
            ))
        }
        _ => ApiError::invalid_json(e),
    }
}

/// Go's `encoding/json` `quoteChar`.
fn go_quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".to_string(),
        b'"' => "'\"'".to_string(),
        _ => format!("'{}'", std::ascii::escape_default(c)),
    }
}

fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_subjects() {
        assert_eq!(parse_api("$JS.API.INFO"), Some(Op::Info));
        assert_eq!(
            parse_api("$JS.API.STREAM.CREATE.S"),
            Some(Op::Create("S".into()))
        );
        assert_eq!(parse_api("$JS.API.STREAM.CREATE.S.x"), None);
        assert_eq!(parse_api("$JS.API.STREAM.CREATE."), None);
        assert_eq!(
            parse_api("$JS.API.STREAM.MSG.GET.S"),
            Some(Op::MsgGet("S".into()))
        );
        assert_eq!(
            parse_api("$JS.API.DIRECT.GET.S.a.b"),
            Some(Op::DirectGet {
                stream: "S".into(),
                subject: Some("a.b".into())
            })
        );
        assert_eq!(
            parse_api("$JS.API.DIRECT.GET.S"),
            Some(Op::DirectGet {
                stream: "S".into(),
                subject: None
            })
        );
        assert!(matches!(
            parse_api("$JS.API.CONSUMER.CREATE.S"),
            Some(Op::ConsumerCreate(_))
        ));
        assert_eq!(parse_api("$JS.API.CONSUMER.INFO.S"), None);
    }

    #[test]
    fn json_errors_read_like_go() {
        let e = |b: &[u8]| {
            parse_json::<jetraft_types::config::StreamConfig>(b)
                .err()
                .map(|e| e.description)
        };
        let e = |b: &[u8]| e(b).unwrap_or_default();
        assert_eq!(e(b"{"), "invalid JSON: unexpected EOF");
        assert_eq!(e(br#"{"name":"#), "invalid JSON: unexpected EOF");
        assert_eq!(
            e(b"hello"),
            "invalid JSON: invalid character 'h' looking for beginning of value at offset 1"
        );
        assert_eq!(
            e(b"{\n\"name\": x}"),
            "invalid JSON: invalid character 'x' looking for beginning of value at offset 11"
        );
    }

    #[test]
    fn only_objects_are_requests() {
        // As nats-server 2.15.1 answers STREAM.CREATE with body `["S"]`
        // and STREAM.INFO with `[1,2]` (found by fuzz/).
        let e = |b: &[u8]| parse_json::<jetraft_types::config::StreamConfig>(b).err();
        assert_eq!(
            e(br#"["S"]"#).map(|e| (e.code, e.err_code, e.description)),
            Some((
                400,
                10025,
                "invalid JSON: json: cannot unmarshal array into Go value of type \
                 server.StreamConfigRequest"
                    .to_string()
            ))
        );
        let e = parse_body::<jetraft_types::api::StreamInfoRequest>(b"[1,2]").err();
        assert_eq!(
            e.map(|e| e.description),
            Some(
                "invalid JSON: json: cannot unmarshal array into Go value of type \
                 server.JSApiStreamInfoRequest"
                    .to_string()
            )
        );
    }

    #[test]
    fn null_fields_are_absent_fields() {
        let cfg: jetraft_types::config::StreamConfig =
            parse_json(br#"{"name":"S","consumer_limits":null,"placement":null,"subjects":null}"#)
                .unwrap_or_default();
        assert_eq!(cfg.name, "S");
        assert!(parse_json::<jetraft_types::config::StreamConfig>(b"{").is_err());
    }
}
