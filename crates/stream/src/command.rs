//! What goes into the machine (commands, carried in the Raft log) and what
//! comes out (store operations and the reply).

use bytes::Bytes;
use jetraft_types::api::{PubAck, PurgeRequest};
use jetraft_types::config::StreamConfig;
use jetraft_types::consumer::{ConsumerAction, ConsumerConfig};
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
    /// Create or update a consumer (`CONSUMER.CREATE`): `config` is
    /// normalised and checked already; checked again against the stream at
    /// apply. An empty name gets a generated one.
    AddConsumer {
        config: Box<ConsumerConfig>,
        action: ConsumerAction,
    },
    DeleteConsumer {
        name: String,
    },
    /// Start the consumer over at stream sequence `seq` (None: just above
    /// its ack floor): nothing pending, nothing delivered below it.
    ResetConsumer {
        name: String,
        seq: Option<u64>,
    },
    /// Pause the consumer until `until` (Unix ns; None: resume now).
    PauseConsumer {
        name: String,
        until: Option<i64>,
    },
    /// Hand out up to `batch` messages of the consumer (`max_bytes` 0: no
    /// limit): the `redeliver` sequences still pending first, then new
    /// ones. Decided at apply from the replica's store.
    Deliver {
        consumer: String,
        batch: u32,
        max_bytes: u64,
        redeliver: Vec<u64>,
    },
    /// Acknowledgements, in order: (stream sequence, the delivery count
    /// its ack subject names, kind).
    Ack {
        consumer: String,
        acks: Vec<(u64, u64, crate::consumer::AckOp)>,
    },
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
    /// Store a consumer's state (created or changed by this entry).
    PutConsumer(Box<crate::consumer::Consumer>),
    DeleteConsumer {
        name: String,
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
    /// A consumer was created (`created`) or updated, under this name.
    Consumer {
        name: String,
        created: bool,
    },
    ConsumerDeleted,
    /// The consumer starts over at this stream sequence.
    ConsumerReset(u64),
    Delivered(Box<crate::consumer::Delivered>),
    /// Per acknowledgement: whether it may be confirmed (it retired the
    /// message's latest delivery).
    Acked(Vec<bool>),
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
