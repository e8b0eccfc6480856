//! The memtable: committed writes that are durable in the WAL but not yet
//! applied to the cold store.
//!
//! Commits land here (not in sled) so that a commit never waits on the
//! cold store: sled 0.34's atomic batches seal an I/O buffer each, and its
//! flush can stall writers for seconds. The applier thread moves the
//! `active` table to `frozen`, applies it to the cold store, and drops it.
//! Reads consult `active`, then `frozen`, then the cold store; the newest
//! revision wins.

use crate::cold::Versioned;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// A sorted table of the newest version per key.
pub(crate) type Table = BTreeMap<Vec<u8>, Versioned>;

/// Bytes charged per memtable entry beyond its key and value.
const ENTRY_OVERHEAD: usize = 64;

#[derive(Default)]
pub(crate) struct Memtable {
    active: Table,
    active_bytes: usize,
    frozen: Option<Arc<Table>>,
}

fn charge(key: &[u8], v: &Versioned) -> usize {
    key.len() + v.value.as_ref().map_or(0, Vec::len) + ENTRY_OVERHEAD
}

impl Memtable {
    /// Adds committed writes (in revision order).
    pub(crate) fn insert(&mut self, writes: Vec<(Vec<u8>, Versioned)>) {
        for (key, v) in writes {
            let key_len = key.len();
            self.active_bytes += charge(&key, &v);
            // One search of the tree per write: the replaced version comes
            // back from the insert.
            if let Some(old) = self.active.insert(key, v) {
                self.active_bytes -= key_len + old.value.as_ref().map_or(0, Vec::len) + ENTRY_OVERHEAD;
            }
        }
    }

    /// Bytes held by the active table.
    pub(crate) fn active_bytes(&self) -> usize {
        self.active_bytes
    }

    /// The newest version of `key` held here.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Versioned> {
        if self.active.is_empty() && self.frozen.is_none() {
            return None;
        }
        self.active.get(key).or_else(|| self.frozen.as_ref().and_then(|f| f.get(key))).cloned()
    }

    /// The highest key in a range in either table (tombstones included).
    pub(crate) fn last_key_in(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Option<Vec<u8>> {
        let bounds = (start.map(<[u8]>::to_vec), end.map(<[u8]>::to_vec));
        if bounds_empty(&bounds) {
            return None;
        }
        let last = |t: &Table| t.range(bounds.clone()).next_back().map(|(k, _)| k.clone());
        let frozen = self.frozen.as_deref().and_then(last);
        last(&self.active).max(frozen)
    }

    /// Moves the active table to `frozen` and returns it; `None` if empty
    /// or if the previous frozen table is still being applied.
    pub(crate) fn freeze(&mut self) -> Option<Arc<Table>> {
        if self.active.is_empty() || self.frozen.is_some() {
            return None;
        }
        let table = Arc::new(std::mem::take(&mut self.active));
        self.active_bytes = 0;
        self.frozen = Some(Arc::clone(&table));
        Some(table)
    }

    /// Drops the frozen table once the cold store holds it.
    pub(crate) fn release_frozen(&mut self) {
        self.frozen = None;
    }

    /// Copies of the entries in a range from both tables, newest winning.
    pub(crate) fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Vec<(Vec<u8>, Versioned)> {
        // Nothing to copy (the usual case once the applier has caught up):
        // skip copying the bounds and building the merged table.
        if self.active.is_empty() && self.frozen.is_none() {
            return Vec::new();
        }
        let mut merged: Table = BTreeMap::new();
        let bounds = (start.map(<[u8]>::to_vec), end.map(<[u8]>::to_vec));
        if bounds_empty(&bounds) {
            return Vec::new();
        }
        if let Some(f) = &self.frozen {
            merged.extend(f.range(bounds.clone()).map(|(k, v)| (k.clone(), v.clone())));
        }
        merged.extend(self.active.range(bounds).map(|(k, v)| (k.clone(), v.clone())));
        merged.into_iter().collect()
    }
}

/// Whether a range is empty or inverted (`BTreeMap::range` panics on those).
fn bounds_empty((start, end): &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e)) | (Bound::Excluded(s), Bound::Included(e)) => {
            s >= e
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(rev: u64, val: Option<&[u8]>) -> Versioned {
        Versioned { revision: rev, value: val.map(<[u8]>::to_vec) }
    }

    #[test]
    fn newest_wins_across_tables() {
        let mut m = Memtable::default();
        m.insert(vec![(b"a".to_vec(), v(1, Some(b"1"))), (b"b".to_vec(), v(1, Some(b"1")))]);
        let frozen = m.freeze().unwrap();
        assert_eq!(frozen.len(), 2);
        assert!(m.freeze().is_none(), "one frozen table at a time");
        m.insert(vec![(b"a".to_vec(), v(2, None))]);
        assert_eq!(m.get(b"a"), Some(v(2, None)));
        assert_eq!(m.get(b"b"), Some(v(1, Some(b"1"))));
        let all = m.range(Bound::Unbounded, Bound::Unbounded);
        assert_eq!(all, vec![(b"a".to_vec(), v(2, None)), (b"b".to_vec(), v(1, Some(b"1")))]);
        assert!(m.range(Bound::Included(b"b"), Bound::Excluded(b"a")).is_empty());
        m.release_frozen();
        assert_eq!(m.get(b"b"), None);
        assert_eq!(m.get(b"a"), Some(v(2, None)));
    }

    #[test]
    fn byte_accounting_tracks_replacements() {
        let mut m = Memtable::default();
        m.insert(vec![(b"k".to_vec(), v(1, Some(&[0; 100])))]);
        assert_eq!(m.active_bytes(), 1 + 100 + ENTRY_OVERHEAD);
        m.insert(vec![(b"k".to_vec(), v(2, Some(&[0; 10])))]);
        assert_eq!(m.active_bytes(), 1 + 10 + ENTRY_OVERHEAD);
        m.insert(vec![(b"k".to_vec(), v(3, None))]);
        assert_eq!(m.active_bytes(), 1 + ENTRY_OVERHEAD);
        m.freeze();
        assert_eq!(m.active_bytes(), 0);
    }
}
