//! [`Metrics`]: one snapshot of what the database did and where it stands
//! — the write path, the hot cache, the change feed, listeners, jobs — and
//! its rendering in the Prometheus text exposition format.

use crate::error::Result;
use crate::Aurora;
use aurora_pubsub::HubStats;
use aurora_storage::{CacheStats, StoreMetricsSnapshot};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A snapshot of the database's counters and gauges ([`Aurora::metrics`]).
/// Counters only grow while the database is open; take two snapshots and
/// divide by the interval for rates.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// The storage engine: commits, commit groups (their count and the
    /// largest), fsyncs and their total time, checkpoints, WAL bytes,
    /// revisions.
    pub store: StoreMetricsSnapshot,
    /// The hot cache: hits, misses, evictions, expirations, entries.
    pub cache: CacheStats,
    /// The change feed's newest sequence.
    pub feed_head: u64,
    /// The highest sequence trimmed from the feed (0 if none).
    pub feed_floor: u64,
    /// Listeners (live queries included: each holds one), events buffered
    /// in them, commits published, events lost to lag.
    pub events: HubStats,
    /// Jobs by status (`"pending"`, `"running"`, …) over the job queues
    /// opened with [`Aurora::workers`] (empty without one).
    pub jobs: BTreeMap<String, u64>,
    /// Jobs by named queue, then by status (empty without job queues).
    pub jobs_by_queue: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per named queue, how long its oldest job ready to run has waited
    /// since it became due (queues with no waiting job are absent).
    pub queue_lag: BTreeMap<String, std::time::Duration>,
    /// Job latency (waits to start, run times) of the worker instances
    /// opened with [`Aurora::workers`], added up.
    #[cfg(feature = "workers")]
    pub job_latency: aurora_workers::JobLatency,
}

impl Aurora {
    /// A snapshot of the database's metrics (see [`Metrics`]). Cheap but
    /// for the job counts, which read the job index.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> aurora::Result<()> {
    /// use aurora::{doc, Aurora};
    /// let db = Aurora::temporary().await?;
    /// db.new_collection("t", Vec::<(&str, aurora::FieldDefinition)>::new()).await?;
    /// db.insert_into("t", doc! { "n": 1 }).await?;
    /// let m = db.metrics().await?;
    /// assert!(m.store.commits >= 2 && m.feed_head >= 1);
    /// let text = m.to_prometheus();
    /// assert!(text.contains("# TYPE aurora_commits_total counter"));
    /// # Ok(()) }
    /// ```
    pub async fn metrics(&self) -> Result<Metrics> {
        self.check_open()?;
        let documents = self.database().collections().documents();
        #[allow(unused_mut)]
        let (mut jobs, mut jobs_by_queue, mut queue_lag) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        #[cfg(feature = "workers")]
        let mut job_latency = aurora_workers::JobLatency::default();
        #[cfg(feature = "workers")]
        for w in self.open_workers() {
            job_latency = add_latency(job_latency, w.latency());
            let lanes = w.queue_stats().await?;
            for lane in lanes {
                let by_status: &mut BTreeMap<String, u64> = jobs_by_queue.entry(lane.queue.clone()).or_default();
                for (status, n) in &lane.counts {
                    *by_status.entry(status.as_str().to_string()).or_default() += n;
                    *jobs.entry(status.as_str().to_string()).or_default() += n;
                }
                if let Some(age) = lane.oldest_pending_age {
                    let lag: &mut std::time::Duration = queue_lag.entry(lane.queue.clone()).or_default();
                    *lag = (*lag).max(age);
                }
            }
        }
        Ok(Metrics {
            store: documents.store().metrics(),
            cache: documents.cache_stats(),
            feed_head: self.feed_head()?,
            feed_floor: self.feed_floor()?,
            events: self.pubsub().stats(),
            jobs,
            jobs_by_queue,
            queue_lag,
            #[cfg(feature = "workers")]
            job_latency,
        })
    }
}

