//! Pull consumers on a three-node cluster of real processes, through
//! async-nats's own JetStream API with clients on different nodes:
//! create, fetch, acks (double acks are committed promises), redelivery
//! after the ack wait and with a nak delay, `max_deliver` and its
//! advisory, no-wait and expiring pulls, work-queue retention, and exact
//! `CONSUMER.INFO` counts.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, stream};
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

async fn stream_with(
    js: &jetstream::Context,
    name: &str,
    retention: stream::RetentionPolicy,
    n: usize,
) {
    js.create_stream(stream::Config {
        name: name.into(),
        subjects: vec![format!("{}.>", name.to_lowercase())],
        num_replicas: 3,
        retention,
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 0..n {
        js.publish(
            format!("{}.{}", name.to_lowercase(), i % 3),
            format!("m{i}").into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
}

async fn fetch(c: &PullConsumer, n: usize) -> Vec<jetstream::Message> {
    let mut batch = c
        .fetch()
        .max_messages(n)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(m) = batch.next().await {
        out.push(m.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_fetch_ack_and_info_across_nodes() {
    let cluster = Cluster::start(3, &[]).await;
    let urls = cluster.urls();
    let (_, js1) = connect(&urls[0]).await;
    let (_, js2) = connect(&urls[1]).await;
    let (_, js3) = connect(&urls[2]).await;
    stream_with(&js1, "ORDERS", stream::RetentionPolicy::Limits, 10).await;

    let s2 = js2.get_stream("ORDERS").await.unwrap();
    let c: PullConsumer = s2
        .create_consumer(pull::Config {
            durable_name: Some("work".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(c.cached_info().num_pending, 10);

    // Fetched through a third node; every message keeps its own subject.
    let s3 = js3.get_stream("ORDERS").await.unwrap();
    let c3: PullConsumer = s3.get_consumer("work").await.unwrap();
    let msgs = fetch(&c3, 4).await;
    let got: Vec<(String, u64)> = msgs
        .iter()
        .map(|m| (m.subject.to_string(), m.info().unwrap().stream_sequence))
        .collect();
    assert_eq!(
        got,
        vec![
            ("orders.0".into(), 1),
            ("orders.1".into(), 2),
            ("orders.2".into(), 3),
            ("orders.0".into(), 4)
        ]
    );
    for m in &msgs[..3] {
        m.double_ack().await.unwrap();
    }
    let mut c = c;
    let info = c.info().await.unwrap().clone();
    assert_eq!(info.delivered.stream_sequence, 4);
    assert_eq!(info.delivered.consumer_sequence, 4);
    assert_eq!(info.ack_floor.stream_sequence, 3);
    assert_eq!(info.num_ack_pending, 1);
    assert_eq!(info.num_pending, 6);
    assert_eq!(s2.clone().info().await.unwrap().state.consumer_count, 1);
    assert_eq!(js1.query_account().await.unwrap().consumers, 1);

    // The names and list pages.
    let names: Vec<String> = s2.consumer_names().map(|n| n.unwrap()).collect().await;
    assert_eq!(names, vec!["work".to_string()]);

    s2.delete_consumer("work").await.unwrap();
    assert!(s2.get_consumer::<pull::Config>("work").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_messages_come_back_after_ack_wait_nak_and_max_deliver() {
    let cluster = Cluster::start(3, &[]).await;
    let urls = cluster.urls();
    let (client, js) = connect(&urls[0]).await;
    let (_, js2) = connect(&urls[1]).await;
    stream_with(&js, "RD", stream::RetentionPolicy::Limits, 2).await;
    let mut advisories = client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.RD.dlq")
        .await
        .unwrap();
    let s = js2.get_stream("RD").await.unwrap();
    let c: PullConsumer = s
        .create_consumer(pull::Config {
            durable_name: Some("dlq".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_millis(600),
            max_deliver: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let first = fetch(&c, 1).await;
    assert_eq!(first[0].info().unwrap().delivered, 1);
    // Not acked: after the ack wait it comes again, counted.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let again = fetch(&c, 1).await;
    let info = again[0].info().unwrap();
    assert_eq!((info.stream_sequence, info.delivered), (1, 2));
    // A nak with a delay: not before it.
    again[0]
        .ack_with(AckKind::Nak(Some(Duration::from_millis(700))))
        .await
        .unwrap();
    let soon = fetch(&c, 1).await;
    assert_eq!(
        soon[0].info().unwrap().stream_sequence,
        2,
        "seq 1 waits for its nak delay"
    );
    soon[0].double_ack().await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let third = fetch(&c, 1).await;
    let info = third[0].info().unwrap();
    assert_eq!((info.stream_sequence, info.delivered), (1, 3));
    // max_deliver reached: never again, and the advisory says so.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(fetch(&c, 1).await.is_empty());
    let adv = tokio::time::timeout(Duration::from_secs(5), advisories.next())
        .await
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&adv.payload).unwrap();
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.max_deliver");
    assert_eq!(
        (v["stream_seq"].as_u64(), v["deliveries"].as_u64()),
        (Some(1), Some(3))
    );
    let mut c = c;
    let i = c.info().await.unwrap();
    assert_eq!((i.num_ack_pending, i.ack_floor.stream_sequence), (0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wait_and_expiring_pulls_answer_with_nats_status() {
    let cluster = Cluster::start(3, &[]).await;
    let urls = cluster.urls();
    let (client, js) = connect(&urls[1]).await;
    stream_with(&js, "NW", stream::RetentionPolicy::Limits, 3).await;
    let s = js.get_stream("NW").await.unwrap();
    s.create_consumer(pull::Config {
        durable_name: Some("c".into()),
        ack_policy: AckPolicy::None,
        ..Default::default()
    })
    .await
    .unwrap();
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply(
            "$JS.API.CONSUMER.MSG.NEXT.NW.c",
            inbox.clone(),
            r#"{"batch":10,"no_wait":true}"#.into(),
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap();
        match m.status {
            Some(s) => {
                got.push(format!(
                    "{} {}",
                    s.as_u16(),
                    m.description.unwrap_or_default()
                ));
                break;
            }
            None => got.push(m.subject.to_string()),
        }
    }
    assert_eq!(got, vec!["nw.0", "nw.1", "nw.2", "404 No Messages"]);
    client
        .publish_with_reply(
            "$JS.API.CONSUMER.MSG.NEXT.NW.c",
            inbox.clone(),
            r#"{"batch":2,"expires":300000000}"#.into(),
        )
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.status.map(|s| s.as_u16()), Some(408));
    let h = m.headers.unwrap();
    assert_eq!(
        h.get("Nats-Pending-Messages").map(|v| v.as_str()),
        Some("2")
    );
    // A missing consumer: nobody answers (as nats-server).
    let r = client
        .request("$JS.API.CONSUMER.MSG.NEXT.NW.nope", "1".into())
        .await;
    assert!(
        matches!(&r, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_queue_empties_as_jobs_are_acked() {
    let cluster = Cluster::start(3, &[]).await;
    let urls = cluster.urls();
    let (_, js) = connect(&urls[2]).await;
    stream_with(&js, "JOBS", stream::RetentionPolicy::WorkQueue, 6).await;
    let s = js.get_stream("JOBS").await.unwrap();
    let c: PullConsumer = s
        .create_consumer(pull::Config {
            durable_name: Some("w".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let r = s
        .create_consumer(pull::Config {
            durable_name: Some("w2".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await;
    assert!(format!("{r:?}").contains("10099"), "{r:?}");
    for m in fetch(&c, 6).await {
        m.double_ack().await.unwrap();
    }
    let mut s = s;
    assert_eq!(s.info().await.unwrap().state.messages, 0);
}
