//! max_msgs, max_bytes, max_msgs_per_subject, max_age with discard old and
//! new; the expected numbers come from the same scenarios on nats-server.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use jetraft_stream::{StreamCommand, StreamReply};

#[test]
fn max_msgs_discard_old_drops_oldest() {
    let mut h = Harness::new(r#"{"name":"A","subjects":["a.>"],"max_msgs":3}"#);
    for i in 0..5 {
        assert_eq!(ack(&h.publish(&format!("a.{}", i % 2), "x")), i + 1);
    }
    let st = h.state();
    assert_eq!(
        (
            st.messages,
            st.bytes,
            st.first_seq,
            st.last_seq,
            st.num_subjects
        ),
        (3, 102, 3, 5, 2)
    );
    assert_eq!(h.store.seqs(), vec![3, 4, 5]);
}

#[test]
fn max_msgs_discard_new_refuses() {
    let mut h = Harness::new(r#"{"name":"B","subjects":["b.>"],"max_msgs":3,"discard":"new"}"#);
    for i in 0..3 {
        ack(&h.publish(&format!("b.{}", i % 2), "x"));
    }
    assert_eq!(
        err(&h.publish("b.1", "x")),
        (503, 10077, "maximum messages exceeded".into())
    );
    assert_eq!((h.state().messages, h.state().last_seq), (3, 3));
    // Room again after a delete.
    h.delete(2);
    assert_eq!(ack(&h.publish("b.1", "x")), 4);
}

#[test]
fn max_bytes_discard_new_and_old() {
    let mut h = Harness::new(r#"{"name":"C","subjects":["c.>"],"max_bytes":100,"discard":"new"}"#);
    ack(&h.publish("c.1", "xxxxxxxxxx"));
    ack(&h.publish("c.1", "xxxxxxxxxx"));
    for _ in 0..2 {
        assert_eq!(
            err(&h.publish("c.1", "xxxxxxxxxx")),
            (503, 10077, "maximum bytes exceeded".into())
        );
    }
    let st = h.state();
    assert_eq!(
        (st.messages, st.bytes, st.first_seq, st.last_seq),
        (2, 86, 1, 2)
    );

    let mut h = Harness::new(r#"{"name":"D","subjects":["d.>"],"max_bytes":100}"#);
    for i in 1..=4 {
        assert_eq!(ack(&h.publish("d.1", "xxxxxxxxxx")), i);
    }
    let st = h.state();
    assert_eq!(
        (st.messages, st.bytes, st.first_seq, st.last_seq),
        (2, 86, 3, 4)
    );
}

#[test]
fn per_subject_limit_discard_new_per_subject_refuses() {
    let json = r#"{"name":"E","subjects":["e.>"],"max_msgs_per_subject":2,"discard":"new","discard_new_per_subject":true}"#;
    let mut h = Harness::new(json);
    ack(&h.publish("e.1", "x"));
    ack(&h.publish("e.1", "x"));
    assert_eq!(
        err(&h.publish("e.1", "x")),
        (503, 10077, "maximum messages per subject exceeded".into())
    );
    assert_eq!(
        ack(&h.publish("e.2", "x")),
        3,
        "other subjects are unaffected"
    );
}

#[test]
fn per_subject_replacement_does_not_count_against_max_msgs() {
    let json =
        r#"{"name":"F","subjects":["f.>"],"max_msgs_per_subject":2,"max_msgs":3,"discard":"new"}"#;
    let mut h = Harness::new(json);
    for i in 1..=4 {
        assert_eq!(ack(&h.publish("f.1", "x")), i);
    }
    assert_eq!(ack(&h.publish("f.2", "y")), 5);
    assert_eq!(err(&h.publish("f.3", "y")).2, "maximum messages exceeded");
    let st = h.state();
    assert_eq!(
        (
            st.messages,
            st.bytes,
            st.first_seq,
            st.last_seq,
            st.num_subjects
        ),
        (3, 102, 3, 5, 2)
    );
}

#[test]
fn per_subject_limit_discard_old_keeps_latest() {
    let mut h = Harness::new(r#"{"name":"K","subjects":["k.>"],"max_msgs_per_subject":1}"#);
    for i in 0..6 {
        h.publish(&format!("k.{}", i % 3), &i.to_string());
    }
    assert_eq!(h.store.seqs(), vec![4, 5, 6]);
    assert_eq!(h.state().num_deleted, 0);
    h.publish("k.1", "again");
    assert_eq!(h.store.seqs(), vec![4, 6, 7]);
    assert_eq!(h.state().num_deleted, 1);
}

#[test]
fn max_age_expires_on_expire_and_publish() {
    let mut h = Harness::new(r#"{"name":"T","max_age":10000000000}"#);
    h.publish("T", "1");
    h.advance(5 * SEC);
    h.publish("T", "2");
    h.advance(5 * SEC - 1);
    assert_eq!(h.apply(StreamCommand::Expire), StreamReply::Expired(0));
    // Exactly max_age old expires (nats-server: ts <= now - max_age).
    h.advance(1);
    assert_eq!(h.apply(StreamCommand::Expire), StreamReply::Expired(1));
    assert_eq!((h.state().first_seq, h.state().messages), (2, 1));
    h.advance(20 * SEC);
    ack(&h.publish("T", "3"));
    assert_eq!(h.store.seqs(), vec![3], "a publish also enforces max_age");
    h.advance(20 * SEC);
    assert_eq!(h.apply(StreamCommand::Expire), StreamReply::Expired(1));
    let st = h.state();
    assert_eq!(
        (st.messages, st.first_seq, st.last_seq, st.first_ts),
        (0, 4, 3, 0)
    );
}

#[test]
fn proposal_time_never_runs_backwards() {
    let mut h = Harness::new(r#"{"name":"T","max_age":10000000000}"#);
    h.publish("T", "1");
    h.advance(-60 * SEC); // a new leader with a lagging clock
    h.publish("T", "2");
    assert_eq!(
        h.store.messages[&2].time_ns, T0,
        "stamped no earlier than the last apply"
    );
}

#[test]
fn lowering_limits_by_update_trims() {
    let mut h = Harness::new(r#"{"name":"U","subjects":["u.>"]}"#);
    for i in 0..10 {
        h.publish(&format!("u.{}", i % 2), "x");
    }
    assert_eq!(
        h.update(r#"{"name":"U","subjects":["u.>"],"max_msgs_per_subject":3}"#),
        StreamReply::ConfigUpdated
    );
    assert_eq!(h.store.seqs(), vec![5, 6, 7, 8, 9, 10]);
    h.update(r#"{"name":"U","subjects":["u.>"],"max_msgs_per_subject":3,"max_msgs":2}"#);
    assert_eq!(h.store.seqs(), vec![9, 10]);
    assert_eq!(h.m.config().max_msgs, 2);
    assert_eq!(
        err(&h.update(r#"{"name":"U","subjects":["u.>"],"storage":"memory"}"#)),
        (
            500,
            10052,
            "stream configuration update can not change storage type".into()
        )
    );
}

#[test]
fn a_message_larger_than_max_bytes_discard_old_empties_the_stream() {
    let mut h = Harness::new(r#"{"name":"Z","max_bytes":40}"#);
    ack(&h.publish("Z", "x"));
    assert_eq!(ack(&h.publish("Z", &"y".repeat(50))), 2);
    let st = h.state();
    assert_eq!(
        (st.messages, st.bytes, st.first_seq, st.last_seq),
        (0, 0, 3, 2)
    );
}
