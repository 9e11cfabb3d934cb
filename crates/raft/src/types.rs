//! The openraft type configuration shared by every group on a node.
//!
//! One configuration serves the meta group and all stream groups: the
//! request is an enum, and each group's state machine accepts only its kind.

use std::fmt;

use jetraft_meta::{MetaCommand, MetaReply};
use jetraft_stream::{StreamCommand, StreamReply};
use serde::{Deserialize, Serialize};

pub type NodeId = u64;
pub type GroupId = u64;

openraft::declare_raft_types!(
    /// jetraft's Raft types: u64 node ids, nodes addressed by their cluster address.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        AsyncRuntime = Runtime,
);

/// Tokio with openraft's task-local seeded RNG: every group's randomness
/// derives from the seed it was started with ([`crate::Host`]), which the
/// simulation takes from the run's seed.
pub type Runtime = openraft_rt::deterministic_rng::DeterministicRng<openraft::TokioRuntime>;

pub type Raft<SM> = openraft::Raft<TypeConfig, SM>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;

/// A proposal. The leader stamps `now_ns` from its injected clock; replicas
/// never read their own clock while applying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Meta(Box<MetaCommand>),
    /// One stream command: what logs written before batching hold (still
    /// applied when replayed); new proposals are [`Request::StreamBatch`].
    Stream {
        cmd: StreamCommand,
        now_ns: i64,
    },
    /// Commands proposed together (publishes that arrived while earlier
    /// proposals were in flight), applied in order at one time.
    StreamBatch {
        cmds: Vec<StreamCommand>,
        now_ns: i64,
    },
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Meta(c) => write!(f, "meta:{c:?}"),
            Request::Stream { now_ns, .. } => write!(f, "stream@{now_ns}"),
            Request::StreamBatch { cmds, now_ns } => {
                write!(f, "stream@{now_ns} x{}", cmds.len())
            }
        }
    }
}

/// What applying a [`Request`] produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Blank and membership entries.
    None,
    Meta(Box<MetaReply>),
    Stream(StreamReply),
    /// One reply per command of a [`Request::StreamBatch`], in order.
    StreamBatch(Vec<StreamReply>),
    /// The request reached a group of the other kind (a routing bug).
    WrongGroup,
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}
