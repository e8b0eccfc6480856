//! [`ApiError`]: every error the server answers with — a JSON body
//! `{"error": {"code": …, "message": …, …}}` with a stable `code` and the
//! HTTP status that goes with it ([`ERROR_CODES`]) — and the mapping from
//! [`aurora::Error`].

use aurora::Error;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value as Json};

/// Every error code the server uses, with its HTTP status and what it
/// means. A code always comes with the same status; clients should match
/// on the code. `docs/server.md` prints this table (a test keeps the two
/// equal).
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "bad_request",
        400,
        "the request is not of the documented shape (a missing or mistyped member, a bad query parameter)",
    ),
    ("malformed_json", 400, "the body is not JSON at all"),
    ("invalid_json", 400, "the JSON is not in Aurora's plain-JSON form; `at` is a JSON pointer to the culprit"),
    ("invalid_name", 400, "a collection name or field path breaks the naming rules"),
    ("invalid_id", 400, "a document id is not acceptable"),
    ("too_deep", 400, "a document, value or filter nests deeper than the limit"),
    ("invalid_query", 400, "the query does not fit the collection (unknown field, wrong value type, unusable hint)"),
    ("invalid_cursor", 400, "the cursor is not one this server gave out for this query"),
    ("unauthorized", 401, "no API key, or an unknown or revoked one"),
    ("forbidden", 403, "the API key lacks the right (read, write or admin) on the collection"),
    ("no_route", 404, "no such endpoint"),
    ("unknown_collection", 404, "no collection of that name"),
    ("not_found", 404, "no document with that id"),
    ("no_index", 404, "the collection has no such index"),
    ("job_not_found", 404, "no job with that id"),
    ("method_not_allowed", 405, "the endpoint exists but not with this method"),
    ("document_exists", 409, "a document with that id already exists"),
    ("collection_exists", 409, "a collection of that name already exists"),
    ("unique_violation", 409, "another document holds this value of a unique field"),
    ("duplicate_values", 409, "a unique index cannot be built: documents share a value"),
    ("revision_mismatch", 409, "a transaction's `if_revision` condition does not hold; nothing was written"),
    ("conflict", 409, "a concurrent commit won, even after retries; retry the request"),
    (
        "cursor_stale",
        409,
        "the document a cursor refers to (its sort values too large to carry) changed or was deleted since: page again from the start",
    ),
    ("locked", 409, "the database directory is held by another process"),
    ("payload_too_large", 413, "the body, a document or a transaction is larger than the limits allow"),
    ("uri_too_long", 414, "the request target (path and query string) is longer than the server takes"),
    ("schema_violation", 422, "a document breaks its collection's schema"),
    ("invalid_schema", 422, "a schema definition is itself invalid"),
    (
        "update_failed",
        422,
        "an update operator does not apply (incrementing a string, pushing onto a number, an overflow)",
    ),
    ("invalid_job", 422, "a job definition is not acceptable"),
    ("computed_failed", 422, "a computed field failed on a document"),
    ("too_many_streams", 429, "the limit of open streams is reached; retry later"),
    (
        "headers_too_large",
        431,
        "the request head (request line and headers) is larger than the server takes",
    ),
    ("internal", 500, "the server failed; the message says how (the log has more)"),
    ("query_timeout", 503, "the query ran longer than the server's query time limit"),
    ("unavailable", 503, "the database is closing or closed"),
];

