//! The executor: one dispatcher task that picks due jobs and claims them,
//! and one supervisor task per running job that enforces its timeout,
//! turns panics into failed attempts, and records the outcome.

use crate::config::WorkerConfig;
use crate::error::{Result, WorkerError};
use crate::handler::{JobContext, Registered};
use crate::job::{JobId, JobInfo};
use crate::latency::LatencyRecorder;
use crate::queue::{self, Finish, Outcome};
use crate::view::{Admit, Lane, View};
use aurora_core::Timestamp;
use aurora_storage::Durability;
use aurora_txn::Database;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

/// Why a running job is being stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// `cancel(id)`: the job is already marked cancelled.
    Cancel,
    /// The shutdown deadline passed: the job runs again later.
    Interrupt,
}

/// State shared by the handle, the dispatcher and the supervisors.
pub(crate) struct Shared {
    pub(crate) db: Database,
    pub(crate) config: WorkerConfig,
    /// This instance's owner id, stamped on the jobs it runs.
    pub(crate) owner: String,
    pub(crate) handlers: RwLock<HashMap<String, Registered>>,
    /// Per-queue settings ([`crate::Workers::configure_queue`], pause).
    pub(crate) queues: RwLock<HashMap<String, QueueSettings>>,
    pub(crate) view: Arc<Mutex<View>>,
    pub(crate) wake: Arc<Notify>,
    slots: Mutex<Slots>,
    /// Running jobs' stop switches.
    pub(crate) running: Mutex<HashMap<JobId, oneshot::Sender<Stop>>>,
    /// Attempts' waits and run times ([`crate::Workers::latency`]).
    pub(crate) latency: LatencyRecorder,
    strict: bool,
}

/// One queue's settings in this worker instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QueueSettings {
    /// Jobs of the queue running at once (`None`: only the overall limit).
    pub(crate) concurrency: Option<usize>,
    /// A paused queue starts no job (running ones finish).
    pub(crate) paused: bool,
}

/// Running jobs per type and per queue, against the limits.
#[derive(Debug, Default)]
struct Slots {
    total: usize,
    per_type: HashMap<String, usize>,
    per_queue: HashMap<String, usize>,
}

/// The capacity check used while picking: a handler must exist, the queue
/// must not be paused, and the overall, per-type and per-queue limits must
/// have room.
struct Capacity<'a> {
    slots: &'a mut Slots,
    handlers: &'a HashMap<String, Registered>,
    queues: &'a HashMap<String, QueueSettings>,
    limit: usize,
}

impl Admit for Capacity<'_> {
    fn can_start(&self, lane: &Lane) -> bool {
        let Some(h) = self.handlers.get(&lane.job_type) else { return false };
        let queue = self.queues.get(&lane.queue).copied().unwrap_or_default();
        let of_type = self.slots.per_type.get(&lane.job_type).copied().unwrap_or(0);
        let of_queue = self.slots.per_queue.get(&lane.queue).copied().unwrap_or(0);
        !queue.paused
            && self.slots.total < self.limit
            && h.options.concurrency.is_none_or(|max| of_type < max)
            && queue.concurrency.is_none_or(|max| of_queue < max)
    }

    fn started(&mut self, lane: &Lane) {
        self.slots.total += 1;
        *self.slots.per_type.entry(lane.job_type.clone()).or_default() += 1;
        *self.slots.per_queue.entry(lane.queue.clone()).or_default() += 1;
    }
}

impl Shared {
    pub(crate) fn new(db: Database, config: WorkerConfig, view: Arc<Mutex<View>>, wake: Arc<Notify>) -> Self {
        let strict = db.collections().documents().store().config().durability == Durability::Strict;
        Self {
            db,
            config,
            owner: format!("worker-{}", aurora_core::DocId::new()),
            handlers: RwLock::new(HashMap::new()),
            queues: RwLock::new(HashMap::new()),
            view,
            wake,
            slots: Mutex::new(Slots::default()),
            running: Mutex::new(HashMap::new()),
            latency: LatencyRecorder::default(),
            strict,
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.config.clock.now()
    }

    pub(crate) fn finish_rules(&self, now: Timestamp) -> Finish<'_> {
        Finish {
            owner: &self.owner,
            now,
            backoff: &self.config.backoff,
            max_interruptions: self.config.max_interruptions,
        }
    }

