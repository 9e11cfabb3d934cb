//! Consumers in the stream machine: what a delivery takes, what acks do,
//! redelivery bookkeeping, retention driven by acks, and that a restored
//! machine continues identically.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, err};
use jetraft_stream::consumer::{AckOp, Delivered};
use jetraft_stream::{StreamCommand, StreamMachine, StreamReply};
use jetraft_types::consumer::{ConsumerAction, ConsumerConfig};

fn add(h: &mut Harness, json: &str) -> StreamReply {
    let cfg: ConsumerConfig = serde_json::from_str(json).unwrap();
    let cfg = cfg.normalize(h.m.config(), false).unwrap();
    h.apply(StreamCommand::AddConsumer {
        config: Box::new(cfg),
        action: ConsumerAction::CreateOrUpdate,
    })
}

fn deliver(h: &mut Harness, name: &str, batch: u32, redeliver: &[u64]) -> Delivered {
    match h.apply(StreamCommand::Deliver {
        consumer: name.into(),
        batch,
        max_bytes: 0,
        redeliver: redeliver.to_vec(),
    }) {
        StreamReply::Delivered(d) => *d,
        other => panic!("expected deliveries, got {other:?}"),
    }
}

fn seqs(d: &Delivered) -> Vec<u64> {
    d.deliveries.iter().map(|x| x.msg.seq).collect()
}

/// Acks of each sequence's latest delivery.
fn ack(h: &mut Harness, name: &str, seqs: &[u64], op: AckOp) -> StreamReply {
    h.apply(StreamCommand::Ack {
        consumer: name.into(),
        acks: seqs.iter().map(|s| (*s, u64::MAX, op)).collect(),
    })
}

