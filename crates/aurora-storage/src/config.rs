//! [`StoreConfig`] and [`Durability`]: what the engine promises and how it
//! is tuned.

use crate::error::{Result, StorageError};
use std::time::Duration;

/// When a commit is acknowledged, and so which acknowledged writes survive
/// which failure. `docs/durability.md` states the promises in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// Acknowledged only after the WAL record is on stable storage (fsync).
    /// Concurrent committers share one fsync (group commit). Survives
    /// process kills and power loss with nothing lost.
    Strict,
    /// Acknowledged after the WAL record is written to the OS; the WAL is
    /// fsynced at least every [`StoreConfig::sync_interval`]. Survives a
    /// killed process with nothing lost; a power loss loses at most the last
    /// interval.
    #[default]
    Balanced,
    /// Acknowledged once applied in memory; WAL records are written to the
    /// OS when [`StoreConfig::write_buffer_size`] records are pending or
    /// every [`StoreConfig::write_buffer_flush_interval`], whichever comes
    /// first. A killed process loses at most that window; recovery always
    /// yields a prefix of the commit history.
    Buffered,
}

/// What opening does when the write-ahead log is damaged somewhere other
/// than a torn tail of its newest segment, or has a gap (the rules are in
/// `docs/durability.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WalRecovery {
    /// Refuse to open with [`StorageError::WalCorrupt`] naming the segment
    /// and offset, changing nothing (the default): opening would silently
    /// lose acknowledged writes.
    #[default]
    Refuse,
    /// A deliberate salvage: keep the longest valid prefix of the log, move
    /// every byte after it aside into `wal/*.log.dropped` files, open at the
    /// last kept revision, and report exactly what was dropped in
    /// [`Store::recovery_report`](crate::Store::recovery_report). Writes
    /// after the damage are lost (they stay in the set-aside files).
    KeepValidPrefix,
}

/// Tuning of a [`Store`](crate::Store). Start from `StoreConfig::default()`
/// and change what you need; [`StoreConfig::validate`] runs at open.
///
/// ```
/// use aurora_storage::{Durability, StoreConfig};
/// let cfg = StoreConfig { durability: Durability::Strict, ..StoreConfig::default() };
/// assert!(cfg.validate().is_ok());
/// let bad = StoreConfig { write_buffer_size: 0, ..StoreConfig::default() };
/// assert!(bad.validate().unwrap_err().to_string().contains("write_buffer_size"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The durability mode (default [`Durability::Balanced`]).
    pub durability: Durability,
    /// Longest time between WAL fsyncs in `Balanced` and `Buffered` modes (default 100 ms).
    pub sync_interval: Duration,
    /// `Buffered` mode: records pending before they are written to the OS (default 1000).
    pub write_buffer_size: usize,
    /// `Buffered` mode: longest time a record stays pending (default 10 ms).
    pub write_buffer_flush_interval: Duration,
    /// What the cold store's page cache may cost in resident memory, in MiB
    /// (default 64; sled is given 3/4 of it as its `cache_capacity`, which
    /// it overshoots by about that much). Not bounded by it: sled's
    /// bookkeeping of every page of the data (about 70 bytes per small
    /// document past a few hundred thousand) and its 512 KiB write buffers
    /// in flight (up to about 16 MiB during a bulk load).
    pub cold_cache_capacity_mb: usize,
    /// Memory for key ranges kept resident, in bytes (default 32 MiB; 0
    /// turns it off): the layer above registers prefixes
    /// ([`Store::keep_resident`](crate::Store::keep_resident) — the index
    /// layer registers each index it reads, the query engine each
    /// collection it scans in full), and scans inside a registered
    /// prefix are served from a copy in memory instead of the cold store's
    /// iterator. Each entry is charged its key, its value and 128 bytes; a
    /// prefix that does not fit is left in the cold store.
    pub range_cache_bytes: usize,
    /// How often the cold store is flushed and the WAL trimmed (default
    /// 1 s). A checkpoint that follows newly applied writes also hands the
    /// C allocator's free memory back to the OS (glibc's `malloc_trim`;
    /// nothing elsewhere), which the cold store's writes leave resident.
    pub checkpoint_interval: Duration,
    /// Size at which a WAL segment is closed and a new one started (default 64 MiB).
    pub wal_segment_bytes: u64,
    /// `Strict` mode: how far ahead of the log's end the active WAL segment
    /// is filled with zeros, in bytes (default 1 MiB; 0 turns it off; other
    /// modes do not preallocate). An `fdatasync` after overwriting blocks
    /// the file already holds flushes only the data; after an append it
    /// also journals the file's growth (measured 155–207 µs against
    /// 293–429 µs per sync). Recovery reads zeros after the last record as
    /// the log's end, exactly like a file that ends there; a closed segment
    /// is cut back to its records.
    pub wal_preallocate_bytes: u64,
    /// Largest key accepted (default 64 KiB).
    pub max_key_bytes: usize,
    /// Largest value accepted (default 16 MiB).
    pub max_value_bytes: usize,
    /// Deletes after which tombstones are purged at the next checkpoint (default 10 000).
    pub tombstone_purge_threshold: usize,
    /// Memtable size at which the applier moves it into the cold store
    /// early (default 2 MiB; otherwise every `sync_interval`).
    pub memtable_flush_bytes: usize,
    /// Memtable size at which commits wait for the applier (default 8 MiB).
    pub memtable_max_bytes: usize,
    /// What opening does with a damaged write-ahead log (default
    /// [`WalRecovery::Refuse`]).
    pub wal_recovery: WalRecovery,
    /// Free disk space, in bytes, that opening requires on top of twice the
    /// WAL it must replay and twice sled's largest snapshot (default 8 MiB).
    /// Recovery writes to the cold store; sled 0.34 damages its own files
    /// when a write fails for lack of space during its recovery, so below
    /// this the open is refused with [`StorageError::DiskFull`] before
    /// anything is written. 0 disables the check.
    pub min_free_disk_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Balanced,
            sync_interval: Duration::from_millis(100),
            write_buffer_size: 1000,
            write_buffer_flush_interval: Duration::from_millis(10),
            cold_cache_capacity_mb: 64,
            range_cache_bytes: 32 << 20,
            checkpoint_interval: Duration::from_secs(1),
            wal_segment_bytes: 64 << 20,
            wal_preallocate_bytes: 1 << 20,
            max_key_bytes: 64 << 10,
            max_value_bytes: 16 << 20,
            tombstone_purge_threshold: 10_000,
            memtable_flush_bytes: 2 << 20,
            memtable_max_bytes: 8 << 20,
            wal_recovery: WalRecovery::Refuse,
            min_free_disk_bytes: 8 << 20,
        }
    }
}

