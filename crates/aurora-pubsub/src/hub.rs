//! [`PubSub`]: the subscriptions. Listeners are grouped by collection (plus
//! a global group); a group exists while it has listeners. Publishing one
//! commit runs each candidate listener's filter on the commit's events and
//! appends the passing ones to that listener's own bounded queue as one
//! unit, so a listener buffers only what it will receive. Listeners whose
//! filter implies `field == value` ([`EventFilter::required_equality`]) are
//! indexed by that value, so an event reaches only the listeners of its
//! values (a chat room's listeners, not every room's). Publishing never
//! waits: a listener that falls behind loses its oldest whole commits and
//! is told how many events it missed.

use crate::event::{ChangeEvent, EventFilter};
use crate::listener::Listener;
use crate::pending::{self, Events, Pending};
use crate::queue::SharedQueue;
use aurora_core::{CoreError, Value};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Events buffered per listener before a slow listener starts to lag (default).
pub const DEFAULT_CAPACITY: usize = 4096;

/// Where change events are published and listened to.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aurora_pubsub::{ChangeEvent, ChangeType, EventFilter, PubSub};
/// use aurora_core::DocId;
/// let hub = PubSub::new(16);
/// let mut users = hub.listen("users", EventFilter::ChangeType(ChangeType::Insert)).unwrap();
/// let event = ChangeEvent { collection: "users".into(), change_type: ChangeType::Insert, id: DocId::new(),
///     document: None, old_document: None, sequence: 1, transaction_id: 1, cause: Default::default() };
/// hub.publish(vec![event.clone()]);
/// assert_eq!(users.recv().await.unwrap(), event);
/// # }
/// ```
#[derive(Clone)]
pub struct PubSub {
    pub(crate) inner: Arc<Hub>,
}

pub(crate) struct Hub {
    /// Subscribers by collection; global listeners are stored under
    /// [`GLOBAL`], a name no collection can have.
    pub(crate) groups: RwLock<HashMap<String, Group>>,
    /// Events buffered per listener.
    capacity: usize,
    /// Set by [`PubSub::close`].
    closed: AtomicBool,
    /// Subscriber ids.
    next_id: AtomicU64,
    /// Commits published with at least one event.
    published: AtomicU64,
    /// Events every listener lost to lag, in total (shared with them).
    dropped: Arc<AtomicU64>,
}

/// The hub's counters ([`PubSub::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Listeners open now (collection and global).
    pub listeners: usize,
    /// Events buffered in all listeners now (delivered, not yet received).
    pub buffered_events: usize,
    /// Commits published since the hub was made.
    pub commits_published: u64,
    /// Events dropped from slow listeners' buffers, in total: each is
    /// reported to its listener as `RecvError::Lagged`, except those a
    /// resumed listener's replayed history holds (`Listener::resume_with`).
    pub events_dropped: u64,
    /// The listener lag: events buffered in the slowest listener now (its
    /// buffer holds at most the hub's capacity plus one commit; beyond it,
    /// events are dropped and counted in `events_dropped`).
    pub max_listener_lag: usize,
    /// Live queries open now (listeners held by a live query, counted in
    /// `listeners` too).
    pub live_queries: usize,
}

/// The group key of `listen_all`.
pub(crate) const GLOBAL: &str = "\0all";

/// The listeners of one collection (or the global ones).
#[derive(Default)]
pub(crate) struct Group {
    /// Listeners offered every event.
    scan: Vec<Arc<Subscriber>>,
    /// Listeners by the field and value every event they receive has.
    by_value: HashMap<String, HashMap<Value, Vec<Arc<Subscriber>>>>,
    /// Listeners in the group.
    len: usize,
}

impl Group {
    fn add(&mut self, s: Arc<Subscriber>) {
        self.len += 1;
        match &s.index {
            Some((field, value)) => {
                self.by_value.entry(field.clone()).or_default().entry(value.clone()).or_default().push(s)
            }
            None => self.scan.push(s),
        }
    }

