//! [`StoreMetrics`]: counters of the write path (commits, commit groups,
//! fsyncs and their time, checkpoints), kept with relaxed atomics — a few
//! nanoseconds per commit group — and read as a [`StoreMetricsSnapshot`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The storage engine's counters since open.
#[derive(Debug, Default)]
pub(crate) struct StoreMetrics {
    commits: AtomicU64,
    failed_conditions: AtomicU64,
    groups: AtomicU64,
    largest_group: AtomicU64,
    fsyncs: AtomicU64,
    fsync_micros: AtomicU64,
    checkpoints: AtomicU64,
    condition_reads: AtomicU64,
    absences_by_order: AtomicU64,
    watched_conditions: AtomicU64,
}

impl StoreMetrics {
    /// One commit group of `size` batches, of which `committed` committed
    /// and `failed` failed a condition.
    pub(crate) fn group(&self, size: usize, committed: usize, failed: usize) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.commits.fetch_add(committed as u64, Ordering::Relaxed);
        self.failed_conditions.fetch_add(failed as u64, Ordering::Relaxed);
        self.largest_group.fetch_max(size as u64, Ordering::Relaxed);
    }

    /// One fsync of the WAL that took `took`.
    pub(crate) fn fsync(&self, took: Duration) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fsync_micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Conditions of one batch: `read` decided by reading the key,
    /// `by_order` absences decided by key order (see `Batch::require_new`),
    /// `watched` from the revisions of watched keys (see
    /// `Batch::require_watched_revision`).
    pub(crate) fn conditions(&self, read: usize, by_order: usize, watched: usize) {
        if watched > 0 {
            self.watched_conditions.fetch_add(watched as u64, Ordering::Relaxed);
        }
        if read > 0 {
            self.condition_reads.fetch_add(read as u64, Ordering::Relaxed);
        }
        if by_order > 0 {
            self.absences_by_order.fetch_add(by_order as u64, Ordering::Relaxed);
        }
    }

    /// One checkpoint done.
    pub(crate) fn checkpoint(&self) {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StoreMetricsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StoreMetricsSnapshot {
            commits: get(&self.commits),
            failed_conditions: get(&self.failed_conditions),
            commit_groups: get(&self.groups),
            largest_commit_group: get(&self.largest_group),
            fsyncs: get(&self.fsyncs),
            fsync_time: Duration::from_micros(get(&self.fsync_micros)),
            checkpoints: get(&self.checkpoints),
            condition_reads: get(&self.condition_reads),
            absences_by_order: get(&self.absences_by_order),
            watched_conditions: get(&self.watched_conditions),
            ..StoreMetricsSnapshot::default()
        }
    }
}

/// What the storage engine did since it was opened, and where it stands
/// ([`Store::metrics`](crate::Store::metrics)). Counters only grow; divide
/// differences between two snapshots by their interval for rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreMetricsSnapshot {
    /// Batches committed (each is one revision).
    pub commits: u64,
    /// Batches refused because a condition (compare-and-swap) failed.
    pub failed_conditions: u64,
    /// Commit groups: batches that arrived together and shared one WAL
    /// write (and, under `Strict`, one fsync). `commits / commit_groups` is
    /// the mean group size.
    pub commit_groups: u64,
    /// The largest commit group seen, in batches.
    pub largest_commit_group: u64,
    /// fsyncs of the WAL (one per `Strict` commit group, one per explicit
    /// `sync`).
    pub fsyncs: u64,
    /// Time spent in those fsyncs, in total.
    pub fsync_time: Duration,
    /// Checkpoints (memtable applied to the cold store, WAL segments freed).
    pub checkpoints: u64,
    /// Commit conditions decided by reading the key's current revision
    /// (compare-and-swap, unique claims, inserts of ids that may exist).
    pub condition_reads: u64,
    /// Absence conditions decided without a read, because the key sorts
    /// above every key the store has held in its scope
    /// ([`Batch::require_new`](crate::Batch::require_new): inserts of new
    /// ids in increasing order).
    pub absences_by_order: u64,
    /// Revision conditions decided without a read from the revisions the
    /// store keeps of watched keys
    /// ([`Batch::require_watched_revision`](crate::Batch::require_watched_revision):
    /// the collection definitions every write is conditioned on).
    pub watched_conditions: u64,
    /// Bytes written to the WAL since open.
    pub wal_bytes: u64,
    /// The newest committed revision.
    pub revision: u64,
    /// The newest revision known to be on stable storage.
    pub synced_revision: u64,
    /// The newest revision the cold store holds (older WAL is freed).
    pub applied_revision: u64,
    /// Bytes of committed writes held in memory until the next checkpoint
    /// (the memtable).
    pub memtable_bytes: u64,
}
