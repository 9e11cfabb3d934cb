//! jetraft-route: core NATS between nodes, so a cluster behaves as one
//! server to its clients.
//!
//! Each node tells every peer its subscription interest over a `Route`
//! stream of its own (`proto/node.proto`): the whole table when the stream
//! opens, then every change, in the order its clients made them. A message
//! published here crosses to a peer only if that peer announced matching
//! interest, once per peer however many subscribers it has there; each
//! queue group gets the message once cluster-wide (a member on this node
//! first, as nats-server does, else one node chosen by the group's weight
//! there). A routed message is delivered where it arrives and goes no
//! further: every node routes to every other itself (a full mesh).
//!
//! * [`interest`] — the local table, the peers' tables, and a message's plan.
//! * [`peer`] — the queue and stream to one peer.
//! * [`service`] — the receiving side.
//! * [`limits`] — every bound, with units.

mod interest;
pub mod limits;
mod peer;
mod service;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use bytes::Bytes;
use jetraft_gateway::{Gateway, Outgoing, RoutedIn, Router};
use jetraft_proto::Connector;
use jetraft_proto::node::route_entry::Kind;
use jetraft_proto::node::{Hello, Interest, Routed};
use serde::Serialize;
use tokio::task::JoinHandle;

use interest::{Local, Remote};
use peer::PeerOut;
pub use peer::Stats;
pub use service::NodeService;

pub type NodeId = u64;

/// A peer as configuration names it.
#[derive(Debug, Clone)]
pub struct PeerAddr {
    pub name: String,
    /// Its cluster (gRPC) address.
    pub cluster_addr: String,
}

/// This node and its peers.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub me: NodeId,
    pub name: String,
    /// host:port where this node's clients connect (for `connect_urls`).
    pub client_url: String,
    /// The other nodes.
    pub peers: BTreeMap<NodeId, PeerAddr>,
    pub max_pending_bytes: usize,
}

/// The routing layer of one node: the gateway's [`Router`].
pub struct Routes {
    me: NodeId,
    name: String,
    client_url: String,
    gateway: OnceLock<Weak<Gateway>>,
    /// This node's interest. Held while a change is queued to every peer,
    /// and while a new session is given the whole table.
    local: Mutex<Local>,
    remote: RwLock<Remote>,
    peers: BTreeMap<NodeId, Arc<PeerOut>>,
    /// Per peer: the stream from it in force (a number this node gives each
    /// stream at its hello); entries of an older stream are ignored.
    inbound: BTreeMap<NodeId, AtomicU64>,
    client_urls: Mutex<BTreeMap<NodeId, String>>,
    queue_rr: AtomicU64,
    this: Weak<Routes>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// One peer as `/routez` shows it (nats-server's field names where it has them).
#[derive(Debug, Clone, Serialize)]
pub struct RouteInfo {
    pub rid: NodeId,
    pub remote_name: String,
    pub ip: String,
    /// Our stream to it and its stream to us are both up.
    pub connected: bool,
    pub outbound_connected: bool,
    pub inbound_connected: bool,
    pub pending_size: usize,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub dropped_msgs: u64,
    pub slow_cuts: u64,
    /// Filters it announced.
    pub subscriptions: usize,
}

impl Routes {
    pub fn new(config: RouteConfig) -> Arc<Self> {
        let peers = config
            .peers
            .iter()
            .map(|(id, p)| {
                let out = PeerOut::new(
                    *id,
                    p.name.clone(),
                    p.cluster_addr.clone(),
                    config.max_pending_bytes,
                );
                (*id, Arc::new(out))
            })
            .collect();
        let inbound = config
            .peers
            .keys()
            .map(|id| (*id, AtomicU64::new(0)))
            .collect();
        Arc::new_cyclic(|this| Self {
            me: config.me,
            name: config.name,
            client_url: config.client_url,
            gateway: OnceLock::new(),
            local: Mutex::new(Local::default()),
            remote: RwLock::new(Remote::default()),
            peers,
            inbound,
            client_urls: Mutex::new(BTreeMap::new()),
            queue_rr: AtomicU64::new(0),
            this: this.clone(),
        })
    }

    /// Makes this the gateway's router (before clients connect).
    pub fn attach(&self, gateway: &Arc<Gateway>) {
        let _ = self.gateway.set(Arc::downgrade(gateway));
        if let Some(me) = self.this.upgrade() {
            gateway.set_router(me);
        }
        gateway.set_connect_urls(self.connect_urls());
    }

