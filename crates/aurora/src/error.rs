//! [`Error`]: the facade's error, wrapping each layer's.

use aurora_index::IndexError;
use aurora_query::QueryError;
use aurora_storage::StorageError;
use aurora_txn::TxnError;

/// A specialised `Result` for the [`Aurora`](crate::Aurora) handle.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything an [`Aurora`](crate::Aurora) call can fail with. Each variant
/// carries the layer's own error, which names what it was working on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database was closed; open it again to continue.
    #[error("the database is closed")]
    Closed,
    /// A transaction lost to a concurrent commit (first committer wins);
    /// retrying it (or using `Aurora::transaction`) usually succeeds.
    #[error("transaction conflict on {collection}/{id}")]
    Conflict {
        /// The collection.
        collection: String,
        /// The document id.
        id: String,
    },
    /// A configuration setting is invalid.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidConfig {
        /// The setting's name.
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// A transaction error other than a conflict.
    #[error(transparent)]
    Transaction(TxnError),
    /// A schema, uniqueness or index error.
    #[error(transparent)]
    Index(IndexError),
    /// A storage error.
    #[error(transparent)]
    Storage(StorageError),
    /// A malformed query (unknown field, wrong value type, bad cursor).
    #[error(transparent)]
    Query(QueryError),
    /// An update operator that does not apply (incrementing a string,
    /// pushing onto a number, a bad path, an overflow); nothing was written.
    #[error(transparent)]
    Update(aurora_core::UpdateError),
    /// A conversion between a Rust type and a document failed.
    #[error(transparent)]
    Core(#[from] aurora_core::CoreError),
    /// A job-queue error (invalid job or setting, worker state).
    #[cfg(feature = "workers")]
    #[error(transparent)]
    Workers(aurora_workers::WorkerError),
    /// A blocking task could not be run (the runtime is shutting down).
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Closed => Error::Closed,
            StorageError::InvalidConfig { setting, reason } => Error::InvalidConfig { setting, reason },
            StorageError::Core(c) => Error::Core(c),
            other => Error::Storage(other),
        }
    }
}

impl From<IndexError> for Error {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Storage(s) => s.into(),
            other => Error::Index(other),
        }
    }
}

impl From<TxnError> for Error {
    fn from(e: TxnError) -> Self {
        match e {
            TxnError::Conflict { collection, id } => Error::Conflict { collection, id },
            TxnError::Index(i) => i.into(),
            TxnError::Update(u) => Error::Update(u),
            TxnError::Storage(s) => s.into(),
            other => Error::Transaction(other),
        }
    }
}

impl From<QueryError> for Error {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Txn(t) => t.into(),
            QueryError::Index(i) => i.into(),
            other => Error::Query(other),
        }
    }
}

impl From<aurora_reactive::WatchError> for Error {
    fn from(e: aurora_reactive::WatchError) -> Self {
        match e {
            aurora_reactive::WatchError::Query(q) => q.into(),
            _ => Error::Closed,
        }
    }
}

#[cfg(feature = "workers")]
impl From<aurora_workers::WorkerError> for Error {
    fn from(e: aurora_workers::WorkerError) -> Self {
        match e {
            aurora_workers::WorkerError::Database(t) => t.into(),
            other => Error::Workers(other),
        }
    }
}
