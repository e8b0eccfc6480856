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
    /// The query is malformed in a way every layer refuses alike: a filter
    /// nested deeper than [`MAX_NESTING_DEPTH`](aurora_core::MAX_NESTING_DEPTH)
    /// levels is [`aurora_core::CoreError::FilterTooDeep`].
    #[error(transparent)]
    Core(#[from] aurora_core::CoreError),
    /// A [`Hint::Index`](crate::Hint) names an index that is not ready, or
    /// one the query's filter and order cannot use.
    #[error("cannot use the hinted index {index}: {reason}")]
    UnusableHint {
        /// The hinted index (`field`, or `(a, b)` for a compound one).
        index: String,
        /// Why.
        reason: String,
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
    /// hit a limit, returned something unrepresentable, or its sandbox
    /// crashed).
    #[error("computed field `{field}` failed on document {id}: {reason}")]
    ComputedFailed {
        /// The computed field.
        field: String,
        /// The document id.
        id: String,
        /// What went wrong.
        reason: ScriptError,
    },
    /// The query ran past its deadline ([`Query::deadline`](crate::Query::deadline),
    /// [`Query::timeout`](crate::Query::timeout)) and was stopped: it reads
    /// nothing more and returns nothing.
    #[error("the query ran past its deadline and was stopped")]
    TimedOut,
    /// The query's [`CancelToken`](crate::CancelToken) was cancelled: the
    /// query stopped, reading nothing more and returning nothing.
    #[error("the query was cancelled")]
    Cancelled,
    /// A transaction error.
    #[error(transparent)]
    Txn(#[from] TxnError),
    /// An index or schema error (unknown collection, …).
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Why a script (`Expression::Custom`) failed. Messages are bounded (1 KiB).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// The code is not one function body (a syntax error, a dependency that
    /// is not a usable parameter name, or code that closes the function
    /// early).
    #[error("not a function body: {0}")]
    Syntax(String),
    /// The script threw (the exception's name and message, or a stack
    /// overflow).
    #[error("the script threw {0}")]
    Threw(String),
    /// One evaluation ran past the per-evaluation time limit.
    #[error("the script ran past its time limit of {} ms", .0.as_millis())]
    TimeLimit(std::time::Duration),
    /// The query spent its script time budget (across documents).
    #[error("the query spent its script budget of {} ms", .0.as_millis())]
    QueryBudget(std::time::Duration),
    /// The script ran out of its memory limit (bytes).
    #[error("the script ran out of its memory limit of {0} bytes")]
    MemoryLimit(usize),
    /// The result is larger than the output limit (bytes, encoded).
    #[error("the script's result is larger than {0} bytes")]
    OutputTooLarge(usize),
    /// The result cannot be a document value (a function, a symbol, nested
    /// too deeply).
    #[error("the script's result cannot be stored: {0}")]
    Unrepresentable(String),
    /// The sandbox process running the script died (an engine crash); the
    /// host and the database are unaffected.
    #[error("the script engine crashed: {0}")]
    Crashed(String),
    /// No sandbox could be started (or this build has no script engine:
    /// cargo feature `js`).
    #[error("no script engine: {0}")]
    Unavailable(String),
}

#[cfg(feature = "js")]
impl From<aurora_js::Failure> for ScriptError {
    fn from(f: aurora_js::Failure) -> Self {
        use aurora_js::Failure as F;
        match f {
            F::Syntax(m) => ScriptError::Syntax(m),
            F::Threw(m) => ScriptError::Threw(m),
            F::TimeLimit(t) => ScriptError::TimeLimit(t),
            F::QueryBudget(t) => ScriptError::QueryBudget(t),
            F::MemoryLimit(n) => ScriptError::MemoryLimit(n),
            F::OutputTooLarge(n) => ScriptError::OutputTooLarge(n),
            F::Unrepresentable(m) => ScriptError::Unrepresentable(m),
            F::Crashed(m) => ScriptError::Crashed(m),
            F::Unavailable(m) => ScriptError::Unavailable(m),
            other => ScriptError::Crashed(other.to_string()),
        }
    }
}

impl From<aurora_storage::StorageError> for QueryError {
    fn from(e: aurora_storage::StorageError) -> Self {
        QueryError::Txn(TxnError::Storage(e))
    }
}
