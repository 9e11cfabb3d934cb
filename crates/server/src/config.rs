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
        Ok(Self {
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(format!("data/{name}"))),
            name,
            listen: args
                .listen
                .clone()
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:4222".into()),
            cluster_listen,
            http_listen: args
                .http_listen
                .clone()
                .or(file.http_listen)
                .unwrap_or_else(|| "127.0.0.1:8222".into()),
            peers,
            sync,
            max_payload: args.max_payload.or(file.max_payload).unwrap_or(1 << 20),
        })
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
