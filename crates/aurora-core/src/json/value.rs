//! Values, ids and documents in the plain-JSON form (see the module above).

use super::{invalid, Path, ID_FIELD};
use crate::{CoreError, DocId, Document, Fields, Timestamp, Value};
use base64::Engine as _;
use serde_json::{Map, Number, Value as Json};

/// The one-key markers of the types JSON lacks.
pub(super) const MARKERS: [&str; 5] = ["$float", "$uuid", "$date", "$bytes", "$literal"];

fn one(key: &str, value: Json) -> Json {
    let mut m = Map::new();
    m.insert(key.to_string(), value);
    Json::Object(m)
}

impl Value {
    /// This value in the plain-JSON form ([`crate::json`]); exact: reading
    /// it back with [`Value::from_json`] gives this value again, floats bit
    /// for bit.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => match Number::from_f64(*f) {
                Some(n) => Json::Number(n),
                None => {
                    let text = if f.is_nan() {
                        "NaN"
                    } else if *f > 0.0 {
                        "Infinity"
                    } else {
                        "-Infinity"
                    };
                    one("$float", Json::from(text))
                }
            },
            Value::String(s) => Json::String(s.clone()),
            Value::Uuid(u) => one("$uuid", Json::String(u.hyphenated().to_string())),
            Value::Timestamp(t) => one("$date", timestamp_to_json(*t)),
            Value::Bytes(b) => one("$bytes", Json::String(base64::engine::general_purpose::STANDARD.encode(b))),
            Value::Array(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Object(fields) => {
                let object = Json::Object(fields.iter().map(|(k, v)| (k.clone(), v.to_json())).collect());
                let marker_like = fields.len() == 1 && fields.keys().all(|k| MARKERS.contains(&k.as_str()));
                if marker_like {
                    one("$literal", object)
                } else {
                    object
                }
            }
        }
    }

    /// Reads a value in the plain-JSON form ([`crate::json`]).
    ///
    /// # Errors
    /// [`CoreError::InvalidJson`] (with a JSON pointer to the offending
    /// part) for an integer between `i64::MAX` and `u64::MAX` (see the module docs for larger literals), a malformed marker (`{"$uuid":
    /// 5}`, a bad date or base64), or input nested deeper than the nesting
    /// limit allows.
    pub fn from_json(json: &Json) -> Result<Value, CoreError> {
        value_at(json, &Path::ROOT)
    }
}

pub(super) fn value_at(json: &Json, at: &Path<'_>) -> Result<Value, CoreError> {
    Ok(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => number(n, at)?,
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(value_at(item, &at.index(i)?)?);
            }
            Value::Array(out)
        }
        Json::Object(map) => {
            if let Some((key, inner)) = single(map) {
                if let Some(v) = marker(key, inner, at)? {
                    return Ok(v);
                }
            }
            Value::Object(fields(map, at)?)
        }
    })
}

fn single(map: &Map<String, Json>) -> Option<(&str, &Json)> {
    let mut it = map.iter();
    match (it.next(), it.next()) {
        (Some((k, v)), None) => Some((k.as_str(), v)),
        _ => None,
    }
}

fn fields(map: &Map<String, Json>, at: &Path<'_>) -> Result<Fields, CoreError> {
    let mut out = Fields::new();
    for (k, v) in map {
        out.insert(k.clone(), value_at(v, &at.key(k)?)?);
    }
    Ok(out)
}

fn number(n: &Number, at: &Path<'_>) -> Result<Value, CoreError> {
    if n.is_f64() {
        return n.as_f64().map(Value::Float).ok_or_else(|| invalid(at, "not a number"));
    }
    n.as_i64().map(Value::Int).ok_or_else(|| invalid(at, format!("the integer {n} does not fit in an i64")))
}

