//! [`Guarded`]: the panic boundary around a [`ColdStore`].
//!
//! A backend that panics (sled 0.34 does on some damaged data files, during
//! open and during reads) must not unwind through Aurora's API. Every call
//! into the backend runs under `catch_unwind`; a panic becomes
//! [`StorageError::Corrupt`], and from then on the backend is never called
//! again — its internal state is unknown — so every later call fails with
//! the same error until the store is reopened.

use super::{ColdStore, ScanIter, Versioned};
use crate::batch::Revision;
use crate::error::{Result, StorageError};
use parking_lot::Mutex;
use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the key field of the error names.
const WHERE: &str = "(cold store)";

/// Runs `f`, turning a panic into [`StorageError::Corrupt`] that says what
/// the engine was doing.
pub(crate) fn catch<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(panicked(what, payload.as_ref())))
}

fn panicked(what: &str, payload: &(dyn std::any::Any + Send)) -> StorageError {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".into());
    let msg: String = msg.chars().take(512).collect();
    tracing::error!(what, panic = %msg, "the cold-store backend panicked; it is not used again until reopened");
    StorageError::Corrupt { key: WHERE.into(), reason: format!("the cold-store backend panicked while {what}: {msg}") }
}

/// A [`ColdStore`] whose calls cannot unwind into the caller.
pub(crate) struct Guarded {
    inner: Arc<dyn ColdStore>,
    broken: Arc<Broken>,
}

/// The first panic's error, once there was one. The flag is what every
/// call checks (one atomic load: scans check it at every step); the
/// reason is read only once it is set.
#[derive(Default)]
struct Broken {
    flag: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Guarded {
    pub(crate) fn new(inner: Arc<dyn ColdStore>) -> Self {
        Self { inner, broken: Arc::new(Broken::default()) }
    }

    fn call<T>(&self, what: &str, f: impl FnOnce(&dyn ColdStore) -> Result<T>) -> Result<T> {
        guarded_call(&self.broken, what, || f(self.inner.as_ref()))
    }
}

fn guarded_call<T>(broken: &Broken, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if broken.flag.load(Ordering::Acquire) {
        if let Some(reason) = broken.reason.lock().clone() {
            return Err(StorageError::Corrupt { key: WHERE.into(), reason });
        }
    }
    let out = catch(what, f);
    if let Err(StorageError::Corrupt { key, reason }) = &out {
        if key == WHERE {
            broken.reason.lock().get_or_insert_with(|| reason.clone());
            broken.flag.store(true, Ordering::Release);
        }
    }
    out
}

/// A scan whose every step runs behind the same boundary.
struct GuardedIter {
    inner: ScanIter,
    broken: Arc<Broken>,
    done: bool,
}

impl Iterator for GuardedIter {
    type Item = super::ScanItem;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let inner = &mut self.inner;
        let item = guarded_call(&self.broken, "scanning", || Ok(inner.next()));
        match item {
            Ok(next) => next,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl ColdStore for Guarded {
    fn get(&self, key: &[u8]) -> Result<Option<Versioned>> {
        self.call("reading a key", |c| c.get(key))
    }

    fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter {
        match self.call("starting a scan", |c| Ok(c.scan(start, end))) {
            Ok(inner) => Box::new(GuardedIter { inner, broken: Arc::clone(&self.broken), done: false }),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn scan_rev(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter {
        match self.call("starting a scan", |c| Ok(c.scan_rev(start, end))) {
            Ok(inner) => Box::new(GuardedIter { inner, broken: Arc::clone(&self.broken), done: false }),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn apply(&self, writes: &mut dyn Iterator<Item = (&[u8], &Versioned)>) -> Result<()> {
        self.call("applying writes", |c| c.apply(writes))
    }

    fn set_checkpoint(&self, revision: Revision) -> Result<()> {
        self.call("recording the checkpoint", |c| c.set_checkpoint(revision))
    }

    fn checkpoint(&self) -> Result<Revision> {
        self.call("reading the checkpoint", |c| c.checkpoint())
    }

    fn flush(&self) -> Result<()> {
        self.call("flushing", |c| c.flush())
    }

    fn purge_tombstones(&self, horizon: Revision) -> Result<usize> {
        self.call("purging tombstones", |c| c.purge_tombstones(horizon))
    }

    fn purge_tombstones_of(&self, keys: &mut dyn Iterator<Item = &[u8]>, horizon: Revision) -> Result<usize> {
        self.call("purging tombstones", |c| c.purge_tombstones_of(keys, horizon))
    }

    fn disk_bytes(&self) -> Result<u64> {
        self.call("measuring its size", |c| c.disk_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Bomb;

    impl ColdStore for Bomb {
        fn get(&self, _: &[u8]) -> Result<Option<Versioned>> {
            panic!("boom in get")
        }
        fn scan(&self, _: Bound<&[u8]>, _: Bound<&[u8]>) -> ScanIter {
            Box::new((0..).map(|i| {
                if i < 2 {
                    Ok((vec![i], Versioned { revision: 1, value: None }))
                } else {
                    panic!("boom in scan")
                }
            }))
        }
        fn apply(&self, _: &mut dyn Iterator<Item = (&[u8], &Versioned)>) -> Result<()> {
            Ok(())
        }
        fn set_checkpoint(&self, _: Revision) -> Result<()> {
            Ok(())
        }
        fn checkpoint(&self) -> Result<Revision> {
            Ok(0)
        }
        fn flush(&self) -> Result<()> {
            Ok(())
        }
        fn purge_tombstones(&self, _: Revision) -> Result<usize> {
            Ok(0)
        }
        fn disk_bytes(&self) -> Result<u64> {
            Ok(0)
        }
    }

    #[test]
    fn panics_become_corrupt_and_the_backend_is_not_used_again() {
        let g = Guarded::new(Arc::new(Bomb));
        assert_eq!(g.checkpoint().unwrap(), 0);
        let items: Vec<_> = g.scan(Bound::Unbounded, Bound::Unbounded).collect();
        assert_eq!(items.len(), 3, "two items, then the panic as an error, then the end");
        assert!(matches!(&items[2], Err(StorageError::Corrupt { reason, .. }) if reason.contains("boom in scan")));
        let err = g.checkpoint().unwrap_err();
        assert!(err.to_string().contains("boom in scan"), "{err}");
        let g = Guarded::new(Arc::new(Bomb));
        assert!(matches!(g.get(b"k"), Err(StorageError::Corrupt { .. })));
        assert!(g.flush().is_err());
    }
}
