//! [`Listener`]: receives the events that pass its filter, commit by commit.

use crate::event::{ChangeEvent, CommitEvents, EventFilter};
use crate::hub::{Hub, Subscriber, GLOBAL};
use crate::pending::{self, Pending};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Why `recv` returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The listener fell behind and this many events that passed its filter
    /// were dropped from its buffer (it is never silently skipped). Whole
    /// commits are dropped, oldest first; receiving continues with the
    /// oldest commit still buffered.
    #[error("the listener fell behind and missed {0} events")]
    Lagged(u64),
    /// The database closed; no more events will come.
    #[error("the event source is closed")]
    Closed,
}

/// A subscription to change events. Dropping the last listener of a
/// collection removes that collection's group.
///
/// Events can be read one at a time ([`Listener::recv`], the `Stream`
/// implementation) or one commit at a time ([`Listener::recv_commit`]);
/// either way they come in commit order, and a commit's events are
/// buffered, dropped on lag and delivered as one unit.
pub struct Listener {
    hub: Arc<Hub>,
    key: String,
    subscriber: Arc<Subscriber>,
    /// Replayed history, delivered before live events.
    backlog: VecDeque<Pending>,
    /// Live commits at or below this sequence were already replayed.
    replayed_through: u64,
}

impl Listener {
    pub(crate) fn new(hub: Arc<Hub>, key: String, subscriber: Arc<Subscriber>) -> Self {
        Self { hub, key, subscriber, backlog: VecDeque::new(), replayed_through: 0 }
    }

    /// Turns this (already subscribed) listener into a resumed one: it
    /// first delivers `backlog` (history read *after* subscribing, whole
    /// commits, passed through this listener's filter and, for a
    /// collection's listener, kept to that collection), then live commits
    /// newer than the backlog and than `through` — so the seam has no gap
    /// (the subscription predates the history read) and no duplicate (live
    /// commits already replayed are skipped). Live commits dropped from the
    /// buffer while the history was read are reported as a lag only if
    /// the history does not hold them.
    pub fn resume_with(mut self, backlog: Vec<CommitEvents>, through: u64) -> Self {
        self.replayed_through = backlog.iter().map(|c| c.sequence).max().unwrap_or(0).max(through);
        // The events this listener would have been offered live: its
        // collection's (all, for a global listener) that pass its filter.
        let offered =
            |e: &ChangeEvent| (self.key == GLOBAL || e.collection == self.key) && self.subscriber.filter.matches(e);
        self.backlog = backlog
            .into_iter()
            .filter(|c| c.sequence > through)
            .map(|c| {
                let events = c.events.into_iter().filter(|e| offered(e)).map(Arc::new);
                Pending::new(c.sequence, c.transaction_id, pending::events(events))
            })
            .filter(|p| p.len() > 0)
            .collect();
        // Live commits the history delivered are not buffered twice, and
        // not counted as lost if they were dropped meanwhile.
        self.subscriber.queue.lock().forget_replayed(self.replayed_through, &self.backlog);
        self
    }

    /// Marks this listener as the one a live query holds, so that
    /// [`crate::HubStats::live_queries`] counts it.
    pub fn mark_live_query(&self) {
        self.subscriber.live_query.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The filter this listener was created with.
    pub fn filter(&self) -> &EventFilter {
        &self.subscriber.filter
    }

    /// The next event passing the filter, or why there is none.
    pub async fn recv(&mut self) -> Result<ChangeEvent, RecvError> {
        std::future::poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// The next event if one is ready now.
    pub fn try_recv(&mut self) -> Option<Result<ChangeEvent, RecvError>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_next_event(&mut cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }

    /// The rest of the next commit: its events that pass the filter (and
    /// were not already returned by [`Listener::recv`]), all at once.
    pub async fn recv_commit(&mut self) -> Result<CommitEvents, RecvError> {
        std::future::poll_fn(|cx| self.poll_next_commit(cx)).await
    }

    /// [`Listener::recv_commit`] if a commit is ready now.
    pub fn try_recv_commit(&mut self) -> Option<Result<CommitEvents, RecvError>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_next_commit(&mut cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }

    /// Polls for the rest of the next commit (for hand-written futures and
    /// streams that wrap a listener).
    pub fn poll_next_commit(&mut self, cx: &mut Context<'_>) -> Poll<Result<CommitEvents, RecvError>> {
        // A replayed commit emptied by per-event reads is gone already
        // (`poll_next_event` removes it); none is delivered empty.
        while let Some(p) = self.backlog.pop_front() {
            if p.len() > 0 {
                return Poll::Ready(Ok(p.into_commit()));
            }
        }
        let mut q = self.subscriber.queue.lock();
        if let Some(lost) = q.take_lag() {
            return Poll::Ready(Err(RecvError::Lagged(lost)));
        }
        while let Some(p) = q.pop() {
            if p.sequence > self.replayed_through {
                drop(q);
                return Poll::Ready(Ok(p.into_commit()));
            }
        }
        if q.closed {
            return Poll::Ready(Err(RecvError::Closed));
        }
        if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            q.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<ChangeEvent, RecvError>> {
        while let Some(front) = self.backlog.front_mut() {
            let next = front.pop();
            if front.len() == 0 {
                // Gone with its last event, so that a per-commit read
                // next gets the next commit, not this one empty.
                self.backlog.pop_front();
            }
            if let Some(e) = next {
                return Poll::Ready(Ok(Arc::unwrap_or_clone(e)));
            }
        }
        let mut q = self.subscriber.queue.lock();
        if let Some(lost) = q.take_lag() {
            return Poll::Ready(Err(RecvError::Lagged(lost)));
        }
        while let Some(first) = q.first_mut() {
            if first.sequence <= self.replayed_through {
                // Already delivered from the replayed history.
                q.pop();
                continue;
            }
            let next = first.pop();
            let done = first.len() == 0;
            if next.is_some() {
                q.len -= 1;
            }
            if done {
                q.pop();
            }
            if let Some(e) = next {
                drop(q);
                // A shared event is copied outside the lock, so the
                // publisher never waits for it.
                return Poll::Ready(Ok(Arc::unwrap_or_clone(e)));
            }
        }
        if q.closed {
            return Poll::Ready(Err(RecvError::Closed));
        }
        if !q.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            q.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl futures_core::Stream for Listener {
    type Item = Result<ChangeEvent, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().poll_next_event(cx) {
            Poll::Ready(Err(RecvError::Closed)) => Poll::Ready(None),
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.key, &self.subscriber);
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("filter", &self.subscriber.filter).finish()
    }
}
