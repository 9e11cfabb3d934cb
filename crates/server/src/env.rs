//! The node's environment: the one place where wall-clock time enters.
//! Production uses [`SystemClock`]; the simulation injects its own clock.

/// Wall-clock time in Unix nanoseconds. The leader stamps it into proposals;
/// replicas never read their own clock while applying.
pub trait Clock: Send + Sync + 'static {
    fn now_ns(&self) -> i64;
}

/// The operating system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the production environment is where real time comes from
    fn now_ns(&self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
    }
}
