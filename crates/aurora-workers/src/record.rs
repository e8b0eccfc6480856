//! How a job is stored: one document in the system collection [`JOBS`],
//! its schema, and the conversions between [`JobInfo`] and [`Document`].

use crate::error::{Result, WorkerError};
use crate::job::{Job, JobId, JobInfo, JobStatus, Priority};
use aurora_core::{Document, FieldDefinition, FieldType, Timestamp, Value};
use aurora_index::Schema;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The system collection holding every job. Its changes are ordinary
/// committed changes: they reach the change sink, the change feed and
/// listeners of `_jobs`, so a dashboard can watch the queue live.
pub const JOBS: &str = "_jobs";

/// The indexed field with the stored status.
pub(crate) const STATUS: &str = "status";
/// The unique field holding a job's dedupe key while it is pending,
/// scheduled or running (absent otherwise, so the key is free again).
pub(crate) const DEDUPE: &str = "dedupe";

/// The jobs collection's schema: declared types for every field, indexes on
/// the status and the dedupe key.
pub(crate) fn schema() -> Schema {
    let t = FieldDefinition::new;
    Schema::new()
        .field("type", t(FieldType::String))
        .field("payload", t(FieldType::Any).nullable())
        .field("priority", t(FieldType::Int))
        .field(STATUS, t(FieldType::String).indexed())
        .field("seq", t(FieldType::Int))
        .field("run_at", t(FieldType::Timestamp).nullable())
        .field("attempts", t(FieldType::Int))
        .field("failures", t(FieldType::Int))
        .field("interruptions", t(FieldType::Int))
        .field("max_retries", t(FieldType::Int))
        .field("timeout_us", t(FieldType::Int).nullable())
        .field("last_error", t(FieldType::String).nullable())
        .field("unique_key", t(FieldType::String).nullable())
        .field(DEDUPE, t(FieldType::String).nullable().unique())
        .field("every_us", t(FieldType::Int).nullable())
        .field("occurrence", t(FieldType::Timestamp).nullable())
        .field("created_at", t(FieldType::Timestamp))
        .field("updated_at", t(FieldType::Timestamp))
        .field("finished_at", t(FieldType::Timestamp).nullable())
        .field("owner", t(FieldType::String).nullable())
}

static LAST_SEQ: AtomicI64 = AtomicI64::new(0);

/// The queue a job belongs to when none was named (and the queue of jobs
/// stored before queues existed).
pub const DEFAULT_QUEUE: &str = "default";

/// A stored job's queue: its `queue` field, absent for the default queue
/// (so records written before queues existed read unchanged).
pub(crate) fn queue_of(d: &Document) -> &str {
    d.get("queue").and_then(Value::as_str).unwrap_or(DEFAULT_QUEUE)
}

