//! [`Store`]: the handle users hold on an open storage directory.

use crate::batch::{Batch, CommitOutcome, Revision};
use crate::cold::OpenBackend;
use crate::commit::{CommitHook, Pending};
use crate::config::StoreConfig;
use crate::engine::Engine;
use crate::error::{printable_key, Result, StorageError};
use crate::maintenance::Background;
use crate::snapshot::Snapshot;
use crate::wal::replay::RecoveryReport;
use parking_lot::Mutex;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

/// An open storage directory: a WAL in front of the cold store, with group
/// commit and the configured [`Durability`](crate::Durability).
///
/// `Store` is a cheap, cloneable handle (`Send + Sync`). The directory is
/// locked while any handle is alive; [`Store::close`] (or dropping the last
/// handle) drains commits, syncs, stops the maintenance thread and releases
/// the lock. After `close`, every call fails with [`StorageError::Closed`].
///
/// ```
/// use aurora_storage::{Batch, Store, StoreConfig};
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path(), StoreConfig::default())?;
/// let rev = store.put(b"greeting", b"hello")?;
/// assert_eq!(store.get(b"greeting")?.as_deref(), Some(&b"hello"[..]));
///
/// // Compare-and-swap on the key's revision:
/// let mut b = Batch::new();
/// b.require_revision(b"greeting".to_vec(), rev).put(b"greeting".to_vec(), b"hi".to_vec());
/// assert!(store.commit(b)?.revision().is_some());
/// store.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Store {
    owner: Arc<Owner>,
}

/// Owns the engine and its maintenance thread; dropping the last handle closes.
struct Owner {
    engine: Arc<Engine>,
    background: Mutex<Option<Background>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Err(e) = shutdown(&self.engine, &self.background) {
            tracing::error!(error = %e, "closing store on drop failed");
        }
    }
}

fn shutdown(engine: &Engine, background: &Mutex<Option<Background>>) -> Result<()> {
    if let Some(mut threads) = background.lock().take() {
        threads.stop();
    }
    engine.close()
}

impl Store {
    /// Opens (creating if needed) the storage directory `dir`, recovering
    /// from the WAL. Fails with [`StorageError::Locked`] if another process
    /// or handle has it open, and with [`StorageError::InvalidConfig`] for a
    /// bad setting.
    ///
    /// Recovery follows `docs/durability.md`: a damaged or incomplete WAL
    /// (other than a torn tail of its newest segment) is
    /// [`StorageError::WalCorrupt`] unless `config.wal_recovery` asks for a
    /// salvage; too little free disk space is [`StorageError::DiskFull`]; a
    /// panic in the cold store is [`StorageError::Corrupt`]. In each case
    /// nothing was written.
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Self> {
        Self::open_with_backend(dir, config, &mut crate::engine::sled_backend)
    }

