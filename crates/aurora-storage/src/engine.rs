//! The engine behind a [`Store`](crate::Store): recovery, the commit path,
//! WAL syncing and checkpoints. Shared by the user's handles and the
//! maintenance thread.

use crate::batch::{CommitOutcome, Op, Revision};
use crate::cold::{sled_store::SledStore, ColdStore, Versioned};
use crate::commit::{GroupCommit, Pending};
use crate::config::{Durability, StoreConfig};
use crate::error::{Result, StorageError};
use crate::lock::DirLock;
use crate::wal::{self, WalWriter};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Records replayed per cold-store batch during recovery.
const REPLAY_CHUNK: usize = 4096;

pub(crate) struct Engine {
    pub(crate) config: StoreConfig,
    pub(crate) dir: PathBuf,
    wal_dir: PathBuf,
    /// `None` once closed. Declared before `lock` so it is released first.
    cold: RwLock<Option<Arc<dyn ColdStore>>>,
    wal: Mutex<WalWriter>,
    commits: GroupCommit,
    checkpoint_lock: Mutex<()>,
    /// Highest revision applied and visible to reads.
    revision: AtomicU64,
    /// Highest revision known to be on stable storage.
    synced: AtomicU64,
    /// Oldest revision [`Engine::get_at`] can answer for.
    oldest_readable: AtomicU64,
    deletes_since_purge: AtomicUsize,
    closed: AtomicBool,
    poison: Mutex<Option<String>>,
    lock: Mutex<Option<DirLock>>,
}