impl StoreConfig {
    /// The zero-filled space kept ahead of the WAL's end in the configured
    /// mode (0 unless `Strict`).
    pub(crate) fn wal_preallocation(&self) -> u64 {
        match self.durability {
            Durability::Strict => self.wal_preallocate_bytes,
            _ => 0,
        }
    }

    /// Checks every setting, naming the first invalid one.
    pub fn validate(&self) -> Result<()> {
        let bad = |setting, reason: &str| Err(StorageError::InvalidConfig { setting, reason: reason.into() });
        if self.sync_interval.is_zero() {
            return bad("sync_interval", "must be greater than zero");
        }
        if self.write_buffer_size == 0 {
            return bad("write_buffer_size", "must be at least 1");
        }
        if self.write_buffer_flush_interval.is_zero() {
            return bad("write_buffer_flush_interval", "must be greater than zero");
        }
        if self.cold_cache_capacity_mb == 0 {
            return bad("cold_cache_capacity_mb", "must be at least 1");
        }
        if self.checkpoint_interval.is_zero() {
            return bad("checkpoint_interval", "must be greater than zero");
        }
        if self.wal_segment_bytes < 4096 {
            return bad("wal_segment_bytes", "must be at least 4096");
        }
        if self.wal_preallocate_bytes > (1 << 30) {
            return bad("wal_preallocate_bytes", "must be at most 1 GiB");
        }
        if self.max_key_bytes == 0 || self.max_key_bytes > (1 << 20) {
            return bad("max_key_bytes", "must be between 1 and 1 MiB");
        }
        if self.max_value_bytes == 0 || self.max_value_bytes > (1 << 30) {
            return bad("max_value_bytes", "must be between 1 and 1 GiB");
        }
        if self.memtable_flush_bytes == 0 {
            return bad("memtable_flush_bytes", "must be at least 1");
        }
        if self.memtable_max_bytes < self.memtable_flush_bytes {
            return bad("memtable_max_bytes", "must be at least memtable_flush_bytes");
        }
        Ok(())
    }
}