    /// Starts the stream to every peer; abort the tasks to stop.
    pub fn start(&self, connector: &dyn Connector) -> Vec<JoinHandle<()>> {
        let Some(me) = self.this.upgrade() else {
            return Vec::new();
        };
        self.peers
            .values()
            .map(|p| {
                let channel = connector.connect(&p.addr);
                tokio::spawn(peer::run(me.clone(), p.clone(), channel))
            })
            .collect()
    }

    /// The gRPC service peers' streams arrive at.
    pub fn service(&self) -> Option<jetraft_proto::node::node_server::NodeServer<NodeService>> {
        Some(NodeService::new(self.this.upgrade()?).into_server())
    }

    /// Every peer's stream state and counters.
    pub fn routez(&self) -> Vec<RouteInfo> {
        let remote = self.read_remote();
        self.peers
            .values()
            .map(|p| {
                let s = &p.stats;
                let outbound = p.outbound.load(Ordering::Acquire);
                let inbound = p.inbound.load(Ordering::Acquire);
                RouteInfo {
                    rid: p.id,
                    remote_name: p.name.clone(),
                    ip: p.addr.clone(),
                    connected: outbound && inbound,
                    outbound_connected: outbound,
                    inbound_connected: inbound,
                    pending_size: p.pending_bytes(),
                    in_msgs: s.in_msgs.load(Ordering::Relaxed),
                    out_msgs: s.out_msgs.load(Ordering::Relaxed),
                    in_bytes: s.in_bytes.load(Ordering::Relaxed),
                    out_bytes: s.out_bytes.load(Ordering::Relaxed),
                    dropped_msgs: s.dropped_msgs.load(Ordering::Relaxed),
                    slow_cuts: s.slow_cuts.load(Ordering::Relaxed),
                    subscriptions: remote.count(p.id),
                }
            })
            .collect()
    }

    /// This node's client URL first, then each connected peer's.
    fn connect_urls(&self) -> Vec<String> {
        let mut urls = vec![self.client_url.clone()];
        let known = self.client_urls.lock().unwrap_or_else(|e| e.into_inner());
        urls.extend(
            known
                .values()
                .filter(|u| !u.is_empty() && **u != self.client_url)
                .cloned(),
        );
        urls
    }

    fn tell_clients(&self) {
        if let Some(gw) = self.gateway.get().and_then(Weak::upgrade) {
            gw.set_connect_urls(self.connect_urls());
        }
    }

    fn lock_local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_remote(&self) -> std::sync::RwLockReadGuard<'_, Remote> {
        self.remote.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_remote(&self) -> std::sync::RwLockWriteGuard<'_, Remote> {
        self.remote.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A new stream to `peer` starts with our hello and whole table.
    fn open_session(&self, peer: &PeerOut) {
        let local = self.lock_local();
        let mut first = vec![Kind::Hello(Hello {
            node: self.me,
            name: self.name.clone(),
            client_url: self.client_url.clone(),
        })];
        let table = local
            .table()
            .filter(|_| !jetraft_types::bugs::enabled(jetraft_types::bugs::Bug::SkipResync));
        first.extend(table.map(|((account, subject, queue), weight)| {
            Kind::Interest(Interest {
                account: account.clone(),
                subject: subject.clone(),
                queue: queue.clone().unwrap_or_default(),
                weight,
            })
        }));
        peer.open(first);
    }

    /// A peer's new stream said hello: what it said before is forgotten
    /// (its table follows). Returns the stream's number, or None for a node
    /// that is not a peer.
    fn hello(&self, hello: &Hello) -> Option<u64> {
        let counter = self.inbound.get(&hello.node)?;
        let peer = self.peers.get(&hello.node)?;
        let session = {
            let mut remote = self.write_remote();
            remote.forget(hello.node);
            counter.fetch_add(1, Ordering::AcqRel) + 1
        };
        peer.inbound.store(true, Ordering::Release);
        self.client_urls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hello.node, hello.client_url.clone());
        tracing::info!(peer = %peer.name, url = %hello.client_url, "route from peer up");
        self.tell_clients();
        Some(session)
    }

    fn current(&self, node: NodeId, session: u64) -> bool {
        self.inbound
            .get(&node)
            .is_some_and(|c| c.load(Ordering::Acquire) == session)
    }

