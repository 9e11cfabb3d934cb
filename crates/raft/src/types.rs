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

/// jetraft's Raft types: u64 node ids, nodes addressed by their cluster
/// address, write answers as [`Callback`]s. (Written out rather than with
/// `declare_raft_types!`, which cannot take a generic responder.)
#[derive(Debug, Clone, Copy, Default, Eq, PartialEq, Ord, PartialOrd)]
pub struct TypeConfig {}

impl openraft::RaftTypeConfig for TypeConfig {
    type D = Request;
    type R = Response;
    type NodeId = NodeId;
    type Node = Member;
    type Term = u64;
    type LeaderId = openraft::impls::leader_id_adv::LeaderId<Self::Term, Self::NodeId>;
    type Vote = openraft::impls::Vote<Self::LeaderId>;
    type Payload = openraft::EntryPayload<Self::D, Self::NodeId, Self::Node>;
    type Entry =
        openraft::Entry<<Self::LeaderId as openraft::vote::RaftLeaderId>::Committed, Self::Payload>;
    type Responder<T>
        = Callback<T>
    where
        T: openraft::OptionalSend + 'static;
    type Batch<T>
        = openraft::impls::InlineBatch<T>
    where
        T: openraft::OptionalSend + 'static;
    type AsyncRuntime = Runtime;
    type ErrorSource = openraft::impls::BoxedErrorSource;
}

/// What a group's membership records for each node: its cluster address
/// and the incarnation of its data directory (created once with it; a node
/// that lost its disk comes back as a new incarnation, which the group
/// must re-admit before it counts: ARCHITECTURE decision 29). 0: unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub addr: String,
    pub incarnation: u64,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{:016x}", self.addr, self.incarnation)
    }
}

/// The answer to a write proposed with `client_write_ff`: a function run
/// where openraft completes the write, so the answer reaches its waiters
/// without a task of its own in between (a hop on every publish's path).
/// It must be quick and must not block.
pub struct Callback<T>(Box<dyn FnOnce(T) + Send>);

impl<T> Callback<T> {
    pub fn new(f: impl FnOnce(T) + Send + 'static) -> Self {
        Self(Box::new(f))
    }
}

impl<T: Send + 'static> openraft::raft::responder::Responder<TypeConfig, T> for Callback<T> {
    fn on_complete(self, result: T) {
        (self.0)(result);
    }
}

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
pub type Membership = openraft::Membership<NodeId, Member>;

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
