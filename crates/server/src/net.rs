//! Production networking: TCP listeners and gRPC channels. The simulation
//! replaces this module's role with turmoil's network.

use std::time::Duration;

use jetraft_raft::Connector;
use tonic::transport::{Channel, Endpoint};

/// Lazily connecting gRPC channels over TCP, with keepalives so a dead
/// connection is noticed and replaced.
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(&self, addr: &str) -> Channel {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap_or_else(|_| Endpoint::from_static("http://0.0.0.0:1"))
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(2))
            .keep_alive_while_idle(true);
        endpoint.connect_lazy()
    }
}
