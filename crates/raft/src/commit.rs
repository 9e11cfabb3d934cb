//! Group commit: many Raft groups append to the one shared WAL, and one
//! fsync acknowledges all of them.
//!
//! `append` writes its batch (visible at once) and hands its completion
//! callback here. The committer task takes every callback queued so far,
//! runs one `Engine::sync`, and completes them all. While that fsync runs,
//! new callbacks queue up for the next one, so under load each fsync covers
//! many appends of many groups.
//!
//! A failed fsync is fatal for the node, never retried or logged and
//! carried past (see [`jetraft_store::failstop`]).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use jetraft_store::Engine;
use jetraft_store::failstop::Fatal;
use openraft::storage::IOFlushed;
use tokio::sync::{mpsc, oneshot};

use crate::types::TypeConfig;

/// When an append is acknowledged to Raft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// After an fsync that covers it (the default: an ack means durable on a
    /// quorum).
    Always,
    /// At once; an fsync runs every `interval`. A power loss on a quorum can
    /// lose up to `interval` of acknowledged writes.
    Interval(Duration),
}

/// Why a caller waits for an fsync beyond a Raft append: named in the
/// fatal error if that fsync fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncFor {
    /// A vote, before it is sent.
    Vote,
    /// A snapshot's state, before the snapshot is reported built (the log
    /// is then purged behind it).
    Snapshot,
    /// An installed snapshot (or copied replica).
    Install,
    /// The last fsync of a clean shutdown.
    Shutdown,
}

impl SyncFor {
    fn name(self) -> &'static str {
        match self {
            SyncFor::Vote => "vote",
            SyncFor::Snapshot => "snapshot build",
            SyncFor::Install => "snapshot install",
            SyncFor::Shutdown => "shutdown",
        }
    }
}

enum Waiter {
    Raft(IOFlushed<TypeConfig>),
    Local(SyncFor, oneshot::Sender<io::Result<()>>),
}

impl Waiter {
    fn complete(self, res: &io::Result<()>) {
        let res = match res {
            Ok(()) => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        match self {
            Waiter::Raft(cb) => cb.io_completed(res),
            Waiter::Local(_, tx) => {
                let _ = tx.send(res);
            }
        }
    }
}

/// Handle to the node's committer task. Cheap to clone.
///
/// Every fsync of the node runs here, so this is where a failed one is
/// seen: it raises the node's [`Fatal`] latch (saying which sync failed
/// and why), completes every waiter with the error, and from then on
/// completes every new one with an error without syncing again. Nothing
/// written before the failed fsync is ever acknowledged as durable.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::UnboundedSender<Waiter>,
    mode: SyncMode,
    fatal: Fatal,
    marks: Arc<Marks>,
}

/// How far the store is known durable, in [`Engine::sequence`] numbers:
/// at this process's start, and as of the last completed fsync. A node
/// tells its peers both with every Raft reply (decision 37).
#[derive(Debug)]
pub struct Marks {
    boot: u64,
    durable: std::sync::atomic::AtomicU64,
}

impl Marks {
    /// The store's sequence when this process opened it: at least every
    /// durable mark an earlier process of this data directory reported.
    pub fn boot(&self) -> u64 {
        self.boot
    }

    /// The sequence the last completed fsync covered.
    pub fn durable(&self) -> u64 {
        self.durable.load(std::sync::atomic::Ordering::Acquire)
    }

