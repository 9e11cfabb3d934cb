//! Request/reply, the backend hook and the no-responders status.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn request_reply_between_clients() {
    let s = common::start().await;
    let responder = common::client(&s).await;
    let mut service = responder.subscribe("svc.double").await.unwrap();
    common::sync(&responder).await;
    let r2 = responder.clone();
    tokio::spawn(async move {
        while let Some(m) = service.next().await {
            let n: u64 = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
            r2.publish(m.reply.unwrap(), Bytes::from((n * 2).to_string()))
                .await
                .unwrap();
        }
    });
    let c = common::client(&s).await;
    for n in [1u64, 21, 500] {
        let resp = tokio::time::timeout(WAIT, c.request("svc.double", Bytes::from(n.to_string())))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.payload, Bytes::from((n * 2).to_string()));
    }
}

#[tokio::test]
async fn backend_answers_api_requests_with_headers_passed_through() {
    let s = common::start().await;
    let c = common::client(&s).await;
    let resp = c
        .request("$JS.API.INFO", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&resp.payload).unwrap();
    assert_eq!(v["subject"], "$JS.API.INFO");
    assert_eq!(v["request"], "{}");
    assert!(v["headers"].is_null());

    let mut h = HeaderMap::new();
    h.insert("Nats-Required-Api-Level", "1");
    let resp = c
        .request_with_headers("$JS.API.STREAM.INFO.S", h, Bytes::new())
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&resp.payload).unwrap();
    assert_eq!(
        v["headers"],
        "NATS/1.0\r\nNats-Required-Api-Level: 1\r\n\r\n"
    );
}

#[tokio::test]
async fn backend_responses_arrive_in_order_with_their_headers() {
    let s = common::start().await;
    let c = common::client(&s).await;
    let mut inbox = c.subscribe("my.inbox").await.unwrap();
    common::sync(&c).await;
    c.publish_with_reply("multi", "my.inbox", Bytes::new())
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, inbox.next())
        .await
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(WAIT, inbox.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&first.payload[..], b"one");
    assert_eq!(first.headers.unwrap().get("Part").unwrap().as_str(), "1");
    assert_eq!(&second.payload[..], b"two");
    assert!(second.headers.is_none());
}

#[tokio::test]
async fn request_to_nobody_gets_no_responders() {
    let s = common::start().await;
    let c = common::client(&s).await;
    let err = tokio::time::timeout(WAIT, c.request("nobody.home", Bytes::new()))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err.kind(),
        async_nats::client::RequestErrorKind::NoResponders
    );
}

#[tokio::test]
async fn no_responders_status_bytes_match_nats_server() {
    let s = common::start().await;
    let mut raw = common::Raw::connect(s.addr).await;
    let (out, closed) = raw
        .roundtrip(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\nSUB r.* 7\r\nPUB x r.1 0\r\n\r\n")
        .await;
    assert!(!closed);
    assert_eq!(
        out,
        "HMSG r.1 7 33 33\r\nNATS/1.0 503\r\nNats-Subject: x\r\n\r\n\r\nPONG\r\n"
    );

    // Without no_responders in CONNECT, silence.
    let mut raw = common::Raw::connect(s.addr).await;
    let (out, _) = raw
        .roundtrip(b"CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB r 1\r\nPUB x r 0\r\n\r\n")
        .await;
    assert_eq!(out, "PONG\r\n");
}

#[tokio::test]
async fn stream_publish_is_acked_and_also_delivered_to_core_subscribers() {
    let s = common::start().await;
    let watcher = common::client(&s).await;
    let mut watch = watcher.subscribe("orders.>").await.unwrap();
    common::sync(&watcher).await;

    let c = common::client(&s).await;
    let ack = c
        .request("orders.new", Bytes::from_static(b"o1"))
        .await
        .unwrap();
    assert_eq!(&ack.payload[..], br#"{"stream":"ORDERS","seq":1}"#);
    let m = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.subject.as_str(), "orders.new");
    assert_eq!(&m.payload[..], b"o1");
}

#[tokio::test]
async fn taken_publish_without_subscribers_is_not_a_no_responder() {
    let s = common::start().await;
    let c = common::client(&s).await;
    let ack = tokio::time::timeout(WAIT, c.request("orders.x", Bytes::new()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&ack.payload[..], br#"{"stream":"ORDERS","seq":1}"#);
    // A plain publish (no reply) to a stream subject is still stored.
    c.publish("orders.y", Bytes::new()).await.unwrap();
    common::sync(&c).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        s.backend.stored.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

#[tokio::test]
async fn server_side_publish_reaches_clients() {
    let s = common::start().await;
    let c = common::client(&s).await;
    let mut sub = c.subscribe("from.server").await.unwrap();
    common::sync(&c).await;
    let n = s.gw.publish(
        "from.server",
        Some("re"),
        Some(Bytes::from_static(
            b"NATS/1.0 404 Message Not Found\r\n\r\n",
        )),
        Bytes::new(),
    );
    assert_eq!(n, 1);
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.reply.unwrap().as_str(), "re");
    assert_eq!(m.status, Some(async_nats::StatusCode::NOT_FOUND));
    assert_eq!(m.description.as_deref(), Some("Message Not Found"));
}