impl Engine {
    /// Opens `dir`: takes the lock, opens the cold store, replays the WAL,
    /// checkpoints, and starts a fresh WAL segment.
    pub(crate) fn open(dir: &Path, config: StoreConfig) -> Result<Self> {
        config.validate()?;
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir)
            .map_err(|e| StorageError::io(format!("creating {}", wal_dir.display()), e))?;
        let lock = DirLock::acquire(dir)?;
        let cold = SledStore::open(&dir.join("cold"), (config.cold_cache_capacity_mb as u64) << 20)?;
        let applied = cold.applied_revision()?;
        let records = wal::replay::replay(&wal_dir, applied)?;
        let replayed = records.len();
        let mut revision = applied;
        for chunk in records.chunks(REPLAY_CHUNK) {
            let mut writes = Vec::new();
            for rec in chunk {
                writes.extend(rec.ops.iter().map(|op| versioned(op.clone(), rec.revision)));
                revision = rec.revision;
            }
            cold.apply(revision, writes)?;
        }
        cold.flush()?;
        for (_, path) in wal::list_segments(&wal_dir)? {
            std::fs::remove_file(&path)
                .map_err(|e| StorageError::io(format!("removing replayed segment {}", path.display()), e))?;
        }
        let writer = WalWriter::create(&wal_dir, revision + 1, config.wal_segment_bytes)?;
        tracing::info!(dir = %dir.display(), revision, replayed, durability = ?config.durability, "opened store");
        Ok(Self {
            config,
            dir: dir.to_path_buf(),
            wal_dir,
            cold: RwLock::new(Some(Arc::new(cold))),
            wal: Mutex::new(writer),
            commits: GroupCommit::default(),
            checkpoint_lock: Mutex::new(()),
            revision: AtomicU64::new(revision),
            synced: AtomicU64::new(revision),
            oldest_readable: AtomicU64::new(revision),
            deletes_since_purge: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            poison: Mutex::new(None),
            lock: Mutex::new(Some(lock)),
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn revision(&self) -> Revision {
        self.revision.load(Ordering::Acquire)
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

    /// A shared handle on the cold store (for iterators that outlive a call).
    pub(crate) fn cold(&self) -> Result<Arc<dyn ColdStore>> {
        self.cold.read().clone().ok_or(StorageError::Closed)
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

    /// The leader's work: check conditions, log, make durable per the mode,
    /// apply to the cold store, publish the revision, run hooks.
    fn process_group(&self, group: Vec<Pending>) -> Vec<Result<CommitOutcome>> {
        let n = group.len();
        let fail_all = |e: &dyn Fn() -> StorageError| (0..n).map(|_| Err(e())).collect();
        if let Some(msg) = self.poisoned() {
            return fail_all(&|| StorageError::Poisoned(msg.clone()));
        }
        let guard = self.cold.read();
        let Some(cold) = guard.as_deref() else {
            return fail_all(&|| StorageError::Closed);
        };
        let mut wal = self.wal.lock();
        let track_overlay = group.iter().any(|p| !p.batch.conditions.is_empty());
        let mut overlay: HashMap<Vec<u8>, Revision> = HashMap::new();
        let mut rev = self.revision();
        let mut writes = Vec::new();
        let mut outcomes: Vec<Result<CommitOutcome>> = Vec::with_capacity(n);
        let mut hooks = Vec::with_capacity(n);
        let mut deletes = 0;
        for Pending { batch, hook } in group {
            match check_conditions(cold, &batch.conditions, &overlay) {
                Err(e) => outcomes.push(Err(e)),
                Ok(Some(failed)) => outcomes.push(Ok(failed)),
                Ok(None) => {
                    rev += 1;
                    if let Err(e) = wal.append(rev, &batch.ops) {
                        rev -= 1;
                        outcomes.push(Err(e));
                        continue;
                    }
                    for op in batch.ops {
                        if track_overlay {
                            overlay.insert(op.key().to_vec(), if op.value().is_some() { rev } else { 0 });
                        }
                        deletes += usize::from(op.value().is_none());
                        writes.push(versioned(op, rev));
                    }
                    outcomes.push(Ok(CommitOutcome::Committed(rev)));
                    hooks.push((rev, hook));
                }
            }
        }
        if hooks.is_empty() {
            return outcomes;
        }
        let io = match self.config.durability {
            Durability::Strict => wal.write_out().and_then(|()| {
                let (file, _) = wal.sync_target();
                file.sync_data().map_err(|e| StorageError::io("syncing the WAL", e))
            }),
            Durability::Balanced => wal.write_out(),
            Durability::Buffered if wal.buffered_records() >= self.config.write_buffer_size => wal.write_out(),
            Durability::Buffered => Ok(()),
        };
        let applied = io.and_then(|()| cold.apply(rev, writes));
        if let Err(e) = applied {
            let msg = self.poison_msg(&e);
            return outcomes
                .into_iter()
                .map(|o| match o {
                    Ok(CommitOutcome::Committed(_)) => Err(StorageError::Poisoned(msg.clone())),
                    other => other,
                })
                .collect();
        }
        self.revision.store(rev, Ordering::Release);
        if self.config.durability == Durability::Strict {
            self.synced.fetch_max(rev, Ordering::AcqRel);
        }
        self.deletes_since_purge.fetch_add(deletes, Ordering::Relaxed);
        drop(wal);
        drop(guard);
        for (r, hook) in hooks {
            if let Some(hook) = hook {
                hook(r);
            }
        }
        outcomes
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
            file.sync_data().map_err(|e| self.poison_with(&StorageError::io("syncing the WAL", e)))?;
            self.synced.fetch_max(written, Ordering::AcqRel);
        }
        Ok(self.synced_revision())
    }

    /// Flushes the cold store and deletes WAL segments it now covers; purges
    /// tombstones when enough deletes accumulated.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        let _one_at_a_time = self.checkpoint_lock.lock();
        let cold = self.cold()?;
        let rev = self.revision();
        cold.flush()?;
        let segments = wal::list_segments(&self.wal_dir)?;
        for pair in segments.windows(2) {
            let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
            if *next_first <= rev + 1 {
                std::fs::remove_file(path)
                    .map_err(|e| StorageError::io(format!("removing checkpointed segment {}", path.display()), e))?;
            }
        }
        if self.deletes_since_purge.load(Ordering::Relaxed) >= self.config.tombstone_purge_threshold {
            self.deletes_since_purge.store(0, Ordering::Relaxed);
            let removed = cold.purge_tombstones(rev)?;
            self.oldest_readable.fetch_max(rev, Ordering::AcqRel);
            tracing::debug!(removed, horizon = rev, "purged tombstones");
        }
        Ok(())
    }

    /// Bytes written to the WAL since open.
    pub(crate) fn wal_bytes(&self) -> u64 {
        self.wal.lock().written_bytes()
    }

    /// Stops accepting commits, drains in-flight ones, syncs, flushes and
    /// releases the cold store and the directory lock. Idempotent.
    pub(crate) fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.commits.wait_idle();
        let synced = if self.poisoned().is_none() { self.sync().map(drop) } else { Ok(()) };
        let flushed = self.cold.read().as_ref().map_or(Ok(()), |c| c.flush());
        drop(self.cold.write().take());
        drop(self.lock.lock().take());
        tracing::info!(dir = %self.dir.display(), revision = self.revision(), "closed store");
        synced.and(flushed)
    }
}

fn versioned(op: Op, revision: Revision) -> (Vec<u8>, Versioned) {
    match op {
        Op::Put { key, value } => (key, Versioned { revision, value: Some(value) }),
        Op::Delete { key } => (key, Versioned { revision, value: None }),
    }
}

/// The live revision of a key: earlier writes of the same group first, then
/// the cold store; tombstones count as absent (0).
fn live_revision(cold: &dyn ColdStore, key: &[u8], overlay: &HashMap<Vec<u8>, Revision>) -> Result<Revision> {
    if let Some(r) = overlay.get(key) {
        return Ok(*r);
    }
    Ok(cold.get(key)?.filter(|v| v.value.is_some()).map_or(0, |v| v.revision))
}

fn check_conditions(
    cold: &dyn ColdStore,
    conditions: &[crate::batch::Condition],
    overlay: &HashMap<Vec<u8>, Revision>,
) -> Result<Option<CommitOutcome>> {
    for c in conditions {
        let actual = live_revision(cold, &c.key, overlay)?;
        if actual != c.revision {
            return Ok(Some(CommitOutcome::ConditionFailed { key: c.key.clone(), expected: c.revision, actual }));
        }
    }
    Ok(None)
}
