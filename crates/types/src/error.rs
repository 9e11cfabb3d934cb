//! JetStream API errors with nats-server's `code`, `err_code` and exact
//! `description` (nats-server `server/errors.json`).
//!
//! Clients branch on `err_code` (async-nats maps 10059 to "stream not
//! found", 10071 to a failed compare-and-set, ...), so every constructor
//! here copies the number and text nats-server 2.15 sends, checked against
//! a running `nats-server` where the text is built at run time.

use serde::{Deserialize, Serialize};

/// The `"error"` object of a JetStream API response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{description} (code {code}, err_code {err_code})")]
pub struct ApiError {
    /// HTTP-like status: 400, 404, 409, 500, 503.
    pub code: u16,
    /// JetStream error code, stable across releases.
    pub err_code: u16,
    pub description: String,
}

impl ApiError {
    pub fn new(code: u16, err_code: u16, description: impl Into<String>) -> Self {
        Self {
            code,
            err_code,
            description: description.into(),
        }
    }

    /// 400/10003.
    pub fn bad_request() -> Self {
        Self::new(400, 10003, "bad request")
    }
    /// 503/10008: no meta leader, or the stream group is leaderless.
    pub fn cluster_not_avail() -> Self {
        Self::new(503, 10008, "JetStream system temporarily unavailable")
    }
    /// 500/10009: this node cannot answer (not the leader).
    pub fn cluster_not_leader() -> Self {
        Self::new(500, 10009, "JetStream cluster can not handle request")
    }
    /// 400/10005: fewer nodes than replicas asked for (nats-server's
    /// `JSClusterNoPeersErrF`, what 2.15.1 answers for R5 on three nodes).
    pub fn no_suitable_peers() -> Self {
        Self::new(400, 10005, "no suitable peers for placement")
    }
    /// 400/10025. `detail` is the parser's message.
    pub fn invalid_json(detail: impl std::fmt::Display) -> Self {
        Self::new(400, 10025, format!("invalid JSON: {detail}"))
    }
    /// 404/10037.
    pub fn no_message_found() -> Self {
        Self::new(404, 10037, "no message found")
    }
    /// 400/10038.
    pub fn not_empty_request() -> Self {
        Self::new(400, 10038, "expected an empty request payload")
    }
    /// 400/10043: message delete of a sequence inside the stream that is
    /// already gone.
    pub fn sequence_not_found(seq: u64) -> Self {
        Self::new(400, 10043, format!("sequence {seq} not found"))
    }
    /// 500/10049: stream create failed for another reason.
    pub fn stream_create(detail: impl std::fmt::Display) -> Self {
        Self::new(500, 10049, detail.to_string())
    }
    /// 500/10052: what nats-server returns for every invalid stream config
    /// (bad name, replicas > 5, bad subjects, forbidden update, ...).
    pub fn stream_config_invalid(detail: impl std::fmt::Display) -> Self {
        Self::new(500, 10052, detail.to_string())
    }
    /// 400/10054.
    pub fn message_exceeds_maximum() -> Self {
        Self::new(400, 10054, "message size exceeds maximum allowed")
    }
    /// 400/10056: name in the API subject differs from the body's name.
    pub fn stream_mismatch() -> Self {
        Self::new(400, 10056, "stream name in subject does not match request")
    }
    /// 500/10057: message delete failed (`"no message found"`,
    /// `"stream store EOF"`, `"message delete not permitted"`).
    pub fn msg_delete_failed(detail: impl std::fmt::Display) -> Self {
        Self::new(500, 10057, detail.to_string())
    }
    /// 400/10058.
    pub fn stream_name_in_use() -> Self {
        Self::new(
            400,
            10058,
            "stream name already in use with a different configuration",
        )
    }
    /// 404/10059.
    pub fn stream_not_found() -> Self {
        Self::new(404, 10059, "stream not found")
    }
    /// 400/10060: `Nats-Expected-Stream` mismatch.
    pub fn stream_not_match() -> Self {
        Self::new(400, 10060, "expected stream does not match")
    }
    /// 400/10065.
    pub fn subjects_overlap() -> Self {
        Self::new(400, 10065, "subjects overlap with an existing stream")
    }
    /// 400/10070: `Nats-Expected-Last-Msg-Id` mismatch; `last` is the
    /// stream's last message id (empty if it had none).
    pub fn stream_wrong_last_msg_id(last: &str) -> Self {
        Self::new(400, 10070, format!("wrong last msg ID: {last}"))
    }
    /// 400/10071: `Nats-Expected-Last-Sequence` or
    /// `Nats-Expected-Last-Subject-Sequence` mismatch; `seq` is the actual
    /// last sequence (of the stream or of the subject).
    pub fn stream_wrong_last_sequence(seq: u64) -> Self {
        Self::new(400, 10071, format!("wrong last sequence: {seq}"))
    }
    /// 503/10077 `"maximum messages exceeded"` (discard new).
    pub fn max_msgs_exceeded() -> Self {
        Self::stream_store_failed("maximum messages exceeded")
    }
    /// 503/10077 `"maximum bytes exceeded"` (discard new).
    pub fn max_bytes_exceeded() -> Self {
        Self::stream_store_failed("maximum bytes exceeded")
    }
    /// 503/10077 `"maximum messages per subject exceeded"`
    /// (`discard_new_per_subject`).
    pub fn max_msgs_per_subject_exceeded() -> Self {
        Self::stream_store_failed("maximum messages per subject exceeded")
    }
    /// 503/10077: the store refused the message.
    pub fn stream_store_failed(detail: impl std::fmt::Display) -> Self {
        Self::new(503, 10077, detail.to_string())
    }
    /// 400/10097.
    pub fn header_exceeds_maximum() -> Self {
        Self::new(400, 10097, "header size exceeds maximum allowed of 64k")
    }
    /// 400/10109: write, purge or delete on a sealed stream.
    pub fn stream_sealed() -> Self {
        Self::new(400, 10109, "invalid operation on sealed stream")
    }
    /// 500/10110, e.g. `"stream purge not permitted"` (`deny_purge`).
    pub fn purge_failed(detail: impl std::fmt::Display) -> Self {
        Self::new(500, 10110, detail.to_string())
    }
    /// 500/10111, e.g. `"rollup not permitted"` or
    /// `rollup value invalid: "x"`.
    pub fn rollup_failed(detail: impl std::fmt::Display) -> Self {
        Self::new(500, 10111, detail.to_string())
    }
    /// 400/10128.
    pub fn stream_name_contains_path_separators() -> Self {
        Self::new(400, 10128, "Stream name can not contain path separators")
    }
    /// 400/10133.
    pub fn replicas_negative() -> Self {
        Self::new(400, 10133, "replicas count cannot be negative")
    }
    /// 409/10158: the same `Nats-Msg-Id` is still being proposed.
    pub fn duplicate_message_conflict() -> Self {
        Self::new(409, 10158, "duplicate message id is in process")
    }
    /// 400/10166: `Nats-TTL` on a stream without `allow_msg_ttl`.
    pub fn message_ttl_disabled() -> Self {
        Self::new(400, 10166, "per-message TTL is disabled")
    }
    /// 400/10165.
    pub fn message_ttl_invalid() -> Self {
        Self::new(400, 10165, "invalid per-message TTL")
    }
    /// 400/10193: `Nats-Expected-Last-Subject-Sequence-Subject` without
    /// `Nats-Expected-Last-Subject-Sequence`.
    pub fn expected_last_seq_per_subject_invalid() -> Self {
        Self::new(
            400,
            10193,
            "missing sequence for expected last sequence per subject",
        )
    }
    /// 404/10014.
    pub fn consumer_not_found() -> Self {
        Self::new(404, 10014, "consumer not found")
    }
    /// 400/10148.
    pub fn consumer_already_exists() -> Self {
        Self::new(400, 10148, "consumer already exists")
    }
    /// 400/10149.
    pub fn consumer_does_not_exist() -> Self {
        Self::new(400, 10149, "consumer does not exist")
    }
    /// 503/10039.
    pub fn not_enabled_for_account() -> Self {
        Self::new(503, 10039, "JetStream not enabled for account")
    }
    /// 503/10076.
    pub fn not_enabled() -> Self {
        Self::new(503, 10076, "JetStream not enabled")
    }
    /// 400/10027.
    pub fn maximum_streams_limit() -> Self {
        Self::new(400, 10027, "maximum number of streams reached")
    }
    /// 412/10185.
    pub fn required_api_level() -> Self {
        Self::new(412, 10185, "JetStream minimum api level required")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_nats_server() {
        let json = serde_json::to_string(&ApiError::stream_not_found()).expect("serialize");
        assert_eq!(
            json,
            r#"{"code":404,"err_code":10059,"description":"stream not found"}"#
        );
        let back: ApiError = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, ApiError::stream_not_found());
    }

    #[test]
    fn formatted_descriptions() {
        assert_eq!(
            ApiError::stream_wrong_last_sequence(3).description,
            "wrong last sequence: 3"
        );
        assert_eq!(
            ApiError::stream_wrong_last_msg_id("").description,
            "wrong last msg ID: "
        );
        assert_eq!(
            ApiError::sequence_not_found(5).description,
            "sequence 5 not found"
        );
        let e = ApiError::max_msgs_exceeded();
        assert_eq!((e.code, e.err_code), (503, 10077));
    }
}
