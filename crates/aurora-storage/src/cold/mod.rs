//! The cold store: the persistent, ordered key-value backend beneath the WAL.
//!
//! [`ColdStore`] is the seam between Aurora and a concrete engine. Today the
//! only implementation is the sled 0.34 one ([`SledStore`]); no `sled` type
//! crosses this module. Every call into a backend goes through a panic
//! boundary (`guarded`): a backend panic becomes a typed error. Values carry the revision that wrote them and
//! deletes leave revisioned tombstones until purged — etcd's data model, so
//! that revision-named reads and compare-and-swap mean the same thing on a
//! replicated backend later (see ARCHITECTURE.md for how one fits).

pub mod fill_order;
pub(crate) mod guarded;
pub(crate) mod resident;
pub(crate) mod sled_store;

pub use sled_store::SledStore;

use crate::batch::Revision;
use crate::error::Result;
use std::ops::Bound;

/// Opens a cold store: called once by
/// [`Store::open_with_backend`](crate::Store::open_with_backend) with the
/// directory `dir/cold` and the page-cache size in bytes.
pub type OpenBackend = dyn FnMut(&std::path::Path, u64) -> Result<std::sync::Arc<dyn ColdStore>>;

/// A stored version of a key: the revision that wrote it and its value
/// (`None` for a tombstone left by a delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The revision of the write.
    pub revision: Revision,
    /// The value, or `None` for a delete tombstone.
    pub value: Option<Vec<u8>>,
}

/// An item of a [`ColdStore::scan`]: a key and its latest version.
pub type ScanItem = Result<(Vec<u8>, Versioned)>;

/// A boxed iterator over a key range, in key order. It owns what it needs,
/// so it may outlive the call (and the store handle) that made it.
pub type ScanIter = Box<dyn Iterator<Item = ScanItem> + Send>;

/// A persistent, ordered key-value store with revisioned values.
///
/// The engine in front of it owns atomicity and durability: every write
/// reaches a `ColdStore` only after its WAL record is on stable storage, so
/// [`ColdStore::apply`] need not be atomic and the store may persist its
/// writes at any moment. What it must guarantee: after [`ColdStore::flush`]
/// returns, everything applied before it (including the checkpoint
/// revision) survives a crash.
pub trait ColdStore: Send + Sync + 'static {
    /// The latest version of `key`, tombstones included.
    fn get(&self, key: &[u8]) -> Result<Option<Versioned>>;

    /// Latest versions of the keys in a range, in key order, tombstones included.
    fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter;

    /// Like [`ColdStore::scan`], in descending key order. The default
    /// collects the forward scan and reverses it; a backend that can walk
    /// backwards lazily should.
    fn scan_rev(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter {
        let mut items: Vec<ScanItem> = self.scan(start, end).collect();
        items.reverse();
        Box::new(items.into_iter())
    }

    /// Writes each `(key, version)`; a version replaces the key's current one.
    fn apply(&self, writes: &mut dyn Iterator<Item = (&[u8], &Versioned)>) -> Result<()>;

    /// Records that every revision up to `revision` has been applied; made
    /// durable by the next [`ColdStore::flush`].
    fn set_checkpoint(&self, revision: Revision) -> Result<()>;

    /// The last checkpoint revision that was flushed (0 for a new store).
    fn checkpoint(&self) -> Result<Revision>;

    /// Makes everything applied so far durable.
    fn flush(&self) -> Result<()>;

    /// Removes tombstones written at or before `horizon`, unless the key was
    /// rewritten meanwhile. Returns how many were removed.
    fn purge_tombstones(&self, horizon: Revision) -> Result<usize>;

    /// Like [`ColdStore::purge_tombstones`] for the given keys only (those
    /// the engine applied deletes to since its last full purge): a purge
    /// then costs what was deleted, not a scan of the whole store. The
    /// default scans everything, which removes at least as much.
    fn purge_tombstones_of(&self, keys: &mut dyn Iterator<Item = &[u8]>, horizon: Revision) -> Result<usize> {
        let _ = keys;
        self.purge_tombstones(horizon)
    }

    /// Bytes the store occupies on disk.
    fn disk_bytes(&self) -> Result<u64>;
}
