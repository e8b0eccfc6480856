//! [`ChangeEvent`], [`CommitEvents`] and [`EventFilter`]: what listeners
//! receive, and how they choose.

use aurora_core::{CoreError, DocId, Document, Filter, Value};
use serde::{Deserialize, Serialize};
use std::ops::{BitAnd, BitOr, Not};
use std::sync::Arc;

/// What a change did to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChangeType {
    /// The document is new.
    Insert,
    /// The document changed.
    Update,
    /// The document was removed.
    Delete,
}

/// Why a change happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ChangeCause {
    /// A write by the application (or a job handler).
    #[default]
    Write,
    /// The document's time to live passed and the expiry task deleted it
    /// (a `Delete`).
    Expired,
}

/// One committed change of one document.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// The collection.
    pub collection: String,
    /// Insert, update or delete.
    pub change_type: ChangeType,
    /// The document id.
    pub id: DocId,
    /// The document after the change (absent for deletes).
    pub document: Option<Arc<Document>>,
    /// The document before the change (absent for inserts).
    pub old_document: Option<Arc<Document>>,
    /// The commit sequence number: strictly increasing across commits;
    /// the events of one commit share it.
    pub sequence: u64,
    /// The transaction that made the change.
    pub transaction_id: u64,
    /// Why: a write, or an expiry (documents past their time to live).
    pub cause: ChangeCause,
}

/// The events of one commit that a listener receives, delivered as one
/// unit ([`crate::Listener::recv_commit`]): a consumer that applies them
/// together never observes half a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitEvents {
    /// The commit's sequence number (shared by all its events).
    pub sequence: u64,
    /// The transaction that committed.
    pub transaction_id: u64,
    /// Its events that passed the listener's filter, in (collection, id) order.
    pub events: Vec<ChangeEvent>,
}

/// Which events a listener receives; evaluated when a commit is published,
/// before anything is buffered, so a listener's buffer (and its
/// [`crate::RecvError::Lagged`] count) holds only events it would receive.
///
/// Document conditions use the query language, [`Filter`], with the same
/// semantics as queries (array membership with `Filter::InArray`, ranges,
/// `Not`, …). Data, so it can be stored or sent over a network.
///
/// ```
/// use aurora_core::{Filter, F};
/// use aurora_pubsub::{ChangeType, EventFilter};
/// // Updates of paid orders of 100 or more whose status changed.
/// let f = EventFilter::Matches(F.eq("paid", true) & F.gte("total", 100))
///     & EventFilter::ChangeType(ChangeType::Update)
///     & EventFilter::FieldChanged("status".into());
/// # let _ = f;
/// ```
///
/// Decoding one stops past
/// [`MAX_DECODE_DEPTH`](aurora_core::MAX_DECODE_DEPTH) levels with an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(remote = "Self")]
pub enum EventFilter {
    /// Every event.
    #[default]
    All,
    /// Events of one kind.
    ChangeType(ChangeType),
    /// The document as it is after the change (before it, for deletes)
    /// matches the query filter.
    Matches(Filter),
    /// The change has a document before it (an update or delete) and that
    /// version matches.
    MatchedBefore(Filter),
    /// The change has a document after it (an insert or update) and that
    /// version matches.
    MatchesAfter(Filter),
    /// The field's value differs between old and new (inserts and deletes
    /// count when the field is present on their side).
    FieldChanged(String),
    /// The event's collection is one of these.
    Collections(Vec<String>),
    /// The event's collection is a user collection, not a system one
    /// (system collections have names starting with `_`, such as the job
    /// queue's `_jobs`).
    UserCollections,
    /// Every sub-filter matches.
    And(Vec<EventFilter>),
    /// At least one sub-filter matches.
    Or(Vec<EventFilter>),
    /// The sub-filter does not match.
    Not(Box<EventFilter>),
}

impl Serialize for EventFilter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EventFilter::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for EventFilter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let _level = aurora_core::DecodeLevel::enter().ok_or_else(|| {
            <D::Error as serde::de::Error>::custom(format!(
                "the event filter nests deeper than {} levels",
                aurora_core::MAX_DECODE_DEPTH
            ))
        })?;
        EventFilter::deserialize(deserializer)
    }
}

impl EventFilter {
    /// Events whose document has `field == value` (query semantics: for an
    /// array field, use [`Filter::InArray`] through [`EventFilter::Matches`]).
    pub fn field_equals(field: &str, value: impl Into<Value>) -> Self {
        EventFilter::Matches(Filter::Eq(field.into(), value.into()))
    }

