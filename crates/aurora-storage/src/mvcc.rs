//! Multi-version reads: pinned snapshots and the history that serves them.
//!
//! The stores keep only the latest version of each key. While at least one
//! snapshot is pinned, the commit leader records, for every key it writes,
//! the version that write replaces (`None` if the key was absent), keyed by
//! the key and the revision that superseded it. A read at snapshot `S` takes
//! the latest version if it is at or before `S`; otherwise the history entry
//! with the smallest superseding revision after `S` holds the version that
//! was current at `S`. History is kept in memory only (snapshots do not
//! survive a restart) and dropped as soon as no pinned snapshot needs it.
//!
//! Ordering: the leader records history and publishes the group's revision
//! under the pin lock, and pinning reads the published revision under the
//! same lock, so a snapshot either sees a group's writes or finds their
//! history.

use crate::batch::Revision;
use crate::cold::Versioned;
use parking_lot::{Mutex, MutexGuard, RwLock};
use std::collections::BTreeMap;
use std::ops::Bound;

/// Pinned snapshot revisions and the history they need.
#[derive(Default)]
pub(crate) struct Mvcc {
    pins: Mutex<BTreeMap<Revision, usize>>,
    history: RwLock<History>,
}

#[derive(Default)]
struct History {
    /// (key, superseded at) → the version that was replaced.
    by_key: BTreeMap<(Vec<u8>, Revision), Option<Versioned>>,
    /// superseded at → keys, for dropping what no snapshot needs.
    by_revision: BTreeMap<Revision, Vec<Vec<u8>>>,
}

/// Held by the commit leader from recording history to publishing.
pub(crate) struct PinGuard<'a> {
    pins: MutexGuard<'a, BTreeMap<Revision, usize>>,
}

impl PinGuard<'_> {
    /// Whether any snapshot is pinned (so history must be recorded).
    pub(crate) fn any(&self) -> bool {
        !self.pins.is_empty()
    }
}

impl Mvcc {
    /// Locks the pin set for a commit.
    pub(crate) fn lock_pins(&self) -> PinGuard<'_> {
        PinGuard { pins: self.pins.lock() }
    }

    /// Pins `current()` (read under the pin lock) and returns it.
    pub(crate) fn pin(&self, current: impl FnOnce() -> Revision) -> Revision {
        let mut pins = self.pins.lock();
        let rev = current();
        *pins.entry(rev).or_default() += 1;
        rev
    }

    /// Releases a pin and drops history no remaining snapshot needs.
    ///
    /// The pin lock is held while pruning (lock order: pins, then history,
    /// as for the commit leader): released earlier, a snapshot pinned and a
    /// commit recorded for it in between would have that fresh history
    /// pruned by the older view of the pins ("no pin left: clear all"), and
    /// the snapshot would then read a superseded document as absent.
    pub(crate) fn unpin(&self, rev: Revision) {
        let mut pins = self.pins.lock();
        if let Some(n) = pins.get_mut(&rev) {
            *n -= 1;
            if *n == 0 {
                pins.remove(&rev);
            }
        }
        let min = pins.keys().next().copied();
        let mut h = self.history.write();
        match min {
            None => {
                h.by_key.clear();
                h.by_revision.clear();
            }
            Some(min) => {
                // A snapshot at `min` needs entries superseded after `min`.
                let keep = h.by_revision.split_off(&(min + 1));
                let dropped = std::mem::replace(&mut h.by_revision, keep);
                for (rev, keys) in dropped {
                    for key in keys {
                        h.by_key.remove(&(key, rev));
                    }
                }
            }
        }
    }

    /// The lowest pinned revision, if any.
    pub(crate) fn min_pinned(&self) -> Option<Revision> {
        self.pins.lock().keys().next().copied()
    }

    /// Records that `key`'s version `previous` was superseded at `at`.
    pub(crate) fn record(&self, key: Vec<u8>, at: Revision, previous: Option<Versioned>) {
        let mut h = self.history.write();
        h.by_revision.entry(at).or_default().push(key.clone());
        h.by_key.insert((key, at), previous);
    }

    /// The version of `key` current at `snapshot`, if history knows it:
    /// `Some(version)` (which may be `None`, absent), or `None` if no write
    /// after `snapshot` was recorded for the key.
    pub(crate) fn lookup(&self, key: &[u8], snapshot: Revision) -> Option<Option<Versioned>> {
        let h = self.history.read();
        let from = (key.to_vec(), snapshot + 1);
        h.by_key
            .range((Bound::Included(from), Bound::Unbounded))
            .next()
            .filter(|((k, _), _)| k.as_slice() == key)
            .map(|(_, v)| v.clone())
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn history_len(&self) -> usize {
        self.history.read().by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(rev: Revision) -> Option<Versioned> {
        Some(Versioned { revision: rev, value: Some(vec![rev as u8]) })
    }

    #[test]
    fn lookup_finds_the_version_current_at_the_snapshot() {
        let m = Mvcc::default();
        let s = m.pin(|| 3);
        m.record(b"k".to_vec(), 5, v(2));
        m.record(b"k".to_vec(), 8, v(5));
        m.record(b"a".to_vec(), 6, None);
        assert_eq!(m.lookup(b"k", 3), Some(v(2)));
        assert_eq!(m.lookup(b"k", 5), Some(v(5)));
        assert_eq!(m.lookup(b"k", 8), None);
        assert_eq!(m.lookup(b"a", 3), Some(None));
        assert_eq!(m.lookup(b"b", 3), None);
        let s2 = m.pin(|| 6);
        m.unpin(s);
        assert_eq!(m.history_len(), 1, "only what the snapshot at 6 needs");
        assert_eq!(m.lookup(b"k", 6), Some(v(5)));
        m.unpin(s2);
        assert_eq!(m.history_len(), 0);
        assert_eq!(m.min_pinned(), None);
    }
}