/// The value of a one-key marker object, `None` if `key` is no marker.
fn marker(key: &str, inner: &Json, at: &Path<'_>) -> Result<Option<Value>, CoreError> {
    let here = at.key(key)?;
    let text = || inner.as_str().ok_or_else(|| invalid(&here, format!("`{key}` takes a string")));
    Ok(Some(match key {
        "$float" => match text()? {
            "NaN" => Value::Float(f64::NAN),
            "Infinity" => Value::Float(f64::INFINITY),
            "-Infinity" => Value::Float(f64::NEG_INFINITY),
            other => {
                return Err(invalid(
                    &here,
                    format!("`$float` is \"NaN\", \"Infinity\" or \"-Infinity\", not {other:?}"),
                ))
            }
        },
        "$uuid" => Value::Uuid(uuid::Uuid::try_parse(text()?).map_err(|e| invalid(&here, format!("not a UUID: {e}")))?),
        "$date" => Value::Timestamp(match inner {
            Json::Number(n) => Timestamp::from_micros(
                n.as_i64().ok_or_else(|| invalid(&here, "microseconds since the epoch must be an i64"))?,
            ),
            _ => Timestamp::parse_rfc3339(text()?).map_err(|reason| invalid(&here, reason))?,
        }),
        "$bytes" => Value::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(text()?)
                .map_err(|e| invalid(&here, format!("not standard padded base64: {e}")))?,
        ),
        "$literal" => match inner {
            Json::Object(map) => Value::Object(fields(map, &here)?),
            _ => return Err(invalid(&here, "`$literal` takes an object")),
        },
        _ => return Ok(None),
    }))
}

fn timestamp_to_json(t: Timestamp) -> Json {
    let text = t.to_string();
    // Four-digit years only: anything else is written as microseconds.
    if text.len() == "0000-01-01T00:00:00.000000Z".len() && !text.starts_with('-') {
        Json::String(text)
    } else {
        Json::from(t.as_micros())
    }
}

impl DocId {
    /// This id in the plain-JSON form: a UUID id as its text, a text id as
    /// a string, or as `{"$text": "…"}` when the text reads as a UUID.
    pub fn to_json(&self) -> Json {
        match self {
            DocId::Uuid(u) => Json::String(u.hyphenated().to_string()),
            DocId::Text(s) if DocId::canonical_uuid(s).is_some() => one("$text", Json::String(s.to_string())),
            DocId::Text(s) => Json::String(s.to_string()),
        }
    }

    /// Reads an id in the plain-JSON form.
    ///
    /// # Errors
    /// [`CoreError::InvalidJson`] for anything but a string or `{"$text":
    /// "…"}`; [`CoreError::InvalidDocId`] for a text that breaks the id rules.
    pub fn from_json(json: &Json) -> Result<DocId, CoreError> {
        id_at(json, &Path::ROOT)
    }
}

fn id_at(json: &Json, at: &Path<'_>) -> Result<DocId, CoreError> {
    match json {
        Json::String(s) => DocId::parse(s),
        Json::Object(map) => match single(map) {
            Some(("$text", Json::String(s))) => DocId::text(s),
            _ => Err(invalid(at, "an id is a string or {\"$text\": \"…\"}")),
        },
        _ => Err(invalid(at, "an id is a string or {\"$text\": \"…\"}")),
    }
}

impl Document {
    /// This document in the plain-JSON form: its fields plus `"_id"`.
    pub fn to_json(&self) -> Json {
        let mut map: Map<String, Json> = self.fields.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
        map.insert(ID_FIELD.to_string(), self.id.to_json());
        Json::Object(map)
    }

    /// Reads a document in the plain-JSON form: an object of fields, with
    /// the id under `"_id"` (a new UUID v7 id when absent). The document is
    /// then checked like every written one ([`Document::validate`]).
    ///
    /// # Errors
    /// [`CoreError::InvalidJson`] for something other than an object or a
    /// malformed value; the errors of [`DocId::from_json`] and
    /// [`Document::validate`].
    pub fn from_json(json: &Json) -> Result<Document, CoreError> {
        let Json::Object(map) = json else {
            return Err(invalid(&Path::ROOT, "a document is a JSON object"));
        };
        let mut fields = Fields::new();
        let mut id = None;
        for (k, v) in map {
            let at = Path::ROOT.key(k)?;
            if k == ID_FIELD {
                id = Some(id_at(v, &at)?);
            } else {
                fields.insert(k.clone(), value_at(v, &at)?);
            }
        }
        let doc = Document { id: id.unwrap_or_default(), fields };
        doc.validate()?;
        Ok(doc)
    }
}
