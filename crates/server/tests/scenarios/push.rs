//! Push consumers beyond the basics: nats-server's flow-control window
//! (where the request comes and where sending stops) and a deliver group
//! whose members sit on different nodes.

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, push};
use async_nats::jetstream::stream;
use futures::StreamExt;

use super::{Seen, Side};

/// 256 messages of 16 KiB: how many come before the flow-control request,
/// and how many before sending stops (the first heartbeat), unanswered.
pub async fn flow_control(side: &Side) -> Seen {
    let mut seen = Seen::new();
    let js = side.js(0);
    js.create_stream(stream::Config {
        name: "FCW".into(),
        subjects: vec!["fcw.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let body = bytes::Bytes::from(vec![b'x'; 16 * 1024]);
    for _ in 0..256 {
        js.publish("fcw.a", body.clone())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let client = side.client(1);
    let mut sub = client.subscribe("deliver.fcw").await.unwrap();
    client.flush().await.unwrap();
    let s = side.js(2).get_stream("FCW").await.unwrap();
    s.create_consumer(push::Config {
        durable_name: Some("w".into()),
        deliver_subject: "deliver.fcw".into(),
        ack_policy: AckPolicy::None,
        flow_control: true,
        idle_heartbeat: Duration::from_millis(300),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut data = 0;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(3), sub.next()).await {
        match (m.status.map(|s| s.as_u16()), &m.reply) {
            (None, _) => data += 1,
            (Some(100), Some(_)) => seen.push(format!("flow-control request after {data}")),
            (Some(100), None) => {
                let stalled = m
                    .headers
                    .as_ref()
                    .is_some_and(|h| h.get("Nats-Consumer-Stalled").is_some());
                seen.push(format!("heartbeat after {data}, stalled {stalled}"));
                break;
            }
            (s, _) => seen.push(format!("status {s:?} after {data}")),
        }
    }
    seen
}

/// A deliver group with members on two nodes: every message reaches
/// exactly one member.
pub async fn deliver_group(side: &Side) -> Seen {
    let js = side.js(0);
    js.create_stream(stream::Config {
        name: "DG".into(),
        subjects: vec!["dg.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let (a, b) = (side.client(1), side.client(2));
    let mut members = Vec::new();
    for c in [a, b] {
        members.push(c.queue_subscribe("deliver.dg", "grp".into()).await.unwrap());
        c.flush().await.unwrap();
    }
    let s = side.js(0).get_stream("DG").await.unwrap();
    s.create_consumer(push::Config {
        durable_name: Some("g".into()),
        deliver_subject: "deliver.dg".into(),
        deliver_group: Some("grp".into()),
        ack_policy: AckPolicy::None,
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 0..20 {
        js.publish(format!("dg.{i}"), "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let mut subjects = Vec::new();
    let merged = futures::stream::select_all(members);
    let mut merged = std::pin::pin!(merged.take_until(tokio::time::sleep(Duration::from_secs(2))));
    while let Some(m) = merged.next().await {
        subjects.push(m.subject.to_string());
    }
    let distinct: BTreeSet<&String> = subjects.iter().collect();
    vec![format!(
        "deliver group: {} deliveries, {} distinct",
        subjects.len(),
        distinct.len()
    )]
}