    fn remove(&mut self, s: &Subscriber) {
        let list = match &s.index {
            Some((field, value)) => self.by_value.get_mut(field).and_then(|m| m.get_mut(value)),
            None => Some(&mut self.scan),
        };
        if let Some(list) = list {
            if let Some(i) = list.iter().position(|x| x.id == s.id) {
                list.swap_remove(i);
                self.len -= 1;
            }
        }
        if let Some((field, value)) = &s.index {
            if let Some(m) = self.by_value.get_mut(field) {
                if m.get(value).is_some_and(Vec::is_empty) {
                    m.remove(value);
                }
                if m.is_empty() {
                    self.by_value.remove(field);
                }
            }
        }
    }

    fn each(&self, mut f: impl FnMut(&Subscriber)) {
        for s in &self.scan {
            f(s);
        }
        for s in self.by_value.values().flat_map(|m| m.values().flatten()) {
            f(s);
        }
    }

    fn all(self) -> impl Iterator<Item = Arc<Subscriber>> {
        self.scan.into_iter().chain(self.by_value.into_values().flat_map(|m| m.into_values().flatten()))
    }

    /// Offers `events` (one commit's, of this group) to every listener
    /// that may pass one of them.
    fn offer(&self, sequence: u64, transaction_id: u64, events: &Events, capacity: usize) {
        for s in &self.scan {
            s.offer(sequence, transaction_id, events, capacity);
        }
        if self.by_value.is_empty() {
            return;
        }
        let mut candidates: Vec<&Arc<Subscriber>> = Vec::new();
        for (field, buckets) in &self.by_value {
            for e in events.iter().flatten() {
                for d in [e.old_document.as_deref(), e.document.as_deref()].into_iter().flatten() {
                    // `_id` is the document's id, as filters read it.
                    let id = std::cell::OnceCell::new();
                    if let Some(subs) = d.get_path_or_id(field, &id).and_then(|v| buckets.get(v)) {
                        candidates.extend(subs);
                    }
                }
            }
        }
        if candidates.len() > 1 {
            candidates.sort_unstable_by_key(|s| s.id);
            candidates.dedup_by_key(|s| s.id);
        }
        for s in candidates {
            s.offer(sequence, transaction_id, events, capacity);
        }
    }
}

/// One listener's side of the hub: its filter and its queue.
pub(crate) struct Subscriber {
    pub(crate) id: u64,
    pub(crate) filter: EventFilter,
    /// Where the group indexes it ([`EventFilter::required_equality`]).
    index: Option<(String, Value)>,
    pub(crate) queue: SharedQueue,
    /// Held by a live query ([`Listener::mark_live_query`]), for the stats.
    pub(crate) live_query: AtomicBool,
    /// Its own buffer size in events, instead of the hub's
    /// ([`PubSub::listen_buffered`]).
    capacity: Option<usize>,
    /// The hub's lost-events counter.
    dropped: Arc<AtomicU64>,
}

