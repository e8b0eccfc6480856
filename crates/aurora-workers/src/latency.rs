//! [`JobLatency`]: how long this worker instance's job attempts waited to
//! start and how long they ran, accumulated since it was made.

use aurora_core::Timestamp;
use parking_lot::Mutex;
use std::time::Duration;

/// Job latency of one [`crate::Workers`] instance since it was made:
/// attempts started and finished, the time each waited between becoming
/// due (its `run_at`, or its enqueue time) and starting, and the time each
/// ran. Times are by the workers' clock. Divide a total by its count for
/// the mean; take two snapshots to get rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobLatency {
    /// Attempts started.
    pub started: u64,
    /// Sum over started attempts of the time from due to start.
    pub wait_total: Duration,
    /// The longest such wait.
    pub wait_max: Duration,
    /// Attempts that ran to an outcome (completed, failed, timed out or
    /// interrupted; an attempt cancelled while it ran is not counted).
    pub finished: u64,
    /// Sum over ended attempts of their run time.
    pub run_total: Duration,
    /// The longest run.
    pub run_max: Duration,
}

/// The accumulator behind [`JobLatency`].
#[derive(Debug, Default)]
pub(crate) struct LatencyRecorder(Mutex<JobLatency>);

impl LatencyRecorder {
    /// An attempt starts at `now`; it was due at `due`.
    pub(crate) fn started(&self, due: Timestamp, now: Timestamp) -> Timestamp {
        let wait = micros_between(due, now);
        let mut l = self.0.lock();
        l.started += 1;
        l.wait_total = l.wait_total.saturating_add(wait);
        l.wait_max = l.wait_max.max(wait);
        now
    }

    /// The attempt that started at `started` ended at `now`.
    pub(crate) fn finished(&self, started: Timestamp, now: Timestamp) {
        let ran = micros_between(started, now);
        let mut l = self.0.lock();
        l.finished += 1;
        l.run_total = l.run_total.saturating_add(ran);
        l.run_max = l.run_max.max(ran);
    }

    pub(crate) fn snapshot(&self) -> JobLatency {
        *self.0.lock()
    }
}

/// `to - from`, zero when `to` is earlier (a clock set back).
fn micros_between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::from_micros(u64::try_from(to.as_micros().saturating_sub(from.as_micros())).unwrap_or(0))
}
