//! Three real `jetraft server` processes; a real async-nats client; the
//! stream leader is killed with SIGKILL in the middle of 10,000 acked
//! publishes. Every acked message must be present exactly once at its acked
//! sequence, and all replicas must be identical.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use common::{Cluster, js};
use futures::StreamExt;

const TOTAL: usize = 10_000;
const WINDOW: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_survive_leader_kill() {
    let mut c = Cluster::start(3, &[]).await;

    // Create from a client whose node ends up not leading the stream.
    let (name, creator) = {
        let mut found = None;
        for attempt in 0..6 {
            let via = attempt % 3;
            let name = format!("ORDERS{attempt}");
            let ctx = js(&c.nodes[via].url()).await;
            ctx.create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("orders{attempt}.>")],
                num_replicas: 3,
                ..Default::default()
            })
            .await
            .unwrap();
            if c.leader_of(&name).await != Some(via) {
                found = Some((name, via));
                break;
            }
            ctx.delete_stream(&name).await.unwrap();
        }
        found.expect("a stream led by a node other than its creator")
    };
    let attempt: usize = name.trim_start_matches("ORDERS").parse().unwrap();
    let leader = c.leader_of(&name).await.unwrap();
    assert_ne!(leader, creator);
    // Publish through a node that is not the leader; it stays up.
    let via = (0..3).find(|i| *i != leader).unwrap();
    let ctx = js(&c.nodes[via].url()).await;
    let subject_prefix = format!("orders{attempt}");

    let mut acked: BTreeMap<usize, u64> = BTreeMap::new();
    let mut killed = false;
    let mut next = 0usize;
    while next < TOTAL {
        let end = (next + WINDOW * 16).min(TOTAL);
        let ctx2 = ctx.clone();
        let prefix = subject_prefix.clone();
        let batch: Vec<(usize, u64)> = futures::stream::iter(next..end)
            .map(|i| {
                let ctx = ctx2.clone();
                let prefix = prefix.clone();
                async move { publish_acked_to(&ctx, &prefix, i).await }
            })
            .buffer_unordered(WINDOW)
            .collect()
            .await;
        for (i, seq) in batch {
            acked.insert(i, seq);
        }
        next = end;
        if !killed && next >= TOTAL / 2 {
            c.nodes[leader].kill();
            killed = true;
        }
    }

    // Restart the killed node and let it catch up.
    c.nodes[leader].start();
    c.wait_healthy(Duration::from_secs(60)).await;

    // Exactly once, at the acked sequence.
    let seqs: std::collections::BTreeSet<u64> = acked.values().copied().collect();
    assert_eq!(
        seqs.len(),
        TOTAL,
        "two publishes acked with the same sequence"
    );
    let stream = ctx.get_stream(&name).await.unwrap();
    for (i, seq) in &acked {
        let msg = stream.get_raw_message(*seq).await.unwrap();
        assert_eq!(
            msg.payload.as_ref(),
            format!("m-{i}").as_bytes(),
            "seq {seq}"
        );
    }

    // Replicas identical: same digest, last seq and count on all three.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut views = Vec::new();
        for node in &c.nodes {
            let jsz = node.jsz().await;
            let s = jsz["streams"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == name.as_str())
                .cloned();
            views.push(s.map(|s| {
                (
                    s["digest"].clone(),
                    s["last_seq"].clone(),
                    s["messages"].clone(),
                )
            }));
        }
        let all_same = views.iter().all(|v| v.is_some() && *v == views[0]);
        if all_same {
            let (_, last, count) = views[0].clone().unwrap();
            assert_eq!(count.as_u64(), Some(TOTAL as u64));
            assert_eq!(last.as_u64(), seqs.iter().max().copied());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replicas differ: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes `Nats-Msg-Id: m-<i>` until acked, retrying with the same id.
async fn publish_acked_to(js: &jetstream::Context, prefix: &str, i: usize) -> (usize, u64) {
    let id = format!("m-{i}");
    loop {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        let attempt = async {
            js.publish_with_headers(format!("{prefix}.{}", i % 7), headers, id.clone().into())
                .await?
                .await
        };
        match attempt.await {
            Ok(ack) => return (i, ack.sequence),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
