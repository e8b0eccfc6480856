//! The dispatch view: an in-memory picture of the waiting jobs (pending
//! and scheduled), kept current from the commit stream, so picking the
//! next job is a lookup instead of a query.
//!
//! It is loaded from the store once and then follows every commit of the
//! jobs collection through a [`CommitObserver`] — including jobs enqueued
//! by other code inside its own transactions. It is only a hint: a claim
//! re-reads the job in a transaction and skips it if it changed.

use crate::job::{JobId, JobStatus, Priority};
use crate::record::{JOBS, STATUS};
use aurora_core::{Document, Timestamp, Value};
use aurora_storage::Revision;
use aurora_txn::{CommitObserver, Committed};
use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::Notify;

/// Queue order: priority (highest first), then enqueue sequence.
type QueueKey = (Reverse<Priority>, i64, JobId);

/// A named queue and a job type: the unit that capacity, pausing and the
/// ready queues are kept by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Lane {
    pub(crate) queue: String,
    pub(crate) job_type: String,
}

/// What the view needs of a waiting job.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Waiting {
    pub(crate) id: JobId,
    pub(crate) lane: Lane,
    pub(crate) priority: Priority,
    pub(crate) seq: i64,
    pub(crate) run_at: Option<Timestamp>,
}

impl Waiting {
    /// The waiting job a stored document describes (`None` if it is not waiting).
    pub(crate) fn from_document(d: &Document) -> Option<Self> {
        let status = d.get(STATUS).and_then(Value::as_str).and_then(JobStatus::parse)?;
        if !matches!(status, JobStatus::Pending | JobStatus::Scheduled) {
            return None;
        }
        Some(Waiting {
            id: d.id.clone(),
            lane: Lane {
                queue: crate::record::queue_of(d).to_string(),
                job_type: d.get("type").and_then(Value::as_str)?.to_string(),
            },
            priority: Priority::from_i64(d.get("priority").and_then(Value::as_i64)?)?,
            seq: d.get("seq").and_then(Value::as_i64)?,
            run_at: match d.get("run_at") {
                Some(Value::Timestamp(t)) => Some(*t),
                _ => None,
            },
        })
    }

    fn key(&self) -> QueueKey {
        (Reverse(self.priority), self.seq, self.id.clone())
    }
}

/// Where a waiting job currently sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Due: in its type's ready queue.
    Ready,
    /// Not yet due: in the timer set.
    Timer,
    /// Picked by the dispatcher, being claimed.
    Claiming,
}

/// Which lanes may start another job (capacity, a handler, not paused).
pub(crate) trait Admit {
    /// Whether a job of `lane` may start now.
    fn can_start(&self, lane: &Lane) -> bool;
    /// Counts one more running job of `lane`.
    fn started(&mut self, lane: &Lane);
}

/// The waiting jobs, by readiness.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// Commits at or below this revision are already reflected (`None`: still loading).
    as_of: Option<Revision>,
    /// Changes seen while loading: applied when the load completes.
    buffered: Vec<(Revision, JobId, Option<Waiting>)>,
    jobs: HashMap<JobId, (Waiting, Place)>,
    ready: HashMap<Lane, BTreeSet<QueueKey>>,
    timers: BTreeSet<(Timestamp, JobId)>,
    /// Timers at or before this time have been moved to the ready queues.
    promoted_to: Option<Timestamp>,
}

impl View {
    /// Applies one job's new state (`None`: no longer waiting).
    fn apply(&mut self, id: &JobId, state: Option<Waiting>) {
        if let Some((old, place)) = self.jobs.remove(id) {
            self.unplace(&old, place);
        }
        if let Some(w) = state {
            let due = w.run_at.is_none_or(|t| self.promoted_to.is_some_and(|p| t <= p));
            let place = if due { Place::Ready } else { Place::Timer };
            self.place(&w, place);
            self.jobs.insert(id.clone(), (w, place));
        }
    }

    fn place(&mut self, w: &Waiting, place: Place) {
        match place {
            Place::Ready => {
                self.ready.entry(w.lane.clone()).or_default().insert(w.key());
            }
            Place::Timer => {
                self.timers.insert((w.run_at.unwrap_or(Timestamp::from_micros(i64::MIN)), w.id.clone()));
            }
            Place::Claiming => {}
        }
    }

    fn unplace(&mut self, w: &Waiting, place: Place) {
        match place {
            Place::Ready => {
                if let Some(q) = self.ready.get_mut(&w.lane) {
                    q.remove(&w.key());
                    if q.is_empty() {
                        self.ready.remove(&w.lane);
                    }
                }
            }
            Place::Timer => {
                self.timers.remove(&(w.run_at.unwrap_or(Timestamp::from_micros(i64::MIN)), w.id.clone()));
            }
            Place::Claiming => {}
        }
    }

    /// Finishes loading: `jobs` were waiting at revision `as_of`.
    pub(crate) fn load(&mut self, as_of: Revision, jobs: Vec<Waiting>) {
        for w in jobs {
            let id = w.id.clone();
            self.apply(&id, Some(w));
        }
        for (rev, id, state) in std::mem::take(&mut self.buffered) {
            if rev > as_of {
                self.apply(&id, state);
            }
        }
        self.as_of = Some(as_of);
    }

