//! The numbers a run produced, for people (one line) and machines (JSON).

use serde::Serialize;

use crate::modes::Outcome;
use crate::{BenchArgs, Mode, Storage};

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub url: String,
    pub mode: Mode,
    pub msgs: u64,
    pub size: usize,
    pub replicas: usize,
    pub storage: Storage,
    pub window: usize,
    pub publishers: usize,
    pub seconds: f64,
    pub msgs_per_sec: f64,
    pub bytes_per_sec: f64,
    pub latency_us: Latency,
}

impl Report {
    pub(crate) fn new(args: &BenchArgs, o: &Outcome) -> Self {
        let secs = o.elapsed.as_secs_f64().max(1e-9);
        let h = &o.hist;
        Self {
            label: args.label.clone(),
            url: match crate::core_nats::role_urls(args) {
                Ok(urls) if args.mode.is_core() => urls.join(","),
                _ => args.url.clone(),
            },
            mode: args.mode,
            msgs: o.measured,
            size: args.size,
            replicas: args.replicas,
            storage: args.storage,
            window: args.window,
            publishers: args.publishers,
            seconds: secs,
            msgs_per_sec: o.measured as f64 / secs,
            bytes_per_sec: (o.measured as f64 * args.size as f64) / secs,
            latency_us: Latency {
                p50: h.value_at_quantile(0.50),
                p90: h.value_at_quantile(0.90),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
                mean: h.mean(),
            },
        }
    }

    /// One line a person reads.
    pub fn render(&self) -> String {
        let l = &self.latency_us;
        let label = if self.label.is_empty() {
            String::new()
        } else {
            format!("[{}] ", self.label)
        };
        match self.mode {
            Mode::CorePub => {
                return format!(
                    "{label}corepub {}B x {}, node 1 to nodes 2 and 3: {:.0} msgs/s ({:.2} MB/s) at the slower subscriber in {:.2}s",
                    self.size,
                    self.msgs,
                    self.msgs_per_sec,
                    self.bytes_per_sec / 1e6,
                    self.seconds
                );
            }
            Mode::CoreReq => {
                return format!(
                    "{label}corereq {}B x {}, node 1 to node 2 and back: p50 {} µs, p90 {} µs, p99 {} µs, max {} µs; {:.0} requests/s in {:.2}s",
                    self.size,
                    self.msgs,
                    l.p50,
                    l.p90,
                    l.p99,
                    l.max,
                    self.msgs_per_sec,
                    self.seconds
                );
            }
            Mode::Sync | Mode::Async | Mode::Multi | Mode::Consume | Mode::Pull | Mode::Ack => {}
        }
        format!(
            "{label}{:?} R{} {:?} {}B x {}: p50 {} µs, p90 {} µs, p99 {} µs, p99.9 {} µs, max {} µs; {:.0} msgs/s ({:.2} MB/s) in {:.2}s",
            self.mode,
            self.replicas,
            self.storage,
            self.size,
            self.msgs,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            self.msgs_per_sec,
            self.bytes_per_sec / 1e6,
            self.seconds
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(h: &hdrhistogram::Histogram<u64>) -> Report {
        Report {
            label: "t".into(),
            url: "nats://x".into(),
            mode: Mode::Sync,
            msgs: h.len(),
            size: 128,
            replicas: 3,
            storage: Storage::File,
            window: 1,
            publishers: 1,
            seconds: 1.0,
            msgs_per_sec: h.len() as f64,
            bytes_per_sec: 0.0,
            latency_us: Latency {
                p50: h.value_at_quantile(0.5),
                p90: h.value_at_quantile(0.9),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
                mean: h.mean(),
            },
        }
    }

    #[test]
    fn renders_percentiles_and_rate() {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1_000_000, 3)
            .unwrap_or_else(|e| panic!("{e}"));
        for v in 1..=100u64 {
            h.record(v).unwrap_or_else(|e| panic!("{e}"));
        }
        let line = sample(&h).render();
        assert!(
            line.contains("p50 50 µs") && line.contains("p99 99 µs"),
            "{line}"
        );
        assert!(line.contains("100 msgs/s"), "{line}");
    }
}
