//! RocksDB tuning for a node's store: a mostly-append message log plus a
//! short-lived Raft log, both purged from the front.

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, DBRecoveryMode, Options,
};

use jetraft_store::Cf;

const MIB: usize = 1 << 20;

/// The knobs an operator or a test may want to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RocksOptions {
    /// Memtable size per column family. Larger means fewer, larger L0
    /// files; the Raft log often dies (is purged) while still in memory.
    pub write_buffer_mib: usize,
    /// Cap on all memtables together.
    pub total_write_buffer_mib: usize,
    /// Block cache shared by all column families (data, index, filters).
    pub block_cache_mib: usize,
    /// Collect RocksDB statistics (tickers); costs a little CPU per op.
    pub statistics: bool,
}

impl Default for RocksOptions {
    fn default() -> Self {
        Self {
            write_buffer_mib: 64,
            total_write_buffer_mib: 256,
            block_cache_mib: 128,
            statistics: false,
        }
    }
}

impl RocksOptions {
    /// Small buffers for tests that start many stores.
    pub fn test_min() -> Self {
        Self {
            write_buffer_mib: 4,
            total_write_buffer_mib: 32,
            block_cache_mib: 8,
            statistics: true,
        }
    }

    pub(crate) fn db_options(&self) -> Options {
        let mut o = Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        o.set_max_background_jobs(2);
        // After power loss the WAL tail holds the unsynced writes, possibly
        // torn. PointInTime replays up to the first bad record and drops the
        // rest: exactly "lose what was not synced", and the store stays
        // consistent (batches are never half-applied). AbsoluteConsistency
        // would refuse to open after every ordinary power loss with a torn
        // tail; TolerateCorruptedTailRecords could replay past a hole.
        // Synced data always precedes the torn tail, so it is kept; damage
        // *inside* synced WAL data is media corruption, which Raft repairs
        // from peers (records are checksummed independently, see `record`).
        o.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
        // WALs can only be deleted once every column family has flushed the
        // data they hold; a rarely written CF (raft_meta) would pin them, so
        // force a flush when the WALs grow past this.
        o.set_max_total_wal_size(4 * (self.total_write_buffer_mib * MIB) as u64);
        o.set_db_write_buffer_size(self.total_write_buffer_mib * MIB);
        o.set_bytes_per_sync(MIB as u64);
        o.set_keep_log_file_num(4);
        o.set_max_log_file_size(16 * MIB);
        if self.statistics {
            o.enable_statistics();
        }
        // `track_and_verify_wals_in_manifest` is left off: it only tracks
        // closed WALs and has a history of false "Missing WAL" alarms that
        // would keep a healthy node from starting.
        o
    }

    pub(crate) fn cf_descriptors(&self) -> Vec<ColumnFamilyDescriptor> {
        let cache = Cache::new_lru_cache(self.block_cache_mib * MIB);
        Cf::ALL
            .iter()
            .map(|&cf| ColumnFamilyDescriptor::new(cf.name(), self.cf_options(&cache)))
            .collect()
    }

    fn cf_options(&self, cache: &Cache) -> Options {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(cache);
        // Point lookups (get by seq, raft entry, dedup id) skip SSTs that
        // cannot hold the key.
        table.set_bloom_filter(10.0, false);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);

        let mut o = Options::default();
        o.set_block_based_table_factory(&table);
        o.set_write_buffer_size(self.write_buffer_mib * MIB);
        o.set_level_compaction_dynamic_level_bytes(true);
        // L0/L1 are rewritten soon (and the Raft log mostly dies there):
        // not worth compressing. Data that settles lower is compressed.
        use DBCompressionType::{Lz4, None as Plain};
        o.set_compression_per_level(&[Plain, Plain, Lz4, Lz4, Lz4, Lz4, Lz4]);
        o
    }
}
