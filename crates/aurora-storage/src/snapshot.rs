//! [`Snapshot`]: consistent reads at one revision.

use crate::batch::Revision;
use crate::cold::{ScanIter, Versioned};
use crate::error::Result;
use crate::merge::Merge;
use crate::store::{prefix_successor, Store};
use std::ops::Bound;
use std::sync::Arc;

/// A key, the revision that wrote its value, and the value.
pub type VersionedEntry = (Vec<u8>, Revision, Vec<u8>);

/// A consistent, read-only view of a [`Store`] as of one revision. Clones
/// share one pin; the revision is released when the last clone drops.
///
/// While a snapshot is alive, every read through it sees exactly the
/// writes committed at or before [`Snapshot::revision`], whatever commits
/// after. Writes committed meanwhile keep the versions they replace in
/// memory until the last snapshot that needs them is dropped, so keep
/// snapshots short-lived under heavy writes.
///
/// ```
/// use aurora_storage::{Store, StoreConfig};
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path(), StoreConfig::default())?;
/// store.put("k", "old")?;
/// let snap = store.snapshot()?;
/// store.put("k", "new")?;
/// store.delete("k")?;
/// assert_eq!(snap.get(b"k")?.as_deref(), Some(&b"old"[..]));
/// assert_eq!(store.get(b"k")?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Snapshot {
    pin: Arc<Pin>,
    revision: Revision,
}

/// Holds the revision pinned until the last clone of a snapshot drops.
struct Pin {
    store: Store,
    revision: Revision,
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.store.unpin(self.revision);
    }
}

/// A lazy, owning iterator over a snapshot's live entries in a key range
/// (see [`Snapshot::iter`]).
pub struct SnapshotIter {
    snapshot: Snapshot,
    inner: Merge<ScanIter>,
}

impl Iterator for SnapshotIter {
    type Item = Result<VersionedEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (key, latest) = match self.inner.next()? {
                Ok(item) => item,
                Err(e) => return Some(Err(e)),
            };
            let engine = match self.snapshot.pin.store.engine_for_snapshot() {
                Ok(engine) => engine,
                Err(e) => return Some(Err(e)),
            };
            if let Some(Versioned { revision, value: Some(value) }) =
                engine.resolve_at(&key, latest, self.snapshot.revision)
            {
                return Some(Ok((key, revision, value)));
            }
        }
    }
}

impl Snapshot {
    pub(crate) fn new(store: Store, revision: Revision) -> Self {
        Self { pin: Arc::new(Pin { store, revision }), revision }
    }

    /// Live entries of a key range at the snapshot, lazily, in key order:
    /// nothing is read ahead, so stopping early costs nothing.
    pub fn iter(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Result<SnapshotIter> {
        let inner = self.pin.store.engine_for_snapshot()?.scan(start, end)?;
        Ok(SnapshotIter { snapshot: self.clone(), inner })
    }

    /// Like [`Snapshot::iter`], in descending key order (lazily: the cold
    /// store walks backwards; the memtable's part of the range is copied
    /// first, as for a forward scan).
    pub fn iter_rev(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Result<SnapshotIter> {
        let inner = self.pin.store.engine_for_snapshot()?.scan_rev(start, end)?;
        Ok(SnapshotIter { snapshot: self.clone(), inner })
    }

    /// The revision this snapshot reads at.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The value of `key` at the snapshot.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get_versioned(key)?.map(|(_, v)| v))
    }

    /// The value of `key` at the snapshot with the revision that wrote it.
    pub fn get_versioned(&self, key: &[u8]) -> Result<Option<(Revision, Vec<u8>)>> {
        let v = self.pin.store.engine_for_snapshot()?.get_at_snapshot(key, self.revision)?;
        Ok(v.and_then(|v| v.value.map(|value| (v.revision, value))))
    }

    /// Live keys and values in a range at the snapshot, in key order.
    pub fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self.range_versioned(start, end)?.into_iter().map(|(k, _, v)| (k, v)).collect())
    }

    /// Like [`Snapshot::range`], with the revision that wrote each value.
    pub fn range_versioned(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Result<Vec<VersionedEntry>> {
        self.iter(start, end)?.collect()
    }

    /// Like [`Snapshot::iter`] over the keys starting with `prefix`.
    pub fn iter_prefix(&self, prefix: &[u8]) -> Result<SnapshotIter> {
        let end = prefix_successor(prefix);
        self.iter(Bound::Included(prefix), end.as_deref().map_or(Bound::Unbounded, Bound::Excluded))
    }

    /// Live keys and values starting with `prefix` at the snapshot.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = prefix_successor(prefix);
        self.range(Bound::Included(prefix), end.as_deref().map_or(Bound::Unbounded, Bound::Excluded))
    }

    /// The store this snapshot reads.
    pub fn store(&self) -> &Store {
        &self.pin.store
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("revision", &self.revision).finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Store, StoreConfig};
    use std::ops::Bound;

    /// Backwards equals forwards reversed: keys in the cold store and the
    /// memtable, overwritten and deleted, read at a snapshot taken between
    /// writes, with bounds.
    #[test]
    fn iter_rev_is_iter_reversed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        for i in 0..40u8 {
            store.put(vec![b'k', i], vec![i]).unwrap();
        }
        store.checkpoint().unwrap(); // into the cold store
        for i in (0..40u8).step_by(3) {
            store.put(vec![b'k', i], vec![i, 1]).unwrap();
        }
        for i in (1..40u8).step_by(7) {
            store.delete(vec![b'k', i]).unwrap();
        }
        let snap = store.snapshot().unwrap();
        for i in 0..40u8 {
            store.put(vec![b'k', i], vec![9]).unwrap();
        }
        type Range<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);
        let bounds: [Range<'_>; 3] = [
            (Bound::Unbounded, Bound::Unbounded),
            (Bound::Included(&[b'k', 5]), Bound::Excluded(&[b'k', 31])),
            (Bound::Excluded(&[b'k', 39]), Bound::Unbounded),
        ];
        for (lo, hi) in bounds {
            let mut forward: Vec<_> = snap.iter(lo, hi).unwrap().map(Result::unwrap).collect();
            forward.reverse();
            let backward: Vec<_> = snap.iter_rev(lo, hi).unwrap().map(Result::unwrap).collect();
            assert_eq!(backward, forward, "{lo:?}..{hi:?}");
        }
        assert!(snap.iter_rev(Bound::Unbounded, Bound::Unbounded).unwrap().next().is_some());
    }
}
