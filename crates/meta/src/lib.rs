//! The meta group's state machine: the catalog of streams and where their
//! replicas live.
//!
//! Sans-IO and deterministic: [`Catalog::apply`] is a pure function of the
//! catalog and the command, so every replica of the meta group computes the
//! same placement. Nodes never delete a stream from the catalog because of a
//! local doubt: only an applied `DeleteStream` removes one.

mod catalog;
mod placement;

pub use catalog::{Catalog, MetaCommand, MetaReply, StreamAssignment};
pub use placement::{place, replace};

/// Raft group id of the meta group. Stream groups are numbered from 1.
pub const META_GROUP: u64 = 0;
