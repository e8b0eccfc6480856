//! The error type of `aurora-storage`.

use std::path::PathBuf;

/// A specialised `Result` for storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Errors raised by the storage engine. Every variant names what it was
/// working on (a path, a key, a segment) so that the message alone tells a
/// user where to look.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An operating-system I/O error.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the engine was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another process (or another open handle in this one) holds the
    /// database directory.
    #[error("database directory {path} is locked by another process or handle")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// The database was closed; no further operations are accepted.
    #[error("the database is closed")]
    Closed,
    /// An earlier write or fsync failed; to avoid acknowledging writes that
    /// may not be durable, the database refuses further writes until it is
    /// reopened (which recovers from the WAL).
    #[error("the database is poisoned by an earlier I/O failure ({0}); reopen it to recover")]
    Poisoned(String),
    /// A stored value could not be decoded.
    #[error("corrupt value at key {key}: {reason}")]
    Corrupt {
        /// The key, rendered printable.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// A stored value was written by a format version this build does not know.
    #[error("unknown format version {version} at key {key} (this build reads version {supported})")]
    UnknownFormat {
        /// The key, rendered printable.
        key: String,
        /// The version byte found.
        version: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// The write-ahead log is damaged somewhere other than a torn tail of
    /// its newest segment, or has a gap (a missing, emptied or cut-short
    /// segment, a missing cold store), so acknowledged writes would be lost
    /// by opening. Nothing was changed; see `docs/durability.md` for the
    /// rules and for [`WalRecovery::KeepValidPrefix`](crate::WalRecovery),
    /// the deliberate salvage.
    #[error("write-ahead log segment {segment} is damaged at offset {offset}: {reason}")]
    WalCorrupt {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The cold-store backend failed.
    #[error("cold store error while {context}: {message}")]
    Backend {
        /// What the engine was doing.
        context: String,
        /// The backend's message.
        message: String,
    },
    /// A read named a revision whose state is no longer retained.
    #[error("revision {requested} of key {key} is no longer retained (oldest readable: {oldest})")]
    Compacted {
        /// The key, rendered printable.
        key: String,
        /// The revision asked for.
        requested: u64,
        /// The oldest revision that can still be read.
        oldest: u64,
    },
    /// A commit's revision condition did not hold (from
    /// [`CommitOutcome::into_result`](crate::CommitOutcome::into_result)).
    #[error("condition on key {key} failed: expected revision {expected}, found {actual}")]
    ConditionFailed {
        /// The key, rendered printable.
        key: String,
        /// The revision the condition expected (0 = absent).
        expected: u64,
        /// The key's actual revision (0 = absent).
        actual: u64,
    },
    /// A read named a revision that has not been committed yet.
    #[error("revision {requested} of key {key} is in the future (current revision: {current})")]
    FutureRevision {
        /// The key, rendered printable.
        key: String,
        /// The revision asked for.
        requested: u64,
        /// The current revision.
        current: u64,
    },
    /// A key or value is larger than the engine accepts.
    #[error("{what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// `"key"`, `"value"`, `"batch"` or `"document"` (a document,
        /// refused before it was copied or encoded).
        what: &'static str,
        /// The offending size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A configuration setting is invalid.
    #[error("invalid setting `{setting}`: {reason}")]
    InvalidConfig {
        /// The setting's name.
        setting: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A name (collection) is invalid.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The disk holding the database has too little free space to open it
    /// safely (recovery writes to the cold store; a database written before
    /// sled trees is moved into them at its first open, which writes about
    /// its cold store's size again). Nothing was written; free space and
    /// open again.
    #[error("not enough free disk space at {path} to open the database: {available} bytes free, {required} needed")]
    DiskFull {
        /// The database directory (its cold store's, for the move into trees).
        path: PathBuf,
        /// Bytes available to this process.
        available: u64,
        /// Bytes the open needs free (see `StoreConfig::min_free_disk_bytes`).
        required: u64,
    },
    /// A core conversion failed.
    #[error(transparent)]
    Core(#[from] aurora_core::CoreError),
}

impl StorageError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io { context: context.into(), source }
    }

    pub(crate) fn backend(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        StorageError::Backend { context: context.into(), message: err.to_string() }
    }
}

/// Renders a key for error messages: printable ASCII as is, other bytes as
/// `\xNN`, cut at 96 characters.
pub fn printable_key(key: &[u8]) -> String {
    let mut out = String::new();
    for &b in key.iter().take(96) {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if key.len() > 96 {
        out.push('…');
    }
    out
}
