//! Purge (whole, filter, seq, keep) and message delete, with the state and
//! errors nats-server gives for the same calls.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use jetraft_stream::{StoreOp, StreamCommand, StreamReply};
use jetraft_types::api::PurgeRequest;

fn stream_i() -> Harness {
    let mut h = Harness::new(r#"{"name":"I","subjects":["i.>"]}"#);
    for i in 0..10 {
        h.publish(&format!("i.{}", i % 3), "x");
    }
    h
}

#[test]
fn whole_purge_moves_first_past_last() {
    let mut h = stream_i();
    assert_eq!(purged(&h.purge("{}")), 10);
    let st = h.state();
    assert_eq!(
        (
            st.messages,
            st.bytes,
            st.first_seq,
            st.last_seq,
            st.first_ts,
            st.num_subjects
        ),
        (0, 0, 11, 10, 0, 0)
    );
    assert_eq!(ack(&h.publish("i.1", "x")), 11);
}

#[test]
fn whole_purge_is_one_store_op() {
    let mut h = stream_i();
    let cmd = StreamCommand::Purge(PurgeRequest::default());
    let applied = h.m.apply(&cmd, h.now, &h.store).unwrap();
    assert_eq!(applied.ops, vec![StoreOp::PurgeAll]);
}

#[test]
fn delete_errors_and_deleted_counts() {
    let mut h = stream_i();
    assert_eq!(h.delete(5), StreamReply::Deleted);
    assert_eq!(
        err(&h.delete(5)),
        (400, 10043, "sequence 5 not found".into())
    );
    assert_eq!(
        h.apply(StreamCommand::DeleteMsg {
            seq: 10,
            no_erase: true
        }),
        StreamReply::Deleted
    );
    let st = h.state();
    assert_eq!(
        (
            st.messages,
            st.bytes,
            st.first_seq,
            st.last_seq,
            st.num_deleted
        ),
        (8, 272, 1, 10, 2)
    );
    assert_eq!(err(&h.delete(0)), (500, 10057, "no message found".into()));
    assert_eq!(err(&h.delete(99)), (500, 10057, "stream store EOF".into()));
    h.delete(1);
    assert_eq!(
        err(&h.delete(1)),
        (500, 10057, "no message found".into()),
        "below first"
    );
}

#[test]
fn filter_keep_then_filter_seq_then_keep_then_seq_past_end() {
    let mut h = stream_i();
    h.delete(5);
    h.delete(10);
    // Same sequence of calls as against nats-server, same results.
    assert_eq!(purged(&h.purge(r#"{"filter":"i.*","keep":2}"#)), 6);
    let st = h.state();
    assert_eq!(
        (
            st.messages,
            st.bytes,
            st.first_seq,
            st.last_seq,
            st.num_subjects,
            st.num_deleted
        ),
        (2, 68, 8, 10, 2, 1)
    );
    assert_eq!(purged(&h.purge(r#"{"filter":"i.2","seq":9}"#)), 0);
    assert_eq!(purged(&h.purge(r#"{"keep":1}"#)), 1);
    let st = h.state();
    assert_eq!(
        (st.messages, st.first_seq, st.last_seq, st.num_subjects),
        (1, 9, 10, 1)
    );
    assert_eq!(purged(&h.purge(r#"{"seq":20}"#)), 1);
    let st = h.state();
    assert_eq!((st.messages, st.first_seq, st.last_seq), (0, 20, 19));
    assert_eq!(ack(&h.publish("i.1", "x")), 20);
}

#[test]
fn purge_below_seq_and_filtered_keep() {
    let mut h = Harness::new(r#"{"name":"P","subjects":["p.>"]}"#);
    for i in 0..6 {
        h.publish(&format!("p.{}", i % 2), "x");
    }
    h.delete(3);
    assert_eq!(purged(&h.purge(r#"{"seq":3}"#)), 2);
    assert_eq!((h.state().messages, h.state().first_seq), (3, 4));
    assert_eq!(purged(&h.purge(r#"{"filter":"p.1","keep":1}"#)), 1);
    let st = h.state();
    assert_eq!(
        (
            st.messages,
            st.bytes,
            st.first_seq,
            st.last_seq,
            st.num_subjects
        ),
        (2, 68, 5, 6, 2)
    );
    h.delete(6);
    let st = h.state();
    assert_eq!(
        (
            st.messages,
            st.first_seq,
            st.last_seq,
            st.num_subjects,
            st.num_deleted
        ),
        (1, 5, 6, 1, 1)
    );
    h.delete(5);
    let st = h.state();
    assert_eq!(
        (st.messages, st.first_seq, st.last_seq, st.num_deleted),
        (0, 7, 6, 0)
    );
    assert_eq!(err(&h.delete(4)).2, "no message found");
    assert_eq!(ack(&h.publish("p.1", "x")), 7);
}

#[test]
fn filter_only_and_wildcards() {
    let mut h = stream_i();
    assert_eq!(purged(&h.purge(r#"{"filter":"i.1"}"#)), 3);
    assert_eq!(h.state().num_subjects, 2);
    assert_eq!(purged(&h.purge(r#"{"filter":"x.>"}"#)), 0);
    assert_eq!(purged(&h.purge(r#"{"filter":"i.*","seq":7}"#)), 4);
    assert_eq!(h.store.seqs(), vec![7, 9, 10]);
    assert_eq!(purged(&h.purge(r#"{"seq":1}"#)), 0, "below 1 is nothing");
}

#[test]
fn purge_refusals() {
    let mut h = stream_i();
    assert_eq!(
        err(&h.purge(r#"{"seq":2,"keep":1}"#)),
        (400, 10003, "bad request".into())
    );
    let mut h = Harness::new(r#"{"name":"K","deny_delete":true,"deny_purge":true}"#);
    h.publish("K", "x");
    assert_eq!(
        err(&h.purge("{}")),
        (500, 10110, "stream purge not permitted".into())
    );
    assert_eq!(
        err(&h.delete(1)),
        (500, 10057, "message delete not permitted".into())
    );
    let mut h = stream_i();
    h.update(r#"{"name":"I","subjects":["i.>"],"sealed":true}"#);
    assert_eq!(err(&h.purge("{}")).1, 10109);
    assert_eq!(err(&h.delete(1)).1, 10109);
    assert_eq!(h.state().messages, 10);
}
