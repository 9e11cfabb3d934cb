//! When deliveries go out: `replay_policy: original` keeps the gaps
//! between the messages' own times, `rate_limit_bps` spreads a push
//! consumer's deliveries, and `sample_freq` publishes ack metrics.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, ReplayPolicy, pull, push};
use async_nats::jetstream::stream;
use futures::StreamExt;

use super::{Seen, Side, make_stream};

/// How long after the first message each of `n` messages on `subject`
/// came.
async fn arrivals(side: &Side, subject: &str, n: usize, start: impl Future) -> Vec<Duration> {
    let client = side.client(2);
    let mut sub = client.subscribe(subject.to_string()).await.unwrap();
    client.flush().await.unwrap();
    start.await;
    let mut first = None;
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
            Ok(Some(m)) if m.status.is_none() => {
                let t0 = *first.get_or_insert_with(Instant::now);
                out.push(t0.elapsed());
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    out
}

pub async fn replay_and_rate(side: &Side) -> Seen {
    let mut seen = Seen::new();
    let js = side.js(0);
    make_stream(&js, "RPL", stream::RetentionPolicy::Limits, &["a"]).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    js.publish("rpl.b", "x".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let s = side.js(1).get_stream("RPL").await.unwrap();
    for (name, replay) in [
        ("orig", ReplayPolicy::Original),
        ("inst", ReplayPolicy::Instant),
    ] {
        let subject = format!("deliver.rpl.{name}");
        let create = s.create_consumer(push::Config {
            durable_name: Some(name.into()),
            deliver_subject: subject.clone(),
            ack_policy: AckPolicy::None,
            replay_policy: replay,
            ..Default::default()
        });
        let t = arrivals(side, &subject, 2, async { create.await.unwrap() }).await;
        let gap = t.get(1).copied().unwrap_or_default();
        seen.push(format!(
            "{name}: {} messages, gap at least 450 ms {}, under 300 ms {}",
            t.len(),
            gap >= Duration::from_millis(450),
            gap < Duration::from_millis(300)
        ));
    }
    // 3 MiB at 1 MiB/s with a 1 MiB burst: about two seconds.
    js.create_stream(stream::Config {
        name: "RL".into(),
        subjects: vec!["rl.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let body = bytes::Bytes::from(vec![b'x'; 256 * 1024]);
    for _ in 0..12 {
        js.publish("rl.m", body.clone())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let s = side.js(1).get_stream("RL").await.unwrap();
    let create = s.create_consumer(push::Config {
        durable_name: Some("r".into()),
        deliver_subject: "deliver.rl".into(),
        ack_policy: AckPolicy::None,
        rate_limit: 8 * 1024 * 1024,
        ..Default::default()
    });
    let t = arrivals(side, "deliver.rl", 12, async { create.await.unwrap() }).await;
    let last = t.last().copied().unwrap_or_default();
    seen.push(format!(
        "rate limited: {} messages, the last after 1.5 s {}, within 4 s {}",
        t.len(),
        last >= Duration::from_millis(1500),
        last < Duration::from_secs(4)
    ));
    seen
}

pub async fn sample(side: &Side) -> Seen {
    let mut seen = Seen::new();
    make_stream(&side.js(0), "SMP", stream::RetentionPolicy::Limits, &["a"]).await;
    let watcher = side.client(0);
    let mut metrics = watcher
        .subscribe("$JS.EVENT.METRIC.CONSUMER.ACK.SMP.>")
        .await
        .unwrap();
    watcher.flush().await.unwrap();
    let s = side.js(1).get_stream("SMP").await.unwrap();
    let c: PullConsumer = s
        .create_consumer(pull::Config {
            durable_name: Some("s".into()),
            ack_policy: AckPolicy::Explicit,
            sample_frequency: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut b = c.fetch().max_messages(1).messages().await.unwrap();
    while let Some(m) = b.next().await {
        tokio::time::sleep(Duration::from_millis(20)).await;
        m.unwrap().double_ack().await.unwrap();
    }
    let line = match tokio::time::timeout(Duration::from_secs(5), metrics.next()).await {
        Ok(Some(m)) => {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            format!(
                "metric {} {} {} {} c{} s{} deliveries {} ack_time>=20ms {}",
                m.subject,
                v["type"],
                v["stream"],
                v["consumer"],
                v["consumer_seq"],
                v["stream_seq"],
                v["deliveries"],
                v["ack_time"].as_i64().is_some_and(|t| t >= 20_000_000)
            )
        }
        _ => "no metric".into(),
    };
    seen.push(line);
    seen
}

/// Redelivery honours `backoff`: each delivery's wait is its step of the
/// list (the last step repeats), not `ack_wait`.
pub async fn backoff(side: &Side) -> Seen {
    let mut seen = Seen::new();
    make_stream(&side.js(0), "BO", stream::RetentionPolicy::Limits, &["a"]).await;
    let s = side.js(1).get_stream("BO").await.unwrap();
    s.create_consumer(pull::Config {
        durable_name: Some("b".into()),
        ack_policy: AckPolicy::Explicit,
        backoff: vec![Duration::from_millis(300), Duration::from_millis(1200)],
        max_deliver: 4,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = side.client(2);
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.unwrap();
    client.flush().await.unwrap();
    client
        .publish_with_reply(
            "$JS.API.CONSUMER.MSG.NEXT.BO.b",
            inbox,
            r#"{"batch":3,"expires":5000000000}"#.into(),
        )
        .await
        .unwrap();
    let mut last = None;
    for _ in 0..3 {
        let m = tokio::time::timeout(Duration::from_secs(6), sub.next()).await;
        let Ok(Some(m)) = m else {
            seen.push("nothing".into());
            break;
        };
        let at = Instant::now();
        let gap = last.map(|l: Instant| at - l);
        last = Some(at);
        let class = match gap {
            None => "first".to_string(),
            Some(g) if g < Duration::from_millis(250) => "under 250 ms".into(),
            Some(g) if g < Duration::from_millis(1000) => "250 ms to 1 s".into(),
            Some(g) if g < Duration::from_millis(2500) => "1 s to 2.5 s".into(),
            Some(_) => "over 2.5 s".into(),
        };
        seen.push(format!("{} after {class}", super::describe(&m)));
    }
    seen
}
