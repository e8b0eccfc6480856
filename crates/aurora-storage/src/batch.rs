//! Write batches: the unit of atomic commit, with optional revision
//! conditions (compare-and-swap).

use crate::error::{printable_key, StorageError};

/// A commit revision. Revisions start at 1 and increase by one per committed
/// batch; `0` means "never written" (or deleted) in [`Condition`]s.
pub type Revision = u64;

/// One write in a [`Batch`].
///
/// Keys and values are encoded as byte strings (one length, then the
/// bytes in one piece), which in postcard — the WAL's encoding — is
/// exactly the form the derived sequence-of-`u8` encoding wrote before,
/// byte for byte, without a call per byte.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// Set `key` to `value`.
    Put {
        /// The key.
        #[serde(with = "crate::bytes")]
        key: Vec<u8>,
        /// The value.
        #[serde(with = "crate::bytes")]
        value: Vec<u8>,
    },
    /// Remove `key` (a no-op if absent, but still a recorded write).
    Delete {
        /// The key.
        #[serde(with = "crate::bytes")]
        key: Vec<u8>,
    },
    /// Set the key `prefix ++ revision` (8 bytes, big-endian) to `value`,
    /// where `revision` is the commit's own revision — an append to a log
    /// ordered by commit, written atomically with the rest of the batch.
    PutAtRevision {
        /// The key prefix.
        #[serde(with = "crate::bytes")]
        prefix: Vec<u8>,
        /// The value.
        #[serde(with = "crate::bytes")]
        value: Vec<u8>,
    },
    /// Like [`Op::PutAtRevision`], for one part of a value split across
    /// keys: sets `prefix ++ revision ++ part` (4 bytes, big-endian), so a
    /// large log entry becomes several small values in key order.
    PutAtRevisionPart {
        /// The key prefix.
        #[serde(with = "crate::bytes")]
        prefix: Vec<u8>,
        /// The part number.
        part: u32,
        /// This part of the value.
        #[serde(with = "crate::bytes")]
        value: Vec<u8>,
    },
}

impl Op {
    /// The key this operation writes (for `PutAtRevision`, its prefix).
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
            Op::PutAtRevision { prefix, .. } | Op::PutAtRevisionPart { prefix, .. } => prefix,
        }
    }

    /// The value written, `None` for a delete.
    pub fn value(&self) -> Option<&[u8]> {
        match self {
            Op::Put { value, .. } | Op::PutAtRevision { value, .. } | Op::PutAtRevisionPart { value, .. } => {
                Some(value)
            }
            Op::Delete { .. } => None,
        }
    }

    /// The key written at `revision` (only `PutAtRevision` depends on it).
    pub fn key_at(&self, revision: Revision) -> Vec<u8> {
        match self {
            Op::PutAtRevision { prefix, .. } => revision_key(prefix, revision),
            Op::PutAtRevisionPart { prefix, part, .. } => revision_part_key(prefix, revision, *part),
            other => other.key().to_vec(),
        }
    }
}

/// The key `prefix ++ revision` (big-endian, so keys sort by revision).
pub fn revision_key(prefix: &[u8], revision: Revision) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&revision.to_be_bytes());
    key
}

/// `prefix ++ revision ++ part`, all big-endian: the key of one part of a
/// split log entry (see [`Op::PutAtRevisionPart`]).
pub fn revision_part_key(prefix: &[u8], revision: Revision, part: u32) -> Vec<u8> {
    let mut key = revision_key(prefix, revision);
    key.extend_from_slice(&part.to_be_bytes());
    key
}

/// A precondition on a key's revision, checked atomically with the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The key.
    pub key: Vec<u8>,
    /// The revision that last wrote the key's live value; `0` means the key
    /// must be absent.
    pub revision: Revision,
    /// For an absence (`revision == 0`): the length of the key's *scope*,
    /// a prefix of it under which keys are usually written in increasing
    /// order (ids from a clock or a counter), or 0 for none. The store
    /// keeps the highest key it has held under each scope it was given,
    /// and a key above it is absent without a read (see
    /// [`Batch::require_new`]). Ignored for other conditions.
    pub scope: usize,
    /// Whether the store keeps `key`'s live revision in memory to decide
    /// this condition without a read (see
    /// [`Batch::require_watched_revision`]). The outcome is the same.
    pub watched: bool,
}

