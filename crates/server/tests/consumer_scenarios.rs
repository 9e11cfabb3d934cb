//! The consumer scenarios run twice, against nats-server 2.15.1 (the
//! reference, single node) and against a three-node jetraft cluster with
//! its clients spread over the nodes: what a client observes (subjects,
//! sequences, delivery counts, status lines and headers, advisories,
//! `CONSUMER.INFO` counts, stream state) must be the same. Skipped visibly
//! without nats-server 2.15.1; under `CI=true` that fails.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;
#[path = "differential/nats.rs"]
mod nats;

mod scenarios;

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull, push};
use async_nats::jetstream::{AckKind, stream};
use common::Cluster;
use futures::StreamExt;
use scenarios::{Seen, Side, chrono_like, describe, info, make_stream, next, until_status};

async fn pull_scenarios(side: &Side) -> Seen {
    let mut seen = Seen::new();
    let js = side.js(0);
    make_stream(
        &js,
        "PS",
        stream::RetentionPolicy::Limits,
        &["a", "b", "a", "c", "b"],
    )
    .await;
    let s = side.js(1).get_stream("PS").await.unwrap();
    let mut c: PullConsumer = s
        .create_consumer(pull::Config {
            durable_name: Some("c".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_millis(700),
            max_deliver: 5,
            max_batch: 4,
            max_bytes: 4096,
            max_waiting: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let client = side.client(2);
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.unwrap();
    client.flush().await.unwrap();
    let next_subject = "$JS.API.CONSUMER.MSG.NEXT.PS.c";
    let ask = |body: &'static str| {
        let inbox = inbox.clone();
        async move {
            client
                .publish_with_reply(next_subject, inbox, body.into())
                .await
                .unwrap();
        }
    };
    // A batch, then a bigger no-wait batch than what is left.
    ask(r#"{"batch":2}"#).await;
    until_status(&mut sub, 2, &mut seen).await;
    ask(r#"{"batch":4,"no_wait":true}"#).await;
    until_status(&mut sub, 4, &mut seen).await;
    seen.push(info(&mut c).await);
    // Limits of the consumer.
    ask(r#"{"batch":5}"#).await;
    seen.push(next(&mut sub).await);
    ask(r#"{"batch":1,"max_bytes":8192}"#).await;
    seen.push(next(&mut sub).await);
    ask(r#"{"batch":1,"max_bytes":10,"expires":500000000}"#).await;
    seen.push(next(&mut sub).await);
    // Expiry with the unfilled part in the headers.
    tokio::time::sleep(Duration::from_millis(800)).await;
    ask(r#"{"batch":3,"expires":400000000}"#).await;
    until_status(&mut sub, 3, &mut seen).await;
    seen.push(info(&mut c).await);
    // What is due now (4 and 5): ack one, terminate the other.
    let mut batch = c
        .fetch()
        .max_messages(4)
        .expires(Duration::from_millis(300))
        .messages()
        .await
        .unwrap();
    let mut msgs = Vec::new();
    while let Some(m) = batch.next().await {
        let m = m.unwrap();
        seen.push(describe(&m));
        msgs.push(m);
    }
    if let [a, b] = msgs.as_slice() {
        a.double_ack().await.unwrap();
        b.ack_with(AckKind::Term).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    seen.push(info(&mut c).await);
    // 1 to 3 come a third time; a nak with a delay brings 1 back after it.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut batch = c
        .fetch()
        .max_messages(3)
        .expires(Duration::from_millis(300))
        .messages()
        .await
        .unwrap();
    let mut msgs = Vec::new();
    while let Some(m) = batch.next().await {
        let m = m.unwrap();
        seen.push(describe(&m));
        msgs.push(m);
    }
    if let Some(first) = msgs.first() {
        first
            .ack_with(AckKind::Nak(Some(Duration::from_millis(300))))
            .await
            .unwrap();
    }
    for m in msgs.iter().skip(1) {
        m.double_ack().await.unwrap();
    }
    ask(r#"{"batch":1,"expires":1000000000}"#).await;
    until_status(&mut sub, 1, &mut seen).await;
    seen.push(info(&mut c).await);
    seen
}

async fn max_deliver_scenario(side: &Side) -> Seen {
    let mut seen = Seen::new();
    let js = side.js(0);
    make_stream(&js, "MD", stream::RetentionPolicy::Limits, &["a"]).await;
    let mut adv = side
        .client(1)
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>")
        .await
        .unwrap();
    side.client(1).flush().await.unwrap();
    let s = side.js(2).get_stream("MD").await.unwrap();
    let c: PullConsumer = s
        .create_consumer(pull::Config {
            durable_name: Some("dlq".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_millis(400),
            max_deliver: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    for _ in 0..3 {
        let mut b = c
            .fetch()
            .max_messages(1)
            .expires(Duration::from_millis(300))
            .messages()
            .await
            .unwrap();
        while let Some(m) = b.next().await {
            seen.push(describe(&m.unwrap()));
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let m = tokio::time::timeout(Duration::from_secs(5), adv.next())
        .await
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    seen.push(format!(
        "advisory {} {} stream {} consumer {} seq {} deliveries {}",
        m.subject, v["type"], v["stream"], v["consumer"], v["stream_seq"], v["deliveries"]
    ));
    seen
}

async fn retention_scenarios(side: &Side) -> Seen {
    let mut seen = Seen::new();
    let js = side.js(0);
    make_stream(
        &js,
        "WQS",
        stream::RetentionPolicy::WorkQueue,
        &["a", "b", "c"],
    )
    .await;
    let s = side.js(1).get_stream("WQS").await.unwrap();
    let c: PullConsumer = s
        .create_consumer(pull::Config {
            durable_name: Some("w".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut b = c.fetch().max_messages(3).messages().await.unwrap();
    let mut first = true;
    while let Some(m) = b.next().await {
        let m = m.unwrap();
        if first {
            m.double_ack().await.unwrap();
            first = false;
        }
    }
    let mut s = s;
    seen.push(format!(
        "work queue after one ack: {} messages",
        s.info().await.unwrap().state.messages
    ));

    make_stream(&js, "INT", stream::RetentionPolicy::Interest, &["a"]).await;
    let mut s = side.js(2).get_stream("INT").await.unwrap();
    seen.push(format!(
        "interest, nobody listening: {} messages",
        s.info().await.unwrap().state.messages
    ));
    let mut cs = Vec::new();
    for name in ["x", "y"] {
        let c: PullConsumer = s
            .create_consumer(pull::Config {
                durable_name: Some(name.into()),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .unwrap();
        cs.push(c);
    }
    js.publish("int.b", "x".into())
        .await
        .unwrap()
        .await
        .unwrap();
    for c in &cs {
        let mut b = c.fetch().max_messages(1).messages().await.unwrap();
        while let Some(m) = b.next().await {
            m.unwrap().double_ack().await.unwrap();
        }
        seen.push(format!(
            "interest after {} acked: {} messages",
            c.cached_info().name,
            s.info().await.unwrap().state.messages
        ));
    }
    seen
}

async fn push_scenario(side: &Side) -> Seen {
    let mut seen = Seen::new();
    let js = side.js(0);
    make_stream(&js, "PU", stream::RetentionPolicy::Limits, &["a", "b", "a"]).await;
    let client = side.client(1);
    let mut sub = client.subscribe("deliver.pu").await.unwrap();
    client.flush().await.unwrap();
    let s = side.js(2).get_stream("PU").await.unwrap();
    s.create_consumer(push::Config {
        durable_name: Some("p".into()),
        deliver_subject: "deliver.pu".into(),
        ack_policy: AckPolicy::Explicit,
        headers_only: true,
        idle_heartbeat: Duration::from_millis(300),
        ..Default::default()
    })
    .await
    .unwrap();
    for _ in 0..4 {
        seen.push(next(&mut sub).await);
    }
    seen
}

async fn pause_scenario(side: &Side) -> Seen {
    let mut seen = Seen::new();
    let js = side.js(0);
    make_stream(&js, "PA", stream::RetentionPolicy::Limits, &["a", "b"]).await;
    let watcher = side.client(0);
    let mut created = watcher
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.CREATED.PA.>")
        .await
        .unwrap();
    let mut deleted = watcher
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.DELETED.PA.>")
        .await
        .unwrap();
    let mut pauses = watcher
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.PAUSE.PA.>")
        .await
        .unwrap();
    watcher.flush().await.unwrap();
    let s = side.js(1).get_stream("PA").await.unwrap();
    let mut c: PullConsumer = s
        .create_consumer(pull::Config {
            durable_name: Some("p".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let client = side.client(2);
    let until = std::time::SystemTime::now() + Duration::from_secs(30);
    let until: chrono_like::Rfc3339 = until.into();
    let r = client
        .request(
            "$JS.API.CONSUMER.PAUSE.PA.p",
            format!(r#"{{"pause_until":"{}"}}"#, until.0).into(),
        )
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
    seen.push(format!(
        "pause: type {} paused {} remaining>0 {}",
        v["type"],
        v["paused"],
        v["pause_remaining"].as_i64().is_some_and(|n| n > 0)
    ));
    let i = c.info().await.unwrap();
    seen.push(format!(
        "info paused {} level {:?}",
        i.paused,
        i.config.metadata.get("_nats.req.level")
    ));
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.unwrap();
    client.flush().await.unwrap();
    for body in [
        r#"{"batch":1,"no_wait":true}"#,
        r#"{"batch":1,"expires":400000000}"#,
    ] {
        client
            .publish_with_reply("$JS.API.CONSUMER.MSG.NEXT.PA.p", inbox.clone(), body.into())
            .await
            .unwrap();
        seen.push(next(&mut sub).await);
    }
    let r = client
        .request("$JS.API.CONSUMER.PAUSE.PA.p", "".into())
        .await
        .unwrap();
    seen.push(String::from_utf8_lossy(&r.payload).into_owned());
    client
        .publish_with_reply(
            "$JS.API.CONSUMER.MSG.NEXT.PA.p",
            inbox.clone(),
            r#"{"batch":2,"expires":1000000000}"#.into(),
        )
        .await
        .unwrap();
    until_status(&mut sub, 2, &mut seen).await;
    // Start over at 1: both come again, numbered from 1.
    let r = client
        .request("$JS.API.CONSUMER.RESET.PA.p", r#"{"seq":1}"#.into())
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
    seen.push(format!(
        "reset {} seq {} delivered {} floor {} pending {} ack_pending {}",
        v["type"],
        v["reset_seq"],
        v["delivered"],
        v["ack_floor"],
        v["num_pending"],
        v["num_ack_pending"]
    ));
    client
        .publish_with_reply(
            "$JS.API.CONSUMER.MSG.NEXT.PA.p",
            inbox.clone(),
            r#"{"batch":2,"no_wait":true}"#.into(),
        )
        .await
        .unwrap();
    until_status(&mut sub, 2, &mut seen).await;
    let none = tokio::time::timeout(
        Duration::from_millis(1500),
        client.request("$JS.API.CONSUMER.RESET.PA.nope", "".into()),
    )
    .await;
    seen.push(format!(
        "reset of no consumer answered: {}",
        matches!(none, Ok(Ok(_)))
    ));
    let r = client
        .request("$JS.API.CONSUMER.PAUSE.PA.nope", "{}".into())
        .await
        .unwrap();
    seen.push(String::from_utf8_lossy(&r.payload).into_owned());
    s.delete_consumer("p").await.unwrap();
    for sub in [&mut created, &mut deleted] {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        seen.push(format!(
            "advisory {} {} {} {} {}",
            m.subject, v["type"], v["stream"], v["consumer"], v["action"]
        ));
    }
    // Paused, then resumed.
    for _ in 0..2 {
        let m = tokio::time::timeout(Duration::from_secs(5), pauses.next())
            .await
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        seen.push(format!(
            "advisory {} {} {} {} paused {} until zero {}",
            m.subject,
            v["type"],
            v["stream"],
            v["consumer"],
            v["paused"],
            v["pause_until"] == "0001-01-01T00:00:00Z"
        ));
    }
    seen
}

/// One scenario, run on either side.
type Scenario = for<'a> fn(&'a Side) -> futures::future::BoxFuture<'a, Seen>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_behave_as_nats_server() {
    let reference = match nats::NatsServer::start().await {
        Ok(s) => s,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and the reference is unusable: {why}")
        }
        Err(why) => {
            eprintln!("\n==== SKIPPED: {why} ====\n");
            return;
        }
    };
    let cluster = Cluster::start(3, &[]).await;
    let theirs = Side::new(&[reference.url()]).await;
    let ours = Side::new(&cluster.urls()).await;
    let mut failures = Vec::new();
    let scenarios: [(&str, Scenario); 13] = [
        ("pull", |s| Box::pin(pull_scenarios(s))),
        ("max_deliver", |s| Box::pin(max_deliver_scenario(s))),
        ("retention", |s| Box::pin(retention_scenarios(s))),
        ("push", |s| Box::pin(push_scenario(s))),
        ("pause", |s| Box::pin(pause_scenario(s))),
        ("overflow", |s| Box::pin(scenarios::priority::overflow(s))),
        ("pinned", |s| Box::pin(scenarios::priority::pinned(s))),
        ("replay and rate", |s| {
            Box::pin(scenarios::pacing::replay_and_rate(s))
        }),
        ("sample", |s| Box::pin(scenarios::pacing::sample(s))),
        ("backoff", |s| Box::pin(scenarios::pacing::backoff(s))),
        ("flow control", |s| {
            Box::pin(scenarios::push::flow_control(s))
        }),
        ("deliver group", |s| {
            Box::pin(scenarios::push::deliver_group(s))
        }),
        ("prioritized", |s| {
            Box::pin(scenarios::priority::prioritized(s))
        }),
    ];
    for (name, run) in scenarios {
        let a = run(&theirs).await;
        let b = run(&ours).await;
        eprintln!("---- {name} (nats-server) ----");
        for l in &a {
            eprintln!("  {l}");
        }
        if a != b {
            let mut report = format!("scenario {name} differs:\n");
            for i in 0..a.len().max(b.len()) {
                let (x, y) = (a.get(i), b.get(i));
                let mark = if x == y { " " } else { "!" };
                report.push_str(&format!(
                    "{mark} nats-server: {x:?}\n{mark} jetraft:     {y:?}\n"
                ));
            }
            failures.push(report);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
