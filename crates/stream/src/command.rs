//! What goes into the machine (commands, carried in the Raft log) and what
//! comes out (store operations and the reply).

use bytes::Bytes;
use jetraft_types::api::{PubAck, PurgeRequest};
use jetraft_types::config::StreamConfig;
use jetraft_types::{ApiError, StoredMessage};
use serde::{Deserialize, Serialize};

/// One entry of a stream's Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamCommand {
    /// A client publish to one of the stream's subjects. `headers` is the
    /// raw `NATS/1.0` block.
    Publish {
        subject: String,
        headers: Option<Bytes>,
        payload: Bytes,
    },
    Purge(PurgeRequest),
    DeleteMsg {
        seq: u64,
        no_erase: bool,
    },
    /// A new config; re-checked against the current one at apply.
    UpdateConfig(Box<StreamConfig>),
    /// Enforce `max_age` and expire dedup entries at the proposal time. The
    /// leader proposes this periodically; it is also done on every publish.
    Expire,
}

impl StreamCommand {
    /// Subject, header and payload bytes of a publish; `None` for the other
    /// commands (small, fixed-size).
    pub fn message_bytes(&self) -> Option<usize> {
        match self {
            StreamCommand::Publish {
                subject,
                headers,
                payload,
            } => Some(subject.len() + headers.as_ref().map_or(0, |h| h.len()) + payload.len()),
            _ => None,
        }
    }
}

/// A remembered `Nats-Msg-Id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupEntry {
    pub id: String,
    /// Sequence the original message was stored at.
    pub seq: u64,
    /// Proposal time of the original, Unix ns.
    pub time_ns: i64,
}

/// A write for the lead to apply to the store, in order, after `apply`
/// returns (atomically with the new summary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreOp {
    /// Store the message and its subject-index entry.
    PutMessage(StoredMessage),
    /// Remove the message and its subject-index entry.
    DeleteMessage {
        seq: u64,
        subject: String,
    },
    /// Remove every message and subject-index entry of the stream.
    PurgeAll,
    PutDedup(DedupEntry),
    DeleteDedup {
        id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamReply {
    PubAck(PubAck),
    /// Number of messages purged.
    Purged(u64),
    Deleted,
    ConfigUpdated,
    /// Number of messages removed by `max_age`.
    Expired(u64),
    /// The command was refused; nothing but dedup-window expiry changed.
    Error(ApiError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub ops: Vec<StoreOp>,
    pub reply: StreamReply,
}

/// What applying several commands of one Raft entry produced: the store ops
/// of all of them, in order, and one reply per command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedBatch {
    pub ops: Vec<StoreOp>,
    pub replies: Vec<StreamReply>,
}
