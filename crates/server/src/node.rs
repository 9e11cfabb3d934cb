//! Assembles a node: store, Raft groups, cluster RPC, NATS gateway and
//! monitoring, from a [`NodeConfig`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use jetraft_gateway::{Gateway, GatewayConfig};
use jetraft_meta::{Catalog, META_GROUP};
use jetraft_raft::{ClusterService, Committer, Host, Peers, RaftTiming, SyncMode};
use jetraft_store_rocks::{RocksEngine, RocksOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::{NodeConfig, Sync};
use crate::env::SystemClock;
use crate::monitor;
use crate::net::TcpConnector;

/// A running node.
pub struct Node {
    pub config: NodeConfig,
    pub cluster: Arc<Cluster>,
    pub client_addr: SocketAddr,
    pub cluster_addr: SocketAddr,
    pub http_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    pub async fn start(config: NodeConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let engine = Arc::new(
            RocksEngine::open(&config.data_dir.join("store"), RocksOptions::default())
                .with_context(|| format!("opening store in {}", config.data_dir.display()))?,
        );
        let mode = match config.sync {
            Sync::Always => SyncMode::Always,
            Sync::Interval { every_ms } => SyncMode::Interval(Duration::from_millis(every_ms)),
        };
        let committer = Committer::start(engine.clone(), mode, true);
        let ids = config.node_ids();
        let addrs: BTreeMap<u64, String> = config
            .peers
            .iter()
            .map(|(n, a)| (ids[n], a.clone()))
            .collect();
        let names: BTreeMap<u64, String> = ids.iter().map(|(n, id)| (*id, n.clone())).collect();
        let me = config.node_id();
        let peers = Arc::new(Peers::new(me, addrs, Arc::new(TcpConnector)));
        let host = Arc::new(Host::new(peers, engine, committer, RaftTiming::default()));

        let cluster_listener = TcpListener::bind(&config.cluster_listen)
            .await
            .with_context(|| format!("binding cluster address {}", config.cluster_listen))?;
        let client_listener = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("binding client address {}", config.listen))?;
        let http_listener = TcpListener::bind(&config.http_listen)
            .await
            .with_context(|| format!("binding monitoring address {}", config.http_listen))?;
        let cluster_addr = cluster_listener.local_addr()?;
        let client_addr = client_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;

        let (meta, catalog) = host.start_meta().await.context("starting the meta group")?;
        let cluster = Cluster::new(
            host.clone(),
            meta,
            catalog.clone(),
            Arc::new(SystemClock),
            names,
        );

        let mut tasks = Vec::new();
        let service = ClusterService::new(host.clone(), cluster.clone()).into_server();
        tasks.push(tokio::spawn(async move {
            let incoming = tokio_stream_listener(cluster_listener);
            if let Err(e) = tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
            {
                tracing::error!(error = %e, "cluster server stopped");
            }
        }));
        tasks.push(tokio::spawn(reconcile(host.clone(), catalog)));

        let gateway = Arc::new(Gateway::new(
            GatewayConfig {
                server_id: format!("JETRAFT{me}{}", config.name.to_uppercase()),
                server_name: config.name.clone(),
                max_payload_bytes: config.max_payload,
                host: client_addr.ip().to_string(),
                port: client_addr.port(),
                ..GatewayConfig::default()
            },
            cluster.clone(),
        ));
        tasks.push(tokio::spawn(accept_clients(client_listener, gateway)));
        tasks.push(tokio::spawn(monitor::serve(http_listener, cluster.clone())));
        tasks.push(tokio::spawn(expire_loop(cluster.clone())));

        tracing::info!(
            node = %config.name, id = me, client = %client_addr, cluster = %cluster_addr, http = %http_addr,
            sync = ?config.sync, "jetraft node started"
        );
        Ok(Self {
            config,
            cluster,
            client_addr,
            cluster_addr,
            http_addr,
            tasks,
        })
    }

    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.cluster.host().shutdown().await;
        if let Err(e) = self.cluster.host().committer.sync().await {
            tracing::warn!(error = %e, "final fsync");
        }
        tracing::info!(node = %self.config.name, "stopped");
    }
}

fn tokio_stream_listener(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> + Send {
    futures::stream::unfold(listener, |l| async move {
        let next = l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            s
        });
        Some((next, l))
    })
}

async fn accept_clients(listener: TcpListener, gateway: Arc<Gateway>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let gw = gateway.clone();
                tokio::spawn(async move {
                    let reason =
                        jetraft_gateway::serve_connection_from(stream, gw, Some(peer)).await;
                    tracing::debug!(%peer, ?reason, "client connection closed");
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
/// catalog: start the groups this node is a replica of, stop and delete the
/// ones the catalog no longer has.
async fn reconcile(host: Arc<Host>, mut catalog: watch::Receiver<Arc<Catalog>>) {
    loop {
        let current = catalog.borrow_and_update().clone();
        let me = host.me();
        for a in current.streams() {
            if a.peers.contains(&me)
                && host.group(a.group).is_none()
                && let Err(e) = host.start_stream(a.group, a.config.clone(), &a.peers).await
            {
                tracing::error!(stream = %a.config.name, error = %e, "starting stream group");
            }
        }
        for id in host.group_ids() {
            if id != META_GROUP && current.by_group(id).is_none_or(|a| !a.peers.contains(&me)) {
                tracing::info!(
                    group = id,
                    "stream removed from the catalog; deleting local replica"
                );
                if let Err(e) = host.remove_group(id, true).await {
                    tracing::error!(group = id, error = %e, "removing stream group");
                }
            }
        }
        if catalog.changed().await.is_err() {
            return;
        }
    }
}

/// Stream leaders enforce `max_age` once a second by proposing an expiry
/// (stamped with the leader's time, so every replica drops the same
/// messages).
async fn expire_loop(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
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
            let req = crate::cluster::ApiRequest {
                subject: format!("{}{}", crate::jsapi::INTERNAL_STREAM_EXPIRE, a.config.name),
                headers: None,
                payload: bytes::Bytes::new(),
            };
            cluster.clone().dispatch(req, 0).await;
        }
    }
}

/// Runs a node until SIGTERM or Ctrl-C, then shuts it down cleanly.
pub async fn run_until_signal(config: NodeConfig) -> Result<()> {
    let node = Node::start(config).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
    }
    node.shutdown().await;
    Ok(())
}
