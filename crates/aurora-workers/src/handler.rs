//! Handlers: what runs a job type, what it is given ([`JobContext`]) and
//! how it reports failure ([`JobError`]).

use crate::job::{JobId, JobInfo};
use aurora_core::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a handler gets for one attempt of a job.
#[derive(Debug, Clone)]
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
}

impl JobContext {
    pub(crate) fn for_job(job: &JobInfo) -> Self {
        Self {
            id: job.id.clone(),
            job_type: job.job_type.clone(),
            payload: job.payload.clone(),
            attempt: job.attempts,
            failures: job.failures,
            last_error: job.last_error.clone(),
        }
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
