//! Compound indexes: one index over two or more fields.
//!
//! A compound index lives in the same catalog map as single-field indexes
//! ([`CollectionDef::indexes`](crate::CollectionDef)), under a *name* that
//! joins its field paths with [`SEPARATOR`] (a control character, which no
//! field path may contain, so a name is never mistaken for a path). The
//! catalog format does not change: an old database opens as it is.
//!
//! Each document has exactly one entry: `enc(v1) ++ enc(v2) ++ … ++ id`,
//! where a missing field counts as `null` and an array or object is one
//! whole value (its elements are **not** indexed one by one — a compound
//! index serves `eq` on the whole value, ranges and ordering, never
//! `in_array`). The encodings are self-delimiting and order-preserving, so
//! entries sort by the tuple, then by id: one read serves an equality on a
//! leading prefix of the fields, a range on the next one, and the order of
//! the remaining ones. A unique compound index refuses two documents with
//! the same tuple unless one of its values is `null` (as in SQL).

use crate::error::{IndexError, Result};

/// Joins the field paths of a compound index into its name.
pub const SEPARATOR: char = '\u{1f}';

/// Most fields one compound index may cover.
pub const MAX_COMPOUND_FIELDS: usize = 8;

/// The catalog name of the compound index over `fields`.
pub fn compound_name<S: AsRef<str>>(fields: &[S]) -> String {
    let mut name = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            name.push(SEPARATOR);
        }
        name.push_str(f.as_ref());
    }
    name
}

/// The field paths an index name covers: one for a single-field index,
/// two or more for a compound one.
pub fn index_fields(name: &str) -> Vec<&str> {
    name.split(SEPARATOR).collect()
}

/// Whether an index name is a compound index's.
pub fn is_compound(name: &str) -> bool {
    name.contains(SEPARATOR)
}

/// The name as people read it: `room` or `(room, at)`.
pub fn display_name(name: &str) -> String {
    if is_compound(name) {
        format!("({})", index_fields(name).join(", "))
    } else {
        name.to_string()
    }
}

/// Checks a path an index or a schema names: a valid field path, and not
/// `_id` — the document id, which no field may hold (documents are stored
/// by id, and filters on `_id` read them by id): an index or a declaration
/// of it would describe a field that never exists.
pub(crate) fn check_path(collection: &str, path: &str) -> Result<()> {
    let invalid = |reason: String| IndexError::InvalidSchema { collection: collection.into(), reason };
    aurora_core::names::validate_field_path(path).map_err(|e| invalid(e.to_string()))?;
    let head = path.split('.').next().unwrap_or(path);
    if head == aurora_core::json::ID_FIELD {
        return Err(invalid(format!(
            "`{path}`: `_id` is the document id, not a field (documents are stored by id: a filter on `_id` needs no index)"
        )));
    }
    Ok(())
}

/// Checks the fields of a new compound index: 2 to [`MAX_COMPOUND_FIELDS`]
/// valid, distinct field paths.
pub(crate) fn check_fields<S: AsRef<str>>(collection: &str, fields: &[S]) -> Result<()> {
    let invalid = |reason: String| IndexError::InvalidSchema { collection: collection.into(), reason };
    if fields.len() < 2 || fields.len() > MAX_COMPOUND_FIELDS {
        return Err(invalid(format!(
            "a compound index covers 2 to {MAX_COMPOUND_FIELDS} fields, not {}",
            fields.len()
        )));
    }
    for (i, f) in fields.iter().enumerate() {
        check_path(collection, f.as_ref())?;
        if fields[..i].iter().any(|g| g.as_ref() == f.as_ref()) {
            return Err(invalid(format!("field `{}` appears twice in a compound index", f.as_ref())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_checked() {
        let name = compound_name(&["room", "at"]);
        assert!(is_compound(&name));
        assert!(!is_compound("room"));
        assert_eq!(index_fields(&name), ["room", "at"]);
        assert_eq!(index_fields("room"), ["room"]);
        assert_eq!(display_name(&name), "(room, at)");
        assert!(check_fields("c", &["room", "at"]).is_ok());
        assert!(check_fields("c", &["room"]).is_err(), "one field is not compound");
        assert!(check_fields("c", &["room", "room"]).is_err(), "duplicates");
        assert!(check_fields("c", &["room", "a..b"]).is_err(), "invalid path");
        assert!(check_fields("c", &[name.as_str(), "x"]).is_err(), "a name is not a path");
    }
}
