//! The error type of `aurora-core`.

/// Errors raised while building or converting core values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A caller-chosen document id was rejected.
    #[error("invalid document id {id:?}: {reason}")]
    InvalidDocId {
        /// The rejected id, as given.
        id: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A serde conversion between a Rust type and a [`crate::Value`] failed
    /// (for example a `u64` above `i64::MAX`, or a field of the wrong type).
    #[error("cannot convert {what}: {source}")]
    Serde {
        /// What was being converted (a type name or a document id).
        what: String,
        /// What serde said (at most 1 KiB).
        #[source]
        source: crate::serde_bridge::BridgeError,
    },
    /// A name (collection, field path) breaks the rules of
    /// [`names`](crate::names).
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// `"collection"` or `"field path"`.
        kind: &'static str,
        /// The name as given (cut to 64 characters).
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A document nests deeper than
    /// [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH) levels.
    #[error("field {field:?} nests deeper than {limit} levels")]
    TooDeep {
        /// The top-level field (cut to 64 characters).
        field: String,
        /// The limit.
        limit: usize,
    },
    /// A query filter, or the combinators of an event filter, nest deeper
    /// than [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH) levels
    /// (checked before the filter is walked, so no filter can exhaust the
    /// stack of a query or of a commit's publication).
    #[error("the filter nests deeper than {limit} levels")]
    FilterTooDeep {
        /// The limit.
        limit: usize,
    },
    /// JSON input is not in Aurora's plain-JSON form ([`crate::json`]).
    #[error("invalid JSON at {at:?}: {reason}")]
    InvalidJson {
        /// Where: a JSON pointer into the input (`""` for the whole input,
        /// `/items/0` for an element), cut to 64 characters.
        at: String,
        /// What is wrong (at most 1 KiB).
        reason: String,
    },
    /// A value could not be represented in the requested form.
    #[error("cannot convert value: {0}")]
    Conversion(String),
}

/// A name or value cut for an error message: at most 64 characters.
pub(crate) fn bounded_message(s: &str) -> String {
    let mut out: String = s.chars().take(1024).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// A name cut for an error message: at most 64 characters.
pub(crate) fn bounded(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
