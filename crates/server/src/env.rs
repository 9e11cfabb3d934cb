//! The node's environment: where wall-clock time, randomness, the network
//! and the disk enter. Production uses the operating system ([`SystemClock`],
//! TCP, RocksDB); the simulation injects turmoil's network, its own clock and
//! the in-memory engine, and runs the very same assembly ([`crate::Node`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::BoxStream;
use jetraft_raft::Connector;
use jetraft_store::Engine;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Wall-clock time in Unix nanoseconds. The leader stamps it into proposals;
/// replicas never read their own clock while applying.
pub trait Clock: Send + Sync + 'static {
    fn now_ns(&self) -> i64;
}

/// The operating system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the production environment is where real time comes from
    fn now_ns(&self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
    }
}

/// A byte stream of any network.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// One accepted connection, whatever network it came from.
pub struct Conn {
    io: Pin<Box<dyn Io>>,
    pub peer: Option<SocketAddr>,
}

impl Conn {
    pub fn new(io: impl Io, peer: Option<SocketAddr>) -> Self {
        Self {
            io: Box::pin(io),
            peer,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

/// Accepted connections of one listener.
pub type Incoming = BoxStream<'static, io::Result<Conn>>;

/// Everything a node takes from the world around it.
pub struct NodeEnv {
    /// The node's store (RocksDB in production, `MemEngine` in simulation).
    pub engine: Arc<dyn Engine>,
    /// Run fsyncs on tokio's blocking pool (real disks) or inline (the
    /// in-memory engine, where a blocking pool would stall simulated time).
    pub blocking_sync: bool,
    pub clock: Arc<dyn Clock>,
    /// Opens channels to peers' cluster addresses.
    pub connector: Arc<dyn Connector>,
    /// Seeds every Raft group's randomness (election timeouts).
    pub seed: u64,
    /// Raft timing and snapshot cadence of every group (the simulation
    /// snapshots far more often, so catch-ups happen in every run).
    pub raft: jetraft_raft::RaftTiming,
    /// Peer connections (gRPC) and client connections (NATS).
    pub cluster_incoming: Incoming,
    pub client_incoming: Incoming,
}
