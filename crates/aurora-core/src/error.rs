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
    /// A serde conversion between a Rust type and a [`crate::Value`] failed.
    #[error("cannot convert {what}: {source}")]
    Serde {
        /// What was being converted (a type name or a document id).
        what: String,
        /// The underlying serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A value could not be represented in the requested form.
    #[error("cannot convert value: {0}")]
    Conversion(String),
}
