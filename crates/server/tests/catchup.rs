//! A follower that fell behind the purged Raft log, or lost its disk, catches
//! up by streaming messages from its peers' stores (the stream snapshot is a
//! state summary) and ends up identical to the others.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use common::Cluster;
use futures::StreamExt;

async fn publish_n(ctx: &jetstream::Context, from: usize, to: usize) {
    let n = futures::stream::iter(from..to)
        .map(|i| {
            let ctx = ctx.clone();
            async move {
                let subject = format!("c.{}", i % 5);
                ctx.publish(subject, format!("{i:08}").into())
                    .await
                    .unwrap()
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(64)
        .count()
        .await;
    assert_eq!(n, to - from);
}

/// The replica on `node`; `None` while it hosts none or does not answer
/// (a node busy catching up may miss one poll; it must converge in time).
async fn replica(c: &Cluster, node: usize) -> Option<serde_json::Value> {
    c.nodes[node].stream_replica("C").await
}

/// Waits until all three replicas report the same digest, count and last seq.
async fn converged(c: &Cluster, messages: u64) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut views = Vec::new();
        for i in 0..3 {
            views.push(replica(c, i).await.map(|r| {
                (
                    r["digest"].clone(),
                    r["messages"].clone(),
                    r["last_seq"].clone(),
                )
            }));
        }
        if views.iter().all(|v| v.is_some() && *v == views[0]) {
            let (digest, count, _) = views[0].clone().unwrap();
            assert_eq!(count.as_u64(), Some(messages));
            return digest;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replicas never converged: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_and_empty_followers_catch_up_from_peer_stores() {
    let mut c = Cluster::start(3, &[]).await;
    let ctx = jetstream::new(async_nats::connect(c.nodes[0].url()).await.unwrap());
    ctx.create_stream(stream::Config {
        name: "C".into(),
        subjects: vec!["c.>".into()],
        num_replicas: 3,
        max_messages_per_subject: 3_000,
        ..Default::default()
    })
    .await
    .unwrap();
    publish_n(&ctx, 0, 2_000).await;

    // A follower that is not node 0 (the client's node) goes down.
    let mut follower = None;
    for i in 1..3 {
        if replica(&c, i).await.unwrap()["role"] == "follower" {
            follower = Some(i);
        }
    }
    let follower = follower.unwrap();
    c.nodes[follower].kill();
    // Far more than the log keeps (snapshot every 4096 entries, 1024 kept);
    // the per-subject limit also deletes old messages meanwhile.
    publish_n(&ctx, 2_000, 20_000).await;
    c.nodes[follower].start();
    c.wait_healthy(Duration::from_secs(60)).await;
    let digest = converged(&c, 15_000).await;

    // The same follower loses its whole disk and comes back empty.
    c.nodes[follower].kill();
    std::fs::remove_dir_all(&c.nodes[follower].data_dir).unwrap();
    c.nodes[follower].start();
    c.wait_healthy(Duration::from_secs(60)).await;
    assert_eq!(converged(&c, 15_000).await, digest);

    // Each subject kept its last 3,000: the oldest kept message is near
    // 5,001 (64 publishes in flight interleave the subjects' sequences),
    // and the same on every replica.
    let r = replica(&c, follower).await.unwrap();
    let first = r["first_seq"].as_u64().unwrap_or(0);
    assert!((4_900..=5_100).contains(&first), "{r}");
    let other = replica(&c, (follower + 1) % 3).await.unwrap();
    assert_eq!(other["first_seq"].as_u64(), Some(first), "{other}");
}
