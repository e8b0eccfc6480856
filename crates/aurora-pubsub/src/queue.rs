//! [`Queue`]: one listener's buffered commits, written by the publishing
//! thread and read by the listener's, behind one lock ([`SharedQueue`]).
//!
//! Both threads write the queue on every commit, so each cache line of it
//! travels between their cores once per commit; with a hundred listeners
//! that traffic, not the instructions, is most of the cost of fanning a
//! commit out. The layout keeps it to one line in the common case (the
//! listener keeps up): the lock, the event count and the first waiting
//! commit share the queue's first line, which no other data shares; the
//! commits behind it, the waker and the lag count are on the next.

use crate::pending::Pending;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::task::Waker;

/// A listener's queue on cache lines of its own: `parking_lot`'s mutex
/// keeps its lock word before the data, so with [`Queue`]'s order the
/// lock, `len`, `closed` and the first commit are on the first line.
#[repr(align(64))]
pub(crate) struct SharedQueue(pub(crate) Mutex<Queue>);

impl Default for SharedQueue {
    fn default() -> Self {
        Self(Mutex::new(Queue::default()))
    }
}

impl std::ops::Deref for SharedQueue {
    type Target = Mutex<Queue>;

    fn deref(&self) -> &Mutex<Queue> {
        &self.0
    }
}

/// A listener's buffered commits, oldest first.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Queue {
    /// Events in the buffered commits.
    pub(crate) len: usize,
    /// The oldest buffered commit (`None` only when none is buffered).
    first: Option<Pending>,
    /// No more commits will come.
    pub(crate) closed: bool,
    /// Woken when a commit arrives or the hub closes.
    pub(crate) waker: Option<Waker>,
    /// The commits after `first`.
    rest: VecDeque<Pending>,
    /// Events dropped since the listener last heard of a lag.
    lost: u64,
    /// The sequences of the first and last commit dropped since then:
    /// commits go oldest first and a lag is reported before the next
    /// delivery, so the dropped ones are every commit offered between the
    /// two (used by [`Queue::forget_replayed`]).
    lost_first: u64,
    lost_last: u64,
}

impl Queue {
    /// Buffers a commit after the others.
    pub(crate) fn push(&mut self, commit: Pending) {
        self.len += commit.len();
        match self.first {
            None => self.first = Some(commit),
            Some(_) => self.rest.push_back(commit),
        }
    }

    /// Takes the oldest commit out (its remaining events leave `len`).
    pub(crate) fn pop(&mut self) -> Option<Pending> {
        let commit = std::mem::replace(&mut self.first, self.rest.pop_front())?;
        self.len -= commit.len();
        Some(commit)
    }

    /// The oldest commit, to read events from one at a time (the caller
    /// keeps `len` in step).
    pub(crate) fn first_mut(&mut self) -> Option<&mut Pending> {
        self.first.as_mut()
    }

    /// Commits buffered.
    pub(crate) fn commits(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Buffers a commit, then drops the oldest whole commits while more
    /// than `capacity` events are buffered (the newest commit is always
    /// kept whole, however large). Returns the events dropped.
    pub(crate) fn push_bounded(&mut self, commit: Pending, capacity: usize) -> u64 {
        self.push(commit);
        let mut dropped = 0;
        while self.len > capacity && self.commits() > 1 {
            let Some(old) = self.pop() else { break };
            if self.lost == 0 {
                self.lost_first = old.sequence;
            }
            self.lost_last = old.sequence;
            self.lost += old.len() as u64;
            dropped += old.len() as u64;
        }
        dropped
    }

    /// The events dropped since the last report, if any (then reported).
    pub(crate) fn take_lag(&mut self) -> Option<u64> {
        (self.lost > 0).then(|| std::mem::take(&mut self.lost))
    }

    /// For a listener resumed from history through sequence `through`
    /// (`backlog`: the replayed commits, passed through the same filter):
    /// drops the buffered commits the history already delivered, and
    /// stops counting as lost the dropped ones it covers — a lag is
    /// reported only for events the listener will not receive.
    pub(crate) fn forget_replayed<'a>(&mut self, through: u64, backlog: impl IntoIterator<Item = &'a Pending>) {
        while self.first.as_ref().is_some_and(|c| c.sequence <= through) {
            self.pop();
        }
        if self.lost > 0 {
            let (from, to) = (self.lost_first, self.lost_last.min(through));
            let covered: u64 =
                backlog.into_iter().filter(|c| (from..=to).contains(&c.sequence)).map(|c| c.len() as u64).sum();
            self.lost = self.lost.saturating_sub(covered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pending::{self, tests::event};

    fn commit(sequence: u64, events: usize) -> Pending {
        Pending::new(sequence, sequence, pending::events((0..events).map(|_| event(sequence))))
    }

    #[test]
    fn commits_come_out_in_the_order_they_went_in_with_their_events_counted() {
        let mut q = Queue::default();
        assert!(q.pop().is_none());
        for (sequence, events) in [(1, 2), (2, 1), (3, 3)] {
            q.push(commit(sequence, events));
        }
        assert_eq!((q.commits(), q.len), (3, 6));
        assert_eq!(q.first_mut().map(|c| c.sequence), Some(1));
        assert_eq!(q.pop().map(|c| c.sequence), Some(1));
        assert_eq!((q.commits(), q.len), (2, 4));
        q.push(commit(4, 1));
        let order: Vec<u64> = std::iter::from_fn(|| q.pop()).map(|c| c.sequence).collect();
        assert_eq!(order, [2, 3, 4]);
        assert_eq!((q.commits(), q.len), (0, 0));
    }

    #[test]
    fn dropped_commits_a_replayed_history_covers_are_not_lost() {
        let mut q = Queue::default();
        // Capacity 2: commits 1..=5 of one event each; 1..=3 are dropped.
        let dropped: u64 = (1..=5).map(|s| q.push_bounded(commit(s, 1), 2)).sum();
        assert_eq!((dropped, q.commits(), q.len), (3, 2, 2));
        // History through 4 replays 2..=4 (1 was before the resume point):
        // dropped 2 and 3 are covered, 1 is still lost; buffered 4 goes.
        let backlog: Vec<Pending> = (2..=4).map(|s| commit(s, 1)).collect();
        q.forget_replayed(4, &backlog);
        assert_eq!((q.commits(), q.len), (1, 1));
        assert_eq!(q.take_lag(), Some(1));
        assert_eq!(q.take_lag(), None);
        assert_eq!(q.pop().map(|c| c.sequence), Some(5));
    }

    #[test]
    fn the_lock_and_the_first_commit_share_the_queues_first_cache_line() {
        let shared = SharedQueue::default();
        let base = std::ptr::from_ref(&shared) as usize;
        let q = shared.lock();
        let first = std::ptr::from_ref(&q.first) as usize;
        // The mutex holds only its lock word and the queue: a queue after
        // the first 8 bytes has the lock before it.
        assert_eq!(base % 64, 0);
        assert_eq!(shared.0.data_ptr() as usize - base, 8, "the lock word comes first");
        assert!(first + std::mem::size_of::<Option<Pending>>() - base <= 64, "first commit ends at {}", first - base);
        assert!(std::ptr::from_ref(&q.len) as usize - base < 64);
    }
}
