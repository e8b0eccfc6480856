//! Checking a query against the collection's schema: unknown fields and
//! values of the wrong type are errors, not empty results.

use crate::error::{QueryError, Result};
use aurora_core::filter::Filter;
use aurora_core::json::ID_FIELD;
use aurora_core::{FieldType, Value};
use aurora_index::{Schema, UnknownFields};

/// The declared type of `path`; `Any` for paths inside an untyped declared
/// object, in a schemaless collection, or undeclared in a collection that
/// accepts undeclared fields. An undeclared path of a strict collection
/// (`Schema::strict`) is [`QueryError::UnknownField`]; a path that breaks
/// the name rules (`aurora_core::names`: empty segments, control
/// characters, over 256 bytes) is `CoreError::InvalidName` — before any
/// layer walks it.
pub(crate) fn field_type(collection: &str, schema: &Schema, path: &str) -> Result<FieldType> {
    aurora_core::names::validate_field_path(path)?;
    // The document id: every collection has it (see `check_filter` for
    // the values it is compared with).
    if schema.fields.is_empty() || path == ID_FIELD {
        return Ok(FieldType::Any);
    }
    if let Some(t) = schema.field_type(path) {
        return Ok(t);
    }
    let nested_declared = schema.fields.keys().any(|p| p.strip_prefix(path).is_some_and(|r| r.starts_with('.')));
    let inside_open = schema.fields.iter().any(|(p, d)| {
        path.strip_prefix(p.as_str()).is_some_and(|r| r.starts_with('.'))
            && matches!(d.field_type, FieldType::Object | FieldType::Any | FieldType::Array)
    });
    if nested_declared || inside_open || schema.unknown_fields == UnknownFields::Allow {
        return Ok(FieldType::Any);
    }
    Err(QueryError::UnknownField { collection: collection.into(), field: path.into() })
}

fn numeric(t: FieldType) -> bool {
    matches!(t, FieldType::Int | FieldType::Float)
}

/// Whether a filter value may be compared with a field of type `t`.
fn value_fits(t: FieldType, v: &Value) -> bool {
    v.is_null() || t.accepts(v) || (numeric(t) && matches!(v, Value::Int(_) | Value::Float(_)))
}

fn mismatch(collection: &str, field: &str, t: FieldType, actual: &'static str) -> QueryError {
    QueryError::TypeMismatch { collection: collection.into(), field: field.into(), expected: t.to_string(), actual }
}

/// Checks every field and value of `filter`; `computed` fields are untyped.
pub(crate) fn check_filter(
    collection: &str,
    schema: &Schema,
    filter: &Filter,
    computed: &dyn Fn(&str) -> bool,
) -> Result<()> {
    let field_type = |collection: &str, schema: &Schema, field: &str| -> Result<FieldType> {
        if computed(field) {
            Ok(FieldType::Any)
        } else {
            field_type(collection, schema, field)
        }
    };
    let check_value = |field: &str, v: &Value| -> Result<()> {
        if field == ID_FIELD {
            // An id is a UUID or a text: any other value could never match.
            return match v {
                Value::Uuid(_) | Value::String(_) => Ok(()),
                other => Err(QueryError::TypeMismatch {
                    collection: collection.into(),
                    field: field.into(),
                    expected: "the document id (a UUID or a text)".into(),
                    actual: other.type_name(),
                }),
            };
        }
        let t = field_type(collection, schema, field)?;
        if value_fits(t, v) {
            Ok(())
        } else {
            Err(mismatch(collection, field, t, v.type_name()))
        }
    };
    let check_string_op = |field: &str| -> Result<()> {
        let t = field_type(collection, schema, field)?;
        if matches!(t, FieldType::String | FieldType::Any) {
            Ok(())
        } else {
            Err(mismatch(collection, field, t, "string"))
        }
    };
    match filter {
        Filter::All => Ok(()),
        Filter::Eq(f, v)
        | Filter::Ne(f, v)
        | Filter::Gt(f, v)
        | Filter::Gte(f, v)
        | Filter::Lt(f, v)
        | Filter::Lte(f, v) => check_value(f, v),
        Filter::Between(f, lo, hi) => check_value(f, lo).and_then(|()| check_value(f, hi)),
        Filter::In(f, vs) => vs.iter().try_for_each(|v| check_value(f, v)),
        Filter::Contains(f, _) | Filter::StartsWith(f, _) | Filter::EndsWith(f, _) => check_string_op(f),
        Filter::InArray(f, _) if f == ID_FIELD => Err(QueryError::TypeMismatch {
            collection: collection.into(),
            field: f.clone(),
            expected: "the document id (a UUID or a text)".into(),
            actual: "array element",
        }),
        Filter::InArray(f, _) => {
            let t = field_type(collection, schema, f)?;
            if matches!(t, FieldType::Array | FieldType::Any) {
                Ok(())
            } else {
                Err(mismatch(collection, f, t, "array element"))
            }
        }
        Filter::HasField(f) | Filter::IsNull(f) => field_type(collection, schema, f).map(drop),
        Filter::And(fs) | Filter::Or(fs) => fs.iter().try_for_each(|x| check_filter(collection, schema, x, computed)),
        Filter::Not(x) => check_filter(collection, schema, x, computed),
    }
}
