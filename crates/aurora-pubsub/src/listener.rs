//! [`Listener`]: receives a channel's events that pass its filter.

use crate::event::{ChangeEvent, EventFilter};
use crate::hub::Hub;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::broadcast;
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};

/// Why `recv` returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The listener fell behind and this many events were dropped from its
    /// buffer (it is never silently skipped). Receiving continues with the
    /// oldest event still buffered.
    #[error("the listener fell behind and missed {0} events")]
    Lagged(u64),
    /// The database closed; no more events will come.
    #[error("the event source is closed")]
    Closed,
}

/// A subscription to change events. Dropping the last listener of a
/// collection removes that collection's channel.
pub struct Listener {
    hub: Arc<Hub>,
    key: String,
    stream: Option<BroadcastStream<Arc<ChangeEvent>>>,
    filter: EventFilter,
    /// Replayed history, delivered before live events.
    backlog: VecDeque<ChangeEvent>,
    /// Live events at or below this sequence were already replayed.
    replayed_through: u64,
}

impl Listener {
    pub(crate) fn new(
        hub: Arc<Hub>,
        key: String,
        rx: broadcast::Receiver<Arc<ChangeEvent>>,
        filter: EventFilter,
    ) -> Self {
        Self { hub, key, stream: Some(BroadcastStream::new(rx)), filter, backlog: VecDeque::new(), replayed_through: 0 }
    }

    /// Turns this (already subscribed) listener into a resumed one: it
    /// first delivers `backlog` (history read *after* subscribing), then
    /// live events newer than the backlog and than `through` — so the seam
    /// has no gap (the subscription predates the history read) and no
    /// duplicate (live events already replayed are skipped).
    pub fn resume_with(mut self, backlog: Vec<ChangeEvent>, through: u64) -> Self {
        self.replayed_through = backlog.iter().map(|e| e.sequence).max().unwrap_or(0).max(through);
        self.backlog = backlog.into();
        self
    }

    /// The next event passing the filter, or why there is none.
    pub async fn recv(&mut self) -> Result<ChangeEvent, RecvError> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next_event(cx)).await
    }

    /// The next event if one is ready now.
    pub fn try_recv(&mut self) -> Option<Result<ChangeEvent, RecvError>> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match Pin::new(self).poll_next_event(&mut cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }

    fn poll_next_event(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<ChangeEvent, RecvError>> {
        while let Some(event) = self.backlog.pop_front() {
            if self.filter.matches(&event) {
                return Poll::Ready(Ok(event));
            }
        }
        loop {
            let Some(stream) = self.stream.as_mut() else { return Poll::Ready(Err(RecvError::Closed)) };
            match futures_core::Stream::poll_next(Pin::new(stream), cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Err(RecvError::Closed)),
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => {
                    return Poll::Ready(Err(RecvError::Lagged(n)))
                }
                Poll::Ready(Some(Ok(event))) => {
                    if event.sequence > self.replayed_through && self.filter.matches(&event) {
                        return Poll::Ready(Ok((*event).clone()));
                    }
                }
            }
        }
    }
}

impl futures_core::Stream for Listener {
    type Item = Result<ChangeEvent, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.poll_next_event(cx) {
            Poll::Ready(Err(RecvError::Closed)) => Poll::Ready(None),
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        drop(self.stream.take());
        self.hub.channels.remove_if(&self.key, |_, tx| tx.receiver_count() == 0);
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("filter", &self.filter).finish()
    }
}
