//! The production [`Engine`]: one RocksDB per node, one column family per
//! [`Cf`], all sharing one WAL so a [`WriteBatch`] is atomic across them.
//!
//! `write` goes to the WAL without syncing (visible at once); `sync` fsyncs
//! the WAL with group commit ([`group_sync`]), so the appends of many Raft
//! groups share one fsync. Both block the calling thread: call them from a
//! blocking context, not an async task.

mod group_sync;
mod options;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rocksdb::statistics::Ticker;
use rocksdb::{ColumnFamily, DB, ErrorKind, ReadOptions, Snapshot, WriteOptions};

use jetraft_store::{Cf, Dir, Engine, Op, View, WriteBatch};

use crate::group_sync::GroupSync;
pub use crate::options::RocksOptions;

/// RocksDB-backed store of one node.
pub struct RocksEngine {
    /// Shared with the frozen views ([`Engine::frozen`]) still alive.
    db: Arc<DB>,
    path: PathBuf,
    group: GroupSync,
    /// Kept only to read statistics tickers; `Options` is not `Sync`.
    stats: Option<Mutex<rocksdb::Options>>,
}

impl std::fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksEngine")
            .field("path", &self.path)
            .field("fsyncs", &self.fsync_count())
            .finish()
    }
}

/// Corruption becomes `InvalidData` so callers can tell "this replica's
/// disk is bad" (stop voting, recover from peers) from other failures.
fn rocks_err(context: impl std::fmt::Display) -> impl FnOnce(rocksdb::Error) -> io::Error {
    move |e| {
        let msg = format!("rocksdb {context}: {e}");
        match e.kind() {
            ErrorKind::Corruption => io::Error::new(io::ErrorKind::InvalidData, msg),
            _ => io::Error::other(msg),
        }
    }
}

