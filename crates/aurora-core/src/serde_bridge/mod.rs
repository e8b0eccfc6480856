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
//! - bytes serialized as bytes (`serde_bytes`) are `Bytes`;
//! - a `Uuid`, `Timestamp` or `DocId` value reads into a `String` target as
//!   its text form, and a `Uuid` into a `Uuid` target.

pub(crate) mod de;
pub(crate) mod ser;

/// The newtype-struct name [`Timestamp`](crate::Timestamp) serializes
/// under, which the bridge turns into `Value::Timestamp`.
pub(crate) const TIMESTAMP_TOKEN: &str = "$aurora::Timestamp";

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
}
