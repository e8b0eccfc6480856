//! [`Workers`]: the job queue's handle — enqueue, register handlers, start,
//! inspect, cancel, shut down.

use crate::config::WorkerConfig;
use crate::error::{Result, WorkerError};
use crate::executor::{self, Shared, Stop};
use crate::handler::{boxed, HandlerOptions, JobResult, Registered};
use crate::job::{Job, JobId, JobInfo, JobStatus};
use crate::queue;
use crate::record::{JOBS, STATUS};
use crate::view::{View, ViewObserver, Waiting};
use crate::JobContext;
use aurora_core::{Timestamp, Value};
use aurora_txn::{Database, Observation};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// Owner ids of the worker instances alive in this process: their running
/// jobs are not abandoned. (Another process cannot hold the database: the
/// store's directory lock is exclusive.)
static LIVE_OWNERS: LazyLock<parking_lot::RwLock<HashSet<String>>> = LazyLock::new(Default::default);

/// The durable job queue over a [`Database`]: a cheap, cloneable handle.
///
/// Jobs are documents in the system collection `_jobs`, so every state
/// change is a transaction — atomic, as durable as the store's mode, and
/// published to the change sink, the change feed and listeners.
///
/// Delivery is **at least once**: a job that was running when the process
/// died (or when a shutdown deadline passed) runs again. Make handlers
/// idempotent, or make their effects conditional on the job id.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use aurora_workers::{Job, JobStatus, Workers, WorkerConfig};
/// # let dir = tempfile::tempdir()?;
/// # let docs = aurora_storage::DocumentStore::open(dir.path(), Default::default(), Default::default())?;
/// # let db = aurora_txn::Database::without_sink(aurora_index::Collections::open(docs, Default::default())?);
/// let workers = Workers::new(db, WorkerConfig::default())?;
/// workers.register_handler("greet", |job| async move {
///     println!("hello, {}", job.field("name").and_then(|v| v.as_str()).unwrap_or("?"));
///     Ok(())
/// });
/// workers.start()?;
/// let id = workers.enqueue(Job::new("greet").payload(aurora_core::doc! { "name": "Ada" })).await?;
/// let status = workers.wait_for(&id, std::time::Duration::from_secs(5)).await?;
/// assert_eq!(status, Some(JobStatus::Completed));
/// workers.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Workers {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    run: Mutex<RunState>,
    _observation: Observation,
}

enum RunState {
    Idle,
    Running { stop: watch::Sender<bool>, dispatcher: JoinHandle<()> },
    Stopped,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let RunState::Running { dispatcher, .. } = std::mem::replace(&mut *self.run.lock(), RunState::Stopped) {
            dispatcher.abort();
        }
        LIVE_OWNERS.write().remove(&self.shared.owner);
    }
}

impl Workers {
    /// Opens the job queue of `db` (creating its collection on first use)
    /// and loads the waiting jobs. Nothing runs until [`Workers::start`].
    pub fn new(db: Database, config: WorkerConfig) -> Result<Self> {
        config.validate()?;
        queue::ensure_collection(&db)?;
        let view = Arc::new(Mutex::new(View::default()));
        let wake = Arc::new(Notify::new());
        let observation = db.observe(Arc::new(ViewObserver { view: Arc::clone(&view), wake: Arc::clone(&wake) }));
        let (as_of, waiting) = load_waiting(&db)?;
        view.lock().load(as_of, waiting);
        let shared = Arc::new(Shared::new(db, config, view, wake));
        LIVE_OWNERS.write().insert(shared.owner.clone());
        Ok(Self { inner: Arc::new(Inner { shared, run: Mutex::new(RunState::Idle), _observation: observation }) })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// The database underneath.
    pub fn database(&self) -> &Database {
        &self.shared().db
    }

    /// The current time by the workers' clock.
    pub fn now(&self) -> Timestamp {
        self.shared().now()
    }

    /// Runs `handler` for jobs of `job_type` (replacing any previous one).
    /// Each attempt gets a [`JobContext`]; an `Err` is a failed attempt,
    /// retried with back-off unless it is [`crate::JobError::permanent`]; a
    /// panic is a failed attempt too.
    pub fn register_handler<F, Fut>(&self, job_type: &str, handler: F)
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        self.register_handler_with(job_type, HandlerOptions::default(), handler);
    }

    /// Registers a handler that receives the job's arguments decoded as
    /// `A` (see [`Job::args`]); a payload that does not decode fails the
    /// job permanently without calling the handler.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aurora_workers::{Job, JobStatus, WorkerConfig, Workers};
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Welcome { to: String }
    /// # let dir = tempfile::tempdir()?;
    /// # let docs = aurora_storage::DocumentStore::open(dir.path(), Default::default(), Default::default())?;
    /// # let db = aurora_txn::Database::without_sink(aurora_index::Collections::open(docs, Default::default())?);
    /// let workers = Workers::new(db, WorkerConfig::default())?;
    /// workers.register("welcome", |_ctx, args: Welcome| async move {
    ///     assert_eq!(args.to, "ada@example.com");
    ///     Ok(())
    /// });
    /// workers.start()?;
    /// let id = workers.enqueue(Job::new("welcome").args(&Welcome { to: "ada@example.com".into() })?).await?;
    /// assert_eq!(workers.wait_for(&id, std::time::Duration::from_secs(5)).await?, Some(JobStatus::Completed));
    /// workers.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn register<A, F, Fut>(&self, job_type: &str, handler: F)
    where
        A: serde::de::DeserializeOwned + Send + 'static,
        F: Fn(JobContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.register_handler(job_type, move |ctx: JobContext| {
            let handler = Arc::clone(&handler);
            async move {
                let args = ctx.args::<A>()?;
                handler(ctx, args).await
            }
        });
    }

