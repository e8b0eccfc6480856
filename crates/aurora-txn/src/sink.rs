//! The change sink: where committed changes go, in commit order.

use aurora_core::{DocId, Document};
use aurora_storage::Revision;
use std::sync::Arc;

/// What a change did to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ChangeKind {
    /// The document did not exist before.
    Insert,
    /// The document existed and still exists.
    Update,
    /// The document existed and no longer does.
    Delete,
}

/// One document change of a committed transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The collection.
    pub collection: String,
    /// The document id.
    pub id: DocId,
    /// Insert, update or delete.
    pub kind: ChangeKind,
    /// The document before (absent for inserts).
    pub old: Option<Arc<Document>>,
    /// The document after (absent for deletes).
    pub new: Option<Arc<Document>>,
}

/// A committed transaction's changes, handed to the sink once, in commit
/// order.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The commit sequence number (the storage revision): strictly
    /// increasing across commits.
    pub sequence: Revision,
    /// The transaction's id.
    pub transaction_id: u64,
    /// Its document changes, in (collection, id) order.
    pub changes: Vec<Change>,
}

/// Receives every committed transaction, in commit order, exactly once.
///
/// `publish` runs on the committing thread while later commits wait, so it
/// must be quick and must not block (hand the value to a channel). It is
/// never called for a transaction that did not commit.
pub trait ChangeSink: Send + Sync + 'static {
    /// Takes one committed transaction.
    fn publish(&self, committed: Committed);
}

/// A sink that drops everything (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSink;

impl ChangeSink for NoSink {
    fn publish(&self, _: Committed) {}
}

/// Watches commits alongside the [`ChangeSink`]: registered at run time
/// with [`crate::Database::observe`], called by reference on the committing
/// thread, in commit order, before the sink. Same rules as a sink: quick,
/// never blocking.
pub trait CommitObserver: Send + Sync + 'static {
    /// Sees one committed transaction.
    fn observe(&self, committed: &Committed);
}
