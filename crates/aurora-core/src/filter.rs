//! [`Filter`]: a predicate over documents as data — inspectable by the
//! query planner, serializable, combinable with `&`, `|` and `!` — and its
//! evaluation. It lives here, with the data model, so that every layer that
//! tests documents (queries, live queries, change-event listeners) shares one
//! language with one semantics.

use crate::{CoreError, Document, Value};
use serde::{Deserialize, Serialize};
use std::ops::{BitAnd, BitOr, Not};

/// A predicate over documents. Field paths may be nested (`"address.city"`).
/// A missing field never matches a comparison (`eq`, `gt`, …) and counts as
/// absent for `has_field`/`is_null`.
///
/// The path `_id` ([`ID_FIELD`](crate::json::ID_FIELD), which no document
/// field may be named) is the document's id, as [`DocId::to_value`](crate::DocId::to_value)
/// gives it: a UUID id compares as a [`Value::Uuid`], a text id as a
/// [`Value::String`] — `F.eq("_id", "user-42")`, `F.in_values("_id", [..])`,
/// `F.starts_with("_id", "user-")`, `F.gt("_id", "m")` (ranges within one
/// kind of id). Queries read an `eq` or `in` on `_id` as point reads.
///
/// ```
/// use aurora_core::{doc, DocId, F};
/// let mut d = doc! { "n": 1 };
/// d.id = DocId::text("user-42").unwrap();
/// assert!(F.eq("_id", "user-42").matches(&d));
/// assert!(F.eq("_id", &d.id).matches(&d) && F.starts_with("_id", "user-").matches(&d));
/// assert!(!F.eq("_id", "user-7").matches(&d));
/// ```
///
/// Its serde form is the derived one; decoding it stops past
/// [`MAX_DECODE_DEPTH`](crate::MAX_DECODE_DEPTH) levels with an error (so
/// no input, in any format, can exhaust the stack).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub enum Filter {
    /// Every document.
    All,
    /// `field == value` (numbers compare numerically: `1 == 1.0`).
    Eq(String, Value),
    /// `field != value` (a missing field matches).
    Ne(String, Value),
    /// `field > value` within the same type family.
    Gt(String, Value),
    /// `field >= value`.
    Gte(String, Value),
    /// `field < value`.
    Lt(String, Value),
    /// `field <= value`.
    Lte(String, Value),
    /// `low <= field <= high`.
    Between(String, Value, Value),
    /// `field` equals one of the values.
    In(String, Vec<Value>),
    /// String `field` contains the substring.
    Contains(String, String),
    /// String `field` starts with the prefix.
    StartsWith(String, String),
    /// String `field` ends with the suffix.
    EndsWith(String, String),
    /// Array `field` has an element equal to the value.
    InArray(String, Value),
    /// The field exists (even if null).
    HasField(String),
    /// The field is missing or null.
    IsNull(String),
    /// Every sub-filter matches.
    And(Vec<Filter>),
    /// At least one sub-filter matches.
    Or(Vec<Filter>),
    /// The sub-filter does not match.
    Not(Box<Filter>),
}

impl Serialize for Filter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Filter::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let _level = crate::DecodeLevel::enter().ok_or_else(|| {
            <D::Error as serde::de::Error>::custom(format!(
                "the filter nests deeper than {} levels",
                crate::MAX_DECODE_DEPTH
            ))
        })?;
        Filter::deserialize(deserializer)
    }
}

/// Builds filters: `|f| f.eq("status", "active") & f.gt("age", 21)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct F;

impl F {
    /// `field == value`.
    pub fn eq(self, field: &str, v: impl Into<Value>) -> Filter {
        Filter::Eq(field.into(), v.into())
    }
    /// `field != value`.
    pub fn ne(self, field: &str, v: impl Into<Value>) -> Filter {
        Filter::Ne(field.into(), v.into())
    }
    /// `field > value`.
    pub fn gt(self, field: &str, v: impl Into<Value>) -> Filter {
        Filter::Gt(field.into(), v.into())
    }
    /// `field >= value`.
    pub fn gte(self, field: &str, v: impl Into<Value>) -> Filter {
        Filter::Gte(field.into(), v.into())
    }
    /// `field < value`.
    pub fn lt(self, field: &str, v: impl Into<Value>) -> Filter {
        Filter::Lt(field.into(), v.into())
    }
    /// `field <= value`.
    pub fn lte(self, field: &str, v: impl Into<Value>) -> Filter {
        Filter::Lte(field.into(), v.into())
    }
    /// `low <= field <= high`.
    pub fn between(self, field: &str, low: impl Into<Value>, high: impl Into<Value>) -> Filter {
        Filter::Between(field.into(), low.into(), high.into())
    }
    /// `field` is one of `values`.
    pub fn in_values<V: Into<Value>>(self, field: &str, values: impl IntoIterator<Item = V>) -> Filter {
        Filter::In(field.into(), values.into_iter().map(Into::into).collect())
    }
    /// String `field` contains `s`.
    pub fn contains(self, field: &str, s: &str) -> Filter {
        Filter::Contains(field.into(), s.into())
    }
    /// String `field` starts with `s`.
    pub fn starts_with(self, field: &str, s: &str) -> Filter {
        Filter::StartsWith(field.into(), s.into())
    }
    /// String `field` ends with `s`.
    pub fn ends_with(self, field: &str, s: &str) -> Filter {
        Filter::EndsWith(field.into(), s.into())
    }
    /// Array `field` contains `v`.
    pub fn in_array(self, field: &str, v: impl Into<Value>) -> Filter {
        Filter::InArray(field.into(), v.into())
    }
    /// `field` exists.
    pub fn has_field(self, field: &str) -> Filter {
        Filter::HasField(field.into())
    }
    /// `field` is missing or null.
    pub fn is_null(self, field: &str) -> Filter {
        Filter::IsNull(field.into())
    }
}

