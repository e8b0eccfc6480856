//! [`PubSub`]: the channels. One broadcast channel per collection with
//! listeners, plus a global one; created on the first listener, removed
//! when the last one drops. Publishing never waits: a listener that falls
//! behind loses the oldest events from its buffer and is told how many.

use crate::event::{ChangeEvent, EventFilter};
use crate::listener::Listener;
use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events buffered per channel before a slow listener starts to lag (default).
pub const DEFAULT_CAPACITY: usize = 4096;

pub(crate) type Sender = broadcast::Sender<Arc<ChangeEvent>>;

/// Where change events are published and listened to.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aurora_pubsub::{ChangeEvent, ChangeType, EventFilter, PubSub};
/// use aurora_core::DocId;
/// let hub = PubSub::new(16);
/// let mut users = hub.listen("users", EventFilter::ChangeType(ChangeType::Insert));
/// let event = ChangeEvent { collection: "users".into(), change_type: ChangeType::Insert, id: DocId::new(),
///     document: None, old_document: None, sequence: 1, transaction_id: 1 };
/// hub.publish(vec![event.clone()]);
/// assert_eq!(users.recv().await.unwrap(), event);
/// # }
/// ```
#[derive(Clone)]
pub struct PubSub {
    pub(crate) inner: Arc<Hub>,
}

pub(crate) struct Hub {
    /// Channels by collection; the global channel is stored under
    /// [`GLOBAL`], a name no collection can have.
    pub(crate) channels: DashMap<String, Sender>,
    /// Events buffered per listener.
    capacity: usize,
    /// Set by [`PubSub::close`].
    closed: std::sync::atomic::AtomicBool,
}

/// The channel key of `listen_all`.
pub(crate) const GLOBAL: &str = "\0all";

impl PubSub {
    /// A hub whose channels buffer `capacity` events per listener.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Hub {
                channels: DashMap::new(),
                capacity: capacity.max(1),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Listens to one collection's events that pass `filter`.
    pub fn listen(&self, collection: &str, filter: EventFilter) -> Listener {
        self.subscribe(collection, filter)
    }

    /// Listens to every collection's events that pass `filter`.
    pub fn listen_all(&self, filter: EventFilter) -> Listener {
        self.subscribe(GLOBAL, filter)
    }

    fn subscribe(&self, key: &str, filter: EventFilter) -> Listener {
        // Subscribing under the map's entry lock orders it against the
        // removal of an empty channel (also done under that lock).
        // The closed flag is read under the entry lock too, so a listener
        // either sees the hub closed or has its channel cleared by `close`.
        let entry = self.inner.channels.entry(key.to_string());
        let rx = if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
            drop(entry);
            broadcast::channel(1).1 // its sender is gone: closed at once
        } else {
            entry.or_insert_with(|| broadcast::channel(self.inner.capacity).0).subscribe()
        };
        Listener::new(Arc::clone(&self.inner), key.to_string(), rx, filter)
    }

    /// Ends every listener: each still receives the events published
    /// before, then [`crate::RecvError::Closed`]; listeners created later
    /// are closed at once, and later publishes go nowhere. (The database
    /// handle calls this when it closes.)
    pub fn close(&self) {
        self.inner.closed.store(true, std::sync::atomic::Ordering::Release);
        self.inner.channels.clear();
    }

    /// Publishes one commit's events, in order, to their collections'
    /// channels and the global one. Never blocks; a channel without
    /// listeners costs nothing.
    pub fn publish(&self, events: Vec<ChangeEvent>) {
        let global = self.inner.channels.get(GLOBAL).map(|s| s.clone());
        for event in events {
            let event = Arc::new(event);
            if let Some(tx) = self.inner.channels.get(&event.collection) {
                // An error only means no listener is left; nothing to do.
                let _ = tx.send(Arc::clone(&event));
            }
            if let Some(tx) = &global {
                let _ = tx.send(event);
            }
        }
    }

    /// Channels currently open (collections with listeners, plus the global
    /// one while it has listeners).
    pub fn channel_count(&self) -> usize {
        self.inner.channels.len()
    }

    /// Listeners of one collection (not counting global listeners).
    pub fn listener_count(&self, collection: &str) -> usize {
        self.inner.channels.get(collection).map_or(0, |s| s.receiver_count())
    }
}

impl Default for PubSub {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSub").field("channels", &self.channel_count()).finish()
    }
}
