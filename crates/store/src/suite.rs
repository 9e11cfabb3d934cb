//! The conformance suite every [`Engine`] must pass.
//!
//! Each case takes an *opener*: a closure that opens one store, and when
//! called again after the previous handle was dropped, reopens the same
//! store (a clean process restart). Most cases open once. Expand the whole
//! suite as one `#[test]` per case with [`engine_suite!`](crate::engine_suite):
//!
//! ```ignore
//! jetraft_store::engine_suite!({
//!     let store = MemEngine::new();
//!     move || store.clone()
//! });
//! ```
//!
//! The expression is evaluated afresh inside every test, so each case gets
//! an empty store.

use std::io;

use crate::{Cf, Dir, Engine, WriteBatch, record};

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Expands to one `#[test]` per suite case, each calling the case with the
/// given opener expression (see the [module docs](crate::suite)).
#[macro_export]
macro_rules! engine_suite {
    ($open:expr) => {
        $crate::engine_suite!(@cases $open;
            put_get_delete,
            overwrite,
            column_families_are_separate,
            batch_is_atomic_across_column_families,
            batch_ops_apply_in_order,
            delete_range_is_half_open,
            inverted_delete_range_is_rejected_whole,
            scan_forward_with_bounds_and_limit,
            scan_reverse_with_bounds_and_limit,
            scan_empty_ranges,
            scan_orders_bytewise,
            scan_pages_through_many_keys,
            frozen_view_ignores_later_writes,
            large_values,
            sync_without_writes,
            reopen_keeps_synced_writes,
            reopen_after_clean_close_keeps_unsynced_writes,
            records_round_trip_through_engine,
        );
    };
    (@cases $open:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::suite::$case($open);
            }
        )*
    };
}

fn ok<T>(r: io::Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

fn put<E: Engine>(e: &E, cf: Cf, key: &[u8], value: &[u8]) {
    let mut b = WriteBatch::new();
    b.put(cf, key.to_vec(), value.to_vec());
    ok(e.write(b), "write");
}

fn get<E: Engine>(e: &E, cf: Cf, key: &[u8]) -> Option<Vec<u8>> {
    ok(e.get(cf, key), "get")
}

fn scan<E: Engine>(e: &E, cf: Cf, from: &[u8], to: &[u8], dir: Dir, limit: usize) -> Pairs {
    ok(e.scan(cf, from, to, dir, limit), "scan")
}

fn scan_keys<E: Engine>(
    e: &E,
    cf: Cf,
    from: &[u8],
    to: &[u8],
    dir: Dir,
    limit: usize,
) -> Vec<Vec<u8>> {
    scan(e, cf, from, to, dir, limit)
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

fn k(n: u64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

fn ks(ns: impl IntoIterator<Item = u64>) -> Vec<Vec<u8>> {
    ns.into_iter().map(k).collect()
}

/// Puts keys `k(n)` with value `v<n>` for each `n`, in one batch.
fn fill<E: Engine>(e: &E, cf: Cf, ns: impl IntoIterator<Item = u64>) {
    let mut b = WriteBatch::new();
    for n in ns {
        b.put(cf, k(n), format!("v{n}").into_bytes());
    }
    ok(e.write(b), "fill");
}

pub fn put_get_delete<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    assert_eq!(get(&e, Cf::Messages, b"a"), None);
    put(&e, Cf::Messages, b"a", b"1");
    assert_eq!(get(&e, Cf::Messages, b"a").as_deref(), Some(&b"1"[..]));
    let mut b = WriteBatch::new();
    b.delete(Cf::Messages, b"a".to_vec());
    b.delete(Cf::Messages, b"never-existed".to_vec());
    ok(e.write(b), "delete");
    assert_eq!(get(&e, Cf::Messages, b"a"), None);
    put(&e, Cf::Messages, b"", b"empty key");
    put(&e, Cf::Messages, &[0xFF; 20], b"");
    assert_eq!(
        get(&e, Cf::Messages, b"").as_deref(),
        Some(&b"empty key"[..])
    );
    assert_eq!(
        get(&e, Cf::Messages, &[0xFF; 20]).as_deref(),
        Some(&b""[..])
    );
    ok(e.write(WriteBatch::new()), "empty batch");
}

pub fn overwrite<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    put(&e, Cf::State, b"k", b"first");
    put(&e, Cf::State, b"k", b"second, longer");
    put(&e, Cf::State, b"k", b"3");
    assert_eq!(get(&e, Cf::State, b"k").as_deref(), Some(&b"3"[..]));
    assert_eq!(scan(&e, Cf::State, b"", &[0xFF], Dir::Forward, 10).len(), 1);
}

pub fn column_families_are_separate<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    for cf in Cf::ALL {
        put(&e, cf, b"same", cf.name().as_bytes());
    }
    for cf in Cf::ALL {
        assert_eq!(get(&e, cf, b"same").as_deref(), Some(cf.name().as_bytes()));
        assert_eq!(
            scan(&e, cf, b"", &[0xFF], Dir::Forward, 10).len(),
            1,
            "{}",
            cf.name()
        );
    }
    let mut b = WriteBatch::new();
    b.delete_range(Cf::Messages, Vec::new(), vec![0xFF]);
    ok(e.write(b), "delete_range");
    assert_eq!(get(&e, Cf::Messages, b"same"), None);
    assert!(get(&e, Cf::RaftLog, b"same").is_some());
}