/// The status of a code from [`ERROR_CODES`] (500 for an unknown one).
fn status_of(code: &str) -> StatusCode {
    ERROR_CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .and_then(|(_, s, _)| StatusCode::from_u16(*s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An error answered to a request: a stable code (see [`ERROR_CODES`]),
/// the HTTP status that goes with it, a message for people, and details
/// (the collection, the field, the JSON pointer…) as further members of
/// the error object.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: &'static str,
    message: String,
    details: Map<String, Json>,
}

impl ApiError {
    /// An error with `code` (one of [`ERROR_CODES`]).
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(ERROR_CODES.iter().any(|(c, _, _)| *c == code), "unknown error code {code}");
        Self { code, message: message.into(), details: Map::new() }
    }

    /// Adds a detail member to the error object.
    pub fn with(mut self, key: &str, value: impl Into<Json>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body: `{"error": {"code", "message", …details}}`.
    pub fn to_json(&self) -> Json {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        for (k, v) in &self.details {
            error.insert(k.clone(), v.clone());
        }
        json!({ "error": error })
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new("bad_request", message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new("internal", message)
    }

    /// A refusal of a request member, with the JSON pointer of the member.
    pub(crate) fn bad_member(at: &str, message: impl Into<String>) -> Self {
        Self::bad_request(message).with("at", at)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status().as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "request failed");
        }
        let mut response = (status, axum::Json(self.to_json())).into_response();
        match self.code {
            "unauthorized" => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            "too_many_streams" => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

/// A core (input) error: bad JSON, names, ids, nesting.
fn core_error(e: &aurora::CoreError) -> ApiError {
    use aurora::CoreError as C;
    let message = e.to_string();
    match e {
        C::InvalidJson { at, .. } => ApiError::new("invalid_json", message).with("at", at.as_str()),
        C::InvalidName { .. } => ApiError::new("invalid_name", message),
        C::InvalidDocId { .. } => ApiError::new("invalid_id", message),
        C::TooDeep { .. } | C::FilterTooDeep { .. } => ApiError::new("too_deep", message),
        _ => ApiError::new("invalid_json", message).with("at", ""),
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        use aurora::index::IndexError;
        use aurora::query_engine::QueryError;
        use aurora::storage::StorageError;
        use aurora::txn::TxnError;
        let message = e.to_string();
        match e {
            Error::Closed | Error::Task(_) => ApiError::new("unavailable", message),
            Error::Locked { .. } => ApiError::new("locked", message),
            Error::UniqueViolation { collection, field, .. } => {
                ApiError::new("unique_violation", message).with("collection", collection).with("field", field)
            }
            Error::SchemaViolation { collection, field, .. } => {
                ApiError::new("schema_violation", message).with("collection", collection).with("field", field)
            }
            Error::NotFound { collection, id } => {
                ApiError::new("not_found", message).with("collection", collection).with("id", id)
            }
            Error::DocumentExists { collection, id } => {
                ApiError::new("document_exists", message).with("collection", collection).with("id", id)
            }
            Error::UnknownCollection(c) => ApiError::new("unknown_collection", message).with("collection", c),
            Error::CollectionExists(c) => ApiError::new("collection_exists", message).with("collection", c),
            Error::Conflict { collection, id } => {
                ApiError::new("conflict", message).with("collection", collection).with("id", id)
            }
            Error::Update(_) => ApiError::new("update_failed", message),
            Error::Core(c) => core_error(&c),
            Error::Index(i) => match i {
                IndexError::InvalidSchema { .. } => ApiError::new("invalid_schema", message),
                IndexError::NoIndex { collection, field } => {
                    ApiError::new("no_index", message).with("collection", collection).with("field", field)
                }
                IndexError::DuplicateValues { collection, field, .. } => {
                    ApiError::new("duplicate_values", message).with("collection", collection).with("field", field)
                }
                IndexError::Contention { .. } => ApiError::new("conflict", message),
                IndexError::TooManyIndexEntries { .. } => ApiError::new("payload_too_large", message),
                _ => ApiError::internal(message),
            },
            Error::Storage(s) => match s {
                StorageError::InvalidName { .. } => ApiError::new("invalid_name", message),
                StorageError::TooLarge { .. } => ApiError::new("payload_too_large", message),
                StorageError::Core(c) => core_error(&c),
                _ => ApiError::internal(message),
            },
            Error::Query(q) => match q {
                QueryError::InvalidCursor(_) => ApiError::new("invalid_cursor", message),
                // A query stops by itself at the server's query time limit
                // (or when its request is dropped: nobody reads that answer).
                QueryError::TimedOut | QueryError::Cancelled => ApiError::new("query_timeout", message),
                QueryError::ComputedFailed { .. } => ApiError::new("computed_failed", message),
                QueryError::Core(c) => core_error(&c),
                _ => ApiError::new("invalid_query", message),
            },
            Error::Transaction(TxnError::FeedAhead { .. }) => ApiError::bad_request(message),
            Error::Workers(aurora::workers::WorkerError::InvalidJob { .. }) => ApiError::new("invalid_job", message),
            _ => ApiError::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_valid() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, status, meaning) in ERROR_CODES {
            assert!(seen.insert(*code), "{code} twice");
            assert!(StatusCode::from_u16(*status).is_ok());
            assert!(!meaning.is_empty());
        }
    }

    #[test]
    fn errors_that_no_request_can_cause_map_as_documented() {
        // These cannot be provoked from outside a running server (the
        // black-box tests cover every other code); their mapping is fixed here.
        let closed = ApiError::from(Error::Closed);
        assert_eq!((closed.code(), closed.status().as_u16()), ("unavailable", 503));
        let locked = ApiError::from(Error::Locked { path: "x".into() });
        assert_eq!((locked.code(), locked.status().as_u16()), ("locked", 409));
        let conflict = ApiError::from(Error::Conflict { collection: "c".into(), id: "i".into() });
        assert_eq!((conflict.code(), conflict.status().as_u16()), ("conflict", 409));
        assert_eq!(conflict.to_json()["error"]["collection"], "c");
        let internal = ApiError::from(Error::Storage(aurora::storage::StorageError::Poisoned("disk".into())));
        assert_eq!((internal.code(), internal.status().as_u16()), ("internal", 500));
        let timeout = ApiError::new("query_timeout", "slow");
        assert_eq!(timeout.status().as_u16(), 503);
        let computed = ApiError::from(Error::Query(aurora::query_engine::QueryError::ComputedFailed {
            field: "f".into(),
            id: "d".into(),
            reason: aurora::ScriptError::Threw("boom".into()),
        }));
        assert_eq!((computed.code(), computed.status().as_u16()), ("computed_failed", 422));
        let json =
            ApiError::from(Error::Core(aurora::CoreError::InvalidJson { at: "/a/0".into(), reason: "x".into() }));
        assert_eq!(json.to_json()["error"]["at"], "/a/0");
    }
}
