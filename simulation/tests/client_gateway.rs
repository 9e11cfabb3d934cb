//! The simulation client against the real jetraft gateway over a duplex pipe.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use jetraft_gateway::{Backend, Gateway, GatewayConfig, Inbound, Outbound};
use jetraft_simulation::client::{self, RequestError};

/// Answers `echo` with its payload and headers.
struct Echo;

impl Backend for Echo {
    fn handle(&self, msg: &Inbound) -> Option<BoxFuture<'static, Vec<Outbound>>> {
        if msg.subject != "echo" {
            return None;
        }
        let out = Outbound {
            headers: msg.headers.clone(),
            payload: msg.payload.clone(),
        };
        Some(async move { vec![out] }.boxed())
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn requests_through_the_gateway() {
    let gw = Arc::new(Gateway::new(GatewayConfig::default(), Arc::new(Echo)));
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let served = tokio::spawn(jetraft_gateway::serve_connection(server_io, gw.clone()));
    let c = client::connect(client_io, "g").await.unwrap();

    let m = c.request("echo", &[], b"hello", SECOND).await.unwrap();
    assert_eq!(m.subject, "_INBOX.g.1");
    assert_eq!(&m.payload[..], b"hello");
    assert!(m.headers.is_empty());

    let m = c
        .request("echo", &[("Nats-Msg-Id", "id-7")], b"with headers", SECOND)
        .await
        .unwrap();
    assert_eq!(m.header("Nats-Msg-Id"), Some("id-7"));
    assert_eq!(&m.payload[..], b"with headers");

    let r = c.request("nobody.home", &[], b"x", SECOND).await;
    assert_eq!(r, Err(RequestError::NoResponders));

    // Many requests at once, each answered on its own token.
    let replies = futures::future::join_all((0..20).map(|i| {
        let c = &c;
        async move {
            c.request("echo", &[], format!("n{i}").as_bytes(), SECOND)
                .await
        }
    }))
    .await;
    for (i, r) in replies.into_iter().enumerate() {
        assert_eq!(r.unwrap().payload, format!("n{i}").as_bytes());
    }
    assert_eq!(gw.num_clients(), 1);
    assert_eq!(gw.num_subscriptions(), 1);

    // The server going away fails later requests fast.
    gw.shutdown();
    served.await.unwrap();
    let r = c.request("echo", &[], b"late", SECOND).await;
    assert_eq!(r, Err(RequestError::Closed));
    assert!(c.is_closed());
}

#[tokio::test]
async fn dropping_the_client_ends_the_server_connection() {
    let gw = Arc::new(Gateway::new(GatewayConfig::default(), Arc::new(Echo)));
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let served = tokio::spawn(jetraft_gateway::serve_connection(server_io, gw.clone()));
    let c = client::connect(client_io, "d").await.unwrap();
    c.request("echo", &[], b"", SECOND).await.unwrap();
    drop(c);
    tokio::time::timeout(SECOND, served).await.unwrap().unwrap();
    assert_eq!(gw.num_clients(), 0);
    assert_eq!(gw.num_subscriptions(), 0);
}