pub fn batch_is_atomic_across_column_families<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    put(&e, Cf::State, b"applied", b"0");
    put(&e, Cf::RaftLog, b"old", b"entry");
    let mut b = WriteBatch::new();
    b.put(Cf::Messages, k(1), b"msg".to_vec());
    b.put(Cf::SubjectIndex, b"subj/1".to_vec(), Vec::new());
    b.put(Cf::State, b"applied".to_vec(), b"1".to_vec());
    b.put(Cf::RaftMeta, b"vote".to_vec(), b"t1".to_vec());
    b.delete(Cf::RaftLog, b"old".to_vec());
    assert_eq!(b.len(), 5);
    ok(e.write(b), "multi-cf batch");
    assert_eq!(get(&e, Cf::Messages, &k(1)).as_deref(), Some(&b"msg"[..]));
    assert_eq!(
        get(&e, Cf::SubjectIndex, b"subj/1").as_deref(),
        Some(&b""[..])
    );
    assert_eq!(get(&e, Cf::State, b"applied").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&e, Cf::RaftMeta, b"vote").as_deref(), Some(&b"t1"[..]));
    assert_eq!(get(&e, Cf::RaftLog, b"old"), None);
}

pub fn batch_ops_apply_in_order<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    fill(&e, Cf::Messages, 0..10);
    let mut b = WriteBatch::new();
    b.put(Cf::Messages, k(20), b"gone".to_vec());
    b.delete(Cf::Messages, k(20));
    b.delete(Cf::Messages, k(21));
    b.put(Cf::Messages, k(21), b"back".to_vec());
    b.delete_range(Cf::Messages, k(0), k(10));
    b.put(Cf::Messages, k(5), b"after range".to_vec());
    ok(e.write(b), "ordered batch");
    assert_eq!(get(&e, Cf::Messages, &k(20)), None);
    assert_eq!(get(&e, Cf::Messages, &k(21)).as_deref(), Some(&b"back"[..]));
    assert_eq!(
        scan_keys(&e, Cf::Messages, &k(0), &k(100), Dir::Forward, 100),
        ks([5, 21])
    );
    assert_eq!(
        get(&e, Cf::Messages, &k(5)).as_deref(),
        Some(&b"after range"[..])
    );
}

pub fn delete_range_is_half_open<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    fill(&e, Cf::RaftLog, 0..20);
    let mut b = WriteBatch::new();
    b.delete_range(Cf::RaftLog, k(5), k(10));
    b.delete_range(Cf::RaftLog, k(15), k(15)); // empty: no-op
    b.delete_range(Cf::RaftLog, k(100), k(200)); // nothing there
    ok(e.write(b), "delete_range");
    let left: Vec<u64> = (0..5).chain(10..20).collect();
    assert_eq!(
        scan_keys(&e, Cf::RaftLog, &k(0), &k(100), Dir::Forward, 100),
        ks(left)
    );
    assert!(get(&e, Cf::RaftLog, &k(4)).is_some());
    assert!(get(&e, Cf::RaftLog, &k(5)).is_none());
    assert!(get(&e, Cf::RaftLog, &k(9)).is_none());
    assert!(get(&e, Cf::RaftLog, &k(10)).is_some());
    // Keys between the integer keys (longer keys with a shared prefix).
    put(&e, Cf::RaftLog, &[k(12), vec![0]].concat(), b"x");
    let mut b = WriteBatch::new();
    b.delete_range(Cf::RaftLog, k(12), k(13));
    ok(e.write(b), "delete_range");
    assert_eq!(
        scan_keys(&e, Cf::RaftLog, &k(11), &k(14), Dir::Forward, 100),
        ks([11, 13])
    );
}

