//! JetStream API request and response bodies (nats-server
//! `server/jetstream_api.go`), for `$JS.API.INFO` and the `STREAM.*`
//! subjects, plus the publish acknowledgement.
//!
//! Every response is rendered with [`render`] (or [`render_error`]), which
//! puts `"type":"io.nats.jetstream.api.v1.<x>_response"` first, as the
//! server does; clients use `type` and the `error` object to tell outcomes
//! apart. Field presence follows the server's `omitempty` tags so the JSON
//! has the same shape.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::StreamInfo;
use crate::error::ApiError;
use crate::message::StoredMessage;
use crate::rfc3339;

/// Response `type` names.
pub mod types {
    pub const ACCOUNT_INFO: &str = "io.nats.jetstream.api.v1.account_info_response";
    pub const STREAM_CREATE: &str = "io.nats.jetstream.api.v1.stream_create_response";
    pub const STREAM_UPDATE: &str = "io.nats.jetstream.api.v1.stream_update_response";
    pub const STREAM_INFO: &str = "io.nats.jetstream.api.v1.stream_info_response";
    pub const STREAM_DELETE: &str = "io.nats.jetstream.api.v1.stream_delete_response";
    pub const STREAM_PURGE: &str = "io.nats.jetstream.api.v1.stream_purge_response";
    pub const STREAM_NAMES: &str = "io.nats.jetstream.api.v1.stream_names_response";
    pub const STREAM_LIST: &str = "io.nats.jetstream.api.v1.stream_list_response";
    pub const STREAM_MSG_GET: &str = "io.nats.jetstream.api.v1.stream_msg_get_response";
    pub const STREAM_MSG_DELETE: &str = "io.nats.jetstream.api.v1.stream_msg_delete_response";
    pub const CONSUMER_CREATE: &str = "io.nats.jetstream.api.v1.consumer_create_response";
    pub const CONSUMER_INFO: &str = "io.nats.jetstream.api.v1.consumer_info_response";
    pub const CONSUMER_DELETE: &str = "io.nats.jetstream.api.v1.consumer_delete_response";
    pub const CONSUMER_NAMES: &str = "io.nats.jetstream.api.v1.consumer_names_response";
    pub const CONSUMER_LIST: &str = "io.nats.jetstream.api.v1.consumer_list_response";
    pub const CONSUMER_PAUSE: &str = "io.nats.jetstream.api.v1.consumer_pause_response";
    pub const CONSUMER_RESET: &str = "io.nats.jetstream.api.v1.consumer_reset_response";
    pub const CONSUMER_UNPIN: &str = "io.nats.jetstream.api.v1.consumer_unpin_response";
    pub const CONSUMER_LEADER_STEPDOWN: &str =
        "io.nats.jetstream.api.v1.consumer_leader_stepdown_response";
    pub const STREAM_LEADER_STEPDOWN: &str =
        "io.nats.jetstream.api.v1.stream_leader_stepdown_response";
}

/// `JSApiNamesLimit`: page size of `STREAM.NAMES`.
pub const NAMES_PAGE_LIMIT: usize = 1024;
/// `JSApiListLimit`: page size of `STREAM.LIST`.
pub const LIST_PAGE_LIMIT: usize = 256;
/// JetStream API level jetraft reports (`api.level`, `_nats.level`).
pub const API_LEVEL: u32 = 5;
/// The nats-server release whose API jetraft implements; reported as
/// `_nats.ver` (the client protocol `INFO` reports the same).
pub const NATS_VERSION: &str = "2.15.1";
/// `JSMaxSubjectDetails`: page size of `STREAM.INFO`'s `state.subjects`.
pub const SUBJECT_DETAILS_LIMIT: usize = 100_000;

/// Renders a response body with its `type` first. `body` must serialise to
/// a JSON object.
pub fn render<T: Serialize>(type_name: &str, body: &T) -> Vec<u8> {
    let inner = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut out = Vec::with_capacity(inner.len() + type_name.len() + 12);
    out.extend_from_slice(b"{\"type\":");
    out.extend_from_slice(
        serde_json::to_string(type_name)
            .unwrap_or_default()
            .as_bytes(),
    );
    match inner.as_slice() {
        [b'{', b'}'] | [] => out.push(b'}'),
        [b'{', rest @ ..] => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        _ => out.push(b'}'),
    }
    out
}

