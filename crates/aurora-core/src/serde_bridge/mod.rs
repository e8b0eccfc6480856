//! The serde bridge: any `Serialize` type straight into a [`Value`]
//! (`ser`), and a [`Value`] straight into any `Deserialize` type (`de`) —
//! no detour through `serde_json::Value`, so nothing JSON cannot express
//! is lost on the way:
//!
//! - every `i64`, and every `u64`/`i128`/`u128` that fits an `i64`, is an
//!   `Int`; one that does not fit is an error at write, never a float;
//! - every `f64`, NaN and ±infinity included, is a `Float` and reads back
//!   bit for bit (JSON would have made them `null`);
//! - [`Timestamp`](crate::Timestamp) is a `Timestamp` both ways (its serde
//!   form is a newtype struct with a reserved name, which other formats see
//!   as the plain microsecond count);
//! - a [`Value`](crate::Value) (a struct field of type `Value`) is itself,
//!   both ways, so it holds what a document would hold there; its tagged
//!   serde form (`{"Int": 1}`) is for other formats only (it is how
//!   postcard stores values). Not through serde's buffering of
//!   `#[serde(flatten)]` or untagged enums, which the bridge does not see;
//! - bytes serialized as bytes (`serde_bytes`) are `Bytes`;
//! - a `Uuid`, `Timestamp` or `DocId` value reads into a `String` target as
//!   its text form, and a `Uuid` into a `Uuid` target.

pub(crate) mod de;
pub(crate) mod ser;

/// The newtype-struct name [`Timestamp`](crate::Timestamp) serializes
/// under, which the bridge turns into `Value::Timestamp`.
pub(crate) const TIMESTAMP_TOKEN: &str = "$aurora::Timestamp";

/// The newtype-struct name a [`Value`](crate::Value) crosses the bridge
/// under: the bridge hands the value itself over (see [`hand_over`]), so a
/// struct field of type `Value` holds the value as it is stored — not
/// `Value`'s own tagged serde form, which other formats (postcard on disk)
/// still use.
pub(crate) const VALUE_TOKEN: &str = "$aurora::Value";

thread_local! {
    /// The value being handed across the bridge: set by one side of a
    /// `VALUE_TOKEN` newtype struct, taken by the other in the same call.
    static HANDOFF: std::cell::RefCell<Option<crate::Value>> = const { std::cell::RefCell::new(None) };
}

/// Whether `S` is the bridge's serializer (so a `Value` can cross as
/// itself). Compared by type name: `S` need not be `'static`, so `TypeId`
/// cannot be used; the path names a private type of this crate.
pub(crate) fn is_bridge_serializer<S>() -> bool {
    std::any::type_name::<S>() == std::any::type_name::<ser::ValueSerializer>()
}

/// Whether `D` is the bridge's deserializer (see [`is_bridge_serializer`]).
pub(crate) fn is_bridge_deserializer<D>() -> bool {
    std::any::type_name::<D>() == std::any::type_name::<de::ValueRef<'static>>()
}

/// Puts `value` where the other side of a `VALUE_TOKEN` call takes it.
pub(crate) fn hand_over(value: crate::Value) {
    HANDOFF.with(|h| *h.borrow_mut() = Some(value));
}

/// Takes the value handed over, if any.
pub(crate) fn take_handed_over() -> Option<crate::Value> {
    HANDOFF.with(|h| h.borrow_mut().take())
}

/// The one key of the object a text document id is offered as when its
/// text would read as a UUID (see `aurora`'s typed collections): a `DocId`
/// reads it as that text id, a `String` as the text.
pub const TEXT_ID_TOKEN: &str = "$aurora::TextId";

/// An error of the serde bridge (a message; serde errors carry no more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeError(pub(crate) String);

impl std::fmt::Display for BridgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BridgeError {}

impl serde::ser::Error for BridgeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        BridgeError(crate::error::bounded_message(&msg.to_string()))
    }
}

