//! [`EntryCount`]: an index's live entry count, counted on first use.
//!
//! Counting every index at open made opening cost a scan of every index
//! (about 1 µs per entry); the count is needed only by the entry guard
//! (when a limit is set) and [`Collections::index_entries`](crate::Collections::index_entries).
//! So it is counted once, when first asked for, at a snapshot: entries at
//! or below the snapshot's revision are in the scan, and each commit's
//! delta is added only if it committed after it.

use crate::error::Result;
use aurora_storage::{Revision, Snapshot};
use parking_lot::Mutex;

/// The count, or `None` until it is first needed.
#[derive(Debug, Default)]
pub(crate) struct EntryCount {
    /// The live entries and the revision they were counted at.
    known: Mutex<Option<(isize, Revision)>>,
}

impl EntryCount {
    /// Adds a commit's delta: dropped while not counted yet or when the
    /// count's snapshot already holds it (`revision` at or below it).
    pub(crate) fn add(&self, delta: isize, revision: Revision) {
        if let Some((n, at)) = self.known.lock().as_mut() {
            if revision > *at {
                *n += delta;
            }
        }
    }

    /// The count, scanning `prefix` at `snapshot()` the first time. The
    /// lock is held while counting, so a commit reporting its delta
    /// meanwhile waits and is then counted exactly once.
    pub(crate) fn get(&self, snapshot: impl FnOnce() -> Result<Snapshot>, prefix: &[u8]) -> Result<isize> {
        let mut known = self.known.lock();
        if let Some((n, _)) = *known {
            return Ok(n);
        }
        let snapshot = snapshot()?;
        let mut n: isize = 0;
        for item in snapshot.iter_prefix(prefix)? {
            item?;
            n += 1;
        }
        *known = Some((n, snapshot.revision()));
        Ok(n)
    }

    /// Forgets the count (after a build or a drop rewrote the index): the
    /// next use counts again.
    pub(crate) fn reset(&self) {
        *self.known.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aurora_storage::{Store, StoreConfig};

    #[test]
    fn counts_at_a_snapshot_and_adds_only_later_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        for i in 0..5u8 {
            store.put([b'p', i], "v").unwrap();
        }
        let count = EntryCount::default();
        count.add(100, 3); // before the first count: in the scan, dropped
        let n = count.get(|| Ok(store.snapshot()?), b"p").unwrap();
        assert_eq!(n, 5);
        count.add(7, 5); // revision 5 is in the snapshot
        assert_eq!(count.get(|| unreachable!("counted once"), b"p").unwrap(), 5);
        count.add(2, 6);
        assert_eq!(count.get(|| unreachable!("counted once"), b"p").unwrap(), 7);
        count.reset();
        assert_eq!(count.get(|| Ok(store.snapshot()?), b"p").unwrap(), 5, "counted again after a reset");
    }
}