/// `{"type":..,"error":{..}}` plus the fields nats-server always sends for
/// that response type even on error (`purged` for purge,
/// `total`/`offset`/`limit` for info).
pub fn render_error(type_name: &str, err: &ApiError) -> Vec<u8> {
    #[derive(Serialize)]
    struct E<'a> {
        error: &'a ApiError,
    }
    #[derive(Serialize)]
    struct Purge<'a> {
        error: &'a ApiError,
        purged: u64,
    }
    #[derive(Serialize)]
    struct Paged<'a> {
        error: &'a ApiError,
        total: usize,
        offset: usize,
        limit: usize,
    }
    #[derive(Serialize)]
    struct Reset<'a> {
        error: &'a ApiError,
        reset_seq: u64,
    }
    #[derive(Serialize)]
    struct Pause<'a> {
        error: &'a ApiError,
        paused: bool,
        pause_until: &'a str,
    }
    match type_name {
        types::STREAM_PURGE => render(
            type_name,
            &Purge {
                error: err,
                purged: 0,
            },
        ),
        types::STREAM_INFO => render(
            type_name,
            &Paged {
                error: err,
                total: 0,
                offset: 0,
                limit: 0,
            },
        ),
        types::CONSUMER_RESET => render(
            type_name,
            &Reset {
                error: err,
                reset_seq: 0,
            },
        ),
        types::CONSUMER_PAUSE => render(
            type_name,
            &Pause {
                error: err,
                paused: false,
                pause_until: crate::rfc3339::ZERO_TIME,
            },
        ),
        _ => render(type_name, &E { error: err }),
    }
}

// ---- $JS.API.INFO ----

/// `limits` of account info; `-1` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLimits {
    pub max_memory: i64,
    pub max_storage: i64,
    pub max_streams: i64,
    pub max_consumers: i64,
    pub max_ack_pending: i64,
    pub memory_max_stream_bytes: i64,
    pub storage_max_stream_bytes: i64,
    pub max_bytes_required: bool,
}

impl Default for AccountLimits {
    fn default() -> Self {
        Self {
            max_memory: -1,
            max_storage: -1,
            max_streams: -1,
            max_consumers: -1,
            max_ack_pending: -1,
            memory_max_stream_bytes: -1,
            storage_max_stream_bytes: -1,
            max_bytes_required: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiStats {
    pub level: u32,
    pub total: u64,
    pub errors: u64,
}

/// Account info. async-nats requires every field here except `domain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    pub memory: u64,
    pub storage: u64,
    pub reserved_memory: u64,
    pub reserved_storage: u64,
    pub streams: u64,
    pub consumers: u64,
    pub limits: AccountLimits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    pub api: ApiStats,
}

// ---- STREAM.CREATE / UPDATE / INFO ----

/// Create and update response: the info plus `did_create` on create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCreateResponse {
    #[serde(flatten)]
    pub info: StreamInfo,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub did_create: bool,
}

/// `STREAM.INFO` request; an empty body is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamInfoRequest {
    pub offset: usize,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted_details: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subjects_filter: Option<String>,
}

/// `STREAM.INFO` response: paging fields (for `subjects`) and the info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfoResponse {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    #[serde(flatten)]
    pub info: StreamInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccessResponse {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub success: bool,
}

// ---- STREAM.PURGE ----

/// Purge request; all optional. `seq` purges below it, `keep` keeps the
/// last N, `filter` restricts to matching subjects. `seq` with `keep` is a
/// 400/10003.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PurgeRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<u64>,
}

impl PurgeRequest {
    /// nats-server's request check: `seq` and `keep` are exclusive.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.seq.unwrap_or(0) > 0 && self.keep.unwrap_or(0) > 0 {
            return Err(ApiError::bad_request());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeResponse {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub success: bool,
    pub purged: u64,
}

// ---- STREAM.NAMES / LIST ----

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamNamesRequest {
    pub offset: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamNamesResponse {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    /// `null` when empty: nats-server sends its nil slice so.
    #[serde(serialize_with = "null_if_empty", deserialize_with = "vec_or_null")]
    pub streams: Vec<String>,
}

fn null_if_empty<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(v)
    }
}

fn vec_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamListResponse {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub streams: Vec<StreamInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

// ---- STREAM.MSG.GET ----

/// `STREAM.MSG.GET` request. Exactly one of `seq`, `last_by_subj`,
/// `next_by_subj` (which may be combined with `seq` as the start).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MsgGetRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_by_subj: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_by_subj: Option<String>,
}

