//! The server's error bodies (`{"error": {"code", "message", …}}`, codes
//! listed in `docs/server.md`) as the [`aurora::Error`] variants the
//! embedded handle returns for the same failure.

use aurora::index::IndexError;
use aurora::{CoreError, Error, UpdateError};
use serde_json::Value as Json;

/// An error for a failure with no server answer (connection refused, the
/// stream broke, a body that is not JSON).
pub(crate) fn transport(code: &str, message: impl std::fmt::Display) -> Error {
    Error::Remote { code: code.to_string(), status: 0, message: message.to_string() }
}

fn text(error: &Json, key: &str) -> String {
    match error.get(key) {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The value the server's message names after `marker`, if any.
fn after(message: &str, marker: &str) -> Option<String> {
    message.find(marker).map(|i| message[i + marker.len()..].to_string())
}

/// A type name the index layer uses (`IndexError::WrongType::actual` is static).
fn static_type(name: &str) -> &'static str {
    const NAMES: &[&str] =
        &["null", "bool", "int", "float", "string", "uuid", "timestamp", "bytes", "array", "object", "nothing"];
    NAMES.iter().find(|n| **n == name).copied().unwrap_or("another type")
}

/// The schema error behind a `schema_violation`, read back from its message
/// (the server sends the embedded error's text).
fn schema_source(collection: &str, field: &str, message: &str) -> IndexError {
    let (collection, field) = (collection.to_string(), field.to_string());
    if message.ends_with("is not in the schema") {
        return IndexError::UnknownField { collection, field };
    }
    if let Some(rest) = after(message, "is required (not nullable), got ") {
        return IndexError::MissingField { collection, field, actual: if rest == "null" { "null" } else { "nothing" } };
    }
    if let Some(rest) = after(message, " must be ") {
        if let Some((expected, actual)) = rest.rsplit_once(", got ") {
            return IndexError::WrongType {
                collection,
                field,
                expected: expected.to_string(),
                actual: static_type(actual),
            };
        }
    }
    IndexError::InvalidSchema { collection, reason: message.to_string() }
}

/// The embedded `WorkerError::InvalidJob` a message (`invalid job `T`:
/// reason`, its display) stands for, if it is one.
pub(crate) fn invalid_job(message: &str) -> Option<Error> {
    let rest = message.strip_prefix("invalid job `")?;
    let (job_type, reason) = rest.split_once("`: ")?;
    Some(Error::Workers(aurora::workers::WorkerError::InvalidJob {
        job_type: job_type.to_string(),
        reason: reason.to_string(),
    }))
}

/// A change feed refusal (`feed_truncated`, `feed_ahead`,
/// `history_not_kept`) of a stream at
/// `requested`, as the embedded handle's typed error.
pub(crate) fn feed_error(error: &Json, requested: u64) -> Error {
    use aurora::txn::TxnError;
    let number = |k: &str| error.get(k).and_then(Json::as_u64);
    let text = |k: &str| error.get(k).and_then(Json::as_str).map(str::to_string);
    match (error.get("code").and_then(Json::as_str), number("oldest"), number("head")) {
        (Some("feed_truncated"), Some(oldest), _) => Error::Transaction(TxnError::FeedTruncated { requested, oldest }),
        (Some("feed_ahead"), _, Some(head)) => Error::Transaction(TxnError::FeedAhead { requested, head }),
        (Some("history_not_kept"), _, _) => match (number("sequence"), text("collection"), text("id")) {
            (Some(sequence), Some(collection), Some(id)) => {
                Error::Transaction(TxnError::HistoryNotKept { sequence, collection, id })
            }
            _ => from_json(200, error),
        },
        _ => from_json(200, error),
    }
}

/// The reasons the core gives for refusing a name or an id (its
/// `&'static str` fields), so that a refusal read back from a message is
/// the same value the embedded handle returns.
const REASONS: &[&str] = &[
    "must not be empty",
    "longer than 128 bytes",
    "longer than 256 bytes",
    "longer than 512 bytes",
    "contains a NUL character",
    "contains a control character",
    "has an empty segment",
    "contains `.`, which paths read as nesting (the field would be unreachable)",
    "`_id` is reserved: the JSON form carries the document id under it",
];

fn static_reason(text: &str) -> Option<&'static str> {
    REASONS.iter().find(|r| **r == text).copied()
}

/// `"text"` (a name as `{:?}` writes it) and what follows `": "`.
fn quoted_then_reason(rest: &str) -> Option<(String, &str)> {
    let (quoted, reason) = rest.rsplit_once(": ")?;
    let name = serde_json::from_str::<String>(quoted).unwrap_or_else(|_| quoted.trim_matches('"').to_string());
    Some((name, reason))
}

