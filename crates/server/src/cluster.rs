//! The node's shared context: its Raft host and meta group, the replicated
//! catalog, the clock, node names, and proposing (to the meta group, or a
//! led stream's batcher). Routing requests to where they run is
//! [`crate::dispatch`]; what nodes say to each other, [`crate::wire`] and
//! [`crate::calls`].

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use jetraft_meta::{Catalog, MetaCommand, MetaReply, StreamAssignment};
use jetraft_raft::host::Group;
use jetraft_raft::{Host, NodeId, Request, Response};
use jetraft_types::ApiError;
use tokio::sync::watch;

use crate::batcher::{self, Batchers, proposal_failed};
use crate::consumers::Consumers;
use crate::env::Clock;
use crate::forwarder::Forwarders;

pub struct Cluster {
    host: Arc<Host>,
    meta: Group,
    catalog: watch::Receiver<Arc<Catalog>>,
    clock: Arc<dyn Clock>,
    names: BTreeMap<NodeId, String>,
    batchers: Batchers,
    forwarders: Forwarders,
    consumers: Arc<Consumers>,
    /// The node's NATS gateway, for what the node sends by itself
    /// (consumer deliveries, advisories).
    gateway: std::sync::OnceLock<Weak<jetraft_gateway::Gateway>>,
    /// Held while stream groups are started or removed here, so two tasks
    /// never open one group twice ([`crate::node::sync_groups`]).
    pub(crate) groups_lock: tokio::sync::Mutex<()>,
    this: Weak<Cluster>,
}

impl Cluster {
    pub fn new(
        host: Arc<Host>,
        meta: Group,
        catalog: watch::Receiver<Arc<Catalog>>,
        clock: Arc<dyn Clock>,
        names: BTreeMap<NodeId, String>,
    ) -> Arc<Self> {
        let consumers = Arc::new(Consumers::default());
        let batchers = {
            let consumers = Arc::downgrade(&consumers);
            Batchers::new(Arc::new(move |group| {
                if let Some(c) = consumers.upgrade() {
                    c.stored(group);
                }
            }))
        };
        Arc::new_cyclic(|this| Self {
            host,
            meta,
            catalog,
            clock,
            names,
            batchers,
            consumers,
            gateway: std::sync::OnceLock::new(),
            forwarders: Forwarders::default(),
            groups_lock: tokio::sync::Mutex::new(()),
            this: this.clone(),
        })
    }

    /// This cluster handle as an `Arc` (None while shutting down).
    pub fn arc(&self) -> Option<Arc<Self>> {
        self.this.upgrade()
    }

    /// The consumer runtime of this node.
    pub(crate) fn consumers(&self) -> &Consumers {
        &self.consumers
    }

    pub(crate) fn consumers_arc(&self) -> Arc<Consumers> {
        self.consumers.clone()
    }

    /// Tells the node its gateway (once, at assembly).
    pub fn set_gateway(&self, gateway: &Arc<jetraft_gateway::Gateway>) {
        let _ = self.gateway.set(Arc::downgrade(gateway));
    }

    pub(crate) fn gateway(&self) -> Option<Arc<jetraft_gateway::Gateway>> {
        self.gateway.get().and_then(Weak::upgrade)
    }

    /// The queues of publishes on their way to remote stream leaders.
    pub(crate) fn forwarders(&self) -> &Forwarders {
        &self.forwarders
    }

    pub fn meta_group(&self) -> Group {
        self.meta.clone()
    }

    /// An operator accepts losing what only forgetful or lost replicas of
    /// `name` (a stream, or `meta`) held: this node's gates open until
    /// the group has a leader again and has admitted the nodes that
    /// answer ([`jetraft_raft::standing`]). Says what may be lost.
    pub fn accept_loss(&self, name: &str) -> Result<serde_json::Value, String> {
        let g = if name == "meta" {
            self.meta.clone()
        } else {
            let a = self
                .catalog()
                .stream(jetraft_types::GLOBAL_ACCOUNT, name)
                .cloned()
                .ok_or_else(|| format!("stream {name} is not in this node's catalog"))?;
            self.host
                .group(a.group)
                .ok_or_else(|| format!("stream {name} has no replica on this node"))?
        };
        let m = g.metrics();
        let last = m.last_log_index;
        let term = m.vote.leader_id().term;
        g.standing.accept_loss(term);
        tracing::warn!(
            group = g.id,
            ?last,
            term,
            "accept-loss: this node will vote and count replies without checking that their \
             data directories kept their state"
        );
        Ok(serde_json::json!({
            "node": self.name_of(self.host.me()),
            "group": g.id,
            "accepting_loss": true,
            "last_log_index": last,
            "term": term,
            "leader": m.current_leader.map(|l| self.name_of(l)),
            "warning": "acknowledged writes that only replicas which are gone or lost their \
                disks held are lost for good: the replica with the longest log among the \
                accepting nodes becomes leader and the others follow it; a node that took no \
                part holds the abandoned history: wipe its data directory before it returns",
        }))
    }

    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    pub fn now_ns(&self) -> i64 {
        self.clock.now_ns()
    }

