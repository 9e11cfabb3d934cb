//! Sequencing, byte accounting and the publish header checks, each case
//! taken from the same scenario run against nats-server 2.15.1.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use jetraft_stream::StreamReply;

const S: &str = r#"{"name":"S","subjects":["s.>"]}"#;

#[test]
fn sequences_counters_and_bytes_match_nats_server() {
    let mut h = Harness::new(S);
    assert_eq!(h.state().first_seq, 0);
    assert_eq!(ack(&h.publish("s.a", "hello")), 1);
    h.advance(1);
    assert_eq!(ack(&h.publish_h("s.a", &[("Foo", "bar")], "hello")), 2);
    assert_eq!(ack(&h.publish_h("s.b", &[("Nats-Msg-Id", "m1")], "")), 3);
    assert_eq!(dup(&h.publish_h("s.b", &[("Nats-Msg-Id", "m1")], "")), 3);
    assert_eq!(
        ack(&h.publish_h("s.b", &[("Nats-Expected-Last-Sequence", "3")], "x")),
        4
    );
    assert_eq!(
        ack(&h.publish_h("s.c", &[("Nats-Expected-Last-Subject-Sequence", "0")], "x")),
        5
    );
    let st = h.state();
    // nats-server reported exactly these for the same five messages.
    assert_eq!(
        (st.messages, st.bytes, st.first_seq, st.last_seq),
        (5, 340, 1, 5)
    );
    assert_eq!(st.num_subjects, 3);
    assert_eq!(st.first_ts, T0);
    assert_eq!(st.last_ts, T0 + 1);
    assert_eq!(h.delete(1), StreamReply::Deleted);
    let st = h.state();
    assert_eq!(
        (st.messages, st.bytes, st.first_seq, st.first_ts),
        (4, 302, 2, T0 + 1)
    );
}

