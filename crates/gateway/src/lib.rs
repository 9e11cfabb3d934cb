//! jetraft-gateway: the NATS client protocol.
//!
//! The only crate that knows the wire format. The server hands it accepted
//! connections ([`serve_connection`]); it parses client operations, keeps the
//! subscription index, delivers messages between local clients, hands
//! every subscription change and publish to a [`Router`] (the other
//! nodes), and offers every publish to a [`Backend`] (the JetStream API and
//! stream subjects). It opens no sockets itself, so the simulation can
//! drive it over any `AsyncRead + AsyncWrite`.

pub mod conn;
mod delivery;
mod outbox;
pub mod proto;
pub mod sublist;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use conn::{serve_connection, serve_connection_from};
pub use outbox::CloseReason;

use delivery::{Client, SubKey, Subscription};
use sublist::Sublist;

/// The account every client belongs to until authentication assigns
/// another (nats-server's global account).
pub const DEFAULT_ACCOUNT: &str = jetraft_types::GLOBAL_ACCOUNT;

/// A message a client published, as offered to the [`Backend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The publisher's account: subjects, streams and the JetStream API
    /// are separate per account.
    pub account: String,
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
/// through this node's gateway to subscribers anywhere in the cluster.
#[derive(Debug, Clone)]
pub struct ReplyTo {
    gw: Arc<Gateway>,
    account: String,
    subject: Option<String>,
}

