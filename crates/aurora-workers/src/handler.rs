//! Handlers: what runs a job type, what it is given ([`JobContext`]) and
//! how it reports failure ([`JobError`]).

use crate::job::{JobId, JobInfo};
use aurora_core::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a handler gets for one attempt of a job.
#[derive(Clone)]
pub struct JobContext {
    /// The job's id.
    pub id: JobId,
    /// The job type.
    pub job_type: String,
    /// The payload it was enqueued with.
    pub payload: Value,
    /// Which attempt this is (1 for the first run).
    pub attempt: u32,
    /// Failed attempts before this one.
    pub failures: u32,
    /// The last failure's message, on a retry.
    pub last_error: Option<String>,
    /// The worker instance running this attempt (its claim on the job).
    owner: String,
    /// The workers' clock (for the completion time).
    clock: Arc<dyn crate::Clock>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.id)
            .field("job_type", &self.job_type)
            .field("attempt", &self.attempt)
            .field("failures", &self.failures)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

impl JobContext {
    pub(crate) fn for_job(job: &JobInfo, owner: &str, clock: Arc<dyn crate::Clock>) -> Self {
        Self {
            id: job.id.clone(),
            job_type: job.job_type.clone(),
            payload: job.payload.clone(),
            attempt: job.attempts,
            failures: job.failures,
            last_error: job.last_error.clone(),
            owner: owner.to_string(),
            clock,
        }
    }

    /// Marks this job completed inside `tx`, the handler's own
    /// transaction: the job's completion and the handler's database writes
    /// commit together or not at all, so database work runs **exactly
    /// once** even if the process dies between them (without it, delivery
    /// is at least once). After that commit the handler's return value no
    /// longer changes the job. A recurring job's next occurrence is
    /// inserted in the same transaction.
    ///
    /// # Errors
    /// [`crate::WorkerError::State`] when this attempt no longer holds the
    /// job (it was cancelled, or recovered by another start) — then `tx`
    /// must not commit; the errors of reading and writing in `tx`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aurora_workers::{Job, JobError, JobStatus, WorkerConfig, Workers};
    /// # let dir = tempfile::tempdir()?;
    /// # let docs = aurora_storage::DocumentStore::open(dir.path(), Default::default(), Default::default())?;
    /// # let collections = aurora_index::Collections::open(docs, Default::default())?;
    /// # collections.create_collection("orders", Default::default())?;
    /// # let db = aurora_txn::Database::without_sink(collections);
    /// let workers = Workers::new(db.clone(), WorkerConfig::default())?;
    /// let store = db.clone();
    /// workers.register_handler("record_payment", move |job| {
    ///     let db = store.clone();
    ///     async move {
    ///         let mut tx = db.begin()?;
    ///         tx.insert("orders", aurora_core::doc! { "paid": true })?;
    ///         job.complete_in(&mut tx).map_err(JobError::retry)?;
    ///         tx.commit()?; // the order and the job's completion, atomically
    ///         Ok(())
    ///     }
    /// });
    /// workers.start()?;
    /// let id = workers.enqueue(Job::new("record_payment")).await?;
    /// assert_eq!(workers.wait_for(&id, std::time::Duration::from_secs(5)).await?, Some(JobStatus::Completed));
    /// workers.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub fn complete_in(&self, tx: &mut aurora_txn::Transaction) -> crate::Result<()> {
        crate::queue::complete_in(tx, &self.id, &self.owner, self.clock.now())
    }

    /// The payload field `name`, if the payload is an object.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.payload.as_object().and_then(|o| o.get(name))
    }

    /// The payload decoded as `T` (what [`crate::Job::args`] stored).
    ///
    /// # Errors
    /// A permanent [`JobError`] when it does not decode: retrying the same
    /// payload cannot fix that, so the job fails at once (a dead letter).
    pub fn args<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        self.payload.decode().map_err(|e| {
            JobError::permanent(format!("the job's arguments do not decode as {}: {e}", std::any::type_name::<T>()))
        })
    }
}

/// A failed attempt: retried with back-off (the default for any error
/// converted with `?`), or permanent (no further attempts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub(crate) message: String,
    pub(crate) permanent: bool,
}

impl JobError {
    /// A failure worth retrying.
    pub fn retry(message: impl std::fmt::Display) -> Self {
        Self { message: message.to_string(), permanent: false }
    }

    /// A failure retrying cannot fix: the job becomes `Failed` at once.
    pub fn permanent(message: impl std::fmt::Display) -> Self {
        Self { message: message.to_string(), permanent: true }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether it is permanent.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl<E: std::error::Error> From<E> for JobError {
    fn from(e: E) -> Self {
        JobError::retry(e)
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a handler returns.
pub type JobResult = Result<(), JobError>;

type BoxedFuture = Pin<Box<dyn Future<Output = JobResult> + Send>>;

/// A registered handler, type-erased.
pub(crate) type HandlerFn = Arc<dyn Fn(JobContext) -> BoxedFuture + Send + Sync>;

pub(crate) fn boxed<F, Fut>(f: F) -> HandlerFn
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = JobResult> + Send + 'static,
{
    Arc::new(move |ctx| Box::pin(f(ctx)))
}

/// Per-type options for [`crate::Workers::register_handler_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandlerOptions {
    /// Most jobs of this type running at once (`None`: only the global limit).
    pub concurrency: Option<usize>,
}

/// A handler with its options.
#[derive(Clone)]
pub(crate) struct Registered {
    pub(crate) run: HandlerFn,
    pub(crate) options: HandlerOptions,
}
