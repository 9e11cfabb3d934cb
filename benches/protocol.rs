//! NATS protocol parsing: a buffer of PUB and HPUB operations, as a
//! publishing client sends them.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jetraft_gateway::proto::parser::Parser;

const OPS: usize = 1_000;

fn protocol(c: &mut Criterion) {
    let payload = "x".repeat(128);
    let mut wire = Vec::new();
    for i in 0..OPS {
        if i % 2 == 0 {
            wire.extend_from_slice(
                format!("PUB orders.{i} _INBOX.a.{i} 128\r\n{payload}\r\n").as_bytes(),
            );
        } else {
            let hdr = format!("NATS/1.0\r\nNats-Msg-Id: m{i}\r\n\r\n");
            wire.extend_from_slice(
                format!(
                    "HPUB orders.{i} _INBOX.a.{i} {} {}\r\n{hdr}{payload}\r\n",
                    hdr.len(),
                    hdr.len() + 128
                )
                .as_bytes(),
            );
        }
    }
    let mut g = c.benchmark_group("protocol_parse");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("1000_pub_hpub_128B", |b| {
        b.iter(|| {
            let mut p = Parser::new(1 << 20);
            p.set_headers(true);
            p.extend(&wire);
            let mut n = 0;
            while p.next_op().unwrap().is_some() {
                n += 1;
            }
            assert_eq!(n, OPS);
        })
    });
    g.finish();
}

criterion_group!(benches, protocol);
criterion_main!(benches);