    fn synced(&self, seq: u64) {
        self.durable
            .fetch_max(seq, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Committer {
    /// Starts the committer on the current tokio runtime with a latch of
    /// its own (see [`Committer::start_with`]).
    pub fn start(engine: Arc<dyn Engine>, mode: SyncMode, blocking_sync: bool) -> Self {
        Self::start_with(engine, mode, blocking_sync, Fatal::new())
    }

    /// Starts the committer on the current tokio runtime. With
    /// `blocking_sync`, each fsync runs on tokio's blocking pool (real disks);
    /// otherwise inline (the in-memory engine under simulation, where a
    /// blocking pool would stall simulated time). A failed fsync raises
    /// `fatal`; once it is raised (by anyone) no fsync runs and nothing is
    /// acknowledged.
    pub fn start_with(
        engine: Arc<dyn Engine>,
        mode: SyncMode,
        blocking_sync: bool,
        fatal: Fatal,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let boot = engine.sequence();
        let marks = Arc::new(Marks {
            boot,
            durable: std::sync::atomic::AtomicU64::new(boot),
        });
        let sync = Syncer {
            engine,
            blocking: blocking_sync,
            marks: marks.clone(),
        };
        tokio::spawn(run(sync.clone(), rx, fatal.clone()));
        if let SyncMode::Interval(every) = mode {
            tokio::spawn(sync_every(sync, every, fatal.clone()));
        }
        Self {
            tx,
            mode,
            fatal,
            marks,
        }
    }

    /// How far this node's store is known durable.
    pub fn marks(&self) -> Arc<Marks> {
        self.marks.clone()
    }

    pub fn mode(&self) -> SyncMode {
        self.mode
    }

    /// The node's fatal latch.
    pub fn fatal(&self) -> &Fatal {
        &self.fatal
    }

    /// Completes `cb` once the writes made so far are durable (or at once in
    /// interval mode).
    pub fn flushed(&self, cb: IOFlushed<TypeConfig>) {
        if let Err(e) = self.fatal.check() {
            cb.io_completed(Err(e));
            return;
        }
        let bug = jetraft_types::bugs::enabled(jetraft_types::bugs::Bug::AckBeforeFsync);
        if bug || matches!(self.mode, SyncMode::Interval(_)) {
            cb.io_completed(Ok(()));
            return;
        }
        if let Err(mpsc::error::SendError(w)) = self.tx.send(Waiter::Raft(cb)) {
            w.complete(&Err(io::Error::other("committer stopped")));
        }
    }

    /// Waits until the writes made so far are durable, whatever the mode
    /// (votes must always be durable before they are sent).
    pub async fn sync(&self) -> io::Result<()> {
        self.sync_for(SyncFor::Shutdown).await
    }

    /// [`Committer::sync`] for `why` (named if the fsync fails).
    pub async fn sync_for(&self, why: SyncFor) -> io::Result<()> {
        self.fatal.check()?;
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Waiter::Local(why, tx))
            .map_err(|_| io::Error::other("committer stopped"))?;
        rx.await
            .map_err(|_| io::Error::other("committer stopped"))?
    }
}

async fn run(sync: Syncer, mut rx: mpsc::UnboundedReceiver<Waiter>, fatal: Fatal) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while let Ok(w) = rx.try_recv() {
            batch.push(w);
        }
        let res = match fatal.check() {
            Err(e) => Err(e),
            Ok(()) => sync.once().await.inspect_err(|e| {
                fatal.raise(format!(
                    "WAL fsync failed (covering {}): {e}",
                    covering(&batch)
                ));
            }),
        };
        for w in batch.drain(..) {
            w.complete(&res);
        }
    }
}

/// What one group-commit fsync covered, for the fatal error: "3 Raft
/// appends, a vote".
fn covering(batch: &[Waiter]) -> String {
    let count = |f: &dyn Fn(&Waiter) -> bool| batch.iter().filter(|w| f(w)).count();
    let mut parts = Vec::new();
    let mut add = |n: usize, what: &str| match n {
        0 => {}
        1 => parts.push(format!("a {what}")),
        n => parts.push(format!("{n} {what}s")),
    };
    add(count(&|w| matches!(w, Waiter::Raft(_))), "Raft append");
    for why in [
        SyncFor::Vote,
        SyncFor::Snapshot,
        SyncFor::Install,
        SyncFor::Shutdown,
    ] {
        add(
            count(&|w| matches!(w, Waiter::Local(f, _) if *f == why)),
            why.name(),
        );
    }
    parts.join(", ")
}

async fn sync_every(sync: Syncer, every: Duration, fatal: Fatal) {
    loop {
        tokio::time::sleep(every).await;
        if fatal.is_raised() {
            return;
        }
        if let Err(e) = sync.once().await {
            fatal.raise(format!(
                "periodic WAL fsync failed (sync = interval, every {} ms): {e}",
                every.as_millis()
            ));
            return;
        }
    }
}

/// Runs one fsync of the store and moves the durable mark to the
/// sequence it covered.
#[derive(Clone)]
struct Syncer {
    engine: Arc<dyn Engine>,
    blocking: bool,
    marks: Arc<Marks>,
}

impl Syncer {
    async fn once(&self) -> io::Result<()> {
        // Read before the fsync: everything up to it is covered once it
        // returns (later writes may be too, but are not counted).
        let seq = self.engine.sequence();
        if self.blocking {
            let engine = self.engine.clone();
            tokio::task::spawn_blocking(move || engine.sync())
                .await
                .map_err(|e| io::Error::other(format!("fsync task: {e}")))??;
        } else {
            self.engine.sync()?;
        }
        self.marks.synced(seq);
        Ok(())
    }
}
