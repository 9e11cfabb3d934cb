//! Group commit: many Raft groups append to the one shared WAL, and one
//! fsync acknowledges all of them.
//!
//! `append` writes its batch (visible at once) and hands its completion
//! callback here. The committer task takes every callback queued so far,
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
    /// Starts the committer on the current tokio runtime. With
    /// `blocking_sync`, each fsync runs on tokio's blocking pool (real disks);
    /// otherwise inline (the in-memory engine under simulation, where a
    /// blocking pool would stall simulated time).
    pub fn start(engine: Arc<dyn Engine>, mode: SyncMode, blocking_sync: bool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(engine.clone(), rx, blocking_sync));
        if let SyncMode::Interval(every) = mode {
            tokio::spawn(sync_every(engine, every, blocking_sync));
        }
        Self { tx, mode }
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

async fn run(engine: Arc<dyn Engine>, mut rx: mpsc::UnboundedReceiver<Waiter>, blocking: bool) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while let Ok(w) = rx.try_recv() {
            batch.push(w);
        }
        let res = sync_once(&engine, blocking).await;
        if let Err(e) = &res {
            tracing::error!(error = %e, waiters = batch.len(), "WAL fsync failed");
        }
        for w in batch.drain(..) {
            w.complete(&res);
        }
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
