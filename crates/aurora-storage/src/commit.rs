//! Group commit: concurrent committers queue up; the one at the front
//! becomes the leader and commits the whole queue with one WAL write (and
//! one fsync in `Strict` mode) while the others wait. This is LevelDB's
//! writer queue: a lone writer pays no thread hand-off, many writers share
//! the I/O.

use crate::batch::{Batch, CommitOutcome, Revision};
use crate::error::{Result, StorageError};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;

/// Code run by the leader right after a batch is applied, in commit order,
/// with the batch's revision (used to keep caches in commit order).
pub type CommitHook = Box<dyn FnOnce(Revision) + Send>;

/// One queued commit, as the leader receives it.
pub(crate) struct Pending {
    pub(crate) batch: Batch,
    pub(crate) hook: Option<CommitHook>,
}

struct Slot {
    input: Mutex<Option<Pending>>,
    result: Mutex<Option<Result<CommitOutcome>>>,
    /// The committer, woken when its result is ready or it is to lead.
    thread: std::thread::Thread,
}

#[derive(Default)]
struct Queue {
    slots: VecDeque<Arc<Slot>>,
    leader: bool,
}

/// Most commits one leader takes at once.
const MAX_GROUP: usize = 512;

/// The writer queue. Waiting committers park; the leader wakes exactly the
/// members of its group and the next leader (no thundering herd).
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
    /// For [`GroupCommit::wait_idle`] only.
    idle: Condvar,
}

/// Resets the leader flag even if processing unwinds, so the queue never wedges.
struct LeaderGuard<'a> {
    gc: &'a GroupCommit,
    group: Vec<Arc<Slot>>,
    results: Option<Vec<Result<CommitOutcome>>>,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        let mut results = self.results.take().unwrap_or_default().into_iter();
        let mut q = self.gc.queue.lock();
        for slot in &self.group {
            let r = results.next().unwrap_or_else(|| Err(StorageError::Poisoned("commit leader failed".into())));
            *slot.result.lock() = Some(r);
        }
        q.leader = false;
        let next = q.slots.front().cloned();
        drop(q);
        // The first slot is the leader itself.
        for slot in self.group.iter().skip(1) {
            slot.thread.unpark();
        }
        if let Some(next) = next {
            next.thread.unpark();
        }
        self.gc.idle.notify_all();
    }
}

impl GroupCommit {
    /// Queues `pending` and returns its outcome; `process` is called (on
    /// this thread, if it becomes leader) with a group of pending commits
    /// and must return one result per commit, in order.
    pub(crate) fn submit(
        &self,
        pending: Pending,
        process: impl FnOnce(Vec<Pending>) -> Vec<Result<CommitOutcome>>,
    ) -> Result<CommitOutcome> {
        let slot = Arc::new(Slot {
            input: Mutex::new(Some(pending)),
            result: Mutex::new(None),
            thread: std::thread::current(),
        });
        let mut q = self.queue.lock();
        q.slots.push_back(Arc::clone(&slot));
        loop {
            if let Some(r) = slot.result.lock().take() {
                return r;
            }
            if !q.leader && q.slots.front().is_some_and(|f| Arc::ptr_eq(f, &slot)) {
                break;
            }
            // An unpark between unlocking and parking is not lost: park
            // returns at once on a pending token. Spurious wake-ups loop.
            drop(q);
            std::thread::park();
            q = self.queue.lock();
        }
        q.leader = true;
        let n = q.slots.len().min(MAX_GROUP);
        let group: Vec<Arc<Slot>> = q.slots.drain(..n).collect();
        drop(q);
        let mut guard = LeaderGuard { gc: self, group, results: None };
        let inputs: Vec<Pending> = guard.group.iter().filter_map(|s| s.input.lock().take()).collect();
        guard.results = Some(process(inputs));
        drop(guard);
        let mine = slot.result.lock().take();
        mine.unwrap_or_else(|| Err(StorageError::Poisoned("commit result missing".into())))
    }

    /// Blocks until no commit is queued or running.
    pub(crate) fn wait_idle(&self) {
        let mut q = self.queue.lock();
        while q.leader || !q.slots.is_empty() {
            self.idle.wait_for(&mut q, std::time::Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    #[test]
    fn concurrent_submits_are_grouped_and_each_gets_its_result() {
        let gc = Arc::new(GroupCommit::default());
        let next = Arc::new(AtomicU64::new(0));
        let groups = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (gc, next, groups) = (gc.clone(), next.clone(), groups.clone());
                std::thread::spawn(move || {
                    (0..200)
                        .map(|_| {
                            let p = Pending { batch: Batch::new(), hook: None };
                            gc.submit(p, |inputs| {
                                groups.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(std::time::Duration::from_micros(50));
                                inputs
                                    .iter()
                                    .map(|_| Ok(CommitOutcome::Committed(next.fetch_add(1, Ordering::SeqCst) + 1)))
                                    .collect()
                            })
                            .unwrap()
                            .revision()
                            .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        all.sort();
        assert_eq!(all, (1..=3200).collect::<Vec<_>>(), "every commit got a distinct result");
        assert!(groups.load(Ordering::Relaxed) < 3200, "some commits shared a group");
        gc.wait_idle();
    }
}
