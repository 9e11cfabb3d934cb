//! Core NATS between async-nats clients through the gateway.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;

const WAIT: Duration = Duration::from_secs(5);

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("message in time")
        .expect("subscription open")
}

async fn nothing_more(sub: &mut async_nats::Subscriber) {
    let got = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
    assert!(got.is_err(), "unexpected message: {got:?}");
}

#[tokio::test]
async fn publish_reaches_subscriber_on_other_connection() {
    let s = common::start().await;
    let a = common::client(&s).await;
    let b = common::client(&s).await;
    let mut sub = a.subscribe("greet.joe").await.unwrap();
    common::sync(&a).await;
    b.publish("greet.joe", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    common::sync(&b).await;
    let m = next(&mut sub).await;
    assert_eq!(m.subject.as_str(), "greet.joe");
    assert_eq!(&m.payload[..], b"hello");
    assert!(m.headers.is_none());
    assert_eq!(a.server_info().version, "2.15.1");
    assert!(a.server_info().jetstream && a.server_info().headers);
    assert_eq!(a.server_info().max_payload, 1024 * 1024);
}

#[tokio::test]
async fn wildcards_match_like_nats() {
    let s = common::start().await;
    let c = common::client(&s).await;
    let mut star = c.subscribe("a.*").await.unwrap();
    let mut tail = c.subscribe("a.>").await.unwrap();
    let mut exact = c.subscribe("a.b.c").await.unwrap();
    common::sync(&c).await;
    for subj in ["a.b", "a.b.c", "b.c", "a"] {
        c.publish(subj, Bytes::from(subj)).await.unwrap();
    }
    common::sync(&c).await;
    assert_eq!(next(&mut star).await.subject.as_str(), "a.b");
    assert_eq!(next(&mut tail).await.subject.as_str(), "a.b");
    assert_eq!(next(&mut tail).await.subject.as_str(), "a.b.c");
    assert_eq!(next(&mut exact).await.subject.as_str(), "a.b.c");
    nothing_more(&mut star).await;
    nothing_more(&mut tail).await;
}

#[tokio::test]
async fn queue_group_delivers_each_message_once_and_spreads_it() {
    let s = common::start().await;
    let workers = [
        common::client(&s).await,
        common::client(&s).await,
        common::client(&s).await,
    ];
    let mut subs = Vec::new();
    for w in &workers {
        subs.push(w.queue_subscribe("jobs", "workers".into()).await.unwrap());
        common::sync(w).await;
    }
    let watcher = common::client(&s).await;
    let mut all = watcher.subscribe("jobs").await.unwrap();
    common::sync(&watcher).await;

    let p = common::client(&s).await;
    for i in 0..30 {
        p.publish("jobs", Bytes::from(i.to_string())).await.unwrap();
    }
    common::sync(&p).await;

    for _ in 0..30 {
        next(&mut all).await;
    }
    let mut seen = Vec::new();
    for sub in &mut subs {
        let mut n = 0;
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
            seen.push(
                String::from_utf8(m.payload.to_vec())
                    .unwrap()
                    .parse::<u32>()
                    .unwrap(),
            );
            n += 1;
        }
        assert!(n > 0, "round robin gives every member some work");
    }
    seen.sort();
    assert_eq!(seen, (0..30).collect::<Vec<_>>(), "each job exactly once");
}

#[tokio::test]
async fn headers_round_trip() {
    let s = common::start().await;
    let c = common::client(&s).await;
    let mut sub = c.subscribe("h").await.unwrap();
    common::sync(&c).await;
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", "42");
    h.append("X-Multi", "a");
    h.append("X-Multi", "b");
    c.publish_with_headers("h", h, Bytes::from_static(b"body"))
        .await
        .unwrap();
    common::sync(&c).await;
    let m = next(&mut sub).await;
    let got = m.headers.unwrap();
    assert_eq!(got.get("Nats-Msg-Id").unwrap().as_str(), "42");
    let multi: Vec<&str> = got.get_all("X-Multi").map(|v| v.as_str()).collect();
    assert_eq!(multi, ["a", "b"]);
    assert_eq!(&m.payload[..], b"body");
}

#[tokio::test]
async fn unsubscribe_after_max_stops_delivery() {
    let s = common::start().await;
    let c = common::client(&s).await;
    let mut sub = c.subscribe("limited").await.unwrap();
    sub.unsubscribe_after(3).await.unwrap();
    common::sync(&c).await;
    for i in 0..10 {
        c.publish("limited", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    common::sync(&c).await;
    for i in 0..3 {
        assert_eq!(next(&mut sub).await.payload, Bytes::from(i.to_string()));
    }
    // The subscription ends after three.
    let end = tokio::time::timeout(WAIT, sub.next()).await.unwrap();
    assert!(end.is_none());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !s.gw.has_interest("limited"),
        "auto-unsubscribed on the server"
    );
}

#[tokio::test]
async fn unsubscribe_removes_interest() {
    let s = common::start().await;
    let c = common::client(&s).await;
    let mut sub = c.subscribe("gone").await.unwrap();
    common::sync(&c).await;
    assert!(s.gw.has_interest("gone"));
    sub.unsubscribe().await.unwrap();
    common::sync(&c).await;
    assert!(!s.gw.has_interest("gone"));
}

#[tokio::test]
async fn no_echo_client_does_not_hear_itself() {
    let s = common::start().await;
    let quiet = async_nats::ConnectOptions::new()
        .no_echo()
        .connect(s.url())
        .await
        .unwrap();
    let other = common::client(&s).await;
    let mut own = quiet.subscribe("e").await.unwrap();
    let mut theirs = other.subscribe("e").await.unwrap();
    common::sync(&quiet).await;
    common::sync(&other).await;
    quiet.publish("e", Bytes::from_static(b"x")).await.unwrap();
    common::sync(&quiet).await;
    assert_eq!(&next(&mut theirs).await.payload[..], b"x");
    nothing_more(&mut own).await;
    other.publish("e", Bytes::from_static(b"y")).await.unwrap();
    common::sync(&other).await;
    assert_eq!(&next(&mut own).await.payload[..], b"y");
}

#[tokio::test]
async fn closing_a_client_removes_its_subscriptions() {
    let s = common::start().await;
    let c = common::client(&s).await;
    let _a = c.subscribe("x.1").await.unwrap();
    let _b = c.queue_subscribe("x.2", "q".into()).await.unwrap();
    common::sync(&c).await;
    assert!(s.gw.has_interest("x.1") && s.gw.has_interest("x.2"));
    drop((_a, _b));
    drop(c);
    for _ in 0..100 {
        if s.gw.num_clients() == 0 && s.gw.num_subscriptions() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "clients {} subs {}",
        s.gw.num_clients(),
        s.gw.num_subscriptions()
    );
}