    /// Runs a queue write: inline when commits do not wait for an fsync,
    /// on the blocking pool when they do.
    pub(crate) async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Shared) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.strict {
            let me = Arc::clone(self);
            tokio::task::spawn_blocking(move || f(&me))
                .await
                .map_err(|e| WorkerError::State(if e.is_cancelled() { "shutting down" } else { "panicked" }))?
        } else {
            f(self)
        }
    }

    fn pick(&self, now: Timestamp) -> Vec<(JobId, Lane)> {
        let handlers = self.handlers.read();
        let queues = self.queues.read();
        let mut slots = self.slots.lock();
        let free = self.config.concurrency.saturating_sub(slots.total);
        if free == 0 {
            return Vec::new();
        }
        let mut capacity =
            Capacity { slots: &mut slots, handlers: &handlers, queues: &queues, limit: self.config.concurrency };
        self.view.lock().pick(now, free, &mut capacity)
    }

    pub(crate) fn release(&self, lane: &Lane) {
        let mut slots = self.slots.lock();
        slots.total = slots.total.saturating_sub(1);
        if let Some(n) = slots.per_type.get_mut(&lane.job_type) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) = slots.per_queue.get_mut(&lane.queue) {
            *n = n.saturating_sub(1);
        }
    }

    /// Gives back what a pick reserved for the jobs the claim did not
    /// take: their slot, their stop switch, and their place in the view.
    fn release_unclaimed(&self, picked: &[(JobId, Lane)], claimed: &crate::queue::Claimed) {
        let mut returned = Vec::new();
        {
            let mut view = self.view.lock();
            for (id, lane) in picked {
                if claimed.jobs.iter().any(|j| &j.id == id) {
                    continue;
                }
                if claimed.unreadable.contains(id) {
                    view.forget(id);
                } else {
                    view.unpick(id);
                }
                returned.push((id, lane));
            }
        }
        for (id, lane) in returned {
            self.running.lock().remove(id);
            self.release(lane);
        }
    }
}