    /// Like [`Store::open`], with the cold store made by `backend` (called
    /// once with the directory `dir/cold` and the page-cache size in bytes)
    /// instead of [`SledStore`](crate::cold::SledStore). For other backends
    /// and for fault injection in tests.
    pub fn open_with_backend(dir: impl AsRef<Path>, config: StoreConfig, backend: &mut OpenBackend) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
        let engine = Arc::new(Engine::open(dir, config, backend)?);
        let background = Background::start(Arc::clone(&engine))
            .map_err(|e| StorageError::io("starting the storage background threads", e))?;
        Ok(Self { owner: Arc::new(Owner { engine, background: Mutex::new(Some(background)) }) })
    }

    fn engine(&self) -> &Engine {
        &self.owner.engine
    }

    /// What recovery found and did when this store was opened: the
    /// checkpoint, the records replayed, a torn tail cut, and what a
    /// salvaging open ([`WalRecovery::KeepValidPrefix`](crate::WalRecovery)) dropped.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.engine().report
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.engine().config
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.engine().dir
    }

    fn check_sizes(&self, batch: &Batch) -> Result<()> {
        let cfg = self.config();
        // A WAL record's length field is 32 bits: a batch whose record would
        // not fit is refused before it is acknowledged (64 KiB of headroom
        // for the record's framing and encoding overhead).
        let total: usize = batch.ops().iter().map(|op| op.key().len() + op.value().map_or(0, <[u8]>::len) + 16).sum();
        let max_batch = (u32::MAX as usize) - (64 << 10);
        if total > max_batch {
            return Err(StorageError::TooLarge { what: "batch", size: total, limit: max_batch });
        }
        for op in batch.ops() {
            if op.key().len() > cfg.max_key_bytes {
                return Err(StorageError::TooLarge { what: "key", size: op.key().len(), limit: cfg.max_key_bytes });
            }
            if let Some(v) = op.value().filter(|v| v.len() > cfg.max_value_bytes) {
                return Err(StorageError::TooLarge { what: "value", size: v.len(), limit: cfg.max_value_bytes });
            }
        }
        Ok(())
    }

    /// Commits `batch` atomically. Returns when the durability mode's
    /// promise holds. A failed [`Condition`](crate::Condition) is an
    /// `Ok(CommitOutcome::ConditionFailed)`, and then nothing was written.
    pub fn commit(&self, batch: Batch) -> Result<CommitOutcome> {
        self.commit_with(batch, None)
    }

    /// Like [`Store::commit`], and runs `hook` with the commit's revision
    /// right after the batch is applied, in commit order with every other
    /// hook. Keep hooks short: they run while other committers wait.
    pub fn commit_with(&self, batch: Batch, hook: Option<CommitHook>) -> Result<CommitOutcome> {
        self.check_sizes(&batch)?;
        let _span = tracing::debug_span!("commit", ops = batch.ops().len()).entered();
        self.engine().commit(Pending { batch, hook })
    }

    /// Sets one key; returns the commit revision.
    pub fn put(&self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Result<Revision> {
        let mut b = Batch::new();
        b.put(key, value);
        self.commit(b)?.into_result()
    }

    /// Deletes one key; returns the commit revision.
    pub fn delete(&self, key: impl Into<Vec<u8>>) -> Result<Revision> {
        let mut b = Batch::new();
        b.delete(key);
        self.commit(b)?.into_result()
    }

    fn check_open(&self) -> Result<()> {
        if self.engine().is_closed() {
            return Err(StorageError::Closed);
        }
        Ok(())
    }

    /// The current value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get_versioned(key)?.map(|(_, v)| v))
    }

    /// The current value of `key` with the revision that wrote it.
    pub fn get_versioned(&self, key: &[u8]) -> Result<Option<(Revision, Vec<u8>)>> {
        self.check_open()?;
        let v = self.engine().get(key)?;
        Ok(v.and_then(|v| v.value.map(|value| (v.revision, value))))
    }

    /// The value `key` had at `revision`, or [`StorageError::Compacted`] if
    /// that state is no longer retained (only the latest version of each key
    /// is kept; tombstones until purged).
    pub fn get_at(&self, key: &[u8], revision: Revision) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        let engine = self.engine();
        let oldest = engine.oldest_readable();
        let current = engine.revision();
        if revision > current {
            return Err(StorageError::FutureRevision { key: printable_key(key), requested: revision, current });
        }
        if revision < oldest {
            return Err(StorageError::Compacted { key: printable_key(key), requested: revision, oldest });
        }
        match engine.get(key)? {
            None => Ok(None),
            Some(v) if v.revision <= revision => Ok(v.value),
            Some(_) => Err(StorageError::Compacted { key: printable_key(key), requested: revision, oldest }),
        }
    }

    /// Live keys and values in `[start, end)` (bounds as given), in key order.
    pub fn range(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Result<impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>> {
        self.check_open()?;
        Ok(self.engine().scan(start, end)?.filter_map(|item| match item {
            Ok((k, v)) => v.value.map(|value| Ok((k, value))),
            Err(e) => Some(Err(e)),
        }))
    }

    /// Live keys and values starting with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>>> {
        let end = prefix_successor(prefix);
        let end_bound = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.range(Bound::Included(prefix), end_bound)
    }

    /// A consistent view as of the current revision; see [`Snapshot`].
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.check_open()?;
        Ok(Snapshot::new(self.clone(), self.engine().pin()))
    }

    pub(crate) fn engine_for_snapshot(&self) -> Result<&Engine> {
        self.check_open()?;
        Ok(self.engine())
    }

    pub(crate) fn unpin(&self, revision: Revision) {
        self.engine().unpin(revision);
    }

    /// Keeps the keys under `prefix` resident in memory, within
    /// [`StoreConfig::range_cache_bytes`](crate::StoreConfig::range_cache_bytes):
    /// the first scan inside it copies the cold store's part of the prefix
    /// into memory, every later write is mirrored there, and scans inside
    /// it (forwards or backwards) are served from that copy instead of the
    /// cold store's iterator — the same answers, at a fraction of the cost
    /// per entry. A prefix that does not fit stays in the cold store.
    /// Registering again, or a prefix inside a registered one, does
    /// nothing; nothing is kept across a reopen.
    ///
    /// ```
    /// use aurora_storage::{Store, StoreConfig};
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path(), StoreConfig::default())?;
    /// store.put("ix/1", "")?;
    /// store.put("ix/2", "")?;
    /// store.checkpoint()?; // into the cold store
    /// store.keep_resident(b"ix/");
    /// assert_eq!(store.scan_prefix(b"ix/")?.count(), 2); // loads the prefix
    /// assert!(store.resident_bytes() > 0);
    /// assert_eq!(store.scan_prefix(b"ix/")?.count(), 2); // from memory
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep_resident(&self, prefix: &[u8]) {
        self.engine().resident.register(prefix);
    }

    /// Bytes charged by the ranges kept resident
    /// ([`Store::keep_resident`]), at most
    /// [`StoreConfig::range_cache_bytes`](crate::StoreConfig::range_cache_bytes).
    pub fn resident_bytes(&self) -> usize {
        self.engine().resident.used_bytes()
    }

    /// The revision of the last applied commit (visible to reads).
    pub fn revision(&self) -> Revision {
        self.engine().revision()
    }

    /// Every commit at or below this revision has run its commit hook
    /// (hooks run after the revision is published, one group at a time).
    pub fn hooks_done(&self) -> Revision {
        self.engine().hooks_done()
    }

    /// The highest revision known to be on stable storage.
    pub fn durable_revision(&self) -> Revision {
        self.engine().synced_revision()
    }

    /// Writes out and fsyncs the WAL now: afterwards every write acknowledged
    /// so far survives power loss, whatever the mode. Returns the durable revision.
    pub fn sync(&self) -> Result<Revision> {
        self.check_open()?;
        self.engine().sync()
    }

    /// Applies every committed write to the cold store, flushes it and trims
    /// the WAL now (the background threads do this continuously).
    pub fn checkpoint(&self) -> Result<()> {
        self.check_open()?;
        self.engine().checkpoint_all()
    }

    /// Bytes on disk: the cold store plus the WAL.
    pub fn disk_bytes(&self) -> Result<u64> {
        self.check_open()?;
        let cold = self.engine().with_cold(|c| c.disk_bytes())?;
        let wal: u64 = crate::wal::list_segments(&self.path().join("wal"))?
            .iter()
            .filter_map(|(_, p)| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        Ok(cold + wal)
    }

    /// Bytes written to the WAL since open.
    pub fn wal_bytes_written(&self) -> u64 {
        self.engine().wal_bytes()
    }

    /// The write path's counters since open (commits, commit groups,
    /// fsyncs and their time, checkpoints, WAL bytes) and the revisions it
    /// stands at. Cheap: a few atomic loads.
    pub fn metrics(&self) -> crate::StoreMetricsSnapshot {
        let engine = self.engine();
        crate::StoreMetricsSnapshot {
            wal_bytes: engine.wal_bytes(),
            revision: engine.revision(),
            synced_revision: engine.synced_revision(),
            applied_revision: engine.applied_revision(),
            memtable_bytes: engine.memtable_bytes() as u64,
            ..engine.metrics.snapshot()
        }
    }

    /// Whether the store was closed.
    pub fn is_closed(&self) -> bool {
        self.engine().is_closed()
    }

    /// Drains in-flight commits, syncs the WAL, flushes the cold store, stops
    /// the maintenance thread and releases the directory lock, even while
    /// other handles exist (they then get [`StorageError::Closed`]).
    /// Closing twice is fine.
    pub fn close(&self) -> Result<()> {
        shutdown(&self.owner.engine, &self.owner.background)
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path())
            .field("revision", &self.revision())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` if there is none (the prefix is empty or all `0xFF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_cases() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(b""), None);
    }
}