/// An atomic group of writes: all of them become visible and durable
/// together, or none does.
///
/// ```
/// use aurora_storage::Batch;
/// let mut b = Batch::new();
/// b.put(b"a".to_vec(), b"1".to_vec()).delete(b"b".to_vec()).require_absent(b"c".to_vec());
/// assert_eq!(b.ops().len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    pub(crate) conditions: Vec<Condition>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Put { key: key.into(), value: value.into() });
        self
    }

    /// Adds a put of `prefix ++ <this commit's revision>` (see [`Op::PutAtRevision`]).
    pub fn put_at_revision(&mut self, prefix: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::PutAtRevision { prefix: prefix.into(), value: value.into() });
        self
    }

    /// Adds a put of part `part` of a split value at `prefix ++ <this
    /// commit's revision> ++ part` (see [`Op::PutAtRevisionPart`]).
    pub fn put_at_revision_part(
        &mut self,
        prefix: impl Into<Vec<u8>>,
        part: u32,
        value: impl Into<Vec<u8>>,
    ) -> &mut Self {
        self.ops.push(Op::PutAtRevisionPart { prefix: prefix.into(), part, value: value.into() });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }

    /// Requires `key`'s live value to have been written at `revision`.
    pub fn require_revision(&mut self, key: impl Into<Vec<u8>>, revision: Revision) -> &mut Self {
        self.conditions.push(Condition { key: key.into(), revision, scope: 0, watched: false });
        self
    }

    /// Like [`Batch::require_revision`], for a key that most commits name
    /// and few write — a collection's definition, which every write to the
    /// collection is conditioned on. From the first such condition on, the
    /// store keeps the key's live revision in memory (the commit leader
    /// records every revision it commits for it), so the condition costs
    /// no read; the outcome is the same as `require_revision`'s. At most a
    /// few thousand keys are watched; conditions on keys past that bound
    /// are read.
    ///
    /// ```
    /// use aurora_storage::{Batch, Store, StoreConfig};
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path(), StoreConfig::default())?;
    /// let rev = store.put(b"schema", b"v1")?;
    /// for i in 0..3u8 {
    ///     let mut b = Batch::new();
    ///     b.require_watched_revision(b"schema".to_vec(), rev).put(vec![b'd', i], b"x".to_vec());
    ///     assert!(store.commit(b)?.revision().is_some());
    /// }
    /// assert_eq!(store.metrics().watched_conditions, 2, "read once, then from memory");
    /// let changed = store.put(b"schema", b"v2")?;
    /// let mut stale = Batch::new();
    /// stale.require_watched_revision(b"schema".to_vec(), rev).put(b"d9".to_vec(), b"x".to_vec());
    /// assert!(store.commit(stale)?.revision().is_none(), "the definition changed: refused");
    /// let mut fresh = Batch::new();
    /// fresh.require_watched_revision(b"schema".to_vec(), changed).put(b"d9".to_vec(), b"x".to_vec());
    /// assert!(store.commit(fresh)?.revision().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn require_watched_revision(&mut self, key: impl Into<Vec<u8>>, revision: Revision) -> &mut Self {
        self.conditions.push(Condition { key: key.into(), revision, scope: 0, watched: true });
        self
    }

    /// Requires `key` to be absent, like [`Batch::require_absent`], for a
    /// key that is probably new: its first `scope` bytes are a prefix under
    /// which keys mostly arrive in increasing order (a collection's ids
    /// made from a clock, as UUID v7 ids are, or from a counter). The
    /// commit then decides absence without reading the key when it sorts
    /// above every key the store has held under that prefix — the common
    /// case costs no read; any other key is read as for `require_absent`.
    /// The outcome is the same either way. A `scope` of 0, or not shorter
    /// than the key, is a plain `require_absent`.
    ///
    /// ```
    /// use aurora_storage::{Batch, Store, StoreConfig};
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path(), StoreConfig::default())?;
    /// for id in [b"ids/0001", b"ids/0002"] {
    ///     let mut b = Batch::new();
    ///     b.require_new(id.to_vec(), 4).put(id.to_vec(), b"x".to_vec());
    ///     assert!(store.commit(b)?.revision().is_some());
    /// }
    /// let mut again = Batch::new();
    /// again.require_new(b"ids/0001".to_vec(), 4).put(b"ids/0001".to_vec(), b"y".to_vec());
    /// assert!(store.commit(again)?.revision().is_none(), "taken: the condition fails");
    /// assert_eq!(store.metrics().absences_by_order, 2, "the new ids cost no read");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn require_new(&mut self, key: impl Into<Vec<u8>>, scope: usize) -> &mut Self {
        self.conditions.push(Condition { key: key.into(), revision: 0, scope, watched: false });
        self
    }

    /// Requires `key` to be absent.
    pub fn require_absent(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.require_revision(key, 0)
    }

    /// The writes, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The preconditions.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// The writes, for callers that merge several plans into one batch.
    pub fn ops_mut(&mut self) -> &mut Vec<Op> {
        &mut self.ops
    }

    /// The preconditions, for callers that merge several plans into one batch.
    pub fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Total bytes of keys and values.
    pub fn byte_size(&self) -> usize {
        self.ops.iter().map(|op| op.key().len() + op.value().map_or(0, <[u8]>::len)).sum()
    }
}

/// The result of a commit whose I/O succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum CommitOutcome {
    /// Committed at this revision.
    Committed(Revision),
    /// A [`Condition`] did not hold; nothing was written.
    ConditionFailed {
        /// The key whose condition failed.
        key: Vec<u8>,
        /// The revision the condition expected.
        expected: Revision,
        /// The key's actual revision (`0` if absent).
        actual: Revision,
    },
}

impl CommitOutcome {
    /// The commit revision, if committed.
    pub fn revision(&self) -> Option<Revision> {
        match self {
            CommitOutcome::Committed(r) => Some(*r),
            CommitOutcome::ConditionFailed { .. } => None,
        }
    }

    /// The commit revision, or [`StorageError::ConditionFailed`] — for
    /// callers that treat a failed condition as an error.
    pub fn into_result(self) -> Result<Revision, StorageError> {
        match self {
            CommitOutcome::Committed(r) => Ok(r),
            CommitOutcome::ConditionFailed { key, expected, actual } => {
                Err(StorageError::ConditionFailed { key: printable_key(&key), expected, actual })
            }
        }
    }
}
