//! Fail-stop on storage errors: after a failed fsync nothing is carried
//! past it.
//!
//! When `fsync` fails, the kernel may already have dropped the dirty pages
//! it could not write, and a later `fsync` can succeed without them (the
//! "fsyncgate" lesson, PostgreSQL 2018). A node that logged the error and
//! went on would ack and vote on data that is not on disk. So the first
//! failed sync or write of the store raises the node's [`Fatal`] latch;
//! from then on every write and sync fails at once (the node neither acks
//! nor votes again), and whoever assembled the node (`jetraft server`, the
//! simulation) watches the latch and stops the node. Engine crates never
//! exit the process: they raise the latch they were given.

use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::{Engine, View, WriteBatch};

type Hook = Box<dyn FnOnce(&str) + Send>;

#[derive(Default)]
struct Inner {
    reason: OnceLock<String>,
    hooks: Mutex<Vec<Hook>>,
}

/// A node's fatal latch: raised once, never lowered. Clones share it.
#[derive(Clone, Default)]
pub struct Fatal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fatal")
            .field("reason", &self.reason())
            .finish()
    }
}

impl Fatal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the latch with `reason` (what failed and why). Only the first
    /// raise counts; returns whether this call was it. Runs the hooks
    /// registered with [`Fatal::on_raise`].
    pub fn raise(&self, reason: impl Into<String>) -> bool {
        let reason = reason.into();
        if self.inner.reason.set(reason).is_err() {
            return false;
        }
        let hooks = std::mem::take(
            &mut *self
                .inner
                .hooks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let why = self.reason().unwrap_or_default();
        for hook in hooks {
            hook(why);
        }
        true
    }

    pub fn is_raised(&self) -> bool {
        self.inner.reason.get().is_some()
    }

    /// What failed, once raised.
    pub fn reason(&self) -> Option<&str> {
        self.inner.reason.get().map(String::as_str)
    }

    /// Calls `hook` with the reason when the latch is raised (at once if it
    /// already is).
    pub fn on_raise(&self, hook: impl FnOnce(&str) + Send + 'static) {
        let mut hooks = self
            .inner
            .hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Checked under the hooks lock: `raise` sets the reason before it
        // takes the hooks, so a hook is either taken by it or run here.
        match self.reason() {
            Some(why) => {
                drop(hooks);
                hook(why);
            }
            None => hooks.push(Box::new(hook)),
        }
    }

    /// Fails once the latch is raised.
    pub fn check(&self) -> io::Result<()> {
        match self.reason() {
            None => Ok(()),
            Some(why) => Err(stopped(why)),
        }
    }
}

fn stopped(why: &str) -> io::Error {
    io::Error::other(format!("node stopped after a fatal storage error: {why}"))
}

/// An [`Engine`] that raises `fatal` on the first failed write or sync of
/// `inner`, and from then on fails every write and sync without touching
/// `inner`. Reads pass through (a stopping node may still be asked for
/// them; they change nothing).
pub struct FailStop {
    inner: Arc<dyn Engine>,
    fatal: Fatal,
}

impl FailStop {
    pub fn new(inner: Arc<dyn Engine>, fatal: Fatal) -> Self {
        Self { inner, fatal }
    }

    pub fn fatal(&self) -> &Fatal {
        &self.fatal
    }
}

impl Engine for FailStop {
    fn write(&self, batch: WriteBatch) -> io::Result<()> {
        self.fatal.check()?;
        // A malformed batch is refused before anything is written: a bug
        // of the caller, not a disk that lost data.
        batch.validate()?;
        self.inner.write(batch).inspect_err(|e| {
            self.fatal.raise(format!("store write failed: {e}"));
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.fatal.check()?;
        self.inner.sync().inspect_err(|e| {
            self.fatal.raise(format!("store fsync failed: {e}"));
        })
    }

    fn frozen(&self) -> io::Result<Arc<dyn View>> {
        self.inner.frozen()
    }

    fn sequence(&self) -> u64 {
        self.inner.sequence()
    }
}

crate::view_through!(FailStop, inner);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Cf;
    use crate::faulty::FaultyEngine;
    use crate::mem::MemEngine;

    fn batch(key: &[u8]) -> WriteBatch {
        let mut b = WriteBatch::new();
        b.put(Cf::State, key.to_vec(), b"v".to_vec());
        b
    }

    #[test]
    fn the_first_failed_sync_stops_every_later_write_and_sync() {
        let mem = MemEngine::new();
        let faulty = FaultyEngine::new(Arc::new(mem.clone()));
        faulty.fail_sync_after(1);
        let fatal = Fatal::new();
        let seen = Arc::new(Mutex::new(None::<String>));
        let seen2 = seen.clone();
        fatal.on_raise(move |why| *seen2.lock().unwrap() = Some(why.to_string()));
        let e = FailStop::new(Arc::new(faulty.clone()), fatal.clone());

        e.write(batch(b"a")).unwrap();
        e.sync().unwrap();
        e.write(batch(b"b")).unwrap();
        assert!(e.sync().is_err(), "the second sync is the injected failure");
        assert!(fatal.is_raised());
        let why = seen.lock().unwrap().clone().unwrap();
        assert!(why.contains("fsync failed"), "{why}");
        // The disk would take these now (the fault fired once), but the
        // node must not carry anything past the failed sync.
        assert!(e.write(batch(b"c")).is_err());
        assert!(e.sync().is_err());
        assert_eq!(mem.get(Cf::State, b"c").unwrap(), None);
        assert_eq!(faulty.syncs(), 2, "nothing reached the engine after it");
        // Reads still work.
        assert_eq!(e.get(Cf::State, b"a").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn a_failed_write_is_fatal_but_an_invalid_batch_is_not() {
        let mem = MemEngine::new();
        let fatal = Fatal::new();
        let e = FailStop::new(Arc::new(mem.clone()), fatal.clone());
        let mut bad = WriteBatch::new();
        bad.delete_range(Cf::State, b"z".to_vec(), b"a".to_vec());
        assert!(e.write(bad).is_err());
        assert!(!fatal.is_raised(), "a caller's bug is not a disk error");
        mem.set_faults(crate::mem::Faults {
            fail_writes: true,
            fail_syncs: false,
        });
        assert!(e.write(batch(b"a")).is_err());
        assert!(fatal.reason().unwrap().contains("store write failed"));
    }

    #[test]
    fn a_hook_registered_after_the_raise_runs_at_once_and_only_the_first_raise_counts() {
        let fatal = Fatal::new();
        assert!(fatal.raise("first"));
        assert!(!fatal.raise("second"));
        let (tx, rx) = std::sync::mpsc::channel();
        fatal.on_raise(move |why| tx.send(why.to_string()).unwrap());
        assert_eq!(rx.recv().unwrap(), "first");
    }
}