impl Metrics {
    /// The snapshot in the Prometheus text exposition format (version
    /// 0.0.4): every metric prefixed `aurora_`, counters ending in
    /// `_total`, times in seconds, one `# HELP` and `# TYPE` line each —
    /// ready to serve on a `/metrics` endpoint.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let s = &self.store;
        let counters: [(&str, &str, f64); 13] = [
            ("commits_total", "Batches committed.", s.commits as f64),
            ("failed_conditions_total", "Batches refused by a failed condition.", s.failed_conditions as f64),
            ("commit_groups_total", "Commit groups (batches sharing one WAL write).", s.commit_groups as f64),
            ("fsyncs_total", "fsyncs of the write-ahead log.", s.fsyncs as f64),
            ("fsync_seconds_total", "Time spent in WAL fsyncs.", s.fsync_time.as_secs_f64()),
            ("checkpoints_total", "Checkpoints.", s.checkpoints as f64),
            ("wal_bytes_total", "Bytes written to the write-ahead log.", s.wal_bytes as f64),
            ("cache_hits_total", "Hot-cache lookups that hit.", self.cache.hits as f64),
            ("cache_misses_total", "Hot-cache lookups that missed.", self.cache.misses as f64),
            ("cache_evictions_total", "Hot-cache entries evicted for room.", self.cache.evictions as f64),
            ("cache_expirations_total", "Hot-cache entries expired.", self.cache.expirations as f64),
            ("events_published_commits_total", "Commits published to listeners.", self.events.commits_published as f64),
            ("events_dropped_total", "Events dropped from lagging listeners.", self.events.events_dropped as f64),
        ];
        for (name, help, value) in counters {
            metric(&mut out, name, "counter", help, &[(vec![], value)]);
        }
        let gauges: [(&str, &str, f64); 12] = [
            (
                "memtable_bytes",
                "Bytes of committed writes held in memory until the next checkpoint.",
                s.memtable_bytes as f64,
            ),
            ("largest_commit_group", "Largest commit group seen, in batches.", s.largest_commit_group as f64),
            ("revision", "Newest committed revision.", s.revision as f64),
            ("synced_revision", "Newest revision on stable storage.", s.synced_revision as f64),
            ("applied_revision", "Newest revision in the cold store.", s.applied_revision as f64),
            ("cache_entries", "Entries in the hot cache.", self.cache.entries as f64),
            ("feed_head", "Newest sequence of the change feed.", self.feed_head as f64),
            ("feed_floor", "Highest sequence trimmed from the change feed.", self.feed_floor as f64),
            ("listeners", "Open listeners (live queries included).", self.events.listeners as f64),
            ("listener_buffered_events", "Events buffered in listeners.", self.events.buffered_events as f64),
            (
                "listener_max_lag_events",
                "Events buffered in the slowest listener.",
                self.events.max_listener_lag as f64,
            ),
            ("live_queries", "Open live queries.", self.events.live_queries as f64),
        ];
        for (name, help, value) in gauges {
            metric(&mut out, name, "gauge", help, &[(vec![], value)]);
        }
        if !self.jobs.is_empty() {
            let by_status: Vec<Sample<'_>> =
                self.jobs.iter().map(|(status, n)| (vec![("status", status.as_str())], *n as f64)).collect();
            metric(&mut out, "jobs", "gauge", "Jobs by status.", &by_status);
            let by_queue: Vec<Sample<'_>> = self
                .jobs_by_queue
                .iter()
                .flat_map(|(queue, statuses)| {
                    statuses.iter().map(move |(status, n)| {
                        (vec![("queue", queue.as_str()), ("status", status.as_str())], *n as f64)
                    })
                })
                .collect();
            metric(&mut out, "queue_jobs", "gauge", "Jobs by named queue and status.", &by_queue);
            let lag: Vec<Sample<'_>> = self
                .queue_lag
                .iter()
                .map(|(queue, age)| (vec![("queue", queue.as_str())], age.as_secs_f64()))
                .collect();
            metric(&mut out, "queue_lag_seconds", "gauge", "Wait of the oldest job ready to run, by queue.", &lag);
        }
        #[cfg(feature = "workers")]
        {
            let l = &self.job_latency;
            let counters: [(&str, &str, f64); 4] = [
                ("job_attempts_started_total", "Job attempts started.", l.started as f64),
                ("job_wait_seconds_total", "Time job attempts waited from due to start.", l.wait_total.as_secs_f64()),
                ("job_attempts_finished_total", "Job attempts that ran to an outcome.", l.finished as f64),
                ("job_run_seconds_total", "Time job attempts ran.", l.run_total.as_secs_f64()),
            ];
            for (name, help, value) in counters {
                metric(&mut out, name, "counter", help, &[(vec![], value)]);
            }
            metric(
                &mut out,
                "job_wait_max_seconds",
                "gauge",
                "Longest wait of a job attempt.",
                &[(vec![], l.wait_max.as_secs_f64())],
            );
            metric(
                &mut out,
                "job_run_max_seconds",
                "gauge",
                "Longest job attempt.",
                &[(vec![], l.run_max.as_secs_f64())],
            );
        }
        out
    }
}

/// Two instances' job latency added up (maxima are maxima of both).
#[cfg(feature = "workers")]
fn add_latency(a: aurora_workers::JobLatency, b: aurora_workers::JobLatency) -> aurora_workers::JobLatency {
    let mut sum = a;
    sum.started += b.started;
    sum.wait_total = sum.wait_total.saturating_add(b.wait_total);
    sum.wait_max = sum.wait_max.max(b.wait_max);
    sum.finished += b.finished;
    sum.run_total = sum.run_total.saturating_add(b.run_total);
    sum.run_max = sum.run_max.max(b.run_max);
    sum
}

/// One sample: its labels (name, value) and its value.
type Sample<'a> = (Vec<(&'a str, &'a str)>, f64);

/// Writes one metric family: `# HELP`, `# TYPE`, then a sample per label
/// set (label values escaped as the exposition format says).
fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[Sample<'_>]) {
    let _ = writeln!(out, "# HELP aurora_{name} {help}");
    let _ = writeln!(out, "# TYPE aurora_{name} {kind}");
    for (labels, value) in samples {
        let _ = write!(out, "aurora_{name}");
        if !labels.is_empty() {
            let escaped: Vec<String> = labels
                .iter()
                .map(|(key, v)| {
                    format!("{key}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
                })
                .collect();
            let _ = write!(out, "{{{}}}", escaped.join(","));
        }
        let _ = writeln!(out, " {value}");
    }
}
