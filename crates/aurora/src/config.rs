//! [`AuroraConfig`]: every knob of the study's §13.1, and the §13.2 presets.

use crate::error::{Error, Result};
use aurora_index::IndexConfig;
use aurora_storage::{DocumentStoreConfig, Durability, EvictionPolicy, StoreConfig, WalRecovery};
use aurora_txn::Isolation;
use std::path::PathBuf;
use std::time::Duration;

/// How an [`Aurora`](crate::Aurora) database is opened and tuned.
///
/// ```
/// use aurora::{AuroraConfig, Durability};
/// let cfg = AuroraConfig { durability: Durability::Strict, ..AuroraConfig::new("data") };
/// assert!(cfg.validate().is_ok());
/// let bad = AuroraConfig { hot_cache_size_mb: 0, ..AuroraConfig::new("data") };
/// assert!(bad.validate().unwrap_err().to_string().contains("hot_cache_size_mb"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuroraConfig {
    /// The database folder (created if missing).
    pub path: PathBuf,
    /// Hot (decoded document) cache size in MiB. Default 40. Bounds what
    /// the cache holds in resident memory: documents are counted as the
    /// allocator hands them out, and each entry is charged 408 bytes more
    /// for the cache's hash table at its largest, its key and its eviction
    /// ring (a small document of four fields: about 1.4 KiB, so 40 MiB hold
    /// about 30 000 — what the default of 32 held while the table went
    /// uncharged). See `docs/configuration.md`, "Memory".
    pub hot_cache_size_mb: usize,
    /// Cold store (sled) page cache in MiB. Default 64: about what sled's
    /// cache costs in resident memory (sled is given 3/4 of it and holds
    /// 1.3–1.5× what it is given). Not bounded by it: sled's bookkeeping of
    /// every page of the data (about 70 bytes per small document past a
    /// few hundred thousand) and its write buffers in flight (up to about
    /// 16 MiB during a bulk load). See `docs/configuration.md`, "Memory".
    pub cold_cache_capacity_mb: usize,
    /// Key ranges kept in memory, in MiB: the indexes queries read and the
    /// collections they scan. Default 32; 0 turns it off. Each is loaded
    /// whole the first time a query reads it, if it fits what is left (an
    /// entry costs its key and stored value plus 128 bytes), and kept
    /// current by every write; its reads then skip the cold store's
    /// iterator. One that does not fit is read from the cold store as
    /// before (see `docs/configuration.md`, "Memory").
    pub range_cache_mb: usize,
    /// Hot cache eviction. Default `Hybrid`.
    pub eviction_policy: EvictionPolicy,
    /// Write buffering: acknowledge writes before they reach the OS
    /// ([`Durability::Buffered`]). Default `false`. Cannot be combined with
    /// `Durability::Strict`.
    pub enable_write_buffering: bool,
    /// Buffered records before they are written out. Default 1000.
    pub write_buffer_size: usize,
    /// Longest time a buffered record waits, in ms. Default 10.
    pub write_buffer_flush_interval_ms: u64,
    /// Most entries one index of a user collection may hold. Default
    /// `usize::MAX`: no cap (see `IndexConfig::max_index_entries_per_field`
    /// for what happens at a cap you set).
    pub max_index_entries_per_field: usize,
    /// How often expired hot-cache entries are purged, in s. Default 300.
    pub hot_cache_cleanup_interval_secs: u64,
    /// How often the cold store is flushed and the WAL trimmed, in ms. Default 1000.
    pub cold_flush_interval_ms: u64,
    /// Durability mode (see `docs/durability.md`). Default `Balanced`.
    pub durability: Durability,
    /// Longest time between WAL fsyncs in `Balanced`/`Buffered`, in ms. Default 100.
    pub sync_interval_ms: u64,
    /// Isolation level of transactions. Default `Serializable`.
    pub isolation: Isolation,
    /// Time-to-live of hot-cache entries; `None` (default) keeps them until evicted.
    pub hot_cache_ttl: Option<Duration>,
    /// Change events buffered per listener before it lags (default 4096);
    /// only events that pass the listener's filter count.
    pub event_buffer: usize,
    /// Committed user transactions the persistent change feed keeps
    /// (default 10 000; 0 turns the feed off). Transactions that change only
    /// system collections (the job queue's bookkeeping) do not count; the
    /// byte and age limits bound them. Trimmed every 10 s.
    pub change_feed_retention: usize,
    /// Also trim feed entries older than this (default: none).
    pub change_feed_max_age: Option<Duration>,
    /// Also keep the feed under this many encoded bytes of the documents
    /// its entries deliver, old and new (default 64 MiB): one bulk
    /// transaction's entry delivers every document it wrote. (On disk an
    /// entry costs far less: its header and the old versions of its updates
    /// and deletes.)
    pub change_feed_max_bytes: Option<u64>,
    /// What opening does with a write-ahead log damaged other than by a
    /// torn tail (default [`WalRecovery::Refuse`]: a typed error and nothing
    /// changed; `KeepValidPrefix` is the deliberate salvage, reported by
    /// [`Aurora::recovery_report`](crate::Aurora::recovery_report)). See
    /// `docs/durability.md`.
    pub wal_recovery: WalRecovery,
    /// Free disk space opening requires, in bytes, beyond twice the WAL to
    /// replay and twice the cold store's snapshot (default 8 MiB; 0
    /// disables the check): below it, opening fails with
    /// `StorageError::DiskFull` before writing anything.
    pub min_free_disk_bytes: u64,
    /// The limits JavaScript computed fields run under: CPU time per
    /// evaluation, script time per query, memory, result size (defaults:
    /// 50 ms, 1 s, 16 MiB, 1 MiB; see the computed-fields guide).
    pub script_limits: crate::ScriptLimits,
    /// How often the expiry task deletes documents past their time to
    /// live ([`Aurora::set_ttl`](crate::Aurora::set_ttl)); default 1 s.
    /// Reads hide expired documents at once regardless; `Duration::ZERO`
    /// runs no task (call [`Aurora::expire_now`](crate::Aurora::expire_now)).
    pub expiry_interval: Duration,
    /// The clock expiry reads (default: the system clock).
    pub expiry_clock: crate::ExpiryClock,
}

