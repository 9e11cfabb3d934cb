//! Publishing: the checks nats-server runs on a clustered publish, in its
//! order (`processClusteredInboundMsg` → `checkMsgHeadersPreClusteredProposal`
//! → `processJetStreamMsg`), then storing and limit enforcement.

use bytes::Bytes;
use jetraft_types::api::PubAck;
use jetraft_types::headers::{self as h, get_header};
use jetraft_types::{ApiError, StoredMessage};

use crate::command::StreamReply;
use crate::machine::StreamMachine;
use crate::overlay::Overlay;
use crate::reader::ReadError;
use crate::{MAX_HEADER_LEN, stored_size};

const NATS_TTL: &str = "Nats-TTL";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rollup {
    None,
    Subject,
    All,
}

fn header<'a>(hdr: Option<&'a Bytes>, name: &str) -> Option<&'a str> {
    let v = get_header(hdr?, name)?;
    std::str::from_utf8(v).ok()
}

/// nats-server parses expected sequences with `parseInt64`, and a value it
/// cannot parse becomes -1, i.e. `u64::MAX`, which never matches.
fn parse_seq(v: &str) -> u64 {
    v.trim().parse::<u64>().unwrap_or(u64::MAX)
}

impl StreamMachine {
    pub(crate) fn publish(
        &mut self,
        ov: &mut Overlay<'_>,
        subj: &str,
        hdr: Option<&Bytes>,
        payload: &Bytes,
    ) -> Result<StreamReply, ReadError> {
        let hdr = hdr.filter(|h| !h.is_empty());
        let (rollup, msg_id) = match self.check_publish(ov, subj, hdr, payload)? {
            Ok(Checked::Duplicate(seq)) => {
                return Ok(StreamReply::PubAck(PubAck {
                    stream: self.s.config.name.clone(),
                    seq,
                    domain: None,
                    duplicate: true,
                }));
            }
            Ok(Checked::Store { rollup, msg_id }) => (rollup, msg_id),
            Err(e) => return Ok(Self::refuse(e)),
        };
        let seq = self.s.last_seq + 1;
        let msg = StoredMessage {
            seq,
            subject: subj.to_string(),
            headers: hdr.cloned(),
            payload: payload.clone(),
            time_ns: self.now(),
        };
        self.account_put(ov, msg)?;
        self.s.last_msg_id = msg_id.clone().unwrap_or_default();
        if let Some(id) = msg_id {
            self.remember_msg_id(ov, &id, seq);
        }
        self.enforce_per_subject(ov, subj)?;
        match rollup {
            Rollup::Subject => {
                for old in ov.subject_seqs(subj, usize::MAX)? {
                    if old < seq {
                        self.remove(ov, old)?;
                    }
                }
            }
            Rollup::All => {
                self.remove_below(ov, seq)?;
            }
            Rollup::None => {}
        }
        self.enforce_msgs_and_bytes(ov)?;
        self.expire_max_age(ov)?;
        // Interest retention keeps a message only while a consumer wants it.
        if self.s.config.retention == jetraft_types::config::RetentionPolicy::Interest
            && !self.consumers.values().any(|c| c.config.wants(subj))
        {
            self.remove(ov, seq)?;
        }
        Ok(StreamReply::PubAck(PubAck {
            stream: self.s.config.name.clone(),
            seq,
            domain: None,
            duplicate: false,
        }))
    }

