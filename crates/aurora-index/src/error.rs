//! The error type of `aurora-index`.

use aurora_storage::StorageError;

/// A specialised `Result` for collection and index operations.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// Errors of collections, schemas and indexes. Schema and constraint
/// violations name the collection, the field, and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// A field has the wrong type.
    #[error("collection `{collection}`: field `{field}` must be {expected}, got {actual}")]
    WrongType {
        /// The collection.
        collection: String,
        /// The field path.
        field: String,
        /// The declared type.
        expected: String,
        /// The type found.
        actual: &'static str,
    },
    /// A required field is absent or null.
    #[error("collection `{collection}`: field `{field}` is required (not nullable), got {actual}")]
    MissingField {
        /// The collection.
        collection: String,
        /// The field path.
        field: String,
        /// `"nothing"` or `"null"`.
        actual: &'static str,
    },
    /// The collection rejects fields its schema does not declare.
    #[error("collection `{collection}`: field `{field}` is not in the schema")]
    UnknownField {
        /// The collection.
        collection: String,
        /// The undeclared field.
        field: String,
    },
    /// Another document already holds this value of a unique field.
    #[error("collection `{collection}`: unique field `{field}` already has the value {value}")]
    UniqueViolation {
        /// The collection.
        collection: String,
        /// The field path.
        field: String,
        /// The duplicated value, rendered.
        value: String,
    },
    /// An index build that this call waited for (one already running, or
    /// resumed after a crash) ended without a ready index — for example a
    /// resumed unique build that met duplicate values.
    #[error("the build of index {collection}.{field} did not complete: {reason}")]
    BuildFailed {
        /// The collection.
        collection: String,
        /// The indexed field path.
        field: String,
        /// What happened.
        reason: String,
    },
    /// Building a unique index found documents sharing a value.
    #[error("collection `{collection}`: cannot build unique index on `{field}`: duplicate values {duplicates:?}")]
    DuplicateValues {
        /// The collection.
        collection: String,
        /// The field path.
        field: String,
        /// `(value, ids)` for each duplicated value (at most 20 listed).
        duplicates: Vec<(String, Vec<String>)>,
    },
    /// An index would exceed `max_index_entries_per_field`.
    #[error(
        "collection `{collection}`: index on `{field}` would exceed {limit} entries (max_index_entries_per_field)"
    )]
    TooManyIndexEntries {
        /// The collection.
        collection: String,
        /// The field path.
        field: String,
        /// The configured limit.
        limit: usize,
    },
    /// `insert` found a document with that id already.
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
    /// A collection of that name already exists.
    #[error("collection `{0}` already exists")]
    CollectionExists(String),
    /// No index on that field.
    #[error("collection `{collection}` has no index on `{field}`")]
    NoIndex {
        /// The collection.
        collection: String,
        /// The field path.
        field: String,
    },
    /// A schema definition itself is invalid.
    #[error("invalid schema for `{collection}`: {reason}")]
    InvalidSchema {
        /// The collection.
        collection: String,
        /// What is wrong.
        reason: String,
    },
    /// A schema change under `Existing::Validate` met a stored document
    /// that does not fit the new schema; the change was not made (see
    /// [`Collections::alter_schema`](crate::Collections::alter_schema)).
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
    /// A write kept racing with concurrent writers of the same document.
    #[error("collection `{collection}`: document {id} changed concurrently {attempts} times; giving up")]
    Contention {
        /// The collection.
        collection: String,
        /// The document id.
        id: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The storage layer failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
