//! An in-memory [`Engine`] that models durability, for tests and the
//! deterministic simulation.
//!
//! It keeps two images of the store: what readers see, and what would
//! survive a power loss. `write` changes the visible image and queues the
//! batch; `sync` applies the queue to the durable image; [`MemEngine::crash`]
//! throws the queue away and resets the visible image to the durable one.
//! Queued batches are kept whole, so a crash never tears a batch — the same
//! guarantee RocksDB's WAL gives. [`MemEngine::crash_keeping`] models the
//! real-disk case where some unsynced writes happened to reach the platter:
//! a prefix of the queue (the WAL is sequential) survives.
//!
//! No threads, no clocks, `BTreeMap` only: the same calls give the same
//! state, byte for byte.

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::{Cf, Dir, Engine, Op, View, WriteBatch};

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// One full image of the store: a table per column family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Image {
    tables: BTreeMap<Cf, Table>,
}

impl Image {
    fn table(&self, cf: Cf) -> Option<&Table> {
        self.tables.get(&cf)
    }

    fn table_mut(&mut self, cf: Cf) -> &mut Table {
        self.tables.entry(cf).or_default()
    }

    fn value_mut(&mut self, cf: Cf, key: &[u8]) -> Option<&mut Vec<u8>> {
        self.tables.get_mut(&cf)?.get_mut(key)
    }

    fn apply(&mut self, batch: &WriteBatch) {
        for op in &batch.ops {
            match op {
                Op::Put { cf, key, value } => {
                    self.table_mut(*cf).insert(key.clone(), value.clone());
                }
                Op::Delete { cf, key } => {
                    self.table_mut(*cf).remove(key);
                }
                Op::DeleteRange { cf, from, to } => {
                    let table = self.table_mut(*cf);
                    let doomed: Vec<Vec<u8>> = table
                        .range::<[u8], _>((
                            Bound::Included(from.as_slice()),
                            Bound::Excluded(to.as_slice()),
                        ))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        table.remove(&k);
                    }
                }
            }
        }
    }
}

/// Injected I/O failures: while set, the call fails and changes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    pub fail_writes: bool,
    pub fail_syncs: bool,
}

#[derive(Debug, Default)]
struct Inner {
    visible: Image,
    durable: Image,
    /// Batches written since the last sync, oldest first.
    unsynced: Vec<WriteBatch>,
    faults: Faults,
    syncs: u64,
    crashes: u64,
    /// Batches in the durable image ([`Engine::sequence`] adds the
    /// unsynced ones).
    durable_batches: u64,
    /// Keeps no durable image: what is written is all there is, and the
    /// process's end is its end ([`MemEngine::volatile`]).
    volatile: bool,
}

/// A [`MemEngine`]'s disk as it was at [`MemEngine::backup`].
#[derive(Debug, Clone)]
pub struct MemBackup {
    image: Image,
    batches: u64,
}

/// In-memory engine. Clones share one store, so a simulated host keeps its
/// "disk" across a simulated process restart by holding a clone.
#[derive(Debug, Clone, Default)]
pub struct MemEngine {
    inner: Arc<Mutex<Inner>>,
}

impl MemEngine {
    pub fn new() -> Self {
        Self::default()
    }

    /// The store of `storage: "memory"` streams: writes are visible at
    /// once, `sync` has nothing to do, and no second (durable) image is
    /// kept, so a message costs its bytes once. Gone with the process.
    pub fn volatile() -> Self {
        let engine = Self::default();
        engine.lock().volatile = true;
        engine
    }

    /// A panic while holding the lock cannot leave `Inner` half-updated
    /// (every mutation is a single assignment after validation), so a
    /// poisoned lock is still safe to use.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Power loss: every write not covered by a completed `sync` is gone.
    pub fn crash(&self) {
        self.crash_keeping(0);
    }

    /// Power loss where the first `keep` unsynced batches (in write order)
    /// had reached the disk anyway and survive; the rest are lost. `keep`
    /// larger than [`Self::unsynced_batches`] keeps them all.
    pub fn crash_keeping(&self, keep: usize) {
        let mut inner = self.lock();
        let unsynced = std::mem::take(&mut inner.unsynced);
        for batch in unsynced.iter().take(keep) {
            inner.durable.apply(batch);
            inner.durable_batches += 1;
        }
        inner.visible = inner.durable.clone();
        inner.crashes += 1;
    }

    /// The disk is replaced: everything, synced or not, is gone (the
    /// node must be down).
    pub fn wipe(&self) {
        let mut inner = self.lock();
        let crashes = inner.crashes + 1;
        *inner = Inner::default();
        inner.crashes = crashes;
    }