    /// Events of documents that match `filter` before or after the change:
    /// every change that can add a document to, remove it from, or change
    /// it within the set `filter` selects.
    pub fn touches(filter: Filter) -> Self {
        EventFilter::Or(vec![EventFilter::MatchedBefore(filter.clone()), EventFilter::MatchesAfter(filter)])
    }

    /// A field and value that the document before or after every passing
    /// event has (`field == value`), if the filter implies one: the hub
    /// then finds this listener by looking the value up instead of testing
    /// its filter on every event.
    pub fn required_equality(&self) -> Option<(&str, &Value)> {
        match self {
            EventFilter::Matches(f) | EventFilter::MatchedBefore(f) | EventFilter::MatchesAfter(f) => {
                f.conjuncts().into_iter().find_map(|c| match c {
                    Filter::Eq(field, v) => Some((field.as_str(), v)),
                    _ => None,
                })
            }
            EventFilter::And(fs) => fs.iter().find_map(EventFilter::required_equality),
            EventFilter::Or(fs) => {
                let first = fs.first()?.required_equality()?;
                fs.iter().all(|f| f.required_equality() == Some(first)).then_some(first)
            }
            _ => None,
        }
    }

    /// Refuses a filter whose combinators (`And`/`Or`/`Not`) nest deeper
    /// than [`MAX_NESTING_DEPTH`](aurora_core::MAX_NESTING_DEPTH) levels,
    /// or any of whose query filters does ([`Filter::check_depth`]). The
    /// two are counted apart, so wrapping a valid query filter in a few
    /// combinators (as [`EventFilter::touches`] does) keeps it valid, and
    /// [`EventFilter::matches`] recurses at most twice the limit.
    /// [`crate::PubSub::listen`] calls this before a listener exists.
    ///
    /// # Errors
    /// [`CoreError::FilterTooDeep`].
    pub fn check_depth(&self) -> Result<(), CoreError> {
        self.check_depth_within(aurora_core::MAX_NESTING_DEPTH)
    }

    fn check_depth_within(&self, remaining: usize) -> Result<(), CoreError> {
        match self {
            EventFilter::Matches(f) | EventFilter::MatchedBefore(f) | EventFilter::MatchesAfter(f) => f.check_depth(),
            EventFilter::And(fs) | EventFilter::Or(fs) => {
                let inner = remaining
                    .checked_sub(1)
                    .ok_or(CoreError::FilterTooDeep { limit: aurora_core::MAX_NESTING_DEPTH })?;
                fs.iter().try_for_each(|f| f.check_depth_within(inner))
            }
            EventFilter::Not(f) => {
                let inner = remaining
                    .checked_sub(1)
                    .ok_or(CoreError::FilterTooDeep { limit: aurora_core::MAX_NESTING_DEPTH })?;
                f.check_depth_within(inner)
            }
            _ => Ok(()),
        }
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &ChangeEvent) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::ChangeType(t) => event.change_type == *t,
            EventFilter::Matches(f) => {
                event.document.as_deref().or(event.old_document.as_deref()).is_some_and(|d| f.matches(d))
            }
            EventFilter::MatchedBefore(f) => event.old_document.as_deref().is_some_and(|d| f.matches(d)),
            EventFilter::MatchesAfter(f) => event.document.as_deref().is_some_and(|d| f.matches(d)),
            EventFilter::FieldChanged(f) => {
                let old = event.old_document.as_deref().and_then(|d| d.get_path(f));
                let new = event.document.as_deref().and_then(|d| d.get_path(f));
                old != new
            }
            EventFilter::Collections(cs) => cs.contains(&event.collection),
            EventFilter::UserCollections => !event.collection.starts_with('_'),
            EventFilter::And(fs) => fs.iter().all(|x| x.matches(event)),
            EventFilter::Or(fs) => fs.iter().any(|x| x.matches(event)),
            EventFilter::Not(x) => !x.matches(event),
        }
    }
}

impl From<Filter> for EventFilter {
    /// [`EventFilter::Matches`].
    fn from(filter: Filter) -> Self {
        EventFilter::Matches(filter)
    }
}

