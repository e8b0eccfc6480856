//! Aurora's durable background job queue.
//!
//! Jobs are documents in the system collection `_jobs`; every state change
//! (enqueue, claim, completion, retry, cancel) is a transaction, so jobs
//! survive crashes, can be enqueued atomically with other writes
//! ([`EnqueueExt::enqueue`], the transactional outbox), and appear on the
//! change feed like any other document.
//!
//! - [`Job`]: type, payload, [`Priority`] (`Low < Normal < High <
//!   Critical`, FIFO within one), `max_retries` (default 3), `run_at` /
//!   `delay`, per-attempt `timeout`, a `unique_key` for deduplication.
//! - [`Workers`]: `register_handler`, `start`, graceful `shutdown`,
//!   `enqueue`, `recurring`, `cancel`, `retry`, `job_status`, `list`,
//!   `count`, `purge`.
//! - Failures retry with exponential [`Backoff`] (5 s, 25 s, 125 s by
//!   default) and end in [`JobStatus::DeadLetter`] with the last error;
//!   handler panics and timeouts are failed attempts.
//! - Delivery is at least once: a job running when the process died runs
//!   again after the next [`Workers::start`].
//! - Time comes from a [`Clock`]: [`ManualClock`] makes back-off,
//!   schedules and timeouts testable without sleeping.
//!
//! Architecture invariant: every job state lives in the database; the
//! in-memory dispatch view is rebuilt from it and only speeds up picking.

mod backoff;
mod clock;
mod config;
mod error;
mod executor;
mod handler;
mod job;
mod latency;
mod outbox;
mod queue;
mod record;
mod stats;
mod view;
mod workers;

pub use backoff::Backoff;
pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use config::WorkerConfig;
pub use error::{Result, WorkerError};
pub use handler::{HandlerOptions, JobContext, JobError, JobResult};
pub use job::{Job, JobId, JobInfo, JobPayload, JobStatus, Priority, MAX_JOB_TYPE_LEN, MAX_PAYLOAD_DEPTH, MAX_RETRIES};
pub use latency::JobLatency;
pub use outbox::EnqueueExt;
pub use record::{DEFAULT_QUEUE, JOBS};
pub use stats::{QueueStats, THROUGHPUT_WINDOW};
pub use workers::Workers;
