//! The error type of `aurora-txn`.

use aurora_index::IndexError;
use aurora_storage::StorageError;

/// A specialised `Result` for transactions.
pub type Result<T, E = TxnError> = std::result::Result<T, E>;

/// Why a transaction or document operation failed. Nothing of a failed
/// commit was written and no change was published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TxnError {
    /// Another transaction committed a change to a document this one wrote
    /// (or, under `Serializable`, read) after this one's snapshot: first
    /// committer wins. Retrying the transaction usually succeeds.
    #[error("transaction conflict on {collection}/{id}: changed by a concurrent commit")]
    Conflict {
        /// The collection.
        collection: String,
        /// The document id.
        id: String,
    },
    /// `replace`/`update` of a document that does not exist.
    #[error("no document {id} in collection `{collection}`")]
    NotFound {
        /// The collection.
        collection: String,
        /// The document id.
        id: String,
    },
    /// The change feed no longer holds the requested history.
    #[error("the change feed was trimmed up to sequence {oldest}; sequence {requested} is no longer available: re-read the current state")]
    FeedTruncated {
        /// The sequence asked for.
        requested: u64,
        /// The highest trimmed sequence; ask for this or later.
        oldest: u64,
    },
    /// A feed position after the newest commit: nothing can be replayed
    /// from there, and listening from it would silently drop every change
    /// up to it. (A position from another database, or one remembered
    /// across a restore?)
    #[error("sequence {requested} is beyond the change feed's head {head}")]
    FeedAhead {
        /// The sequence asked for.
        requested: u64,
        /// The newest commit's sequence ([`crate::Database::feed_head`]).
        head: u64,
    },
    /// A feed entry names a version of a document that is no longer kept:
    /// the document was changed or deleted by a commit the feed did not
    /// record (made while the change feed was off,
    /// `change_feed_retention: 0`), so what this entry wrote is gone. The
    /// feed keeps no history written without it: re-read the current state
    /// (as after [`TxnError::FeedTruncated`]), then follow from the feed head.
    #[error("feed entry {sequence}: the version of {collection}/{id} it wrote was replaced while the change feed was off, and the feed keeps no history written without it: re-read the current state")]
    HistoryNotKept {
        /// The entry's sequence.
        sequence: u64,
        /// The document's collection.
        collection: String,
        /// The document's id.
        id: String,
    },
    /// The transaction's own logic refused to go on (for example, a job
    /// enqueued inside it was invalid); nothing was written.
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// The transaction was already committed or rolled back.
    #[error("the transaction is already finished")]
    Finished,
    /// An update operator that does not apply (incrementing a string,
    /// pushing onto a number, …); nothing was written.
    #[error(transparent)]
    Update(#[from] aurora_core::UpdateError),
    /// A schema, unique or index error.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A storage error.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl TxnError {
    /// Whether retrying the whole transaction may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TxnError::Conflict { .. })
    }
}
