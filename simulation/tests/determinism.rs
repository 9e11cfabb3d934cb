//! The same seed gives the same trace, in separate processes; different
//! seeds give different traces.
#![allow(clippy::unwrap_used)]

mod common;

use common::run_seed;

const SHORT: &[&str] = &["--duration", "10"];

#[test]
fn same_seed_same_trace_hash() {
    let a = run_seed(7, SHORT);
    let b = run_seed(7, SHORT);
    assert_eq!(a["trace_hash"], b["trace_hash"], "{a}\n{b}");
    assert!(
        a["acked"].as_u64().unwrap() > 0,
        "the workload did something: {a}"
    );
}

#[test]
fn different_seeds_different_traces() {
    let a = run_seed(1, SHORT);
    let b = run_seed(2, SHORT);
    assert_ne!(a["trace_hash"], b["trace_hash"]);
}
