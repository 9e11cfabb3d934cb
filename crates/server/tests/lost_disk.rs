//! A node that lost its disk never helps elect a leader that lacks acked
//! writes (issue 11, ARCHITECTURE decision 29). Real processes, the
//! operator events of the issue:
//!
//! 1. three nodes, an R3 stream, `sync = "always"`; 100 acked publishes;
//! 2. one follower paused (SIGSTOP); 100 more acked by the leader and the
//!    other follower;
//! 3. that other follower killed and its data directory deleted; the
//!    leader killed;
//! 4. the paused follower resumes and the wiped one restarts empty.
//!
//! The two must not elect a leader (no publish is acked while only they
//! run). The same holds when the directory is put back from a backup
//! instead of deleted (decision 37). Once the old leader is back, every acked message reads back with
//! its content, the wiped node is re-admitted, and all replicas are
//! identical.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use common::{Cluster, NodeProc, js};

const STREAM: &str = "ORDERS";

/// The stream's replica on `node` as its `/jsz` shows it.
async fn replica(node: &NodeProc) -> Option<serde_json::Value> {
    node.stream_replica(STREAM).await
}

async fn leader_of(c: &Cluster) -> Option<usize> {
    for (i, n) in c.nodes.iter().enumerate() {
        if let Some(r) = replica(n).await
            && r["role"] == "leader"
        {
            return Some(i);
        }
    }
    None
}

