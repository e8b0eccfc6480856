//! [`Value`]: the dynamically typed value stored in documents.

use crate::{Fields, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// A dynamically typed value.
///
/// Equality, ordering and hashing are *semantic*: `Int(1)`, `Float(1.0)`
/// compare equal, integers and floats are ordered numerically, and `NaN`
/// equals itself and sorts above every other number. Across types the order
/// is `Null < Bool < numbers < Timestamp < String < Uuid < Bytes < Array <
/// Object` (see [`Value::type_rank`]). This total order is what secondary
/// indexes and `order_by` use.
///
/// ```
/// use aurora_core::Value;
/// assert_eq!(Value::Int(2), Value::Float(2.0));
/// assert!(Value::Int(2) < Value::Float(2.5));
/// assert!(Value::Null < Value::Bool(false));
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub enum Value {
    /// The absence of a value.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    String(String),
    /// A UUID.
    Uuid(Uuid),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A UTC instant in microseconds.
    Timestamp(Timestamp),
    /// An ordered list of values.
    Array(Vec<Value>),
    /// Named fields, ordered by name.
    Object(Fields),
}

impl Value {
    /// The name of this value's type, as used in error messages
    /// (`"null"`, `"bool"`, `"int"`, `"float"`, `"string"`, `"uuid"`,
    /// `"bytes"`, `"timestamp"`, `"array"`, `"object"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Uuid(_) => "uuid",
            Value::Bytes(_) => "bytes",
            Value::Timestamp(_) => "timestamp",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The rank of this value's type in the cross-type order; `Int` and
    /// `Float` share a rank because they compare numerically.
    pub fn type_rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 2,
            Value::Timestamp(_) => 3,
            Value::String(_) => 4,
            Value::Uuid(_) => 5,
            Value::Bytes(_) => 6,
            Value::Array(_) => 7,
            Value::Object(_) => 8,
        }
    }

    /// `true` for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The string, if this is a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is a [`Value::Int`].
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float, if this is a [`Value::Int`] or [`Value::Float`].
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The boolean, if this is a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements, if this is a [`Value::Array`].
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The fields, if this is a [`Value::Object`].
    pub fn as_object(&self) -> Option<&Fields> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// A value of `Bytes` type (a `Vec<u8>` converts to an `Array` otherwise).
    pub fn bytes(b: impl Into<Vec<u8>>) -> Self {
        Value::Bytes(b.into())
    }

    /// Follows a dotted path (`"address.city"`, `"tags.0"`) into nested
    /// objects and arrays. An empty path returns `self`.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        if path.is_empty() {
            return Some(self);
        }
        path.split('.').try_fold(self, |v, part| match v {
            Value::Object(o) => o.get(part),
            Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
    }

    /// An estimate of the bytes this value occupies in memory, inline and
    /// on the heap, used for cache size accounting: each heap block as the
    /// allocator hands it out (header, 16-byte steps, 32 bytes at least), and
    /// maps by their B-tree nodes — what a resident-memory limit has to count.
    pub fn approx_size(&self) -> usize {
        std::mem::size_of::<Value>() + self.heap_size()
    }

    /// The heap bytes of [`Value::approx_size`] (without the inline value).
    fn heap_size(&self) -> usize {
        match self {
            Value::String(s) => heap_block(s.capacity()),
            Value::Bytes(b) => heap_block(b.capacity()),
            Value::Array(a) => {
                heap_block(a.capacity() * std::mem::size_of::<Value>()) + a.iter().map(Value::heap_size).sum::<usize>()
            }
            Value::Object(o) => map_bytes(o),
            _ => 0,
        }
    }
}

/// What a heap block of `n` bytes costs: the allocator's header, its
/// 16-byte granularity and its smallest block (glibc malloc: 8, 16, 32).
pub(crate) fn heap_block(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).div_ceil(16).max(2) * 16
    }
}

/// Entries per B-tree node of the standard library's `BTreeMap`.
const BTREE_CAPACITY: usize = 11;

/// The heap bytes of a field map: its B-tree nodes (a node has room for
/// [`BTREE_CAPACITY`] entries whatever its fill; internal nodes add child
/// pointers) plus every key's and value's own heap blocks.
pub(crate) fn map_bytes(map: &crate::Fields) -> usize {
    if map.is_empty() {
        return 0;
    }
    let entry = std::mem::size_of::<String>() + std::mem::size_of::<Value>();
    let leaf = heap_block(16 + BTREE_CAPACITY * entry);
    let internal = heap_block(16 + BTREE_CAPACITY * entry + (BTREE_CAPACITY + 1) * std::mem::size_of::<usize>());
    let leaves = map.len().div_ceil(BTREE_CAPACITY);
    let internals = if leaves > 1 { leaves.div_ceil(BTREE_CAPACITY) } else { 0 };
    leaves * leaf
        + internals * internal
        + map.iter().map(|(k, v)| heap_block(k.capacity()) + v.heap_size()).sum::<usize>()
}

/// The tagged form (`{"Int": 1}`) for every format — what postcard stores —
/// except the serde bridge, where a value is itself: a struct field of type
/// `Value` holds the value as a document would.
impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if crate::serde_bridge::is_bridge_serializer::<S>() {
            return crate::serde_bridge::ser::hand_over_value(self, serializer);
        }
        Value::serialize(self, serializer)
    }
}

/// The derived decoding, wrapped to count levels: a stored value nested
/// deeper than [`MAX_DECODE_DEPTH`](crate::nesting::MAX_DECODE_DEPTH) is a
/// decoding error, never a stack overflow. From the serde bridge, the value
/// itself (see `Serialize`).
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Some(_level) = crate::nesting::DecodeLevel::enter() else {
            return Err(serde::de::Error::custom(format_args!(
                "value nested deeper than {} levels",
                crate::nesting::MAX_DECODE_DEPTH
            )));
        };
        if crate::serde_bridge::is_bridge_deserializer::<D>() {
            return crate::serde_bridge::de::take_value(deserializer);
        }
        Value::deserialize(deserializer)
    }
}
