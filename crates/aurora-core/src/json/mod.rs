//! The plain-JSON form of values, documents, ids and filters: the one JSON
//! that Aurora reads and writes (in its API, and on the network server).
//!
//! Ordinary JSON means what it says — `null`, `true`, `"text"`, `[..]`,
//! `{..}`; an integer is an `Int`, a number with a fraction or exponent a
//! `Float` (`1.0` stays a float, `-0.0` keeps its sign). The types JSON
//! lacks are one-key objects whose key starts with `$`, after MongoDB's
//! Extended JSON:
//!
//! | value | JSON |
//! |---|---|
//! | `Float(NaN)`, `Float(±∞)` | `{"$float": "NaN"}`, `{"$float": "Infinity"}`, `{"$float": "-Infinity"}` |
//! | `Uuid` | `{"$uuid": "0190a6b2-…"}` |
//! | `Timestamp` | `{"$date": "2024-01-02T03:04:05.000006Z"}` (RFC 3339, UTC, microseconds; an offset such as `+02:00` is accepted on input; years outside 0000–9999 as `{"$date": <microseconds since the epoch>}`) |
//! | `Bytes` | `{"$bytes": "<standard base64, padded>"}` |
//! | an object whose one key is itself one of these markers | `{"$literal": {...}}` (its key is taken as a field name) |
//!
//! Any other key starting with `$` is an ordinary field name. An integer
//! between `i64::MAX` and `u64::MAX` is refused, never rounded into a
//! float; an integer literal beyond the `u64`/`i64` range reaches Aurora
//! already read as a float by `serde_json` (it cannot be told from one
//! written with an exponent), and is stored as that float.
//!
//! A **document** is an object of its fields plus its id under `"_id"`: a
//! UUID id as its canonical text, a text id as a string (as `{"$text": "…"}`
//! when the text is itself a UUID in that spelling); without `"_id"` a new UUID v7 id is
//! made. `_id` is therefore reserved as a top-level field name.
//!
//! A **filter** uses MongoDB-style operators, see
//! [`Filter::from_json`](crate::Filter::from_json).
//!
//! Round trips are exact: `Value::from_json(&v.to_json()) == v` for every
//! value (floats bit for bit), and likewise for documents and filters; a
//! JSON text in the canonical form that `to_json` writes reads back to the
//! same JSON.
//!
//! ```
//! use aurora_core::{Document, Filter, Value};
//! use serde_json::json;
//! let d = Document::from_json(&json!({
//!     "_id": "order-17", "total": 12.5, "items": 3,
//!     "paid_at": {"$date": "2024-01-02T03:04:05Z"},
//! })).unwrap();
//! assert_eq!(d.get("items"), Some(&Value::Int(3)));
//! assert_eq!(Document::from_json(&d.to_json()).unwrap(), d);
//! let f = Filter::from_json(&json!({"total": {"$gte": 10}, "status": {"$in": ["paid", "sent"]}})).unwrap();
//! assert_eq!(Filter::from_json(&f.to_json()).unwrap(), f);
//! ```

mod filter;
mod value;

/// The key under which a document's JSON form carries its id (so no
/// document may have a top-level field of this name).
pub const ID_FIELD: &str = "_id";

/// The deepest nesting of arrays and objects in a JSON text (`0` for a
/// scalar, `1` for `[1]`), read without parsing it — strings are skipped,
/// nothing is checked. For telling apart, when a parser refuses a text,
/// input nested past a limit from input that is not JSON: `serde_json`
/// stops at 128 levels with an error of its own.
///
/// ```
/// use aurora_core::json::text_nesting_depth;
/// assert_eq!(text_nesting_depth(br#"{"a": [1, {"b": "[[["}]}"#), 3);
/// assert_eq!(text_nesting_depth(&[b'['; 500]), 500);
/// ```
pub fn text_nesting_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

use crate::CoreError;

/// How deep a JSON input may nest before conversion stops (beyond
/// [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH), which documents and
/// filters then check): bounds the recursion on any input. Input nested
/// deeper is refused as [`CoreError::TooDeep`] (a filter:
/// [`CoreError::FilterTooDeep`]), like nesting found by those checks.
const MAX_JSON_DEPTH: usize = crate::MAX_NESTING_DEPTH + 8;

/// A refusal at `at` (a JSON pointer into the input).
fn invalid(at: &Path<'_>, reason: impl Into<String>) -> CoreError {
    CoreError::InvalidJson {
        at: crate::error::bounded(&at.pointer()),
        reason: crate::error::bounded_message(&reason.into()),
    }
}

/// Where in the input a conversion is, for error messages and the depth
/// bound.
#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<(&'a Path<'a>, Step<'a>)>,
    depth: usize,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> Path<'a> {
    const ROOT: Path<'static> = Path { parent: None, depth: 0 };

    fn key(&'a self, k: &'a str) -> Result<Path<'a>, CoreError> {
        self.child(Step::Key(k))
    }

    fn index(&'a self, i: usize) -> Result<Path<'a>, CoreError> {
        self.child(Step::Index(i))
    }

    fn child(&'a self, step: Step<'a>) -> Result<Path<'a>, CoreError> {
        if self.depth >= MAX_JSON_DEPTH {
            // Nesting, not a malformed value: the error every layer gives
            // for input nested past the limit (a filter's reader turns it
            // into `FilterTooDeep`).
            return Err(CoreError::TooDeep {
                field: crate::error::bounded(&self.top_key().unwrap_or_default()),
                limit: crate::MAX_NESTING_DEPTH,
            });
        }
        Ok(Path { parent: Some((self, step)), depth: self.depth + 1 })
    }

    /// The first key of the path from the root (a document's top-level field).
    fn top_key(&self) -> Option<String> {
        let mut at = self;
        let mut first = None;
        while let Some((parent, step)) = &at.parent {
            first = Some(*step);
            at = parent;
        }
        match first? {
            Step::Key(k) => Some(k.to_string()),
            Step::Index(_) => None,
        }
    }

    /// RFC 6901 JSON pointer (`/items/0/name`), built without recursion.
    fn pointer(&self) -> String {
        let mut steps = Vec::new();
        let mut at = self;
        while let Some((parent, step)) = &at.parent {
            steps.push(*step);
            at = parent;
        }
        let mut out = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Key(k) => {
                    out.push('/');
                    out.push_str(&k.replace('~', "~0").replace('/', "~1"));
                }
                Step::Index(i) => out.push_str(&format!("/{i}")),
            }
        }
        out
    }
}
