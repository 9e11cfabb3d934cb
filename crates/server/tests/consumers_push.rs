//! Push consumers on a three-node cluster of real processes: deliveries to
//! a deliver subject while someone listens, a deliver group shared across
//! nodes, idle heartbeats, flow control that stalls until answered, and
//! async-nats's ordered consumer replaying 100,000 messages in order.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, push};
use async_nats::jetstream::{self, stream};
use common::Cluster;
use futures::StreamExt;

async fn connect(url: &str) -> (async_nats::Client, jetstream::Context) {
    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(5)))
        .connect(url)
        .await
        .unwrap();
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(client.clone());
    (client, js)
}

async fn fill(js: &jetstream::Context, name: &str, n: usize, payload: usize) {
    js.create_stream(stream::Config {
        name: name.into(),
        subjects: vec![format!("{}.>", name.to_lowercase())],
        num_replicas: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let body = bytes::Bytes::from(vec![b'x'; payload]);
    let mut acks = Vec::new();
    for i in 0..n {
        acks.push(
            js.publish(format!("{}.{}", name.to_lowercase(), i % 7), body.clone())
                .await
                .unwrap(),
        );
        if acks.len() >= 512 {
            for a in acks.drain(..) {
                a.await.unwrap();
            }
        }
    }
    for a in acks {
        a.await.unwrap();
    }
}

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a message within 10 s")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_delivers_to_listeners_and_a_deliver_group_shares_across_nodes() {
    let cluster = Cluster::start(3, &[]).await;
    let urls = cluster.urls();
    let (c1, js) = connect(&urls[0]).await;
    let (c2, _) = connect(&urls[1]).await;
    let (c3, _) = connect(&urls[2]).await;
    fill(&js, "PUSH", 20, 8).await;
    let s = js.get_stream("PUSH").await.unwrap();

    // Plain push: the listener on node 2 gets every message, in order,
    // with its own subject and an ack subject.
    let mut plain = c2.subscribe("deliver.plain").await.unwrap();
    c2.flush().await.unwrap();
    s.create_consumer(push::Config {
        durable_name: Some("plain".into()),
        deliver_subject: "deliver.plain".into(),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 0..20u64 {
        let m = next(&mut plain).await;
        assert_eq!(m.subject.as_str(), format!("push.{}", i % 7));
        let reply = m.reply.unwrap();
        assert!(
            reply.starts_with(&format!("$JS.ACK.PUSH.plain.1.{}.", i + 1)),
            "{reply}"
        );
        c2.request(reply, "".into()).await.unwrap();
    }

    // A deliver group: members on nodes 1 and 3 share the messages.
    let mut a = c1
        .queue_subscribe("deliver.q", "workers".into())
        .await
        .unwrap();
    let mut b = c3
        .queue_subscribe("deliver.q", "workers".into())
        .await
        .unwrap();
    c1.flush().await.unwrap();
    c3.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.create_consumer(push::Config {
        durable_name: Some("q".into()),
        deliver_subject: "deliver.q".into(),
        deliver_group: Some("workers".into()),
        ack_policy: AckPolicy::None,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut seqs = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seqs.len() < 20 && tokio::time::Instant::now() < deadline {
        let m = tokio::select! {
            Some(m) = a.next() => m,
            Some(m) = b.next() => m,
            _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
        };
        let seq: u64 = m.reply.unwrap().split('.').nth(5).unwrap().parse().unwrap();
        assert!(seqs.insert(seq), "seq {seq} delivered twice to the group");
    }
    assert_eq!(seqs.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_heartbeats_and_flow_control() {
    let cluster = Cluster::start(3, &[]).await;
    let urls = cluster.urls();
    let (client, js) = connect(&urls[1]).await;
    // 256 messages of 16 KiB (4 MiB): as nats-server, a flow-control
    // request once 1 MiB is out unanswered, and nothing more past 2 MiB.
    const N: usize = 256;
    fill(&js, "FC", N, 16 * 1024).await;
    let s = js.get_stream("FC").await.unwrap();
    let mut sub = client.subscribe("deliver.fc").await.unwrap();
    client.flush().await.unwrap();
    s.create_consumer(push::Config {
        durable_name: Some("fc".into()),
        deliver_subject: "deliver.fc".into(),
        flow_control: true,
        idle_heartbeat: Duration::from_millis(300),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut data = 0;
    let fc_reply = loop {
        let m = next(&mut sub).await;
        match m.status {
            None => data += 1,
            Some(st) if st.as_u16() == 100 && m.reply.is_some() => break m.reply.unwrap(),
            Some(_) => {}
        }
    };
    assert!(fc_reply.starts_with("$JS.FC.FC.fc."), "{fc_reply}");
    assert!(
        (60..=70).contains(&data),
        "{data} messages before the first request"
    );
    // Unanswered, it goes on to the end of the window and stalls: then
    // only heartbeats come, naming what it waits for.
    let stalled = loop {
        let m = next(&mut sub).await;
        match m.status {
            None => data += 1,
            Some(st) if st.as_u16() == 100 && m.reply.is_none() => break m,
            Some(st) => panic!("unexpected status {st} after {data} messages"),
        }
    };
    assert!(
        (120..=135).contains(&data),
        "{data} messages sent before it stalled"
    );
    let h = stalled.headers.unwrap();
    assert_eq!(
        h.get("Nats-Consumer-Stalled").map(|v| v.to_string()),
        Some(fc_reply.to_string())
    );
    assert!(h.get("Nats-Last-Stream").is_some());
    // Answered, the rest comes.
    client.publish(fc_reply, "".into()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while data < N {
        assert!(tokio::time::Instant::now() < deadline, "{data} of {N}");
        let m = next(&mut sub).await;
        match (m.status, m.reply) {
            (None, _) => data += 1,
            (Some(_), Some(r)) if r.starts_with("$JS.FC.") => {
                client.publish(r, "".into()).await.unwrap();
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_consumer_replays_100k_messages_in_order() {
    const N: usize = 100_000;
    let cluster = Cluster::start(3, &[]).await;
    let urls = cluster.urls();
    let (_, js) = connect(&urls[0]).await;
    fill(&js, "ORDERED", N, 16).await;
    let (_, js2) = connect(&urls[2]).await;
    let s = js2.get_stream("ORDERED").await.unwrap();
    let c = s
        .create_consumer(push::OrderedConfig {
            deliver_subject: "deliver.ordered".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut msgs = c.messages().await.unwrap();
    let mut expect = 1u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while expect <= N as u64 {
        assert!(tokio::time::Instant::now() < deadline, "at {expect} of {N}");
        let m = tokio::time::timeout(Duration::from_secs(20), msgs.next())
            .await
            .expect("the ordered consumer keeps delivering")
            .unwrap()
            .unwrap();
        let info = m.info().unwrap();
        assert_eq!(info.stream_sequence, expect, "in order, none skipped");
        expect += 1;
    }
}
