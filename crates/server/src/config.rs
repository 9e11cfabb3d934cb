//! `jetraft server` configuration: flags, or the same keys in a TOML file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Deserialize;

/// Flags of `jetraft server`. Every flag can also be set in the `--config`
/// TOML file under the same name (with `_` for `-`); a flag given on the
/// command line wins over the file.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// TOML file with any of the settings below.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// This node's name; must appear in --peers when peers are given.
    #[arg(long)]
    pub name: Option<String>,
    /// Directory for the node's RocksDB store.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// NATS client address [default: 127.0.0.1:4222].
    #[arg(long)]
    pub listen: Option<String>,
    /// Cluster (gRPC) address [default: 127.0.0.1:6222].
    #[arg(long)]
    pub cluster_listen: Option<String>,
    /// Monitoring HTTP address [default: 127.0.0.1:8222].
    #[arg(long)]
    pub http_listen: Option<String>,
    /// Initial members: name=host:port (cluster address), comma separated.
    /// None means a single-node cluster.
    #[arg(long)]
    pub peers: Option<String>,
    /// When a publish is acknowledged: `always` (after fsync on a quorum,
    /// the default) or `interval` (before fsync; see the README).
    #[arg(long)]
    pub sync: Option<String>,
    /// With `--sync interval`, how often the WAL is fsynced [default: 1000].
    #[arg(long)]
    pub sync_interval_ms: Option<u64>,
    /// Largest message payload a client may publish [default: 1048576].
    #[arg(long)]
    pub max_payload: Option<usize>,
    /// The host:port clients are told to reach this node at (INFO
    /// `connect_urls` of every node) [default: --listen, or, when that is
    /// 0.0.0.0, this node's host in --peers with the client port].
    #[arg(long)]
    pub client_advertise: Option<String>,
    /// Client connections accepted at once [default: 65536].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Subscriptions one connection may hold; 0 = no limit [default: 0].
    #[arg(long)]
    pub max_subscriptions: Option<usize>,
    /// Bytes queued for one client before it is cut off as a slow consumer
    /// [default: 67108864].
    #[arg(long)]
    pub max_pending: Option<usize>,
    /// Longest protocol line a client may send, in bytes [default: 4096].
    #[arg(long)]
    pub max_control_line: Option<usize>,
    /// Seconds between server pings to an idle client; 0 = none [default: 120].
    #[arg(long)]
    pub ping_interval_secs: Option<u64>,
    /// Unanswered pings before a client is closed as stale [default: 2].
    #[arg(long)]
    pub max_pings_out: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    name: Option<String>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    cluster_listen: Option<String>,
    http_listen: Option<String>,
    peers: Option<PeersValue>,
    sync: Option<String>,
    sync_interval_ms: Option<u64>,
    max_payload: Option<usize>,
    client_advertise: Option<String>,
    max_connections: Option<usize>,
    max_subscriptions: Option<usize>,
    max_pending: Option<usize>,
    max_control_line: Option<usize>,
    ping_interval_secs: Option<u64>,
    max_pings_out: Option<u32>,
}

/// `peers` in TOML may be the flag's string or a table `{ n1 = "host:port" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PeersValue {
    Text(String),
    Table(BTreeMap<String, String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    Always,
    Interval { every_ms: u64 },
}

/// A node's resolved configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub data_dir: PathBuf,
    pub listen: String,
    pub cluster_listen: String,
    pub http_listen: String,
    /// All initial members by name (including this node), with cluster addresses.
    pub peers: BTreeMap<String, String>,
    pub sync: Sync,
    pub max_payload: usize,
    /// host:port clients reach this node at.
    pub client_advertise: String,
    pub limits: ClientLimits,
}

/// What one client may do, as nats-server's options of the same names.
#[derive(Debug, Clone)]
pub struct ClientLimits {
    pub max_connections: usize,
    /// 0 = no limit.
    pub max_subscriptions: usize,
    pub max_pending_bytes: usize,
    pub max_control_line_bytes: usize,
    pub ping_interval: std::time::Duration,
    pub max_pings_out: u32,
}

impl Default for ClientLimits {
    fn default() -> Self {
        let d = jetraft_gateway::GatewayConfig::default();
        Self {
            max_connections: d.max_connections,
            max_subscriptions: d.max_subscriptions,
            max_pending_bytes: d.max_pending_bytes,
            max_control_line_bytes: d.max_control_line_bytes,
            ping_interval: d.ping_interval,
            max_pings_out: d.max_pings_out,
        }
    }
}

