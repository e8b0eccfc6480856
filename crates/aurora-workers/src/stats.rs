//! [`QueueStats`]: what each named queue and job type holds, how old its
//! oldest waiting job is, and how fast it completes jobs.

use crate::error::Result;
use crate::job::{JobInfo, JobStatus};
use crate::queue;
use aurora_core::Timestamp;
use aurora_txn::Database;
use std::collections::BTreeMap;
use std::time::Duration;

/// The window over which [`QueueStats::completed_last_minute`] counts.
pub const THROUGHPUT_WINDOW: Duration = Duration::from_secs(60);

/// One queue and job type's statistics, as of one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// The named queue.
    pub queue: String,
    /// The job type.
    pub job_type: String,
    /// Jobs by status (a scheduled job whose time has come counts as
    /// pending); statuses with no job are absent.
    pub counts: BTreeMap<JobStatus, u64>,
    /// How long the oldest job ready to run has waited since it became due
    /// (`None` when none is waiting): the queue's lag.
    pub oldest_pending_age: Option<Duration>,
    /// Jobs completed within the last [`THROUGHPUT_WINDOW`].
    pub completed_last_minute: u64,
}

impl QueueStats {
    /// Jobs waiting to run now or later (pending + scheduled): the depth.
    pub fn depth(&self) -> u64 {
        [JobStatus::Pending, JobStatus::Scheduled].iter().filter_map(|s| self.counts.get(s)).sum()
    }
}

/// Statistics of every (queue, job type) that has a job, sorted by queue
/// then type.
pub(crate) fn queue_stats(db: &Database, now: Timestamp) -> Result<Vec<QueueStats>> {
    let mut by_lane: BTreeMap<(String, String), QueueStats> = BTreeMap::new();
    for status in JobStatus::ALL {
        for job in queue::list(db, status, now, usize::MAX)? {
            let stats = by_lane.entry((job.queue.clone(), job.job_type.clone())).or_insert_with(|| QueueStats {
                queue: job.queue.clone(),
                job_type: job.job_type.clone(),
                ..QueueStats::default()
            });
            *stats.counts.entry(status).or_default() += 1;
            account(stats, &job, status, now);
        }
    }
    Ok(by_lane.into_values().collect())
}

fn account(stats: &mut QueueStats, job: &JobInfo, status: JobStatus, now: Timestamp) {
    let since = |t: Timestamp| Duration::from_micros(u64::try_from(now.as_micros() - t.as_micros()).unwrap_or(0));
    match status {
        JobStatus::Pending => {
            let due = job.run_at.map_or(job.created_at, |r| r.max(job.created_at));
            let age = since(due);
            stats.oldest_pending_age = Some(stats.oldest_pending_age.map_or(age, |a| a.max(age)));
        }
        JobStatus::Completed if job.finished_at.is_some_and(|f| since(f) <= THROUGHPUT_WINDOW) => {
            stats.completed_last_minute += 1;
        }
        _ => {}
    }
}
