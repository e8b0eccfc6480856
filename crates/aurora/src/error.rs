//! [`Error`]: the facade's error, wrapping each layer's.

use aurora_index::IndexError;
use aurora_query::QueryError;
use aurora_storage::StorageError;
use aurora_txn::TxnError;

/// A specialised `Result` for the [`Aurora`](crate::Aurora) handle.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything an [`Aurora`](crate::Aurora) call can fail with.
///
/// The errors applications match on are variants of their own, whichever
/// layer found them: [`Error::UniqueViolation`], [`Error::SchemaViolation`],
/// [`Error::NotFound`], [`Error::DocumentExists`],
/// [`Error::UnknownCollection`], [`Error::CollectionExists`],
/// [`Error::Conflict`], [`Error::Closed`], [`Error::Locked`]. The rest carry
/// the layer's own error, which names what it was working on.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> aurora::Result<()> {
/// use aurora::{doc, Aurora, Error, FieldDefinition, FieldType};
/// let db = Aurora::temporary().await?;
/// db.new_collection("users", [("email", FieldDefinition::new(FieldType::String).unique())]).await?;
/// db.insert_into("users", doc! { "email": "ada@x.io" }).await?;
/// match db.insert_into("users", doc! { "email": "ada@x.io" }).await {
///     Err(Error::UniqueViolation { field, .. }) => assert_eq!(field, "email"),
///     other => panic!("{other:?}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database was closed; open it again to continue.
    #[error("the database is closed")]
    Closed,
    /// Another process (or another open handle in this one) holds the
    /// database directory.
    #[error("database directory {path} is locked by another process or handle")]
    Locked {
        /// The directory.
        path: std::path::PathBuf,
    },
    /// Another document already holds this value of a unique field (or
    /// unique compound key); nothing was written.
    #[error("collection `{collection}`: unique field `{field}` already has the value {value}")]
    UniqueViolation {
        /// The collection.
        collection: String,
        /// The field path.
        field: String,
        /// The duplicated value, rendered (bounded).
        value: String,
    },
    /// A document breaks its collection's schema (a field of the wrong
    /// type, a required field missing, an undeclared field in a strict
    /// collection); nothing was written. The layer's error, with the
    /// expected and actual types, is the `source`.
    #[error("collection `{collection}`: field `{field}`: {source}")]
    SchemaViolation {
        /// The collection.
        collection: String,
        /// The field path.
        field: String,
        /// What exactly is wrong.
        #[source]
        source: Box<IndexError>,
    },
    /// A schema change under [`Existing::Validate`](crate::Existing::Validate)
    /// met a stored document that does not fit the new schema; the schema
    /// was left as it was.
    #[error(
        "collection `{collection}`: schema change refused: document {id} does not fit it: field `{field}` {reason}"
    )]
    SchemaChangeRefused {
        /// The collection.
        collection: String,
        /// The first document (in id order) that does not fit.
        id: String,
        /// Its first field that does not fit.
        field: String,
        /// What is wrong, e.g. `must be int, got string`.
        reason: String,
    },
    /// `update`/`replace` of a document that does not exist.
    #[error("no document {id} in collection `{collection}`")]
    NotFound {
        /// The collection.
        collection: String,
        /// The document id.
        id: String,
    },
    /// `insert` of an id that is already taken.
    #[error("collection `{collection}`: a document with id {id} already exists")]
    DocumentExists {
        /// The collection.
        collection: String,
        /// The id.
        id: String,
    },
    /// No collection of that name.
    #[error("no collection named `{0}`")]
    UnknownCollection(String),
    /// A collection of that name already exists (see
    /// [`Aurora::ensure_collection`](crate::Aurora::ensure_collection) for
    /// idempotent creation).
    #[error("collection `{0}` already exists")]
    CollectionExists(String),
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
    /// A malformed query (unknown field, wrong value type, bad cursor), or
    /// one stopped by its deadline or cancel token
    /// ([`QueryError::TimedOut`], [`QueryError::Cancelled`]).
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
    /// A full-text search error: an unparsable search string
    /// ([`SearchError::Parse`](aurora_search::SearchError::Parse) with its
    /// byte position), a search too large, no index for the collection, an
    /// index that cannot be opened.
    #[cfg(feature = "search")]
    #[error(transparent)]
    Search(#[from] aurora_search::SearchError),
    /// A blocking task could not be run (the runtime is shutting down).
    #[error("background task failed: {0}")]
    Task(String),
    /// An error from an Aurora server (through `aurora-client`) that no
    /// other variant stands for: the request was refused (`unauthorized`,
    /// `forbidden`, `bad_request`, limits…) or the server could not be
    /// reached (`code` "unreachable", `status` 0). The errors the embedded
    /// handle has variants for map to those variants instead.
    #[error("server error {code} ({status}): {message}")]
    Remote {
        /// The server's stable error code (`docs/server.md`), or
        /// `"unreachable"` / `"bad_response"` for a transport failure.
        code: String,
        /// The HTTP status (0 when no response came).
        status: u16,
        /// The server's message.
        message: String,
    },
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Closed => Error::Closed,
            StorageError::Locked { path } => Error::Locked { path },
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
            IndexError::UniqueViolation { collection, field, value } => {
                Error::UniqueViolation { collection, field, value }
            }
            IndexError::DocumentExists { collection, id } => Error::DocumentExists { collection, id },
            IndexError::UnknownCollection(c) => Error::UnknownCollection(c),
            IndexError::CollectionExists(c) => Error::CollectionExists(c),
            IndexError::SchemaChangeRefused { collection, id, field, reason } => {
                Error::SchemaChangeRefused { collection, id, field, reason }
            }
            IndexError::WrongType { ref collection, ref field, .. }
            | IndexError::MissingField { ref collection, ref field, .. }
            | IndexError::UnknownField { ref collection, ref field } => {
                Error::SchemaViolation { collection: collection.clone(), field: field.clone(), source: Box::new(e) }
            }
            other => Error::Index(other),
        }
    }
}

impl From<TxnError> for Error {
    fn from(e: TxnError) -> Self {
        match e {
            TxnError::Conflict { collection, id } => Error::Conflict { collection, id },
            TxnError::NotFound { collection, id } => Error::NotFound { collection, id },
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
            QueryError::Core(c) => Error::Core(c),
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