/// Publishes message `i` until acked; its `Nats-Msg-Id` makes a retry of
/// a publish whose ack was lost safe (dedup).
async fn publish_acked(ctx: &jetstream::Context, i: usize) -> u64 {
    for _ in 0..50 {
        let msg = jetstream::message::PublishMessage::build()
            .message_id(format!("msg-{i}"))
            .payload(format!("m-{i}").into());
        match ctx.send_publish(format!("orders.{i}"), msg).await {
            Ok(f) => match f.await {
                Ok(ack) => return ack.sequence,
                Err(e) => eprintln!("publish {i}: {e}"),
            },
            Err(e) => eprintln!("publish {i}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("publish {i} never acked");
}

/// Publishes messages `range` one after another until each is acked;
/// returns (acked seq, i) for each.
async fn publish_all(
    ctx: &jetstream::Context,
    range: std::ops::RangeInclusive<usize>,
) -> Vec<(u64, usize)> {
    let mut acked = Vec::new();
    for i in range {
        acked.push((publish_acked(ctx, i).await, i));
    }
    acked
}

/// The acked publishes took sequences 1..=n, in order.
fn assert_acked_in_order(acked: &[(u64, usize)], n: u64) {
    let seqs: Vec<u64> = acked.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<u64>>());
}

/// Three nodes with `sync = "always"` and the R3 stream; returns the
/// index of the stream's leader.
async fn cluster_with_stream() -> (Cluster, usize) {
    let c = Cluster::start(3, &["--sync", "always"]).await;
    let ctx = js(&c.nodes[0].url()).await;
    ctx.create_stream(stream::Config {
        name: STREAM.into(),
        subjects: vec!["orders.>".into()],
        num_replicas: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    for _ in 0..100 {
        if let Some(leader) = leader_of(&c).await {
            return (c, leader);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no stream leader");
}

/// For 12 s, publishes through `node` (while only it and nodes that must
/// not count run): none may be acked.
async fn nothing_acked_through(node: &NodeProc, who: &str) {
    let survivor = js(&node.url()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    let mut tries = 0;
    while tokio::time::Instant::now() < deadline {
        tries += 1;
        let sent = survivor
            .publish("orders.x", format!("intruder-{tries}").into())
            .await;
        if let Ok(f) = sent
            && let Ok(ack) = f.await
        {
            panic!(
                "{who} acked a publish at seq {} (acked writes 101..=200 would be overwritten)",
                ack.sequence
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{tries} publishes refused while only {who} ran");
}

/// Waits until every node holds an identical replica with 3 voters and
/// at least seq 200; then every acked message (seq, i) reads back at its
/// sequence with its content, through each node.
async fn converged_with_every_acked_message(c: &Cluster, acked: &[(u64, usize)]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let digests = loop {
        let mut seen = Vec::new();
        for n in &c.nodes {
            seen.push(replica(n).await);
        }
        let settled = seen.iter().all(|r| {
            r.as_ref().is_some_and(|r| {
                r["last_seq"].as_u64() >= Some(200)
                    && r["voters"].as_array().map(Vec::len) == Some(3)
            })
        });
        let digests: Vec<String> = seen
            .iter()
            .map(|r| {
                r.as_ref()
                    .map_or(String::new(), |r| r["digest"].to_string())
            })
            .collect();
        if settled && digests.iter().all(|d| *d == digests[0]) {
            break digests;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("replicas did not converge: {seen:#?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!("replica digests after re-admission: {digests:?}");
    for n in &c.nodes {
        let ctx = js(&n.url()).await;
        let s = ctx.get_stream(STREAM).await.unwrap();
        for (seq, i) in acked {
            let m = s.get_raw_message(*seq).await.unwrap();
            assert_eq!(
                m.subject.as_str(),
                format!("orders.{i}"),
                "seq {seq} via {}",
                n.name
            );
            assert_eq!(
                &m.payload[..],
                format!("m-{i}").as_bytes(),
                "seq {seq} via {}",
                n.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_and_a_stale_one_elect_no_leader_and_nothing_acked_is_lost() {
    let (mut c, leader) = cluster_with_stream().await;
    let paused = (leader + 1) % 3;
    let wiped = (leader + 2) % 3;
    let ctx = js(&c.nodes[leader].url()).await;

    let mut acked = publish_all(&ctx, 1..=100).await;
    c.nodes[paused].pause();
    acked.extend(publish_all(&ctx, 101..=200).await);
    assert_acked_in_order(&acked, 200);
    drop(ctx);

    c.nodes[wiped].kill();
    c.nodes[wiped].wipe();
    c.nodes[leader].kill();
    c.nodes[paused].resume();
    c.nodes[wiped].start();

    // Only the stale node and the forgetful one run: nothing may be acked.
    nothing_acked_through(&c.nodes[paused], "a stale node and a wiped node").await;
    // The wiped node says why it is not healthy. (The stale one may still
    // name the dead leader it last followed: its pre-votes change no vote.)
    let (status, wiped_health) = c.nodes[wiped].http_get("/healthz").await.unwrap();
    eprintln!(
        "{} /healthz while forgetful: {wiped_health}",
        c.nodes[wiped].name
    );
    assert_eq!(status, 503, "{wiped_health}");
    assert!(
        wiped_health.contains("lost its state") || wiped_health.contains("not one of its founding"),
        "{wiped_health}"
    );

    // The old leader returns: it holds every acked write.
    c.nodes[leader].start();
    c.wait_healthy(Duration::from_secs(60)).await;

    // The wiped node is re-admitted and catches up; all replicas agree,
    // and every acked message reads back.
    converged_with_every_acked_message(&c, &acked).await;
    // And the group takes writes again.
    let ctx = js(&c.nodes[wiped].url()).await;
    assert_eq!(publish_acked(&ctx, 201).await, 201);
}

/// The four steps with a backup instead of a new disk (decision 37): the
/// follower's data directory is put back from a copy taken before the
/// last 100 acked publishes, so it keeps its incarnation but lacks what
/// it acknowledged. The leader, which heard its later marks, does not
/// count it; the node learns it is behind and stops, and comes back as a
/// new incarnation. With the leader then gone, it and the stale node
/// elect nobody; once the leader is back nothing acked is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_put_back_from_a_backup_stops_and_counts_in_no_quorum() {
    let (mut c, leader) = cluster_with_stream().await;
    let paused = (leader + 1) % 3;
    let restored = (leader + 2) % 3;
    let ctx = js(&c.nodes[leader].url()).await;
    let mut acked = publish_all(&ctx, 1..=100).await;
    // An operator's backup: the node stopped, its directory copied.
    c.nodes[restored].kill();
    let backup = c.nodes[restored].backup();
    c.nodes[restored].start();
    c.wait_healthy(Duration::from_secs(60)).await;
    c.nodes[paused].pause();
    acked.extend(publish_all(&ctx, 101..=200).await);
    assert_acked_in_order(&acked, 200);
    drop(ctx);

    // The directory is put back from the backup; the leader still runs.
    c.nodes[restored].kill();
    c.nodes[restored].restore(&backup);
    c.nodes[restored].start();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = c.nodes[restored].exited() {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restored node did not stop; log:\n{}",
            c.nodes[restored].log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = c.nodes[restored].log();
    assert!(!status.success(), "{status}");
    assert!(log.contains("put back from an older copy"), "{log}");
    c.nodes[restored].child = None;

    // The leader goes; the stale node resumes; the restored one starts
    // again, now a new incarnation: the two must elect nobody.
    c.nodes[leader].kill();
    c.nodes[paused].resume();
    c.nodes[restored].start();
    nothing_acked_through(&c.nodes[paused], "a stale node and a restored one").await;

    c.nodes[leader].start();
    c.wait_healthy(Duration::from_secs(60)).await;
    converged_with_every_acked_message(&c, &acked).await;
    let ctx = js(&c.nodes[restored].url()).await;
    assert_eq!(publish_acked(&ctx, 201).await, 201);
}

/// Runs `jetraft admin accept-loss` for `group` (`--meta` or a stream)
/// against the given nodes' monitoring ports.
fn accept_loss(nodes: &[&NodeProc], group: &str) -> String {
    let http: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.http_port))
        .collect();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jetraft"));
    cmd.args(["admin", "accept-loss", "--http", &http.join(",")]);
    if group == "meta" {
        cmd.arg("--meta");
    } else {
        cmd.args(["--stream", group]);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "accept-loss {group}: {text}");
    text
}

/// The way out when a majority is gone for good: the operator accepts the
/// loss on the two nodes that remain, they form the groups again and take
/// writes; the old leader, back with a new disk, is re-admitted and every
/// replica ends identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_loss_lets_the_remaining_nodes_go_on_and_a_new_disk_rejoins_them() {
    let (mut c, leader) = cluster_with_stream().await;
    let paused = (leader + 1) % 3;
    let wiped = (leader + 2) % 3;
    let ctx = js(&c.nodes[leader].url()).await;
    for i in 1..=50 {
        assert_eq!(publish_acked(&ctx, i).await, i as u64);
    }
    c.nodes[paused].pause();
    for i in 51..=60 {
        assert_eq!(publish_acked(&ctx, i).await, i as u64);
    }
    drop(ctx);
    c.nodes[wiped].kill();
    c.nodes[wiped].wipe();
    c.nodes[leader].kill();
    c.nodes[paused].resume();
    c.nodes[wiped].start();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The meta group first: the wiped node learns the catalog from it.
    let said = accept_loss(&[&c.nodes[paused], &c.nodes[wiped]], "meta");
    eprintln!("{said}");
    assert!(said.contains("lost for good"), "{said}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, jsz) = c.nodes[wiped].http_get("/jsz").await.unwrap_or_default();
        if jsz.contains(STREAM) || jsz.contains("\"meta_leader\":\"n") {
            let has_stream = replica(&c.nodes[wiped]).await.is_some();
            if has_stream {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the wiped node never got the catalog back: {jsz}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    accept_loss(&[&c.nodes[paused], &c.nodes[wiped]], STREAM);

    // The two take writes again, after what the stale node held.
    let ctx = js(&c.nodes[wiped].url()).await;
    // The stale node holds the first 50 and perhaps a few of 51..=60 that
    // sat in its socket while it was stopped; the rest is the loss the
    // operator accepted.
    let seq = publish_acked(&ctx, 1000).await;
    assert!(
        (51..=61).contains(&seq),
        "first write after accept-loss at {seq}"
    );
    eprintln!("accepted loss: acked 51..=60, kept {} of them", seq - 51);
    drop(ctx);

    // The old leader's data is the history the operator gave up (it
    // applied 51..=60 too); as the README says, its data directory is
    // wiped before it comes back, and it is re-admitted like any new disk.
    // Everyone ends identical.
    c.nodes[leader].wipe();
    c.nodes[leader].start();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let mut seen = Vec::new();
        for n in &c.nodes {
            seen.push(replica(n).await);
        }
        let ok = seen.iter().all(|r| {
            r.as_ref().is_some_and(|r| {
                r["last_seq"].as_u64() == Some(seq)
                    && r["voters"].as_array().map(Vec::len) == Some(3)
                    && r["digest"] == seen[0].as_ref().unwrap()["digest"]
            })
        });
        if ok {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replicas did not converge after accept-loss: {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ctx = js(&c.nodes[leader].url()).await;
    let s = ctx.get_stream(STREAM).await.unwrap();
    assert_eq!(
        &s.get_raw_message(seq).await.unwrap().payload[..],
        b"m-1000"
    );
    for q in 1..seq {
        let m = s.get_raw_message(q).await.unwrap();
        assert_eq!(m.payload, format!("m-{q}").as_bytes(), "seq {q}");
    }
    assert_eq!(publish_acked(&ctx, 1001).await, seq + 1);
}