impl BitAnd for Filter {
    type Output = Filter;
    fn bitand(self, rhs: Filter) -> Filter {
        match (self, rhs) {
            (Filter::And(mut a), Filter::And(b)) => {
                a.extend(b);
                Filter::And(a)
            }
            (Filter::And(mut a), r) => {
                a.push(r);
                Filter::And(a)
            }
            (l, r) => Filter::And(vec![l, r]),
        }
    }
}

impl BitOr for Filter {
    type Output = Filter;
    fn bitor(self, rhs: Filter) -> Filter {
        match (self, rhs) {
            (Filter::Or(mut a), r) => {
                a.push(r);
                Filter::Or(a)
            }
            (l, r) => Filter::Or(vec![l, r]),
        }
    }
}

impl Not for Filter {
    type Output = Filter;
    fn not(self) -> Filter {
        Filter::Not(Box::new(self))
    }
}

/// Same type family for ordered comparison (ints and floats are one family).
fn comparable(a: &Value, b: &Value) -> bool {
    a.type_rank() == b.type_rank()
}

impl Filter {
    /// Levels of nesting: 1 for a comparison (plus its value's own
    /// nesting), one more per `and`/`or`/`not`. Stops counting past
    /// `limit`, so it costs at most `limit` levels of recursion on any
    /// filter. Queries refuse filters deeper than
    /// [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH) before walking
    /// them ([`Filter::check_depth`]).
    pub fn nesting_depth(&self, limit: usize) -> usize {
        if limit == 0 {
            return 1;
        }
        let value = |v: &Value| 1 + v.nesting_depth(limit);
        let depth = match self {
            Filter::All | Filter::HasField(_) | Filter::IsNull(_) => 1,
            Filter::Contains(..) | Filter::StartsWith(..) | Filter::EndsWith(..) => 1,
            Filter::Eq(_, v)
            | Filter::Ne(_, v)
            | Filter::Gt(_, v)
            | Filter::Gte(_, v)
            | Filter::Lt(_, v)
            | Filter::Lte(_, v)
            | Filter::InArray(_, v) => value(v),
            Filter::Between(_, a, b) => value(a).max(value(b)),
            Filter::In(_, vs) => 1 + vs.iter().map(value).max().unwrap_or(0),
            Filter::And(fs) | Filter::Or(fs) => 1 + fs.iter().map(|f| f.nesting_depth(limit - 1)).max().unwrap_or(0),
            Filter::Not(f) => 1 + f.nesting_depth(limit - 1),
        };
        depth.min(limit + 1)
    }

    /// Refuses a filter that nests deeper than
    /// [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH) levels (as counted
    /// by [`Filter::nesting_depth`]) with [`CoreError::FilterTooDeep`]. Every
    /// entry that takes a filter (queries, updates and deletes by filter,
    /// listeners, live queries) calls this first.
    ///
    /// # Errors
    /// [`CoreError::FilterTooDeep`].
    pub fn check_depth(&self) -> Result<(), CoreError> {
        let limit = crate::MAX_NESTING_DEPTH;
        if self.nesting_depth(limit) > limit {
            return Err(CoreError::FilterTooDeep { limit });
        }
        Ok(())
    }

    /// Whether `doc` matches.
    pub fn matches(&self, doc: &Document) -> bool {
        let id = std::cell::OnceCell::new();
        self.matches_by(&|f: &str| doc.get_path_or_id(f, &id))
    }

