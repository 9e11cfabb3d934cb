//! A restart does not replay history: the Raft log is purged behind
//! snapshots (state summaries), so what a node reads at startup is bounded
//! whatever was ever published. Checked structurally (log entries kept) and
//! reported as wall time after 1,000 and after 100,000 messages.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use common::Cluster;
use futures::StreamExt;

/// `RaftTiming::default()`: snapshot every 4096 entries, keep 1024 behind.
const LOG_BOUND: u64 = 4096 + 1024 + 512;

async fn publish_n(ctx: &jetstream::Context, from: usize, to: usize) {
    let acks: Vec<_> = futures::stream::iter(from..to)
        .map(|i| {
            let ctx = ctx.clone();
            async move {
                ctx.publish("r.x", format!("{i:08}").into())
                    .await
                    .unwrap()
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(128)
        .collect()
        .await;
    assert_eq!(acks.len(), to - from);
}

async fn restart_follower(c: &mut Cluster, follower: usize) -> Duration {
    c.nodes[follower].kill();
    let started = tokio::time::Instant::now();
    c.nodes[follower].start();
    c.wait_healthy(Duration::from_secs(120)).await;
    started.elapsed()
}

async fn replica(c: &Cluster, node: usize) -> serde_json::Value {
    let jsz = c.nodes[node].jsz().await;
    jsz["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "R")
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_time_does_not_grow_with_history() {
    let mut c = Cluster::start(3, &[]).await;
    let client = async_nats::connect(c.nodes[0].url()).await.unwrap();
    let ctx = jetstream::new(client);
    ctx.create_stream(stream::Config {
        name: "R".into(),
        subjects: vec!["r.>".into()],
        num_replicas: 3,
        ..Default::default()
    })
    .await
    .unwrap();

    publish_n(&ctx, 0, 1_000).await;
    let follower = {
        let mut f = None;
        for i in 1..3 {
            if replica(&c, i).await["role"] == "follower" {
                f = Some(i);
            }
        }
        f.unwrap()
    };
    let small = restart_follower(&mut c, follower).await;

    publish_n(&ctx, 1_000, 100_000).await;
    // Every replica has purged its log behind a snapshot.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..3 {
        let r = replica(&c, i).await;
        assert!(
            r["log_entries"].as_u64().unwrap() <= LOG_BOUND,
            "node {i} keeps {r}"
        );
    }
    let large = restart_follower(&mut c, follower).await;
    let r = replica(&c, follower).await;
    assert_eq!(r["messages"].as_u64(), Some(100_000));
    assert!(r["log_entries"].as_u64().unwrap() <= LOG_BOUND, "{r}");
    println!("restart to healthy: after 1,000 msgs {small:?}; after 100,000 msgs {large:?}");
}
