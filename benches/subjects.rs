//! Subject matching: one filter against a subject, and the gateway's
//! subscription index with wildcards.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jetraft_gateway::sublist::Sublist;
use jetraft_types::subject;

fn subjects(c: &mut Criterion) {
    let subjects: Vec<String> = (0..1000)
        .map(|i| format!("orders.eu.{}.created", i % 50))
        .collect();
    let mut g = c.benchmark_group("subject_match");
    g.throughput(Throughput::Elements(subjects.len() as u64));
    for filter in ["orders.eu.7.created", "orders.*.7.*", "orders.>"] {
        g.bench_function(filter, |b| {
            b.iter(|| {
                subjects
                    .iter()
                    .filter(|s| subject::matches(filter, s))
                    .count()
            })
        });
    }
    g.finish();

    let mut list: Sublist<u64, u64> = Sublist::new();
    for i in 0..1000u64 {
        let filter = match i % 4 {
            0 => format!("orders.eu.{}.created", i % 50),
            1 => format!("orders.*.{}.*", i % 50),
            2 => format!("orders.{i}.>"),
            _ => format!("inventory.{i}"),
        };
        list.insert(&filter, None, i, i).unwrap();
    }
    let mut g = c.benchmark_group("sublist_1000_subs");
    g.throughput(Throughput::Elements(subjects.len() as u64));
    g.bench_function("match_msgs", |b| {
        b.iter(|| {
            subjects
                .iter()
                .map(|s| list.matches(s).plain.len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, subjects);
criterion_main!(benches);
