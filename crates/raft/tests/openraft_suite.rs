//! openraft's own storage test suite, run on jetraft's log storage and
//! state machine over both engines (in-memory and RocksDB).
#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::Arc;

use futures::future::BoxFuture;
use jetraft_raft::commit::{Committer, SyncMode};
use jetraft_raft::log_store::LogStore;
use jetraft_raft::sm::{Catchup, Frozen, GroupSm, Source};
use jetraft_raft::types::TypeConfig;
use jetraft_store::Engine;
use jetraft_store::mem::MemEngine;
use jetraft_store_rocks::{RocksEngine, RocksOptions};
use jetraft_types::StoredMessage;
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};

/// The suite never installs stream snapshots, so there is nobody to ask.
struct NoPeers;

impl Catchup for NoPeers {
    fn begin(&self, _: u64, _: u64) -> BoxFuture<'static, io::Result<Frozen>> {
        Box::pin(async { Err(io::Error::other("no peers in this test")) })
    }
    fn fetch(
        &self,
        _: Source,
        _: u64,
        _: u64,
        _: usize,
    ) -> BoxFuture<'static, io::Result<Vec<StoredMessage>>> {
        Box::pin(async { Err(io::Error::other("no peers in this test")) })
    }
    fn fetch_seqs(
        &self,
        _: Source,
        _: u64,
        _: u64,
        _: usize,
    ) -> BoxFuture<'static, io::Result<Vec<u64>>> {
        Box::pin(async { Err(io::Error::other("no peers in this test")) })
    }
    fn end(&self, _: Source) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

fn build(engine: Arc<dyn Engine>) -> (LogStore, GroupSm) {
    let committer = Committer::start(engine.clone(), SyncMode::Always, false);
    let (sm, _) = GroupSm::open_meta(engine.clone(), committer.clone(), Arc::new(NoPeers)).unwrap();
    (
        LogStore::new(jetraft_meta::META_GROUP, engine, committer),
        sm,
    )
}

struct Mem;

impl StoreBuilder<TypeConfig, LogStore, GroupSm> for Mem {
    async fn build(&self) -> Result<((), LogStore, GroupSm), StorageError<TypeConfig>> {
        let (log, sm) = build(Arc::new(MemEngine::new()));
        Ok(((), log, sm))
    }
}

struct Rocks;

impl StoreBuilder<TypeConfig, LogStore, GroupSm, tempfile::TempDir> for Rocks {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, GroupSm), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().unwrap();
        let engine = RocksEngine::open(dir.path(), RocksOptions::test_min()).unwrap();
        let (log, sm) = build(Arc::new(engine));
        Ok((dir, log, sm))
    }
}

#[tokio::test]
async fn openraft_suite_on_mem_engine() {
    Suite::test_all(Mem).await.unwrap();
}

#[tokio::test]
async fn openraft_suite_on_rocksdb() {
    Suite::test_all(Rocks).await.unwrap();
}
