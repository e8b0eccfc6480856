//! [`ChangeEvent`] and [`EventFilter`]: what listeners receive, and how they
//! choose.

use aurora_core::{DocId, Document, Value};
use serde::{Deserialize, Serialize};
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
}

/// Which events a listener receives; evaluated before delivery. Data, so it
/// can be stored or sent over a network later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum EventFilter {
    /// Every event.
    #[default]
    All,
    /// Events of one kind.
    ChangeType(ChangeType),
    /// The new (or, for deletes, the old) document has the field.
    HasField(String),
    /// The new (or, for deletes, the old) document's field equals the value.
    FieldEquals(String, Value),
    /// The field's value differs between old and new (inserts and deletes
    /// count when the field is present on their side).
    FieldChanged(String),
    /// Every sub-filter matches.
    And(Vec<EventFilter>),
    /// At least one sub-filter matches.
    Or(Vec<EventFilter>),
}

impl EventFilter {
    /// Whether `event` passes.
    pub fn matches(&self, event: &ChangeEvent) -> bool {
        let current = event.document.as_deref().or(event.old_document.as_deref());
        match self {
            EventFilter::All => true,
            EventFilter::ChangeType(t) => event.change_type == *t,
            EventFilter::HasField(f) => current.is_some_and(|d| d.get_path(f).is_some()),
            EventFilter::FieldEquals(f, v) => current.and_then(|d| d.get_path(f)).is_some_and(|x| x == v),
            EventFilter::FieldChanged(f) => {
                let old = event.old_document.as_deref().and_then(|d| d.get_path(f));
                let new = event.document.as_deref().and_then(|d| d.get_path(f));
                old != new
            }
            EventFilter::And(fs) => fs.iter().all(|x| x.matches(event)),
            EventFilter::Or(fs) => fs.iter().any(|x| x.matches(event)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_core::doc;

    fn event(kind: ChangeType, old: Option<Document>, new: Option<Document>) -> ChangeEvent {
        ChangeEvent {
            collection: "c".into(),
            change_type: kind,
            id: DocId::new(),
            document: new.map(Arc::new),
            old_document: old.map(Arc::new),
            sequence: 1,
            transaction_id: 1,
        }
    }

    #[test]
    fn filters() {
        let upd = event(ChangeType::Update, Some(doc! { "s": "a", "n": 1 }), Some(doc! { "s": "b", "n": 1 }));
        assert!(EventFilter::FieldChanged("s".into()).matches(&upd));
        assert!(!EventFilter::FieldChanged("n".into()).matches(&upd));
        assert!(EventFilter::FieldEquals("s".into(), Value::from("b")).matches(&upd));
        let del = event(ChangeType::Delete, Some(doc! { "s": "a" }), None);
        assert!(
            EventFilter::FieldEquals("s".into(), Value::from("a")).matches(&del),
            "deletes match on the old document"
        );
        assert!(EventFilter::FieldChanged("s".into()).matches(&del));
        let f = EventFilter::And(vec![EventFilter::ChangeType(ChangeType::Update), EventFilter::HasField("n".into())]);
        assert!(f.matches(&upd) && !f.matches(&del));
        assert!(EventFilter::Or(vec![EventFilter::ChangeType(ChangeType::Insert), EventFilter::All]).matches(&del));
    }
}