    /// Takes the changes of one commit.
    fn observe(&mut self, committed: &Committed) -> bool {
        let mut touched = false;
        for change in committed.changes.iter().filter(|c| c.collection == JOBS) {
            touched = true;
            let state = change.new.as_deref().and_then(Waiting::from_document);
            match self.as_of {
                None => self.buffered.push((committed.sequence, change.id.clone(), state)),
                Some(as_of) if committed.sequence > as_of => self.apply(&change.id, state),
                Some(_) => {}
            }
        }
        touched
    }

    /// Moves jobs due by `now` into the ready queues.
    fn promote(&mut self, now: Timestamp) {
        // The current time, even if the clock stepped back: placement of
        // new jobs must not treat a not-yet-due job as ready.
        self.promoted_to = Some(now);
        while let Some((t, id)) = self.timers.first().cloned() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, id.clone()));
            if let Some((w, place)) = self.jobs.get_mut(&id) {
                *place = Place::Ready;
                let w = w.clone();
                self.place(&w, Place::Ready);
            }
        }
    }

    /// Picks up to `max` due jobs in queue order among the types `admit`
    /// lets start, marking them as being claimed; returns `(id, type)`.
    pub(crate) fn pick(&mut self, now: Timestamp, max: usize, admit: &mut dyn Admit) -> Vec<(JobId, Lane)> {
        self.promote(now);
        let mut out = Vec::new();
        while out.len() < max {
            let best = self
                .ready
                .iter()
                .filter(|(lane, _)| admit.can_start(lane))
                .filter_map(|(lane, q)| q.first().map(|k| (k.clone(), lane.clone())))
                .min();
            let Some((key, lane)) = best else { break };
            if let Some(q) = self.ready.get_mut(&lane) {
                q.remove(&key);
                if q.is_empty() {
                    self.ready.remove(&lane);
                }
            }
            if let Some((_, place)) = self.jobs.get_mut(&key.2) {
                *place = Place::Claiming;
            }
            admit.started(&lane);
            out.push((key.2, lane));
        }
        out
    }

    /// Returns a picked job that was not claimed to its queue, if it is
    /// still waiting.
    pub(crate) fn unpick(&mut self, id: &JobId) {
        if let Some((w, place)) = self.jobs.get(id).cloned() {
            if place == Place::Claiming {
                self.jobs.remove(id);
                self.apply(id, Some(w));
            }
        }
    }

    /// Drops a job from the view (its record is unreadable).
    pub(crate) fn forget(&mut self, id: &JobId) {
        if let Some((w, place)) = self.jobs.remove(id) {
            self.unplace(&w, place);
        }
    }

    /// When the earliest scheduled job becomes due.
    pub(crate) fn next_due(&self) -> Option<Timestamp> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Waiting jobs known to the view (for tests and stats).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.jobs.len()
    }
}

/// Feeds commits of the jobs collection into a shared [`View`] and wakes
/// the dispatcher.
pub(crate) struct ViewObserver {
    pub(crate) view: Arc<Mutex<View>>,
    pub(crate) wake: Arc<Notify>,
}

impl CommitObserver for ViewObserver {
    fn observe(&self, committed: &Committed) {
        if self.view.lock().observe(committed) {
            self.wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_core::DocId;

    struct Any;
    impl Admit for Any {
        fn can_start(&self, _: &Lane) -> bool {
            true
        }
        fn started(&mut self, _: &Lane) {}
    }

    fn w(seq: i64, p: Priority, run_at: Option<i64>, t: &str) -> Waiting {
        Waiting {
            id: DocId::text(&format!("j{seq}")).unwrap(),
            lane: Lane { queue: "default".into(), job_type: t.into() },
            priority: p,
            seq,
            run_at: run_at.map(Timestamp::from_micros),
        }
    }

    #[test]
    fn picks_by_priority_then_fifo_and_holds_back_future_jobs() {
        let mut v = View::default();
        v.load(
            0,
            vec![
                w(1, Priority::Low, None, "a"),
                w(2, Priority::High, None, "b"),
                w(3, Priority::High, None, "a"),
                w(4, Priority::Critical, Some(100), "a"),
            ],
        );
        let ids: Vec<String> =
            v.pick(Timestamp::from_micros(50), 10, &mut Any).iter().map(|i| i.0.to_string()).collect();
        assert_eq!(ids, ["j2", "j3", "j1"]);
        assert_eq!(v.next_due(), Some(Timestamp::from_micros(100)));
        let ids: Vec<String> =
            v.pick(Timestamp::from_micros(100), 10, &mut Any).iter().map(|i| i.0.to_string()).collect();
        assert_eq!(ids, ["j4"]);
        assert_eq!(v.len(), 4, "picked jobs stay known until their claim commits");
        v.unpick(&DocId::text("j1").unwrap());
        assert_eq!(v.pick(Timestamp::from_micros(100), 10, &mut Any).len(), 1);
    }

    #[test]
    fn changes_seen_while_loading_are_applied_after_the_load() {
        let mut v = View::default();
        let j = w(1, Priority::Normal, None, "a");
        let committed = |seq, new: Option<Document>| Committed {
            sequence: seq,
            transaction_id: 1,
            changes: vec![aurora_txn::Change {
                collection: JOBS.into(),
                id: j.id.clone(),
                kind: aurora_txn::ChangeKind::Update,
                old: None,
                new: new.map(Arc::new),
            }],
        };
        // Claimed (no longer waiting) at revision 5, after the load's snapshot at 4.
        assert!(v.observe(&committed(3, None)));
        assert!(v.observe(&committed(5, None)));
        v.load(4, vec![j.clone()]);
        assert_eq!(v.len(), 0);
    }
}
