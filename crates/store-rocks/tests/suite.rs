//! The engine conformance suite on RocksDB: each case gets its own temp
//! directory; calling the opener again reopens the same directory.
#![allow(clippy::unwrap_used)]

use jetraft_store_rocks::{RocksEngine, RocksOptions};

jetraft_store::engine_suite!({
    let dir = tempfile::tempdir().unwrap();
    move || RocksEngine::open(dir.path(), RocksOptions::test_min()).unwrap()
});