impl BitAnd for EventFilter {
    type Output = EventFilter;
    fn bitand(self, rhs: EventFilter) -> EventFilter {
        match (self, rhs) {
            (EventFilter::And(mut a), r) => {
                a.push(r);
                EventFilter::And(a)
            }
            (l, r) => EventFilter::And(vec![l, r]),
        }
    }
}

impl BitOr for EventFilter {
    type Output = EventFilter;
    fn bitor(self, rhs: EventFilter) -> EventFilter {
        match (self, rhs) {
            (EventFilter::Or(mut a), r) => {
                a.push(r);
                EventFilter::Or(a)
            }
            (l, r) => EventFilter::Or(vec![l, r]),
        }
    }
}

impl Not for EventFilter {
    type Output = EventFilter;
    fn not(self) -> EventFilter {
        EventFilter::Not(Box::new(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_core::{doc, F};

    fn event(kind: ChangeType, old: Option<Document>, new: Option<Document>) -> ChangeEvent {
        ChangeEvent {
            collection: "c".into(),
            change_type: kind,
            id: DocId::new(),
            document: new.map(Arc::new),
            old_document: old.map(Arc::new),
            sequence: 1,
            transaction_id: 1,
            cause: ChangeCause::Write,
        }
    }

    #[test]
    fn filters() {
        let upd = event(ChangeType::Update, Some(doc! { "s": "a", "n": 1 }), Some(doc! { "s": "b", "n": 1 }));
        assert!(EventFilter::FieldChanged("s".into()).matches(&upd));
        assert!(!EventFilter::FieldChanged("n".into()).matches(&upd));
        assert!(EventFilter::field_equals("s", "b").matches(&upd));
        let del = event(ChangeType::Delete, Some(doc! { "s": "a" }), None);
        assert!(EventFilter::field_equals("s", "a").matches(&del), "deletes match on the old document");
        assert!(EventFilter::FieldChanged("s".into()).matches(&del));
        let f = EventFilter::ChangeType(ChangeType::Update) & EventFilter::Matches(F.has_field("n"));
        assert!(f.matches(&upd) && !f.matches(&del));
        assert!((EventFilter::ChangeType(ChangeType::Insert) | EventFilter::All).matches(&del));
        assert!(!(!EventFilter::All).matches(&del));
    }

    /// The event filter language is the query language: array membership,
    /// comparisons and negation behave as in queries.
    #[test]
    fn document_conditions_have_query_semantics() {
        let ins = event(ChangeType::Insert, None, Some(doc! { "tags": ["a", "b"], "total": 150 }));
        assert!(EventFilter::Matches(F.in_array("tags", "a")).matches(&ins), "array membership");
        assert!(!EventFilter::field_equals("tags", "a").matches(&ins), "equality is not membership, as in queries");
        assert!(EventFilter::Matches(F.gte("total", 100)).matches(&ins));
        assert!(!EventFilter::Matches(!F.gte("total", 100)).matches(&ins));
        assert!(!EventFilter::MatchedBefore(Filter::All).matches(&ins), "an insert has no before");
        let moved_out = event(ChangeType::Update, Some(doc! { "total": 150 }), Some(doc! { "total": 5 }));
        let touches = EventFilter::touches(F.gte("total", 100));
        assert!(touches.matches(&moved_out), "leaving the set touches it");
        assert!(!EventFilter::Matches(F.gte("total", 100)).matches(&moved_out));
        let elsewhere = event(ChangeType::Update, Some(doc! { "total": 1 }), Some(doc! { "total": 5 }));
        assert!(!touches.matches(&elsewhere));
    }

    #[test]
    fn required_equalities_are_found_where_they_hold() {
        let room = Value::from("a");
        let eq = |f: EventFilter| f.required_equality().map(|(f, v)| (f.to_string(), v.clone()));
        let want = Some(("room".to_string(), room.clone()));
        assert_eq!(eq(EventFilter::field_equals("room", "a")), want);
        assert_eq!(eq(EventFilter::touches(F.eq("room", "a") & F.gt("n", 1))), want);
        assert_eq!(eq(EventFilter::ChangeType(ChangeType::Insert) & EventFilter::field_equals("room", "a")), want);
        assert_eq!(eq(EventFilter::field_equals("room", "a") | EventFilter::field_equals("room", "b")), None);
        assert_eq!(eq(EventFilter::Matches(F.eq("room", "a") | F.eq("x", 1))), None);
        assert_eq!(eq(!EventFilter::field_equals("room", "a")), None);
    }
}
