//! The error type of `aurora-query`.

use aurora_index::IndexError;
use aurora_txn::TxnError;

/// A specialised `Result` for queries.
pub type Result<T, E = QueryError> = std::result::Result<T, E>;

/// Why a query failed. A malformed query is an error, never an empty result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The filter, order or selection names a field the collection's schema
    /// does not declare (schemaless collections accept any field).
    #[error("collection `{collection}` has no field `{field}`")]
    UnknownField {
        /// The collection.
        collection: String,
        /// The field path.
        field: String,
    },
    /// A filter compares a typed field with a value of another type.
    #[error("collection `{collection}`: field `{field}` is {expected}, the filter gives {actual}")]
    TypeMismatch {
        /// The collection.
        collection: String,
        /// The field path.
        field: String,
        /// The declared type.
        expected: String,
        /// The filter value's type.
        actual: &'static str,
    },
    /// A paging cursor does not fit the query's ordering.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// Registering a computed field would create a dependency cycle.
    #[error("collection `{collection}`: computed field `{field}` is on a dependency cycle")]
    ComputedCycle {
        /// The collection.
        collection: String,
        /// A field on the cycle.
        field: String,
    },
    /// A filter nests deeper than
    /// [`MAX_NESTING_DEPTH`](aurora_core::MAX_NESTING_DEPTH) levels (of
    /// `and`/`or`/`not`, plus the nesting of the values it compares).
    #[error("the filter nests deeper than {limit} levels")]
    FilterTooDeep {
        /// The limit.
        limit: usize,
    },
    /// A computed field registration is invalid.
    #[error("invalid computed field `{name}`: {reason}")]
    InvalidComputed {
        /// The name given.
        name: String,
        /// Why.
        reason: String,
    },
    /// A computed field failed to evaluate on a document (a script threw,
    /// ran out of time or memory, or returned something unrepresentable).
    #[error("computed field `{field}` failed on document {id}: {reason}")]
    ComputedFailed {
        /// The computed field.
        field: String,
        /// The document id.
        id: String,
        /// What went wrong.
        reason: String,
    },
    /// A transaction error.
    #[error(transparent)]
    Txn(#[from] TxnError),
    /// An index or schema error (unknown collection, …).
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl From<aurora_storage::StorageError> for QueryError {
    fn from(e: aurora_storage::StorageError) -> Self {
        QueryError::Txn(TxnError::Storage(e))
    }
}
