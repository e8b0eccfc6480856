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
        let mut jobs = BTreeMap::new();
        #[cfg(feature = "workers")]
        {
            for w in self.open_workers() {
                for (status, n) in w.counts().await? {
                    *jobs.entry(status.as_str().to_string()).or_default() += n;
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
            metric(&mut out, name, "counter", help, &[(None, value)]);
        }
        let gauges: [(&str, &str, f64); 10] = [
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
        ];
        for (name, help, value) in gauges {
            metric(&mut out, name, "gauge", help, &[(None, value)]);
        }
        if !self.jobs.is_empty() {
            let by_status: Vec<(Option<(&str, &str)>, f64)> =
                self.jobs.iter().map(|(status, n)| (Some(("status", status.as_str())), *n as f64)).collect();
            metric(&mut out, "jobs", "gauge", "Jobs by status.", &by_status);
        }
        out
    }
}

/// Writes one metric family: `# HELP`, `# TYPE`, then a sample per label.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(Option<(&str, &str)>, f64)]) {
    let _ = writeln!(out, "# HELP aurora_{name} {help}");
    let _ = writeln!(out, "# TYPE aurora_{name} {kind}");
    for (label, value) in samples {
        match label {
            Some((key, v)) => {
                let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = writeln!(out, "aurora_{name}{{{key}=\"{escaped}\"}} {value}");
            }
            None => {
                let _ = writeln!(out, "aurora_{name} {value}");
            }
        }
    }
}
