//! [`Database`]: the synchronous core users' handles wrap — collections,
//! the change sink, and transactions.

use crate::error::{Result, TxnError};
use crate::sink::{ChangeSink, CommitObserver, Committed, NoSink};
use crate::transaction::{Isolation, Transaction};
use aurora_index::Collections;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Attempts [`Database::transaction`] makes before returning the conflict.
pub const MAX_TRANSACTION_ATTEMPTS: u32 = 16;

/// Collections plus transactions: every write goes through a
/// [`Transaction`] (single-document writes are one-operation transactions),
/// and every commit's changes reach the [`ChangeSink`] in commit order.
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) collections: Collections,
    pub(crate) sink: Arc<dyn ChangeSink>,
    next_txn: AtomicU64,
    isolation: Isolation,
    /// Whether commits append to the persistent change feed.
    pub(crate) change_feed: bool,
    /// The feed's retained entries, so trimming need not read the feed.
    pub(crate) feed_index: parking_lot::Mutex<crate::feed::FeedIndex>,
    /// One trim at a time (the floor must only move forward).
    pub(crate) feed_trim: parking_lot::Mutex<()>,
    /// Run-time observers, by registration id.
    observers: parking_lot::RwLock<Vec<(u64, Arc<dyn CommitObserver>)>>,
    next_observer: AtomicU64,
}

impl Inner {
    /// Hands a commit to the observers, then the sink.
    pub(crate) fn publish(&self, committed: Committed) {
        for (_, observer) in self.observers.read().iter() {
            observer.observe(&committed);
        }
        self.sink.publish(committed);
    }
}

/// Keeps a [`CommitObserver`] registered; dropping it unregisters.
#[must_use = "dropping the registration stops the observer at once"]
pub struct Observation {
    db: std::sync::Weak<Inner>,
    id: u64,
}

impl Drop for Observation {
    fn drop(&mut self) {
        if let Some(inner) = self.db.upgrade() {
            inner.observers.write().retain(|(id, _)| *id != self.id);
        }
    }
}

impl std::fmt::Debug for Observation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observation").field("id", &self.id).finish()
    }
}

impl Database {
    /// Wraps collections; changes go to `sink`.
    pub fn new(collections: Collections, sink: Arc<dyn ChangeSink>) -> Self {
        Self::with_isolation(collections, sink, Isolation::default())
    }

    /// Like [`Database::new`] with a default isolation level for `begin`.
    pub fn with_isolation(collections: Collections, sink: Arc<dyn ChangeSink>, isolation: Isolation) -> Self {
        Self::with_options(collections, sink, isolation, false)
    }

    /// Like [`Database::with_isolation`]; with `change_feed`, every commit
    /// also appends its changes to the persistent feed (see
    /// [`Database::changes_since`]).
    pub fn with_options(
        collections: Collections,
        sink: Arc<dyn ChangeSink>,
        isolation: Isolation,
        change_feed: bool,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                collections,
                sink,
                next_txn: AtomicU64::new(1),
                isolation,
                change_feed,
                feed_index: parking_lot::Mutex::new(crate::feed::FeedIndex::default()),
                feed_trim: parking_lot::Mutex::new(()),
                observers: parking_lot::RwLock::new(Vec::new()),
                next_observer: AtomicU64::new(1),
            }),
        }
    }

    /// Wraps collections with no sink.
    pub fn without_sink(collections: Collections) -> Self {
        Self::new(collections, Arc::new(NoSink))
    }

    /// The collection layer.
    pub fn collections(&self) -> &Collections {
        &self.inner.collections
    }

    /// Registers `observer` to see every commit from now on, in commit
    /// order, until the returned [`Observation`] drops. To combine it with
    /// a read of the current state without gaps, take a snapshot *after*
    /// registering: every commit the observer missed is visible in that
    /// snapshot, and observed commits with a sequence at or below the
    /// snapshot's revision are already in it.
    pub fn observe(&self, observer: Arc<dyn CommitObserver>) -> Observation {
        let id = self.inner.next_observer.fetch_add(1, Ordering::Relaxed);
        self.inner.observers.write().push((id, observer));
        Observation { db: Arc::downgrade(&self.inner), id }
    }

    /// Starts a transaction at the default isolation level, reading a
    /// snapshot of the current revision.
    pub fn begin(&self) -> Result<Transaction> {
        self.begin_with(self.inner.isolation)
    }

    /// Starts a transaction at the given isolation level.
    pub fn begin_with(&self, isolation: Isolation) -> Result<Transaction> {
        let snapshot = self.inner.collections.documents().store().snapshot()?;
        Ok(Transaction::new(self.clone(), snapshot, self.next_transaction_id(), isolation))
    }

    /// A fresh transaction id (also given to the batched insert path's commits).
    pub(crate) fn next_transaction_id(&self) -> u64 {
        self.inner.next_txn.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `body` in a transaction and commits it, retrying the whole
    /// transaction on [`TxnError::Conflict`] up to
    /// [`MAX_TRANSACTION_ATTEMPTS`] times with a short growing back-off. Any
    /// other error aborts at once. `body` may run several times: keep side
    /// effects out of it.
    pub fn transaction<T>(&self, mut body: impl FnMut(&mut Transaction) -> Result<T>) -> Result<T> {
        let mut last = None;
        for attempt in 0..MAX_TRANSACTION_ATTEMPTS {
            if attempt > 0 {
                // Back off a little, growing, so contending retries spread out.
                std::thread::sleep(std::time::Duration::from_micros(20 << attempt.min(8)));
            }
            let mut tx = self.begin()?;
            let out = body(&mut tx)?;
            match tx.commit() {
                Ok(_) => return Ok(out),
                Err(e) if e.is_retryable() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(TxnError::Finished))
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("isolation", &self.inner.isolation).finish()
    }
}
