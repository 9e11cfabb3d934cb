//! Assembles a node — Raft groups over its store, cluster RPC, NATS
//! gateway, background loops — from a [`NodeConfig`] and a [`NodeEnv`].
//! `jetraft server` ([`crate::standalone`]) and the simulation both start
//! nodes through [`assemble`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use jetraft_gateway::{Gateway, GatewayConfig};
use jetraft_meta::{Catalog, META_GROUP};
use jetraft_raft::{ClusterService, Committer, Host, Peers, SyncMode};
use jetraft_route::{PeerAddr, RouteConfig, Routes};
use jetraft_store::Engine;
use jetraft_store::failstop::{FailStop, Fatal};
use jetraft_types::config::StorageType;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::{NodeConfig, Sync};
use crate::env::{Incoming, NodeEnv};

/// How often the cluster port pings a silent peer connection, and how long
/// it waits for the answer before closing it.
const PEER_KEEPALIVE: Duration = Duration::from_secs(1);
const PEER_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// A node's parts, as [`assemble`] returns them.
pub struct Assembled {
    pub cluster: Arc<Cluster>,
    pub gateway: Arc<Gateway>,
    pub routes: Arc<Routes>,
    /// Abort them to stop the node.
    pub tasks: Vec<JoinHandle<()>>,
}

/// Assembles a node from its configuration and environment: Raft groups
/// over the environment's store, the cluster RPC services (Raft, and core
/// NATS routing), the NATS gateway, and the background loops. Production
/// (`standalone::Node::start`) and the simulation both start nodes through
/// here.
pub async fn assemble(
    config: &NodeConfig,
    env: NodeEnv,
    gateway: GatewayConfig,
) -> Result<Assembled> {
    let mode = match config.sync {
        Sync::Always => SyncMode::Always,
        Sync::Interval { every_ms } => SyncMode::Interval(Duration::from_millis(every_ms)),
    };
    // Every fsync runs in the committer, which names the one that failed;
    // every other use of the store goes through `FailStop`, so a failed
    // write (RocksDB in a background-error state fails them all) is fatal
    // too, and nothing writes or syncs once the latch is up. Whoever runs
    // the node watches `committer.fatal()` and stops it.
    let fatal = Fatal::new();
    let committer =
        Committer::start_with(env.engine.clone(), mode, env.blocking_sync, fatal.clone());
    let engine: Arc<dyn Engine> = Arc::new(FailStop::new(env.engine, fatal));
    let ids = config.node_ids();
    let addrs: BTreeMap<u64, String> = config
        .peers
        .iter()
        .map(|(n, a)| (ids[n], a.clone()))
        .collect();
    let names: BTreeMap<u64, String> = ids.iter().map(|(n, id)| (*id, n.clone())).collect();
    let me = config.node_id();
    let routes = Routes::new(RouteConfig {
        me,
        name: config.name.clone(),
        client_url: config.client_advertise.clone(),
        peers: addrs
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, a)| {
                let name = names.get(id).cloned().unwrap_or_default();
                let addr = PeerAddr {
                    name,
                    cluster_addr: a.clone(),
                };
                (*id, addr)
            })
            .collect(),
        max_pending_bytes: jetraft_route::limits::MAX_PENDING_BYTES,
    });
    let connector = env.connector.clone();
    let peers = Arc::new(Peers::new(me, addrs, env.connector));
    // A new data directory's incarnation: the node's seed and the time it
    // was first started (a wiped disk restarted later gets another).
    let entropy = env.seed ^ (env.clock.now_ns() as u64).rotate_left(17);
    let host = Arc::new(
        Host::new(peers, engine, committer, env.raft, env.seed, entropy)
            .context("opening the node's identity")?,
    );
    let (meta, catalog) = host.start_meta().await.context("starting the meta group")?;
    let cluster = Cluster::new(host.clone(), meta, catalog.clone(), env.clock, names);

    let mut tasks = Vec::new();
    let service = ClusterService::new(host.clone(), cluster.clone()).into_server();
    let node_service = routes
        .service()
        .context("the routing layer is gone while assembling")?;
    let incoming = env.cluster_incoming;
    tasks.push(tokio::spawn(async move {
        // Keepalives from this side too: a peer whose host vanished (no
        // reset ever arrives) must end its streams here, so its interest
        // and client URL are forgotten (decision 38).
        if let Err(e) = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(PEER_KEEPALIVE))
            .http2_keepalive_timeout(Some(PEER_KEEPALIVE_TIMEOUT))
            .add_service(service)
            .add_service(node_service)
            .serve_with_incoming(incoming)
            .await
        {
            tracing::error!(error = %e, "cluster server stopped");
        }
    }));
    tasks.push(tokio::spawn(reconcile(cluster.clone(), catalog)));
    let gateway = Arc::new(Gateway::new(
        config.gateway(GatewayConfig {
            server_id: format!("JETRAFT{me}{}", config.name.to_uppercase()),
            ..gateway
        }),
        cluster.clone(),
    ));
    routes.attach(&gateway);
    cluster.set_gateway(&gateway);
    tasks.push(crate::consumers::Consumers::start(&cluster));
    tasks.extend(routes.start(connector.as_ref()));
    tasks.push(tokio::spawn(accept_clients(
        env.client_incoming,
        gateway.clone(),
    )));
    tasks.push(tokio::spawn(expire_loop(cluster.clone())));
    tasks.push(tokio::spawn(scrub_loop(cluster.clone())));
    tasks.push(tokio::spawn(crate::membership::membership_loop(
        cluster.clone(),
    )));
    Ok(Assembled {
        cluster,
        gateway,
        routes,
        tasks,
    })
}

