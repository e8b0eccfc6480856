//! The persistent queue: every state change of a job is a transaction on
//! the [`JOBS`] collection (so it is atomic, durable per the store's mode,
//! and published as a change event). Synchronous; the executor calls it.

use crate::error::{Result, WorkerError};
use crate::job::{Job, JobId, JobInfo, JobStatus};
use crate::record::{self, DEDUPE, JOBS, STATUS};
use aurora_core::{Timestamp, Value};
use aurora_index::IndexError;
use aurora_txn::{Database, Transaction, TxnError};
use std::time::Duration;

/// Jobs changed per transaction by bulk operations (recovery, purge).
const BATCH: usize = 256;

/// Creates the jobs collection if it does not exist.
pub(crate) fn ensure_collection(db: &Database) -> Result<()> {
    match db.collections().create_collection(JOBS, record::schema()) {
        Ok(()) | Err(IndexError::CollectionExists(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Adds `job` to `tx` (or finds the live job holding its unique key).
pub(crate) fn enqueue_in(tx: &mut Transaction, job: Job, now: Timestamp) -> Result<JobId> {
    if let Err(e) = job.validate() {
        job.dispose();
        return Err(e);
    }
    if let Some(key) = &job.unique_key {
        if let Some(id) = key_holder(tx, key)? {
            return Ok(id);
        }
    }
    let info = JobInfo::enqueued(job, now);
    tx.insert(JOBS, info.to_document())?;
    Ok(info.id)
}

/// The live job holding dedupe `key`, as this transaction sees it.
fn key_holder(tx: &mut Transaction, key: &str) -> Result<Option<JobId>> {
    let want = Value::String(key.to_string());
    let own = tx.written_ids(JOBS);
    let indexed = tx.database().collections().lookup(JOBS, DEDUPE, &want)?;
    for id in own.into_iter().chain(indexed) {
        if let Some(doc) = tx.get(JOBS, &id)? {
            if doc.get(DEDUPE) == Some(&want) {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

/// Whether `e` is a lost race on a dedupe key.
fn is_dedupe_race(e: &TxnError) -> bool {
    matches!(e, TxnError::Index(IndexError::UniqueViolation { collection, field, .. }) if collection == JOBS && field == DEDUPE)
}

/// Enqueues in a transaction of its own; a concurrent enqueue of the same
/// unique key resolves to the winner's id.
pub(crate) fn enqueue(db: &Database, jobs: Vec<Job>, now: Timestamp) -> Result<Vec<JobId>> {
    if let Err(e) = jobs.iter().try_for_each(Job::validate) {
        jobs.into_iter().for_each(Job::dispose);
        return Err(e);
    }
    for _ in 0..aurora_txn::MAX_TRANSACTION_ATTEMPTS {
        let attempt = db.transaction(|tx| {
            let mut ids = Vec::with_capacity(jobs.len());
            for job in &jobs {
                ids.push(enqueue_in(tx, job.clone(), now).map_err(TxnError::from)?);
            }
            Ok(ids)
        });
        match attempt {
            Err(e) if is_dedupe_race(&e) => continue,
            other => return Ok(other?),
        }
    }
    Err(WorkerError::Database(TxnError::Aborted("enqueue kept losing unique-key races".into())))
}

/// Reads one job.
pub(crate) fn get(db: &Database, id: &JobId) -> Result<Option<JobInfo>> {
    match db.collections().get(JOBS, id)? {
        Some(doc) => Ok(Some(JobInfo::from_document(&doc)?)),
        None => Ok(None),
    }
}

/// What a claim did.
#[derive(Debug, Default)]
pub(crate) struct Claimed {
    /// Jobs now running for the owner.
    pub(crate) jobs: Vec<JobInfo>,
    /// Ids whose stored record cannot be read: skipped (and logged), so
    /// one damaged record cannot block the queue.
    pub(crate) unreadable: Vec<JobId>,
}

/// Reads a job record, logging (not failing on) a damaged one.
fn readable(doc: &aurora_core::Document) -> Option<JobInfo> {
    match JobInfo::from_document(doc) {
        Ok(job) => Some(job),
        Err(e) => {
            tracing::error!(error = %e, "skipping an unreadable job record");
            None
        }
    }
}

/// Marks `ids` running for `owner` in one transaction; returns the jobs it
/// claimed (ids that are no longer waiting or not yet due are skipped).
pub(crate) fn claim(db: &Database, ids: &[JobId], owner: &str, now: Timestamp) -> Result<Claimed> {
    let mut ids: Vec<JobId> = ids.to_vec();
    let mut unreadable = Vec::new();
    for _ in 0..aurora_txn::MAX_TRANSACTION_ATTEMPTS {
        let mut tx = db.begin_with(aurora_txn::Isolation::Snapshot)?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in &ids {
            let Some(doc) = tx.get(JOBS, id)? else { continue };
            let Some(mut job) = readable(&doc) else {
                unreadable.push(id.clone());
                continue;
            };
            if !matches!(job.status, JobStatus::Pending | JobStatus::Scheduled) || !job.is_due(now) {
                continue;
            }
            job.status = JobStatus::Running;
            job.attempts += 1;
            job.owner = Some(owner.to_string());
            job.updated_at = now;
            tx.replace(JOBS, job.to_document())?;
            claimed.push(job);
        }
        match tx.commit() {
            Ok(_) => return Ok(Claimed { jobs: claimed, unreadable }),
            // Someone else changed one of them: leave it out and try the rest.
            Err(TxnError::Conflict { id, .. }) => {
                ids.retain(|j| j.to_string() != id);
                unreadable.clear();
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Claimed::default())
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The handler succeeded.
    Completed,
    /// The handler failed; retry with back-off unless retries are exhausted.
    Failed(String),
    /// The handler failed permanently.
    FailedPermanently(String),
    /// The attempt was cut short (shutdown deadline): run it again.
    Interrupted(String),
}

/// What happens to a job after an attempt, given the back-off to use.
pub(crate) struct Finish<'a> {
    pub(crate) owner: &'a str,
    pub(crate) now: Timestamp,
    pub(crate) backoff: &'a crate::Backoff,
    pub(crate) max_interruptions: u32,
}

/// Records an attempt's outcome. Does nothing if the job is no longer
/// running for `owner` (cancelled or recovered meanwhile). Returns the new status.
pub(crate) fn finish(db: &Database, id: &JobId, outcome: &Outcome, f: &Finish<'_>) -> Result<Option<JobStatus>> {
    Ok(db.transaction(|tx| {
        let Some(doc) = tx.get(JOBS, id)? else { return Ok(None) };
        let mut job = JobInfo::from_document(&doc).map_err(TxnError::from)?;
        if job.status != JobStatus::Running || job.owner.as_deref() != Some(f.owner) {
            return Ok(None);
        }
        apply_outcome(&mut job, outcome, f);
        finish_in(tx, &job, f.now)?;
        Ok(Some(job.status))
    })?)
}

/// Completes a running job inside the handler's own transaction
/// ([`crate::JobContext::complete_in`]).
pub(crate) fn complete_in(tx: &mut Transaction, id: &JobId, owner: &str, now: Timestamp) -> Result<()> {
    let held = |job: &JobInfo| job.status == JobStatus::Running && job.owner.as_deref() == Some(owner);
    let doc = tx.get(JOBS, id)?;
    let mut job = match doc.as_ref().map(JobInfo::from_document).transpose()? {
        Some(job) if held(&job) => job,
        _ => return Err(WorkerError::State("the job is no longer held by this attempt (cancelled or recovered)")),
    };
    let rules = Finish { owner, now, backoff: &crate::Backoff::default(), max_interruptions: 0 };
    apply_outcome(&mut job, &Outcome::Completed, &rules);
    Ok(finish_in(tx, &job, now)?)
}

/// The job's next state after `outcome`.
fn apply_outcome(job: &mut JobInfo, outcome: &Outcome, f: &Finish<'_>) {
    job.owner = None;
    job.updated_at = f.now;
    match outcome {
        Outcome::Completed => job.status = JobStatus::Completed,
        Outcome::FailedPermanently(e) => {
            job.failures += 1;
            job.last_error = Some(e.clone());
            job.status = JobStatus::Failed;
        }
        Outcome::Failed(e) => {
            job.failures += 1;
            job.last_error = Some(e.clone());
            if job.failures > job.max_retries {
                job.status = JobStatus::DeadLetter;
            } else {
                job.status = JobStatus::Scheduled;
                job.run_at = Some(f.now.saturating_add(f.backoff.delay(job.failures)));
            }
        }
        Outcome::Interrupted(e) => {
            job.interruptions += 1;
            job.last_error = Some(e.clone());
            job.status =
                if job.interruptions > f.max_interruptions { JobStatus::DeadLetter } else { JobStatus::Pending };
        }
    }
    if job.status.is_finished() {
        job.finished_at = Some(f.now);
    }
}

/// Writes `job`'s new state; a recurring job that finished also schedules
/// its next occurrence in the same transaction (taking over its unique key).
fn finish_in(tx: &mut Transaction, job: &JobInfo, now: Timestamp) -> aurora_txn::Result<()> {
    tx.replace(JOBS, job.to_document())?;
    if let (Some(every), true, false) = (job.every, job.status.is_finished(), job.status == JobStatus::Cancelled) {
        let planned = job.occurrence.or(job.run_at).unwrap_or(job.created_at);
        let next = next_occurrence(planned, every, now);
        let mut follow = JobInfo::enqueued(
            Job {
                job_type: job.job_type.clone(),
                queue: job.queue.clone(),
                payload: job.payload.clone(),
                priority: job.priority,
                max_retries: job.max_retries,
                run_at: Some(next),
                delay: None,
                timeout: job.timeout,
                unique_key: job.unique_key.clone(),
                every: Some(every),
            },
            now,
        );
        follow.status = JobStatus::Scheduled;
        tx.insert(JOBS, follow.to_document())?;
    }
    Ok(())
}

/// The first time `previous + k × every` (k ≥ 1) that is after `now`.
pub(crate) fn next_occurrence(previous: Timestamp, every: Duration, now: Timestamp) -> Timestamp {
    let step = i64::try_from(every.as_micros()).unwrap_or(i64::MAX).max(1);
    let behind = now.as_micros().saturating_sub(previous.as_micros());
    let k = if behind < 0 { 1 } else { behind / step + 1 };
    Timestamp::from_micros(previous.as_micros().saturating_add(k.saturating_mul(step)))
}

/// Cancels a job that has not finished; returns its status before.
/// A cancelled recurring job ends its series.
pub(crate) fn cancel(db: &Database, id: &JobId, now: Timestamp) -> Result<Option<JobStatus>> {
    Ok(db.transaction(|tx| {
        let Some(doc) = tx.get(JOBS, id)? else { return Ok(None) };
        let mut job = JobInfo::from_document(&doc).map_err(TxnError::from)?;
        let before = job.status;
        if before.is_finished() {
            return Ok(None);
        }
        job.status = JobStatus::Cancelled;
        job.owner = None;
        job.updated_at = now;
        job.finished_at = Some(now);
        tx.replace(JOBS, job.to_document())?;
        Ok(Some(before))
    })?)
}

/// Puts a failed or dead-lettered job back in the queue with a fresh
/// retry budget; returns whether it did (not if its unique key is held by
/// another live job meanwhile).
pub(crate) fn retry(db: &Database, id: &JobId, now: Timestamp) -> Result<bool> {
    Ok(db.transaction(|tx| {
        let Some(doc) = tx.get(JOBS, id)? else { return Ok(false) };
        let mut job = JobInfo::from_document(&doc).map_err(TxnError::from)?;
        if !matches!(job.status, JobStatus::Failed | JobStatus::DeadLetter) {
            return Ok(false);
        }
        if let Some(key) = &job.unique_key {
            if key_holder(tx, key).map_err(TxnError::from)?.is_some() {
                return Ok(false);
            }
        }
        job.status = JobStatus::Pending;
        job.failures = 0;
        job.interruptions = 0;
        job.run_at = None;
        job.finished_at = None;
        job.updated_at = now;
        tx.replace(JOBS, job.to_document())?;
        Ok(true)
    })?)
}

/// Ids with stored status `status` (latest state).
fn ids_with(db: &Database, status: JobStatus) -> Result<Vec<JobId>> {
    Ok(db.collections().lookup(JOBS, STATUS, &Value::String(status.as_str().into()))?)
}

/// Jobs whose status at `now` is `status`, in queue order (priority, then
/// enqueue order), at most `limit`.
pub(crate) fn list(db: &Database, status: JobStatus, now: Timestamp, limit: usize) -> Result<Vec<JobInfo>> {
    let stored: &[JobStatus] = match status {
        JobStatus::Pending | JobStatus::Scheduled => &[JobStatus::Pending, JobStatus::Scheduled],
        _ => std::slice::from_ref(&status),
    };
    let mut out = Vec::new();
    for s in stored {
        for id in ids_with(db, *s)? {
            let doc = db.collections().get(JOBS, &id)?;
            if let Some(mut job) = doc.as_deref().and_then(readable) {
                if job.status_at(now) == status {
                    job.status = status;
                    out.push(job);
                }
            }
        }
    }
    out.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.seq.cmp(&b.seq)));
    out.truncate(limit);
    Ok(out)
}

/// Running jobs whose owner is not live: requeued (or dead-lettered past
/// `max_interruptions`). Returns how many.
pub(crate) fn recover(db: &Database, live: &dyn Fn(&str) -> bool, f: &Finish<'_>) -> Result<usize> {
    let mut recovered = 0;
    let ids = ids_with(db, JobStatus::Running)?;
    for chunk in ids.chunks(BATCH) {
        recovered += db.transaction(|tx| {
            let mut n = 0;
            for id in chunk {
                let Some(doc) = tx.get(JOBS, id)? else { continue };
                let Some(mut job) = readable(&doc) else { continue };
                if job.status != JobStatus::Running || job.owner.as_deref().is_some_and(live) {
                    continue;
                }
                let why = "interrupted: the worker stopped while the job was running".to_string();
                apply_outcome(&mut job, &Outcome::Interrupted(why), f);
                finish_in(tx, &job, f.now)?;
                n += 1;
            }
            Ok(n)
        })?;
    }
    Ok(recovered)
}

/// Deletes jobs with one of `statuses` that finished before `before`;
/// returns how many.
pub(crate) fn purge(db: &Database, statuses: &[JobStatus], before: Timestamp) -> Result<usize> {
    let mut purged = 0;
    for status in statuses {
        let ids = ids_with(db, *status)?;
        for chunk in ids.chunks(BATCH) {
            purged += db.transaction(|tx| {
                let mut n = 0;
                for id in chunk {
                    let Some(doc) = tx.get(JOBS, id)? else { continue };
                    let Some(job) = readable(&doc) else { continue };
                    if job.status == *status && job.finished_at.is_some_and(|t| t < before) {
                        tx.delete(JOBS, id)?;
                        n += 1;
                    }
                }
                Ok(n)
            })?;
        }
    }
    Ok(purged)
}

impl From<WorkerError> for TxnError {
    fn from(e: WorkerError) -> Self {
        match e {
            WorkerError::Database(e) => e,
            other => TxnError::Aborted(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_occurrences_skip_missed_runs() {
        let t = Timestamp::from_micros;
        let s = Duration::from_micros(10);
        assert_eq!(next_occurrence(t(100), s, t(100)), t(110));
        assert_eq!(next_occurrence(t(100), s, t(105)), t(110));
        assert_eq!(next_occurrence(t(100), s, t(110)), t(120));
        assert_eq!(next_occurrence(t(100), s, t(157)), t(160));
        assert_eq!(next_occurrence(t(100), s, t(50)), t(110));
    }
}