#[test]
fn memory_storage_counts_memstore_sizes() {
    let mut h = Harness::new(r#"{"name":"M","storage":"memory"}"#);
    h.publish("M", "hello");
    h.publish_h("M", &[("A", "b")], "hello");
    // 1+5+16, then 1+(10+6+2)+5+16.
    assert_eq!(h.state().bytes, 22 + 40);
}

#[test]
fn first_seq_config_starts_the_stream_there() {
    let mut h = Harness::new(r#"{"name":"H","first_seq":100}"#);
    assert_eq!((h.state().first_seq, h.state().last_seq), (100, 99));
    assert_eq!(ack(&h.publish("H", "x")), 100);
    let st = h.state();
    assert_eq!(
        (st.messages, st.bytes, st.first_seq, st.last_seq),
        (1, 32, 100, 100)
    );
}

#[test]
fn expected_header_errors() {
    let mut h = Harness::new(S);
    h.publish("s.a", "1");
    h.publish("s.b", "2");
    h.publish("s.b", "3");
    assert_eq!(
        err(&h.publish_h("s.b", &[("Nats-Expected-Last-Sequence", "1")], "x")),
        (400, 10071, "wrong last sequence: 3".into())
    );
    assert_eq!(
        err(&h.publish_h("s.b", &[("Nats-Expected-Last-Sequence", "x")], "x")),
        (400, 10071, "wrong last sequence: 3".into()),
        "unparsable is a mismatch, like nats-server"
    );
    assert_eq!(
        err(&h.publish_h("s.b", &[("Nats-Expected-Stream", "Q")], "x")),
        (400, 10060, "expected stream does not match".into())
    );
    assert_eq!(
        ack(&h.publish_h("s.b", &[("Nats-Expected-Stream", "S")], "x")),
        4
    );
    assert_eq!(
        err(&h.publish_h("s.b", &[("Nats-Expected-Last-Subject-Sequence", "1")], "x")),
        (400, 10071, "wrong last sequence: 4".into()),
        "reports the subject's actual last sequence"
    );
    assert_eq!(
        err(&h.publish_h(
            "s.c",
            &[("Nats-Expected-Last-Subject-Sequence-Subject", "s.b")],
            "x"
        )),
        (
            400,
            10193,
            "missing sequence for expected last sequence per subject".into()
        )
    );
    // The subject override, including a wildcard, as nats-server allows.
    let hdrs = [
        ("Nats-Expected-Last-Subject-Sequence", "4"),
        ("Nats-Expected-Last-Subject-Sequence-Subject", "s.b"),
    ];
    assert_eq!(ack(&h.publish_h("s.c", &hdrs, "x")), 5);
    let hdrs = [
        ("Nats-Expected-Last-Subject-Sequence", "4"),
        ("Nats-Expected-Last-Subject-Sequence-Subject", "s.*"),
    ];
    assert_eq!(
        err(&h.publish_h("s.c", &hdrs, "x")),
        (400, 10071, "wrong last sequence: 5".into())
    );
    assert_eq!(
        err(&h.publish_h("s.b", &[("Nats-Expected-Last-Msg-Id", "zz")], "x")),
        (400, 10070, "wrong last msg ID: ".into())
    );
    assert_eq!(h.state().messages, 5, "refused publishes store nothing");
    assert_eq!(h.state().last_seq, 5);
}

#[test]
fn expected_last_sequence_is_a_compare_and_set() {
    let mut h = Harness::new(S);
    h.publish("s.a", "1");
    // Two writers both saw last_seq 1: the first wins, the second is told
    // the new last sequence.
    let cas = [("Nats-Expected-Last-Sequence", "1")];
    assert_eq!(ack(&h.publish_h("s.a", &cas, "w1")), 2);
    assert_eq!(err(&h.publish_h("s.a", &cas, "w2")).1, 10071);
    // KV-style create: subject must not exist yet.
    let create = [("Nats-Expected-Last-Subject-Sequence", "0")];
    assert_eq!(ack(&h.publish_h("s.k", &create, "v")), 3);
    assert_eq!(
        err(&h.publish_h("s.k", &create, "v")),
        (400, 10071, "wrong last sequence: 3".into())
    );
}

#[test]
fn expected_last_msg_id_tracks_the_last_stored_message() {
    let mut h = Harness::new(r#"{"name":"M","subjects":["m.>"],"duplicate_window":1000000000}"#);
    assert_eq!(ack(&h.publish_h("m.1", &[("Nats-Msg-Id", "a")], "x")), 1);
    let hdrs = [("Nats-Expected-Last-Msg-Id", "a"), ("Nats-Msg-Id", "b")];
    assert_eq!(ack(&h.publish_h("m.1", &hdrs, "x")), 2);
    let hdrs = [("Nats-Expected-Last-Msg-Id", "a"), ("Nats-Msg-Id", "c")];
    assert_eq!(
        err(&h.publish_h("m.1", &hdrs, "x")),
        (400, 10070, "wrong last msg ID: b".into())
    );
    // Dedup is checked before the expected last id.
    let hdrs = [("Nats-Expected-Last-Msg-Id", "b"), ("Nats-Msg-Id", "a")];
    assert_eq!(dup(&h.publish_h("m.1", &hdrs, "x")), 1);
    // A message without an id resets it.
    h.publish("m.1", "x");
    assert_eq!(
        err(&h.publish_h("m.1", &[("Nats-Expected-Last-Msg-Id", "b")], "x")),
        (400, 10070, "wrong last msg ID: ".into())
    );
}

#[test]
fn sealed_size_and_ttl_refusals() {
    let mut h = Harness::new(r#"{"name":"G","max_msg_size":10}"#);
    assert_eq!(ack(&h.publish("G", "xxxxxxxxxx")), 1);
    assert_eq!(
        err(&h.publish("G", "xxxxxxxxxxx")),
        (400, 10054, "message size exceeds maximum allowed".into())
    );
    // Headers count towards max_msg_size.
    assert_eq!(err(&h.publish_h("G", &[("A", "b")], "xxxxx")).1, 10054);
    let big = "v".repeat(70_000);
    let mut h = Harness::new(S);
    assert_eq!(
        err(&h.publish_h("s.a", &[("Nats-TTL", "5")], "")),
        (400, 10166, "per-message TTL is disabled".into())
    );
    assert_eq!(err(&h.publish_h("s.a", &[("Big", &big)], "")).1, 10097);
    h.update(r#"{"name":"S","subjects":["s.>"],"sealed":true}"#);
    assert_eq!(
        err(&h.publish("s.a", "x")),
        (400, 10109, "invalid operation on sealed stream".into())
    );
}

#[test]
fn rollups() {
    let mut h = Harness::new(r#"{"name":"J","subjects":["j.>"]}"#);
    assert_eq!(
        err(&h.publish_h("j.1", &[("Nats-Rollup", "all")], "r")),
        (500, 10111, "rollup not permitted".into())
    );
    let mut h = Harness::new(r#"{"name":"J","subjects":["j.>"],"allow_rollup_hdrs":true}"#);
    for i in 0..6 {
        h.publish(&format!("j.{}", i % 3), "x");
    }
    assert_eq!(ack(&h.publish_h("j.1", &[("Nats-Rollup", "sub")], "r")), 7);
    // nats-server: 5 messages, 204 bytes, seqs 2 and 5 gone.
    let st = h.state();
    assert_eq!(
        (st.messages, st.bytes, st.first_seq, st.num_deleted),
        (5, 204, 1, 2)
    );
    assert_eq!(h.store.seqs(), vec![1, 3, 4, 6, 7]);
    assert_eq!(
        err(&h.publish_h("j.1", &[("Nats-Rollup", "bogus")], "r")),
        (500, 10111, "rollup value invalid: \"bogus\"".into())
    );
    assert_eq!(ack(&h.publish_h("j.2", &[("Nats-Rollup", "all")], "r")), 8);
    let st = h.state();
    assert_eq!(
        (
            st.messages,
            st.bytes,
            st.first_seq,
            st.last_seq,
            st.num_subjects
        ),
        (1, 68, 8, 8, 1)
    );
}
