//! Group commit: many Raft groups append to the one shared WAL, and one
//! fsync acknowledges all of them.
//!
//! `append` writes its batch (visible at once) and hands its completion
//! callback here. The committer (a thread of its own on real disks, a task
//! under simulation) takes every callback queued so far,
//! runs one `Engine::sync`, and completes them all. While that fsync runs,
//! new callbacks queue up for the next one, so under load each fsync covers
//! many appends of many groups.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use jetraft_store::Engine;
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

/// Where the committer runs its fsyncs.
#[derive(Clone)]
pub enum Fsyncs {
    /// In the committer's task: the in-memory engine under simulation
    /// (its sync is instant; another thread would escape simulated time).
    Inline,
    /// On a thread of their own, started by this function (real disks).
    /// The caller owns threads: engine crates take them from the node's
    /// environment.
    Thread(Arc<SpawnThread>),
}

/// Starts `f` on a new OS thread.
pub type SpawnThread = dyn Fn(Box<dyn FnOnce() + Send>) -> io::Result<()> + Send + Sync;

enum Waiter {
    Raft(IOFlushed<TypeConfig>),
    Local(oneshot::Sender<io::Result<()>>),
}

impl Waiter {
    fn complete(self, res: &io::Result<()>) {
        let res = match res {
            Ok(()) => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        match self {
            Waiter::Raft(cb) => cb.io_completed(res),
            Waiter::Local(tx) => {
                let _ = tx.send(res);
            }
        }
    }
}

/// Handle to the node's committer task. Cheap to clone.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::UnboundedSender<Waiter>,
    mode: SyncMode,
}

impl Committer {
    /// Starts the committer: its fsyncs run as `fsyncs` says, and in
    /// interval mode a periodic fsync runs on the current tokio runtime.
    /// Fails only if a fsync thread could not be started.
    pub fn start(engine: Arc<dyn Engine>, mode: SyncMode, fsyncs: Fsyncs) -> io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let blocking = matches!(fsyncs, Fsyncs::Thread(_));
        match fsyncs {
            Fsyncs::Inline => {
                tokio::spawn(run_inline(engine.clone(), rx));
            }
            Fsyncs::Thread(spawn) => {
                let engine = engine.clone();
                spawn(Box::new(move || run_thread(&engine, rx)))?;
            }
        }
        if let SyncMode::Interval(every) = mode {
            tokio::spawn(sync_every(engine, every, blocking));
        }
        Ok(Self { tx, mode })
    }

    pub fn mode(&self) -> SyncMode {
        self.mode
    }

    /// Completes `cb` once the writes made so far are durable (or at once in
    /// interval mode).
    pub fn flushed(&self, cb: IOFlushed<TypeConfig>) {
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
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Waiter::Local(tx))
            .map_err(|_| io::Error::other("committer stopped"))?;
        rx.await
            .map_err(|_| io::Error::other("committer stopped"))?
    }
}

/// The committer in a task: the in-memory engine's sync is instant.
async fn run_inline(engine: Arc<dyn Engine>, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        sync_batch(engine.as_ref(), first, &mut rx, &mut batch);
    }
}

/// The committer on a thread of its own: an append's fsync request wakes
/// this thread, which fsyncs and completes the callbacks itself, with no
/// task or blocking-pool hand-off in between.
fn run_thread(engine: &Arc<dyn Engine>, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        sync_batch(engine.as_ref(), first, &mut rx, &mut batch);
    }
}

/// One fsync for `first` and every waiter queued behind it.
fn sync_batch(
    engine: &dyn Engine,
    first: Waiter,
    rx: &mut mpsc::UnboundedReceiver<Waiter>,
    batch: &mut Vec<Waiter>,
) {
    batch.push(first);
    while let Ok(w) = rx.try_recv() {
        batch.push(w);
    }
    let res = engine.sync();
    if let Err(e) = &res {
        tracing::error!(error = %e, waiters = batch.len(), "WAL fsync failed");
    }
    for w in batch.drain(..) {
        w.complete(&res);
    }
}

async fn sync_every(engine: Arc<dyn Engine>, every: Duration, blocking: bool) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = sync_once(&engine, blocking).await {
            tracing::error!(error = %e, "periodic WAL fsync failed");
        }
    }
}

async fn sync_once(engine: &Arc<dyn Engine>, blocking: bool) -> io::Result<()> {
    if blocking {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || engine.sync())
            .await
            .map_err(|e| io::Error::other(format!("fsync task: {e}")))?
    } else {
        engine.sync()
    }
}