/// What a valid [`MsgGetRequest`] asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsgGetQuery {
    /// The message at exactly this sequence.
    Seq(u64),
    /// The last message on this subject (wildcards allowed).
    LastBySubject(String),
    /// The first message matching this filter at or after `from`.
    NextBySubject { filter: String, from: u64 },
}

impl MsgGetRequest {
    /// The request forms nats-server accepts; anything else is 400/10003.
    pub fn query(&self) -> Result<MsgGetQuery, ApiError> {
        let seq = self.seq.filter(|s| *s > 0);
        let last = self.last_by_subj.as_ref().filter(|s| !s.is_empty());
        let next = self.next_by_subj.as_ref().filter(|s| !s.is_empty());
        match (seq, last, next) {
            (Some(s), None, None) => Ok(MsgGetQuery::Seq(s)),
            (None, Some(l), None) => Ok(MsgGetQuery::LastBySubject(l.clone())),
            (s, None, Some(n)) => Ok(MsgGetQuery::NextBySubject {
                filter: n.clone(),
                from: s.unwrap_or(0),
            }),
            _ => Err(ApiError::bad_request()),
        }
    }
}

/// `message` of a `STREAM.MSG.GET` response: headers and data base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiStoredMessage {
    pub subject: String,
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdrs: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data: String,
    #[serde(with = "rfc3339::serde_ns")]
    pub time: i64,
}

impl From<&StoredMessage> for ApiStoredMessage {
    fn from(m: &StoredMessage) -> Self {
        Self {
            subject: m.subject.clone(),
            seq: m.seq,
            hdrs: m
                .headers
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| B64.encode(h)),
            data: B64.encode(&m.payload),
            time: m.time_ns,
        }
    }
}

