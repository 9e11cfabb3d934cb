//! The simulated world a node sees: turmoil's TCP for peers and clients,
//! and a wall clock that follows simulated time plus an offset the nemesis
//! can jump forward and back.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use hyper_util::rt::TokioIo;
use jetraft_raft::Connector;
use jetraft_server::env::{Clock, Conn, Incoming};
use tonic::transport::{Channel, Endpoint, Uri};

/// Port of every node's NATS client listener.
pub const CLIENT_PORT: u16 = 4222;
/// Port of every node's cluster (gRPC) listener.
pub const CLUSTER_PORT: u16 = 6222;

/// gRPC channels over turmoil TCP. Keepalives matter here: turmoil TCP never
/// retransmits, so a partition can leave a connection open but dead, and
/// only a keepalive timeout notices and reconnects.
pub struct SimConnector;

impl Connector for SimConnector {
    fn connect(&self, addr: &str) -> Channel {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap_or_else(|_| Endpoint::from_static("http://invalid:1"))
            .connect_timeout(Duration::from_secs(1))
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(1))
            .keep_alive_while_idle(true);
        endpoint.connect_with_connector_lazy(tower::service_fn(|uri: Uri| async move {
            let authority = uri
                .authority()
                .map(|a| a.to_string())
                .ok_or_else(|| io::Error::other("no authority in peer address"))?;
            let stream = turmoil::net::TcpStream::connect(authority).await?;
            Ok::<_, io::Error>(TokioIo::new(stream))
        }))
    }
}

/// Accepted turmoil connections on `port` of the current host.
pub async fn listen(port: u16) -> io::Result<Incoming> {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
    Ok(futures::stream::unfold(listener, |l| async move {
        let next = l
            .accept()
            .await
            .map(|(stream, peer)| Conn::new(stream, Some(peer)));
        Some((next, l))
    })
    .boxed())
}

/// Simulated wall time plus a per-node offset (clock jumps).
#[derive(Clone, Default)]
pub struct SimClock {
    offset_ns: Arc<AtomicI64>,
}

impl SimClock {
    /// Moves this node's clock by `by_ns` (negative: backwards).
    pub fn jump(&self, by_ns: i64) {
        self.offset_ns.fetch_add(by_ns, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        self.offset_ns.store(0, Ordering::Relaxed);
    }
}

impl Clock for SimClock {
    fn now_ns(&self) -> i64 {
        let base = i64::try_from(turmoil::since_epoch().unwrap_or_default().as_nanos())
            .unwrap_or(i64::MAX);
        base.saturating_add(self.offset_ns.load(Ordering::Relaxed))
    }
}