    /// A copy of what is on the disk now (what survives a crash), to put
    /// back later with [`Self::restore`]: an operator's backup.
    pub fn backup(&self) -> MemBackup {
        let inner = self.lock();
        MemBackup {
            image: inner.durable.clone(),
            batches: inner.durable_batches,
        }
    }

    /// The disk is replaced by an older copy of itself (the node must be
    /// down): everything written since `backup` was taken is gone, and the
    /// data directory's identity is the one it had then.
    pub fn restore(&self, backup: &MemBackup) {
        let mut inner = self.lock();
        inner.durable = backup.image.clone();
        inner.visible = backup.image.clone();
        inner.durable_batches = backup.batches;
        inner.unsynced.clear();
        inner.crashes += 1;
    }

    /// Batches written since the last completed sync.
    pub fn unsynced_batches(&self) -> usize {
        self.lock().unsynced.len()
    }

    /// Completed syncs so far (including those that had nothing to do).
    pub fn sync_count(&self) -> u64 {
        self.lock().syncs
    }

    /// Simulated crashes so far.
    pub fn crash_count(&self) -> u64 {
        self.lock().crashes
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Flips bit `bit` (0 = lowest bit of the first byte) of the value stored
    /// under `key`, in both the visible and the durable image — bit rot on
    /// the medium. Returns false (and changes nothing) if the key is absent
    /// from both or `bit` is past the end of the value.
    pub fn corrupt(&self, cf: Cf, key: &[u8], bit: usize) -> bool {
        let inner = &mut *self.lock();
        let mut hit = false;
        for image in [&mut inner.visible, &mut inner.durable] {
            if let Some(value) = image.value_mut(cf, key)
                && let Some(byte) = value.get_mut(bit / 8)
            {
                *byte ^= 1 << (bit % 8);
                hit = true;
            }
        }
        hit
    }

    /// Replaces the value under `key` with its first `len` bytes (a torn
    /// write). Returns false if the key is absent or already that short.
    pub fn truncate(&self, cf: Cf, key: &[u8], len: usize) -> bool {
        let inner = &mut *self.lock();
        let mut hit = false;
        for image in [&mut inner.visible, &mut inner.durable] {
            if let Some(value) = image.value_mut(cf, key)
                && value.len() > len
            {
                value.truncate(len);
                hit = true;
            }
        }
        hit
    }

    /// Every key-value pair of `cf` that would survive a crash right now.
    pub fn durable_entries(&self, cf: Cf) -> Vec<(Vec<u8>, Vec<u8>)> {
        let inner = self.lock();
        inner
            .durable
            .table(cf)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure (MemEngine faults)"))
}

impl Engine for MemEngine {
    fn write(&self, batch: WriteBatch) -> io::Result<()> {
        batch.validate()?;
        let mut inner = self.lock();
        if inner.faults.fail_writes {
            return Err(injected("write"));
        }
        if batch.is_empty() {
            return Ok(());
        }
        inner.visible.apply(&batch);
        if !inner.volatile {
            inner.unsynced.push(batch);
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut inner = self.lock();
        if inner.faults.fail_syncs {
            return Err(injected("sync"));
        }
        let unsynced = std::mem::take(&mut inner.unsynced);
        for batch in &unsynced {
            inner.durable.apply(batch);
        }
        inner.durable_batches += unsynced.len() as u64;
        inner.syncs += 1;
        Ok(())
    }

    fn frozen(&self) -> io::Result<Arc<dyn View>> {
        Ok(Arc::new(self.lock().visible.clone()))
    }

    fn sequence(&self) -> u64 {
        let inner = self.lock();
        inner.durable_batches + inner.unsynced.len() as u64
    }
}

impl View for MemEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        self.lock().visible.get(cf, key)
    }

    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        dir: Dir,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.lock().visible.scan(cf, from, to, dir, limit)
    }
}

/// An image is its own frozen view: [`Engine::frozen`] hands out a copy.
impl View for Image {
    fn get(&self, cf: Cf, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.table(cf).and_then(|t| t.get(key).cloned()))
    }

    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        dir: Dir,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let Some(table) = self.table(cf) else {
            return Ok(Vec::new());
        };
        let range = table.range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)));
        let pair = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        Ok(match dir {
            Dir::Forward => range.take(limit).map(pair).collect(),
            Dir::Reverse => range.rev().take(limit).map(pair).collect(),
        })
    }
}
