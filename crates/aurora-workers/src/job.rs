//! [`Job`] (what to enqueue), its [`Priority`] and [`JobStatus`], and
//! [`JobInfo`] (a job as stored, with its history).

use crate::error::{Result, WorkerError};
use aurora_core::{DocId, Document, Timestamp, Value};
use std::time::Duration;

/// A job's id: a document id in the jobs collection.
pub type JobId = DocId;

/// Longest accepted job type name, in bytes.
pub const MAX_JOB_TYPE_LEN: usize = 128;
/// Most retries a job may ask for.
pub const MAX_RETRIES: u32 = 1000;

/// How urgent a job is: higher first; FIFO within one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// Runs when nothing more urgent is waiting.
    Low = 0,
    /// The default.
    #[default]
    Normal = 1,
    /// Ahead of `Normal`.
    High = 2,
    /// Ahead of everything else.
    Critical = 3,
}

impl Priority {
    pub(crate) fn from_i64(v: i64) -> Option<Self> {
        Some(match v {
            0 => Priority::Low,
            1 => Priority::Normal,
            2 => Priority::High,
            3 => Priority::Critical,
            _ => return None,
        })
    }
}

/// Where a job is in its life.
///
/// `Pending → Running → Completed`, with detours: `Scheduled` until its
/// time comes (first run or a retry's back-off), back to `Pending` when
/// due; `Failed` when the handler said the failure is permanent;
/// `DeadLetter` when retries are exhausted (the last error is kept);
/// `Cancelled` by [`crate::Workers::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobStatus {
    /// Runnable now, waiting for a free worker (or a handler for its type).
    Pending,
    /// Waiting for its `run_at` time (a scheduled job, or a retry backing off).
    Scheduled,
    /// A worker is running it.
    Running,
    /// The handler succeeded.
    Completed,
    /// The handler failed permanently ([`crate::JobError::permanent`]); not retried.
    Failed,
    /// Every attempt failed (retries exhausted); `last_error` says why.
    DeadLetter,
    /// Cancelled before it completed.
    Cancelled,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Pending,
        JobStatus::Scheduled,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::DeadLetter,
        JobStatus::Cancelled,
    ];

    /// The name stored in the job's `status` field.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Scheduled => "scheduled",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::DeadLetter => "dead_letter",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// The status named `s` (as stored).
    pub fn parse(s: &str) -> Option<Self> {
        JobStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the job will not run again.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::DeadLetter | JobStatus::Cancelled)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Deepest payload: the job's record holds it as a field, one level down,
/// within [`MAX_NESTING_DEPTH`](aurora_core::MAX_NESTING_DEPTH).
pub const MAX_PAYLOAD_DEPTH: usize = aurora_core::MAX_NESTING_DEPTH - 1;

/// A job to enqueue: a type (which handler runs it), a payload (nested at
/// most [`MAX_PAYLOAD_DEPTH`] levels) and options.
///
/// ```
/// use aurora_workers::{Job, Priority};
/// use aurora_core::doc;
/// use std::time::Duration;
/// let job = Job::new("send_email")
///     .payload(doc! { "to": "ada@example.com" })
///     .priority(Priority::High)
///     .max_retries(5)
///     .delay(Duration::from_secs(60))
///     .timeout(Duration::from_secs(30))
///     .unique_key("welcome:ada");
/// assert_eq!(job.job_type(), "send_email");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub(crate) job_type: String,
    pub(crate) queue: String,
    pub(crate) payload: Value,
    pub(crate) priority: Priority,
    pub(crate) max_retries: u32,
    pub(crate) run_at: Option<Timestamp>,
    pub(crate) delay: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) unique_key: Option<String>,
    pub(crate) every: Option<Duration>,
}

impl Job {
    /// A job of type `job_type` with no payload, `Normal` priority, 3
    /// retries, runnable at once.
    pub fn new(job_type: impl Into<String>) -> Self {
        Self {
            job_type: job_type.into(),
            queue: crate::record::DEFAULT_QUEUE.to_string(),
            payload: Value::Null,
            priority: Priority::Normal,
            max_retries: 3,
            run_at: None,
            delay: None,
            timeout: None,
            unique_key: None,
            every: None,
        }
    }

    /// The job type.
    pub fn job_type(&self) -> &str {
        &self.job_type
    }

    /// The named queue the job runs in (default `"default"`): queues have
    /// their own concurrency limit and can be paused
    /// ([`Workers::configure_queue`](crate::Workers::configure_queue),
    /// [`Workers::pause_queue`](crate::Workers::pause_queue)). 1 to
    /// [`MAX_JOB_TYPE_LEN`] bytes, no control characters.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// The data the handler gets (a document, or any value).
    pub fn payload(mut self, payload: impl Into<JobPayload>) -> Self {
        self.payload = payload.into().0;
        self
    }

    /// The job's arguments as any serde type (a struct, a map, a tuple):
    /// the typed form of [`Job::payload`], read back by
    /// [`JobContext::args`](crate::JobContext::args) or handed to a handler
    /// registered with [`Workers::register`](crate::Workers::register).
    ///
    /// # Errors
    /// [`WorkerError::InvalidJob`] when the arguments do not convert
    /// exactly (a `u64` above `i64::MAX`, nesting past the limit, …).
    ///
    /// ```
    /// use aurora_workers::Job;
    /// #[derive(serde::Serialize)]
    /// struct Resize { image: String, width: u32 }
    /// let job = Job::new("resize").args(&Resize { image: "a.png".into(), width: 640 }).unwrap();
    /// # let _ = job;
    /// ```
    pub fn args<T: serde::Serialize + ?Sized>(mut self, args: &T) -> Result<Self> {
        self.payload = Value::from_serde(args).map_err(|e| WorkerError::InvalidJob {
            job_type: self.job_type.chars().take(64).collect(),
            reason: e.to_string(),
        })?;
        Ok(self)
    }

