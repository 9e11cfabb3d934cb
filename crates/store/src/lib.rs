//! Storage for a jetraft node: one key-value engine shared by every Raft
//! group on the node.
//!
//! * [`Engine`] is the narrow trait the rest of jetraft writes against. Two
//!   engines implement it: [`mem::MemEngine`] here (models synced vs unsynced
//!   writes so the simulation can cut power) and RocksDB in
//!   `jetraft-store-rocks`. Both pass the suite in [`suite`].
//! * [`keys`] owns the whole on-disk key layout.
//! * [`record`] frames every value with a format version and a CRC32C that is
//!   verified on every read.
//! * [`failstop`] stops a node's store at its first failed write or fsync
//!   (the node's [`failstop::Fatal`] latch); [`faulty`] injects such
//!   failures for tests and the simulation.

pub mod failstop;
pub mod faulty;
pub mod keys;
pub mod mem;
pub mod record;
pub mod suite;

use std::io;

/// The column families of a node's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    /// Raft log entries: key = group id + index (big-endian).
    RaftLog,
    /// Raft vote, committed, purged marks, membership, snapshot meta.
    RaftMeta,
    /// Stream messages: key = stream id + seq.
    Messages,
    /// Subject index: key = stream id + subject + seq.
    SubjectIndex,
    /// Stream and state-machine state (applied index, summaries).
    State,
}

impl Cf {
    pub const ALL: [Cf; 5] = [
        Cf::RaftLog,
        Cf::RaftMeta,
        Cf::Messages,
        Cf::SubjectIndex,
        Cf::State,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cf::RaftLog => "raft_log",
            Cf::RaftMeta => "raft_meta",
            Cf::Messages => "messages",
            Cf::SubjectIndex => "subject_index",
            Cf::State => "state",
        }
    }
}

/// One mutation inside an atomic [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        cf: Cf,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        cf: Cf,
        key: Vec<u8>,
    },
    /// Deletes keys in `[from, to)`.
    DeleteRange {
        cf: Cf,
        from: Vec<u8>,
        to: Vec<u8>,
    },
}

/// A set of mutations applied atomically (all column families share one WAL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub ops: Vec<Op>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put { cf, key, value });
    }
    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) {
        self.ops.push(Op::Delete { cf, key });
    }
    pub fn delete_range(&mut self, cf: Cf, from: Vec<u8>, to: Vec<u8>) {
        self.ops.push(Op::DeleteRange { cf, from, to });
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

/// Direction of a [`Engine::scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Forward,
    Reverse,
}

/// Reads of a key-value store: the live engine, or a frozen view of it
/// ([`Engine::frozen`]).
pub trait View: Send + Sync {
    fn get(&self, cf: Cf, key: &[u8]) -> io::Result<Option<Vec<u8>>>;
    /// Up to `limit` pairs with `from <= key < to`, ascending for
    /// [`Dir::Forward`], descending for [`Dir::Reverse`].
    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        dir: Dir,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>>;
}

/// Implements [`View`] for an engine wrapper by reading straight through
/// its `$field` (an `Arc<dyn Engine>`): the wrappers ([`failstop`],
/// [`faulty`]) change writes and syncs, never reads.
macro_rules! view_through {
    ($wrapper:ty, $field:ident) => {
        impl $crate::View for $wrapper {
            fn get(&self, cf: $crate::Cf, key: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
                self.$field.get(cf, key)
            }

            fn scan(
                &self,
                cf: $crate::Cf,
                from: &[u8],
                to: &[u8],
                dir: $crate::Dir,
                limit: usize,
            ) -> std::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
                self.$field.scan(cf, from, to, dir, limit)
            }
        }
    };
}
pub(crate) use view_through;

/// A key-value engine with explicit durability.
///
/// `write` makes a batch visible to readers at once but not durable; `sync`
/// makes every write that returned before it durable (one fsync of the shared
/// WAL: this is where group commit happens). A crash loses exactly the writes
/// not covered by a completed `sync`.
pub trait Engine: View + 'static {
    fn write(&self, batch: WriteBatch) -> io::Result<()>;
    fn sync(&self) -> io::Result<()>;
    /// A read-only view of the store as it is now: writes that return after
    /// this call are never seen through it. A follower catching up reads a
    /// peer's stream through one, so every page comes from the same applied
    /// index even while the peer goes on applying.
    fn frozen(&self) -> io::Result<std::sync::Arc<dyn View>>;
    /// A number that grows with every write and, after a restart or a
    /// crash, is at least what it was when the last completed [`sync`]
    /// began: what the store held then is still there. A data directory
    /// put back from an older copy (a backup) reports less than its node
    /// told its peers before, which is how they tell (ARCHITECTURE
    /// decision 37).
    ///
    /// [`sync`]: Engine::sync
    fn sequence(&self) -> u64;
}

impl WriteBatch {
    /// Rejects an inverted `DeleteRange` (`from > to`) before anything is
    /// applied, so a bad batch never half-applies (RocksDB would write it to
    /// the WAL and then fail it in the memtable). `from == to` is an empty
    /// range and valid. Every engine calls this first in `write`.
    pub fn validate(&self) -> io::Result<()> {
        for op in &self.ops {
            if let Op::DeleteRange { cf, from, to } = op
                && from > to
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "delete_range on {}: end key {to:?} before start key {from:?}",
                        cf.name()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Lets one engine be shared by every group on a node, including as
/// `Arc<dyn Engine>`.
impl<E: Engine + ?Sized> Engine for std::sync::Arc<E> {
    fn write(&self, batch: WriteBatch) -> io::Result<()> {
        (**self).write(batch)
    }
    fn sync(&self) -> io::Result<()> {
        (**self).sync()
    }
    fn frozen(&self) -> io::Result<std::sync::Arc<dyn View>> {
        (**self).frozen()
    }
    fn sequence(&self) -> u64 {
        (**self).sequence()
    }
}

impl<E: View + ?Sized> View for std::sync::Arc<E> {
    fn get(&self, cf: Cf, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        (**self).get(cf, key)
    }
    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        dir: Dir,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        (**self).scan(cf, from, to, dir, limit)
    }
}