    /// Like [`Workers::register_handler`], with per-type options (a
    /// concurrency limit).
    pub fn register_handler_with<F, Fut>(&self, job_type: &str, options: HandlerOptions, handler: F)
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        let registered = Registered { run: boxed(handler), options };
        self.shared().handlers.write().insert(job_type.to_string(), registered);
        self.shared().wake.notify_one();
    }

    /// Starts running jobs on the current tokio runtime. Jobs left running
    /// by a previous process (or a dropped instance) are first put back in
    /// the queue — their attempt counts as an interruption.
    pub fn start(&self) -> Result<()> {
        let mut run = self.inner.run.lock();
        match *run {
            RunState::Idle => {}
            RunState::Running { .. } => return Err(WorkerError::State("already running")),
            RunState::Stopped => return Err(WorkerError::State("shut down")),
        }
        let shared = self.shared();
        let live = |owner: &str| LIVE_OWNERS.read().contains(owner);
        let recovered = queue::recover(&shared.db, &live, &shared.finish_rules(shared.now()))?;
        if recovered > 0 {
            tracing::info!(recovered, "requeued jobs interrupted by a previous run");
        }
        let (stop, stop_rx) = watch::channel(false);
        let dispatcher = tokio::spawn(executor::dispatch(Arc::clone(shared), stop_rx));
        *run = RunState::Running { stop, dispatcher };
        Ok(())
    }

    /// Stops taking jobs, waits up to `shutdown_timeout` for running ones,
    /// then interrupts the rest (they are pending again, to run at the next
    /// start). Jobs not started stay pending. Idempotent.
    pub async fn shutdown(&self) -> Result<()> {
        let state = std::mem::replace(&mut *self.inner.run.lock(), RunState::Stopped);
        if let RunState::Running { stop, dispatcher } = state {
            let _ = stop.send(true);
            dispatcher.await.map_err(|_| WorkerError::State("dispatcher panicked"))?;
        }
        Ok(())
    }

    /// Adds a job; returns its id (or, for a job with a unique key that a
    /// live job already holds, that job's id). Durable per the store's mode
    /// when this returns.
    pub async fn enqueue(&self, job: Job) -> Result<JobId> {
        let mut ids = self.enqueue_many(vec![job]).await?;
        ids.pop().ok_or(WorkerError::State("enqueue returned no id"))
    }

    /// Adds several jobs in one transaction (all or none).
    pub async fn enqueue_many(&self, jobs: Vec<Job>) -> Result<Vec<JobId>> {
        let now = self.now();
        self.shared().write(move |s| queue::enqueue(&s.db, jobs, now)).await
    }

    /// A recurring job: `job` runs every `every`, first at its `run_at` /
    /// `delay` (or now). Each occurrence is a job of its own; when one
    /// finishes (however it ends) the next is scheduled in the same
    /// transaction, skipping missed occurrences. `name` is its unique key:
    /// registering it again (say, at every start) keeps the existing series
    /// — with its original interval and job: to change them, cancel the
    /// pending occurrence and register again. Any `unique_key` on `job` is
    /// replaced by the series key. Cancelling the pending occurrence ends
    /// the series; `retry` of an old failed occurrence resumes it.
    pub async fn recurring(&self, name: &str, mut job: Job, every: Duration) -> Result<JobId> {
        job.every = Some(every);
        job.unique_key = Some(format!("recurring:{name}"));
        self.enqueue(job).await
    }

    /// Cancels a job that has not finished: a waiting job never runs; a
    /// running one is stopped (its handler task is aborted at its next
    /// `.await`; a handler that never awaits cannot be stopped — tokio
    /// tasks are cooperative). Returns whether a job was cancelled.
    pub async fn cancel(&self, id: &JobId) -> Result<bool> {
        let (job, now) = (id.clone(), self.now());
        let before = self.shared().write(move |s| queue::cancel(&s.db, &job, now)).await?;
        if before == Some(JobStatus::Running) {
            if let Some(tx) = self.shared().running.lock().remove(id) {
                let _ = tx.send(Stop::Cancel);
            }
        }
        Ok(before.is_some())
    }

    /// Puts a `Failed` or `DeadLetter` job back in the queue with a fresh
    /// retry budget. Returns whether it did (not for other statuses, nor
    /// while another live job holds its unique key).
    pub async fn retry(&self, id: &JobId) -> Result<bool> {
        let (job, now) = (id.clone(), self.now());
        self.shared().write(move |s| queue::retry(&s.db, &job, now)).await
    }

    /// A job with its history (`None` if unknown or purged).
    pub async fn job(&self, id: &JobId) -> Result<Option<JobInfo>> {
        let now = self.now();
        Ok(queue::get(&self.shared().db, id)?.map(|mut j| {
            j.status = j.status_at(now);
            j
        }))
    }

    /// A job's status (`None` if unknown or purged).
    pub async fn job_status(&self, id: &JobId) -> Result<Option<JobStatus>> {
        Ok(self.job(id).await?.map(|j| j.status))
    }

    /// Jobs with `status` (as of now), in queue order, at most `limit`.
    pub async fn list(&self, status: JobStatus, limit: usize) -> Result<Vec<JobInfo>> {
        queue::list(&self.shared().db, status, self.now(), limit)
    }

    /// How many jobs have `status` (as of now).
    pub async fn count(&self, status: JobStatus) -> Result<u64> {
        Ok(self.list(status, usize::MAX).await?.len() as u64)
    }

    /// Limits how many jobs of `queue` run at once in this instance
    /// (`None`: only the overall [`WorkerConfig::concurrency`] and the
    /// per-type limits apply). Takes effect for the next job started.
    pub fn configure_queue(&self, queue: &str, concurrency: Option<usize>) {
        self.shared().queues.write().entry(queue.to_string()).or_default().concurrency = concurrency;
        self.shared().wake.notify_one();
    }

    /// Pauses `queue` in this instance: no job of it starts until
    /// [`Workers::resume_queue`]; running ones finish, and jobs keep being
    /// enqueued. The pause is not persisted: a new `Workers` starts with
    /// every queue running.
    pub fn pause_queue(&self, queue: &str) {
        self.shared().queues.write().entry(queue.to_string()).or_default().paused = true;
    }

    /// Resumes a paused queue.
    pub fn resume_queue(&self, queue: &str) {
        self.shared().queues.write().entry(queue.to_string()).or_default().paused = false;
        self.shared().wake.notify_one();
    }

    /// Whether `queue` is paused in this instance.
    pub fn is_paused(&self, queue: &str) -> bool {
        self.shared().queues.read().get(queue).is_some_and(|q| q.paused)
    }

    /// Depth, age of the oldest waiting job, counts by status and recent
    /// throughput for every (queue, job type) holding a job (reads every
    /// job record: meant for dashboards and alerts, not per-request use).
    /// Runs on the blocking pool.
    pub async fn queue_stats(&self) -> Result<Vec<crate::QueueStats>> {
        let (db, now) = (self.shared().db.clone(), self.now());
        tokio::task::spawn_blocking(move || crate::stats::queue_stats(&db, now))
            .await
            .map_err(|_| WorkerError::State("shutting down"))?
    }

    /// How long this instance's attempts waited to start and ran (see
    /// [`crate::JobLatency`]); in memory, since this instance was made.
    pub fn latency(&self) -> crate::JobLatency {
        self.shared().latency.snapshot()
    }

    /// The number of jobs in every status.
    pub async fn counts(&self) -> Result<BTreeMap<JobStatus, u64>> {
        let mut out = BTreeMap::new();
        for status in JobStatus::ALL {
            out.insert(status, self.count(status).await?);
        }
        Ok(out)
    }

    /// Deletes jobs in `statuses` that finished before `before` (only
    /// finished statuses are considered). Returns how many.
    pub async fn purge(&self, statuses: &[JobStatus], before: Timestamp) -> Result<usize> {
        let statuses: Vec<JobStatus> = statuses.iter().copied().filter(|s| s.is_finished()).collect();
        let db = self.shared().db.clone();
        tokio::task::spawn_blocking(move || queue::purge(&db, &statuses, before))
            .await
            .map_err(|_| WorkerError::State("shutting down"))?
    }

    /// Waits until the job has finished (or `timeout` passes in real time);
    /// returns its status then. For tests and scripts; a service would
    /// rather listen to `_jobs` changes.
    pub async fn wait_for(&self, id: &JobId, timeout: Duration) -> Result<Option<JobStatus>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.job_status(id).await?;
            if status.is_none_or(JobStatus::is_finished) || tokio::time::Instant::now() >= deadline {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// The waiting jobs at a snapshot taken after the observer was registered.
fn load_waiting(db: &Database) -> Result<(aurora_storage::Revision, Vec<Waiting>)> {
    let mut tx = db.begin_with(aurora_txn::Isolation::Snapshot)?;
    let as_of = tx.snapshot_revision();
    let mut out = Vec::new();
    let mut max_seq = 0;
    for status in [JobStatus::Pending, JobStatus::Scheduled] {
        let ids = db.collections().lookup(JOBS, STATUS, &Value::String(status.as_str().into()))?;
        for id in ids {
            if let Some(doc) = tx.get(JOBS, &id)? {
                if let Some(w) = Waiting::from_document(&doc) {
                    max_seq = max_seq.max(w.seq);
                    out.push(w);
                }
            }
        }
    }
    crate::record::observe_seq(max_seq);
    Ok((as_of, out))
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").field("owner", &self.shared().owner).finish_non_exhaustive()
    }
}
