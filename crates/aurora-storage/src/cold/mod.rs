//! The cold store: the persistent, ordered key-value backend beneath the WAL.
//!
//! [`ColdStore`] is the seam between Aurora and a concrete engine. Today the
//! only implementation is [`SledStore`](sled_store::SledStore); no `sled`
//! type crosses this module. The trait is shaped after etcd's data model so
//! that a replicated backend fits later: every key carries the revision that
//! last wrote it, deletes leave revisioned tombstones until compaction, and
//! groups of writes are applied atomically together with the highest
//! revision they contain.

pub(crate) mod sled_store;

use crate::batch::Revision;
use crate::error::Result;
use std::ops::Bound;

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
/// Implementations must make [`ColdStore::apply`] atomic (all writes of one
/// call or none survive a crash) and must recover, after a crash, to the
/// state of some prefix of the `apply` calls, with
/// [`ColdStore::applied_revision`] telling which.
pub trait ColdStore: Send + Sync + 'static {
    /// The latest version of `key`, tombstones included.
    fn get(&self, key: &[u8]) -> Result<Option<Versioned>>;

    /// Latest versions of the keys in a range, in key order, tombstones included.
    fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter;

    /// Atomically writes `writes` (each with its own revision) and records
    /// `last` as the applied revision.
    fn apply(&self, last: Revision, writes: Vec<(Vec<u8>, Versioned)>) -> Result<()>;

    /// The highest revision whose writes this store holds.
    fn applied_revision(&self) -> Result<Revision>;

    /// Makes everything applied so far durable.
    fn flush(&self) -> Result<()>;

    /// Removes tombstones written at or before `horizon`, unless the key was
    /// rewritten meanwhile. Returns how many were removed.
    fn purge_tombstones(&self, horizon: Revision) -> Result<usize>;

    /// Bytes the store occupies on disk.
    fn disk_bytes(&self) -> Result<u64>;
}
