//! [`EntryCount`]: an index's live entry count and its distinct values,
//! counted on first use.
//!
//! Counting every index at open made opening cost a scan of every index
//! (about 1 µs per entry); the count is needed only by the entry guard
//! (when a limit is set), the planner and
//! [`Collections::index_entries`](crate::Collections::index_entries).
//! So it is counted once, when first asked for, at a snapshot: entries at
//! or below the snapshot's revision are in the scan, and each commit's
//! delta is added only if it committed after it.
//!
//! The same scan counts distinct values (keys sort by value, then id, so a
//! value begins where the leading encoded value changes). That figure is
//! not kept current — a commit's delta does not say whether a value
//! appeared or vanished — so the planner uses the ratio of the scan,
//! entries per distinct value, as the classic uniform-distribution
//! estimate of an equality's rows (System R; SQLite's `sqlite_stat1` keeps
//! the same average). A build or drop of the index counts again.

use crate::error::Result;
use crate::keycodec;
use aurora_storage::{Revision, Snapshot};
use parking_lot::Mutex;

/// What the first scan found, and the entries kept current since.
#[derive(Debug, Clone, Copy)]
struct Counted {
    /// Live entries now.
    entries: isize,
    /// The revision the scan read at.
    at: Revision,
    /// Entries the scan saw.
    scanned: u64,
    /// Distinct leading values the scan saw.
    distinct: u64,
}

/// The count, or `None` until it is first needed.
#[derive(Debug, Default)]
pub(crate) struct EntryCount {
    known: Mutex<Option<Counted>>,
}

impl EntryCount {
    /// Adds a commit's delta: dropped while not counted yet or when the
    /// count's snapshot already holds it (`revision` at or below it).
    pub(crate) fn add(&self, delta: isize, revision: Revision) {
        if let Some(c) = self.known.lock().as_mut() {
            if revision > c.at {
                c.entries += delta;
            }
        }
    }

    /// The count, scanning `prefix` at `snapshot()` the first time. The
    /// lock is held while counting, so a commit reporting its delta
    /// meanwhile waits and is then counted exactly once.
    pub(crate) fn get(&self, snapshot: impl FnOnce() -> Result<Snapshot>, prefix: &[u8]) -> Result<isize> {
        Ok(self.counted(snapshot, prefix)?.entries)
    }

    /// Average entries per distinct value, as the first scan saw them
    /// (0.0 for an index that was empty then).
    pub(crate) fn entries_per_value(&self, snapshot: impl FnOnce() -> Result<Snapshot>, prefix: &[u8]) -> Result<f64> {
        let c = self.counted(snapshot, prefix)?;
        Ok(if c.distinct == 0 { 0.0 } else { c.scanned as f64 / c.distinct as f64 })
    }

    fn counted(&self, snapshot: impl FnOnce() -> Result<Snapshot>, prefix: &[u8]) -> Result<Counted> {
        let mut known = self.known.lock();
        if let Some(c) = *known {
            return Ok(c);
        }
        let snapshot = snapshot()?;
        let (mut scanned, mut distinct) = (0u64, 0u64);
        let mut last: Vec<u8> = Vec::new();
        for item in snapshot.iter_prefix(prefix)? {
            let (key, _, _) = item?;
            scanned += 1;
            let rest = key.get(prefix.len()..).unwrap_or_default();
            // An undecodable key counts as a value of its own here; reads
            // report it as corrupt where they meet it.
            let value = keycodec::encoded_len(rest).map_or(rest, |n| &rest[..n]);
            if scanned == 1 || value != last.as_slice() {
                distinct += 1;
                last.clear();
                last.extend_from_slice(value);
            }
        }
        let c = Counted { entries: scanned as isize, at: snapshot.revision(), scanned, distinct };
        *known = Some(c);
        Ok(c)
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

    #[test]
    fn distinct_values_are_counted_by_leading_encoded_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        // Six entries over three values (2, 3 and 1 ids each).
        for (value, id) in [(1, 1u8), (1, 2), (2, 1), (2, 2), (2, 3), (3, 9)] {
            let key = [b"p".as_slice(), &keycodec::encode(&aurora_core::Value::Int(value)), &[id]].concat();
            store.put(key, "").unwrap();
        }
        let count = EntryCount::default();
        assert_eq!(count.entries_per_value(|| Ok(store.snapshot()?), b"p").unwrap(), 2.0);
        assert_eq!(count.get(|| unreachable!("counted once"), b"p").unwrap(), 6);
        let empty = EntryCount::default();
        assert_eq!(empty.entries_per_value(|| Ok(store.snapshot()?), b"q").unwrap(), 0.0);
    }
}