pub fn inverted_delete_range_is_rejected_whole<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    fill(&e, Cf::Messages, 0..5);
    let mut b = WriteBatch::new();
    b.put(Cf::Messages, k(7), b"new".to_vec());
    b.delete(Cf::Messages, k(0));
    b.delete_range(Cf::Messages, k(4), k(1));
    let err = e.write(b).expect_err("inverted range must be rejected");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        scan_keys(&e, Cf::Messages, &k(0), &k(100), Dir::Forward, 100),
        ks(0..5)
    );
}

pub fn scan_forward_with_bounds_and_limit<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    fill(&e, Cf::Messages, (0..50).map(|n| n * 2)); // even keys 0..98
    let got = scan(&e, Cf::Messages, &k(10), &k(20), Dir::Forward, 100);
    assert_eq!(
        got.iter().map(|(key, _)| key.clone()).collect::<Vec<_>>(),
        ks([10, 12, 14, 16, 18])
    );
    assert_eq!(got[0].1, b"v10");
    assert_eq!(
        scan_keys(&e, Cf::Messages, &k(11), &k(19), Dir::Forward, 100),
        ks([12, 14, 16, 18])
    );
    assert_eq!(
        scan_keys(&e, Cf::Messages, &k(10), &k(20), Dir::Forward, 2),
        ks([10, 12])
    );
    assert_eq!(
        scan_keys(&e, Cf::Messages, &k(97), &k(1000), Dir::Forward, 100),
        ks([98])
    );
    assert_eq!(
        scan_keys(&e, Cf::Messages, &[], &k(3), Dir::Forward, 100),
        ks([0, 2])
    );
    assert_eq!(
        scan(&e, Cf::Messages, &[], &[0xFF; 9], Dir::Forward, usize::MAX).len(),
        50
    );
}

pub fn scan_reverse_with_bounds_and_limit<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    fill(&e, Cf::Messages, (0..50).map(|n| n * 2));
    let got = scan(&e, Cf::Messages, &k(10), &k(20), Dir::Reverse, 100);
    assert_eq!(
        got.iter().map(|(key, _)| key.clone()).collect::<Vec<_>>(),
        ks([18, 16, 14, 12, 10])
    );
    assert_eq!(got[0].1, b"v18");
    // `to` is exclusive in reverse too; `from` inclusive.
    assert_eq!(
        scan_keys(&e, Cf::Messages, &k(10), &k(18), Dir::Reverse, 100),
        ks([16, 14, 12, 10])
    );
    assert_eq!(
        scan_keys(&e, Cf::Messages, &k(10), &k(20), Dir::Reverse, 1),
        ks([18])
    );
    assert_eq!(
        scan_keys(&e, Cf::Messages, &k(0), &k(1000), Dir::Reverse, 2),
        ks([98, 96])
    );
    assert_eq!(
        scan_keys(&e, Cf::Messages, &[], &k(3), Dir::Reverse, 100),
        ks([2, 0])
    );
    // Keys outside the range on both sides exist; neither leaks in.
    assert_eq!(
        scan_keys(&e, Cf::Messages, &k(41), &k(44), Dir::Reverse, 100),
        ks([42])
    );
}

pub fn scan_empty_ranges<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    for dir in [Dir::Forward, Dir::Reverse] {
        assert!(
            scan(&e, Cf::State, &[], &[0xFF], dir, 10).is_empty(),
            "empty cf"
        );
    }
    fill(&e, Cf::State, [10, 20, 30]);
    for dir in [Dir::Forward, Dir::Reverse] {
        assert!(
            scan(&e, Cf::State, &k(20), &k(20), dir, 10).is_empty(),
            "from == to"
        );
        assert!(
            scan(&e, Cf::State, &k(30), &k(10), dir, 10).is_empty(),
            "from > to"
        );
        assert!(
            scan(&e, Cf::State, &k(11), &k(20), dir, 10).is_empty(),
            "gap"
        );
        assert!(
            scan(&e, Cf::State, &k(31), &k(99), dir, 10).is_empty(),
            "past the end"
        );
        assert!(
            scan(&e, Cf::State, &k(0), &k(99), dir, 0).is_empty(),
            "limit 0"
        );
        assert!(
            scan(&e, Cf::Messages, &k(0), &k(99), dir, 10).is_empty(),
            "other cf"
        );
    }
}

