//! `STREAM.LEADER.STEPDOWN` and `CONSUMER.LEADER.STEPDOWN` on three real
//! nodes: the leadership moves (to the preferred node when one is named),
//! nothing committed is lost, consumers keep their exact state, waiting
//! pulls hear `409 Leadership Change`, and the refusals carry nats-server's
//! codes. (nats-server answers these only when clustered, so the
//! single-node reference cannot be compared here.)
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::stream;
use common::Cluster;
use futures::StreamExt;

async fn request(client: &async_nats::Client, subject: String, body: &str) -> serde_json::Value {
    let r = client
        .request(subject, body.to_string().into())
        .await
        .unwrap();
    serde_json::from_slice(&r.payload).unwrap()
}

/// The stream's leader by name, as STREAM.INFO reports it.
async fn leader(client: &async_nats::Client, stream: &str) -> String {
    let v = request(client, format!("$JS.API.STREAM.INFO.{stream}"), "").await;
    v["cluster"]["leader"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaders_step_down_and_nothing_is_lost() {
    let cluster = Cluster::start(3, &[]).await;
    let urls = cluster.urls();
    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .connect(&urls[0])
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(stream::Config {
        name: "SD".into(),
        subjects: vec!["sd.>".into()],
        num_replicas: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 0..100 {
        js.publish(format!("sd.{i}"), "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let s = js.get_stream("SD").await.unwrap();
    let mut c: PullConsumer = s
        .create_consumer(pull::Config {
            durable_name: Some("w".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    // Ten delivered, five of them acknowledged.
    let mut b = c.fetch().max_messages(10).messages().await.unwrap();
    let mut n = 0;
    while let Some(m) = b.next().await {
        let m = m.unwrap();
        if n < 5 {
            m.double_ack().await.unwrap();
        }
        n += 1;
    }
    assert_eq!(n, 10);
    // A pull waiting on the leader.
    let inbox = client.new_inbox();
    let mut waiting = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply(
            "$JS.API.CONSUMER.MSG.NEXT.SD.w",
            inbox,
            r#"{"batch":1000,"expires":30000000000}"#.into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    let mut got = 0;
    while got < 90 {
        let m = tokio::time::timeout(Duration::from_secs(10), waiting.next())
            .await
            .unwrap()
            .unwrap();
        assert!(m.status.is_none(), "{m:?}");
        got += 1;
    }

    let before = leader(&client, "SD").await;
    let v = request(&client, "$JS.API.STREAM.LEADER.STEPDOWN.SD".into(), "").await;
    assert_eq!(
        v["type"], "io.nats.jetstream.api.v1.stream_leader_stepdown_response",
        "{v}"
    );
    assert_eq!(v["success"], true, "{v}");
    let after = leader(&client, "SD").await;
    assert!(!after.is_empty() && after != before, "{before} -> {after}");
    // The waiting pull heard the leader go.
    let m = tokio::time::timeout(Duration::from_secs(5), waiting.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.status.map(|s| s.as_u16()), m.description.as_deref()),
        (Some(409), Some("Leadership Change")),
        "{m:?}"
    );
    let i = c.info().await.unwrap();
    assert_eq!(
        (
            i.num_ack_pending,
            i.num_pending,
            i.ack_floor.stream_sequence,
            i.delivered.stream_sequence
        ),
        (95, 0, 5, 100),
        "{i:?}"
    );
    js.publish("sd.more", "x".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(s.clone().info().await.unwrap().state.messages, 101);

    // To a named node; refusals of a node that already leads or is unknown.
    let target = ["n1", "n2", "n3"]
        .into_iter()
        .find(|n| *n != after)
        .unwrap();
    let body = format!(r#"{{"placement":{{"preferred":"{target}"}}}}"#);
    let v = request(
        &client,
        "$JS.API.CONSUMER.LEADER.STEPDOWN.SD.w".into(),
        &body,
    )
    .await;
    assert_eq!(
        v["type"], "io.nats.jetstream.api.v1.consumer_leader_stepdown_response",
        "{v}"
    );
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(leader(&client, "SD").await, target);
    let body = format!(r#"{{"placement":{{"preferred":"{target}"}}}}"#);
    let v = request(&client, "$JS.API.STREAM.LEADER.STEPDOWN.SD".into(), &body).await;
    assert_eq!(v["error"]["err_code"], 10005, "{v}");
    assert_eq!(
        v["error"]["description"],
        format!("preferred server \"{target}\" is already leader"),
        "{v}"
    );
    let body = r#"{"placement":{"preferred":"nobody"}}"#;
    let v = request(&client, "$JS.API.STREAM.LEADER.STEPDOWN.SD".into(), body).await;
    assert_eq!(
        v["error"]["description"], "preferred server \"nobody\" not known",
        "{v}"
    );
    let v = request(&client, "$JS.API.STREAM.LEADER.STEPDOWN.SD".into(), "{bad").await;
    assert_eq!(v["error"]["err_code"], 10025, "{v}");
    let v = request(
        &client,
        "$JS.API.CONSUMER.LEADER.STEPDOWN.SD.nope".into(),
        "",
    )
    .await;
    assert_eq!(v["error"]["err_code"], 10014, "{v}");
    let v = request(&client, "$JS.API.STREAM.LEADER.STEPDOWN.NOPE".into(), "").await;
    assert_eq!(v["error"]["err_code"], 10059, "{v}");

    // The consumer goes on where it was: the five unacked come again after
    // their ack wait, nothing acknowledged does.
    let i = c.info().await.unwrap();
    assert_eq!((i.num_ack_pending, i.ack_floor.stream_sequence), (95, 5));

    // A single replica: nothing to hand over, success.
    js.create_stream(stream::Config {
        name: "ONE".into(),
        subjects: vec!["one.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let v = request(&client, "$JS.API.STREAM.LEADER.STEPDOWN.ONE".into(), "").await;
    assert_eq!(v["success"], true, "{v}");
}