impl ApiStoredMessage {
    /// Decodes back into a stored message (for tests and clients).
    pub fn decode(&self) -> Result<StoredMessage, base64::DecodeError> {
        Ok(StoredMessage {
            seq: self.seq,
            subject: self.subject.clone(),
            headers: self
                .hdrs
                .as_ref()
                .map(|h| B64.decode(h).map(Bytes::from))
                .transpose()?,
            payload: Bytes::from(B64.decode(&self.data)?),
            time_ns: self.time,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgGetResponse {
    pub message: ApiStoredMessage,
}

// ---- STREAM.MSG.DELETE ----

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MsgDeleteRequest {
    pub seq: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_erase: bool,
}

// ---- publish ----

/// The reply to a publish into a stream. A duplicate carries the original
/// sequence and `"duplicate":true`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubAck {
    pub stream: String,
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

impl PubAck {
    pub fn render(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A refused publish: `{"error":{..},"stream":"S","seq":0}`.
pub fn render_pub_error(stream: &str, err: &ApiError) -> Vec<u8> {
    #[derive(Serialize)]
    struct PubErr<'a> {
        error: &'a ApiError,
        stream: &'a str,
        seq: u64,
    }
    serde_json::to_vec(&PubErr {
        error: err,
        stream,
        seq: 0,
    })
    .unwrap_or_default()
}

/// The Go type nats-server decodes a request body into, as its JSON
/// errors name it (`cannot unmarshal array into Go value of type
/// server.<name>`).
pub trait GoType {
    const GO_TYPE: &'static str;
}

impl GoType for crate::config::StreamConfig {
    const GO_TYPE: &'static str = "StreamConfigRequest";
}
impl GoType for StreamInfoRequest {
    const GO_TYPE: &'static str = "JSApiStreamInfoRequest";
}
impl GoType for PurgeRequest {
    const GO_TYPE: &'static str = "JSApiStreamPurgeRequest";
}
impl GoType for StreamNamesRequest {
    const GO_TYPE: &'static str = "JSApiStreamNamesRequest";
}
impl GoType for MsgGetRequest {
    const GO_TYPE: &'static str = "JSApiMsgGetRequest";
}
impl GoType for MsgDeleteRequest {
    const GO_TYPE: &'static str = "JSApiMsgDeleteRequest";
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{Value, json};

    fn val(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn render_puts_type_first() {
        let out = render(
            types::STREAM_PURGE,
            &PurgeResponse {
                success: true,
                purged: 2,
            },
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"type":"io.nats.jetstream.api.v1.stream_purge_response","success":true,"purged":2}"#
        );
        let out = render(types::STREAM_DELETE, &SuccessResponse::default());
        assert_eq!(val(&out), json!({"type": types::STREAM_DELETE}));
    }

    #[test]
    fn errors_have_nats_shapes() {
        let e = ApiError::stream_not_found();
        assert_eq!(
            val(&render_error(types::STREAM_INFO, &e)),
            json!({"type": types::STREAM_INFO, "error": {"code":404,"err_code":10059,"description":"stream not found"},
                   "total":0,"offset":0,"limit":0})
        );
        assert_eq!(
            val(&render_error(types::STREAM_PURGE, &ApiError::bad_request()))["purged"],
            json!(0)
        );
        assert_eq!(
            val(&render_pub_error(
                "S",
                &ApiError::stream_wrong_last_sequence(3)
            )),
            json!({"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"S","seq":0})
        );
    }

    #[test]
    fn pub_ack_shapes() {
        let ack = PubAck {
            stream: "S".into(),
            seq: 3,
            domain: None,
            duplicate: true,
        };
        assert_eq!(
            val(&ack.render()),
            json!({"stream":"S","seq":3,"duplicate":true})
        );
        let ack = PubAck {
            duplicate: false,
            ..ack
        };
        assert_eq!(
            String::from_utf8(ack.render()).unwrap(),
            r#"{"stream":"S","seq":3}"#
        );
    }

    #[test]
    fn empty_stream_names_are_null() {
        let empty = StreamNamesResponse::default();
        let v = val(&render(types::STREAM_NAMES, &empty));
        assert_eq!(v["streams"], Value::Null);
        let back: StreamNamesResponse = serde_json::from_value(v).unwrap();
        assert!(back.streams.is_empty());
        let one = StreamNamesResponse {
            streams: vec!["S".into()],
            ..Default::default()
        };
        assert_eq!(
            val(&render(types::STREAM_NAMES, &one))["streams"],
            json!(["S"])
        );
    }

    #[test]
    fn msg_get_forms() {
        let q = |j: &str| serde_json::from_str::<MsgGetRequest>(j).unwrap().query();
        assert_eq!(q(r#"{"seq":2}"#).unwrap(), MsgGetQuery::Seq(2));
        assert_eq!(
            q(r#"{"last_by_subj":"a.b"}"#).unwrap(),
            MsgGetQuery::LastBySubject("a.b".into())
        );
        assert_eq!(
            q(r#"{"next_by_subj":"i.1","seq":3}"#).unwrap(),
            MsgGetQuery::NextBySubject {
                filter: "i.1".into(),
                from: 3
            }
        );
        assert_eq!(q("{}").unwrap_err().err_code, 10003);
        assert_eq!(
            q(r#"{"seq":5,"last_by_subj":"x"}"#).unwrap_err().err_code,
            10003
        );
    }

    #[test]
    fn stored_message_base64_matches_nats() {
        let m = StoredMessage {
            seq: 2,
            subject: "s.a".into(),
            headers: Some(Bytes::from_static(b"NATS/1.0\r\nFoo: bar\r\n\r\n")),
            payload: Bytes::from_static(b"hello"),
            time_ns: 1_795_569_699_392_938_343,
        };
        let body = MsgGetResponse {
            message: (&m).into(),
        };
        let v = val(&render(types::STREAM_MSG_GET, &body));
        assert_eq!(v["message"]["hdrs"], "TkFUUy8xLjANCkZvbzogYmFyDQoNCg==");
        assert_eq!(v["message"]["data"], "aGVsbG8=");
        assert_eq!(v["message"]["time"], "2026-11-25T01:21:39.392938343Z");
        assert_eq!(body.message.decode().unwrap(), m);
    }

    #[test]
    fn purge_request_validation() {
        let p: PurgeRequest = serde_json::from_str(r#"{"seq":2,"keep":1}"#).unwrap();
        assert_eq!(p.validate().unwrap_err().err_code, 10003);
        let p: PurgeRequest = serde_json::from_str(r#"{"filter":"a.*","keep":2}"#).unwrap();
        assert!(p.validate().is_ok());
    }

    #[test]
    fn account_info_has_fields_async_nats_requires() {
        let info = AccountInfo {
            memory: 0,
            storage: 0,
            reserved_memory: 0,
            reserved_storage: 0,
            streams: 0,
            consumers: 0,
            limits: AccountLimits::default(),
            domain: None,
            api: ApiStats {
                level: API_LEVEL,
                total: 0,
                errors: 0,
            },
        };
        let v = val(&render(types::ACCOUNT_INFO, &info));
        for k in [
            "memory",
            "storage",
            "reserved_memory",
            "reserved_storage",
            "streams",
            "consumers",
            "limits",
            "api",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["limits"]["max_streams"], -1);
    }
}
