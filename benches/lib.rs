//! Criterion micro-benchmarks of jetraft's layers; the benchmarks are the
//! `[[bench]]` targets next to this file. Run `cargo bench -p jetraft-benches`.
//! Throughput is reported per message ("elem/s" = msgs/s) or in bytes/s.
