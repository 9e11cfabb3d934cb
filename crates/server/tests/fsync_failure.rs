//! A failed fsync stops a real `jetraft server`: three processes, an R3
//! stream; one follower is restarted with its store failing an fsync
//! (`JETRAFT_FAIL_SYNC_AFTER`, test only) while publishes are acked. It
//! must exit with code 2 and one log line saying which sync failed and
//! why; the other two keep acking, lose nothing acked, and stay
//! identical; restarted without the fault, it catches up to them.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use common::{Cluster, NodeProc, js};
use futures::StreamExt;

const STREAM: &str = "FSYNC";
const WINDOW: usize = 16;

/// Publishes ids `range` until each is acked (retrying with its
/// `Nats-Msg-Id`), `WINDOW` at a time; returns id → seq.
async fn publish_all(ctx: &jetstream::Context, range: std::ops::Range<usize>) -> Vec<(usize, u64)> {
    futures::stream::iter(range)
        .map(|i| {
            let ctx = ctx.clone();
            async move {
                let id = format!("m-{i}");
                loop {
                    let mut headers = HeaderMap::new();
                    headers.insert("Nats-Msg-Id", id.as_str());
                    let attempt = async {
                        ctx.publish_with_headers(
                            format!("fsync.{}", i % 5),
                            headers,
                            id.clone().into(),
                        )
                        .await?
                        .await
                    };
                    match attempt.await {
                        Ok(ack) => return (i, ack.sequence),
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
        })
        .buffer_unordered(WINDOW)
        .collect()
        .await
}

/// (digest, last_seq, messages) of the stream on `node`, if it hosts it.
async fn replica(node: &NodeProc) -> Option<(String, u64, u64)> {
    let jsz = node.jsz().await;
    let s = jsz["streams"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == STREAM)?
        .clone();
    Some((
        s["digest"].as_str()?.to_string(),
        s["last_seq"].as_u64()?,
        s["messages"].as_u64()?,
    ))
}

/// Waits until every node in `which` reports the same replica.
async fn identical(c: &Cluster, which: &[usize], within: Duration) -> (String, u64, u64) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut views = Vec::new();
        for &i in which {
            views.push(replica(&c.nodes[i]).await);
        }
        if views.iter().all(|v| v.is_some() && *v == views[0]) {
            return views[0].clone().unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replicas differ: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_the_node_and_the_others_lose_nothing() {
    let mut c = Cluster::start(3, &[]).await;
    let ctx = js(&c.nodes[0].url()).await;
    ctx.create_stream(stream::Config {
        name: STREAM.into(),
        subjects: vec!["fsync.>".into()],
        num_replicas: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut acked: BTreeMap<usize, u64> = publish_all(&ctx, 0..200).await.into_iter().collect();

    // n3 comes back with a disk whose 41st fsync fails (EIO).
    c.nodes[2].kill();
    c.nodes[2].env = vec![("JETRAFT_FAIL_SYNC_AFTER".into(), "40".into())];
    c.nodes[2].start();
    let mut next = 200;
    let status = loop {
        if let Some(status) = c.nodes[2].exited() {
            break status;
        }
        assert!(next < 20_000, "n3 never hit its failing fsync");
        acked.extend(publish_all(&ctx, next..next + 100).await);
        next += 100;
    };
    assert_eq!(status.code(), Some(2), "exit status {status:?}");
    c.nodes[2].child = None;
    let log = c.nodes[2].log();
    // The node's own line (target `jetraft`, the binary); openraft's tasks
    // may log their failed writes in the moment before the exit.
    let fatal: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("fatal storage error") && !l.contains("openraft"))
        .collect();
    assert_eq!(fatal.len(), 1, "one clear line:\n{log}");
    println!("n3 stopped with: {}", fatal[0]);
    assert!(
        fatal[0].contains("ERROR")
            && fatal[0].contains("WAL fsync failed (covering")
            && fatal[0].contains("injected fsync failure"),
        "{}",
        fatal[0]
    );

    // The other two go on acking...
    acked.extend(publish_all(&ctx, next..next + 300).await);
    next += 300;
    assert_eq!(acked.len(), next);
    // ...and hold every acked message, at its sequence, identically.
    let (_, last, messages) = identical(&c, &[0, 1], Duration::from_secs(30)).await;
    assert_eq!(messages, next as u64);
    assert_eq!(Some(last), acked.values().max().copied());
    let s = ctx.get_stream(STREAM).await.unwrap();
    for (i, seq) in &acked {
        let m = s.get_raw_message(*seq).await.unwrap();
        assert_eq!(m.payload.as_ref(), format!("m-{i}").as_bytes(), "seq {seq}");
    }

    // Without the fault n3 rejoins and catches up.
    c.nodes[2].env.clear();
    c.nodes[2].start();
    c.wait_healthy(Duration::from_secs(60)).await;
    let all = identical(&c, &[0, 1, 2], Duration::from_secs(60)).await;
    assert_eq!(all.2, next as u64);
}