impl AuroraConfig {
    /// The defaults, for a database in `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            hot_cache_size_mb: 40,
            cold_cache_capacity_mb: 64,
            range_cache_mb: 32,
            eviction_policy: EvictionPolicy::Hybrid,
            enable_write_buffering: false,
            write_buffer_size: 1000,
            write_buffer_flush_interval_ms: 10,
            max_index_entries_per_field: usize::MAX,
            hot_cache_cleanup_interval_secs: 300,
            cold_flush_interval_ms: 1000,
            durability: Durability::Balanced,
            sync_interval_ms: 100,
            isolation: Isolation::Serializable,
            hot_cache_ttl: None,
            event_buffer: aurora_pubsub::DEFAULT_CAPACITY,
            change_feed_retention: 10_000,
            change_feed_max_age: None,
            change_feed_max_bytes: Some(64 << 20),
            wal_recovery: WalRecovery::Refuse,
            min_free_disk_bytes: 8 << 20,
            script_limits: aurora_query::ScriptLimits::default(),
            expiry_interval: Duration::from_secs(1),
            expiry_clock: crate::ExpiryClock::default(),
        }
    }

    /// Read-heavy workloads (blogs, news): a large hot cache (512 MiB) with
    /// LFU eviction and a 256 MiB cold cache.
    pub fn read_optimized(path: impl Into<PathBuf>) -> Self {
        Self {
            hot_cache_size_mb: 512,
            eviction_policy: EvictionPolicy::Lfu,
            cold_cache_capacity_mb: 256,
            ..Self::new(path)
        }
    }

    /// Write-heavy workloads (analytics, logging): a 128 MiB hot cache with
    /// LRU eviction and write buffering with a large buffer (10 000).
    pub fn write_optimized(path: impl Into<PathBuf>) -> Self {
        Self {
            hot_cache_size_mb: 128,
            eviction_policy: EvictionPolicy::Lru,
            enable_write_buffering: true,
            write_buffer_size: 10_000,
            ..Self::new(path)
        }
    }

    /// Real-time workloads (chat, dashboards): a very large hot cache
    /// (1024 MiB) with Hybrid eviction and write buffering (5 000).
    pub fn realtime(path: impl Into<PathBuf>) -> Self {
        Self {
            hot_cache_size_mb: 1024,
            eviction_policy: EvictionPolicy::Hybrid,
            enable_write_buffering: true,
            write_buffer_size: 5000,
            ..Self::new(path)
        }
    }

    /// The change feed's retention as the transaction layer takes it.
    pub(crate) fn feed_retention(&self) -> aurora_txn::FeedRetention {
        aurora_txn::FeedRetention {
            entries: self.change_feed_retention,
            max_age: self.change_feed_max_age,
            max_bytes: self.change_feed_max_bytes,
        }
    }

    /// The durability mode in force (`Buffered` when write buffering is on).
    pub fn effective_durability(&self) -> Durability {
        if self.enable_write_buffering {
            Durability::Buffered
        } else {
            self.durability
        }
    }

    /// Checks every setting, naming the first invalid one.
    pub fn validate(&self) -> Result<()> {
        let bad = |setting, reason: &str| Err(Error::InvalidConfig { setting, reason: reason.into() });
        if self.hot_cache_size_mb == 0 {
            return bad("hot_cache_size_mb", "must be at least 1");
        }
        let scripts = &self.script_limits;
        if scripts.time.is_zero() || scripts.query_budget.is_zero() {
            return bad("script_limits", "time and query_budget must be positive");
        }
        if scripts.memory < 1 << 20 || scripts.output == 0 {
            return bad("script_limits", "memory must be at least 1 MiB and output positive");
        }
        if self.hot_cache_cleanup_interval_secs == 0 {
            return bad("hot_cache_cleanup_interval_secs", "must be at least 1");
        }
        if self.event_buffer == 0 {
            return bad("event_buffer", "must be at least 1");
        }
        if self.max_index_entries_per_field == 0 {
            return bad("max_index_entries_per_field", "must be at least 1");
        }
        if self.enable_write_buffering && self.durability == Durability::Strict {
            return bad("enable_write_buffering", "cannot be combined with durability Strict");
        }
        if self.path.as_os_str().is_empty() {
            return bad("path", "must not be empty");
        }
        self.store_config().validate()?;
        Ok(())
    }

    pub(crate) fn store_config(&self) -> StoreConfig {
        StoreConfig {
            durability: self.effective_durability(),
            sync_interval: Duration::from_millis(self.sync_interval_ms),
            write_buffer_size: self.write_buffer_size,
            write_buffer_flush_interval: Duration::from_millis(self.write_buffer_flush_interval_ms),
            cold_cache_capacity_mb: self.cold_cache_capacity_mb,
            range_cache_bytes: self.range_cache_mb.saturating_mul(1 << 20),
            checkpoint_interval: Duration::from_millis(self.cold_flush_interval_ms),
            wal_recovery: self.wal_recovery,
            min_free_disk_bytes: self.min_free_disk_bytes,
            ..StoreConfig::default()
        }
    }

    pub(crate) fn document_config(&self) -> DocumentStoreConfig {
        DocumentStoreConfig {
            hot_cache_size_mb: self.hot_cache_size_mb,
            eviction_policy: self.eviction_policy,
            cache_ttl: self.hot_cache_ttl,
        }
    }

    pub(crate) fn index_config(&self) -> IndexConfig {
        IndexConfig { max_index_entries_per_field: self.max_index_entries_per_field }
    }
}