    fn check_publish(
        &self,
        ov: &Overlay<'_>,
        subj: &str,
        hdr: Option<&Bytes>,
        payload: &Bytes,
    ) -> Result<Result<Checked, ApiError>, ReadError> {
        let cfg = &self.s.config;
        if cfg.sealed {
            return Ok(Err(ApiError::stream_sealed()));
        }
        let hdr_len = hdr.map_or(0, |h| h.len()) as i64;
        let max = cfg.max_msg_size;
        if max >= 0 && (hdr_len > max || payload.len() as i64 > max - hdr_len) {
            return Ok(Err(ApiError::message_exceeds_maximum()));
        }
        if hdr_len as usize > MAX_HEADER_LEN {
            return Ok(Err(ApiError::header_exceeds_maximum()));
        }
        if let Some(name) = header(hdr, h::NATS_EXPECTED_STREAM)
            && !name.is_empty()
            && name != cfg.name
        {
            return Ok(Err(ApiError::stream_not_match()));
        }
        if let Some(ttl) = header(hdr, NATS_TTL)
            && !ttl.is_empty()
            && !cfg.allow_msg_ttl
        {
            return Ok(Err(ApiError::message_ttl_disabled()));
        }
        let msg_id = header(hdr, h::NATS_MSG_ID).filter(|v| !v.is_empty());
        if let Some(seq) = msg_id.and_then(|id| self.lookup_msg_id(id)) {
            return Ok(Ok(Checked::Duplicate(seq)));
        }
        if let Some(v) = header(hdr, h::NATS_EXPECTED_LAST_SEQUENCE)
            && !v.is_empty()
            && parse_seq(v) != self.s.last_seq
        {
            return Ok(Err(ApiError::stream_wrong_last_sequence(self.s.last_seq)));
        }
        let subj_override =
            header(hdr, h::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT).filter(|v| !v.is_empty());
        match header(hdr, h::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE).filter(|v| !v.is_empty()) {
            Some(v) => {
                let on = subj_override.unwrap_or(subj);
                let actual = ov.last_seq_matching(on)?.unwrap_or(0);
                let bug = jetraft_types::bugs::enabled(jetraft_types::bugs::Bug::SkipCasCheck);
                if parse_seq(v) != actual && !bug {
                    return Ok(Err(ApiError::stream_wrong_last_sequence(actual)));
                }
            }
            None if subj_override.is_some() => {
                return Ok(Err(ApiError::expected_last_seq_per_subject_invalid()));
            }
            None => {}
        }
        let rollup = match header(hdr, h::NATS_ROLLUP).filter(|v| !v.is_empty()) {
            None => Rollup::None,
            Some(_) if !cfg.allow_rollup_hdrs || cfg.deny_purge => {
                return Ok(Err(ApiError::rollup_failed("rollup not permitted")));
            }
            Some(h::ROLLUP_SUBJECT) => Rollup::Subject,
            Some(h::ROLLUP_ALL) => Rollup::All,
            Some(other) => {
                return Ok(Err(ApiError::rollup_failed(format!(
                    "rollup value invalid: {other:?}"
                ))));
            }
        };
        let size = stored_size(cfg.storage, subj, hdr_len as usize, payload.len());
        if let Err(e) = self.check_discard_new(ov, subj, size, rollup != Rollup::None)? {
            return Ok(Err(e));
        }
        if let Some(v) = header(hdr, h::NATS_EXPECTED_LAST_MSG_ID)
            && !v.is_empty()
            && v != self.s.last_msg_id
        {
            return Ok(Err(ApiError::stream_wrong_last_msg_id(&self.s.last_msg_id)));
        }
        Ok(Ok(Checked::Store {
            rollup,
            msg_id: msg_id.map(str::to_string),
        }))
    }

    /// `discard: new` as the file store enforces it: per-subject first
    /// (a message that will push out the subject's oldest does not count
    /// against `max_msgs`), then messages, then bytes.
    fn check_discard_new(
        &self,
        ov: &Overlay<'_>,
        subj: &str,
        size: u64,
        is_rollup: bool,
    ) -> Result<Result<(), ApiError>, ReadError> {
        use jetraft_types::config::DiscardPolicy;
        let cfg = &self.s.config;
        if cfg.discard != DiscardPolicy::New {
            return Ok(Ok(()));
        }
        let mut replaces_oldest = None;
        if cfg.max_msgs_per_subject > 0 && !subj.is_empty() {
            let max_per = cfg.max_msgs_per_subject as u64;
            let limit = usize::try_from(max_per).unwrap_or(usize::MAX);
            let seqs = ov.subject_seqs(subj, limit)?;
            if seqs.len() as u64 >= max_per {
                if cfg.discard_new_per_subject && !is_rollup {
                    return Ok(Err(ApiError::max_msgs_per_subject_exceeded()));
                }
                replaces_oldest = seqs.first().copied();
            }
        }
        if cfg.max_msgs > 0 && self.s.messages >= cfg.max_msgs as u64 && replaces_oldest.is_none() {
            return Ok(Err(ApiError::max_msgs_exceeded()));
        }
        if cfg.max_bytes > 0 && self.s.bytes + size > cfg.max_bytes as u64 {
            let freed = match replaces_oldest {
                Some(seq) => ov.message(seq)?.map_or(0, |m| self.size_of(&m)),
                None => 0,
            };
            if replaces_oldest.is_none() || freed < size {
                return Ok(Err(ApiError::max_bytes_exceeded()));
            }
        }
        Ok(Ok(()))
    }
}

enum Checked {
    Duplicate(u64),
    Store {
        rollup: Rollup,
        msg_id: Option<String>,
    },
}
