//! The schema vocabulary: [`FieldType`] and [`FieldDefinition`].

use crate::Value;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The declared type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FieldType {
    /// UTF-8 text.
    String,
    /// A signed 64-bit integer.
    Int,
    /// A float; integers are accepted and compare numerically.
    Float,
    /// A boolean.
    Bool,
    /// A UUID.
    Uuid,
    /// A UTC timestamp.
    Timestamp,
    /// Raw bytes.
    Bytes,
    /// An array of any values.
    Array,
    /// A nested object.
    Object,
    /// Anything (no type check).
    Any,
}

impl FieldType {
    /// Whether a non-null `value` has this type. `Float` accepts integers;
    /// `Null` is governed by [`FieldDefinition::nullable`], not by the type.
    pub fn accepts(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (FieldType::Any, _)
                | (FieldType::String, Value::String(_))
                | (FieldType::Int, Value::Int(_))
                | (FieldType::Float, Value::Float(_) | Value::Int(_))
                | (FieldType::Bool, Value::Bool(_))
                | (FieldType::Uuid, Value::Uuid(_))
                | (FieldType::Timestamp, Value::Timestamp(_))
                | (FieldType::Bytes, Value::Bytes(_))
                | (FieldType::Array, Value::Array(_))
                | (FieldType::Object, Value::Object(_))
        )
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::Uuid => "uuid",
            FieldType::Timestamp => "timestamp",
            FieldType::Bytes => "bytes",
            FieldType::Array => "array",
            FieldType::Object => "object",
            FieldType::Any => "any",
        };
        f.write_str(s)
    }
}

/// How one field of a collection is declared.
///
/// Only fields marked `indexed` or `unique` get a secondary index; `unique`
/// implies an index.
///
/// ```
/// use aurora_core::{FieldDefinition, FieldType};
/// let email = FieldDefinition::new(FieldType::String).unique();
/// assert!(email.unique && email.is_indexed() && !email.nullable);
/// let nick = FieldDefinition::new(FieldType::String).nullable();
/// assert!(!nick.is_indexed());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldDefinition {
    /// The declared type.
    pub field_type: FieldType,
    /// Values must be unique across the collection (implies an index).
    pub unique: bool,
    /// Keep a secondary index on this field.
    pub indexed: bool,
    /// The field may be absent or `null`.
    pub nullable: bool,
}

impl FieldDefinition {
    /// A required, unindexed field of the given type.
    pub const fn new(field_type: FieldType) -> Self {
        Self { field_type, unique: false, indexed: false, nullable: false }
    }

    /// Marks the field indexed.
    pub const fn indexed(mut self) -> Self {
        self.indexed = true;
        self
    }

    /// Marks the field unique (and therefore indexed).
    pub const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// Allows the field to be absent or `null`.
    pub const fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }

    /// Whether the field gets a secondary index (`indexed` or `unique`).
    pub const fn is_indexed(&self) -> bool {
        self.indexed || self.unique
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_acceptance() {
        assert!(FieldType::Float.accepts(&Value::Int(1)));
        assert!(!FieldType::Int.accepts(&Value::Float(1.0)));
        assert!(FieldType::Any.accepts(&Value::Null));
        assert!(!FieldType::String.accepts(&Value::Null));
        assert!(FieldType::Array.accepts(&Value::Array(vec![])));
    }
}
