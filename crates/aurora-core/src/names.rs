//! The one set of rules for names that enter Aurora: collection names and
//! field paths (schema fields, index paths). Every layer that takes a name
//! checks it here, so a name one layer accepts is never refused — or
//! misread — by another. (Text document ids have their own rules,
//! [`DocId::text`](crate::DocId::text).)
//!
//! | name | rules |
//! |---|---|
//! | collection | 1–[`MAX_COLLECTION_NAME_BYTES`] bytes, no NUL or other control character |
//! | field path | 1–[`MAX_FIELD_PATH_BYTES`] bytes, dot-separated segments each non-empty, no NUL or other control character |
//! | a document's field name (a top-level key) | a field path of one segment: 1–256 bytes, no `.`, no NUL or other control character, not `_id` (reserved for the id in the [JSON form](crate::json)) |
//!
//! A top-level field named `a.b` would be out of reach of every path
//! (`a.b` means field `b` of field `a`), so it is refused rather than
//! stored. Keys of nested objects are data and may be any string.
//!
//! Control characters are refused because storage keys separate names with
//! NUL (a field `"a\0b"` would overlap the keys of field `"a"`), and
//! because names appear in logs and error messages.

use crate::error::bounded;
use crate::CoreError;

/// Longest collection name, in bytes.
pub const MAX_COLLECTION_NAME_BYTES: usize = 128;
/// Longest field path (`"address.city"`), in bytes.
pub const MAX_FIELD_PATH_BYTES: usize = 256;

fn check(kind: &'static str, name: &str, max: usize) -> Result<(), CoreError> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > max {
        Some(if max == MAX_COLLECTION_NAME_BYTES { "longer than 128 bytes" } else { "longer than 256 bytes" })
    } else if name.contains('\0') {
        Some("contains a NUL character")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CoreError::InvalidName { kind, name: bounded(name), reason }),
        None => Ok(()),
    }
}

/// Checks a collection name.
pub fn validate_collection_name(name: &str) -> Result<(), CoreError> {
    check("collection", name, MAX_COLLECTION_NAME_BYTES)
}

/// Checks a field path (a schema field or an index path).
pub fn validate_field_path(path: &str) -> Result<(), CoreError> {
    check("field path", path, MAX_FIELD_PATH_BYTES)?;
    if path.split('.').any(str::is_empty) {
        return Err(CoreError::InvalidName { kind: "field path", name: bounded(path), reason: "has an empty segment" });
    }
    Ok(())
}

/// Checks a document's top-level field name (see the table above).
pub fn validate_field_name(name: &str) -> Result<(), CoreError> {
    check("field", name, MAX_FIELD_PATH_BYTES)?;
    let reason = if name.contains('.') {
        "contains `.`, which paths read as nesting (the field would be unreachable)"
    } else if name == crate::json::ID_FIELD {
        "`_id` is reserved: the JSON form carries the document id under it"
    } else {
        return Ok(());
    };
    Err(CoreError::InvalidName { kind: "field", name: bounded(name), reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_one_set_of_rules() {
        assert!(validate_collection_name("users").is_ok());
        assert!(validate_field_path("address.city").is_ok());
        for bad in ["", "a\0b", "a\nb", &"x".repeat(129)] {
            assert!(validate_collection_name(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "a\0b", "a\u{7f}", ".a", "a..b", "a.", &"x".repeat(70_000)] {
            let err = validate_field_path(bad).unwrap_err();
            assert!(err.to_string().len() < 200, "bounded message: {err}");
        }
    }
}