async fn accept_clients(mut incoming: Incoming, gateway: Arc<Gateway>) {
    while let Some(next) = incoming.next().await {
        match next {
            Ok(conn) => {
                let gw = gateway.clone();
                let peer = conn.peer;
                tokio::spawn(async move {
                    let reason = jetraft_gateway::serve_connection_from(conn, gw, peer).await;
                    tracing::debug!(?peer, ?reason, "client connection closed");
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Keeps the locally hosted stream groups in line with the replicated
/// catalog, on every catalog change ([`sync_groups`]).
async fn reconcile(cluster: Arc<Cluster>, mut catalog: watch::Receiver<Arc<Catalog>>) {
    loop {
        let current = catalog.borrow_and_update().clone();
        cluster.catalog_changed(&current);
        sync_groups(&cluster, &current).await;
        if catalog.changed().await.is_err() {
            return;
        }
    }
}

/// Starts the groups this node is a replica of, and stops and deletes the
/// ones the catalog no longer has. A replica the catalog moved elsewhere
/// is kept running (and reopened after a restart) until the group has
/// committed a membership without it ([`crate::membership`]).
pub(crate) async fn sync_groups(cluster: &Cluster, current: &Catalog) {
    let _starting = cluster.groups_lock.lock().await;
    let host = cluster.host();
    let me = host.me();
    for a in current.streams() {
        if host.group(a.group).is_some() {
            continue;
        }
        let leaving = !a.peers.contains(&me);
        if leaving && !host.has_replica(a.group).unwrap_or(false) {
            continue;
        }
        // Only a founding replica may initialize the group, and only with
        // the data directory the catalog recorded for it (decision 29).
        let founding = (a.founding && !leaving).then(|| a.incarnations.clone());
        let storage = a.config.storage;
        let mine = host.incarnation_for(storage);
        let founder = founding.as_ref().is_some_and(|r| r.get(&me) == Some(&mine));
        // A memory group's roster from before this process started names
        // incarnations gone with it: it founds nothing, and is not shown
        // to peers founding the group again.
        let founding = founding.filter(|_| founder || storage == StorageType::File);
        match host
            .start_stream(a.group, a.start_config().clone(), founding)
            .await
        {
            // A group kept in memory that this process did not found (it
            // started after the stream was created) either rejoins replicas
            // that kept it or, if they all restarted too, is founded again,
            // empty (decision 35).
            Ok(group) if storage == StorageType::Memory && !founder && !leaving => {
                tokio::spawn(jetraft_raft::founding::found_memory(
                    host.clone(),
                    group,
                    a.peers.clone(),
                    a.start_config().clone(),
                ));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(stream = %a.config.name, error = %e, "starting stream group");
            }
        }
    }
    for id in host.group_ids() {
        if id != META_GROUP && current.by_group(id).is_none() {
            tracing::info!(
                group = id,
                "stream removed from the catalog; deleting local replica"
            );
            if let Err(e) = host.remove_group(id, true).await {
                tracing::error!(group = id, error = %e, "removing stream group");
            }
            cluster.group_removed(id);
        }
    }
}

/// A once-a-second ticker that does not catch up on missed ticks.
fn every_second() -> tokio::time::Interval {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Stream leaders enforce `max_age` once a second by proposing an expiry
/// (stamped with the leader's time, so every replica drops the same
/// messages).
async fn expire_loop(cluster: Arc<Cluster>) {
    let mut tick = every_second();
    loop {
        tick.tick().await;
        cluster.host().sessions.expire_idle();
        let me = cluster.host().me();
        for a in cluster.catalog().streams() {
            if a.config.max_age <= 0 {
                continue;
            }
            let Some(g) = cluster.host().group(a.group) else {
                continue;
            };
            if g.leader() != Some(me) {
                continue;
            }
            crate::jsapi::expire(&cluster, &a.account, &a.config.name).await;
        }
    }
}

/// Verifies every stored message record of the streams hosted here, a
/// bounded batch per stream each second, and repairs records that fail
/// their checksum from the stream's other replicas.
async fn scrub_loop(cluster: Arc<Cluster>) {
    const BATCH: usize = 1024;
    let mut cursors: BTreeMap<u64, u64> = BTreeMap::new();
    let mut tick = every_second();
    loop {
        tick.tick().await;
        cluster.host().sessions.expire_idle();
        let me = cluster.host().me();
        for a in cluster.catalog().streams() {
            if !a.peers.contains(&me) || cluster.host().group(a.group).is_none() {
                continue;
            }
            let from = cursors.get(&a.group).copied().unwrap_or(0);
            match cluster
                .host()
                .scrub_stream(a.group, from, BATCH, &a.peers)
                .await
            {
                Ok((next, repaired)) => {
                    if repaired > 0 {
                        tracing::warn!(stream = %a.config.name, repaired, "repaired corrupt message records from peers");
                    }
                    cursors.insert(a.group, next);
                }
                Err(e) => {
                    tracing::warn!(stream = %a.config.name, error = %e, "scrub could not repair yet");
                }
            }
        }
    }
}
