//! Test harness: a machine plus the in-memory store its ops are applied to,
//! with the summary checked against the store after every command.
#![allow(dead_code, clippy::unwrap_used)]

use bytes::Bytes;
use jetraft_stream::testing::MemReader;
use jetraft_stream::{StreamCommand, StreamMachine, StreamReply, stored_size};
use jetraft_types::api::PurgeRequest;
use jetraft_types::config::{StreamConfig, StreamState};

pub const SEC: i64 = 1_000_000_000;
/// An arbitrary realistic start time (2026-11-25T01:21:39Z).
pub const T0: i64 = 1_795_569_699 * SEC;

pub struct Harness {
    pub m: StreamMachine,
    pub store: MemReader,
    pub now: i64,
}

impl Harness {
    pub fn new(config_json: &str) -> Self {
        let cfg: StreamConfig = serde_json::from_str(config_json).unwrap();
        Self {
            m: StreamMachine::new(cfg.normalize().unwrap()),
            store: MemReader::new(),
            now: T0,
        }
    }

    pub fn apply(&mut self, cmd: StreamCommand) -> StreamReply {
        // Every command must survive the Raft log's encoding.
        let wire = serde_json::to_string(&cmd).unwrap();
        let cmd: StreamCommand = serde_json::from_str(&wire).unwrap();
        let applied = self.m.apply(&cmd, self.now, &self.store).unwrap();
        self.store.apply_ops(&applied.ops);
        self.check_invariants();
        applied.reply
    }

    pub fn publish(&mut self, subject: &str, payload: &str) -> StreamReply {
        self.apply(StreamCommand::Publish {
            subject: subject.into(),
            headers: None,
            payload: Bytes::copy_from_slice(payload.as_bytes()),
        })
    }

    pub fn publish_h(
        &mut self,
        subject: &str,
        headers: &[(&str, &str)],
        payload: &str,
    ) -> StreamReply {
        self.apply(StreamCommand::Publish {
            subject: subject.into(),
            headers: Some(header_block(headers)),
            payload: Bytes::copy_from_slice(payload.as_bytes()),
        })
    }

    pub fn purge(&mut self, json: &str) -> StreamReply {
        let req: PurgeRequest = serde_json::from_str(json).unwrap();
        self.apply(StreamCommand::Purge(req))
    }

    pub fn delete(&mut self, seq: u64) -> StreamReply {
        self.apply(StreamCommand::DeleteMsg {
            seq,
            no_erase: false,
        })
    }

    pub fn update(&mut self, config_json: &str) -> StreamReply {
        let cfg: StreamConfig = serde_json::from_str(config_json).unwrap();
        self.apply(StreamCommand::UpdateConfig(Box::new(cfg)))
    }

    pub fn state(&self) -> StreamState {
        self.m.state(0)
    }

    pub fn advance(&mut self, ns: i64) {
        self.now += ns;
    }

    /// The summary must describe exactly what the store holds.
    pub fn check_invariants(&self) {
        let s = self.m.summary();
        let st = &self.store;
        assert_eq!(s.messages, st.messages.len() as u64, "messages");
        let bytes: u64 = st
            .messages
            .values()
            .map(|m| {
                stored_size(
                    s.config.storage,
                    &m.subject,
                    m.headers.as_ref().map_or(0, |h| h.len()),
                    m.payload.len(),
                )
            })
            .sum();
        assert_eq!(s.bytes, bytes, "bytes");
        assert_eq!(s.num_subjects, st.by_subject.len() as u64, "num_subjects");
        match st.messages.first_key_value() {
            Some((first, m)) => {
                assert_eq!(s.first_seq, *first, "first_seq");
                assert_eq!(s.first_ts_ns, m.time_ns, "first_ts");
                assert!(s.last_seq >= *st.messages.last_key_value().unwrap().0);
            }
            None => {
                assert_eq!(s.first_ts_ns, 0);
                if s.last_seq > 0 {
                    assert_eq!(s.first_seq, s.last_seq + 1, "empty stream first_seq");
                }
            }
        }
        let mut dedup = self.m.dedup_entries();
        dedup.sort_by(|a, b| a.id.cmp(&b.id));
        let stored: Vec<_> = st.dedup.values().cloned().collect();
        assert_eq!(dedup, stored, "dedup entries");
    }
}

pub fn header_block(headers: &[(&str, &str)]) -> Bytes {
    let mut s = String::from("NATS/1.0\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    Bytes::from(s)
}

pub fn ack(r: &StreamReply) -> u64 {
    match r {
        StreamReply::PubAck(a) if !a.duplicate => a.seq,
        other => panic!("expected a PubAck, got {other:?}"),
    }
}

pub fn dup(r: &StreamReply) -> u64 {
    match r {
        StreamReply::PubAck(a) if a.duplicate => a.seq,
        other => panic!("expected a duplicate PubAck, got {other:?}"),
    }
}

/// `(code, err_code, description)` of a refusal.
pub fn err(r: &StreamReply) -> (u16, u16, String) {
    match r {
        StreamReply::Error(e) => (e.code, e.err_code, e.description.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

pub fn purged(r: &StreamReply) -> u64 {
    match r {
        StreamReply::Purged(n) => *n,
        other => panic!("expected Purged, got {other:?}"),
    }
}