pub fn scan_orders_bytewise<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    let keys: [&[u8]; 7] = [b"", b"\x00", b"a", b"a\x00", b"ab", b"b", b"\xff\xff"];
    for (i, key) in keys.iter().enumerate().rev() {
        put(
            &e,
            Cf::SubjectIndex,
            key,
            &[u8::try_from(i).expect("few keys")],
        );
    }
    let fwd = scan_keys(
        &e,
        Cf::SubjectIndex,
        b"",
        b"\xff\xff\xff",
        Dir::Forward,
        100,
    );
    assert_eq!(fwd, keys.iter().map(|k| k.to_vec()).collect::<Vec<_>>());
    let rev = scan_keys(
        &e,
        Cf::SubjectIndex,
        b"",
        b"\xff\xff\xff",
        Dir::Reverse,
        100,
    );
    assert_eq!(
        rev,
        keys.iter().rev().map(|k| k.to_vec()).collect::<Vec<_>>()
    );
    assert_eq!(
        scan_keys(&e, Cf::SubjectIndex, b"a", b"a\x01", Dir::Forward, 100),
        vec![b"a".to_vec(), b"a\x00".to_vec()]
    );
}

/// A frozen view keeps answering as of the moment it was taken: later puts,
/// deletes and range deletes are invisible through it, and the engine
/// itself sees them at once.
pub fn frozen_view_ignores_later_writes<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    fill(&e, Cf::Messages, 0..100);
    fill(&e, Cf::SubjectIndex, 0..3);
    let view = ok(e.frozen(), "frozen");
    put(&e, Cf::Messages, &k(5), b"changed");
    put(&e, Cf::Messages, &k(500), b"new");
    let mut b = WriteBatch::new();
    b.delete(Cf::Messages, k(7));
    b.delete_range(Cf::Messages, k(50), k(100));
    b.delete_range(Cf::SubjectIndex, k(0), k(3));
    ok(e.write(b), "write");
    ok(e.sync(), "sync");

    let (lo, hi) = (k(0), k(1_000));
    let then = ok(
        view.scan(Cf::Messages, &lo, &hi, Dir::Forward, 1_000),
        "view scan",
    );
    assert_eq!(
        then.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        ks(0..100)
    );
    assert_eq!(
        ok(view.get(Cf::Messages, &k(5)), "view get").as_deref(),
        Some(&b"v5"[..])
    );
    assert_eq!(ok(view.get(Cf::Messages, &k(500)), "view get"), None);
    let rev = ok(
        view.scan(Cf::Messages, &lo, &hi, Dir::Reverse, 2),
        "view scan",
    );
    assert_eq!(
        rev.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        ks([99, 98])
    );
    assert_eq!(
        ok(
            view.scan(Cf::SubjectIndex, &lo, &hi, Dir::Forward, 10),
            "view scan"
        )
        .len(),
        3
    );

    let now = scan_keys(&e, Cf::Messages, &lo, &hi, Dir::Forward, 1_000);
    let expect: Vec<u64> = (0..50).filter(|n| *n != 7).chain([500]).collect();
    assert_eq!(now, ks(expect));
    assert_eq!(
        get(&e, Cf::Messages, &k(5)).as_deref(),
        Some(&b"changed"[..])
    );
    assert!(scan(&e, Cf::SubjectIndex, &lo, &hi, Dir::Forward, 10).is_empty());
}