    /// Whether a document matches whose value at each dotted path is
    /// `get(path)` (`None`: absent) — [`Filter::matches`] over any source
    /// of field values, such as a stored document read field by field
    /// without being decoded whole. The filter reads no path outside
    /// [`Filter::fields`]; `get("_id")` must give the id
    /// ([`DocId::to_value`](crate::DocId::to_value)).
    pub fn matches_by<'v>(&self, get: &impl Fn(&str) -> Option<&'v Value>) -> bool {
        match self {
            Filter::All => true,
            Filter::Eq(f, v) => get(f).is_some_and(|x| x == v),
            Filter::Ne(f, v) => get(f).is_none_or(|x| x != v),
            Filter::Gt(f, v) => get(f).is_some_and(|x| comparable(x, v) && x > v),
            Filter::Gte(f, v) => get(f).is_some_and(|x| comparable(x, v) && x >= v),
            Filter::Lt(f, v) => get(f).is_some_and(|x| comparable(x, v) && x < v),
            Filter::Lte(f, v) => get(f).is_some_and(|x| comparable(x, v) && x <= v),
            Filter::Between(f, lo, hi) => {
                get(f).is_some_and(|x| comparable(x, lo) && comparable(x, hi) && x >= lo && x <= hi)
            }
            Filter::In(f, vs) => get(f).is_some_and(|x| vs.contains(x)),
            Filter::Contains(f, s) => get(f).and_then(Value::as_str).is_some_and(|x| x.contains(s.as_str())),
            Filter::StartsWith(f, s) => get(f).and_then(Value::as_str).is_some_and(|x| x.starts_with(s.as_str())),
            Filter::EndsWith(f, s) => get(f).and_then(Value::as_str).is_some_and(|x| x.ends_with(s.as_str())),
            Filter::InArray(f, v) => get(f).and_then(Value::as_array).is_some_and(|a| a.contains(v)),
            Filter::HasField(f) => get(f).is_some(),
            Filter::IsNull(f) => get(f).is_none_or(Value::is_null),
            Filter::And(fs) => fs.iter().all(|x| x.matches_by(get)),
            Filter::Or(fs) => fs.iter().any(|x| x.matches_by(get)),
            Filter::Not(x) => !x.matches_by(get),
        }
    }

    /// Whether the filter reads the document id (the path `_id`).
    pub fn reads_id(&self) -> bool {
        self.fields().contains(&crate::json::ID_FIELD)
    }

    /// The field paths this filter mentions.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Filter::All => {}
            Filter::Eq(f, _)
            | Filter::Ne(f, _)
            | Filter::Gt(f, _)
            | Filter::Gte(f, _)
            | Filter::Lt(f, _)
            | Filter::Lte(f, _)
            | Filter::Between(f, _, _)
            | Filter::In(f, _)
            | Filter::Contains(f, _)
            | Filter::StartsWith(f, _)
            | Filter::EndsWith(f, _)
            | Filter::InArray(f, _)
            | Filter::HasField(f)
            | Filter::IsNull(f) => out.push(f),
            Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|x| x.collect_fields(out)),
            Filter::Not(x) => x.collect_fields(out),
        }
    }

    /// The top-level conjuncts (the filter itself if it is not an `And`).
    pub fn conjuncts(&self) -> Vec<&Filter> {
        match self {
            Filter::And(fs) => fs.iter().flat_map(Filter::conjuncts).collect(),
            Filter::All => Vec::new(),
            other => vec![other],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc;

    #[test]
    fn operators_on_edge_cases() {
        let d = doc! { "n": 3, "f": 2.5, "s": "héllo wörld", "a": [1, "x"], "z": null, "o": { "p": 1 } };
        let f = F;
        assert!(f.eq("n", 3.0).matches(&d), "int equals float");
        assert!(f.gt("f", 2).matches(&d) && f.lt("n", 3.5).matches(&d));
        assert!(!f.gt("s", 1).matches(&d), "no cross-type ordering");
        assert!(!f.eq("missing", Value::Null).matches(&d), "missing is not null-equal");
        assert!(f.ne("missing", 1).matches(&d));
        assert!(f.is_null("missing").matches(&d) && f.is_null("z").matches(&d) && !f.is_null("n").matches(&d));
        assert!(f.has_field("z").matches(&d) && !f.has_field("missing").matches(&d));
        assert!(
            f.contains("s", "wö").matches(&d)
                && f.starts_with("s", "hé").matches(&d)
                && f.ends_with("s", "rld").matches(&d)
        );
        assert!(!f.contains("n", "3").matches(&d), "contains needs a string");
        assert!(f.in_array("a", "x").matches(&d) && !f.in_array("s", "h").matches(&d));
        assert!(f.in_values("n", [1, 3]).matches(&d) && f.between("f", 2, 3).matches(&d));
        assert!(f.eq("o.p", 1).matches(&d));
        assert!((f.eq("n", 3) & !f.eq("f", 1)).matches(&d) && (f.eq("n", 0) | f.has_field("o")).matches(&d));
        assert_eq!((f.eq("a", 1) & f.eq("b", 2) & f.eq("c", 3)).conjuncts().len(), 3);
    }
}
