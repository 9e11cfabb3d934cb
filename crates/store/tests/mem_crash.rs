//! Power-loss semantics of [`MemEngine`]: what the simulation relies on
//! when it cuts a node's power.
#![allow(clippy::unwrap_used)]

use jetraft_store::mem::{Faults, MemEngine};
use jetraft_store::{Cf, Dir, Engine, View, WriteBatch};

fn put(e: &MemEngine, key: &[u8], value: &[u8]) {
    let mut b = WriteBatch::new();
    b.put(Cf::Messages, key.to_vec(), value.to_vec());
    e.write(b).unwrap();
}

fn get(e: &MemEngine, key: &[u8]) -> Option<Vec<u8>> {
    e.get(Cf::Messages, key).unwrap()
}

fn all(e: &MemEngine, cf: Cf) -> Vec<(Vec<u8>, Vec<u8>)> {
    e.scan(cf, &[], &[0xFF; 4], Dir::Forward, usize::MAX)
        .unwrap()
}

#[test]
fn unsynced_write_is_visible_then_lost() {
    let e = MemEngine::new();
    put(&e, b"a", b"1");
    assert_eq!(get(&e, b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(e.unsynced_batches(), 1);
    e.crash();
    assert_eq!(get(&e, b"a"), None);
    assert_eq!(e.unsynced_batches(), 0);
    assert_eq!(e.crash_count(), 1);
}

#[test]
fn synced_write_survives() {
    let e = MemEngine::new();
    put(&e, b"a", b"1");
    e.sync().unwrap();
    put(&e, b"b", b"2");
    e.crash();
    assert_eq!(get(&e, b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&e, b"b"), None);
}

#[test]
fn unsynced_overwrite_and_delete_roll_back_to_synced_value() {
    let e = MemEngine::new();
    put(&e, b"a", b"old");
    put(&e, b"b", b"kept");
    e.sync().unwrap();
    put(&e, b"a", b"new");
    let mut b = WriteBatch::new();
    b.delete(Cf::Messages, b"b".to_vec());
    b.delete_range(Cf::Messages, Vec::new(), vec![0xFF]);
    e.write(b).unwrap();
    assert!(all(&e, Cf::Messages).is_empty());
    e.crash();
    assert_eq!(get(&e, b"a").as_deref(), Some(&b"old"[..]));
    assert_eq!(get(&e, b"b").as_deref(), Some(&b"kept"[..]));
}

#[test]
fn batch_is_all_or_nothing_across_crash_points() {
    // Three multi-CF batches; a crash keeping any prefix of them leaves each
    // batch wholly present or wholly absent, never part of one.
    let batches: Vec<WriteBatch> = (0..3u8)
        .map(|i| {
            let mut b = WriteBatch::new();
            for cf in Cf::ALL {
                b.put(cf, vec![i], vec![i; 3]);
            }
            b
        })
        .collect();
    for keep in 0..=4 {
        let e = MemEngine::new();
        for b in &batches {
            e.write(b.clone()).unwrap();
        }
        e.crash_keeping(keep);
        for (i, _) in batches.iter().enumerate() {
            let present: Vec<bool> = Cf::ALL
                .iter()
                .map(|&cf| e.get(cf, &[i as u8]).unwrap().is_some())
                .collect();
            let expect = i < keep;
            assert!(
                present.iter().all(|&p| p == expect),
                "keep {keep}, batch {i}: {present:?}"
            );
        }
        assert_eq!(e.unsynced_batches(), 0);
    }
}

#[test]
fn clone_shares_the_store_across_a_simulated_restart() {
    let disk = MemEngine::new();
    let node = disk.clone();
    put(&node, b"a", b"1");
    node.sync().unwrap();
    put(&node, b"b", b"2");
    drop(node);
    disk.crash();
    let node = disk.clone();
    assert_eq!(get(&node, b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&node, b"b"), None);
}

#[test]
fn crash_twice_is_stable() {
    let e = MemEngine::new();
    put(&e, b"a", b"1");
    e.sync().unwrap();
    e.crash();
    e.crash();
    assert_eq!(all(&e, Cf::Messages), vec![(b"a".to_vec(), b"1".to_vec())]);
    assert_eq!(e.durable_entries(Cf::Messages), all(&e, Cf::Messages));
}

#[test]
fn corrupt_flips_one_bit_durably() {
    let e = MemEngine::new();
    put(&e, b"a", &[0b0000_0000, 0b1111_1111]);
    e.sync().unwrap();
    assert!(e.corrupt(Cf::Messages, b"a", 9));
    assert_eq!(get(&e, b"a"), Some(vec![0, 0b1111_1101]));
    e.crash();
    assert_eq!(
        get(&e, b"a"),
        Some(vec![0, 0b1111_1101]),
        "corruption is on the medium"
    );
    assert!(!e.corrupt(Cf::Messages, b"a", 16), "bit past the end");
    assert!(!e.corrupt(Cf::Messages, b"missing", 0));
    assert!(!e.corrupt(Cf::State, b"a", 0), "other column family");
}

#[test]
fn corruption_is_caught_by_record_checksum() {
    use jetraft_store::{keys, record};
    let e = MemEngine::new();
    let key = keys::message(1, 7);
    let mut b = WriteBatch::new();
    b.put(
        Cf::Messages,
        key.clone(),
        record::encode_for(&key, b"hello"),
    );
    e.write(b).unwrap();
    assert!(e.corrupt(Cf::Messages, &key, 8 * 6 + 3));
    let stored = e.get(Cf::Messages, &key).unwrap().unwrap();
    assert!(matches!(
        record::decode_for(&key, &stored),
        Err(record::Corruption::Checksum { .. })
    ));
    assert!(e.truncate(Cf::Messages, &key, 2));
    let stored = e.get(Cf::Messages, &key).unwrap().unwrap();
    assert_eq!(
        record::decode_for(&key, &stored),
        Err(record::Corruption::Short { len: 2 })
    );
}

#[test]
fn injected_failures_change_nothing() {
    let e = MemEngine::new();
    put(&e, b"a", b"1");
    e.set_faults(Faults {
        fail_writes: true,
        fail_syncs: true,
    });
    let mut b = WriteBatch::new();
    b.put(Cf::Messages, b"b".to_vec(), b"2".to_vec());
    assert!(e.write(b).is_err());
    assert!(e.sync().is_err());
    assert_eq!(get(&e, b"b"), None);
    assert_eq!(e.unsynced_batches(), 1, "failed sync made nothing durable");
    e.set_faults(Faults::default());
    e.sync().unwrap();
    e.crash();
    assert_eq!(get(&e, b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(e.sync_count(), 1);
}

#[test]
fn same_operations_give_identical_state() {
    let run = || {
        let e = MemEngine::new();
        for i in 0..200u32 {
            let mut b = WriteBatch::new();
            b.put(
                Cf::Messages,
                (i % 37).to_be_bytes().to_vec(),
                i.to_be_bytes().to_vec(),
            );
            if i % 11 == 0 {
                b.delete_range(
                    Cf::Messages,
                    3u32.to_be_bytes().to_vec(),
                    9u32.to_be_bytes().to_vec(),
                );
            }
            e.write(b).unwrap();
            if i % 7 == 0 {
                e.sync().unwrap();
            }
        }
        e.crash();
        all(&e, Cf::Messages)
    };
    assert_eq!(run(), run());
}

#[test]
fn shared_as_dyn_engine() {
    let e = MemEngine::new();
    let shared: std::sync::Arc<dyn Engine> = std::sync::Arc::new(e.clone());
    let mut b = WriteBatch::new();
    b.put(Cf::State, b"k".to_vec(), b"v".to_vec());
    shared.write(b).unwrap();
    shared.sync().unwrap();
    e.crash();
    assert_eq!(
        shared.get(Cf::State, b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

#[test]
fn the_volatile_engine_keeps_one_image_and_nothing_outlives_it() {
    let e = MemEngine::volatile();
    put(&e, b"a", b"1");
    e.sync().unwrap();
    assert_eq!(get(&e, b"a").as_deref(), Some(&b"1"[..]));
    assert_eq!(e.unsynced_batches(), 0, "no batch is kept for a later sync");
    assert!(
        e.durable_entries(Cf::Messages).is_empty(),
        "no second, durable copy"
    );
    e.crash();
    assert_eq!(get(&e, b"a"), None);
}
