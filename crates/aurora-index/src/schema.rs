//! [`Schema`]: a collection's field declarations and document validation.

use crate::error::{IndexError, Result};
use aurora_core::{Document, FieldDefinition, FieldType, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What to do with top-level fields the schema does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum UnknownFields {
    /// Accept and store them (unindexed). The default.
    #[default]
    Allow,
    /// Reject the document with [`IndexError::UnknownField`].
    Reject,
}

/// A collection's schema: field path → definition. An empty schema is a
/// schemaless collection.
///
/// ```
/// use aurora_core::{doc, FieldDefinition, FieldType};
/// use aurora_index::Schema;
/// let schema = Schema::new()
///     .field("email", FieldDefinition::new(FieldType::String).unique())
///     .field("address.city", FieldDefinition::new(FieldType::String).indexed().nullable());
/// assert!(schema.validate("users", &doc! { "email": "a@b.c" }).is_ok());
/// let err = schema.validate("users", &doc! { "email": 5 }).unwrap_err();
/// assert!(err.to_string().contains("`email` must be string, got int"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schema {
    /// Declared fields by path (`"address.city"` for nested fields).
    pub fields: BTreeMap<String, FieldDefinition>,
    /// Treatment of undeclared top-level fields.
    pub unknown_fields: UnknownFields,
    /// Compound indexes to create with the collection (field paths in
    /// index order, unique), from [`Schema::compound_index`]. Only read by
    /// `create_collection`: once created, a compound index lives in the
    /// collection's index list (`CollectionDef::indexes`), so this is not
    /// stored with the schema and is empty in a loaded definition.
    #[serde(skip)]
    pub compound_indexes: Vec<(Vec<String>, bool)>,
}

impl Schema {
    /// An empty (schemaless) schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a field declaration (builder style).
    pub fn field(mut self, path: impl Into<String>, def: FieldDefinition) -> Self {
        self.fields.insert(path.into(), def);
        self
    }

    /// Removes a field declaration (builder style), e.g. to derive the
    /// next version of a schema from the stored one.
    ///
    /// ```
    /// use aurora_core::{FieldDefinition, FieldType};
    /// use aurora_index::Schema;
    /// let v1 = Schema::new().field("a", FieldDefinition::new(FieldType::Int)).field("b", FieldDefinition::new(FieldType::Int));
    /// assert_eq!(v1.without("b"), Schema::new().field("a", FieldDefinition::new(FieldType::Int)));
    /// ```
    pub fn without(mut self, path: &str) -> Self {
        self.fields.remove(path);
        self
    }

