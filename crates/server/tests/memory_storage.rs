//! `storage: "memory"` keeps a stream in memory (its messages and its Raft
//! log and vote): replicated like any stream, so a restarted replica
//! catches up from the others, and gone once every replica restarted, as
//! in nats-server. A file stream beside it keeps everything.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use common::Cluster;

async fn create(ctx: &jetstream::Context, name: &str, storage: stream::StorageType, r: usize) {
    ctx.create_stream(stream::Config {
        name: name.into(),
        subjects: vec![format!("{}.>", name.to_lowercase())],
        storage,
        num_replicas: r,
        ..Default::default()
    })
    .await
    .unwrap();
}

async fn publish_n(ctx: &jetstream::Context, stream: &str, n: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    for i in 0..n {
        let subject = format!("{}.{}", stream.to_lowercase(), i % 4);
        let ack = ctx
            .publish(subject, format!("{stream}-{i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
        seqs.push(ack.sequence);
    }
    seqs
}

/// (messages, last_seq) of `name` as its leader reports it (STREAM.INFO),
/// retried while the group is electing or being founded again.
async fn state(ctx: &jetstream::Context, name: &str) -> (u64, u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match ctx.get_stream(name).await {
            Ok(mut s) => {
                if let Ok(info) = s.info().await {
                    return (info.state.messages, info.state.last_sequence);
                }
            }
            Err(e) if tokio::time::Instant::now() > deadline => panic!("{name}: {e}"),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the three replicas of `name` hold `messages` messages with
/// one digest.
async fn converged(c: &Cluster, name: &str, messages: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut views = Vec::new();
        for n in &c.nodes {
            views.push(
                n.stream_replica(name)
                    .await
                    .map(|r| (r["digest"].clone(), r["messages"].as_u64())),
            );
        }
        if views.iter().all(|v| v.is_some() && *v == views[0])
            && views[0].as_ref().unwrap().1 == Some(messages)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: replicas never converged on {messages} messages: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn account(ctx: &jetstream::Context) -> (u64, u64) {
    let info = ctx.query_account().await.unwrap();
    (info.memory, info.storage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_streams_replicate_and_are_gone_once_every_replica_restarted() {
    use stream::StorageType::{File, Memory};
    let mut c = Cluster::start(3, &[]).await;
    let ctx = common::js(&c.nodes[0].url()).await;
    create(&ctx, "MEM", Memory, 3).await;
    create(&ctx, "DISK", File, 3).await;
    create(&ctx, "ONE", Memory, 1).await;
    assert_eq!(
        publish_n(&ctx, "MEM", 100).await,
        (1..=100).collect::<Vec<_>>()
    );
    publish_n(&ctx, "DISK", 100).await;
    publish_n(&ctx, "ONE", 10).await;
    converged(&c, "MEM", 100).await;
    // The account counts memory and file bytes apart, as nats-server does.
    let (memory, storage) = account(&ctx).await;
    let info = |name: &'static str| {
        let ctx = ctx.clone();
        async move {
            ctx.get_stream(name)
                .await
                .unwrap()
                .info()
                .await
                .unwrap()
                .state
                .bytes
        }
    };
    assert_eq!(memory, info("MEM").await + info("ONE").await);
    assert_eq!(storage, info("DISK").await);

    // One replica restarts: it forgot MEM, is re-admitted by the leader and
    // copies it back from the others; nothing is lost.
    c.nodes[2].kill();
    publish_n(&ctx, "MEM", 20).await;
    c.nodes[2].start();
    c.wait_healthy(Duration::from_secs(60)).await;
    converged(&c, "MEM", 120).await;
    assert_eq!(state(&ctx, "MEM").await, (120, 120));

    // Every replica restarts: the memory streams are still there, empty,
    // and take new messages from sequence 1; the file stream kept all.
    for n in &mut c.nodes {
        n.kill();
    }
    for n in &mut c.nodes {
        n.start();
    }
    c.wait_healthy(Duration::from_secs(90)).await;
    let ctx = common::js(&c.nodes[1].url()).await;
    assert_eq!(state(&ctx, "DISK").await, (100, 100));
    assert_eq!(state(&ctx, "MEM").await, (0, 0));
    assert_eq!(state(&ctx, "ONE").await, (0, 0));
    assert_eq!(publish_n(&ctx, "MEM", 5).await, (1..=5).collect::<Vec<_>>());
    converged(&c, "MEM", 5).await;
    assert_eq!(publish_n(&ctx, "ONE", 1).await, vec![1]);

    // A majority restarts at once: the one replica that kept MEM cannot
    // re-admit the others without a quorum, and forgetful replicas elect
    // nobody, so MEM answers no reads (rather than a leader that lacks
    // acked writes) until the last replica restarts too and all three
    // found it again, empty.
    for n in &mut c.nodes[..2] {
        n.kill();
        n.start();
    }
    let ctx = common::js(&c.nodes[2].url()).await;
    assert_eq!(state(&ctx, "DISK").await, (100, 100));
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < until {
        let answer = ctx
            .get_stream("MEM")
            .await
            .map(|s| s.cached_info().state.clone());
        assert!(answer.is_err(), "MEM answered without a quorum: {answer:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    c.nodes[2].kill();
    c.nodes[2].start();
    c.wait_healthy(Duration::from_secs(90)).await;
    let ctx = common::js(&c.nodes[0].url()).await;
    assert_eq!(state(&ctx, "MEM").await, (0, 0));
    assert_eq!(state(&ctx, "DISK").await, (100, 100));
}