impl serde::de::Error for BridgeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        BridgeError(crate::error::bounded_message(&msg.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use crate::{CoreError, Document, Timestamp, Value};
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Shape {
        Dot,
        Circle(f64),
        Rect { w: i64, h: i64 },
        Pair(i32, i32),
    }

    #[derive(Serialize, Deserialize, Debug)]
    struct Everything {
        big: u64,
        min: i64,
        max: i64,
        nan: f64,
        inf: f64,
        neg_inf: f64,
        neg_zero: f64,
        maybe: Option<f64>,
        none: Option<i32>,
        at: Timestamp,
        id: uuid::Uuid,
        shapes: Vec<Shape>,
        by_number: BTreeMap<u32, String>,
        text: String,
        c: char,
    }

    fn everything() -> Everything {
        Everything {
            big: i64::MAX as u64,
            min: i64::MIN,
            max: i64::MAX,
            nan: f64::NAN,
            inf: f64::INFINITY,
            neg_inf: f64::NEG_INFINITY,
            neg_zero: -0.0,
            maybe: Some(f64::NAN),
            none: None,
            at: Timestamp::from_micros(1_700_000_000_123_456),
            id: uuid::Uuid::now_v7(),
            shapes: vec![Shape::Dot, Shape::Circle(1.5), Shape::Rect { w: 2, h: 3 }, Shape::Pair(-1, 1)],
            by_number: [(7, "seven".to_string())].into(),
            text: "héllo".into(),
            c: 'λ',
        }
    }

    #[test]
    fn every_number_round_trips_exactly() {
        let e = everything();
        let d = Document::from_serde(&e).unwrap();
        assert_eq!(d.get("big"), Some(&Value::Int(i64::MAX)));
        assert!(matches!(d.get("nan"), Some(Value::Float(f)) if f.is_nan()));
        assert_eq!(d.get("at"), Some(&Value::Timestamp(e.at)), "a Timestamp is a timestamp");
        let back: Everything = d.decode().unwrap();
        assert_eq!((back.big, back.min, back.max), (e.big, e.min, e.max));
        assert!(back.nan.is_nan() && back.maybe.is_some_and(f64::is_nan));
        assert_eq!((back.inf, back.neg_inf), (f64::INFINITY, f64::NEG_INFINITY));
        assert!(back.neg_zero == 0.0 && back.neg_zero.is_sign_negative());
        assert_eq!(back.none, None);
        assert_eq!(back.at, e.at);
        assert_eq!(back.id, e.id);
        assert_eq!(back.shapes, e.shapes);
        assert_eq!(back.by_number, e.by_number);
        assert_eq!((back.text, back.c), (e.text, e.c));
    }

    #[test]
    fn a_u64_that_does_not_fit_is_an_error_not_a_float() {
        #[derive(Serialize)]
        struct Big {
            n: u64,
        }
        let err = Document::from_serde(&Big { n: u64::MAX }).unwrap_err();
        assert!(matches!(err, CoreError::Serde { .. }), "{err}");
        assert!(err.to_string().contains("18446744073709551615"), "{err}");
    }

    #[test]
    fn stored_special_values_read_into_their_own_types_and_as_text() {
        let u = uuid::Uuid::now_v7();
        let t = Timestamp::from_micros(5);
        let v = Value::Object(
            [
                ("u".to_string(), Value::Uuid(u)),
                ("t".to_string(), Value::Timestamp(t)),
                ("b".to_string(), Value::Bytes(vec![1, 2])),
            ]
            .into(),
        );
        #[derive(Deserialize)]
        struct Typed {
            u: uuid::Uuid,
            t: Timestamp,
            b: Vec<u8>,
        }
        let typed: Typed = v.decode().unwrap();
        assert_eq!((typed.u, typed.t, typed.b), (u, t, vec![1, 2]));
        #[derive(Deserialize)]
        struct AsText {
            u: String,
            t: String,
        }
        let text: AsText = v.decode().unwrap();
        assert_eq!((text.u, text.t), (u.to_string(), t.to_string()));
    }

    #[test]
    fn error_messages_are_bounded() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            n: i64,
        }
        let v = Value::Object([("n".to_string(), Value::String("x".repeat(10 << 20)))].into());
        let err = v.decode::<T>().unwrap_err();
        assert!(err.to_string().len() < 2048, "{} bytes", err.to_string().len());
    }

    /// A `Value` crosses the bridge as itself, every variant exactly, as a
    /// struct field, inside a list, and at the top; every other format
    /// still sees its tagged form (what is stored).
    #[test]
    fn a_value_crosses_the_bridge_as_itself_and_other_formats_keep_the_tagged_form() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Holder {
            v: Value,
            list: Vec<Value>,
        }
        let every = Value::Array(vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-3),
            Value::Float(f64::NAN.copysign(-1.0)),
            Value::from("s"),
            Value::Uuid(uuid::Uuid::from_u128(7)),
            Value::Timestamp(Timestamp::from_micros(5)),
            Value::Bytes(vec![0, 255]),
            Value::Object([("k".to_string(), Value::Int(1))].into()),
        ]);
        let holder = Holder { v: every.clone(), list: vec![Value::Int(1), every.clone()] };
        let doc = Document::from_serde(&holder).unwrap();
        assert_eq!(doc.get("v").map(|v| v.render(500)), Some(every.render(500)), "stored natively");
        assert_eq!(doc.decode::<Holder>().unwrap().list[1].render(500), every.render(500));
        // A natively written document reads into the struct.
        let native = Document {
            fields: [("v".to_string(), Value::Int(9)), ("list".to_string(), Value::Array(vec![]))].into(),
            ..Document::new()
        };
        assert_eq!(native.decode::<Holder>().unwrap(), Holder { v: Value::Int(9), list: vec![] });
        assert_eq!(Value::from_serde(&Value::Int(4)).unwrap(), Value::Int(4));
        assert_eq!(Value::Int(4).decode::<Value>().unwrap(), Value::Int(4));
        // Other formats: unchanged.
        assert_eq!(serde_json::to_value(Value::Int(1)).unwrap(), serde_json::json!({ "Int": 1 }));
        let back: Value = serde_json::from_value(serde_json::json!({ "Array": [{ "Int": 1 }] })).unwrap();
        assert_eq!(back, Value::Array(vec![Value::Int(1)]));
    }

    #[test]
    fn a_value_too_deep_for_the_bridge_is_refused_not_overflowed() {
        #[derive(Serialize)]
        struct Holder {
            v: Value,
        }
        let mut v = Value::Int(1);
        for _ in 0..200_000 {
            v = Value::Array(vec![v]);
        }
        let holder = Holder { v };
        let err = Document::from_serde(&holder).unwrap_err();
        assert!(err.to_string().contains("deeper than"), "{err}");
        crate::nesting::dispose(holder.v);
    }
}
