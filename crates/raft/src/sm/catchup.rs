//! Where a follower gets the messages a stream snapshot refers to.

use std::io;

use futures::future::BoxFuture;
use jetraft_types::StoredMessage;

use crate::types::{GroupId, NodeId};

/// Source of stored messages on other replicas (the gRPC `FetchMessages`
/// call in production; the same over simulated TCP under turmoil).
pub trait Catchup: Send + Sync + 'static {
    /// Messages of `group` with `from <= seq <= to` that `peer` stores,
    /// ascending, at most `limit` of them. Deleted sequences are simply
    /// absent. An error means the peer could not be asked; the caller tries
    /// another.
    fn fetch(
        &self,
        peer: NodeId,
        group: GroupId,
        from: u64,
        to: u64,
        limit: usize,
    ) -> BoxFuture<'static, io::Result<Vec<StoredMessage>>>;

    /// The sequences `peer` stores in `from..=to` (no payloads), ascending,
    /// at most `limit`.
    fn fetch_seqs(
        &self,
        peer: NodeId,
        group: GroupId,
        from: u64,
        to: u64,
        limit: usize,
    ) -> BoxFuture<'static, io::Result<Vec<u64>>>;
}