pub fn scan_pages_through_many_keys<E: Engine>(mut open: impl FnMut() -> E) {
    const N: u64 = 10_000;
    let e = open();
    for chunk in 0..N / 500 {
        fill(&e, Cf::Messages, chunk * 500..(chunk + 1) * 500);
    }
    let (lo, hi) = (k(0), k(N));
    let mut seen = Vec::new();
    let mut from = lo.clone();
    loop {
        let page = scan_keys(&e, Cf::Messages, &from, &hi, Dir::Forward, 777);
        let Some(last) = page.last() else { break };
        from = [last.as_slice(), &[0]].concat(); // immediate successor
        seen.extend(page);
    }
    assert_eq!(seen, ks(0..N));
    let mut seen_rev = Vec::new();
    let mut to = hi;
    loop {
        let page = scan_keys(&e, Cf::Messages, &lo, &to, Dir::Reverse, 1000);
        let Some(last) = page.last() else { break };
        to = last.clone();
        seen_rev.extend(page);
    }
    assert_eq!(seen_rev, ks((0..N).rev()));
    assert_eq!(
        get(&e, Cf::Messages, &k(N - 1)).as_deref(),
        Some(format!("v{}", N - 1).as_bytes())
    );
}

pub fn large_values<E: Engine>(mut open: impl FnMut() -> E) {
    const MIB: usize = 1 << 20;
    let e = open();
    let value = |seed: u8, len: usize| -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    };
    let mut b = WriteBatch::new();
    for seed in 0..4u8 {
        b.put(Cf::Messages, k(u64::from(seed)), value(seed, MIB));
    }
    b.put(Cf::RaftLog, k(1), value(9, 3 * MIB + 7));
    ok(e.write(b), "large batch");
    ok(e.sync(), "sync");
    for seed in 0..4u8 {
        assert!(
            get(&e, Cf::Messages, &k(u64::from(seed))) == Some(value(seed, MIB)),
            "value {seed}"
        );
    }
    assert!(get(&e, Cf::RaftLog, &k(1)) == Some(value(9, 3 * MIB + 7)));
    let got = scan(&e, Cf::Messages, &k(0), &k(10), Dir::Reverse, 10);
    assert_eq!(got.len(), 4);
    assert!(got[0].1 == value(3, MIB));
}

pub fn sync_without_writes<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    ok(e.sync(), "sync on empty store");
    ok(e.sync(), "second sync");
    put(&e, Cf::State, b"k", b"v");
    ok(e.sync(), "sync after write");
    ok(e.sync(), "sync with nothing new");
    assert_eq!(get(&e, Cf::State, b"k").as_deref(), Some(&b"v"[..]));
}

pub fn reopen_keeps_synced_writes<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    fill(&e, Cf::Messages, 0..100);
    put(&e, Cf::RaftMeta, b"vote", b"term 3");
    let mut b = WriteBatch::new();
    b.delete_range(Cf::Messages, k(0), k(50));
    ok(e.write(b), "delete_range");
    ok(e.sync(), "sync");
    drop(e);
    let e = open();
    assert_eq!(
        scan_keys(&e, Cf::Messages, &k(0), &k(1000), Dir::Forward, 1000),
        ks(50..100)
    );
    assert_eq!(
        get(&e, Cf::RaftMeta, b"vote").as_deref(),
        Some(&b"term 3"[..])
    );
    put(&e, Cf::RaftMeta, b"vote", b"term 4");
    ok(e.sync(), "sync");
    drop(e);
    let e = open();
    assert_eq!(
        get(&e, Cf::RaftMeta, b"vote").as_deref(),
        Some(&b"term 4"[..])
    );
}

/// A clean close is not a power loss: the OS still holds what was written.
pub fn reopen_after_clean_close_keeps_unsynced_writes<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    put(&e, Cf::State, b"synced", b"1");
    ok(e.sync(), "sync");
    put(&e, Cf::State, b"unsynced", b"2");
    drop(e);
    let e = open();
    assert_eq!(get(&e, Cf::State, b"synced").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&e, Cf::State, b"unsynced").as_deref(), Some(&b"2"[..]));
}

pub fn records_round_trip_through_engine<E: Engine>(mut open: impl FnMut() -> E) {
    let e = open();
    let key = crate::keys::message(3, 42);
    put(
        &e,
        Cf::Messages,
        &key,
        &record::encode_for(&key, b"payload"),
    );
    let stored = get(&e, Cf::Messages, &key).expect("record stored");
    assert_eq!(
        record::decode_for(&key, &stored).as_deref(),
        Ok(&b"payload"[..])
    );
    assert!(record::decode_for(&crate::keys::message(3, 43), &stored).is_err());
}
