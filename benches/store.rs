//! Store: appending message records (one write batch per message, then a
//! group-committed sync every 64) and range reads, on the in-memory engine
//! and on RocksDB.
#![allow(clippy::unwrap_used)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jetraft_store::mem::MemEngine;
use jetraft_store::{Cf, Dir, Engine, WriteBatch, keys, record};
use jetraft_store_rocks::{RocksEngine, RocksOptions};

const MSGS: u64 = 1_000;
const PAYLOAD: usize = 128;

fn append(engine: &dyn Engine, from: u64, n: u64) {
    let payload = vec![b'x'; PAYLOAD];
    for seq in from..from + n {
        let key = keys::message(1, seq);
        let mut batch = WriteBatch::new();
        batch.put(
            Cf::Messages,
            key.clone(),
            record::encode_for(&key, &payload),
        );
        engine.write(batch).unwrap();
        if seq % 64 == 0 {
            engine.sync().unwrap();
        }
    }
    engine.sync().unwrap();
}

fn engines(
    c: &mut Criterion,
    name: &str,
    make: &dyn Fn() -> (Box<dyn Engine>, Option<tempfile::TempDir>),
) {
    let mut g = c.benchmark_group(format!("store_append_{name}"));
    g.throughput(Throughput::Elements(MSGS));
    let mut next = 1;
    let (engine, _dir) = make();
    g.bench_function("128B_msgs", |b| {
        b.iter(|| {
            append(engine.as_ref(), next, MSGS);
            next += MSGS;
        })
    });
    g.finish();

    let mut g = c.benchmark_group(format!("store_range_read_{name}"));
    g.throughput(Throughput::Bytes(MSGS * PAYLOAD as u64));
    let (engine, _dir) = make();
    append(engine.as_ref(), 1, 10 * MSGS);
    g.bench_function("1000_msgs", |b| {
        b.iter_batched(
            || (keys::message(1, 5 * MSGS), keys::message(1, 6 * MSGS)),
            |(from, to)| {
                let got = engine
                    .scan(Cf::Messages, &from, &to, Dir::Forward, usize::MAX)
                    .unwrap();
                for (k, v) in &got {
                    record::decode_for(k, v).unwrap();
                }
                assert_eq!(got.len() as u64, MSGS);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn store(c: &mut Criterion) {
    engines(c, "mem", &|| (Box::new(MemEngine::new()), None));
    engines(c, "rocksdb", &|| {
        let dir = tempfile::tempdir().unwrap();
        let e = RocksEngine::open(dir.path(), RocksOptions::default()).unwrap();
        (Box::new(e), Some(dir))
    });
}

criterion_group!(benches, store);
criterion_main!(benches);