    /// Declares a compound index over `fields` (builder style), created
    /// ready with the collection; see
    /// [`Collections::create_compound_index`](crate::Collections::create_compound_index)
    /// for what it holds. Checked by `create_collection`.
    ///
    /// ```
    /// use aurora_core::{FieldDefinition, FieldType};
    /// use aurora_index::Schema;
    /// let schema = Schema::new()
    ///     .field("room", FieldDefinition::new(FieldType::String))
    ///     .field("at", FieldDefinition::new(FieldType::Int))
    ///     .compound_index(["room", "at"], false);
    /// assert!(schema.check("messages").is_ok());
    /// ```
    pub fn compound_index<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>, unique: bool) -> Self {
        self.compound_indexes.push((fields.into_iter().map(Into::into).collect(), unique));
        self
    }

    /// Rejects undeclared top-level fields (builder style).
    pub fn strict(mut self) -> Self {
        self.unknown_fields = UnknownFields::Reject;
        self
    }

    /// Field paths that get a secondary index.
    pub fn indexed_fields(&self) -> impl Iterator<Item = (&str, &FieldDefinition)> {
        self.fields.iter().filter(|(_, d)| d.is_indexed()).map(|(p, d)| (p.as_str(), d))
    }

    /// Checks the schema itself: no empty path segments, no path under
    /// `_id` (the document id, not a field); compound indexes over 2 to 8
    /// distinct valid paths.
    pub fn check(&self, collection: &str) -> Result<()> {
        for path in self.fields.keys() {
            crate::compound::check_path(collection, path)?;
        }
        for (fields, _) in &self.compound_indexes {
            crate::compound::check_fields(collection, fields)?;
        }
        Ok(())
    }

    /// Gives values from a serde type the types the schema declares where
    /// serde has no word for them: a UUID (which serializes as text) in a
    /// `Uuid` field becomes a `Value::Uuid`, and a byte list (`Vec<u8>`
    /// serializes as a list of numbers) in a `Bytes` field a `Value::Bytes`.
    /// Anything else is left for [`Schema::validate`] to judge.
    pub fn adapt_serde_values(&self, doc: &mut Document) {
        for (path, def) in &self.fields {
            let Some(v) = doc.get_path_mut(path) else { continue };
            match (def.field_type, &*v) {
                (aurora_core::FieldType::Uuid, Value::String(s)) => {
                    // Only the form a `Uuid` serializes to (lower-case,
                    // hyphenated), which reads back unchanged; any other
                    // text (upper case, braces, `urn:uuid:`) stays a string
                    // and the schema refuses it rather than rewrite it.
                    if let Ok(u) = uuid::Uuid::try_parse(s) {
                        if u.hyphenated().to_string() == *s {
                            *v = Value::Uuid(u);
                        }
                    }
                }
                (aurora_core::FieldType::Bytes, Value::Array(items)) => {
                    let bytes: Option<Vec<u8>> = items
                        .iter()
                        .map(|x| match x {
                            Value::Int(i) => u8::try_from(*i).ok(),
                            _ => None,
                        })
                        .collect();
                    if let Some(bytes) = bytes {
                        *v = Value::Bytes(bytes);
                    }
                }
                _ => {}
            }
        }
    }

    /// Validates `doc` against the schema.
    pub fn validate(&self, collection: &str, doc: &Document) -> Result<()> {
        for (path, def) in &self.fields {
            match doc.get_path(path) {
                None | Some(Value::Null) if def.nullable => {}
                None => return Err(missing(collection, path, "nothing")),
                Some(Value::Null) => return Err(missing(collection, path, "null")),
                Some(v) if !def.field_type.accepts(v) => {
                    return Err(IndexError::WrongType {
                        collection: collection.into(),
                        field: path.clone(),
                        expected: def.field_type.to_string(),
                        actual: v.type_name(),
                    })
                }
                Some(_) => {}
            }
        }
        if self.unknown_fields == UnknownFields::Reject {
            let declared = |name: &str| {
                self.fields.keys().any(|p| p == name || p.strip_prefix(name).is_some_and(|rest| rest.starts_with('.')))
            };
            if let Some(name) = doc.fields.keys().find(|k| !declared(k)) {
                return Err(IndexError::UnknownField { collection: collection.into(), field: name.clone() });
            }
        }
        Ok(())
    }

    /// The declared type of a field path, if declared.
    pub fn field_type(&self, path: &str) -> Option<FieldType> {
        self.fields.get(path).map(|d| d.field_type)
    }
}

fn missing(collection: &str, path: &str, actual: &'static str) -> IndexError {
    IndexError::MissingField { collection: collection.into(), field: path.into(), actual }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_core::doc;

    fn schema() -> Schema {
        Schema::new()
            .field("name", FieldDefinition::new(FieldType::String))
            .field("age", FieldDefinition::new(FieldType::Int).nullable())
            .field("address.city", FieldDefinition::new(FieldType::String).indexed())
    }

    #[test]
    fn validation_errors_name_field_and_types() {
        let s = schema();
        assert!(s.validate("u", &doc! { "name": "a", "address": { "city": "x" } }).is_ok());
        assert!(s.validate("u", &doc! { "name": "a", "age": null, "address": { "city": "x" } }).is_ok());
        let e = s.validate("u", &doc! { "address": { "city": "x" } }).unwrap_err();
        assert!(matches!(e, IndexError::MissingField { ref field, actual: "nothing", .. } if field == "name"), "{e}");
        let e = s.validate("u", &doc! { "name": null, "address": { "city": "x" } }).unwrap_err();
        assert!(matches!(e, IndexError::MissingField { actual: "null", .. }), "{e}");
        let e = s.validate("u", &doc! { "name": "a", "address": { "city": 7 } }).unwrap_err();
        assert_eq!(e.to_string(), "collection `u`: field `address.city` must be string, got int");
    }

    #[test]
    fn strict_schemas_reject_unknown_top_level_fields() {
        let s = schema().strict();
        assert!(s.validate("u", &doc! { "name": "a", "address": { "city": "x", "zip": 1 } }).is_ok());
        let e = s.validate("u", &doc! { "name": "a", "address": { "city": "x" }, "extra": 1 }).unwrap_err();
        assert!(matches!(e, IndexError::UnknownField { ref field, .. } if field == "extra"), "{e}");
        assert!(Schema::new().validate("u", &doc! { "anything": 1 }).is_ok(), "schemaless");
    }

    #[test]
    fn schema_paths_are_checked() {
        let bad = Schema::new().field("a..b", FieldDefinition::new(FieldType::Any));
        assert!(bad.check("c").is_err());
    }
}
