//! A node on this machine: RocksDB under the data directory, TCP listeners,
//! the system clock, monitoring HTTP, and SIGTERM handling. Built with the
//! `standalone` feature (on by default; the simulation builds without it).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use futures::StreamExt;
use jetraft_gateway::GatewayConfig;
use jetraft_store::Engine;
use jetraft_store::failstop::Fatal;
use jetraft_store::faulty::FaultyEngine;
use jetraft_store_rocks::{RocksEngine, RocksOptions};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::NodeConfig;
use crate::env::{Clock, Conn, Incoming, NodeEnv, SystemClock};
use crate::monitor;
use crate::net::TcpConnector;
use crate::node::assemble;

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
    /// Starts a node on this machine: RocksDB under `data_dir`, TCP
    /// listeners, the system clock.
    pub async fn start(config: NodeConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let engine: Arc<dyn Engine> = Arc::new(
            RocksEngine::open(&config.data_dir.join("store"), RocksOptions::default())
                .with_context(|| format!("opening store in {}", config.data_dir.display()))?,
        );
        let engine = fail_sync_for_tests(engine)?;
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
        let clock = Arc::new(SystemClock);
        let env = NodeEnv {
            engine,
            blocking_sync: true,
            seed: u64::try_from(clock.now_ns()).unwrap_or_default() ^ config.node_id(),
            raft: jetraft_raft::RaftTiming::default(),
            clock,
            connector: Arc::new(TcpConnector),
            cluster_incoming: tcp_incoming(cluster_listener),
            client_incoming: tcp_incoming(client_listener),
        };
        let gateway = GatewayConfig {
            host: client_addr.ip().to_string(),
            port: client_addr.port(),
            ..GatewayConfig::default()
        };
        let node = assemble(&config, env, gateway).await?;
        let (cluster, mut tasks) = (node.cluster.clone(), node.tasks);
        let state = monitor::State {
            cluster: cluster.clone(),
            routes: node.routes,
            gateway: node.gateway,
        };
        tasks.push(tokio::spawn(monitor::serve(http_listener, state)));
        tracing::info!(
            node = %config.name, id = config.node_id(), client = %client_addr, cluster = %cluster_addr, http = %http_addr,
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

    /// The node's fatal latch: raised when a write or fsync of its store
    /// failed; the node then acks and votes no more and must exit.
    pub fn fatal(&self) -> Fatal {
        self.cluster.host().committer.fatal().clone()
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

fn tcp_incoming(listener: TcpListener) -> Incoming {
    futures::stream::unfold(listener, |l| async move {
        let next = l.accept().await.map(|(s, peer)| {
            let _ = s.set_nodelay(true);
            Conn::new(s, Some(peer))
        });
        Some((next, l))
    })
    .boxed()
}

/// Test-only: with `JETRAFT_FAIL_SYNC_AFTER=N` the store's fsyncs after
/// the first N fail (once), so a test can watch a real node stop on a
/// failed fsync. Not an operator setting.
const FAIL_SYNC_ENV: &str = "JETRAFT_FAIL_SYNC_AFTER";

fn fail_sync_for_tests(engine: Arc<dyn Engine>) -> Result<Arc<dyn Engine>> {
    let Ok(n) = std::env::var(FAIL_SYNC_ENV) else {
        return Ok(engine);
    };
    let n: u64 = n
        .parse()
        .with_context(|| format!("{FAIL_SYNC_ENV}={n}: not a number"))?;
    tracing::warn!("{FAIL_SYNC_ENV}={n}: fsync {} will fail (test only)", n + 1);
    let faulty = FaultyEngine::new(engine);
    faulty.fail_sync_after(n);
    Ok(Arc::new(faulty))
}

/// The node stopped because its store failed a write or an fsync.
/// `jetraft server` exits with [`FatalStop::EXIT_CODE`].
#[derive(Debug)]
pub struct FatalStop(pub String);

impl FatalStop {
    pub const EXIT_CODE: i32 = 2;
}

impl std::fmt::Display for FatalStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fatal storage error: {}", self.0)
    }
}

impl std::error::Error for FatalStop {}

/// Runs a node until SIGTERM or Ctrl-C, then shuts it down cleanly; or
/// until its store fails a write or fsync: then it returns [`FatalStop`]
/// at once, without a shutdown (which would fsync again).
pub async fn run_until_signal(config: NodeConfig) -> Result<()> {
    let node = Node::start(config).await?;
    let (tx, fatal) = tokio::sync::oneshot::channel();
    node.fatal().on_raise(move |why| {
        let _ = tx.send(why.to_string());
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
        Ok(why) = fatal => return Err(FatalStop(why).into()),
    }
    node.shutdown().await;
    Ok(())
}
