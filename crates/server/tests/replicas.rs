//! `STREAM.UPDATE` with a new `num_replicas` moves a stream between replica
//! sets on three real nodes: new replicas catch up (from the log, or from a
//! frozen replica when the log is purged) and become voters, dropped ones
//! delete their copies only after the change commits, and no acked message
//! is lost on the way.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use common::Cluster;
use futures::StreamExt;

const WAIT: Duration = Duration::from_secs(60);

/// Publishes `from..to` to `prefix.{i % 10}`, `window` in flight.
async fn publish_n(ctx: &jetstream::Context, prefix: &str, from: usize, to: usize, window: usize) {
    let n = futures::stream::iter(from..to)
        .map(|i| {
            let ctx = ctx.clone();
            let subject = format!("{prefix}.{}", i % 10);
            async move {
                ctx.publish(subject, format!("{i:08}").into())
                    .await
                    .unwrap()
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(window)
        .count()
        .await;
    assert_eq!(n, to - from);
}

async fn replica(c: &Cluster, node: usize, name: &str) -> Option<serde_json::Value> {
    c.nodes[node].child.as_ref()?;
    let jsz = c.nodes[node].jsz().await;
    jsz["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

/// Waits until exactly `holders` nodes report a replica of `name`, all
/// with the same digest, count and last seq; returns the digest.
async fn converged(c: &Cluster, name: &str, holders: usize, messages: u64) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut views = Vec::new();
        for i in 0..c.nodes.len() {
            if let Some(r) = replica(c, i, name).await {
                views.push((
                    r["digest"].as_str().unwrap().to_string(),
                    r["messages"].as_u64().unwrap(),
                    r["last_seq"].as_u64().unwrap(),
                ));
            }
        }
        if views.len() == holders && views.iter().all(|v| *v == views[0]) {
            assert_eq!(views[0].1, messages, "{views:?}");
            return views[0].0.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never converged on {holders} nodes: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the stream's leader reports `voters` voters and no
/// learners (the membership change has committed) and its info lists
/// every follower as current.
async fn settled(c: &Cluster, ctx: &jetstream::Context, name: &str, voters: usize) -> stream::Info {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let info = ctx
            .get_stream(name)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .clone();
        let cluster = info.cluster.clone().unwrap();
        let members = match &cluster.leader {
            Some(l) => replica(c, node_of(c, l), name).await,
            None => None,
        };
        let done = members.as_ref().is_some_and(|m| {
            m["voters"].as_array().map(Vec::len) == Some(voters)
                && m["learners"].as_array().is_some_and(Vec::is_empty)
        });
        if done
            && cluster.replicas.len() == voters - 1
            && cluster.replicas.iter().all(|r| r.current)
        {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never settled on {voters} voters: {cluster:?} {members:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn set_replicas(ctx: &jetstream::Context, config: &stream::Config, n: usize) -> stream::Info {
    let mut config = config.clone();
    config.num_replicas = n;
    let info = ctx.update_stream(config).await.unwrap();
    assert_eq!(info.config.num_replicas, n);
    info
}

fn node_of(c: &Cluster, name: &str) -> usize {
    c.nodes.iter().position(|n| n.name == name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_kill_the_leader_and_scale_down_without_losing_messages() {
    let mut c = Cluster::start(3, &[]).await;
    let ctx = jetstream::new(async_nats::connect(c.nodes[0].url()).await.unwrap());
    let mut config = stream::Config {
        name: "M".into(),
        subjects: vec!["m.>".into()],
        num_replicas: 1,
        max_messages_per_subject: 3,
        ..Default::default()
    };
    ctx.create_stream(config.clone()).await.unwrap();
    publish_n(&ctx, "m", 0, 300, 16).await;
    // A config change in the log: a new replica replays the entries before
    // it under the limit they were proposed under, or it diverges.
    config.max_messages_per_subject = 200;
    ctx.update_stream(config.clone()).await.unwrap();
    publish_n(&ctx, "m", 300, 600, 16).await;
    converged(&c, "M", 1, 10 * 33).await;

    // R1 → R3 while a publisher keeps going.
    let publisher = {
        let ctx = ctx.clone();
        tokio::spawn(async move { publish_n(&ctx, "m", 600, 1_600, 8).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    set_replicas(&ctx, &config, 3).await;
    publisher.await.unwrap();
    converged(&c, "M", 3, 10 * 133).await;
    let info = settled(&c, &ctx, "M", 3).await;

    // The new replicas are voters: the group survives losing its leader.
    let leader = node_of(&c, info.cluster.unwrap().leader.as_deref().unwrap());
    c.nodes[leader].kill();
    let other = (leader + 1) % 3;
    let ctx2 = jetstream::new(async_nats::connect(c.nodes[other].url()).await.unwrap());
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut acked = 0;
    while acked < 10 {
        let id = format!("after-kill-{acked}");
        let headers = {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Msg-Id", id.as_str());
            h
        };
        let ack = match ctx2
            .publish_with_headers(format!("m.{acked}"), headers, "x".into())
            .await
        {
            Ok(f) => f.await,
            Err(e) => Err(e),
        };
        match ack {
            Ok(_) => acked += 1,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "no new leader: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    c.nodes[leader].start();
    c.wait_healthy(WAIT).await;
    converged(&c, "M", 3, 10 * 133 + 10).await;

    // R3 → R1 keeps the leader; the other two delete their copies.
    let leader = settled(&c, &ctx2, "M", 3)
        .await
        .cluster
        .unwrap()
        .leader
        .unwrap();
    let info = set_replicas(&ctx2, &config, 1).await;
    assert_eq!(
        info.cluster.unwrap().leader.as_deref(),
        Some(leader.as_str())
    );
    let digest = converged(&c, "M", 1, 1_340).await;
    assert!(replica(&c, node_of(&c, &leader), "M").await.is_some());
    assert_eq!(settled(&c, &ctx2, "M", 1).await.state.messages, 1_340);
    publish_n(&ctx2, "m", 1_600, 1_610, 4).await;
    assert_ne!(converged(&c, "M", 1, 1_350).await, digest);

    // More replicas than nodes: refused as nats-server refuses it, and
    // nothing moves.
    let mut five = config.clone();
    five.num_replicas = 5;
    let err = ctx2.update_stream(five).await.unwrap_err();
    assert!(err.to_string().contains("10005"), "{err}");
    converged(&c, "M", 1, 1_350).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_added_after_the_log_was_purged_copies_a_frozen_replica() {
    let c = Cluster::start(3, &[]).await;
    let ctx = jetstream::new(async_nats::connect(c.nodes[1].url()).await.unwrap());
    let config = stream::Config {
        name: "BIG".into(),
        subjects: vec!["big.>".into()],
        num_replicas: 1,
        max_messages_per_subject: 400,
        ..Default::default()
    };
    ctx.create_stream(config.clone()).await.unwrap();
    // One publish per Raft entry: past a snapshot (every 4,096 entries) and
    // the 1,024 entries kept behind it, so the log no longer starts at 1.
    publish_n(&ctx, "big", 0, 5_600, 1).await;
    set_replicas(&ctx, &config, 3).await;
    converged(&c, "BIG", 3, 4_000).await;
    settled(&c, &ctx, "BIG", 3).await;
    let copies = c
        .nodes
        .iter()
        .filter(|n| n.log().contains("caught up from a peer's frozen replica"))
        .count();
    assert_eq!(copies, 2, "both new replicas copy a frozen replica");
}

/// A shrink while a replica is down drops that replica, not a live one:
/// the new voters must have a quorum without it. Before, a shrink kept the
/// leader and then the lowest ids, so with node 1 down (and not leading)
/// R3 → R2 kept node 1, the change waited in joint consensus for it, and
/// had it come back with a wiped disk the stream would never have
/// recovered (simulation seeds 64 and 91).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shrink_while_a_replica_is_down_drops_that_replica() {
    let mut c = Cluster::start(3, &[]).await;
    let config = stream::Config {
        name: "SHRINK".into(),
        subjects: vec!["shrink.>".into()],
        num_replicas: 3,
        ..Default::default()
    };
    // The lowest-id node that does not lead goes down.
    let url = c.nodes[2].url();
    let ctx = jetstream::new(async_nats::connect(url).await.unwrap());
    ctx.create_stream(config.clone()).await.unwrap();
    publish_n(&ctx, "shrink", 0, 100, 10).await;
    let info = settled(&c, &ctx, "SHRINK", 3).await;
    let leader = node_of(&c, info.cluster.as_ref().unwrap().leader.as_ref().unwrap());
    let down = (0..3).find(|i| *i != leader).unwrap();
    let up: Vec<usize> = (0..3).filter(|i| *i != down).collect();
    c.nodes[down].kill();
    // Past three heartbeats: the leader no longer counts it as live.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ctx = jetstream::new(async_nats::connect(c.nodes[up[1]].url()).await.unwrap());
    let info = set_replicas(&ctx, &config, 2).await;
    let mut kept: Vec<String> = info
        .cluster
        .as_ref()
        .unwrap()
        .replicas
        .iter()
        .map(|r| r.name.clone())
        .collect();
    kept.extend(info.cluster.as_ref().unwrap().leader.clone());
    kept.sort();
    let mut want: Vec<String> = up.iter().map(|i| c.nodes[*i].name.clone()).collect();
    want.sort();
    assert_eq!(kept, want, "the new replica set is the two live nodes");
    // The change commits without the dead node, and the stream takes writes.
    settled(&c, &ctx, "SHRINK", 2).await;
    publish_n(&ctx, "shrink", 100, 200, 10).await;
    let info = ctx
        .get_stream("SHRINK")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.state.messages, 200);
}
