//! `Serialize` → [`Value`], directly.

use super::{BridgeError, TIMESTAMP_TOKEN};
use crate::nesting::DecodeLevel;
use crate::{Fields, Timestamp, Value, MAX_DECODE_DEPTH};
use serde::ser::Error as _;
use serde::ser::{self, Serialize};

type Result<T> = std::result::Result<T, BridgeError>;

/// One more level of nesting, refused past [`MAX_DECODE_DEPTH`]: a value
/// nested deeper than that (a 5 000-level `serde_json::Value`, a long linked
/// list) fails fast instead of overflowing the stack while it is converted.
/// The level lasts as long as the guard (held by the builders below).
fn level() -> Result<DecodeLevel> {
    DecodeLevel::enter().ok_or_else(|| BridgeError(format!("the value nests deeper than {MAX_DECODE_DEPTH} levels")))
}

/// Serializes into a [`Value`].
pub(crate) struct ValueSerializer;

/// How a [`Value`] serializes into the bridge: as itself, handed over
/// (a copy, after checking its depth without recursing past the limit).
pub(crate) fn hand_over_value<S: ser::Serializer>(
    value: &Value,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    if value.nesting_depth(MAX_DECODE_DEPTH) > MAX_DECODE_DEPTH {
        return Err(S::Error::custom(format_args!("the value nests deeper than {MAX_DECODE_DEPTH} levels")));
    }
    super::hand_over(value.clone());
    serializer.serialize_newtype_struct(super::VALUE_TOKEN, &())
}

fn int<T: TryInto<i64> + std::fmt::Display + Copy>(v: T, ty: &str) -> Result<Value> {
    v.try_into()
        .map(Value::Int)
        .map_err(|_| BridgeError(format!("the {ty} {v} does not fit in a 64-bit signed integer (Value::Int)")))
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = BridgeError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantSeq;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantMap;

    fn serialize_bool(self, v: bool) -> Result<Value> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value> {
        Ok(Value::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value> {
        int(v, "i128")
    }
    fn serialize_u8(self, v: u8) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value> {
        int(v, "u64")
    }
    fn serialize_u128(self, v: u128) -> Result<Value> {
        int(v, "u128")
    }
    fn serialize_f32(self, v: f32) -> Result<Value> {
        Ok(Value::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value> {
        let _level = level()?;
        match v.serialize(self)? {
            // `Some(None)`, `Some(())`: stored as null, they would read back
            // as `None` — refused instead of changed.
            Value::Null => Err(BridgeError(
                "`Some` of a value stored as null (Some(None), Some(())) would read back as None".into(),
            )),
            inner => Ok(inner),
        }
    }
    fn serialize_unit(self) -> Result<Value> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<Value> {
        Ok(Value::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, v: &T) -> Result<Value> {
        if name == super::VALUE_TOKEN {
            if let Some(value) = super::take_handed_over() {
                return Ok(value);
            }
        }
        let _level = level()?;
        match (name, v.serialize(self)?) {
            (TIMESTAMP_TOKEN, Value::Int(micros)) => Ok(Value::Timestamp(Timestamp::from_micros(micros))),
            (_, inner) => Ok(inner),
        }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value> {
        let _level = level()?;
        Ok(Value::Object([(variant.to_string(), v.serialize(self)?)].into()))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder> {
        Ok(SeqBuilder(Vec::with_capacity(len.unwrap_or(0).min(4096)), level()?))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqBuilder> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, variant: &'static str, len: usize) -> Result<VariantSeq> {
        Ok(VariantSeq(variant, self.serialize_seq(Some(len))?))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapBuilder> {
        Ok(MapBuilder { fields: Fields::new(), key: None, _level: level()? })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<MapBuilder> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, variant: &'static str, _: usize) -> Result<VariantMap> {
        Ok(VariantMap(variant, self.serialize_map(None)?))
    }
}

/// Elements of an array being built (and its nesting level).
pub(crate) struct SeqBuilder(Vec<Value>, DecodeLevel);

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = BridgeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.0.push(v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        Ok(Value::Array(self.0))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = BridgeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = BridgeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value> {
        ser::SerializeSeq::end(self)
    }
}

/// A tuple variant: `{ variant: [..] }`.
pub(crate) struct VariantSeq(&'static str, SeqBuilder);

impl ser::SerializeTupleVariant for VariantSeq {
    type Ok = Value;
    type Error = BridgeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(&mut self.1, v)
    }
    fn end(self) -> Result<Value> {
        Ok(Value::Object([(self.0.to_string(), ser::SerializeSeq::end(self.1)?)].into()))
    }
}

/// Fields of an object being built.
pub(crate) struct MapBuilder {
    fields: Fields,
    key: Option<String>,
    _level: DecodeLevel,
}

/// Map keys become field names: strings as they are, numbers, booleans
/// and chars as their text; anything else is an error.
struct KeySerializer;

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = BridgeError;
    type SerializeSeq = ser::Impossible<String, BridgeError>;
    type SerializeTuple = ser::Impossible<String, BridgeError>;
    type SerializeTupleStruct = ser::Impossible<String, BridgeError>;
    type SerializeTupleVariant = ser::Impossible<String, BridgeError>;
    type SerializeMap = ser::Impossible<String, BridgeError>;
    type SerializeStruct = ser::Impossible<String, BridgeError>;
    type SerializeStructVariant = ser::Impossible<String, BridgeError>;

    fn serialize_str(self, v: &str) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_char(self, v: char) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_bool(self, v: bool) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_f32(self, _: f32) -> Result<String> {
        Err(not_a_key("a float"))
    }
    fn serialize_f64(self, _: f64) -> Result<String> {
        Err(not_a_key("a float"))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String> {
        Err(not_a_key("bytes"))
    }
    fn serialize_none(self) -> Result<String> {
        Err(not_a_key("None"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<String> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<String> {
        Err(not_a_key("()"))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String> {
        Err(not_a_key("a unit struct"))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<String> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<String> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String> {
        Err(not_a_key("an enum with data"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(not_a_key("a sequence"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(not_a_key("a tuple"))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct> {
        Err(not_a_key("a tuple struct"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(not_a_key("an enum with data"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(not_a_key("a map"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(not_a_key("a struct"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(not_a_key("an enum with data"))
    }
}

fn not_a_key(what: &str) -> BridgeError {
    BridgeError(format!("a map key must be a string, number, bool or char, not {what}"))
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = BridgeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let key = self.key.take().ok_or_else(|| BridgeError("a map value without a key".into()))?;
        self.fields.insert(key, v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        Ok(Value::Object(self.fields))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = BridgeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.fields.insert(key.to_string(), v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        Ok(Value::Object(self.fields))
    }
}

/// A struct variant: `{ variant: { .. } }`.
pub(crate) struct VariantMap(&'static str, MapBuilder);

impl ser::SerializeStructVariant for VariantMap {
    type Ok = Value;
    type Error = BridgeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        ser::SerializeStruct::serialize_field(&mut self.1, key, v)
    }
    fn end(self) -> Result<Value> {
        Ok(Value::Object([(self.0.to_string(), ser::SerializeStruct::end(self.1)?)].into()))
    }
}