/// The next enqueue sequence number: wall-clock microseconds, bumped to
/// stay strictly increasing within the process (so FIFO holds even when
/// the clock stalls or steps back).
pub(crate) fn next_seq() -> i64 {
    let now = Timestamp::now().as_micros();
    let mut last = LAST_SEQ.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST_SEQ.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Makes sure later sequence numbers exceed `seq` (after reading stored jobs).
pub(crate) fn observe_seq(seq: i64) {
    LAST_SEQ.fetch_max(seq, Ordering::Relaxed);
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl JobInfo {
    /// A new job record for `job`, enqueued at `now`.
    pub(crate) fn enqueued(job: Job, now: Timestamp) -> Self {
        let run_at = job.run_at.or_else(|| job.delay.map(|d| now.saturating_add(d)));
        let status = if run_at.is_some_and(|t| t > now) { JobStatus::Scheduled } else { JobStatus::Pending };
        JobInfo {
            id: JobId::new(),
            job_type: job.job_type,
            queue: job.queue,
            payload: job.payload,
            priority: job.priority,
            status,
            seq: next_seq(),
            run_at,
            attempts: 0,
            failures: 0,
            interruptions: 0,
            max_retries: job.max_retries,
            timeout: job.timeout,
            last_error: None,
            unique_key: job.unique_key,
            every: job.every,
            occurrence: job.every.map(|_| run_at.unwrap_or(now)),
            created_at: now,
            updated_at: now,
            finished_at: None,
            owner: None,
        }
    }

    /// Whether the dedupe key is held in this state.
    fn holds_key(&self) -> bool {
        matches!(self.status, JobStatus::Pending | JobStatus::Scheduled | JobStatus::Running)
    }

    /// The stored document.
    pub(crate) fn to_document(&self) -> Document {
        let mut d = Document::with_id(self.id.clone());
        let opt_ts = |t: Option<Timestamp>| t.map_or(Value::Null, Value::Timestamp);
        let opt_str = |s: &Option<String>| s.clone().map_or(Value::Null, Value::String);
        d.set("type", self.job_type.clone());
        if self.queue != DEFAULT_QUEUE {
            d.set("queue", self.queue.clone());
        }
        d.set("payload", self.payload.clone());
        d.set("priority", self.priority as i64);
        d.set(STATUS, self.status.as_str());
        d.set("seq", self.seq);
        d.set("run_at", opt_ts(self.run_at));
        d.set("attempts", i64::from(self.attempts));
        d.set("failures", i64::from(self.failures));
        d.set("interruptions", i64::from(self.interruptions));
        d.set("max_retries", i64::from(self.max_retries));
        d.set("timeout_us", self.timeout.map_or(Value::Null, |t| Value::Int(micros(t))));
        d.set("last_error", opt_str(&self.last_error));
        d.set("unique_key", opt_str(&self.unique_key));
        // Absent (not null) when not held: absent fields make no index entry.
        if let Some(key) = self.unique_key.clone().filter(|_| self.holds_key()) {
            d.set(DEDUPE, key);
        }
        d.set("every_us", self.every.map_or(Value::Null, |t| Value::Int(micros(t))));
        d.set("occurrence", opt_ts(self.occurrence));
        d.set("created_at", Value::Timestamp(self.created_at));
        d.set("updated_at", Value::Timestamp(self.updated_at));
        d.set("finished_at", opt_ts(self.finished_at));
        d.set("owner", opt_str(&self.owner));
        d
    }

    /// Reads a stored job back.
    pub(crate) fn from_document(d: &Document) -> Result<Self> {
        let bad = |what: &str| WorkerError::CorruptJob { id: d.id.to_string(), reason: what.to_string() };
        let int = |f: &str| d.get(f).and_then(Value::as_i64).ok_or_else(|| bad(&format!("`{f}` is not an int")));
        let count = |f: &str| int(f).and_then(|v| u32::try_from(v).map_err(|_| bad(&format!("`{f}` is out of range"))));
        let string = |f: &str| match d.get(f) {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(bad(&format!("`{f}` is not a string"))),
        };
        let ts = |f: &str| match d.get(f) {
            Some(Value::Timestamp(t)) => Ok(Some(*t)),
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(bad(&format!("`{f}` is not a timestamp"))),
        };
        let us = |f: &str| match d.get(f) {
            Some(Value::Int(v)) => Ok(Some(Duration::from_micros(u64::try_from(*v).unwrap_or(0)))),
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(bad(&format!("`{f}` is not an int"))),
        };
        let status = string(STATUS)?.and_then(|s| JobStatus::parse(&s)).ok_or_else(|| bad("unknown `status`"))?;
        Ok(JobInfo {
            id: d.id.clone(),
            job_type: string("type")?.ok_or_else(|| bad("`type` is missing"))?,
            queue: queue_of(d).to_string(),
            payload: d.get("payload").cloned().unwrap_or(Value::Null),
            priority: Priority::from_i64(int("priority")?).ok_or_else(|| bad("unknown `priority`"))?,
            status,
            seq: int("seq")?,
            run_at: ts("run_at")?,
            attempts: count("attempts")?,
            failures: count("failures")?,
            interruptions: count("interruptions")?,
            max_retries: count("max_retries")?,
            timeout: us("timeout_us")?,
            last_error: string("last_error")?,
            unique_key: string("unique_key")?,
            every: us("every_us")?,
            occurrence: ts("occurrence")?,
            created_at: ts("created_at")?.ok_or_else(|| bad("`created_at` is missing"))?,
            updated_at: ts("updated_at")?.ok_or_else(|| bad("`updated_at` is missing"))?,
            finished_at: ts("finished_at")?,
            owner: string("owner")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_core::doc;

    #[test]
    fn records_round_trip_and_hold_the_key_only_while_live() {
        let job = Job::new("mail").payload(doc! { "to": "a" }).unique_key("k").delay(Duration::from_secs(5));
        let now = Timestamp::from_micros(1_000_000);
        let mut info = JobInfo::enqueued(job, now);
        assert_eq!(info.status, JobStatus::Scheduled);
        assert_eq!(info.run_at, Some(Timestamp::from_micros(6_000_000)));
        let d = info.to_document();
        assert_eq!(d.get(DEDUPE), Some(&Value::String("k".into())));
        assert_eq!(JobInfo::from_document(&d).unwrap(), info);
        info.status = JobStatus::Completed;
        assert_eq!(info.to_document().get(DEDUPE), None);
        assert!(schema().validate(JOBS, &info.to_document()).is_ok());
    }

    #[test]
    fn sub_millisecond_timeouts_survive_the_round_trip() {
        let info = JobInfo::enqueued(Job::new("x").timeout(Duration::from_micros(900)), Timestamp::now());
        assert_eq!(JobInfo::from_document(&info.to_document()).unwrap().timeout, Some(Duration::from_micros(900)));
    }

    #[test]
    fn sequence_numbers_strictly_increase() {
        let mut last = next_seq();
        for _ in 0..1000 {
            let n = next_seq();
            assert!(n > last);
            last = n;
        }
    }

    #[test]
    fn damaged_records_are_typed_errors() {
        let mut d = JobInfo::enqueued(Job::new("x"), Timestamp::now()).to_document();
        d.set(STATUS, "sleeping");
        assert!(matches!(JobInfo::from_document(&d), Err(WorkerError::CorruptJob { .. })));
    }
}
