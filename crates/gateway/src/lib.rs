//! jetraft-gateway: the NATS client protocol.
//!
//! The only crate that knows the wire format. The server hands it accepted
//! connections ([`serve_connection`]); it parses client operations, keeps the
//! subscription index, delivers messages between local clients, and offers
//! every publish to a [`Backend`] (the JetStream API and stream subjects).
//! It opens no sockets itself, so the simulation can drive it over any
//! `AsyncRead + AsyncWrite`.

pub mod conn;
mod delivery;
mod outbox;
pub mod proto;
pub mod sublist;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use conn::{serve_connection, serve_connection_from};
pub use outbox::CloseReason;

use delivery::{SubKey, Subscription};
use sublist::Sublist;

/// A message a client published, as offered to the [`Backend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub subject: String,
    pub reply: Option<String>,
    /// The raw `NATS/1.0` header block, if the client used HPUB.
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

/// One response message to a taken publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

/// What sits behind the gateway: the JetStream API and the streams.
pub trait Backend: Send + Sync + 'static {
    /// Offered every client publish (unless [`Backend::take`] is
    /// overridden). Return Some(future) to take it (the JetStream API on
    /// `$JS.API.>`, or a publish to a stream's subjects); the gateway runs
    /// it on a task of its own and sends each Outbound of the result, in
    /// order, to the publisher's reply subject if there is one.
    fn handle(&self, _msg: &Inbound) -> Option<BoxFuture<'static, Vec<Outbound>>> {
        None
    }

    /// Offered every client publish: take it (true) and answer through
    /// `reply`, or leave it (false). A backend that knows where its answer
    /// completes can send it from there, with no task waiting for it; it
    /// must never block the connection. By default: [`Backend::handle`]'s
    /// future on a task.
    fn take(&self, msg: &Inbound, reply: &ReplyTo) -> bool {
        match self.handle(msg) {
            Some(fut) => {
                reply.clone().spawn(fut);
                true
            }
            None => false,
        }
    }
}

/// Where the answers to a taken publish go: its reply subject, delivered
/// through this node's gateway.
#[derive(Debug, Clone)]
pub struct ReplyTo {
    gw: Arc<Gateway>,
    subject: Option<String>,
}

impl ReplyTo {
    /// Sends each response, in order (nothing if the publish had no reply
    /// subject).
    pub fn send(&self, outs: Vec<Outbound>) {
        if let Some(subject) = &self.subject {
            for o in outs {
                self.gw.publish(subject, None, o.headers, o.payload);
            }
        }
    }

    /// Runs `fut` on a task of its own and sends what it returns.
    pub fn spawn(self, fut: BoxFuture<'static, Vec<Outbound>>) {
        tokio::spawn(async move {
            let outs = fut.await;
            self.send(outs);
        });
    }
}

/// A backend that takes nothing: plain core NATS.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoBackend;

impl Backend for NoBackend {}

/// Limits and identity of the client listener. Units are in the names.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub server_id: String,
    pub server_name: String,
    /// The nats-server version we claim, which decides client features.
    pub version: String,
    /// Advertised in INFO; the listener's address.
    pub host: String,
    pub port: u16,
    pub max_payload_bytes: usize,
    pub max_control_line_bytes: usize,
    /// Outbound bytes queued for one client before it is a slow consumer.
    pub max_pending_bytes: usize,
    pub write_deadline: Duration,
    /// How often an idle client is pinged; zero turns pings off.
    pub ping_interval: Duration,
    pub max_pings_out: u32,
    pub jetstream: bool,
    /// JetStream API level (`api_lvl` in INFO), if we claim one.
    pub api_level: Option<u32>,
    pub cluster: Option<String>,
    /// Client URLs of the other nodes, for client-side failover.
    pub connect_urls: Vec<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            server_id: "JETRAFT".into(),
            server_name: "jetraft".into(),
            version: "2.15.1".into(),
            host: "0.0.0.0".into(),
            port: 4222,
            max_payload_bytes: 1024 * 1024,
            max_control_line_bytes: proto::MAX_CONTROL_LINE,
            max_pending_bytes: 64 * 1024 * 1024,
            write_deadline: Duration::from_secs(10),
            ping_interval: Duration::from_secs(120),
            max_pings_out: 2,
            jetstream: true,
            api_level: None,
            cluster: None,
            connect_urls: Vec::new(),
        }
    }
}

/// The shared state of all client connections on this node.
pub struct Gateway {
    config: GatewayConfig,
    backend: Arc<dyn Backend>,
    subs: RwLock<Sublist<SubKey, Arc<Subscription>>>,
    next_client_id: AtomicU64,
    clients: AtomicUsize,
    /// Round-robin position for queue groups.
    queue_rr: AtomicU64,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("server_name", &self.config.server_name)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(config: GatewayConfig, backend: Arc<dyn Backend>) -> Self {
        Self {
            config,
            backend,
            subs: RwLock::new(Sublist::new()),
            next_client_id: AtomicU64::new(1),
            clients: AtomicUsize::new(0),
            queue_rr: AtomicU64::new(0),
            shutdown: CancellationToken::new(),
        }
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Delivers a message to local subscribers (responses from the backend,
    /// later messages routed from other nodes). Returns how many got it.
    pub fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<Bytes>,
        payload: Bytes,
    ) -> usize {
        self.deliver(subject, reply, headers.as_deref(), &payload, None)
    }

    /// Whether any local subscription matches `subject`.
    pub fn has_interest(&self, subject: &str) -> bool {
        self.read_subs().has_interest(subject)
    }

    pub fn num_clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    pub fn num_subscriptions(&self) -> usize {
        self.read_subs().len()
    }

    /// Closes every connection; `serve_connection` calls then return.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    fn read_subs(&self) -> std::sync::RwLockReadGuard<'_, Sublist<SubKey, Arc<Subscription>>> {
        self.subs.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_subs(&self) -> std::sync::RwLockWriteGuard<'_, Sublist<SubKey, Arc<Subscription>>> {
        self.subs.write().unwrap_or_else(|e| e.into_inner())
    }
}
