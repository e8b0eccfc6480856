//! [`SearchError`]: everything a search index or a search can fail with.

/// What went wrong in full-text search.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The search string does not parse; `position` is the byte offset of
    /// the offending character in the search string.
    #[error("search string does not parse at byte {position}: {message}")]
    Parse {
        /// Byte offset into the search string.
        position: usize,
        /// What was expected or found.
        message: String,
    },
    /// The search string is longer than [`MAX_QUERY_BYTES`](crate::MAX_QUERY_BYTES).
    #[error("search string is {len} bytes, more than the {max} allowed")]
    QueryTooLong {
        /// Its length in bytes.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The search string has more terms than [`MAX_QUERY_TERMS`](crate::MAX_QUERY_TERMS).
    #[error("search string has more than {max} terms")]
    TooManyTerms {
        /// The bound.
        max: usize,
    },
    /// The search names a field the index does not cover.
    #[error("field `{field}` is not in the search index of `{collection}`")]
    UnknownField {
        /// The collection.
        collection: String,
        /// The field asked for.
        field: String,
    },
    /// The collection has no search index.
    #[error("collection `{collection}` has no search index")]
    NoIndex {
        /// The collection.
        collection: String,
    },
    /// The collection already has a search index with another definition.
    #[error("collection `{collection}` already has a search index with another definition; drop it first")]
    IndexExists {
        /// The collection.
        collection: String,
    },
    /// Search indexes follow the change feed, which is turned off
    /// (`change_feed_retention` is 0).
    #[error("search indexes need the change feed; `change_feed_retention` is 0")]
    FeedOff,
    /// The index definition is invalid (no fields, a bad boost, a bad name).
    #[error("invalid search index definition: {0}")]
    Definition(String),
    /// The definition file could not be read or written.
    #[error("search index definition file `{path}`: {message}")]
    DefinitionFile {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// Another writer (another process) holds the index's lock.
    #[error("search index `{path}` is locked by another writer")]
    Locked {
        /// The index folder.
        path: String,
    },
    /// The tantivy index failed (I/O, a corrupt segment).
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The index folder could not be opened.
    #[error("search index folder: {0}")]
    Directory(#[from] tantivy::directory::error::OpenDirectoryError),
}

/// `Result` with [`SearchError`].
pub type Result<T, E = SearchError> = std::result::Result<T, E>;