/// The dispatcher: claims due jobs while there is capacity, sleeps until
/// woken (a commit to the jobs collection, a finished job, the next
/// scheduled time, the clean-up time, or shutdown).
pub(crate) async fn dispatch(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tasks = JoinSet::new();
    let mut next_cleanup = shared.now().saturating_add(shared.config.cleanup_interval);
    loop {
        if *stop.borrow() {
            break;
        }
        while tasks.try_join_next().is_some() {}
        let now = shared.now();
        let picked = shared.pick(now);
        if !picked.is_empty() {
            // Stop switches exist before the claim commits, so a `cancel`
            // that lands right after the claim finds one.
            let mut switches = HashMap::new();
            for (id, _) in &picked {
                let (tx, rx) = oneshot::channel();
                shared.running.lock().insert(id.clone(), tx);
                switches.insert(id.clone(), rx);
            }
            let ids: Vec<JobId> = picked.iter().map(|(id, _)| id.clone()).collect();
            let claimed = shared.write(move |s| queue::claim(&s.db, &ids, &s.owner, now)).await;
            match claimed {
                Ok(claimed) => {
                    shared.release_unclaimed(&picked, &claimed);
                    let started = !claimed.jobs.is_empty();
                    for job in claimed.jobs {
                        if let Some(rx) = switches.remove(&job.id) {
                            tasks.spawn(supervise(Arc::clone(&shared), job, rx));
                        }
                    }
                    if started {
                        continue;
                    }
                    // Nothing claimable after all (the view was ahead of the
                    // store): wait for the next change instead of spinning.
                }
                Err(e) => {
                    shared.release_unclaimed(&picked, &queue::Claimed::default());
                    if e.is_closed() {
                        break;
                    }
                    tracing::warn!(error = %e, "claiming jobs failed; retrying shortly");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        if now >= next_cleanup {
            next_cleanup = now.saturating_add(shared.config.cleanup_interval);
            if let Some(keep) = shared.config.completed_retention {
                let cutoff = now.saturating_sub(keep);
                let db = shared.db.clone();
                let purged = tokio::task::spawn_blocking(move || {
                    queue::purge(&db, &[crate::JobStatus::Completed, crate::JobStatus::Cancelled], cutoff)
                })
                .await;
                match purged {
                    Ok(Ok(n)) if n > 0 => tracing::debug!(purged = n, "removed finished jobs past retention"),
                    Ok(Err(e)) if e.is_closed() => break,
                    Ok(Err(e)) => tracing::warn!(error = %e, "retention clean-up failed"),
                    _ => {}
                }
            }
        }
        let wake_at = shared.view.lock().next_due().map_or(next_cleanup, |t| t.min(next_cleanup));
        let sleep = shared.config.clock.sleep_until(wake_at);
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = sleep => {}
            _ = stop.changed() => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drain(&shared, tasks).await;
}

/// Waits for running jobs up to the shutdown deadline, then interrupts the
/// rest (they are recorded as pending again).
async fn drain(shared: &Arc<Shared>, mut tasks: JoinSet<()>) {
    let deadline = tokio::time::Instant::now() + shared.config.shutdown_timeout;
    while !tasks.is_empty() {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let switches: Vec<_> = shared.running.lock().drain().map(|(_, tx)| tx).collect();
    for tx in switches {
        let _ = tx.send(Stop::Interrupt);
    }
    while tasks.join_next().await.is_some() {}
}

/// Aborts the handler task if the supervisor is dropped.
struct AbortOnDrop(JoinHandle<crate::JobResult>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Frees a running job's slot and stop switch however its supervisor ends
/// (even by a panic), and wakes the dispatcher.
struct SlotGuard {
    shared: Arc<Shared>,
    id: JobId,
    lane: Lane,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.shared.running.lock().remove(&self.id);
        self.shared.release(&self.lane);
        self.shared.wake.notify_one();
    }
}

/// Attempts at recording an outcome before leaving the job to recovery.
const FINISH_ATTEMPTS: u32 = 5;

/// Runs one attempt of `job` and records how it ended, inside a
/// `job_attempt` span (fields: `job`, `job_type`, `attempt`; never the
/// payload) whose events say how the attempt ended: `completed` (debug),
/// `retry scheduled` (warn, with the error and the next run time), `dead
/// letter` / `failed permanently` (error), `timed out` (warn, then one of
/// those), `interrupted` (info).
async fn supervise(shared: Arc<Shared>, job: JobInfo, stop: oneshot::Receiver<Stop>) {
    let span = tracing::info_span!(
        "job_attempt",
        job = %job.id,
        job_type = %job.job_type,
        queue = %job.queue,
        attempt = job.attempts
    );
    tracing::Instrument::instrument(supervise_attempt(shared, job, stop), span).await;
}

async fn supervise_attempt(shared: Arc<Shared>, job: JobInfo, mut stop: oneshot::Receiver<Stop>) {
    let lane = Lane { queue: job.queue.clone(), job_type: job.job_type.clone() };
    let _slot = SlotGuard { shared: Arc::clone(&shared), id: job.id.clone(), lane };
    if matches!(stop.try_recv(), Ok(Stop::Cancel)) {
        return; // cancelled between the claim and now: never start it
    }
    let handler = shared.handlers.read().get(&job.job_type).map(|h| Arc::clone(&h.run));
    let started = shared.latency.started(job.run_at.unwrap_or(job.created_at), shared.now());
    let outcome = match handler {
        None => Outcome::Interrupted(format!("no handler for `{}` any more", job.job_type)),
        Some(run) => {
            let timeout = job.timeout.unwrap_or(shared.config.job_timeout);
            let deadline = shared.now().saturating_add(timeout);
            let ctx = JobContext::for_job(&job, &shared.owner, Arc::clone(&shared.config.clock));
            // The handler is called inside the task, so a panic while it
            // builds its future is caught like one while it runs; it runs in
            // the attempt's span, so its own events carry the job's fields.
            let span = tracing::Span::current();
            let mut handle =
                AbortOnDrop(tokio::spawn(tracing::Instrument::instrument(async move { run(ctx).await }, span)));
            tokio::select! {
                biased;
                joined = &mut handle.0 => match joined {
                    Ok(Ok(())) => Outcome::Completed,
                    Ok(Err(e)) if e.permanent => Outcome::FailedPermanently(e.message),
                    Ok(Err(e)) => Outcome::Failed(e.message),
                    Err(e) if e.is_panic() => Outcome::Failed(format!("handler panicked: {}", panic_message(e))),
                    Err(_) => Outcome::Interrupted("handler task was cancelled".into()),
                },
                why = &mut stop => match why {
                    // Already recorded as cancelled; dropping the handle stops the handler.
                    Ok(Stop::Cancel) => return,
                    _ => Outcome::Interrupted("interrupted: shutdown deadline passed".into()),
                },
                _ = shared.config.clock.sleep_until(deadline) => {
                    tracing::warn!(timeout_ms = timeout.as_millis() as u64, "job attempt timed out");
                    Outcome::Failed(format!("timed out after {timeout:?}"))
                }
            }
        }
    };
    shared.running.lock().remove(&job.id);
    shared.latency.finished(started, shared.now());
    for attempt in 1..=FINISH_ATTEMPTS {
        let (id, recorded, now) = (job.id.clone(), outcome.clone(), shared.now());
        match shared.write(move |s| queue::finish(&s.db, &id, &recorded, &s.finish_rules(now))).await {
            Ok(status) => {
                trace_outcome(&outcome, status);
                return;
            }
            Err(e) if e.is_closed() || attempt == FINISH_ATTEMPTS => {
                tracing::warn!(job = %job.id, error = %e,
                    "recording a job's outcome failed; it stays running until the next start recovers it");
                return;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await,
        }
    }
}

/// The event that says how an attempt ended (in the attempt's span).
fn trace_outcome(outcome: &Outcome, status: Option<crate::JobStatus>) {
    use crate::JobStatus as S;
    match (outcome, status) {
        (_, None) => {
            tracing::debug!("the job changed under the attempt (cancelled or recovered); outcome not recorded")
        }
        (Outcome::Completed, _) => tracing::debug!("job completed"),
        (Outcome::Failed(e), Some(S::Scheduled)) => tracing::warn!(error = %e, "job failed; retry scheduled"),
        (Outcome::Failed(e) | Outcome::Interrupted(e), Some(S::DeadLetter)) => {
            tracing::error!(error = %e, "job failed its last attempt: dead letter")
        }
        (Outcome::FailedPermanently(e), _) => tracing::error!(error = %e, "job failed permanently"),
        (Outcome::Interrupted(e), _) => tracing::info!(reason = %e, "job attempt interrupted; it will run again"),
        (Outcome::Failed(e), Some(other)) => tracing::warn!(error = %e, status = %other, "job failed"),
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into()),
        Err(e) => e.to_string(),
    }
}