impl NodeConfig {
    pub fn from_args(args: &ServerArgs) -> Result<Self> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let name = args
            .name
            .clone()
            .or(file.name)
            .unwrap_or_else(|| "n1".to_string());
        let cluster_listen = args
            .cluster_listen
            .clone()
            .or(file.cluster_listen)
            .unwrap_or_else(|| "127.0.0.1:6222".into());
        let peers = match (&args.peers, file.peers) {
            (Some(text), _) => parse_peers(text)?,
            (None, Some(PeersValue::Text(text))) => parse_peers(&text)?,
            (None, Some(PeersValue::Table(t))) => t,
            (None, None) => BTreeMap::from([(name.clone(), cluster_listen.clone())]),
        };
        if !peers.contains_key(&name) {
            bail!(
                "--name {name} is not one of --peers ({})",
                peers.keys().cloned().collect::<Vec<_>>().join(",")
            );
        }
        let sync_interval_ms = args
            .sync_interval_ms
            .or(file.sync_interval_ms)
            .unwrap_or(1000);
        let sync = match args.sync.clone().or(file.sync).as_deref() {
            None | Some("always") => Sync::Always,
            Some("interval") => Sync::Interval {
                every_ms: sync_interval_ms.max(1),
            },
            Some(other) => bail!("--sync must be `always` or `interval`, not `{other}`"),
        };
        let listen = args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:4222".into());
        let client_advertise = match args.client_advertise.clone().or(file.client_advertise) {
            Some(a) => a,
            None => default_advertise(&listen, &peers[&name]),
        };
        let d = ClientLimits::default();
        let limits = ClientLimits {
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(d.max_connections),
            max_subscriptions: args
                .max_subscriptions
                .or(file.max_subscriptions)
                .unwrap_or(d.max_subscriptions),
            max_pending_bytes: args
                .max_pending
                .or(file.max_pending)
                .unwrap_or(d.max_pending_bytes),
            max_control_line_bytes: args
                .max_control_line
                .or(file.max_control_line)
                .unwrap_or(d.max_control_line_bytes),
            ping_interval: args
                .ping_interval_secs
                .or(file.ping_interval_secs)
                .map_or(d.ping_interval, std::time::Duration::from_secs),
            max_pings_out: args
                .max_pings_out
                .or(file.max_pings_out)
                .unwrap_or(d.max_pings_out),
        };
        Ok(Self {
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(format!("data/{name}"))),
            name,
            listen,
            cluster_listen,
            http_listen: args
                .http_listen
                .clone()
                .or(file.http_listen)
                .unwrap_or_else(|| "127.0.0.1:8222".into()),
            peers,
            sync,
            max_payload: args.max_payload.or(file.max_payload).unwrap_or(1 << 20),
            client_advertise,
            limits,
        })
    }

    /// The client side of the gateway's configuration.
    pub fn gateway(&self, base: jetraft_gateway::GatewayConfig) -> jetraft_gateway::GatewayConfig {
        let l = &self.limits;
        jetraft_gateway::GatewayConfig {
            server_name: self.name.clone(),
            max_payload_bytes: self.max_payload,
            max_connections: l.max_connections,
            max_subscriptions: l.max_subscriptions,
            max_pending_bytes: l.max_pending_bytes,
            max_control_line_bytes: l.max_control_line_bytes,
            ping_interval: l.ping_interval,
            max_pings_out: l.max_pings_out,
            ..base
        }
    }

    /// Node ids are positions in the name-sorted member list (from 1), so
    /// every node derives the same ids from the same `--peers`.
    pub fn node_ids(&self) -> BTreeMap<String, u64> {
        self.peers
            .keys()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u64 + 1))
            .collect()
    }

    pub fn node_id(&self) -> u64 {
        self.node_ids().get(&self.name).copied().unwrap_or(1)
    }
}

/// The listen address, unless it is a wildcard: then the host this node
/// has in the peer list, with the client port.
fn default_advertise(listen: &str, cluster_addr: &str) -> String {
    let (host, port) = listen.rsplit_once(':').unwrap_or((listen, "4222"));
    if host == "0.0.0.0" || host == "[::]" || host.is_empty() {
        let peer_host = cluster_addr
            .rsplit_once(':')
            .map_or(cluster_addr, |(h, _)| h);
        format!("{peer_host}:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn parse_peers(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, addr)) = part.split_once('=') else {
            bail!("--peers entry `{part}` is not name=host:port");
        };
        if out
            .insert(name.trim().to_string(), addr.trim().to_string())
            .is_some()
        {
            bail!("--peers names `{name}` twice");
        }
    }
    if out.is_empty() {
        bail!("--peers is empty");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flags_win_over_file_and_ids_are_sorted_positions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        std::fs::write(&path, "name = \"b\"\nsync = \"interval\"\npeers = { a = \"h:1\", b = \"h:2\", c = \"h:3\" }\n")
            .unwrap();
        let args = ServerArgs {
            config: Some(path),
            listen: Some("0.0.0.0:1".into()),
            ..Default::default()
        };
        let c = NodeConfig::from_args(&args).unwrap();
        assert_eq!(c.name, "b");
        assert_eq!(c.node_id(), 2);
        assert_eq!(c.listen, "0.0.0.0:1");
        assert_eq!(c.client_advertise, "h:1", "wildcard listen: the peer host");
        assert_eq!(c.sync, Sync::Interval { every_ms: 1000 });
    }

    #[test]
    fn bad_values_are_refused() {
        let a = ServerArgs {
            name: Some("x".into()),
            peers: Some("a=h:1".into()),
            ..Default::default()
        };
        assert!(NodeConfig::from_args(&a).is_err());
        let a = ServerArgs {
            sync: Some("sometimes".into()),
            ..Default::default()
        };
        assert!(NodeConfig::from_args(&a).is_err());
        let a = ServerArgs {
            peers: Some("a".into()),
            ..Default::default()
        };
        assert!(NodeConfig::from_args(&a).is_err());
    }
}
