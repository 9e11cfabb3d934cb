//! Bad or hostile clients hurt only themselves.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use jetraft_gateway::GatewayConfig;

const WAIT: Duration = Duration::from_secs(5);

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..250 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A healthy pair of clients still exchanging messages.
async fn assert_others_fine(s: &common::TestServer) {
    let a = common::client(s).await;
    let mut sub = a.subscribe("health").await.unwrap();
    common::sync(&a).await;
    let b = common::client(s).await;
    b.publish("health", Bytes::from_static(b"ok"))
        .await
        .unwrap();
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.payload[..], b"ok");
}

#[tokio::test]
async fn payload_over_max_is_refused_client_side_and_on_the_wire() {
    let s = common::start_with(GatewayConfig {
        max_payload_bytes: 1024,
        ..Default::default()
    })
    .await;
    let c = common::client(&s).await;
    assert_eq!(c.server_info().max_payload, 1024);
    let err = c
        .publish("big", Bytes::from(vec![0u8; 2000]))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        async_nats::client::PublishErrorKind::MaxPayloadExceeded
    );

    let mut raw = common::Raw::connect(s.addr).await;
    let (out, closed) = raw
        .roundtrip(b"CONNECT {\"verbose\":false}\r\nPUB big 1025\r\n")
        .await;
    assert_eq!(out, "-ERR 'Maximum Payload Violation'\r\n");
    assert!(closed);
    let mut raw = common::Raw::connect(s.addr).await;
    let (out, closed) = raw
        .roundtrip(b"CONNECT {\"verbose\":false,\"headers\":true}\r\nHPUB big 12 1025\r\n")
        .await;
    assert_eq!(out, "-ERR 'Maximum Payload Violation'\r\n");
    assert!(closed);
    assert_others_fine(&s).await;
}

#[tokio::test]
async fn malformed_line_closes_only_that_connection() {
    let s = common::start().await;
    let bystander = common::client(&s).await;
    let mut sub = bystander.subscribe("still.here").await.unwrap();
    common::sync(&bystander).await;

    let mut raw = common::Raw::connect(s.addr).await;
    let (out, closed) = raw
        .roundtrip(b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nTHIS IS NOT NATS\r\n")
        .await;
    assert_eq!(out, "-ERR 'Unknown Protocol Operation'\r\n");
    assert!(closed);
    wait_for("the bad client's subscriptions to go", || {
        !s.gw.has_interest("foo")
    })
    .await;

    let p = common::client(&s).await;
    p.publish("still.here", Bytes::from_static(b"yes"))
        .await
        .unwrap();
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.payload[..], b"yes");
}

#[tokio::test]
async fn client_vanishing_mid_publish_harms_no_one() {
    let s = common::start().await;
    let before = s.gw.num_clients();
    for cut in [3usize, 10, 20] {
        let mut raw = common::Raw::connect(s.addr).await;
        let msg = b"CONNECT {\"verbose\":false}\r\nSUB z 1\r\nPUB z 100\r\nhalf a payload";
        raw.send(&msg[..cut.min(msg.len())]).await;
        raw.send(b"PUB z 100\r\nonly some bytes").await;
        drop(raw);
    }
    wait_for("vanished clients to be cleaned up", || {
        s.gw.num_clients() == before && !s.gw.has_interest("z")
    })
    .await;
    assert_others_fine(&s).await;
}

#[tokio::test]
async fn slow_consumer_is_cut_off_without_blocking_the_publisher() {
    let s = common::start_with(GatewayConfig {
        max_pending_bytes: 4 * 1024 * 1024,
        ..Default::default()
    })
    .await;
    // Subscribes, then never reads.
    let mut stuck = common::Raw::connect(s.addr).await;
    let (out, _) = stuck
        .roundtrip(b"CONNECT {\"verbose\":false}\r\nSUB flood 1\r\n")
        .await;
    assert_eq!(out, "PONG\r\n");

    let reader = common::client(&s).await;
    let mut healthy = reader.subscribe("flood").await.unwrap();
    common::sync(&reader).await;

    let publisher = common::client(&s).await;
    let payload = Bytes::from(vec![b'x'; 1024]);
    // Far more than the stuck client's socket buffers and its outbox hold.
    let total = 40_000;
    let publishing = async {
        for _ in 0..total {
            publisher.publish("flood", payload.clone()).await.unwrap();
        }
        common::sync(&publisher).await;
    };
    let receiving = async {
        for _ in 0..total {
            tokio::time::timeout(WAIT, healthy.next())
                .await
                .unwrap()
                .unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(publishing, receiving)
    })
    .await
    .expect("publisher and healthy reader never blocked");

    // The stuck client was disconnected: after draining its socket it sees EOF.
    let (_, closed) = stuck
        .read_until(b"\r\n-never-", Duration::from_secs(10))
        .await;
    assert!(closed, "slow consumer disconnected");
}

#[tokio::test]
async fn stale_connection_is_dropped_after_unanswered_pings() {
    let s = common::start_with(GatewayConfig {
        ping_interval: Duration::from_millis(100),
        max_pings_out: 2,
        ..Default::default()
    })
    .await;
    let mut raw = common::Raw::connect(s.addr).await;
    raw.send(b"CONNECT {\"verbose\":false}\r\n").await;
    let (out, closed) = raw.read_until(b"-never-", Duration::from_secs(5)).await;
    assert_eq!(
        String::from_utf8_lossy(&out),
        "PING\r\nPING\r\n-ERR 'Stale Connection'\r\n"
    );
    assert!(closed);
}

#[tokio::test]
async fn answered_pings_keep_the_connection() {
    let s = common::start_with(GatewayConfig {
        ping_interval: Duration::from_millis(50),
        max_pings_out: 2,
        ..Default::default()
    })
    .await;
    // async-nats answers server PINGs.
    let c = common::client(&s).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    common::sync(&c).await;
    assert_eq!(s.gw.num_clients(), 1);
}

#[tokio::test]
async fn shutdown_closes_every_connection() {
    let s = common::start().await;
    let mut raw = common::Raw::connect(s.addr).await;
    let (out, _) = raw.roundtrip(b"CONNECT {\"verbose\":false}\r\n").await;
    assert_eq!(out, "PONG\r\n");
    s.gw.shutdown();
    let (_, closed) = raw.read_until(b"-never-", WAIT).await;
    assert!(closed);
    wait_for("clients to go", || s.gw.num_clients() == 0).await;
}