impl ReplyTo {
    /// Sends each response, in order (nothing if the publish had no reply
    /// subject).
    pub fn send(&self, outs: Vec<Outbound>) {
        if let Some(subject) = &self.subject {
            for o in outs {
                self.gw
                    .publish_in(&self.account, subject, None, o.headers, o.payload);
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

/// A message leaving this node, as handed to the [`Router`].
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub account: &'a str,
    /// The subject subscriptions are matched against.
    pub subject: &'a str,
    /// The subject the receivers see in `MSG`, when not `subject`: a
    /// JetStream delivery goes to the consumer's deliver subject or the
    /// pull request's inbox but shows the message's own subject.
    pub delivered_as: Option<&'a str>,
    pub reply: Option<&'a str>,
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
    /// Queue groups a member on this node already took the message for
    /// (nats-server prefers local members); no other node gets it for them.
    pub taken_queues: &'a [String],
}

/// A message another node routed to this one ([`Gateway::deliver_routed`]).
#[derive(Debug, Clone, Copy)]
pub struct RoutedIn<'a> {
    pub account: &'a str,
    pub subject: &'a str,
    /// See [`Outgoing::delivered_as`].
    pub delivered_as: Option<&'a str>,
    pub reply: Option<&'a str>,
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
    /// For the plain subscriptions here.
    pub plain: bool,
    /// For one member of each of these queue groups here.
    pub queues: &'a [String],
}

/// The rest of the cluster, as the gateway sees it. Both calls come
/// synchronously from the connection that caused them, so what one client
/// does reaches every peer in the order it did it (a SUB before the
/// request whose reply it awaits).
pub trait Router: Send + Sync + 'static {
    /// A subscription on this node was added or removed.
    fn interest_changed(&self, account: &str, subject: &str, queue: Option<&str>, added: bool);

    /// Sends a message to the other nodes with matching interest (once
    /// per node); returns how many nodes it went to. Never blocks.
    fn route(&self, msg: &Outgoing<'_>) -> usize;

    /// Whether another node announced interest matching `subject`.
    fn has_interest(&self, _account: &str, _subject: &str) -> bool {
        false
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
    /// Client connections this node accepts at once; 0 = no limit.
    pub max_connections: usize,
    /// Subscriptions one connection may hold at once; 0 = no limit.
    pub max_subscriptions: usize,
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
    /// Client URLs of the cluster's nodes (this one first), for client-side
    /// failover; the router keeps it current ([`Gateway::set_connect_urls`]).
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
            max_connections: 64 * 1024,
            max_subscriptions: 0,
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

type AccountSubs = BTreeMap<String, Sublist<SubKey, Arc<Subscription>>>;

/// The shared state of all client connections on this node.
pub struct Gateway {
    config: GatewayConfig,
    backend: Arc<dyn Backend>,
    router: OnceLock<Arc<dyn Router>>,
    /// Subscriptions by account.
    subs: RwLock<AccountSubs>,
    next_client_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<Client>>>,
    connect_urls: RwLock<Vec<String>>,
    /// Round-robin position for queue groups.
    queue_rr: AtomicU64,
    shutdown: CancellationToken,
    /// Raised when a subscription appears, here or on a peer (a push
    /// consumer waiting for its listener starts at once).
    interest_added: tokio::sync::Notify,
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
        let connect_urls = RwLock::new(config.connect_urls.clone());
        Self {
            config,
            backend,
            router: OnceLock::new(),
            subs: RwLock::new(BTreeMap::new()),
            next_client_id: AtomicU64::new(1),
            clients: Mutex::new(BTreeMap::new()),
            connect_urls,
            queue_rr: AtomicU64::new(0),
            shutdown: CancellationToken::new(),
            interest_added: tokio::sync::Notify::new(),
        }
    }

    /// Notified (one stored permit) whenever interest was added, on this
    /// node or announced by a peer.
    pub fn interest_added(&self) -> &tokio::sync::Notify {
        &self.interest_added
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Connects this gateway to the rest of the cluster (once, before
    /// clients connect; a second router is ignored).
    pub fn set_router(&self, router: Arc<dyn Router>) {
        let _ = self.router.set(router);
    }

    /// Delivers a message from this node (responses from the backend,
    /// later consumer deliveries) to subscribers here and on other nodes,
    /// in the default account. Returns how many local subscribers and
    /// nodes got it.
    pub fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<Bytes>,
        payload: Bytes,
    ) -> usize {
        self.publish_in(DEFAULT_ACCOUNT, subject, reply, headers, payload)
    }

    /// [`Gateway::publish`] in `account`.
    pub fn publish_in(
        &self,
        account: &str,
        subject: &str,
        reply: Option<&str>,
        headers: Option<Bytes>,
        payload: Bytes,
    ) -> usize {
        self.send(&Outgoing {
            account,
            subject,
            delivered_as: None,
            reply,
            headers: headers.as_deref(),
            payload: &payload,
            taken_queues: &[],
        })
    }

    /// Delivers a message from this node to subscribers here and on other
    /// nodes (`msg.taken_queues` is ignored). Returns how many local
    /// subscribers and nodes got it.
    pub fn send(&self, msg: &Outgoing<'_>) -> usize {
        let (n, taken) = self.deliver(msg, None);
        n + self.route(&Outgoing {
            taken_queues: &taken,
            ..*msg
        })
    }

    /// Delivers a message another node routed here: to every matching
    /// plain subscription if `msg.plain`, and to one member of each of
    /// `msg.queues`. It goes no further (the sender reached every node
    /// itself). Returns the number of deliveries.
    pub fn deliver_routed(&self, msg: &RoutedIn<'_>) -> usize {
        let scope = delivery::Scope {
            origin: None,
            plain: msg.plain,
            queues: Some(msg.queues),
        };
        let out = Outgoing {
            account: msg.account,
            subject: msg.subject,
            delivered_as: msg.delivered_as,
            reply: msg.reply,
            headers: msg.headers,
            payload: msg.payload,
            taken_queues: &[],
        };
        self.deliver_matching(&out, scope).0
    }

    /// Whether a subscription anywhere in the cluster (here, or announced
    /// by a peer) matches `subject` in `account`: a push consumer delivers
    /// only while someone listens.
    pub fn has_interest_in(&self, account: &str, subject: &str) -> bool {
        let local = self
            .read_subs()
            .get(account)
            .is_some_and(|s| s.has_interest(subject));
        local
            || self
                .router
                .get()
                .is_some_and(|r| r.has_interest(account, subject))
    }

    /// Whether any local subscription matches `subject` (default account).
    pub fn has_interest(&self, subject: &str) -> bool {
        self.read_subs()
            .get(DEFAULT_ACCOUNT)
            .is_some_and(|s| s.has_interest(subject))
    }

    pub fn num_clients(&self) -> usize {
        self.lock_clients().len()
    }

    pub fn num_subscriptions(&self) -> usize {
        self.read_subs().values().map(Sublist::len).sum()
    }

    /// The cluster's client URLs as INFO lists them.
    pub fn connect_urls(&self) -> Vec<String> {
        self.connect_urls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the URLs INFO lists; if they changed, every client that
    /// understands it (CONNECT `protocol` 1) gets an async INFO with them,
    /// as nats-server sends when a node joins or leaves.
    pub fn set_connect_urls(&self, urls: Vec<String>) {
        {
            let mut current = self.connect_urls.write().unwrap_or_else(|e| e.into_inner());
            if *current == urls {
                return;
            }
            *current = urls;
        }
        let clients: Vec<Arc<Client>> = self.lock_clients().values().cloned().collect();
        for c in clients {
            if c.wants_async_info() {
                c.outbox
                    .push(&proto::writer::info(&conn::server_info(self, &c)));
            }
        }
    }

    /// Closes every connection; `serve_connection` calls then return.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    fn route(&self, msg: &Outgoing<'_>) -> usize {
        match self.router.get() {
            Some(router) => router.route(msg),
            None => 0,
        }
    }

    fn lock_clients(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Client>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_subs(&self) -> std::sync::RwLockReadGuard<'_, AccountSubs> {
        self.subs.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_subs(&self) -> std::sync::RwLockWriteGuard<'_, AccountSubs> {
        self.subs.write().unwrap_or_else(|e| e.into_inner())
    }
}
