//! `$JS.API.INFO`: the account's JetStream usage and limits.

use jetraft_types::api::{self, AccountInfo, AccountLimits, ApiStats, types};
use jetraft_types::config::StorageType;

use crate::cluster::Cluster;
use crate::wire::{AccountUsage, NodeCall, NodeReply};

/// What the streams of `account` that this node leads use: each stream
/// counted once, by its leader.
pub(crate) fn local_usage(cluster: &Cluster, account: &str) -> AccountUsage {
    let me = cluster.host().me();
    let mut u = AccountUsage::default();
    for a in cluster.catalog().streams_in(account) {
        let Some(g) = cluster.host().group(a.group) else {
            continue;
        };
        if g.leader() != Some(me) {
            continue;
        }
        let Some(v) = g.sm.stream_view() else {
            continue;
        };
        match a.config.storage {
            StorageType::Memory => u.memory += v.state().bytes,
            StorageType::File => u.storage += v.state().bytes,
        }
        u.consumers += v.state().consumer_count;
    }
    u
}

/// The account's usage, counted by the meta leader after a read barrier
/// (decision 33), from every node's report on the streams it leads (a node
/// that does not answer is left out).
pub async fn account_info(cluster: &Cluster, account: &str) -> Vec<u8> {
    if let Err(e) = cluster.meta_read_barrier().await {
        return api::render_error(types::ACCOUNT_INFO, &e);
    }
    let catalog = cluster.catalog();
    let mut used = AccountUsage::default();
    for node in cluster.node_ids() {
        let u = if node == cluster.host().me() {
            local_usage(cluster, account)
        } else {
            let ask = NodeCall::AccountUsage {
                account: account.to_string(),
            };
            match cluster.call(node, &ask).await {
                Ok(NodeReply::AccountUsage(u)) => u,
                _ => AccountUsage::default(),
            }
        };
        used.memory += u.memory;
        used.storage += u.storage;
        used.consumers += u.consumers;
    }
    // Like nats-server: the `max_bytes` of every stream that sets one.
    let reserved = |kind: StorageType| -> u64 {
        catalog
            .streams_in(account)
            .filter(|a| a.config.storage == kind && a.config.max_bytes > 0)
            .map(|a| a.config.max_bytes as u64)
            .sum()
    };
    let info = AccountInfo {
        memory: used.memory,
        storage: used.storage,
        reserved_memory: reserved(StorageType::Memory),
        reserved_storage: reserved(StorageType::File),
        streams: catalog.streams_in(account).count() as u64,
        consumers: used.consumers,
        limits: AccountLimits::default(),
        domain: None,
        api: ApiStats {
            level: api::API_LEVEL,
            total: 0,
            errors: 0,
        },
    };
    api::render(types::ACCOUNT_INFO, &info)
}
