//! The engine behind a [`Store`](crate::Store): recovery, the commit path,
//! the memtable, applying to the cold store, WAL syncing and checkpoints.
//! Shared by the user's handles and the background threads.
//!
//! The write path, in order:
//! 1. the group-commit leader checks conditions and appends WAL records;
//! 2. it writes them to the OS (`Balanced`, `Strict`) and fsyncs (`Strict`);
//! 3. it inserts the writes into the memtable and publishes the revision
//!    (now visible to reads) and acknowledges;
//! 4. the applier freezes the memtable, fsyncs the WAL up to it, applies it
//!    to the cold store, and releases it;
//! 5. a checkpoint records the applied revision in the cold store, flushes
//!    it, and deletes the WAL segments it covers.

use crate::batch::{CommitOutcome, Condition, Op, Revision};
use crate::cold::guarded::{self, Guarded};
use crate::cold::resident::{Resident, ResidentRanges};
use crate::cold::{sled_store::SledStore, ColdStore, ScanIter, Versioned};
use crate::commit::{GroupCommit, Pending};
use crate::config::{Durability, StoreConfig};
use crate::error::{Result, StorageError};
use crate::high_keys::HighKeys;
use crate::lock::DirLock;
use crate::memtable::Memtable;
use crate::merge::Merge;
use crate::mvcc::Mvcc;
use crate::wal::{self, replay::RecoveryReport, WalWriter};
use crate::watched::Watched;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A tombstone applied to the cold store: its key and revision.
type Tombstone = (Vec<u8>, Revision);

/// What the next tombstone purge must visit: the tombstones recorded as
/// they were applied, and whether some were not recorded — those older
/// than this process, or dropped when too many piled up (a snapshot pinned
/// for long holds the horizon back) — in which case a purge scans the
/// whole store, until one whose horizon reaches them all.
struct PendingTombstones {
    /// Applied tombstones not purged yet, with their revisions.
    recorded: Vec<Tombstone>,
    /// The newest revision of a tombstone that may be in the cold store
    /// without being recorded: `None` once a full purge covered them.
    unrecorded_upto: Option<Revision>,
}

pub(crate) struct Engine {
    pub(crate) config: StoreConfig,
    pub(crate) dir: PathBuf,
    wal_dir: PathBuf,
    /// `None` once closed. Declared before `lock` so it is released first.
    cold: RwLock<Option<Arc<dyn ColdStore>>>,
    /// The key ranges the cold store keeps resident in memory.
    pub(crate) resident: Arc<ResidentRanges>,
    wal: Mutex<WalWriter>,
    /// The highest key held per scope of `Batch::require_new`; used by the
    /// commit leader only (locked after `wal`).
    high_keys: Mutex<HighKeys>,
    /// The live revisions of watched keys (`Batch::require_watched_revision`);
    /// used by the commit leader only (locked after `high_keys`).
    watched: Mutex<Watched>,
    memtable: RwLock<Memtable>,
    /// Pinned snapshots and the version history they need.
    pub(crate) mvcc: Mvcc,
    /// Signalled when the memtable is released (writers waiting for room)
    /// or when the applier has work.
    pub(crate) signal: Signal,
    commits: GroupCommit,
    checkpoint_lock: Mutex<()>,
    /// One applier cycle at a time (the applier thread, or a caller of
    /// [`Engine::checkpoint_all`] / close).
    apply_lock: Mutex<()>,
    /// Highest revision committed and visible to reads.
    revision: AtomicU64,
    /// Highest revision known to be on stable storage.
    synced: AtomicU64,
    /// Every commit at or below this revision has run its commit hooks.
    hooked: AtomicU64,
    /// Highest revision whose writes the cold store holds.
    applied: AtomicU64,
    /// Oldest revision [`Store::get_at`](crate::Store::get_at) can answer for.
    oldest_readable: AtomicU64,
    /// `applied` when a checkpoint last handed the allocator's free memory
    /// back to the OS (`allocator`): the next checkpoint does it again only
    /// if writes were applied since.
    released_at: AtomicU64,
    deletes_since_purge: AtomicUsize,
    /// The tombstones applied to the cold store that no purge has visited
    /// yet, so a purge visits those keys instead of scanning the store.
    applied_tombstones: Mutex<PendingTombstones>,
    closed: AtomicBool,
    poison: Mutex<Option<String>>,
    lock: Mutex<Option<DirLock>>,
    /// What recovery found and did at open.
    pub(crate) report: RecoveryReport,
    /// Write-path counters.
    pub(crate) metrics: crate::metrics::StoreMetrics,
}

