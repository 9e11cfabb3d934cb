//! An [`Engine`] wrapper that fails on command: its Nth sync (or write)
//! from now returns an I/O error, like a disk whose `fsync` reports EIO.
//! Tests and the simulation wrap any engine in it (RocksDB in
//! `jetraft server` under the test-only `JETRAFT_FAIL_SYNC_AFTER`).
//!
//! Each armed fault fires once and then disarms: a later call reaches the
//! engine again and may succeed, which is exactly what makes carrying on
//! after a failed fsync dangerous on Linux (the failed pages are gone, the
//! next fsync reports success). [`crate::failstop::FailStop`] is what
//! makes the node stop instead.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::{Engine, View, WriteBatch};

#[derive(Debug, Default)]
struct Plan {
    /// Fail the sync that makes `syncs` reach this number.
    fail_sync_at: Option<u64>,
    fail_write_at: Option<u64>,
    syncs: u64,
    writes: u64,
    /// Faults that fired so far.
    fired: u64,
}

/// Wraps an engine; clones share the wrapped engine and the plan.
#[derive(Clone)]
pub struct FaultyEngine {
    inner: Arc<dyn Engine>,
    plan: Arc<Mutex<Plan>>,
}

impl FaultyEngine {
    pub fn new(inner: Arc<dyn Engine>) -> Self {
        Self {
            inner,
            plan: Arc::new(Mutex::new(Plan::default())),
        }
    }

    fn plan(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next `ok` syncs succeed, the one after fails (0: the next one).
    pub fn fail_sync_after(&self, ok: u64) {
        let mut p = self.plan();
        p.fail_sync_at = Some(p.syncs + ok + 1);
    }

    /// The next `ok` writes succeed, the one after fails (and writes
    /// nothing).
    pub fn fail_write_after(&self, ok: u64) {
        let mut p = self.plan();
        p.fail_write_at = Some(p.writes + ok + 1);
    }

    /// Disarms every fault not fired yet.
    pub fn disarm(&self) {
        let mut p = self.plan();
        p.fail_sync_at = None;
        p.fail_write_at = None;
    }

    /// Whether a fault is armed and has not fired yet.
    pub fn armed(&self) -> bool {
        let p = self.plan();
        p.fail_sync_at.is_some() || p.fail_write_at.is_some()
    }

    /// Syncs asked of this engine so far (the failed ones included).
    pub fn syncs(&self) -> u64 {
        self.plan().syncs
    }

    /// How many injected faults have fired.
    pub fn fired(&self) -> u64 {
        self.plan().fired
    }
}

fn injected(what: &str, n: u64) -> io::Error {
    io::Error::other(format!("injected {what} failure (call {n}, FaultyEngine)"))
}

impl Engine for FaultyEngine {
    fn write(&self, batch: WriteBatch) -> io::Result<()> {
        {
            let mut p = self.plan();
            p.writes += 1;
            if p.fail_write_at == Some(p.writes) {
                p.fail_write_at = None;
                p.fired += 1;
                return Err(injected("write", p.writes));
            }
        }
        self.inner.write(batch)
    }

    fn sync(&self) -> io::Result<()> {
        {
            let mut p = self.plan();
            p.syncs += 1;
            if p.fail_sync_at == Some(p.syncs) {
                p.fail_sync_at = None;
                p.fired += 1;
                return Err(injected("fsync", p.syncs));
            }
        }
        self.inner.sync()
    }

    fn frozen(&self) -> io::Result<Arc<dyn View>> {
        self.inner.frozen()
    }

    fn sequence(&self) -> u64 {
        self.inner.sequence()
    }
}

crate::view_through!(FaultyEngine, inner);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Cf;
    use crate::mem::MemEngine;

    #[test]
    fn the_nth_sync_fails_once() {
        let mem = MemEngine::new();
        let e = FaultyEngine::new(Arc::new(mem.clone()));
        e.fail_sync_after(2);
        assert!(e.armed());
        assert!(e.sync().is_ok() && e.sync().is_ok());
        let mut b = WriteBatch::new();
        b.put(Cf::State, b"k".to_vec(), b"v".to_vec());
        e.write(b).unwrap();
        assert!(e.sync().is_err());
        assert_eq!(
            mem.unsynced_batches(),
            1,
            "the failed sync made nothing durable"
        );
        assert!(!e.armed() && e.fired() == 1);
        assert!(e.sync().is_ok(), "fires once, like EIO on Linux");
        assert_eq!(mem.unsynced_batches(), 0);
    }

    #[test]
    fn the_nth_write_fails_and_writes_nothing() {
        let mem = MemEngine::new();
        let e = FaultyEngine::new(Arc::new(mem.clone()));
        e.fail_write_after(0);
        let mut b = WriteBatch::new();
        b.put(Cf::State, b"k".to_vec(), b"v".to_vec());
        assert!(e.write(b.clone()).is_err());
        assert_eq!(mem.get(Cf::State, b"k").unwrap(), None);
        e.write(b).unwrap();
        assert!(mem.get(Cf::State, b"k").unwrap().is_some());
    }
}
