//! Deliberate bugs, for proving the simulation's checker catches them.
//!
//! Compiled in only with the `sim-bugs` feature (which only the simulation
//! crate enables); without it [`enabled`] is a constant `false` and the
//! buggy branches vanish. With it, a bug is on only after [`enable`], which
//! only the simulation's `--bug` flag calls. One simulated run is one
//! process, so a process-wide switch is enough.

/// A bug the simulation can switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bug {
    /// Acknowledge Raft appends before the fsync that makes them durable
    /// (as if `sync = "always"` were ignored).
    AckBeforeFsync,
    /// Store every publish, ignoring `Nats-Msg-Id` deduplication.
    SkipDedup,
    /// Store a compare-and-set publish without checking
    /// `Nats-Expected-Last-Subject-Sequence`.
    SkipCasCheck,
    /// Answer reads "by the leader" without confirming leadership first (a
    /// deposed leader in a minority answers from what it has).
    StaleLeaderRead,
    /// Name a node in memory groups by its data directory's incarnation,
    /// as if a restart kept what it held in memory: a restarted replica
    /// then votes and acks in a memory stream it forgot.
    MemoryRemembers,
    /// Send every routed core NATS message to its node twice.
    RouteTwice,
    /// Open a route stream without this node's interest table: a peer that
    /// restarted, or whose stream broke, never learns what was subscribed
    /// before.
    SkipResync,
    /// A consumer leader that loads a consumer (after a leader change)
    /// forgets the deliveries made before: those never come again, as
    /// nats-server's consumers skipped messages after a failover (#7664).
    SkipRedelivery,
}

impl Bug {
    pub const ALL: [Bug; 8] = [
        Bug::AckBeforeFsync,
        Bug::SkipDedup,
        Bug::SkipCasCheck,
        Bug::StaleLeaderRead,
        Bug::MemoryRemembers,
        Bug::RouteTwice,
        Bug::SkipResync,
        Bug::SkipRedelivery,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeFsync => "ack-before-fsync",
            Bug::SkipDedup => "skip-dedup",
            Bug::SkipCasCheck => "skip-cas-check",
            Bug::StaleLeaderRead => "stale-leader-read",
            Bug::MemoryRemembers => "memory-remembers",
            Bug::RouteTwice => "route-twice",
            Bug::SkipResync => "skip-resync",
            Bug::SkipRedelivery => "skip-redelivery",
        }
    }

    pub fn from_name(name: &str) -> Option<Bug> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    #[cfg(feature = "sim-bugs")]
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

#[cfg(feature = "sim-bugs")]
static ENABLED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Whether `bug` is switched on in this process.
#[inline]
pub fn enabled(bug: Bug) -> bool {
    #[cfg(feature = "sim-bugs")]
    {
        ENABLED.load(std::sync::atomic::Ordering::Relaxed) & bug.bit() != 0
    }
    #[cfg(not(feature = "sim-bugs"))]
    {
        let _ = bug;
        false
    }
}

/// Switches `bug` on for the rest of this process. Returns false when the
/// build has no bugs compiled in.
pub fn enable(bug: Bug) -> bool {
    #[cfg(feature = "sim-bugs")]
    {
        ENABLED.fetch_or(bug.bit(), std::sync::atomic::Ordering::Relaxed);
        true
    }
    #[cfg(not(feature = "sim-bugs"))]
    {
        let _ = bug;
        false
    }
}