    pub fn name_of(&self, id: NodeId) -> String {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("node-{id}"))
    }

    /// One node alone: it answers as a standalone nats-server does (no
    /// `cluster` block in stream and consumer info).
    pub fn standalone(&self) -> bool {
        self.names.len() <= 1
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        self.names.keys().copied().collect()
    }

    pub fn meta_leader(&self) -> Option<NodeId> {
        self.meta.leader()
    }

    /// Confirms this node leads the meta group for a catalog read
    /// (decision 33): the catalog read after it includes every stream
    /// change acknowledged before.
    pub async fn meta_read_barrier(&self) -> Result<(), ApiError> {
        self.meta
            .read_barrier()
            .await
            .map_err(|e| proposal_failed(self.meta.id, e))
    }

    /// The node id of a node name (as API replies name nodes).
    pub fn id_of(&self, name: &str) -> Option<NodeId> {
        self.names
            .iter()
            .find_map(|(id, n)| (n == name).then_some(*id))
    }

    /// The stream's group, which this node must lead.
    pub(crate) fn led_group(
        &self,
        account: &str,
        name: &str,
    ) -> Result<(StreamAssignment, Group), ApiError> {
        self.led_group_with(account, name, StreamAssignment::clone)
    }

    /// Like [`Self::led_group`], taking only what `pick` reads from the assignment
    /// (the publish path does not clone the whole config).
    pub(crate) fn led_group_with<T>(
        &self,
        account: &str,
        name: &str,
        pick: impl FnOnce(&StreamAssignment) -> T,
    ) -> Result<(T, Group), ApiError> {
        let catalog = self.catalog();
        let a = catalog
            .stream(account, name)
            .ok_or_else(ApiError::stream_not_found)?;
        let g = self
            .host()
            .group(a.group)
            .ok_or_else(ApiError::cluster_not_avail)?;
        if g.leader() != Some(self.host().me()) {
            return Err(ApiError::cluster_not_leader());
        }
        Ok((pick(a), g))
    }

    /// Proposes to the meta group (this node must be its leader).
    pub async fn propose_meta(&self, cmd: MetaCommand) -> Result<MetaReply, ApiError> {
        match self.write(&self.meta, Request::Meta(Box::new(cmd))).await? {
            Response::Meta(r) => Ok(*r),
            other => Err(ApiError::stream_store_failed(format!(
                "unexpected meta response {other:?}"
            ))),
        }
    }

    /// Proposes to a group led by this node and waits until it is applied.
    pub async fn write(&self, group: &Group, req: Request) -> Result<Response, ApiError> {
        group
            .propose(req)
            .await
            .map_err(|e| proposal_failed(group.id, e))
    }

    /// Queues a stream command on the group's batcher (see [`batcher`]);
    /// the returned future gives its reply once applied.
    pub fn propose_stream(
        &self,
        group: &Group,
        cmd: jetraft_stream::StreamCommand,
    ) -> impl std::future::Future<Output = batcher::Reply> + Send + use<> {
        let (answer, reply) = batcher::Answer::channel();
        self.propose_stream_then(group, cmd, answer);
        reply
    }

    /// [`Cluster::propose_stream`], with the reply handed to `then` where
    /// the batch completes (no task waits for it).
    pub fn propose_stream_then(
        &self,
        group: &Group,
        cmd: jetraft_stream::StreamCommand,
        then: batcher::Answer,
    ) {
        self.batchers.submit(group, &self.clock, cmd, then);
    }

    /// Forgets what this node kept for a group it no longer hosts.
    pub fn group_removed(&self, group: jetraft_raft::GroupId) {
        self.batchers.remove(group);
    }

    /// Forgets the forwarding queues of streams `catalog` no longer has.
    pub fn catalog_changed(&self, catalog: &Catalog) {
        self.forwarders
            .retain_groups(|g| catalog.by_group(g).is_some());
    }

    /// Waits until every reachable node's catalog lists (or no longer lists)
    /// the stream, so a client may use any node as soon as a create or
    /// delete returns. Unreachable nodes are not waited for.
    pub async fn await_catalog_everywhere(
        &self,
        account: &str,
        name: &str,
        present: bool,
        within: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + within;
        let me = self.host.me();
        for node in self.node_ids() {
            loop {
                let has = if node == me {
                    Some(self.catalog().stream(account, name).is_some())
                } else {
                    let ask = crate::wire::NodeCall::CatalogHas {
                        account: account.to_string(),
                        stream: name.to_string(),
                    };
                    match self.call(node, &ask).await {
                        Ok(crate::wire::NodeReply::CatalogHas(has)) => Some(has),
                        _ => None,
                    }
                };
                match has {
                    Some(h) if h == present => break,
                    None => break,
                    Some(_) if tokio::time::Instant::now() > deadline => break,
                    Some(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
    }
}
