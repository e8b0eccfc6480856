//! Feeding the transaction layer's ordered change sink into the event hub
//! (and on to a user's own sink).

use aurora_pubsub::{ChangeCause, ChangeEvent, ChangeType, CommitEvents, EventFilter, PubSub};
use aurora_txn::{ChangeKind, ChangeSink, Committed};
use std::sync::Arc;

/// Publishes every commit's changes as events, then hands the commit on.
pub(crate) struct EventSink {
    pub(crate) pubsub: PubSub,
    pub(crate) next: Arc<dyn ChangeSink>,
}

/// Which collections a feed read ([`crate::Aurora::changes_since_in`]) or
/// a resumed listener ([`crate::Aurora::listen_from_in`]) covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FeedScope {
    /// Every user collection; not the system collections (names starting
    /// with `_`, such as the job queue's `_jobs`). The default.
    #[default]
    User,
    /// Only these collections (system ones included if named).
    Collections(Vec<String>),
    /// Every collection, system ones included.
    All,
}

impl FeedScope {
    /// Only these collections.
    pub fn collections<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        FeedScope::Collections(names.into_iter().map(Into::into).collect())
    }

    /// The same choice as an event filter.
    pub fn event_filter(&self) -> EventFilter {
        match self {
            FeedScope::User => EventFilter::UserCollections,
            FeedScope::Collections(names) => EventFilter::Collections(names.clone()),
            FeedScope::All => EventFilter::All,
        }
    }
}

/// The events of one committed transaction in `scope` (`None` if none is).
pub(crate) fn commit_events(committed: &Committed, scope: &EventFilter) -> Option<CommitEvents> {
    let events: Vec<ChangeEvent> = events_of(committed).into_iter().filter(|e| scope.matches(e)).collect();
    (!events.is_empty()).then_some(CommitEvents {
        sequence: committed.sequence,
        transaction_id: committed.transaction_id,
        events,
    })
}

fn events_of(committed: &Committed) -> Vec<ChangeEvent> {
    // An expiry commit carries its mark (see `ttl`): its deletes say why.
    let expiry = committed.changes.iter().any(|c| c.collection == crate::ttl::EXPIRY_MARK);
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
            cause: if expiry && matches!(c.kind, ChangeKind::Delete) {
                ChangeCause::Expired
            } else {
                ChangeCause::Write
            },
        })
        .collect()
}

impl ChangeSink for EventSink {
    fn publish(&self, committed: Committed) {
        if !committed.changes.is_empty() {
            self.pubsub.publish_with(|| events_of(&committed));
        }
        self.next.publish(committed);
    }
}
