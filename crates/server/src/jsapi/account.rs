//! `$JS.API.INFO`: the account's JetStream usage and limits.

use jetraft_types::api::{self, AccountInfo, AccountLimits, ApiStats, types};
use jetraft_types::config::StorageType;

use crate::cluster::Cluster;

/// The account's usage, counted by the meta leader after a read barrier
/// (decision 33), from the stream replicas this node holds.
pub async fn account_info(cluster: &Cluster, account: &str) -> Vec<u8> {
    if let Err(e) = cluster.meta_read_barrier().await {
        return api::render_error(types::ACCOUNT_INFO, &e);
    }
    let catalog = cluster.catalog();
    let used = |kind: StorageType| -> u64 {
        catalog
            .streams_in(account)
            .filter(|a| a.config.storage == kind)
            .filter_map(|a| cluster.host().group(a.group))
            .filter_map(|g| g.sm.stream_view())
            .map(|v| v.state().bytes)
            .sum()
    };
    // Like nats-server: the `max_bytes` of every stream that sets one.
    let reserved = |kind: StorageType| -> u64 {
        catalog
            .streams_in(account)
            .filter(|a| a.config.storage == kind && a.config.max_bytes > 0)
            .map(|a| a.config.max_bytes as u64)
            .sum()
    };
    let info = AccountInfo {
        memory: used(StorageType::Memory),
        storage: used(StorageType::File),
        reserved_memory: reserved(StorageType::Memory),
        reserved_storage: reserved(StorageType::File),
        streams: catalog.streams_in(account).count() as u64,
        consumers: catalog
            .streams_in(account)
            .filter_map(|a| cluster.host().group(a.group))
            .filter_map(|g| g.sm.stream_view())
            .map(|v| v.state().consumer_count)
            .sum(),
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
