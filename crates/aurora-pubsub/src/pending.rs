//! [`Pending`]: one commit's events waiting in a listener's queue, and the
//! shared run of events ([`Events`]) it reads through its own cursor.
//!
//! Publishing wraps a commit's events once; every listener whose filter
//! passes all of them holds that same allocation (a reference count, not a
//! copy), and only a listener that passes some of them gets a run of its
//! own. So fanning one commit out to `n` listeners allocates nothing per
//! listener in the common case, and the listeners' threads read one shared
//! run rather than `n` private ones.

use crate::event::{ChangeEvent, CommitEvents};
use std::sync::Arc;

/// A run of one commit's events, shared by the listeners that receive all
/// of it. A slot is emptied only when its reader holds the run alone
/// (the event is then moved out rather than copied).
pub(crate) type Events = Arc<[Option<Arc<ChangeEvent>>]>;

/// Wraps events (in order) as a shareable run.
pub(crate) fn events(events: impl IntoIterator<Item = Arc<ChangeEvent>>) -> Events {
    events.into_iter().map(Some).collect()
}

/// The events of `run` that pass `keep` (each tested once): `run` itself,
/// shared, when every event passes; `None` when none does.
pub(crate) fn passing(run: &Events, mut keep: impl FnMut(&ChangeEvent) -> bool) -> Option<Events> {
    let mut passes = |slot: &Option<Arc<ChangeEvent>>| slot.as_deref().is_some_and(&mut keep);
    let Some(first_out) = run.iter().position(|slot| !passes(slot)) else {
        return Some(Arc::clone(run));
    };
    let rest = run[first_out + 1..].iter().filter(|slot| passes(slot));
    let own: Events = run[..first_out].iter().chain(rest).cloned().collect();
    (!own.is_empty()).then_some(own)
}

/// A commit's events for one listener, partly consumed by per-event reads.
pub(crate) struct Pending {
    pub(crate) sequence: u64,
    pub(crate) transaction_id: u64,
    events: Events,
    /// The next event to deliver (those before it were delivered).
    next: usize,
}

impl Pending {
    pub(crate) fn new(sequence: u64, transaction_id: u64, events: Events) -> Self {
        Self { sequence, transaction_id, events, next: 0 }
    }

    /// Events not yet delivered.
    pub(crate) fn len(&self) -> usize {
        self.events.len() - self.next
    }

    /// The next event, moved out of the run when no other listener
    /// shares it (a shared one is a new reference to the same event).
    pub(crate) fn pop(&mut self) -> Option<Arc<ChangeEvent>> {
        let i = self.next;
        // A run is shared only by `Pending`s (no weak references), so a
        // count of one is ownership; reading the count first spares the
        // shared case `get_mut`'s compare-and-swap.
        let owned = if Arc::strong_count(&self.events) == 1 { Arc::get_mut(&mut self.events) } else { None };
        let event = match owned {
            Some(slots) => slots.get_mut(i)?.take(),
            None => self.events.get(i)?.clone(),
        };
        self.next += 1;
        event
    }

    /// The events not yet delivered, as a [`CommitEvents`].
    pub(crate) fn into_commit(mut self) -> CommitEvents {
        let events = std::iter::from_fn(|| self.pop()).map(Arc::unwrap_or_clone).collect();
        CommitEvents { sequence: self.sequence, transaction_id: self.transaction_id, events }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{ChangeCause, ChangeType};
    use aurora_core::DocId;

    /// An insert event of sequence `n` (also for the queue's tests).
    pub(crate) fn event(n: u64) -> Arc<ChangeEvent> {
        Arc::new(ChangeEvent {
            collection: "c".into(),
            change_type: ChangeType::Insert,
            id: DocId::new(),
            document: None,
            old_document: None,
            sequence: n,
            transaction_id: 1,
            cause: ChangeCause::Write,
        })
    }

    fn sequences(run: &Events) -> Vec<u64> {
        run.iter().flatten().map(|e| e.sequence).collect()
    }

    #[test]
    fn a_run_every_event_of_which_passes_is_shared_not_copied() {
        let run = events((1..=3).map(event));
        let all = passing(&run, |_| true).unwrap();
        assert!(Arc::ptr_eq(&run, &all));
        assert!(passing(&run, |_| false).is_none());
        let odd = passing(&run, |e| e.sequence % 2 == 1).unwrap();
        assert!(!Arc::ptr_eq(&run, &odd));
        assert_eq!(sequences(&odd), [1, 3]);
        assert_eq!(sequences(&passing(&run, |e| e.sequence > 1).unwrap()), [2, 3]);
    }

    #[test]
    fn the_filter_runs_once_per_event() {
        let run = events((1..=5).map(event));
        let mut calls = 0;
        let kept = passing(&run, |e| {
            calls += 1;
            e.sequence != 2
        });
        assert_eq!(calls, 5);
        assert_eq!(sequences(&kept.unwrap()), [1, 3, 4, 5]);
    }

    #[test]
    fn readers_of_a_shared_run_each_get_every_event() {
        let run = events((1..=3).map(event));
        let mut a = Pending::new(7, 1, Arc::clone(&run));
        let b = Pending::new(7, 1, run);
        assert_eq!(a.pop().map(|e| e.sequence), Some(1));
        assert_eq!((a.len(), b.len()), (2, 3));
        assert_eq!(b.into_commit().events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2, 3]);
        // `a` now holds the run alone: the rest is moved out, in order.
        assert_eq!(a.pop().map(|e| (Arc::strong_count(&e), e.sequence)), Some((1, 2)));
        assert_eq!(a.into_commit().events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn popping_past_the_end_gives_nothing() {
        let mut p = Pending::new(1, 1, events([event(1)]));
        assert!(p.pop().is_some());
        assert_eq!(p.len(), 0);
        assert!(p.pop().is_none());
        assert_eq!(p.len(), 0);
    }
}