/// A core input refusal (`invalid_name`, `invalid_id`, `too_deep`) read
/// back from its message, as the embedded `CoreError` (or the storage
/// layer's `InvalidName`); `None` for a message of another form.
fn core_refusal(code: &str, message: &str) -> Option<Error> {
    match code {
        "invalid_name" => {
            let rest = message.strip_prefix("invalid ")?;
            for kind in ["collection", "field path", "field"] {
                if let Some(rest) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix(" name ")) {
                    let (name, reason) = quoted_then_reason(rest)?;
                    return Some(Error::Core(CoreError::InvalidName { kind, name, reason: static_reason(reason)? }));
                }
            }
            let (name, reason) = quoted_then_reason(rest.strip_prefix("name ")?)?;
            Some(Error::Storage(aurora::storage::StorageError::InvalidName { name, reason: static_reason(reason)? }))
        }
        "invalid_id" => {
            let (id, reason) = quoted_then_reason(message.strip_prefix("invalid document id ")?)?;
            Some(Error::Core(CoreError::InvalidDocId { id, reason: static_reason(reason)? }))
        }
        "too_deep" => {
            let limit = |rest: &str| rest.strip_suffix(" levels")?.parse().ok();
            if let Some(rest) = message.strip_prefix("the filter nests deeper than ") {
                return Some(Error::Core(CoreError::FilterTooDeep { limit: limit(rest)? }));
            }
            let (quoted, rest) = message.strip_prefix("field ")?.split_once(" nests deeper than ")?;
            let field = serde_json::from_str::<String>(quoted).ok()?;
            Some(Error::Core(CoreError::TooDeep { field, limit: limit(rest)? }))
        }
        _ => None,
    }
}

/// An `update_failed` message read back as the embedded `UpdateError`
/// (the server sends its text); `Refused` with the message for a form not
/// recognised.
fn update_error(message: String) -> UpdateError {
    const OPS: &[&str] = &["set", "unset", "increment", "push", "pull", "merge"];
    const NEEDS: &[&str] = &["a number", "an array", "an int or a finite float"];
    let stat = |list: &[&'static str], text: &str| list.iter().find(|x| **x == text).copied();
    let parsed = (|| {
        if let Some(reason) = message.strip_prefix("the update's values are refused: ") {
            return Some(UpdateError::Refused { reason: reason.to_string() });
        }
        if let Some(field) = message.strip_prefix("incrementing field `").and_then(|r| r.strip_suffix("` overflows")) {
            return Some(UpdateError::Overflow { field: field.to_string() });
        }
        let rest = message.strip_prefix("cannot ")?;
        let (op, rest) = rest.split_once(" field `")?;
        let op = stat(OPS, op)?;
        if let Some((field, rest)) = rest.split_once("`: it holds ") {
            let (actual, expected) = rest.rsplit_once(", the operator needs ")?;
            let expected = stat(NEEDS, expected)?;
            return Some(UpdateError::WrongType { op, field: field.to_string(), expected, actual: actual.to_string() });
        }
        if let Some((field, rest)) = rest.split_once("` by ") {
            let (actual, expected) = rest.rsplit_once(": needs ")?;
            let expected = stat(NEEDS, expected)?;
            let actual = static_type(actual);
            return Some(UpdateError::BadOperand { op, field: field.to_string(), expected, actual });
        }
        let (field, reason) = rest.split_once("`: ")?;
        Some(UpdateError::InvalidPath { op, field: field.to_string(), reason: reason.to_string() })
    })();
    parsed.unwrap_or(UpdateError::Refused { reason: message })
}

/// An `invalid_query` message read back as the embedded `QueryError`
/// (unknown field, type mismatch), if it has one of their forms.
fn query_error(message: &str) -> Option<Error> {
    use aurora::query_engine::QueryError;
    let rest = message.strip_prefix("collection `")?;
    if let Some((collection, rest)) = rest.split_once("` has no field `") {
        let field = rest.strip_suffix('`')?;
        return Some(Error::Query(QueryError::UnknownField {
            collection: collection.to_string(),
            field: field.to_string(),
        }));
    }
    let (collection, rest) = rest.split_once("`: field `")?;
    let (field, rest) = rest.split_once("` is ")?;
    let (expected, actual) = rest.rsplit_once(", the filter gives ")?;
    Some(Error::Query(QueryError::TypeMismatch {
        collection: collection.to_string(),
        field: field.to_string(),
        expected: expected.to_string(),
        actual: static_type(actual),
    }))
}

/// The error a response with `status` and body `body` stands for.
pub(crate) fn from_response(status: u16, body: &[u8]) -> Error {
    let json: Json = match serde_json::from_slice(body) {
        Ok(j) => j,
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Error::Remote { code: "bad_response".into(), status, message: text };
        }
    };
    from_json(status, json.get("error").unwrap_or(&Json::Null))
}

