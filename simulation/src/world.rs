//! The simulated cluster: N real jetraft nodes, each a turmoil host running
//! the same assembly `jetraft server` runs ([`jetraft_server::node::assemble`]),
//! over turmoil TCP, a simulated clock and the in-memory engine.
//!
//! What survives a crash lives here, outside the hosts: each node's
//! [`MemEngine`] (which keeps synced and unsynced writes apart, so a crash
//! loses exactly what was not yet fsynced) and its clock offset.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use jetraft_gateway::GatewayConfig;
use jetraft_raft::Group;
use jetraft_server::cluster::Cluster;
use jetraft_server::config::{NodeConfig, Sync};
use jetraft_server::env::NodeEnv;
use jetraft_store::faulty::FaultyEngine;
use jetraft_store::mem::MemEngine;
use turmoil::Sim;

use crate::net::{CLIENT_PORT, CLUSTER_PORT, SimClock, SimConnector, listen};

/// One node's handle, kept by the driver across crashes.
pub struct SimNode {
    pub name: String,
    pub id: u64,
    pub engine: MemEngine,
    /// The engine the node runs on: `engine` behind a wrapper the nemesis
    /// arms to fail a sync (`sync-fail`).
    pub faulty: FaultyEngine,
    pub clock: SimClock,
    /// The running node's cluster handle; `None` while crashed or starting.
    pub cluster: Rc<RefCell<Option<Arc<Cluster>>>>,
    pub up: bool,
}

impl SimNode {
    pub fn cluster(&self) -> Option<Arc<Cluster>> {
        self.cluster.borrow().clone()
    }

    /// Why the running node stopped itself (a failed write or fsync of its
    /// store), if it did: it then acks and votes no more, and the driver
    /// crashes it as `jetraft server` would exit.
    pub fn fatal(&self) -> Option<String> {
        let c = self.cluster()?;
        c.host().committer.fatal().reason().map(str::to_string)
    }

    /// This node's running group of the stream `name`, if it hosts one.
    pub fn stream_group(&self, name: &str) -> Option<Group> {
        let c = self.cluster()?;
        let a = c
            .catalog()
            .stream(jetraft_types::GLOBAL_ACCOUNT, name)
            .cloned()?;
        c.host().group(a.group)
    }
}

/// Node names: n1..nN.
pub fn node_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn node_config(name: &str, names: &[String]) -> NodeConfig {
    NodeConfig {
        name: name.to_string(),
        data_dir: std::path::PathBuf::from(format!("/sim/{name}")),
        listen: format!("{name}:{CLIENT_PORT}"),
        cluster_listen: format!("{name}:{CLUSTER_PORT}"),
        http_listen: String::new(),
        peers: names
            .iter()
            .map(|n| (n.clone(), format!("{n}:{CLUSTER_PORT}")))
            .collect::<BTreeMap<_, _>>(),
        sync: Sync::Always,
        max_payload: 1 << 20,
        client_advertise: format!("{name}:{CLIENT_PORT}"),
        limits: Default::default(),
    }
}

/// Registers the nodes as turmoil hosts. Each host's software assembles a
/// real node on every (re)start.
pub fn add_nodes(sim: &mut Sim<'_>, n: usize, seed: u64) -> Vec<SimNode> {
    let names = node_names(n);
    let mut nodes = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let engine = MemEngine::new();
        let node = SimNode {
            name: name.clone(),
            id: i as u64 + 1,
            faulty: FaultyEngine::new(Arc::new(engine.clone())),
            engine,
            clock: SimClock::default(),
            cluster: Rc::new(RefCell::new(None)),
            up: true,
        };
        let config = node_config(name, &names);
        let engine = node.faulty.clone();
        let clock = node.clock.clone();
        let slot = node.cluster.clone();
        // Each start gets a fresh seed derived from the run's seed, so a
        // restarted node does not replay its previous election timeouts.
        let starts = Rc::new(RefCell::new(0u64));
        sim.host(name.as_str(), move || {
            let config = config.clone();
            let engine = engine.clone();
            let clock = clock.clone();
            let slot = slot.clone();
            let start = {
                let mut s = starts.borrow_mut();
                *s += 1;
                *s
            };
            let node_seed = seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(config.node_id() << 32)
                .wrapping_add(start);
            async move {
                let env = NodeEnv {
                    engine: Arc::new(engine),
                    blocking_sync: false,
                    clock: Arc::new(clock),
                    connector: Arc::new(SimConnector),
                    seed: node_seed,
                    raft: raft_timing(),
                    cluster_incoming: listen(CLUSTER_PORT).await?,
                    client_incoming: listen(CLIENT_PORT).await?,
                };
                let gateway = GatewayConfig {
                    host: config.name.clone(),
                    port: CLIENT_PORT,
                    ..GatewayConfig::default()
                };
                let node = jetraft_server::node::assemble(&config, env, gateway)
                    .await
                    .map_err(|e| e.to_string())?;
                *slot.borrow_mut() = Some(node.cluster);
                // The node lives until the host is crashed.
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        nodes.push(node);
    }
    nodes
}

/// Raft timing of simulated nodes: production's, except that groups
/// snapshot every 64 entries and keep 16 behind, so a follower that misses
/// a little (a partition, a crash) is sent a snapshot and copies a peer's
/// frozen replica, in most runs.
fn raft_timing() -> jetraft_raft::RaftTiming {
    jetraft_raft::RaftTiming {
        snapshot_every_entries: 64,
        keep_behind_snapshot: 16,
        ..Default::default()
    }
}
