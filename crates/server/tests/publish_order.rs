//! Publishes one connection sends without waiting for their acks are
//! stored in the order sent, whether the connection's node leads the stream
//! or forwards to its leader, and a burst of them is proposed in batches
//! (fewer Raft entries than messages).
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use common::Cluster;

const TOTAL: u64 = 2_000;

async fn js(url: &str) -> jetstream::Context {
    let client = async_nats::connect(url).await.unwrap();
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(10))
        .build(client)
}

/// Index of the node leading `stream` and its `/jsz` entry.
async fn leader_of(c: &Cluster, stream: &str) -> Option<(usize, serde_json::Value)> {
    for (i, node) in c.nodes.iter().enumerate() {
        let jsz = node.jsz().await;
        for s in jsz["streams"].as_array().unwrap() {
            if s["name"] == stream && s["role"] == "leader" {
                return Some((i, s.clone()));
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_publishes_keep_connection_order_and_are_batched() {
    let c = Cluster::start(3, &[]).await;
    c.wait_healthy(Duration::from_secs(30)).await;
    let admin = js(&c.urls()[0]).await;
    admin
        .create_stream(stream::Config {
            name: "ORD".into(),
            subjects: vec!["ord.>".into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let leader = loop {
        if let Some((i, _)) = leader_of(&c, "ORD").await {
            break i;
        }
        assert!(tokio::time::Instant::now() < deadline, "no leader for ORD");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // All sent before any ack is awaited: first to the leader's node, then
    // to a node that forwards to it.
    let follower = (leader + 1) % 3;
    let direct = js(&c.urls()[leader]).await;
    send_in_order(&direct, 0).await;
    let applied_before = leader_of(&c, "ORD").await.unwrap().1["applied"]
        .as_u64()
        .unwrap();
    send_in_order(&js(&c.urls()[follower]).await, TOTAL).await;

    let stream = direct.get_stream("ORD").await.unwrap();
    for k in (0..2 * TOTAL).step_by(97) {
        let m = stream.get_raw_message(k + 1).await.unwrap();
        assert_eq!(
            m.payload,
            k.to_string().as_bytes(),
            "payload at seq {}",
            k + 1
        );
    }

    // One Raft entry per publish would have applied at least TOTAL entries
    // each time.
    let (_, jsz) = leader_of(&c, "ORD").await.unwrap();
    let applied = jsz["applied"].as_u64().unwrap();
    assert!(
        applied_before < TOTAL && applied - applied_before < TOTAL,
        "{TOTAL} publishes took {applied_before} Raft entries, then \
         {TOTAL} forwarded ones {}: not batched",
        applied - applied_before
    );
    eprintln!(
        "{TOTAL} async publishes applied as {applied_before} Raft entries, \
         {TOTAL} forwarded ones as {}",
        applied - applied_before
    );
}

/// Sends publishes `first..first + TOTAL` (payload = its number) without
/// waiting, then checks each was stored at sequence number + 1.
async fn send_in_order(js: &jetstream::Context, first: u64) {
    let mut pending = Vec::new();
    for k in first..first + TOTAL {
        let subject = format!("ord.{}", k % 3);
        pending.push(js.publish(subject, k.to_string().into()).await.unwrap());
    }
    for (k, ack) in (first..).zip(pending) {
        let ack = ack.await.unwrap();
        assert_eq!(ack.sequence, k + 1, "publish #{k} stored out of order");
    }
}
