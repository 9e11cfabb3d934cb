//! Group commit for WAL fsyncs.
//!
//! Every Raft group on a node appends to the one shared WAL and then asks
//! for durability. One fsync makes every write before it durable, so callers
//! that arrive while an fsync is running should not each run their own:
//! they wait for it, and if their write was not covered (it landed after the
//! running fsync started), one of them runs the next fsync for all of them.
//! N concurrent callers cost about two fsyncs, not N.
//!
//! Coverage is tracked with a counter of completed writes. An fsync that
//! read the counter as `c` before starting covers the first `c` completed
//! writes; a caller whose own write made the counter reach `t <= c` is done.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Debug, Default)]
struct State {
    /// Completed writes known to be durable.
    durable: u64,
    /// An fsync is running (outside the lock).
    syncing: bool,
}

#[derive(Debug, Default)]
pub(crate) struct GroupSync {
    /// Writes that have returned from the engine, in completion order.
    written: AtomicU64,
    state: Mutex<State>,
    finished: Condvar,
    fsyncs: AtomicU64,
}

impl GroupSync {
    /// Call after each write has returned. Returns the write's number
    /// (1-based, in completion order).
    pub(crate) fn wrote(&self) -> u64 {
        self.written.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// fsyncs started so far (successful or not).
    pub(crate) fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::SeqCst)
    }

    /// `State` is only changed by plain assignments, never left half-done,
    /// so a lock poisoned by a panicking fsync is still consistent.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes every write that returned before this call durable, running
    /// `fsync` only if no finished or running fsync already covers them.
    /// Blocks the calling thread.
    pub(crate) fn sync(&self, fsync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        let target = self.written.load(Ordering::SeqCst);
        let mut state = self.lock();
        loop {
            if state.durable >= target {
                return Ok(());
            }
            if !state.syncing {
                break;
            }
            state = self
                .finished
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.syncing = true;
        drop(state);

        // Read after `syncing` is claimed and before the fsync starts: every
        // write counted here is already in the WAL the fsync will flush.
        let covers = self.written.load(Ordering::SeqCst);
        self.fsyncs.fetch_add(1, Ordering::SeqCst);
        let result = fsync();

        let mut state = self.lock();
        state.syncing = false;
        if result.is_ok() {
            state.durable = state.durable.max(covers);
        }
        drop(state);
        // On failure, waiters wake, see they are not covered, and retry
        // with their own fsync (which will most likely fail the same way).
        self.finished.notify_all();
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    #![allow(
        clippy::disallowed_methods,
        reason = "group commit is about real concurrent callers"
    )]

    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn nothing_written_needs_no_fsync() {
        let g = GroupSync::default();
        g.sync(|| panic!("no fsync expected")).unwrap();
        assert_eq!(g.fsyncs(), 0);
    }

    #[test]
    fn covered_write_is_not_synced_twice() {
        let g = GroupSync::default();
        g.wrote();
        g.sync(|| Ok(())).unwrap();
        g.sync(|| panic!("already durable")).unwrap();
        g.wrote();
        let mut ran = false;
        g.sync(|| {
            ran = true;
            Ok(())
        })
        .unwrap();
        assert!(ran);
        assert_eq!(g.fsyncs(), 2);
    }

    #[test]
    fn failed_fsync_is_reported_and_retried_by_next_caller() {
        let g = GroupSync::default();
        g.wrote();
        let err = g.sync(|| Err(io::Error::other("disk gone"))).unwrap_err();
        assert_eq!(err.to_string(), "disk gone");
        let mut ran = false;
        g.sync(|| {
            ran = true;
            Ok(())
        })
        .unwrap();
        assert!(ran, "a failed fsync must not count as durable");
    }

    #[test]
    fn callers_waiting_on_a_running_fsync_share_the_next_one() {
        const THREADS: usize = 8;
        let g = Arc::new(GroupSync::default());
        // Hold the first fsync open until every other thread has written
        // and is waiting, so their writes land after it started.
        let (started, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        g.wrote();
        let first = {
            let (g, started, release) = (g.clone(), started.clone(), release.clone());
            std::thread::spawn(move || {
                g.sync(|| {
                    started.wait();
                    release.wait();
                    Ok(())
                })
            })
        };
        started.wait();
        let ready = Arc::new(Barrier::new(THREADS + 1));
        let others: Vec<_> = (0..THREADS)
            .map(|_| {
                let (g, ready) = (g.clone(), ready.clone());
                std::thread::spawn(move || {
                    g.wrote();
                    ready.wait();
                    g.sync(|| Ok(()))
                })
            })
            .collect();
        ready.wait();
        // Every write is done before the first fsync finishes, so whichever
        // caller runs the second fsync covers them all, however the waiters
        // are scheduled.
        release.wait();
        first.join().unwrap().unwrap();
        for t in others {
            t.join().unwrap().unwrap();
        }
        assert_eq!(g.fsyncs(), 2, "{} callers", THREADS + 1);
    }

    #[test]
    fn sync_never_returns_before_its_write_is_covered() {
        // The fake disk makes durable exactly the writes completed when an
        // fsync starts. Free-running writers/syncers: after `sync` returns,
        // the caller's own write must be durable on the fake disk.
        use std::sync::atomic::AtomicU64;
        const THREADS: u64 = 4;
        const ROUNDS: u64 = 500;
        let g = Arc::new(GroupSync::default());
        let disk = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (g, disk) = (g.clone(), disk.clone());
                std::thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        let mine = g.wrote();
                        g.sync(|| {
                            let seen = g.written.load(Ordering::SeqCst);
                            std::thread::yield_now();
                            disk.fetch_max(seen, Ordering::SeqCst);
                            Ok(())
                        })
                        .unwrap();
                        assert!(
                            disk.load(Ordering::SeqCst) >= mine,
                            "write {mine} not durable"
                        );
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert!(g.fsyncs() <= THREADS * ROUNDS);
        assert!(g.fsyncs() >= ROUNDS);
    }
}