    fn inbound_interest(&self, node: NodeId, session: u64, i: Interest) {
        let mut remote = self.write_remote();
        if !self.current(node, session) {
            return;
        }
        let queue = (!i.queue.is_empty()).then_some(i.queue);
        let added = i.weight > 0;
        if !remote.set(node, (i.account, i.subject, queue), i.weight) {
            tracing::debug!(node, "peer announced an invalid filter; ignored");
        } else if added && let Some(gw) = self.gateway.get().and_then(Weak::upgrade) {
            gw.interest_added().notify_one();
        }
    }

    fn inbound_msg(&self, node: NodeId, session: u64, m: &Routed) {
        if !self.current(node, session) {
            return;
        }
        if let Some(p) = self.peers.get(&node) {
            p.stats.in_msgs.fetch_add(1, Ordering::Relaxed);
            p.stats
                .in_bytes
                .fetch_add(m.payload.len() as u64, Ordering::Relaxed);
        }
        let Some(gw) = self.gateway.get().and_then(Weak::upgrade) else {
            return;
        };
        gw.deliver_routed(&RoutedIn {
            account: &m.account,
            subject: &m.subject,
            delivered_as: (!m.delivered_as.is_empty()).then_some(m.delivered_as.as_str()),
            reply: (!m.reply.is_empty()).then_some(m.reply.as_str()),
            headers: m.headers.as_deref(),
            payload: &m.payload,
            plain: m.plain,
            queues: &m.queues,
        });
    }

    /// A peer's stream ended: unless a newer one took over, forget its
    /// interest and its client URL.
    fn inbound_end(&self, node: NodeId, session: u64) {
        {
            let mut remote = self.write_remote();
            if !self.current(node, session) {
                return;
            }
            remote.forget(node);
        }
        if let Some(p) = self.peers.get(&node) {
            p.inbound.store(false, Ordering::Release);
            tracing::info!(peer = %p.name, "route from peer down");
        }
        self.client_urls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&node);
        self.tell_clients();
    }
}

impl Router for Routes {
    fn interest_changed(&self, account: &str, subject: &str, queue: Option<&str>, added: bool) {
        let key = (
            account.to_string(),
            subject.to_string(),
            queue.map(str::to_string),
        );
        let mut local = self.lock_local();
        let Some(weight) = local.change(key, added) else {
            return;
        };
        for p in self.peers.values() {
            let entry = Kind::Interest(Interest {
                account: account.to_string(),
                subject: subject.to_string(),
                queue: queue.unwrap_or_default().to_string(),
                weight,
            });
            p.push(entry, peer::entry_size(subject, "", 0, 0));
        }
        drop(local);
    }

    fn has_interest(&self, account: &str, subject: &str) -> bool {
        self.read_remote().matches(account, subject).is_some()
    }

    fn route(&self, msg: &Outgoing<'_>) -> usize {
        let plan = {
            let remote = self.read_remote();
            let Some(m) = remote.matches(msg.account, msg.subject) else {
                return 0;
            };
            interest::plan(
                &m,
                msg.taken_queues,
                self.queue_rr.fetch_add(1, Ordering::Relaxed),
            )
        };
        let payload = Bytes::copy_from_slice(msg.payload);
        let headers = msg.headers.map(Bytes::copy_from_slice);
        let reply = msg.reply.unwrap_or_default();
        let size = peer::entry_size(
            msg.subject,
            reply,
            headers.as_ref().map_or(0, Bytes::len),
            payload.len(),
        );
        let mut sent = 0;
        for (node, (plain, queues)) in plan {
            let Some(p) = self.peers.get(&node) else {
                continue;
            };
            let entry = Kind::Msg(Routed {
                account: msg.account.to_string(),
                subject: msg.subject.to_string(),
                reply: reply.to_string(),
                headers: headers.clone(),
                payload: payload.clone(),
                plain,
                queues,
                delivered_as: msg.delivered_as.unwrap_or_default().to_string(),
            });
            if jetraft_types::bugs::enabled(jetraft_types::bugs::Bug::RouteTwice) {
                p.push(entry.clone(), size);
            }
            if p.push(entry, size) {
                sent += 1;
                p.stats.out_msgs.fetch_add(1, Ordering::Relaxed);
                p.stats
                    .out_bytes
                    .fetch_add(payload.len() as u64, Ordering::Relaxed);
            } else {
                p.stats.dropped_msgs.fetch_add(1, Ordering::Relaxed);
            }
        }
        sent
    }
}
