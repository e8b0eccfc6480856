//! Feeding the transaction layer's ordered change sink into the event hub
//! (and on to a user's own sink).

use aurora_pubsub::{ChangeEvent, ChangeType, PubSub};
use aurora_txn::{ChangeKind, ChangeSink, Committed};
use std::sync::Arc;

/// Publishes every commit's changes as events, then hands the commit on.
pub(crate) struct EventSink {
    pub(crate) pubsub: PubSub,
    pub(crate) next: Arc<dyn ChangeSink>,
}

/// The events of one committed transaction.
pub(crate) fn to_events(committed: Committed) -> Vec<ChangeEvent> {
    events_of(&committed)
}

fn events_of(committed: &Committed) -> Vec<ChangeEvent> {
    committed
        .changes
        .iter()
        .map(|c| ChangeEvent {
            collection: c.collection.clone(),
            change_type: match c.kind {
                ChangeKind::Insert => ChangeType::Insert,
                ChangeKind::Update => ChangeType::Update,
                ChangeKind::Delete => ChangeType::Delete,
            },
            id: c.id.clone(),
            document: c.new.clone(),
            old_document: c.old.clone(),
            sequence: committed.sequence,
            transaction_id: committed.transaction_id,
        })
        .collect()
}

impl ChangeSink for EventSink {
    fn publish(&self, committed: Committed) {
        self.pubsub.publish(events_of(&committed));
        self.next.publish(committed);
    }
}