impl Subscriber {
    /// Appends the passing events of one commit (as one unit), dropping the
    /// oldest whole commits beyond `capacity` events (the newest commit is
    /// always kept whole, however large).
    fn offer(&self, sequence: u64, transaction_id: u64, events: &Events, capacity: usize) {
        let capacity = self.capacity.unwrap_or(capacity);
        let Some(passing) = pending::passing(events, |e| self.filter.matches(e)) else { return };
        let waker = {
            let mut q = self.queue.lock();
            if q.closed {
                return;
            }
            let dropped = q.push_bounded(Pending::new(sequence, transaction_id, passing), capacity);
            if dropped > 0 {
                self.dropped.fetch_add(dropped, Ordering::Relaxed);
            }
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Marks the queue closed and wakes its listener.
    fn close(&self) {
        let waker = {
            let mut q = self.queue.lock();
            q.closed = true;
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl PubSub {
    /// A hub whose listeners buffer `capacity` events each.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Hub {
                groups: RwLock::new(HashMap::new()),
                capacity: capacity.max(1),
                closed: AtomicBool::new(false),
                next_id: AtomicU64::new(1),
                published: AtomicU64::new(0),
                dropped: Arc::new(AtomicU64::new(0)),
            }),
        }
    }

    /// Listens to one collection's events that pass `filter`.
    ///
    /// # Errors
    /// [`CoreError::FilterTooDeep`] when `filter` nests too deep
    /// ([`EventFilter::check_depth`]); no listener is created.
    pub fn listen(&self, collection: &str, filter: EventFilter) -> Result<Listener, CoreError> {
        filter.check_depth()?;
        Ok(self.subscribe(collection, filter))
    }

    /// Listens to every collection's events that pass `filter`.
    ///
    /// # Errors
    /// As [`PubSub::listen`].
    pub fn listen_all(&self, filter: EventFilter) -> Result<Listener, CoreError> {
        filter.check_depth()?;
        Ok(self.subscribe(GLOBAL, filter))
    }

    /// Listens to every event of one collection (cannot fail).
    pub fn listen_unfiltered(&self, collection: &str) -> Listener {
        self.subscribe(collection, EventFilter::All)
    }

    /// Listens to every event of every collection (cannot fail).
    pub fn listen_all_unfiltered(&self) -> Listener {
        self.subscribe(GLOBAL, EventFilter::All)
    }

    /// Like [`PubSub::listen_unfiltered`], with a buffer of its own of
    /// `capacity` events (at least 1) instead of the hub's: for a consumer
    /// that falls back to something dearer when it lags, such as a search
    /// index that would read the commits back from the change feed. The
    /// buffer holds shared events (their documents are not copied); the
    /// newest commit is still kept whole.
    ///
    /// ```
    /// use aurora_core::doc;
    /// use aurora_pubsub::{ChangeCause, ChangeEvent, ChangeType, PubSub};
    /// let hub = PubSub::new(1);
    /// let mut small = hub.listen_unfiltered("t");
    /// let mut roomy = hub.listen_buffered("t", 100);
    /// for seq in 1..=3 {
    ///     let d = doc! { "n": seq as i64 };
    ///     hub.publish(vec![ChangeEvent {
    ///         collection: "t".into(), change_type: ChangeType::Insert, id: d.id.clone(),
    ///         document: Some(std::sync::Arc::new(d)), old_document: None,
    ///         sequence: seq, transaction_id: seq, cause: ChangeCause::Write,
    ///     }]);
    /// }
    /// assert!(small.try_recv_commit().is_some_and(|r| r.is_err()), "lagged: two commits dropped");
    /// assert_eq!(roomy.try_recv_commit().and_then(Result::ok).map(|c| c.sequence), Some(1), "kept all three");
    /// ```
    pub fn listen_buffered(&self, collection: &str, capacity: usize) -> Listener {
        self.subscribe_with(collection, EventFilter::All, Some(capacity.max(1)))
    }

    fn subscribe(&self, key: &str, filter: EventFilter) -> Listener {
        self.subscribe_with(key, filter, None)
    }

    fn subscribe_with(&self, key: &str, filter: EventFilter, capacity: Option<usize>) -> Listener {
        let index = filter.required_equality().map(|(f, v)| (f.to_string(), v.clone()));
        let subscriber = Arc::new(Subscriber {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            filter,
            index,
            queue: SharedQueue::default(),
            live_query: AtomicBool::new(false),
            capacity,
            dropped: Arc::clone(&self.inner.dropped),
        });
        // The closed flag is read under the write lock, which `close` also
        // takes: a listener either is closed at once or is in a group that
        // `close` ends.
        let mut groups = self.inner.groups.write();
        if self.inner.closed.load(Ordering::Acquire) {
            subscriber.queue.lock().closed = true;
        } else {
            groups.entry(key.to_string()).or_default().add(Arc::clone(&subscriber));
        }
        drop(groups);
        Listener::new(Arc::clone(&self.inner), key.to_string(), subscriber)
    }

    /// Ends every listener: each still receives the events published
    /// before, then [`crate::RecvError::Closed`]; listeners created later
    /// are closed at once, and later publishes go nowhere. (The database
    /// handle calls this when it closes.)
    pub fn close(&self) {
        let mut groups = self.inner.groups.write();
        self.inner.closed.store(true, Ordering::Release);
        for subscriber in groups.drain().flat_map(|(_, group)| group.all()) {
            subscriber.close();
        }
    }

    /// Publishes one commit's events (they share a sequence), in order, to
    /// the listeners of their collections and the global ones. Each
    /// listener receives the events that pass its filter as one unit. Never
    /// blocks on a listener; a collection without listeners costs a lookup.
    pub fn publish(&self, events: Vec<ChangeEvent>) {
        let Some(first) = events.first() else { return };
        let (sequence, transaction_id) = (first.sequence, first.transaction_id);
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        let events: Vec<Arc<ChangeEvent>> = events.into_iter().map(Arc::new).collect();
        let capacity = self.inner.capacity;
        let groups = self.inner.groups.read();
        if groups.is_empty() {
            return;
        }
        // A collection's listeners are offered that collection's events of
        // the commit (in their original order) as one unit; a commit of
        // one collection is one run, shared with the global listeners.
        let mut by_collection: Vec<(&str, Vec<Arc<ChangeEvent>>)> = Vec::new();
        for e in &events {
            match by_collection.iter_mut().find(|(c, _)| *c == e.collection) {
                Some((_, run)) => run.push(Arc::clone(e)),
                None => by_collection.push((e.collection.as_str(), vec![Arc::clone(e)])),
            }
        }
        let mut all: Option<Events> = None;
        for (collection, run) in by_collection {
            if let Some(group) = groups.get(collection) {
                let run = pending::events(run);
                group.offer(sequence, transaction_id, &run, capacity);
                if run.len() == events.len() {
                    all = Some(run);
                }
            }
        }
        if let Some(group) = groups.get(GLOBAL) {
            let all = all.unwrap_or_else(|| pending::events(events.iter().cloned()));
            group.offer(sequence, transaction_id, &all, capacity);
        }
    }

    /// Like [`PubSub::publish`] for a commit with at least one change,
    /// building its events only if some listener exists: a commit while
    /// nobody listens costs a lock check, not an event (and an allocation)
    /// per change.
    pub fn publish_with(&self, events: impl FnOnce() -> Vec<ChangeEvent>) {
        if self.inner.groups.read().is_empty() {
            self.inner.published.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.publish(events());
    }

    /// Groups currently open: collections with listeners, plus the global
    /// group while it has listeners.
    pub fn channel_count(&self) -> usize {
        self.inner.groups.read().len()
    }

    /// Listeners, buffered events, commits published and events lost to
    /// lag (walks the listeners: meant for metrics, not per event).
    pub fn stats(&self) -> HubStats {
        let groups = self.inner.groups.read();
        let (mut listeners, mut buffered_events, mut max_listener_lag, mut live_queries) = (0, 0, 0, 0);
        for group in groups.values() {
            group.each(|s| {
                listeners += 1;
                let len = s.queue.lock().len;
                buffered_events += len;
                max_listener_lag = max_listener_lag.max(len);
                live_queries += usize::from(s.live_query.load(Ordering::Relaxed));
            });
        }
        HubStats {
            listeners,
            buffered_events,
            commits_published: self.inner.published.load(Ordering::Relaxed),
            events_dropped: self.inner.dropped.load(Ordering::Relaxed),
            max_listener_lag,
            live_queries,
        }
    }

    /// Listeners of one collection (not counting global listeners).
    pub fn listener_count(&self, collection: &str) -> usize {
        self.inner.groups.read().get(collection).map_or(0, |g| g.len)
    }
}

impl Hub {
    /// Removes a dropped listener; its group goes with its last listener.
    pub(crate) fn unsubscribe(&self, key: &str, subscriber: &Subscriber) {
        let mut groups = self.groups.write();
        if let Some(group) = groups.get_mut(key) {
            group.remove(subscriber);
            if group.len == 0 {
                groups.remove(key);
            }
        }
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
