//! Shared test harness: a gateway on a loopback listener with a small
//! backend, plus a raw-socket client for byte-exact protocol checks.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use jetraft_gateway::{Backend, Gateway, GatewayConfig, Inbound, Outbound, serve_connection_from};
use jetraft_types::subject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Answers `$JS.API.>` with a JSON echo of the request, acks publishes to
/// `orders.>` like a stream would, and answers `multi` twice.
#[derive(Debug, Default)]
pub struct TestBackend {
    pub stored: AtomicU64,
}

impl Backend for TestBackend {
    fn handle(&self, msg: &Inbound) -> Option<BoxFuture<'static, Vec<Outbound>>> {
        if msg.subject.starts_with("$JS.API.") {
            let body = serde_json::json!({
                "type": "io.nats.jetstream.api.v1.test_echo",
                "subject": msg.subject,
                "request": String::from_utf8_lossy(&msg.payload),
                "headers": msg.headers.as_ref().map(|h| String::from_utf8_lossy(h).into_owned()),
            });
            let payload = Bytes::from(serde_json::to_vec(&body).unwrap());
            return Some(
                async move {
                    vec![Outbound {
                        headers: None,
                        payload,
                    }]
                }
                .boxed(),
            );
        }
        if subject::matches("orders.>", &msg.subject) {
            let seq = self.stored.fetch_add(1, Ordering::SeqCst) + 1;
            return Some(
                async move {
                    // Answer later than core delivery, like a replicated store.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    vec![Outbound {
                        headers: None,
                        payload: Bytes::from(format!("{{\"stream\":\"ORDERS\",\"seq\":{seq}}}")),
                    }]
                }
                .boxed(),
            );
        }
        if msg.subject == "multi" {
            return Some(
                async {
                    vec![
                        Outbound {
                            headers: Some(Bytes::from_static(b"NATS/1.0\r\nPart: 1\r\n\r\n")),
                            payload: Bytes::from_static(b"one"),
                        },
                        Outbound {
                            headers: None,
                            payload: Bytes::from_static(b"two"),
                        },
                    ]
                }
                .boxed(),
            );
        }
        None
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub gw: Arc<Gateway>,
    pub backend: Arc<TestBackend>,
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }
}

pub async fn start() -> TestServer {
    start_with(GatewayConfig::default()).await
}

pub async fn start_with(mut config: GatewayConfig) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    config.host = addr.ip().to_string();
    config.port = addr.port();
    let backend = Arc::new(TestBackend::default());
    let gw = Arc::new(Gateway::new(config, backend.clone()));
    let accept_gw = gw.clone();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve_connection_from(stream, accept_gw.clone(), Some(peer)));
        }
    });
    TestServer { addr, gw, backend }
}

pub async fn client(server: &TestServer) -> async_nats::Client {
    async_nats::connect(server.url()).await.unwrap()
}

/// A raw protocol client.
pub struct Raw {
    pub stream: TcpStream,
    pub info: String,
}

impl Raw {
    /// Connects and consumes the INFO line.
    pub async fn connect(addr: SocketAddr) -> Raw {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut info = Vec::new();
        while !info.ends_with(b"\r\n") {
            let mut b = [0u8; 1];
            stream.read_exact(&mut b).await.unwrap();
            info.push(b[0]);
        }
        Raw {
            stream,
            info: String::from_utf8(info).unwrap(),
        }
    }

    pub async fn send(&mut self, data: &[u8]) {
        self.stream.write_all(data).await.unwrap();
    }

    /// Reads until `wanted` has been seen at the end of the output, the
    /// connection closes, or `timeout` passes. Returns (output, closed).
    pub async fn read_until(&mut self, wanted: &[u8], timeout: Duration) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if !wanted.is_empty() && out.ends_with(wanted) {
                return (out, false);
            }
            let mut buf = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return (out, false),
                Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Sends `data` and reads everything until the connection closes or
    /// goes quiet for a moment.
    pub async fn exchange(&mut self, data: &[u8]) -> (String, bool) {
        self.send(data).await;
        let (out, closed) = self.read_until(b"", Duration::from_millis(300)).await;
        (String::from_utf8_lossy(&out).into_owned(), closed)
    }
}

impl Raw {
    /// Sends `data` then `PING`, and reads until the answering `PONG` or
    /// until the server closes the connection.
    pub async fn roundtrip(&mut self, data: &[u8]) -> (String, bool) {
        let mut d = data.to_vec();
        d.extend_from_slice(b"PING\r\n");
        self.send(&d).await;
        let (out, closed) = self.read_until(b"PONG\r\n", Duration::from_secs(5)).await;
        (String::from_utf8_lossy(&out).into_owned(), closed)
    }
}

/// A round trip through the server on this client's connection: once it
/// returns, everything the client sent before has been processed (the
/// server handles one connection's operations in order).
pub async fn sync(c: &async_nats::Client) {
    c.request("$JS.API.SYNC", Bytes::new()).await.unwrap();
}
