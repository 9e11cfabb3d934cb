//! openraft glue: many Raft groups per node over one shared store and one
//! gRPC connection per peer.
//!
//! * [`types`] — the openraft type configuration and the proposal/response enums.
//! * [`log_store`] — `RaftLogStorage` for one group over the shared engine.
//! * [`commit`] — group commit: one WAL fsync acknowledges many groups' appends.
//! * [`sm`] — the state machines (meta catalog, streams), snapshots as summaries
//!   and catch-up from peers' stores.
//! * [`network`] / [`service`] — the cluster protocol, client and server side.
//! * [`host`] — a node's set of groups.
//! * [`membership`] — changing a group's replica set without losing quorum.
//! * [`standing`] — the data directory's incarnation, and the gates that
//!   keep a node that lost its state out of every quorum until re-admitted.
//! * [`founding`] — founding the meta group only with every peer's word.
//! * [`marks`] — telling a data directory put back from an older copy.

pub mod codec;
pub mod commit;
pub mod founding;
pub mod host;
mod kv;
pub mod log_store;
pub mod marks;
pub mod membership;
pub mod network;
pub mod service;
pub mod sm;
pub mod standing;
pub mod types;

pub use commit::{Committer, SyncFor, SyncMode};
pub use host::{Group, Host, ProposeError, RaftTiming, StepDownError};
pub use membership::{Members, Reshape};
pub use network::{Connector, Peers};
pub use service::{ClusterService, ForwardHandler};
pub use standing::{NotCounted, Roster};
pub use types::{GroupId, NodeId, Request, Response};
