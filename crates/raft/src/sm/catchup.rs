//! Where a follower gets the messages a stream snapshot refers to, and the
//! serving side's frozen views.
//!
//! A stream snapshot is a state summary at some log index I. The messages
//! it counts live in the peers' stores, which keep changing after I (limits
//! and deletes remove messages). So a follower does not copy a peer's live
//! store: it asks a peer that has applied at least I to *freeze* its
//! replica ([`Catchup::begin`]): the peer takes, under its state machine
//! lock, its applied index J, its state there, and a frozen view of its
//! store ([`jetraft_store::Engine::frozen`]). Every page the follower then
//! fetches comes from that view, so it ends up with an exact copy of the
//! replica at J, and skips the entries up to J when Raft hands them to it.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use jetraft_store::View;
use jetraft_types::StoredMessage;
use tokio::time::Instant;

use crate::types::{GroupId, NodeId};

/// Where a fetch reads: `peer`'s replica of `group`, frozen as session
/// `session` ([`Catchup::begin`]), or its live store for session 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub peer: NodeId,
    pub group: GroupId,
    pub session: u64,
}

impl Source {
    /// The peer's live store (the scrubber's repairs: a message record
    /// never changes once written, so any replica's copy will do).
    pub fn live(peer: NodeId, group: GroupId) -> Self {
        Self {
            peer,
            group,
            session: 0,
        }
    }
}

/// A peer's replica frozen for copying.
#[derive(Debug, Clone)]
pub struct Frozen {
    pub at: Source,
    /// The log index the peer had applied when it froze.
    pub applied: u64,
    /// The stream's state at that index (summary and dedup window, encoded).
    pub state: Vec<u8>,
}

/// Source of stored messages on other replicas (the gRPC catch-up calls in
/// production; the same over simulated TCP under turmoil).
pub trait Catchup: Send + Sync + 'static {
    /// Asks `peer` to freeze its replica of `group`. Fails if the peer does
    /// not host the group or is itself catching up.
    fn begin(&self, peer: NodeId, group: GroupId) -> BoxFuture<'static, io::Result<Frozen>>;

    /// Messages with `from <= seq <= to` stored at `at`, ascending, at most
    /// `limit` of them. Deleted sequences are simply absent. An error means
    /// the peer could not be asked (or forgot the session); the caller
    /// tries another.
    fn fetch(
        &self,
        at: Source,
        from: u64,
        to: u64,
        limit: usize,
    ) -> BoxFuture<'static, io::Result<Vec<StoredMessage>>>;

    /// The sequences stored at `at` in `from..=to` (no payloads),
    /// ascending, at most `limit`.
    fn fetch_seqs(
        &self,
        at: Source,
        from: u64,
        to: u64,
        limit: usize,
    ) -> BoxFuture<'static, io::Result<Vec<u64>>>;

    /// Releases a frozen view (best effort: the peer also evicts old ones).
    fn end(&self, at: Source) -> BoxFuture<'static, ()>;
}

/// Frozen views a node keeps open for followers copying from it, per
/// group. A view pins what it can see (RocksDB keeps deleted data for it),
/// so a follower that vanishes mid-copy must not keep one forever: a view
/// unused for [`Sessions::IDLE`] is dropped, and at most
/// [`Sessions::PER_GROUP`] exist per group (the oldest goes first).
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<SessionsInner>,
}

#[derive(Default)]
struct SessionsInner {
    next: u64,
    open: BTreeMap<(GroupId, u64), Session>,
}

struct Session {
    view: Arc<dyn View>,
    used: Instant,
}

impl SessionsInner {
    fn expire(&mut self, now: Instant) {
        self.open
            .retain(|_, s| now.saturating_duration_since(s.used) < Sessions::IDLE);
    }
}

impl Sessions {
    /// One per follower of an R5 stream copying at once.
    pub const PER_GROUP: usize = 4;
    /// A follower asks for a page at least every few seconds while it
    /// copies (each fetch has a 30 s deadline).
    pub const IDLE: Duration = Duration::from_secs(60);

    fn lock(&self) -> MutexGuard<'_, SessionsInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `view` of `group` and returns its session number (never 0).
    pub fn open(&self, group: GroupId, view: Arc<dyn View>) -> u64 {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.expire(now);
        inner.next += 1;
        let session = inner.next;
        inner
            .open
            .insert((group, session), Session { view, used: now });
        let of_group: Vec<(GroupId, u64)> = inner
            .open
            .range((group, 0)..=(group, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for old in of_group
            .iter()
            .take(of_group.len().saturating_sub(Self::PER_GROUP))
        {
            inner.open.remove(old);
        }
        session
    }

    pub fn get(&self, group: GroupId, session: u64) -> Option<Arc<dyn View>> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.expire(now);
        let s = inner.open.get_mut(&(group, session))?;
        s.used = now;
        Some(s.view.clone())
    }

    pub fn close(&self, group: GroupId, session: u64) {
        self.lock().open.remove(&(group, session));
    }

    /// Drops every view of `group` (it stopped here).
    pub fn close_group(&self, group: GroupId) {
        self.lock().open.retain(|(g, _), _| *g != group);
    }

    /// Drops the views nobody used for [`Self::IDLE`].
    pub fn expire_idle(&self) {
        self.expire_at(Instant::now());
    }

    fn expire_at(&self, now: Instant) {
        self.lock().expire(now);
    }

    /// How many views are open (all groups).
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jetraft_store::Engine;
    use jetraft_store::mem::MemEngine;

    #[test]
    fn sessions_evict_the_oldest_view_of_a_group() {
        let engine = MemEngine::new();
        let s = Sessions::default();
        let other = s.open(8, engine.frozen().unwrap());
        let first: Vec<u64> = (0..Sessions::PER_GROUP)
            .map(|_| s.open(7, engine.frozen().unwrap()))
            .collect();
        assert!(first.iter().all(|n| *n != 0 && s.get(7, *n).is_some()));
        let newest = s.open(7, engine.frozen().unwrap());
        assert!(
            s.get(7, first[0]).is_none(),
            "oldest view of group 7 evicted"
        );
        assert!(first[1..].iter().all(|n| s.get(7, *n).is_some()));
        assert!(s.get(7, newest).is_some());
        assert!(s.get(8, other).is_some(), "other groups untouched");
        s.close(7, newest);
        assert!(s.get(7, newest).is_none());
        assert_eq!(s.len(), Sessions::PER_GROUP);
        s.close_group(7);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn sessions_nobody_uses_expire() {
        let engine = MemEngine::new();
        let s = Sessions::default();
        let opened = Instant::now();
        let a = s.open(1, engine.frozen().unwrap());
        let b = s.open(2, engine.frozen().unwrap());
        s.expire_at(opened + Sessions::IDLE / 2);
        assert_eq!(s.len(), 2, "views in their idle allowance stay");
        assert!(s.get(1, a).is_some());
        s.expire_at(Instant::now() + Sessions::IDLE);
        assert!(
            s.get(1, a).is_none() && s.get(2, b).is_none(),
            "abandoned views go"
        );
        assert!(s.is_empty());
    }
}