    /// The priority (default `Normal`).
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Retries after the first failed attempt (default 3, at most
    /// [`MAX_RETRIES`]): a job runs at most `max_retries + 1` times before
    /// it is dead-lettered.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Runs no earlier than `at` (by the workers' clock).
    pub fn run_at(mut self, at: Timestamp) -> Self {
        self.run_at = Some(at);
        self.delay = None;
        self
    }

    /// Runs no earlier than `delay` after it is enqueued.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self.run_at = None;
        self
    }

    /// How long one attempt may run before it is stopped and counted as
    /// failed (default: the workers' `job_timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Deduplication: while a job with this key is pending, scheduled or
    /// running, enqueueing another with the same key returns the existing
    /// job's id instead of adding one.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// Drops a job without recursion (its payload may be nested too deep
    /// for an ordinary drop).
    pub(crate) fn dispose(self) {
        aurora_core::dispose(self.payload);
    }

    /// Refuses a job breaking the limits above; the caller disposes of a
    /// refused job with [`Job::dispose`].
    pub(crate) fn validate(&self) -> Result<()> {
        let reason = if self.job_type.is_empty() {
            Some("the job type must not be empty".to_string())
        } else if self.job_type.len() > MAX_JOB_TYPE_LEN {
            Some(format!("the job type is longer than {MAX_JOB_TYPE_LEN} bytes"))
        } else if self.queue.is_empty()
            || self.queue.len() > MAX_JOB_TYPE_LEN
            || self.queue.chars().any(char::is_control)
        {
            Some(format!("a queue name is 1 to {MAX_JOB_TYPE_LEN} bytes without control characters"))
        } else if self.max_retries > MAX_RETRIES {
            Some(format!("max_retries {} is above {MAX_RETRIES}", self.max_retries))
        } else if self.timeout.is_some_and(|t| t.is_zero()) {
            Some("the timeout must be positive".to_string())
        } else if self.every.is_some_and(|t| t < Duration::from_millis(1)) {
            Some("a recurring interval must be at least 1 ms".to_string())
        } else if self.unique_key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 512) {
            Some("a unique key must be 1 to 512 bytes".to_string())
        } else if self.payload.nesting_depth(MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH {
            Some(format!("the payload nests deeper than {MAX_PAYLOAD_DEPTH} levels"))
        } else {
            None
        };
        match reason {
            Some(reason) => Err(WorkerError::InvalidJob { job_type: self.job_type.chars().take(64).collect(), reason }),
            None => Ok(()),
        }
    }
}

/// Anything that can be a job payload: a [`Document`]'s fields, or a [`Value`].
#[derive(Debug, Clone, PartialEq)]
pub struct JobPayload(pub Value);

impl From<Document> for JobPayload {
    fn from(d: Document) -> Self {
        JobPayload(Value::Object(d.fields))
    }
}

impl From<Value> for JobPayload {
    fn from(v: Value) -> Self {
        JobPayload(v)
    }
}

/// A job as stored: its definition, where it is, and its history.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    /// The id.
    pub id: JobId,
    /// The job type.
    pub job_type: String,
    /// The named queue.
    pub queue: String,
    /// The payload.
    pub payload: Value,
    /// The priority.
    pub priority: Priority,
    /// The status (a `Scheduled` job whose time has come reads `Pending`).
    pub status: JobStatus,
    /// Enqueue order (FIFO within a priority).
    pub seq: i64,
    /// Not before this time (`None`: as soon as possible).
    pub run_at: Option<Timestamp>,
    /// Attempts started.
    pub attempts: u32,
    /// Attempts that failed (errors, panics, timeouts).
    pub failures: u32,
    /// Attempts cut short by a crash or a shutdown deadline (run again, not counted as failures).
    pub interruptions: u32,
    /// Retries allowed after the first failure.
    pub max_retries: u32,
    /// Per-attempt time limit (`None`: the workers' default).
    pub timeout: Option<Duration>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// The deduplication key.
    pub unique_key: Option<String>,
    /// For a recurring job: the interval to its next occurrence.
    pub every: Option<Duration>,
    /// For a recurring job: the time this occurrence was planned for (the
    /// next one is planned from it, so retries do not shift the schedule).
    pub occurrence: Option<Timestamp>,
    /// When it was enqueued.
    pub created_at: Timestamp,
    /// When its record last changed.
    pub updated_at: Timestamp,
    /// When it finished (completed, failed, dead-lettered or cancelled).
    pub finished_at: Option<Timestamp>,
    /// The worker instance running it.
    pub owner: Option<String>,
}

impl JobInfo {
    /// The status as of `now`: a `Scheduled` job whose time has come is `Pending`.
    pub fn status_at(&self, now: Timestamp) -> JobStatus {
        match self.status {
            JobStatus::Scheduled if self.is_due(now) => JobStatus::Pending,
            s => s,
        }
    }

    /// Whether it may start at `now` (if it is waiting).
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.run_at.is_none_or(|t| t <= now)
    }
}