/// The error an error object (`{"code", "message", …}`) stands for.
pub(crate) fn from_json(status: u16, error: &Json) -> Error {
    let code = text(error, "code");
    let message = text(error, "message");
    let collection = text(error, "collection");
    let field = text(error, "field");
    let id = text(error, "id");
    match code.as_str() {
        "not_found" => Error::NotFound { collection, id },
        "document_exists" => Error::DocumentExists { collection, id },
        "unknown_collection" => Error::UnknownCollection(collection),
        "collection_exists" => Error::CollectionExists(collection),
        "unique_violation" => Error::UniqueViolation {
            value: after(&message, "already has the value ").unwrap_or_default(),
            collection,
            field,
        },
        "schema_violation" => {
            let source = Box::new(schema_source(&collection, &field, &message));
            Error::SchemaViolation { collection, field, source }
        }
        // A failed `if_revision` condition: another write got there first —
        // what the embedded `Store::commit` reports as a conflict too.
        "conflict" | "revision_mismatch" => Error::Conflict { collection, id },
        "unavailable" => Error::Closed,
        "locked" => Error::Locked { path: after(&message, "database directory ").unwrap_or_default().into() },
        "invalid_json" => Error::Core(CoreError::InvalidJson { at: text(error, "at"), reason: message }),
        "update_failed" => Error::Update(update_error(message)),
        "invalid_job" => invalid_job(&message).unwrap_or(Error::Remote { code, status, message }),
        "no_index" => Error::Index(IndexError::NoIndex { collection, field }),
        "invalid_cursor" => Error::Query(aurora::query_engine::QueryError::InvalidCursor(
            after(&message, "invalid cursor: ").unwrap_or(message),
        )),
        "invalid_query" => query_error(&message).unwrap_or(Error::Remote { code, status, message }),
        "invalid_name" | "invalid_id" | "too_deep" => {
            core_refusal(&code, &message).unwrap_or(Error::Remote { code, status, message })
        }
        _ => Error::Remote { code, status, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn feed_refusals_map_to_the_embedded_variants() {
        use aurora::txn::TxnError;
        let e = feed_error(&json!({"code": "feed_truncated", "message": "m", "oldest": 7}), 3);
        assert!(matches!(e, Error::Transaction(TxnError::FeedTruncated { requested: 3, oldest: 7 })), "{e:?}");
        let e = feed_error(
            &json!({"code": "history_not_kept", "message": "m", "sequence": 9, "collection": "c", "id": "x"}),
            3,
        );
        assert!(
            matches!(e, Error::Transaction(TxnError::HistoryNotKept { sequence: 9, ref collection, ref id }) if collection == "c" && id == "x"),
            "{e:?}"
        );
    }

    #[test]
    fn codes_map_to_the_embedded_variants() {
        let e = from_json(404, &json!({"code": "not_found", "message": "m", "collection": "c", "id": "x"}));
        assert!(matches!(e, Error::NotFound { ref collection, ref id } if collection == "c" && id == "x"), "{e:?}");
        let e = from_json(
            409,
            &json!({"code": "unique_violation", "message": "collection `u`: unique field `email` already has the value \"a\"", "collection": "u", "field": "email"}),
        );
        assert!(matches!(e, Error::UniqueViolation { ref value, .. } if value == "\"a\""), "{e:?}");
        let e = from_json(
            422,
            &json!({"code": "schema_violation", "message": "collection `u`: field `age`: collection `u`: field `age` must be int, got string", "collection": "u", "field": "age"}),
        );
        match e {
            Error::SchemaViolation { source, .. } => {
                assert!(
                    matches!(*source, IndexError::WrongType { actual: "string", ref expected, .. } if expected == "int")
                )
            }
            other => panic!("{other:?}"),
        }
        let e = from_json(401, &json!({"code": "unauthorized", "message": "no key"}));
        assert!(matches!(e, Error::Remote { ref code, status: 401, .. } if code == "unauthorized"));
        assert!(matches!(from_response(502, b"<html>"), Error::Remote { ref code, .. } if code == "bad_response"));
    }
}