/// Opens the cold store in a directory with a page cache of so many bytes.
pub(crate) type Backend<'a> = &'a mut crate::cold::OpenBackend;

/// The default backend: sled.
pub(crate) fn sled_backend(path: &Path, cache_bytes: u64) -> Result<Arc<dyn ColdStore>> {
    Ok(Arc::new(SledStore::open(path, cache_bytes)?))
}

/// Refuses to open when the disk has less than `min_free` bytes plus twice
/// the WAL to replay plus twice sled's largest snapshot: recovery writes the
/// replayed records to the cold store and sled writes a new snapshot, and a
/// write failing for lack of space during sled's recovery damages its files.
fn check_free_space(dir: &Path, wal_dir: &Path, min_free: u64) -> Result<()> {
    if min_free == 0 {
        return Ok(());
    }
    let available = fs2::available_space(dir)
        .map_err(|e| StorageError::io(format!("measuring free space at {}", dir.display()), e))?;
    let wal: u64 = match wal::list_segments(wal_dir) {
        Ok(segments) => segments.iter().filter_map(|(_, p)| std::fs::metadata(p).ok()).map(|m| m.len()).sum(),
        Err(_) => 0,
    };
    let snapshot = std::fs::read_dir(dir.join("cold"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("snap."))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    let required = min_free.saturating_add(wal.saturating_mul(2)).saturating_add(snapshot.saturating_mul(2));
    if available < required {
        return Err(StorageError::DiskFull { path: dir.to_path_buf(), available, required });
    }
    Ok(())
}

/// A condition variable with a flag, for "there is work" / "there is room".
#[derive(Default)]
pub(crate) struct Signal {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    pub(crate) fn raise(&self) {
        *self.flag.lock() = true;
        self.cv.notify_all();
    }

    /// Waits until raised or `timeout` passes; clears the flag.
    pub(crate) fn wait(&self, timeout: Duration) {
        let mut flag = self.flag.lock();
        if !*flag {
            self.cv.wait_for(&mut flag, timeout);
        }
        *flag = false;
    }
}

/// Records replayed per cold-store write during recovery.
const REPLAY_CHUNK: usize = 4096;

impl Engine {
    /// Opens `dir`: checks free space, takes the lock, opens the cold store
    /// (`backend`, behind the panic boundary), replays the WAL past the
    /// checkpoint under the recovery rules, checkpoints, and starts a fresh
    /// WAL segment.
    pub(crate) fn open(dir: &Path, config: StoreConfig, backend: Backend<'_>) -> Result<Self> {
        config.validate()?;
        let wal_dir = dir.join("wal");
        check_free_space(dir, &wal_dir, config.min_free_disk_bytes)?;
        std::fs::create_dir_all(&wal_dir)
            .map_err(|e| StorageError::io(format!("creating {}", wal_dir.display()), e))?;
        let lock = DirLock::acquire(dir)?;
        let _span = tracing::info_span!("recover", dir = %dir.display()).entered();
        let cold_dir = dir.join("cold");
        let cache = (config.cold_cache_capacity_mb as u64) << 20;
        // The range cache sits inside the panic boundary: once the backend
        // has panicked, scans the cache could answer fail like every other
        // call (the boundary promises that), and a panic in the cache
        // itself is caught too.
        let resident = Arc::new(ResidentRanges::new(config.range_cache_bytes));
        let cold = guarded::catch("opening", || backend(&cold_dir, cache))
            .map(|b| Guarded::new(Arc::new(Resident::new(b, Arc::clone(&resident)))))?;
        let checkpoint = cold.checkpoint()?;
        let replay = wal::replay::replay(&wal_dir, checkpoint, config.wal_recovery)?;
        let report = replay.report;
        let mut revision = checkpoint;
        for chunk in replay.records.chunks(REPLAY_CHUNK) {
            let writes: Vec<(Vec<u8>, Versioned)> =
                chunk.iter().flat_map(|rec| rec.ops.iter().map(|op| versioned(op.clone(), rec.revision))).collect();
            cold.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v)))?;
            revision = chunk.last().map_or(revision, |r| r.revision);
        }
        if let Some(salvaged) = &report.salvaged {
            // Dropped revisions are never reused (see `Salvaged`).
            revision = revision.max(salvaged.highest_dropped);
        }
        cold.set_checkpoint(revision)?;
        cold.flush()?;
        // The new segment first, then the replayed ones go: a crash in
        // between leaves the replayed segments before an empty newest one,
        // which the recovery rules accept; never a checkpointed store with
        // no segment at all.
        let writer = WalWriter::create(&wal_dir, revision + 1, config.wal_segment_bytes, config.wal_preallocation())?;
        for (first, path) in wal::list_segments(&wal_dir)? {
            if first != revision + 1 {
                std::fs::remove_file(&path)
                    .map_err(|e| StorageError::io(format!("removing replayed segment {}", path.display()), e))?;
            }
        }
        let replayed = report.replayed;
        tracing::info!(revision, checkpoint, replayed, durability = ?config.durability, "opened store");
        let cold: Arc<dyn ColdStore> = Arc::new(cold);
        Ok(Self {
            config,
            dir: dir.to_path_buf(),
            wal_dir,
            cold: RwLock::new(Some(cold)),
            resident,
            report,
            wal: Mutex::new(writer),
            high_keys: Mutex::new(HighKeys::default()),
            watched: Mutex::new(Watched::default()),
            memtable: RwLock::new(Memtable::default()),
            mvcc: Mvcc::default(),
            signal: Signal::default(),
            commits: GroupCommit::default(),
            checkpoint_lock: Mutex::new(()),
            apply_lock: Mutex::new(()),
            revision: AtomicU64::new(revision),
            synced: AtomicU64::new(revision),
            hooked: AtomicU64::new(revision),
            applied: AtomicU64::new(revision),
            oldest_readable: AtomicU64::new(revision),
            released_at: AtomicU64::new(revision),
            deletes_since_purge: AtomicUsize::new(0),
            // Tombstones up to the open revision were written by earlier
            // processes: the first purge scans for them.
            applied_tombstones: Mutex::new(PendingTombstones {
                recorded: Vec::new(),
                unrecorded_upto: (revision > 0).then_some(revision),
            }),
            closed: AtomicBool::new(false),
            poison: Mutex::new(None),
            lock: Mutex::new(Some(lock)),
            metrics: crate::metrics::StoreMetrics::default(),
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn revision(&self) -> Revision {
        self.revision.load(Ordering::Acquire)
    }

    /// Every commit at or below this revision has run its commit hooks
    /// (groups run their hooks one at a time, in revision order).
    pub(crate) fn hooks_done(&self) -> Revision {
        self.hooked.load(Ordering::Acquire)
    }

    pub(crate) fn synced_revision(&self) -> Revision {
        self.synced.load(Ordering::Acquire)
    }

    pub(crate) fn oldest_readable(&self) -> Revision {
        self.oldest_readable.load(Ordering::Acquire)
    }

    /// Runs `f` on the cold store, or fails with `Closed`.
    pub(crate) fn with_cold<T>(&self, f: impl FnOnce(&dyn ColdStore) -> Result<T>) -> Result<T> {
        let guard = self.cold.read();
        match guard.as_deref() {
            Some(cold) => f(cold),
            None => Err(StorageError::Closed),
        }
    }

    fn cold(&self) -> Result<Arc<dyn ColdStore>> {
        self.cold.read().clone().ok_or(StorageError::Closed)
    }

    /// The newest version of `key`: memtable first, then the cold store.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Versioned>> {
        if let Some(v) = self.memtable.read().get(key) {
            return Ok(Some(v));
        }
        self.with_cold(|c| c.get(key))
    }

    /// Newest versions in a range (tombstones included), in key order.
    pub(crate) fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Result<Merge<ScanIter>> {
        let hot = self.memtable.read().range(start, end);
        let cold = self.cold()?.scan(start, end);
        Ok(Merge::new(hot, cold))
    }

    /// Like [`Engine::scan`], in descending key order.
    pub(crate) fn scan_rev(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Result<Merge<ScanIter>> {
        let hot = self.memtable.read().range(start, end);
        let cold = self.cold()?.scan_rev(start, end);
        Ok(Merge::new_descending(hot, cold))
    }

    fn poisoned(&self) -> Option<String> {
        self.poison.lock().clone()
    }

    /// Records the first I/O failure; every later commit is refused.
    fn poison_msg(&self, err: &StorageError) -> String {
        let msg = err.to_string();
        tracing::error!(error = %msg, "storage poisoned");
        self.poison.lock().get_or_insert(msg).clone()
    }

    fn poison_with(&self, err: &StorageError) -> StorageError {
        StorageError::Poisoned(self.poison_msg(err))
    }

    pub(crate) fn commit(&self, pending: Pending) -> Result<CommitOutcome> {
        if self.is_closed() {
            return Err(StorageError::Closed);
        }
        self.commits.submit(pending, |group| self.process_group(group))
    }

    /// Waits while the memtable is over its limit (the applier is behind).
    /// Gives up when the store closes or is poisoned (the caller re-checks).
    fn wait_for_room(&self) {
        while self.memtable.read().active_bytes() >= self.config.memtable_max_bytes {
            if self.is_closed() || self.poisoned().is_some() {
                return;
            }
            self.signal.raise();
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// The leader's work: check conditions, log, make durable per the mode,
    /// insert into the memtable, publish the revision, run hooks.
    fn process_group(&self, group: Vec<Pending>) -> Vec<Result<CommitOutcome>> {
        let n = group.len();
        let _span = tracing::debug_span!("commit_group", size = n).entered();
        self.wait_for_room();
        if let Some(msg) = self.poisoned() {
            return (0..n).map(|_| Err(StorageError::Poisoned(msg.clone()))).collect();
        }
        let mut wal = self.wal.lock();
        let mut high_keys = self.high_keys.lock();
        let mut watched = self.watched.lock();
        self.learn_scopes(&group, &mut high_keys);
        // A batch's writes are looked up by the conditions of the batches
        // after it in the group; none are kept when no later batch has any
        // (a lone committer's group).
        let last_conditional = group.iter().rposition(|p| !p.batch.conditions.is_empty());
        let mut overlay: HashMap<Vec<u8>, Revision> = HashMap::new();
        let mut rev = self.revision();
        let mut writes = Vec::new();
        let mut outcomes: Vec<Result<CommitOutcome>> = Vec::with_capacity(n);
        let mut hooks = Vec::with_capacity(n);
        let mut deletes = 0;
        for (i, Pending { batch, hook }) in group.into_iter().enumerate() {
            let track_overlay = last_conditional.is_some_and(|last| i < last);
            match self.check_conditions(&batch.conditions, &overlay, &high_keys, &mut watched) {
                Err(e) => outcomes.push(Err(e)),
                Ok(Some(failed)) => outcomes.push(Ok(failed)),
                Ok(None) => {
                    if let Err(e) = wal.append(rev + 1, &batch.ops) {
                        outcomes.push(Err(e));
                        continue;
                    }
                    rev += 1;
                    for op in batch.ops {
                        if track_overlay {
                            overlay.insert(op.key_at(rev), if op.value().is_some() { rev } else { 0 });
                        }
                        deletes += usize::from(op.value().is_none());
                        let write = versioned(op, rev);
                        if !high_keys.is_empty() {
                            high_keys.note(&write.0);
                        }
                        if !watched.is_empty() {
                            watched.note(&write.0, if write.1.value.is_some() { rev } else { 0 });
                        }
                        writes.push(write);
                    }
                    outcomes.push(Ok(CommitOutcome::Committed(rev)));
                    hooks.push((rev, hook));
                }
            }
        }
        drop(watched);
        drop(high_keys);
        let failed = outcomes.iter().filter(|o| matches!(o, Ok(CommitOutcome::ConditionFailed { .. }))).count();
        self.metrics.group(n, hooks.len(), failed);
        if hooks.is_empty() {
            return outcomes;
        }
        let io = match self.config.durability {
            Durability::Strict => wal.write_out().and_then(|()| {
                let (file, _) = wal.sync_target();
                let started = std::time::Instant::now();
                let synced = file.sync_data().map_err(|e| StorageError::io("syncing the WAL", e));
                self.metrics.fsync(started.elapsed());
                tracing::debug!(micros = started.elapsed().as_micros() as u64, revision = rev, "fsynced the WAL");
                synced
            }),
            Durability::Balanced => wal.write_out(),
            Durability::Buffered if wal.buffered_records() >= self.config.write_buffer_size => wal.write_out(),
            Durability::Buffered => Ok(()),
        };
        if let Err(e) = io {
            return self.fail_committed(outcomes, &e);
        }
        if self.config.durability == Durability::Strict {
            self.synced.fetch_max(rev, Ordering::AcqRel);
        }
        let pins = self.mvcc.lock_pins();
        if pins.any() {
            if let Err(e) = self.record_history(&writes) {
                return self.fail_committed(outcomes, &e);
            }
        }
        let full = {
            let mut mt = self.memtable.write();
            mt.insert(writes);
            self.revision.store(rev, Ordering::Release);
            mt.active_bytes() >= self.config.memtable_flush_bytes
        };
        drop(pins);
        drop(wal);
        if full {
            self.signal.raise();
        }
        self.deletes_since_purge.fetch_add(deletes, Ordering::Relaxed);
        for (r, hook) in hooks {
            if let Some(hook) = hook {
                hook(r);
            }
        }
        self.hooked.fetch_max(rev, Ordering::AcqRel);
        outcomes
    }

    /// Poisons the store after a failure on the write path and turns every
    /// would-be commit of the group into that error (nothing was published).
    fn fail_committed(&self, outcomes: Vec<Result<CommitOutcome>>, e: &StorageError) -> Vec<Result<CommitOutcome>> {
        let msg = self.poison_msg(e);
        outcomes
            .into_iter()
            .map(|o| match o {
                Ok(CommitOutcome::Committed(_)) => Err(StorageError::Poisoned(msg.clone())),
                other => other,
            })
            .collect()
    }

    /// Records the versions a group's writes replace, for pinned snapshots.
    fn record_history(&self, writes: &[(Vec<u8>, Versioned)]) -> Result<()> {
        let mut in_group: HashMap<&[u8], &Versioned> = HashMap::new();
        for (key, v) in writes {
            let previous = match in_group.insert(key, v) {
                // Written twice by one batch: what that revision replaced is
                // the version before the batch, already recorded.
                Some(earlier) if earlier.revision == v.revision => continue,
                Some(earlier) => Some(earlier.clone()),
                None => self.get(key)?,
            };
            self.mvcc.record(key.clone(), v.revision, previous);
        }
        Ok(())
    }

    /// Pins the current revision for snapshot reads.
    pub(crate) fn pin(&self) -> Revision {
        self.mvcc.pin(|| self.revision())
    }

    /// The version of `key` current at `snapshot` (tombstones included).
    pub(crate) fn get_at_snapshot(&self, key: &[u8], snapshot: Revision) -> Result<Option<Versioned>> {
        // Latest first: a version newer than the snapshot was published
        // after its history was recorded.
        match self.get(key)? {
            Some(v) if v.revision <= snapshot => Ok(Some(v)),
            _ => Ok(self.mvcc.lookup(key, snapshot).flatten()),
        }
    }

    /// The version current at `snapshot` of a key whose latest version is
    /// `latest` (tombstones included; `None` if absent at the snapshot).
    ///
    /// Enough for scans without consulting the history's key set: a key
    /// that existed at the snapshot is still present in the latest state
    /// (a delete after the snapshot leaves a tombstone, and tombstones newer
    /// than the oldest pin are never purged), and a version newer than the
    /// snapshot had its history recorded before it was published.
    pub(crate) fn resolve_at(&self, key: &[u8], latest: Versioned, snapshot: Revision) -> Option<Versioned> {
        if latest.revision <= snapshot {
            Some(latest)
        } else {
            self.mvcc.lookup(key, snapshot).flatten()
        }
    }

    /// Releases a snapshot pin.
    pub(crate) fn unpin(&self, snapshot: Revision) {
        self.mvcc.unpin(snapshot);
    }

    /// The live revision of a key (0 if absent): earlier writes of the same
    /// group first, then the memtable and the cold store.
    fn live_revision(&self, key: &[u8], overlay: &HashMap<Vec<u8>, Revision>) -> Result<Revision> {
        if let Some(r) = overlay.get(key) {
            return Ok(*r);
        }
        Ok(self.get(key)?.filter(|v| v.value.is_some()).map_or(0, |v| v.revision))
    }

    fn check_conditions(
        &self,
        conditions: &[Condition],
        overlay: &HashMap<Vec<u8>, Revision>,
        high_keys: &HighKeys,
        watched: &mut Watched,
    ) -> Result<Option<CommitOutcome>> {
        let (mut read, mut by_order, mut from_watched) = (0, 0, 0);
        let mut outcome = None;
        for c in conditions {
            let actual = if c.revision == 0 && high_keys.above(&c.key, c.scope) {
                by_order += 1;
                0
            } else if let Some(r) = c.watched.then(|| watched.get(&c.key)).flatten() {
                // Every commit of a watched key, this group's earlier
                // batches included, is recorded in `watched`.
                from_watched += 1;
                r
            } else {
                read += 1;
                let r = self.live_revision(&c.key, overlay)?;
                if c.watched {
                    // The live revision (the overlay holds every earlier
                    // write of this group, as this batch has conditions),
                    // from now on kept current by `note`.
                    watched.watch(&c.key, r);
                }
                r
            };
            if actual != c.revision {
                outcome = Some(CommitOutcome::ConditionFailed { key: c.key.clone(), expected: c.revision, actual });
                break;
            }
        }
        self.metrics.conditions(read, by_order, from_watched);
        Ok(outcome)
    }

    /// Learns, from the store as it is before `group`, the highest key of
    /// every scope its absence conditions name that is not yet tracked
    /// (one reverse seek per scope, the first time). A scope that cannot
    /// be read stays untracked: its conditions are read one by one, and
    /// report the error there.
    fn learn_scopes(&self, group: &[Pending], high_keys: &mut HighKeys) {
        let scopes = group.iter().flat_map(|p| &p.batch.conditions).filter(|c| c.revision == 0);
        for c in scopes {
            if c.scope == 0 || c.scope >= c.key.len() || high_keys.tracks(&c.key[..c.scope]) {
                continue;
            }
            let prefix = &c.key[..c.scope];
            if let Ok(high) = self.last_key_under(prefix) {
                high_keys.track(prefix, high);
            }
        }
    }

    /// The highest key starting with `prefix` in the memtable or the cold
    /// store, tombstones included.
    fn last_key_under(&self, prefix: &[u8]) -> Result<Option<Vec<u8>>> {
        let end = crate::store::prefix_successor(prefix);
        let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let hot = self.memtable.read().last_key_in(Bound::Included(prefix), end);
        let cold = match self.cold()?.scan_rev(Bound::Included(prefix), end).next() {
            Some(item) => Some(item?.0),
            None => None,
        };
        Ok(hot.max(cold))
    }

    /// One applier cycle: freeze the memtable, make the WAL durable up to
    /// it, apply it to the cold store, release it. Returns whether there was
    /// anything to apply.
    pub(crate) fn apply_once(&self) -> Result<bool> {
        let _one_at_a_time = self.apply_lock.lock();
        // After a failed write or fsync nothing more reaches the cold store:
        // a retried fsync can report success for pages the kernel dropped.
        if let Some(msg) = self.poisoned() {
            return Err(StorageError::Poisoned(msg));
        }
        let (table, upto, file, written) = {
            let mut wal = self.wal.lock();
            wal.write_out().map_err(|e| self.poison_with(&e))?;
            let (file, written) = wal.sync_target();
            let Some(table) = self.memtable.write().freeze() else { return Ok(false) };
            (table, self.revision(), file, written)
        };
        if self.synced_revision() < upto {
            file.sync_data().map_err(|e| self.poison_with(&StorageError::io("syncing the WAL", e)))?;
            self.synced.fetch_max(written, Ordering::AcqRel);
        }
        let applied = self.with_cold(|c| c.apply(&mut table.iter().map(|(k, v)| (k.as_slice(), v))));
        if let Err(e) = applied {
            return Err(self.poison_with(&e));
        }
        self.applied.fetch_max(upto, Ordering::AcqRel);
        self.note_tombstones(&table);
        self.memtable.write().release_frozen();
        Ok(true)
    }

    /// Writes buffered WAL records to the OS (`Buffered` mode's flush).
    pub(crate) fn flush_buffer(&self) -> Result<()> {
        let mut wal = self.wal.lock();
        if wal.buffered_records() == 0 {
            return Ok(());
        }
        wal.write_out().map_err(|e| self.poison_with(&e))
    }

    /// Writes out and fsyncs the WAL; afterwards every acknowledged write is
    /// on stable storage. Returns the synced revision.
    pub(crate) fn sync(&self) -> Result<Revision> {
        let (file, written) = {
            let mut wal = self.wal.lock();
            wal.write_out().map_err(|e| self.poison_with(&e))?;
            wal.sync_target()
        };
        if written > self.synced_revision() {
            let started = std::time::Instant::now();
            file.sync_data().map_err(|e| self.poison_with(&StorageError::io("syncing the WAL", e)))?;
            self.metrics.fsync(started.elapsed());
            tracing::debug!(micros = started.elapsed().as_micros() as u64, revision = written, "fsynced the WAL");
            self.synced.fetch_max(written, Ordering::AcqRel);
        }
        Ok(self.synced_revision())
    }

    /// Records the applied revision in the cold store, flushes it, and
    /// deletes the WAL segments it covers; purges tombstones when enough
    /// deletes accumulated.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        let _one_at_a_time = self.checkpoint_lock.lock();
        let _span = tracing::debug_span!("checkpoint").entered();
        self.metrics.checkpoint();
        let cold = self.cold()?;
        let applied = self.applied.load(Ordering::Acquire);
        cold.set_checkpoint(applied)?;
        cold.flush()?;
        let segments = wal::list_segments(&self.wal_dir)?;
        for pair in segments.windows(2) {
            let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
            if *next_first <= applied + 1 {
                std::fs::remove_file(path)
                    .map_err(|e| StorageError::io(format!("removing checkpointed segment {}", path.display()), e))?;
            }
        }
        if self.deletes_since_purge.load(Ordering::Relaxed) >= self.config.tombstone_purge_threshold {
            self.deletes_since_purge.store(0, Ordering::Relaxed);
            // A pinned snapshot may still need to see a later delete.
            let horizon = self.mvcc.min_pinned().map_or(applied, |pin| pin.min(applied));
            let due = self.take_due_tombstones(horizon);
            let removed = match &due {
                Some(keys) => cold.purge_tombstones_of(&mut keys.iter().map(Vec::as_slice), horizon)?,
                None => cold.purge_tombstones(horizon)?,
            };
            self.oldest_readable.fetch_max(horizon, Ordering::AcqRel);
            tracing::debug!(removed, horizon, "purged tombstones");
        }
        // Applying frees what sled replaced and its written I/O buffers in
        // the middle of the allocator's arenas, where they stay resident
        // until handed back (`allocator`).
        if self.released_at.swap(applied, Ordering::AcqRel) < applied {
            let started = std::time::Instant::now();
            let released = crate::allocator::release_free_memory();
            tracing::debug!(released, micros = started.elapsed().as_micros() as u64, "released free memory");
        }
        Ok(())
    }

    /// Records the tombstones of an applied table for the next purge. Too
    /// many pending and the list is dropped: the next purges scan instead
    /// (see [`PendingTombstones`]).
    fn note_tombstones(&self, table: &crate::memtable::Table) {
        let mut pending = self.applied_tombstones.lock();
        pending.recorded.extend(table.iter().filter(|(_, v)| v.value.is_none()).map(|(k, v)| (k.clone(), v.revision)));
        if pending.recorded.len() > self.config.tombstone_purge_threshold.saturating_mul(8) {
            let newest = pending.recorded.iter().map(|(_, rev)| *rev).max();
            pending.unrecorded_upto = pending.unrecorded_upto.max(newest);
            pending.recorded = Vec::new();
        }
    }

    /// The tombstone keys a purge at `horizon` should visit (those recorded
    /// at or below it; newer ones stay for a later purge), or `None` for a
    /// full scan while unrecorded tombstones may remain — the scan covers
    /// them up to `horizon`, and those above it keep the next purge a scan.
    fn take_due_tombstones(&self, horizon: Revision) -> Option<Vec<Vec<u8>>> {
        let mut pending = self.applied_tombstones.lock();
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut pending.recorded).into_iter().partition(|(_, rev)| *rev <= horizon);
        pending.recorded = later;
        match pending.unrecorded_upto {
            Some(upto) => {
                if upto <= horizon {
                    pending.unrecorded_upto = None;
                }
                None
            }
            None => Some(due.into_iter().map(|(k, _)| k).collect()),
        }
    }

    /// The highest revision the cold store holds.
    pub(crate) fn applied_revision(&self) -> Revision {
        self.applied.load(Ordering::Acquire)
    }

    /// Bytes written to the WAL since open.
    /// Bytes of writes in the memtable.
    pub(crate) fn memtable_bytes(&self) -> usize {
        self.memtable.read().active_bytes()
    }

    pub(crate) fn wal_bytes(&self) -> u64 {
        self.wal.lock().written_bytes()
    }

    /// Stops accepting commits, drains in-flight ones, applies and
    /// checkpoints everything, and releases the cold store and the directory
    /// lock. Background threads must be stopped first. Idempotent.
    pub(crate) fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _span = tracing::info_span!("close", dir = %self.dir.display()).entered();
        self.commits.wait_idle();
        // A poisoned store applied nothing after the failure: closing says so
        // (the WAL still holds every acknowledged write; reopening recovers).
        let drained = match self.poisoned() {
            None => self.checkpoint_all().and_then(|()| self.retire_wal()),
            Some(msg) => Err(StorageError::Poisoned(msg)),
        };
        drop(self.cold.write().take());
        drop(self.lock.lock().take());
        tracing::info!(dir = %self.dir.display(), revision = self.revision(), "closed store");
        drained
    }

    /// After a full checkpoint at close: starts an empty segment after the
    /// checkpoint and deletes every other one, so a closed store keeps no
    /// log it does not need (the active segment would otherwise stay, up to
    /// `wal_segment_bytes`). The order is the one recovery accepts at any
    /// crash point: the empty newest segment exists before the older ones,
    /// which the checkpoint covers, go.
    fn retire_wal(&self) -> Result<()> {
        let mut wal = self.wal.lock();
        let last = self.revision();
        if self.applied.load(Ordering::Acquire) < last {
            // Commits with no writes after the last applied one (an empty
            // batch) reach no memtable, so applying never covers them; their
            // revisions must survive the log. Commits have stopped and every
            // write is applied, so the checkpoint can say so.
            self.applied.fetch_max(last, Ordering::AcqRel);
            self.checkpoint()?;
        }
        let next = last + 1;
        *wal = WalWriter::create(&self.wal_dir, next, self.config.wal_segment_bytes, self.config.wal_preallocation())?;
        for (first, path) in wal::list_segments(&self.wal_dir)? {
            if first != next {
                std::fs::remove_file(&path)
                    .map_err(|e| StorageError::io(format!("removing checkpointed segment {}", path.display()), e))?;
            }
        }
        wal::sync_dir(&self.wal_dir)
    }

    /// Applies everything committed so far to the cold store, then checkpoints.
    pub(crate) fn checkpoint_all(&self) -> Result<()> {
        while self.apply_once()? {}
        self.sync()?;
        self.checkpoint()
    }
}

fn versioned(op: Op, revision: Revision) -> (Vec<u8>, Versioned) {
    match op {
        Op::Put { key, value } => (key, Versioned { revision, value: Some(value) }),
        Op::Delete { key } => (key, Versioned { revision, value: None }),
        Op::PutAtRevision { prefix, value } => {
            (crate::batch::revision_key(&prefix, revision), Versioned { revision, value: Some(value) })
        }
        Op::PutAtRevisionPart { prefix, part, value } => {
            (crate::batch::revision_part_key(&prefix, revision, part), Versioned { revision, value: Some(value) })
        }
    }
}
