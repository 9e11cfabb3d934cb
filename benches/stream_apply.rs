//! The sans-IO stream state machine: applying publishes (sequencing,
//! dedup lookup, limits) with and without `Nats-Msg-Id`.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jetraft_stream::testing::MemReader;
use jetraft_stream::{StreamCommand, StreamMachine};
use jetraft_types::config::StreamConfig;

const MSGS: u64 = 1_000;

fn config() -> StreamConfig {
    StreamConfig {
        name: "B".into(),
        subjects: vec!["b.>".into()],
        max_msgs: 10_000,
        ..StreamConfig::default()
    }
    .normalize_for_create()
    .unwrap()
}

fn apply(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_apply");
    g.throughput(Throughput::Elements(MSGS));
    let payload = Bytes::from(vec![b'x'; 128]);
    for with_id in [false, true] {
        let name = if with_id {
            "publish_with_msg_id"
        } else {
            "publish"
        };
        let mut machine = StreamMachine::new(config());
        let mut reader = MemReader::new();
        let mut n = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..MSGS {
                    n += 1;
                    let headers = with_id
                        .then(|| Bytes::from(format!("NATS/1.0\r\nNats-Msg-Id: m{n}\r\n\r\n")));
                    let cmd = StreamCommand::Publish {
                        subject: format!("b.{}", n % 16),
                        headers,
                        payload: payload.clone(),
                    };
                    let applied = machine.apply(&cmd, n as i64, &reader).unwrap();
                    reader.apply_ops(&applied.ops);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
