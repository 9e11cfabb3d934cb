//! `Nats-Msg-Id` deduplication inside `duplicate_window`, by proposal time,
//! and the summary/restore path the Raft snapshot takes.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use jetraft_stream::{StreamCommand, StreamMachine, StreamSummary};

const M: &str = r#"{"name":"M","duplicate_window":1000000000}"#;

#[test]
fn duplicate_returns_original_seq_and_stores_nothing() {
    let mut h = Harness::new(M);
    assert_eq!(ack(&h.publish_h("M", &[("Nats-Msg-Id", "a")], "1")), 1);
    assert_eq!(ack(&h.publish("M", "2")), 2);
    assert_eq!(
        dup(&h.publish_h("M", &[("Nats-Msg-Id", "a")], "other payload")),
        1
    );
    assert_eq!((h.state().messages, h.state().last_seq), (2, 2));
}

#[test]
fn window_expires_by_proposal_time() {
    let mut h = Harness::new(M);
    ack(&h.publish_h("M", &[("Nats-Msg-Id", "a")], "1"));
    h.advance(SEC - 1);
    assert_eq!(dup(&h.publish_h("M", &[("Nats-Msg-Id", "a")], "1")), 1);
    h.advance(1);
    // now - ts >= window: forgotten, stored again.
    assert_eq!(ack(&h.publish_h("M", &[("Nats-Msg-Id", "a")], "1")), 2);
    assert_eq!(h.m.dedup_entries().len(), 1);
    h.advance(2 * SEC);
    h.apply(StreamCommand::Expire);
    assert!(h.m.dedup_entries().is_empty(), "expiry removes entries");
    assert!(h.store.dedup.is_empty(), "and tells the store");
}

#[test]
fn window_holds_only_recent_ids() {
    let mut h = Harness::new(M);
    for i in 0..100 {
        h.publish_h("M", &[("Nats-Msg-Id", &format!("id{i}"))], "x");
        h.advance(SEC / 10);
    }
    // Ids older than one second are gone: at most ten remain.
    assert_eq!(h.m.dedup_entries().len(), 10);
    assert_eq!(h.m.dedup_entries()[0].id, "id90");
}

#[test]
fn deleted_original_still_dedups_within_window() {
    let mut h = Harness::new(M);
    ack(&h.publish_h("M", &[("Nats-Msg-Id", "a")], "1"));
    h.delete(1);
    assert_eq!(dup(&h.publish_h("M", &[("Nats-Msg-Id", "a")], "1")), 1);
}

#[test]
fn summary_and_restore_continue_identically() {
    let mut h = Harness::new(r#"{"name":"R","subjects":["r.>"],"max_msgs":5}"#);
    for i in 0..8 {
        h.publish_h("r.x", &[("Nats-Msg-Id", &format!("m{i}"))], "x");
    }
    let wire = serde_json::to_string(&h.m.summary()).unwrap();
    let summary: StreamSummary = serde_json::from_str(&wire).unwrap();
    let dedup_wire = serde_json::to_string(&h.m.dedup_entries()).unwrap();
    let mut restored = StreamMachine::restore(
        summary,
        serde_json::from_str(&dedup_wire).unwrap(),
        Vec::new(),
        &h.store,
    )
    .unwrap();
    assert_eq!(restored.summary(), h.m.summary());
    let cmd = StreamCommand::Publish {
        subject: "r.x".into(),
        headers: Some(header_block(&[("Nats-Msg-Id", "m3")])),
        payload: "x".into(),
    };
    let a = restored.apply(&cmd, h.now, &h.store).unwrap();
    let b = h.m.apply(&cmd, h.now, &h.store).unwrap();
    assert_eq!(a, b);
    assert_eq!(dup(&a.reply), 4);
}

#[test]
fn replicas_applying_the_same_log_agree() {
    let mut a =
        Harness::new(r#"{"name":"Q","subjects":["q.>"],"max_msgs_per_subject":2,"max_bytes":500}"#);
    let mut b =
        Harness::new(r#"{"name":"Q","subjects":["q.>"],"max_msgs_per_subject":2,"max_bytes":500}"#);
    for i in 0..50u64 {
        let subj = format!("q.{}", i % 7);
        let id = format!("id{}", i % 11);
        for h in [&mut a, &mut b] {
            h.advance(SEC / 3);
            h.publish_h(
                &subj,
                &[("Nats-Msg-Id", &id)],
                &"p".repeat((i % 13) as usize),
            );
            if i % 9 == 0 {
                h.purge(r#"{"filter":"q.3"}"#);
            }
        }
    }
    assert_eq!(a.m.summary(), b.m.summary());
    assert_eq!(a.store.messages, b.store.messages);
    assert!(a.state().bytes <= 500);
}
