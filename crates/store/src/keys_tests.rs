#![allow(clippy::unwrap_used)]

use super::*;

fn within(key: &[u8], (from, to): &(Vec<u8>, Vec<u8>)) -> bool {
    from.as_slice() <= key && key < to.as_slice()
}

#[test]
fn integers_sort_numerically() {
    let pairs = [
        (0u64, 1u64),
        (255, 256),
        (65_535, 65_536),
        (u64::MAX - 1, u64::MAX),
    ];
    for (a, b) in pairs {
        assert!(raft_log(7, a) < raft_log(7, b), "{a} < {b}");
        assert!(message(7, a) < message(7, b), "{a} < {b}");
        assert!(subject(7, "x", a) < subject(7, "x", b), "{a} < {b}");
    }
}

#[test]
fn group_keys_are_contiguous() {
    let g1 = group_bounds(1);
    let highest_of_1 = [
        raft_log(1, u64::MAX),
        message(1, u64::MAX),
        subject(1, "\u{10FFFF}.zzz", u64::MAX),
        raft_meta(1, RaftMetaKind::Membership),
        state(1, StateKind::Config),
        dedup(1, "\u{10FFFF}"),
        consumer(1, "zz"),
    ];
    let lowest_of_2 = [
        raft_log(2, 0),
        message(2, 0),
        subject(2, "", 0),
        raft_meta(2, RaftMetaKind::Vote),
    ];
    for k1 in &highest_of_1 {
        assert!(within(k1, &g1), "{k1:?} in group 1");
        for k2 in &lowest_of_2 {
            assert!(k1 < k2);
            assert!(!within(k2, &g1));
        }
    }
    assert!(!within(&raft_log(0, u64::MAX), &g1));
    assert_eq!(key_group(&subject(1, "a", 3)), Some(1));
}

#[test]
fn group_ids_sort_across_byte_boundaries() {
    assert!(raft_log(255, u64::MAX) < raft_log(256, 0));
    assert!(!within(&raft_log(256, 0), &group_bounds(255)));
}

#[test]
fn raft_log_round_trips() {
    for i in [0, 1, 255, 256, u64::MAX] {
        assert_eq!(raft_log_index(&raft_log(3, i)), Some(i));
        assert!(within(&raft_log(3, i), &raft_log_bounds(3)));
    }
    assert_eq!(raft_log_index(b"short"), None);
    assert_eq!(raft_log_index(&raft_meta(3, RaftMetaKind::Vote)), None);
    let (from, to) = raft_log_range(3, 10, 20);
    assert!(within(&raft_log(3, 10), &(from.clone(), to.clone())));
    assert!(!within(&raft_log(3, 20), &(from, to)));
}

#[test]
fn raft_meta_kinds_are_distinct() {
    let kinds = [
        RaftMetaKind::Vote,
        RaftMetaKind::Committed,
        RaftMetaKind::Purged,
        RaftMetaKind::Snapshot,
        RaftMetaKind::Membership,
    ];
    let keys: std::collections::BTreeSet<_> = kinds.iter().map(|&k| raft_meta(9, k)).collect();
    assert_eq!(keys.len(), kinds.len());
    assert!(keys.iter().all(|k| within(k, &group_bounds(9))));
}

#[test]
fn message_bounds_are_half_open() {
    let b = message_bounds(4, 10, 12);
    assert!(!within(&message(4, 9), &b));
    assert!(within(&message(4, 10), &b));
    assert!(within(&message(4, 11), &b));
    assert!(!within(&message(4, 12), &b));
    assert!(within(&message(4, u64::MAX), &message_all_bounds(4)));
    assert_eq!(message_seq(&message(4, 300)), Some(300));
}

#[test]
fn subject_does_not_match_longer_subject() {
    let a = subject_bounds(1, "a");
    assert!(within(&subject(1, "a", 0), &a));
    assert!(within(&subject(1, "a", u64::MAX), &a));
    for other in ["ab", "a.b", "", "b", "a\0", "a\u{1}", "\0"] {
        for seq in [0, 1, 0x0001_0000_0000_0000, u64::MAX] {
            assert!(
                !within(&subject(1, other, seq), &a),
                "{other:?} seq {seq} leaks into \"a\""
            );
        }
    }
    assert!(!within(&subject(2, "a", 0), &a));
}

#[test]
fn subjects_sort_in_subject_then_seq_order() {
    let ordered = ["", "\0", "a", "a\0", "a\0b", "a\u{1}", "a.b", "ab", "b"];
    for w in ordered.windows(2) {
        assert!(
            subject(1, w[0], u64::MAX) < subject(1, w[1], 0),
            "{:?} < {:?}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn subject_parts_round_trip() {
    for subj in ["", "orders.eu.1", "a\0b\0", "\u{e9}t\u{e9}"] {
        for seq in [0, 256, u64::MAX] {
            let key = subject(42, subj, seq);
            assert_eq!(subject_parts(&key), Some((42, subj.to_string(), seq)));
            assert_eq!(subject_seq(&key), Some(seq));
        }
    }
    assert_eq!(subject_parts(&message(1, 2)), None);
    assert_eq!(subject_parts(b""), None);
}

#[test]
fn subject_prefix_matches_exactly_the_prefixed_subjects() {
    let p = subject_prefix_bounds(1, "orders.");
    for s in ["orders.", "orders.eu", "orders.eu.1", "orders.\0"] {
        assert!(within(&subject(1, s, 5), &p), "{s}");
    }
    for s in ["orders", "order", "ordersx", "p"] {
        assert!(!within(&subject(1, s, 5), &p), "{s}");
    }
    let nul = subject_prefix_bounds(1, "a\0");
    assert!(within(&subject(1, "a\0", 1), &nul));
    assert!(within(&subject(1, "a\0b", 1), &nul));
    assert!(!within(&subject(1, "a", 1), &nul));
}

#[test]
fn state_families_do_not_overlap() {
    let dedups = dedup_bounds(5);
    let consumers = consumer_bounds(5);
    for kind in [
        StateKind::Applied,
        StateKind::Summary,
        StateKind::Catalog,
        StateKind::Config,
        StateKind::Catchup,
        StateKind::Identity,
    ] {
        let k = state(5, kind);
        assert!(!within(&k, &dedups) && !within(&k, &consumers));
        assert!(within(&k, &group_bounds(5)));
    }
    assert!(within(&dedup(5, ""), &dedups));
    assert!(within(&dedup(5, "\u{10FFFF}"), &dedups));
    assert!(!within(&dedup(5, "x"), &consumers));
    assert!(within(&consumer(5, "durable"), &consumers));
    assert!(!within(&dedup(6, "x"), &dedups));
    assert_eq!(dedup_msg_id(&dedup(5, "id-1")), Some("id-1"));
    assert_eq!(consumer_name(&consumer(5, "c")), Some("c"));
    assert_eq!(dedup_msg_id(&consumer(5, "c")), None);
}

#[test]
fn prefix_successor_carries() {
    assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
    assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
    assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
    assert_eq!(prefix_successor(&[]), None);
}
