//! When a delivery is sent: at once, or later for `replay_policy:
//! original` (the gaps between the messages' own times, until the
//! consumer caught up with the stream as it was when it started) and for
//! `rate_limit_bps` (a token bucket, its burst one maximum message, as
//! nats-server sizes it).
//!
//! A delivery held back is already committed as delivered; holding it
//! changes only when its ack wait starts (when it is sent).

use jetraft_types::consumer::{ConsumerConfig, ReplayPolicy};

/// nats-server's burst for the rate limit: the maximum payload.
const RATE_BURST_BYTES: u64 = 1024 * 1024;
/// Gaps below this are not waited for (as nats-server).
const REPLAY_MIN_GAP_NS: i64 = 1_000_000;

#[derive(Debug, Clone, Default)]
pub(super) struct Pace {
    /// Replaying: the last message's own time and when it was sent.
    replay: Option<(i64, i64)>,
    /// Replaying until past this stream sequence.
    replay_until: u64,
    /// The rate limit's theoretical arrival time (GCRA), Unix ns.
    tat_ns: i64,
}

impl Pace {
    /// For a consumer loaded at a stream whose last sequence is `last_seq`.
    pub fn new(cfg: &ConsumerConfig, last_seq: u64) -> Self {
        Self {
            replay: None,
            replay_until: if cfg.replay_policy == ReplayPolicy::Original {
                last_seq
            } else {
                0
            },
            tat_ns: 0,
        }
    }

    /// Whether every delivery goes out at once.
    pub fn immediate(&self, cfg: &ConsumerConfig) -> bool {
        self.replay_until == 0 && cfg.rate_limit == 0
    }

    /// When the message `seq` (its own time `ts_ns`, `size` bytes on the
    /// wire) may be sent, given the one before it.
    pub fn send_at(
        &mut self,
        cfg: &ConsumerConfig,
        seq: u64,
        ts_ns: i64,
        size: u64,
        now: i64,
    ) -> i64 {
        let mut at = now;
        if self.replay_until > 0 {
            if let Some((last_ts, last_at)) = self.replay {
                let gap = ts_ns.saturating_sub(last_ts);
                if gap > REPLAY_MIN_GAP_NS {
                    at = at.max(last_at.saturating_add(gap));
                } else {
                    at = at.max(last_at);
                }
            }
            self.replay = Some((ts_ns, at));
            if seq >= self.replay_until {
                // Caught up: live messages go out as they come.
                self.replay_until = 0;
                self.replay = None;
            }
        }
        if cfg.rate_limit > 0 {
            let per_byte_ns = 8.0e9 / cfg.rate_limit as f64;
            let interval = (size as f64 * per_byte_ns) as i64;
            let tolerance = (RATE_BURST_BYTES as f64 * per_byte_ns) as i64;
            // Conforming once the bucket, with this message in it, holds
            // no more than the burst.
            at = at.max(
                self.tat_ns
                    .saturating_add(interval)
                    .saturating_sub(tolerance),
            );
            self.tat_ns = self.tat_ns.max(at).saturating_add(interval);
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(replay: ReplayPolicy, rate: u64) -> ConsumerConfig {
        ConsumerConfig {
            replay_policy: replay,
            rate_limit: rate,
            ..ConsumerConfig::default()
        }
    }

    #[test]
    fn replay_keeps_the_gaps_until_caught_up() {
        let c = cfg(ReplayPolicy::Original, 0);
        let mut p = Pace::new(&c, 3);
        assert!(!p.immediate(&c));
        let s = 1_000_000_000;
        assert_eq!(p.send_at(&c, 1, 10 * s, 10, 100), 100);
        // Two seconds later in the stream: two seconds later here.
        assert_eq!(p.send_at(&c, 2, 12 * s, 10, 150), 100 + 2 * s);
        assert_eq!(p.send_at(&c, 3, 13 * s, 10, 150), 100 + 3 * s);
        // Past the last sequence at start: at once.
        assert!(p.immediate(&c));
        assert_eq!(p.send_at(&c, 4, 20 * s, 10, 200), 200);
    }

    #[test]
    fn rate_limit_spaces_sends_after_the_burst() {
        // 8 Mbit/s: one byte a microsecond.
        let c = cfg(ReplayPolicy::Instant, 8_000_000);
        let mut p = Pace::new(&c, 0);
        let mut last = 0;
        for _ in 0..2 {
            // A full burst goes at once.
            last = p.send_at(&c, 1, 0, RATE_BURST_BYTES / 2, 0);
            assert_eq!(last, 0);
        }
        let next = p.send_at(&c, 1, 0, RATE_BURST_BYTES / 2, 0);
        assert!(next > last, "{next}");
        assert_eq!(next, 524_288_000, "{next}");
    }
}