#[test]
fn deliveries_follow_the_filter_and_acks_move_the_floor() {
    let mut h = Harness::new(r#"{"name":"S","subjects":["s.>"]}"#);
    for i in 0..6 {
        h.publish(if i % 2 == 0 { "s.a" } else { "s.b" }, "x");
    }
    add(
        &mut h,
        r#"{"durable_name":"C","ack_policy":"explicit","filter_subject":"s.a"}"#,
    );
    let c = &h.m.consumers()["C"];
    assert_eq!(c.num_pending, 3);
    let d = deliver(&mut h, "C", 2, &[]);
    assert_eq!(seqs(&d), vec![1, 3]);
    assert_eq!(d.deliveries[1].pending, 1);
    assert!(d.more);
    let d = deliver(&mut h, "C", 10, &[]);
    assert_eq!(seqs(&d), vec![5]);
    assert!(!d.more);
    assert_eq!(
        ack(&mut h, "C", &[3], AckOp::Ack),
        StreamReply::Acked(vec![true])
    );
    let c = &h.m.consumers()["C"];
    assert_eq!((c.ack_floor_sseq, c.ack_floor_cseq), (0, 0));
    assert_eq!(c.pending.len(), 2);
    ack(&mut h, "C", &[1], AckOp::Ack);
    let c = &h.m.consumers()["C"];
    assert_eq!((c.ack_floor_sseq, c.ack_floor_cseq), (4, 2));
    // A redelivery keeps the first consumer sequence in pending and counts.
    let d = deliver(&mut h, "C", 1, &[5]);
    assert_eq!(d.deliveries[0].deliveries, 2);
    assert_eq!(d.deliveries[0].cseq, 4);
    assert_eq!(h.m.consumers()["C"].num_redelivered(), 1);
    // An ack of the superseded first delivery changes nothing and is not
    // confirmed (a newer copy is out); the latest one's ack retires it;
    // acking again changes nothing and confirms nothing.
    let stale = h.apply(StreamCommand::Ack {
        consumer: "C".into(),
        acks: vec![(5, 1, AckOp::Ack)],
    });
    assert_eq!(stale, StreamReply::Acked(vec![false]));
    assert_eq!(h.m.consumers()["C"].pending.len(), 1);
    assert_eq!(
        ack(&mut h, "C", &[5], AckOp::Ack),
        StreamReply::Acked(vec![true])
    );
    assert_eq!(
        ack(&mut h, "C", &[5], AckOp::Ack),
        StreamReply::Acked(vec![false])
    );
    let c = &h.m.consumers()["C"];
    // Everything acked: the floor is what was looked at (nats-server moves
    // past the non-matching seq 6 too).
    assert_eq!((c.ack_floor_sseq, c.ack_floor_cseq), (6, 4));
}

#[test]
fn max_ack_pending_and_max_deliver_bound_deliveries() {
    let mut h = Harness::new(r#"{"name":"S","subjects":["s.>"]}"#);
    for _ in 0..5 {
        h.publish("s.a", "x");
    }
    add(
        &mut h,
        r#"{"durable_name":"C","ack_policy":"explicit","max_ack_pending":2,"max_deliver":2}"#,
    );
    assert_eq!(seqs(&deliver(&mut h, "C", 10, &[])), vec![1, 2]);
    assert!(deliver(&mut h, "C", 10, &[]).deliveries.is_empty());
    let d = deliver(&mut h, "C", 10, &[1]);
    assert_eq!(seqs(&d), vec![1]);
    let d = deliver(&mut h, "C", 10, &[1]);
    assert_eq!(d.exhausted, vec![(1, 2)]);
    // Exhausted frees room: message 3 goes out with the same command.
    assert_eq!(seqs(&d), vec![3]);
}

#[test]
fn deliver_policies_pick_the_start() {
    let mut h = Harness::new(r#"{"name":"S","subjects":["s.>"]}"#);
    for s in ["s.a", "s.b", "s.a", "s.c"] {
        h.publish(s, "x");
    }
    add(&mut h, r#"{"durable_name":"N","deliver_policy":"new"}"#);
    add(&mut h, r#"{"durable_name":"L","deliver_policy":"last"}"#);
    add(
        &mut h,
        r#"{"durable_name":"Q","deliver_policy":"by_start_sequence","opt_start_seq":2}"#,
    );
    add(
        &mut h,
        r#"{"durable_name":"P","deliver_policy":"last_per_subject","filter_subject":"s.>"}"#,
    );
    assert!(deliver(&mut h, "N", 10, &[]).deliveries.is_empty());
    assert_eq!(seqs(&deliver(&mut h, "L", 10, &[])), vec![4]);
    assert_eq!(seqs(&deliver(&mut h, "Q", 10, &[])), vec![2, 3, 4]);
    assert_eq!(seqs(&deliver(&mut h, "P", 10, &[])), vec![2, 3, 4]);
    h.publish("s.b", "x");
    assert_eq!(seqs(&deliver(&mut h, "N", 10, &[])), vec![5]);
    assert_eq!(seqs(&deliver(&mut h, "P", 10, &[])), vec![5]);
}

#[test]
fn workqueue_and_interest_retention_follow_acks() {
    let mut h = Harness::new(r#"{"name":"W","subjects":["w.>"],"retention":"workqueue"}"#);
    add(
        &mut h,
        r#"{"durable_name":"A","ack_policy":"explicit","filter_subject":"w.a"}"#,
    );
    let (code, err_code, _) = err(&add(
        &mut h,
        r#"{"durable_name":"B","ack_policy":"explicit","filter_subject":"w.>"}"#,
    ));
    assert_eq!((code, err_code), (400, 10100));
    let none: ConsumerConfig = serde_json::from_str(r#"{"durable_name":"B"}"#).unwrap();
    assert_eq!(
        none.normalize(h.m.config(), false)
            .err()
            .map(|e| e.err_code),
        Some(10084)
    );
    h.publish("w.a", "1");
    h.publish("w.a", "2");
    deliver(&mut h, "A", 10, &[]);
    ack(&mut h, "A", &[1], AckOp::Ack);
    assert_eq!(h.state().messages, 1);
    ack(&mut h, "A", &[2], AckOp::Term);
    assert_eq!(h.state().messages, 0);

    let mut h = Harness::new(r#"{"name":"I","subjects":["i.>"],"retention":"interest"}"#);
    // Nobody interested: not kept.
    h.publish("i.a", "0");
    assert_eq!(h.state().messages, 0);
    add(&mut h, r#"{"durable_name":"A","ack_policy":"explicit"}"#);
    add(&mut h, r#"{"durable_name":"B","ack_policy":"explicit"}"#);
    h.publish("i.a", "1");
    deliver(&mut h, "A", 10, &[]);
    deliver(&mut h, "B", 10, &[]);
    ack(&mut h, "A", &[2], AckOp::Ack);
    assert_eq!(h.state().messages, 1);
    ack(&mut h, "B", &[2], AckOp::Ack);
    assert_eq!(h.state().messages, 0);
    h.check_invariants();
}

#[test]
fn create_update_and_delete_follow_the_action() {
    let mut h = Harness::new(r#"{"name":"S","subjects":["s.>"]}"#);
    assert!(matches!(
        add(
            &mut h,
            r#"{"durable_name":"C","ack_wait":1000000000,"ack_policy":"explicit"}"#
        ),
        StreamReply::Consumer { created: true, .. }
    ));
    // ack_wait may change, the ack policy may not.
    assert!(matches!(
        add(
            &mut h,
            r#"{"durable_name":"C","ack_wait":2000000000,"ack_policy":"explicit"}"#
        ),
        StreamReply::Consumer { created: false, .. }
    ));
    let (code, err_code, text) = err(&add(&mut h, r#"{"durable_name":"C"}"#));
    assert_eq!(
        (code, err_code, text.as_str()),
        (500, 10012, "ack policy can not be updated")
    );
    let cfg = ConsumerConfig::default()
        .normalize(h.m.config(), false)
        .unwrap();
    let r = h.apply(StreamCommand::AddConsumer {
        config: Box::new(cfg.clone()),
        action: ConsumerAction::Update,
    });
    assert_eq!(err(&r).1, 10149);
    // An ephemeral gets a generated name.
    let r = h.apply(StreamCommand::AddConsumer {
        config: Box::new(cfg),
        action: ConsumerAction::CreateOrUpdate,
    });
    let StreamReply::Consumer { name, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(name.len(), 8);
    assert_eq!(h.m.state(h.m.consumers().len() as u64).consumer_count, 2);
    assert_eq!(
        h.apply(StreamCommand::DeleteConsumer { name }),
        StreamReply::ConsumerDeleted
    );
    assert_eq!(
        err(&h.apply(StreamCommand::DeleteConsumer {
            name: "nope".into()
        }))
        .1,
        10014
    );
}

#[test]
fn a_restored_machine_continues_identically() {
    let mut h = Harness::new(r#"{"name":"S","subjects":["s.>"]}"#);
    for _ in 0..4 {
        h.publish("s.a", "x");
    }
    add(&mut h, r#"{"durable_name":"C","ack_policy":"explicit"}"#);
    deliver(&mut h, "C", 2, &[]);
    ack(&mut h, "C", &[1], AckOp::Ack);
    let consumers: Vec<_> = h.m.consumers().values().cloned().collect();
    let wire = serde_json::to_string(&consumers).unwrap();
    let mut restored = StreamMachine::restore(
        h.m.summary(),
        h.m.dedup_entries(),
        serde_json::from_str(&wire).unwrap(),
        &h.store,
    )
    .unwrap();
    assert_eq!(restored.consumers(), h.m.consumers());
    let cmd = StreamCommand::Deliver {
        consumer: "C".into(),
        batch: 5,
        max_bytes: 0,
        redeliver: vec![2],
    };
    let a = restored.apply(&cmd, h.now, &h.store).unwrap();
    let b = h.m.apply(&cmd, h.now, &h.store).unwrap();
    assert_eq!(a, b);
}
