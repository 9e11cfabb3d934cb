//! RocksDB-specific durability behaviour: persistence across reopen, that
//! `sync` really reaches the disk, and that concurrent syncs share fsyncs.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "RocksEngine::sync is called from real threads in production; group commit needs real concurrency to test"
)]

use std::sync::{Arc, Barrier};

use jetraft_store::{Cf, Dir, Engine, View, WriteBatch, keys, record};
use jetraft_store_rocks::{RocksEngine, RocksOptions};

fn open(dir: &tempfile::TempDir) -> RocksEngine {
    RocksEngine::open(dir.path(), RocksOptions::test_min()).unwrap()
}

fn put_msg(e: &RocksEngine, stream: u64, seq: u64) {
    let key = keys::message(stream, seq);
    let mut b = WriteBatch::new();
    b.put(
        Cf::Messages,
        key.clone(),
        record::encode_for(&key, format!("m{seq}").as_bytes()),
    );
    b.put(
        Cf::SubjectIndex,
        keys::subject(stream, "orders.1", seq),
        Vec::new(),
    );
    e.write(b).unwrap();
}

#[test]
fn synced_writes_survive_drop_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    for seq in 1..=1000 {
        put_msg(&e, 7, seq);
    }
    e.sync().unwrap();
    drop(e);

    let e = open(&dir);
    let (from, to) = keys::message_all_bounds(7);
    let msgs = e
        .scan(Cf::Messages, &from, &to, Dir::Forward, usize::MAX)
        .unwrap();
    assert_eq!(msgs.len(), 1000);
    for (key, value) in &msgs {
        let seq = keys::message_seq(key).unwrap();
        assert_eq!(
            &*record::decode_for(key, value).unwrap(),
            format!("m{seq}").as_bytes()
        );
    }
    let (from, to) = keys::subject_bounds(7, "orders.1");
    let last = e
        .scan(Cf::SubjectIndex, &from, &to, Dir::Reverse, 1)
        .unwrap();
    assert_eq!(keys::subject_seq(&last[0].0), Some(1000));
}

#[test]
fn reopen_creates_missing_column_families_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(&dir);
        let mut b = WriteBatch::new();
        for cf in Cf::ALL {
            b.put(cf, b"k".to_vec(), cf.name().as_bytes().to_vec());
        }
        e.write(b).unwrap();
        e.sync().unwrap();
    }
    for _ in 0..3 {
        let e = open(&dir);
        for cf in Cf::ALL {
            assert_eq!(
                e.get(cf, b"k").unwrap().as_deref(),
                Some(cf.name().as_bytes())
            );
        }
    }
}

#[test]
fn sync_fsyncs_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    let before = e.wal_synced_ticker().expect("test_min enables statistics");
    put_msg(&e, 1, 1);
    e.sync().unwrap();
    assert_eq!(e.fsync_count(), 1);
    assert!(
        e.wal_synced_ticker().unwrap() > before,
        "RocksDB did not record a WAL sync"
    );
    // Nothing new written: no second fsync.
    let after = e.wal_synced_ticker().unwrap();
    e.sync().unwrap();
    assert_eq!(e.fsync_count(), 1);
    assert_eq!(e.wal_synced_ticker().unwrap(), after);
}

#[test]
fn concurrent_syncs_share_fsyncs() {
    const THREADS: usize = 8;
    const ROUNDS: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(open(&dir));
    let written = Arc::new(Barrier::new(THREADS));
    let synced = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS as u64)
        .map(|t| {
            let (e, written, synced) = (e.clone(), written.clone(), synced.clone());
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    put_msg(&e, t, round);
                    written.wait();
                    e.sync().unwrap();
                    synced.wait();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    // Each round, all eight writes are done before anyone syncs, so the
    // first fsync of the round covers every caller: the others either wait
    // for it or find their write already durable.
    assert_eq!(
        e.fsync_count(),
        ROUNDS,
        "{} sync calls",
        THREADS as u64 * ROUNDS
    );
    assert!(e.wal_synced_ticker().unwrap() >= ROUNDS);
    for t in 0..THREADS as u64 {
        let (from, to) = keys::message_all_bounds(t);
        assert_eq!(
            e.scan(Cf::Messages, &from, &to, Dir::Forward, usize::MAX)
                .unwrap()
                .len() as u64,
            ROUNDS
        );
    }
}

#[test]
fn corrupted_value_is_caught_on_read() {
    // RocksDB's own block checksums guard the file; the record checksum
    // guards what we hand to RocksDB. A value stored under the wrong key
    // is exactly what only the record checksum can catch.
    let dir = tempfile::tempdir().unwrap();
    let e = open(&dir);
    let (k7, k8) = (keys::message(1, 7), keys::message(1, 8));
    let mut b = WriteBatch::new();
    b.put(Cf::Messages, k8.clone(), record::encode_for(&k7, b"seven"));
    e.write(b).unwrap();
    let stored = e.get(Cf::Messages, &k8).unwrap().unwrap();
    assert!(record::decode_for(&k8, &stored).is_err());
}