/// Creates `path` and any missing ancestors, and fsyncs the parent of each
/// directory it created: RocksDB fsyncs the files and the database
/// directory it writes, but never the directory that holds a database it
/// creates, so without this a power cut soon after a node's first start
/// took its whole store, synced WAL included (found on powerfs).
fn create_durably(path: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = Some(path);
    while let Some(p) = at {
        if p.as_os_str().is_empty() || p.exists() {
            break;
        }
        missing.push(p.to_path_buf());
        at = p.parent();
    }
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(path)?;
    for dir in missing.iter().rev() {
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

impl RocksEngine {
    /// Opens (creating if missing, durably) the store at `path` with every column
    /// family of [`Cf::ALL`].
    pub fn open(path: &Path, opts: RocksOptions) -> io::Result<Self> {
        create_durably(path)?;
        let db_opts = opts.db_options();
        let db = DB::open_cf_descriptors(&db_opts, path, opts.cf_descriptors())
            .map_err(rocks_err(format_args!("open {}", path.display())))?;
        let stats = opts.statistics.then(|| Mutex::new(db_opts));
        Ok(Self {
            db: Arc::new(db),
            path: path.to_path_buf(),
            group: GroupSync::default(),
            stats,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// WAL fsyncs this handle has issued. With group commit this grows far
    /// slower than the number of `sync` calls under concurrency.
    pub fn fsync_count(&self) -> u64 {
        self.group.fsyncs()
    }

    /// WAL syncs RocksDB itself reports (`rocksdb.wal.synced`), if the store
    /// was opened with [`RocksOptions::statistics`]. Independent evidence
    /// that `sync` reaches the disk.
    pub fn wal_synced_ticker(&self) -> Option<u64> {
        let stats = self.stats.as_ref()?;
        let opts = stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(opts.get_ticker_count(Ticker::WalFileSynced))
    }

    /// Fails if RocksDB ever hit a background error: a flush, compaction
    /// or MANIFEST write (and its fsync) that failed. RocksDB then stops
    /// writes itself (so `write` fails too) or, for errors it deems
    /// recoverable, retries on its own; either way files this node counted
    /// as durable may not be, so a sync that sees one fails (and the node
    /// stops, `jetraft_store::failstop`).
    fn background_errors(&self) -> io::Result<()> {
        let n = self
            .db
            .property_int_value(rocksdb::properties::BACKGROUND_ERRORS)
            .map_err(rocks_err("read background errors"))?
            .unwrap_or(0);
        if n > 0 {
            return Err(io::Error::other(format!(
                "rocksdb reported {n} background error(s) (a failed flush, compaction or \
                 MANIFEST write or fsync); the store's files may not be durable"
            )));
        }
        Ok(())
    }

    fn cf(&self, cf: Cf) -> io::Result<&ColumnFamily> {
        cf_handle(&self.db, cf)
    }

    fn to_rocks_batch(&self, batch: &WriteBatch) -> io::Result<rocksdb::WriteBatch> {
        let mut wb = rocksdb::WriteBatch::default();
        for op in &batch.ops {
            match op {
                Op::Put { cf, key, value } => wb.put_cf(self.cf(*cf)?, key, value),
                Op::Delete { cf, key } => wb.delete_cf(self.cf(*cf)?, key),
                // RocksDB would reject from > to in the memtable after the
                // WAL write; `validate` rules it out, and from == to is a
                // no-op we need not send.
                Op::DeleteRange { cf, from, to } if from < to => {
                    wb.delete_range_cf(self.cf(*cf)?, from, to)
                }
                Op::DeleteRange { .. } => {}
            }
        }
        Ok(wb)
    }
}

impl Engine for RocksEngine {
    fn write(&self, batch: WriteBatch) -> io::Result<()> {
        batch.validate()?;
        if batch.is_empty() {
            return Ok(());
        }
        let wb = self.to_rocks_batch(&batch)?;
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        self.db.write_opt(wb, &wo).map_err(rocks_err("write"))?;
        self.group.wrote();
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        // FlushWAL(sync=true) is SyncWAL: fdatasync of every live WAL file
        // (and the WAL directory the first time).
        self.group.sync(|| {
            self.db.flush_wal(true).map_err(rocks_err("sync WAL"))?;
            self.background_errors()
        })
    }

    fn frozen(&self) -> io::Result<Arc<dyn View>> {
        Ok(Arc::new(FrozenView::new(self.db.clone(), |db| {
            db.snapshot()
        })))
    }

    /// RocksDB's last sequence number: every write takes the next ones,
    /// and recovery replays the synced WAL with its numbers.
    fn sequence(&self) -> u64 {
        self.db.latest_sequence_number()
    }
}

impl View for RocksEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        get(&self.db, cf, key, ReadOptions::default())
    }

    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        dir: Dir,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        scan(&self.db, cf, (from, to), dir, limit, ReadOptions::default())
    }
}

self_cell::self_cell!(
    /// A RocksDB snapshot together with the database it pins (kept open
    /// while the view lives; RocksDB keeps what the snapshot can still see).
    struct FrozenView {
        owner: Arc<DB>,
        #[covariant]
        dependent: Snapshot,
    }
);

impl FrozenView {
    fn options(&self) -> ReadOptions {
        let mut ro = ReadOptions::default();
        ro.set_snapshot(self.borrow_dependent());
        ro
    }
}

impl View for FrozenView {
    fn get(&self, cf: Cf, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        get(self.borrow_owner(), cf, key, self.options())
    }

    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        dir: Dir,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        scan(
            self.borrow_owner(),
            cf,
            (from, to),
            dir,
            limit,
            self.options(),
        )
    }
}

fn cf_handle(db: &DB, cf: Cf) -> io::Result<&ColumnFamily> {
    db.cf_handle(cf.name())
        .ok_or_else(|| io::Error::other(format!("rocksdb column family {} missing", cf.name())))
}

fn get(db: &DB, cf: Cf, key: &[u8], ro: ReadOptions) -> io::Result<Option<Vec<u8>>> {
    db.get_cf_opt(cf_handle(db, cf)?, key, &ro)
        .map_err(rocks_err(format_args!("get from {}", cf.name())))
}

/// Up to `limit` pairs of `cf` in `[bounds.0, bounds.1)`, read with `ro`
/// (the live database, or a snapshot set in it).
fn scan(
    db: &DB,
    cf: Cf,
    (from, to): (&[u8], &[u8]),
    dir: Dir,
    limit: usize,
    mut ro: ReadOptions,
) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    if from >= to || limit == 0 {
        return Ok(Vec::new());
    }
    ro.set_iterate_lower_bound(from);
    ro.set_iterate_upper_bound(to);
    let mut it = db.raw_iterator_cf_opt(cf_handle(db, cf)?, ro);
    match dir {
        Dir::Forward => it.seek_to_first(),
        Dir::Reverse => it.seek_to_last(),
    }
    let mut out = Vec::new();
    while out.len() < limit {
        let (Some(key), Some(value)) = (it.key(), it.value()) else {
            break;
        };
        out.push((key.to_vec(), value.to_vec()));
        match dir {
            Dir::Forward => it.next(),
            Dir::Reverse => it.prev(),
        }
    }
    it.status()
        .map_err(rocks_err(format_args!("scan {}", cf.name())))?;
    Ok(out)
}
