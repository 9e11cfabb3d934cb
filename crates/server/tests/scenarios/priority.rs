//! Priority groups (ADR-42): overflow, pinned client and prioritized pull
//! consumers, driven with raw `MSG.NEXT` requests so the wire is compared
//! exactly.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PriorityPolicy, PullConsumer, pull};
use async_nats::jetstream::stream;
use async_nats::{Client, Subscriber};
use futures::StreamExt;

use super::{Seen, Side, describe, info, make_stream, next, until_status};

async fn ask(client: &Client, subject: &str, inbox: &str, body: String) {
    client
        .publish_with_reply(subject.to_string(), inbox.to_string(), body.into())
        .await
        .unwrap();
    client.flush().await.unwrap();
}

async fn priority_consumer(
    side: &Side,
    stream_name: &str,
    name: &str,
    policy: PriorityPolicy,
    group: &str,
    timeout: Duration,
) -> PullConsumer {
    let s = side.js(1).get_stream(stream_name).await.unwrap();
    s.create_consumer(pull::Config {
        durable_name: Some(name.into()),
        ack_policy: AckPolicy::Explicit,
        priority_policy: policy,
        priority_groups: vec![group.into()],
        priority_timeout: timeout,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Overflow: a request naming `min_pending` / `min_ack_pending` is served
/// only while the consumer is that far behind; the refusals of bad fields.
pub async fn overflow(side: &Side) -> Seen {
    let mut seen = Seen::new();
    make_stream(
        &side.js(0),
        "OV",
        stream::RetentionPolicy::Limits,
        &["a", "b", "c", "d", "e", "f"],
    )
    .await;
    let mut c = priority_consumer(
        side,
        "OV",
        "o",
        PriorityPolicy::Overflow,
        "jobs",
        Duration::ZERO,
    )
    .await;
    let client = side.client(2);
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.unwrap();
    client.flush().await.unwrap();
    let subject = "$JS.API.CONSUMER.MSG.NEXT.OV.o";
    for body in [
        r#"{"batch":1}"#,
        r#"{"batch":1,"group":"other"}"#,
        r#"{"batch":1,"group":"jobs","priority":10}"#,
        r#"{"batch":1,"group":"jobs","id":"x"}"#,
    ] {
        ask(client, subject, &inbox, body.into()).await;
        seen.push(next(&mut sub).await);
    }
    // Not that far behind: it waits, and expires.
    let body = r#"{"batch":10,"group":"jobs","min_pending":10,"expires":300000000}"#;
    ask(client, subject, &inbox, body.into()).await;
    until_status(&mut sub, 10, &mut seen).await;
    // Six behind: served while at least four are left, then it waits.
    let body = r#"{"batch":10,"group":"jobs","min_pending":4,"expires":500000000}"#;
    ask(client, subject, &inbox, body.into()).await;
    until_status(&mut sub, 10, &mut seen).await;
    seen.push(info(&mut c).await);
    // Three unacknowledged: a min_ack_pending of three is served.
    let body = r#"{"batch":2,"group":"jobs","min_ack_pending":3,"expires":500000000}"#;
    ask(client, subject, &inbox, body.into()).await;
    until_status(&mut sub, 2, &mut seen).await;
    seen.push(info(&mut c).await);
    seen
}

/// A data message with its pin written as the order the pin was first
/// seen in (`pin#0`, `pin#1`): ids differ between servers, their
/// sameness must not.
fn with_pin(m: &async_nats::Message, pins: &mut Vec<String>) -> String {
    let pin = m
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Pin-Id"))
        .map(|v| v.as_str().to_string());
    let class = match pin {
        Some(p) => {
            let i = pins.iter().position(|x| *x == p).unwrap_or_else(|| {
                pins.push(p.clone());
                pins.len() - 1
            });
            format!("pin#{i}")
        }
        None => "no pin".into(),
    };
    format!("{} {class}", describe(m))
}

async fn next_pinned(sub: &mut Subscriber, pins: &mut Vec<String>) -> String {
    match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
        Ok(Some(m)) if m.status.is_none() => with_pin(&m, pins),
        Ok(Some(m)) => describe(&m),
        _ => "nothing within 5 s".into(),
    }
}

async fn pinned_info(side: &Side, pins: &[String]) -> String {
    let r = side
        .client(0)
        .request("$JS.API.CONSUMER.INFO.PN.p", "".into())
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
    let g = &v["priority_groups"][0];
    let id = g["pinned_client_id"].as_str().unwrap_or("");
    let class = match pins.iter().position(|p| p == id) {
        Some(i) => format!("pin#{i}"),
        None if id.is_empty() => "none".into(),
        None => "unknown".into(),
    };
    let zero_ts = g["pinned_ts"].as_str() == Some("0001-01-01T00:00:00Z");
    format!(
        "info: group {} pinned {class} zero ts {zero_ts}",
        g["group"]
    )
}

/// Pinned client: one client gets the messages until it stops pulling;
/// others wait, a wrong id is refused, UNPIN and the timeout move the pin.
pub async fn pinned(side: &Side) -> Seen {
    let mut seen = Seen::new();
    make_stream(
        &side.js(0),
        "PN",
        stream::RetentionPolicy::Limits,
        &["a", "b", "c", "d", "e", "f"],
    )
    .await;
    let watcher = side.client(0);
    let mut pinned_adv = watcher
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.PINNED.PN.>")
        .await
        .unwrap();
    let mut unpinned_adv = watcher
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.PN.>")
        .await
        .unwrap();
    watcher.flush().await.unwrap();
    priority_consumer(
        side,
        "PN",
        "p",
        PriorityPolicy::PinnedClient,
        "g",
        Duration::from_secs(2),
    )
    .await;
    let subject = "$JS.API.CONSUMER.MSG.NEXT.PN.p";
    let (a, b) = (side.client(1), side.client(2));
    let (ia, ib) = (a.new_inbox(), b.new_inbox());
    let mut sa = a.subscribe(ia.clone()).await.unwrap();
    let mut sb = b.subscribe(ib.clone()).await.unwrap();
    a.flush().await.unwrap();
    b.flush().await.unwrap();
    let mut pins = Vec::new();
    let body = |extra: &str, expires_ms: u64| {
        format!(
            r#"{{"batch":1,"group":"g"{extra},"expires":{}}}"#,
            expires_ms * 1_000_000
        )
    };
    // A is pinned by its first request.
    ask(a, subject, &ia, body("", 1000)).await;
    seen.push(format!("a: {}", next_pinned(&mut sa, &mut pins).await));
    // B waits (and expires); a wrong id is refused at once.
    ask(b, subject, &ib, body("", 400)).await;
    seen.push(format!("b: {}", next(&mut sb).await));
    ask(b, subject, &ib, body(r#","id":"WRONG""#, 400)).await;
    seen.push(format!("b: {}", next(&mut sb).await));
    // A with its pin goes on.
    let pin = pins.first().cloned().unwrap_or_default();
    let with_id = format!(r#","id":"{pin}""#);
    ask(
        a,
        subject,
        &ia,
        body(&with_id, 1000).replace(r#""batch":1"#, r#""batch":2"#),
    )
    .await;
    for _ in 0..2 {
        seen.push(format!("a: {}", next_pinned(&mut sa, &mut pins).await));
    }
    seen.push(pinned_info(side, &pins).await);
    // UNPIN: A's old id is refused, B gets a new pin.
    let r = watcher
        .request("$JS.API.CONSUMER.UNPIN.PN.p", r#"{"group":"g"}"#.into())
        .await
        .unwrap();
    seen.push(format!("unpin: {}", String::from_utf8_lossy(&r.payload)));
    seen.push(pinned_info(side, &pins).await);
    ask(a, subject, &ia, body(&with_id, 400)).await;
    seen.push(format!("a: {}", next(&mut sa).await));
    ask(b, subject, &ib, body("", 1000)).await;
    seen.push(format!("b: {}", next_pinned(&mut sb, &mut pins).await));
    seen.push(pinned_info(side, &pins).await);
    // B stops pulling: after priority_timeout the pin is gone.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    seen.push(pinned_info(side, &pins).await);
    for _ in 0..2 {
        let m = tokio::time::timeout(Duration::from_secs(5), pinned_adv.next()).await;
        let line = match m {
            Ok(Some(m)) => {
                let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
                let id = v["pinned_id"].as_str().unwrap_or("");
                let class = pins
                    .iter()
                    .position(|p| p == id)
                    .map_or("unknown".to_string(), |i| format!("pin#{i}"));
                format!(
                    "advisory {} {} {} {} group {} {class}",
                    m.subject, v["type"], v["stream"], v["consumer"], v["group"]
                )
            }
            _ => "no advisory".into(),
        };
        seen.push(line);
    }
    for _ in 0..2 {
        let m = tokio::time::timeout(Duration::from_secs(5), unpinned_adv.next()).await;
        let line = match m {
            Ok(Some(m)) => {
                let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
                format!(
                    "advisory {} {} group {} reason {}",
                    m.subject, v["type"], v["group"], v["reason"]
                )
            }
            _ => "no advisory".into(),
        };
        seen.push(line);
    }
    seen
}

/// Prioritized: waiting requests are served lowest `priority` first,
/// whatever order they came in.
pub async fn prioritized(side: &Side) -> Seen {
    let mut seen = Seen::new();
    let js = side.js(0);
    make_stream(&js, "PP", stream::RetentionPolicy::Limits, &[]).await;
    priority_consumer(
        side,
        "PP",
        "q",
        PriorityPolicy::Prioritized,
        "p",
        Duration::ZERO,
    )
    .await;
    let client = side.client(1);
    let mut subs = Vec::new();
    for priority in [5, 1, 3] {
        let inbox = client.new_inbox();
        let sub = client.subscribe(inbox.clone()).await.unwrap();
        client.flush().await.unwrap();
        let body =
            format!(r#"{{"batch":1,"group":"p","priority":{priority},"expires":5000000000}}"#);
        ask(client, "$JS.API.CONSUMER.MSG.NEXT.PP.q", &inbox, body).await;
        subs.push((priority, sub));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 1..=3 {
        js.publish(format!("pp.{i}"), "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    subs.sort_by_key(|(p, _)| *p);
    for (p, sub) in &mut subs {
        seen.push(format!("priority {p}: {}", next(sub).await));
    }
    seen
}
