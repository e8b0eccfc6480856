//! Conversions between [`Value`] and Rust types, including `serde_json::Value`.

use crate::{CoreError, Fields, Timestamp, Value};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

macro_rules! from_lossless {
    ($variant:ident as $target:ty: $($t:ty),*) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(<$target>::from(v))
            }
        })*
    };
}

from_lossless!(Int as i64: i8, i16, i32, i64, u8, u16, u32);
from_lossless!(Float as f64: f32, f64);
from_lossless!(Bool as bool: bool);
from_lossless!(String as String: String, &str, &String, Box<str>);
from_lossless!(Uuid as Uuid: Uuid);
from_lossless!(Timestamp as Timestamp: Timestamp);

impl From<std::time::SystemTime> for Value {
    fn from(t: std::time::SystemTime) -> Self {
        Value::Timestamp(Timestamp::from(t))
    }
}

/// [`DocId::to_value`](crate::DocId::to_value): what a filter on `_id` compares.
impl From<crate::DocId> for Value {
    fn from(id: crate::DocId) -> Self {
        id.to_value()
    }
}

/// [`DocId::to_value`](crate::DocId::to_value).
impl From<&crate::DocId> for Value {
    fn from(id: &crate::DocId) -> Self {
        id.to_value()
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Value::Bytes(b.to_vec())
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl<V: Into<Value>> From<BTreeMap<String, V>> for Value {
    fn from(m: BTreeMap<String, V>) -> Self {
        Value::Object(m.into_iter().map(|(k, v)| (k, v.into())).collect())
    }
}

impl<V: Into<Value>, S> From<HashMap<String, V, S>> for Value {
    fn from(m: HashMap<String, V, S>) -> Self {
        Value::Object(m.into_iter().map(|(k, v)| (k, v.into())).collect())
    }
}

impl TryFrom<u64> for Value {
    type Error = CoreError;
    fn try_from(v: u64) -> Result<Self, CoreError> {
        i64::try_from(v).map(Value::Int).map_err(|_| CoreError::Conversion(format!("{v} does not fit in an i64")))
    }
}

impl TryFrom<serde_json::Value> for Value {
    type Error = CoreError;
    /// [`Value::from_json`]: the plain-JSON form, exact or refused (an
    /// integer outside `i64` is an error, never a rounded float).
    fn try_from(j: serde_json::Value) -> Result<Self, CoreError> {
        Value::from_json(&j)
    }
}

impl From<Value> for serde_json::Value {
    /// A presentation conversion, not a round trip (use
    /// [`Value::to_json`] for the exact [plain-JSON form](crate::json)):
    /// `Uuid` becomes its hyphenated string, `Timestamp` its RFC 3339 string,
    /// `Bytes` an array of numbers, and a non-finite float `null` (JSON has
    /// no representation for it).
    fn from(v: Value) -> Self {
        use serde_json::Value as J;
        match v {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(b),
            Value::Int(i) => J::from(i),
            Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s),
            Value::Uuid(u) => J::String(u.to_string()),
            Value::Bytes(b) => J::Array(b.into_iter().map(J::from).collect()),
            Value::Timestamp(t) => J::String(t.to_string()),
            Value::Array(a) => J::Array(a.into_iter().map(J::from).collect()),
            Value::Object(o) => J::Object(o.into_iter().map(|(k, v)| (k, J::from(v))).collect()),
        }
    }
}

impl Value {
    /// Converts any `Serialize` value into a [`Value`], directly (see the
    /// serde bridge's rules: integers stay exact, a `u64` that does not fit
    /// an `i64` is an error, floats keep NaN and ±infinity, `Timestamp` stays
    /// a timestamp).
    pub fn from_serde<T: serde::Serialize + ?Sized>(v: &T) -> Result<Value, CoreError> {
        v.serialize(crate::serde_bridge::ser::ValueSerializer)
            .map_err(|source| CoreError::Serde { what: std::any::type_name::<T>().to_string(), source })
    }

    /// Converts this value into any `Deserialize` type, directly.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, CoreError> {
        T::deserialize(crate::serde_bridge::de::ValueRef(self))
            .map_err(|source| CoreError::Serde { what: std::any::type_name::<T>().to_string(), source })
    }
}

/// Builds an object from `(key, value)` pairs.
impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Value {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Value::Object(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect::<Fields>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_json_types() {
        let j = serde_json::json!({"a": 1, "b": [true, null, 2.5, "x"], "c": {"d": -3}});
        let v = Value::try_from(j.clone()).unwrap();
        assert!(matches!(v.get_path("a"), Some(Value::Int(1))));
        assert!(matches!(v.get_path("b.2"), Some(Value::Float(f)) if *f == 2.5));
        assert_eq!(serde_json::Value::from(v), j);
    }

    #[test]
    fn special_types_to_json() {
        let u = Uuid::nil();
        assert_eq!(serde_json::Value::from(Value::from(u)), serde_json::json!(u.to_string()));
        assert_eq!(serde_json::Value::from(Value::Float(f64::NAN)), serde_json::Value::Null);
        assert_eq!(
            serde_json::Value::from(Value::Timestamp(Timestamp::from_micros(0))),
            serde_json::json!("1970-01-01T00:00:00.000000Z")
        );
    }

    #[test]
    fn u64_out_of_range_is_an_error() {
        assert!(Value::try_from(u64::MAX).is_err());
        assert_eq!(Value::try_from(5u64).ok(), Some(Value::Int(5)));
    }
}
