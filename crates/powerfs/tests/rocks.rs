//! The production engine (RocksDB, `jetraft-store-rocks`) on powerfs: what
//! it synced survives a power cut, what it did not sync is gone, and a
//! process crash alone (no power cut) loses nothing.
//!
//! RocksDB runs in a child process (this test binary again, running
//! [`child_process_helper`]) so it can be killed with SIGKILL mid-flight,
//! as a power cut would stop it: closing the database cleanly would flush
//! and sync everything.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use jetraft_powerfs::{Mounted, PowerFs};
use jetraft_store::{Cf, Engine, Op, View, WriteBatch};
use jetraft_store_rocks::{RocksEngine, RocksOptions};

const CHILD_ENV: &str = "POWERFS_ROCKS_CHILD_DIR";
const KEYS: usize = 200;

fn batch(prefix: &str) -> WriteBatch {
    WriteBatch {
        ops: (0..KEYS)
            .map(|i| Op::Put {
                cf: Cf::Messages,
                key: format!("{prefix}-{i:05}").into_bytes(),
                value: format!("value of {prefix} {i}").repeat(20).into_bytes(),
            })
            .collect(),
    }
}

/// Not a test by itself: when started by [`run_child`] it opens RocksDB
/// on the mount, writes a synced batch and an unsynced one, says "ready"
/// and waits to be killed.
#[test]
fn child_process_helper() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let engine = RocksEngine::open(Path::new(&dir), RocksOptions::test_min()).unwrap();
    engine.write(batch("synced")).unwrap();
    engine.sync().unwrap();
    engine.write(batch("unsynced")).unwrap();
    println!("ready");
    loop {
        std::thread::park();
    }
}

/// Runs the writer in a child process on `store` and SIGKILLs it once it
/// has written both batches.
fn run_child(store: &Path) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process_helper", "--nocapture"])
        .env(CHILD_ENV, store)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let ready = out.lines().map_while(Result::ok).any(|l| l == "ready");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ready, "the RocksDB writer died before writing");
}

fn count(engine: &RocksEngine, prefix: &str) -> usize {
    (0..KEYS)
        .filter(|i| {
            let key = format!("{prefix}-{i:05}");
            engine.get(Cf::Messages, key.as_bytes()).unwrap().is_some()
        })
        .count()
}

/// The store's directory, created and made durable (its parent fsynced)
/// before RocksDB sees it. RocksDB itself never fsyncs the parent of a
/// directory it creates (`RocksEngine::open` now does: see the test below).
fn provisioned_store(m: &Mounted) -> std::path::PathBuf {
    let store = m.path().join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::File::open(m.path()).unwrap().sync_all().unwrap();
    store
}

fn mount(test: &str) -> Option<(tempfile::TempDir, Mounted)> {
    if !jetraft_powerfs::available_or_skip(test) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let mounted = PowerFs::new().mount(dir.path()).unwrap();
    Some((dir, mounted))
}

#[test]
fn rocksdb_keeps_synced_writes_and_loses_unsynced_ones_on_power_cut() {
    let Some((_dir, mut m)) = mount("rocksdb_keeps_synced_writes_and_loses_unsynced_ones") else {
        return;
    };
    let store = provisioned_store(&m);
    run_child(&store);
    let unsynced = m.fs().unsynced_bytes();
    let report = m.power_cut().unwrap();
    eprintln!("power cut dropped {report:?} ({unsynced} unsynced bytes before the cut)");
    assert!(report.unsynced_bytes > 0);

    let engine = RocksEngine::open(&store, RocksOptions::test_min()).unwrap();
    assert_eq!(count(&engine, "synced"), KEYS, "a synced write was lost");
    assert_eq!(count(&engine, "unsynced"), 0, "an unsynced write survived");
    // The store still works after recovery, and a second cut keeps what
    // this handle synced.
    engine.write(batch("after")).unwrap();
    engine.sync().unwrap();
    drop(engine);
    m.power_cut().unwrap();
    let engine = RocksEngine::open(&store, RocksOptions::test_min()).unwrap();
    assert_eq!(count(&engine, "synced"), KEYS);
    assert_eq!(count(&engine, "after"), KEYS);
}

#[test]
fn rocksdb_loses_nothing_when_only_the_process_crashes() {
    let Some((dir, m)) = mount("rocksdb_loses_nothing_when_only_the_process_crashes") else {
        return;
    };
    let store = provisioned_store(&m);
    run_child(&store);
    // Unmount and mount again without a cut: what the kernel would keep
    // in its page cache across a kill -9.
    let fs = m.unmount().unwrap();
    let m = fs.mount(dir.path()).unwrap();
    let engine = RocksEngine::open(&store, RocksOptions::test_min()).unwrap();
    assert_eq!(count(&engine, "synced"), KEYS);
    assert_eq!(count(&engine, "unsynced"), KEYS);
    drop(engine);
    drop(m);
}

/// Found here: RocksDB creates a missing database directory but never
/// fsyncs that directory's parent, so a power cut in the first moments of
/// a new store took the whole directory, synced WAL included.
/// `RocksEngine::open` now creates the directory durably.
#[test]
fn a_new_store_directory_survives_a_power_cut() {
    let Some((_dir, mut m)) = mount("a_new_store_directory_survives") else {
        return;
    };
    let store = m.path().join("store");
    run_child(&store);
    m.power_cut().unwrap();
    assert!(store.exists(), "the new store directory was lost");
    let engine = RocksEngine::open(&store, RocksOptions::test_min()).unwrap();
    assert_eq!(count(&engine, "synced"), KEYS, "a synced write was lost");
}
