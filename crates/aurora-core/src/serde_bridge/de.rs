//! [`Value`] → `Deserialize`, directly (borrowing strings and bytes).

use super::{BridgeError, TIMESTAMP_TOKEN};
use crate::nesting::{DecodeLevel, MAX_DECODE_DEPTH};
use crate::Value;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

type Result<T> = std::result::Result<T, BridgeError>;

/// Deserializes from a borrowed [`Value`].
pub(crate) struct ValueRef<'de>(pub(crate) &'de Value);

/// The text of a `{TEXT_ID_TOKEN: "…"}` object.
fn text_id(o: &crate::Fields) -> Option<&str> {
    match (o.len(), o.get(super::TEXT_ID_TOKEN)) {
        (1, Some(Value::String(s))) => Some(s),
        _ => None,
    }
}

fn too_deep() -> BridgeError {
    BridgeError(format!("value nested deeper than {MAX_DECODE_DEPTH} levels"))
}

impl<'de> ValueRef<'de> {
    /// The text form of values that have one beyond their own type.
    fn text(&self) -> Option<String> {
        match self.0 {
            Value::Uuid(u) => Some(u.to_string()),
            Value::Timestamp(t) => Some(t.to_string()),
            Value::Object(o) => text_id(o).map(str::to_string),
            _ => None,
        }
    }
}

impl<'de> de::Deserializer<'de> for ValueRef<'de> {
    type Error = BridgeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Uuid(u) => visitor.visit_string(u.to_string()),
            // As a sequence of numbers, the form `Vec<u8>` reads: serde
            // buffers flattened structs and internally tagged enums through
            // `deserialize_any`, and a byte buffer would then reach a
            // `Vec<u8>` that only takes a sequence. (`deserialize_bytes`
            // still hands bytes over as bytes.)
            Value::Bytes(b) => visitor.visit_seq(de::value::SeqDeserializer::<_, BridgeError>::new(b.iter().copied())),
            Value::Timestamp(t) => visitor.visit_i64(t.as_micros()),
            Value::Array(items) => {
                let _level = DecodeLevel::enter().ok_or_else(too_deep)?;
                visitor.visit_seq(Seq(items.iter()))
            }
            Value::Object(fields) => {
                let _level = DecodeLevel::enter().ok_or_else(too_deep)?;
                visitor.visit_map(Map { iter: fields.iter(), value: None })
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.text() {
            Some(text) => visitor.visit_string(text),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            // `Vec<u8>` asks for a sequence: stored bytes are one.
            Value::Bytes(b) => visitor.visit_seq(de::value::SeqDeserializer::new(b.iter().copied())),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Value::Uuid(u) => visitor.visit_bytes(u.as_bytes()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value> {
        if name == super::VALUE_TOKEN {
            // A `Value` target: it takes the value as it is (see `VALUE_TOKEN`).
            super::hand_over(self.0.clone());
            return visitor.visit_unit();
        }
        match (name, self.0) {
            (TIMESTAMP_TOKEN, Value::Timestamp(t)) => visitor.visit_newtype_struct(t.as_micros().into_deserializer()),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.0 {
            // A document id as its text (how a typed collection offers the
            // `_id` field, so that `String` and `DocId` fields both read
            // it): a UUID is a UUID id, any other text a text id.
            Value::String(s) if name == "DocId" => {
                let variant = if crate::DocId::canonical_uuid(s).is_some() { "Uuid" } else { "Text" };
                visitor.visit_enum(Enum { variant, value: Some(self.0) })
            }
            Value::Uuid(_) if name == "DocId" => visitor.visit_enum(Enum { variant: "Uuid", value: Some(self.0) }),
            Value::Object(o) if name == "DocId" && text_id(o).is_some() => {
                visitor.visit_enum(Enum { variant: "Text", value: o.get(super::TEXT_ID_TOKEN) })
            }
            Value::String(variant) => visitor.visit_enum(Enum { variant, value: None }),
            Value::Object(fields) if fields.len() == 1 => {
                let (variant, value) = fields.iter().next().ok_or_else(|| BridgeError("an empty object".into()))?;
                visitor.visit_enum(Enum { variant, value: Some(value) })
            }
            other => Err(BridgeError(format!(
                "an enum is a string (unit variant) or an object with one field, not {}",
                other.type_name()
            ))),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        unit unit_struct tuple tuple_struct map struct identifier ignored_any
    }
}

/// How a [`Value`] deserializes from the bridge: the value handed over.
pub(crate) fn take_value<'de, D: de::Deserializer<'de>>(deserializer: D) -> std::result::Result<Value, D::Error> {
    struct Take;
    impl<'de> Visitor<'de> for Take {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a value handed over by the serde bridge")
        }
        fn visit_unit<E: de::Error>(self) -> std::result::Result<Value, E> {
            super::take_handed_over().ok_or_else(|| E::custom("no value was handed over"))
        }
    }
    deserializer.deserialize_newtype_struct(super::VALUE_TOKEN, Take)
}

/// Deserializes a type from a document's fields (a map).
pub(crate) fn from_fields<'de, T: de::Deserialize<'de>>(fields: &'de crate::Fields) -> Result<T> {
    T::deserialize(de::value::MapAccessDeserializer::new(Map { iter: fields.iter(), value: None }))
}

struct Seq<'de>(std::slice::Iter<'de, Value>);

impl<'de> de::SeqAccess<'de> for Seq<'de> {
    type Error = BridgeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.0.next().map(|v| seed.deserialize(ValueRef(v))).transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Map<'de> {
    iter: std::collections::btree_map::Iter<'de, String, Value>,
    value: Option<&'de Value>,
}

impl<'de> de::MapAccess<'de> for Map<'de> {
    type Error = BridgeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(Key(k)).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let v = self.value.take().ok_or_else(|| BridgeError("a map value without a key".into()))?;
        seed.deserialize(ValueRef(v))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// A field name as a map key: a string, or — for maps keyed by numbers or
/// booleans, which the bridge stores as their text — parsed back.
struct Key<'de>(&'de str);

macro_rules! parsed_key {
    ($($method:ident => $visit:ident: $t:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            match self.0.parse::<$t>() {
                Ok(v) => visitor.$visit(v),
                Err(_) => visitor.visit_borrowed_str(self.0),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Key<'de> {
    type Error = BridgeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_str(self.0)
    }

    parsed_key! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8, deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32, deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8, deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32, deserialize_u64 => visit_u64: u64
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_enum(Enum { variant: self.0, value: None })
    }

    serde::forward_to_deserialize_any! {
        i128 u128 f32 f64 char str string bytes byte_buf option unit unit_struct
        seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct Enum<'de> {
    variant: &'de str,
    value: Option<&'de Value>,
}

impl<'de> de::EnumAccess<'de> for Enum<'de> {
    type Error = BridgeError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let name = seed.deserialize(de::value::BorrowedStrDeserializer::<BridgeError>::new(self.variant))?;
        Ok((name, self))
    }
}

impl<'de> de::VariantAccess<'de> for Enum<'de> {
    type Error = BridgeError;
    fn unit_variant(self) -> Result<()> {
        match self.value {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(BridgeError(format!("a unit variant carries no {}", other.type_name()))),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(ValueRef(self.value.unwrap_or(&Value::Null)))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_seq(ValueRef(self.value.unwrap_or(&Value::Null)), visitor)
    }
    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_map(ValueRef(self.value.unwrap_or(&Value::Null)), visitor)
    }
}
