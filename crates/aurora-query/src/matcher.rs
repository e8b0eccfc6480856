//! [`Matcher`]: a filter prepared once per query run for testing many
//! documents. It evaluates exactly like [`Filter::matches`]; the one
//! difference is speed: an `in` list longer than [`HASH_IN_AT`] values
//! becomes a hash set, so testing a document costs one lookup instead of a
//! pass over the list (documents × values before).

use aurora_core::filter::Filter;
use aurora_core::{Document, Value};
use std::collections::HashSet;

/// `in` lists longer than this are hashed.
pub(crate) const HASH_IN_AT: usize = 8;

/// A prepared filter (owned, so a lazy stream can keep it).
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// Evaluated by [`Filter::matches`].
    Leaf(Filter),
    /// `field` is one of the values (`Value`'s hash agrees with its
    /// equality: `1` and `1.0` hash alike).
    In(String, HashSet<Value>),
    /// All of them.
    And(Vec<Matcher>),
    /// Any of them.
    Or(Vec<Matcher>),
    /// Not it.
    Not(Box<Matcher>),
}

impl Matcher {
    /// Prepares `filter` (already checked against the nesting limit, so
    /// the recursion is bounded).
    pub(crate) fn new(filter: &Filter) -> Self {
        match filter {
            Filter::In(field, values) if values.len() > HASH_IN_AT => {
                Matcher::In(field.clone(), values.iter().cloned().collect())
            }
            Filter::And(fs) => Matcher::And(fs.iter().map(Matcher::new).collect()),
            Filter::Or(fs) => Matcher::Or(fs.iter().map(Matcher::new).collect()),
            Filter::Not(f) => Matcher::Not(Box::new(Matcher::new(f))),
            other => Matcher::Leaf(other.clone()),
        }
    }

    /// Whether `doc` matches (as [`Filter::matches`] would say: the path
    /// `_id` is its id).
    pub(crate) fn matches(&self, doc: &Document) -> bool {
        let id = std::cell::OnceCell::new();
        self.matches_by(&|f: &str| doc.get_path_or_id(f, &id))
    }

    /// Whether the document whose value at each path is `get(path)`
    /// matches (as [`Filter::matches_by`] would say).
    pub(crate) fn matches_by<'v>(&self, get: &impl Fn(&str) -> Option<&'v Value>) -> bool {
        match self {
            Matcher::Leaf(f) => f.matches_by(get),
            Matcher::In(field, values) => get(field).is_some_and(|x| values.contains(x)),
            Matcher::And(ms) => ms.iter().all(|m| m.matches_by(get)),
            Matcher::Or(ms) => ms.iter().any(|m| m.matches_by(get)),
            Matcher::Not(m) => !m.matches_by(get),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_core::doc;

    #[test]
    fn hashed_in_lists_match_like_the_filter() {
        let values: Vec<Value> =
            (0..100).map(|i| if i % 2 == 0 { Value::Int(i) } else { Value::Float(i as f64) }).collect();
        let filter = Filter::Or(vec![
            Filter::In("n".into(), values.clone()),
            Filter::Not(Box::new(Filter::In("m".into(), values))),
        ]);
        let matcher = Matcher::new(&filter);
        assert!(matches!(&matcher, Matcher::Or(ms) if matches!(ms[0], Matcher::In(..))));
        for d in [
            doc! { "n": 4.0, "m": 1 },
            doc! { "n": 5, "m": 3.0 },
            doc! { "n": 500, "m": 2 },
            doc! { "n": "4", "m": 2 },
            doc! { "m": 7.0 },
            doc! { "n": [4] },
            doc! {},
        ] {
            assert_eq!(matcher.matches(&d), filter.matches(&d), "{d:?}");
        }
    }
}
