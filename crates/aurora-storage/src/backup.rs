//! Online backup: [`Store::backup_to`] writes a consistent copy of the
//! store as of one revision into a new directory while writers go on.
//!
//! The copy is a store in its own right: a cold store holding every live
//! entry of a snapshot with its original revision, its checkpoint set to
//! the snapshot's revision, and an empty write-ahead log starting after it.
//! Opening it recovers nothing and continues at that revision, so sequence
//! numbers (the change feed's, compare-and-swap revisions) mean the same in
//! the copy as in the original.

use crate::cold::guarded::{self, Guarded};
use crate::cold::{ColdStore, Versioned};
use crate::error::{Result, StorageError};
use crate::wal::WalWriter;
use crate::{Revision, Store};
use std::ops::Bound;
use std::path::Path;
use std::time::{Duration, Instant};

/// Entries written to the copy per cold-store batch: bounds the memory a
/// backup holds at once (besides the versions the pinned snapshot keeps
/// while writers overwrite entries it has not copied yet).
const BATCH_ENTRIES: usize = 1024;

/// Where a running backup is ([`Store::backup_to`] calls its progress
/// callback after each batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupProgress {
    /// The revision the copy is consistent at.
    pub revision: Revision,
    /// Entries copied so far.
    pub entries: u64,
    /// Bytes of keys and values copied so far.
    pub bytes: u64,
}

/// What a finished backup copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    /// The revision the copy is consistent at: it holds exactly the
    /// commits up to and including this one.
    pub revision: Revision,
    /// Entries copied.
    pub entries: u64,
    /// Bytes of keys and values copied.
    pub bytes: u64,
    /// How long it took.
    pub elapsed: Duration,
}

impl Store {
    /// Writes a consistent copy of the store, as of the newest commit when
    /// the call starts, into `dir` (which must not exist, or be empty),
    /// while writers go on; calls `progress` after each batch of entries.
    /// The copy opens as an ordinary store (and, above, as an ordinary
    /// database) at that revision.
    ///
    /// Memory: one batch of entries (1 024), plus the old
    /// versions the backup's snapshot keeps of entries that writers change
    /// before they are copied. Durability: the copy is flushed (fsynced by
    /// the cold store) before this returns.
    ///
    /// The copy is written into a hidden sibling, `.<name>.partial`, and
    /// renamed to `dir` only once complete and flushed: `dir` never holds a
    /// partial copy (the next backup into `dir` removes a stale one).
    ///
    /// # Errors
    /// [`StorageError::Io`] if `dir` exists and is not empty, or on any
    /// I/O failure (`dir` then holds no copy); the errors of reading the
    /// snapshot.
    ///
    /// ```
    /// use aurora_storage::{Batch, Store, StoreConfig};
    /// let tmp = tempfile::tempdir().unwrap();
    /// let store = Store::open(tmp.path().join("db"), StoreConfig::default()).unwrap();
    /// let mut b = Batch::new();
    /// b.put(b"k".to_vec(), b"v".to_vec());
    /// store.commit(b).unwrap();
    /// let report = store.backup_to(&tmp.path().join("copy"), |_| {}).unwrap();
    /// let copy = Store::open(tmp.path().join("copy"), StoreConfig::default()).unwrap();
    /// assert_eq!(copy.get(b"k").unwrap(), Some(b"v".to_vec()));
    /// assert_eq!(copy.revision(), report.revision);
    /// ```
    pub fn backup_to(&self, dir: &Path, mut progress: impl FnMut(BackupProgress)) -> Result<BackupReport> {
        let started = Instant::now();
        let snapshot = self.snapshot()?;
        let revision = snapshot.revision();
        let _span = tracing::info_span!("backup", to = %dir.display(), revision).entered();
        prepare(dir)?;
        // Written under a temporary name next to `dir` and renamed into
        // place when complete: an interrupted backup never looks like a
        // (smaller) database.
        let partial = partial_path(dir);
        if partial.exists() {
            std::fs::remove_dir_all(&partial)
                .map_err(|e| StorageError::io(format!("removing an interrupted backup {}", partial.display()), e))?;
        }
        std::fs::create_dir_all(&partial)
            .map_err(|e| StorageError::io(format!("creating {}", partial.display()), e))?;
        let cache = (self.config().cold_cache_capacity_mb as u64) << 20;
        // Behind the same panic boundary as the store's own cold store.
        let cold_dir = partial.join("cold");
        let cold = guarded::catch("opening the backup's cold store", || {
            crate::engine::sled_backend(&cold_dir, cache.min(64 << 20))
        })
        .map(Guarded::new)?;
        let mut done = BackupProgress { revision, entries: 0, bytes: 0 };
        let mut batch: Vec<(Vec<u8>, Versioned)> = Vec::with_capacity(BATCH_ENTRIES);
        for entry in snapshot.iter(Bound::Unbounded, Bound::Unbounded)? {
            let (key, rev, value) = entry?;
            done.entries += 1;
            done.bytes += (key.len() + value.len()) as u64;
            batch.push((key, Versioned { revision: rev, value: Some(value) }));
            if batch.len() == BATCH_ENTRIES {
                write(&cold, &mut batch)?;
                progress(done);
            }
        }
        write(&cold, &mut batch)?;
        cold.set_checkpoint(revision)?;
        cold.flush()?;
        drop(cold);
        // An empty log that starts right after the checkpoint, as a store
        // that was just opened and checkpointed has.
        let wal_dir = partial.join("wal");
        std::fs::create_dir_all(&wal_dir)
            .map_err(|e| StorageError::io(format!("creating {}", wal_dir.display()), e))?;
        drop(WalWriter::create(&wal_dir, revision + 1, self.config().wal_segment_bytes, 0)?);
        crate::wal::sync_dir(&wal_dir)?;
        crate::wal::sync_dir(&partial)?;
        // `dir` is absent or empty (checked above): the rename replaces it.
        std::fs::rename(&partial, dir)
            .map_err(|e| StorageError::io(format!("moving the finished backup to {}", dir.display()), e))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::wal::sync_dir(parent)?;
        }
        progress(done);
        let report = BackupReport { revision, entries: done.entries, bytes: done.bytes, elapsed: started.elapsed() };
        tracing::info!(
            entries = report.entries,
            bytes = report.bytes,
            millis = report.elapsed.as_millis() as u64,
            "backup written"
        );
        Ok(report)
    }
}

/// Where a backup into `dir` is written until it is complete: a hidden
/// sibling, `.<name>.partial`.
fn partial_path(dir: &Path) -> std::path::PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "backup".into());
    dir.with_file_name(format!(".{name}.partial"))
}

/// Checks that `dir` is absent or empty.
fn prepare(dir: &Path) -> Result<()> {
    let not_empty = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if not_empty {
        return Err(StorageError::io(
            format!("writing a backup into {}", dir.display()),
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the directory is not empty"),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))
}

fn write(cold: &dyn ColdStore, batch: &mut Vec<(Vec<u8>, Versioned)>) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    cold.apply(&mut batch.iter().map(|(k, v)| (k.as_slice(), v)))?;
    batch.clear();
    Ok(())
}
