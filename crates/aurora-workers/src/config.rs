//! [`WorkerConfig`]: concurrency, timeouts, back-off, retention and the clock.

use crate::backoff::Backoff;
use crate::clock::{Clock, SystemClock};
use crate::error::{Result, WorkerError};
use std::sync::Arc;
use std::time::Duration;

/// How the workers run. Start from [`WorkerConfig::default`] and change
/// what you need.
#[derive(Clone)]
pub struct WorkerConfig {
    /// Most jobs running at once, over all types (default 4).
    pub concurrency: usize,
    /// Time limit of one attempt unless the job sets its own (default 5 min).
    /// At the limit the attempt counts as failed and the handler task is
    /// aborted at its next `.await` (a handler stuck in blocking code keeps
    /// its thread until it returns; use `spawn_blocking` for such work).
    pub job_timeout: Duration,
    /// Waits between failed attempts (default 5 s, ×5 per failure).
    pub backoff: Backoff,
    /// How long `shutdown` waits for running jobs before interrupting
    /// them; interrupted jobs are pending again (default 30 s).
    pub shutdown_timeout: Duration,
    /// Completed and cancelled jobs are deleted this long after they
    /// finish (default 1 day; `None` keeps them). Failed and dead-lettered
    /// jobs are kept until [`crate::Workers::purge`]d.
    pub completed_retention: Option<Duration>,
    /// How often the retention clean-up runs (default 1 min).
    pub cleanup_interval: Duration,
    /// A job whose attempts were cut short by crashes or shutdown deadlines
    /// more than this many times is dead-lettered instead of run again, so
    /// a job that kills the process cannot crash it forever (default 5).
    pub max_interruptions: u32,
    /// The time source (default: the system clock).
    pub clock: Arc<dyn Clock>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            job_timeout: Duration::from_secs(300),
            backoff: Backoff::default(),
            shutdown_timeout: Duration::from_secs(30),
            completed_retention: Some(Duration::from_secs(86_400)),
            cleanup_interval: Duration::from_secs(60),
            max_interruptions: 5,
            clock: Arc::new(SystemClock),
        }
    }
}

impl WorkerConfig {
    /// The default configuration running at most `concurrency` jobs at once.
    pub fn with_concurrency(concurrency: usize) -> Self {
        Self { concurrency, ..Self::default() }
    }

    /// Uses `clock` for scheduling, back-off and timeouts.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad =
            |setting: &'static str, reason: &str| Err(WorkerError::InvalidConfig { setting, reason: reason.into() });
        if self.concurrency == 0 {
            return bad("concurrency", "must be at least 1");
        }
        if self.job_timeout.is_zero() {
            return bad("job_timeout", "must be positive");
        }
        if self.cleanup_interval.is_zero() {
            return bad("cleanup_interval", "must be positive");
        }
        if let Err(reason) = self.backoff.check() {
            return bad("backoff", &reason);
        }
        Ok(())
    }
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("concurrency", &self.concurrency)
            .field("job_timeout", &self.job_timeout)
            .field("backoff", &self.backoff)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("completed_retention", &self.completed_retention)
            .field("cleanup_interval", &self.cleanup_interval)
            .field("max_interruptions", &self.max_interruptions)
            .finish_non_exhaustive()
    }
}
