//! Aurora's storage engine.
//!
//! - [`Store`]: an ordered key-value store made of a write-ahead log with
//!   **group commit** in front of a **cold store** (sled 0.34, behind the
//!   [`ColdStore`] trait). Commits are atomic [`Batch`]es that may carry
//!   compare-and-swap [`Condition`]s on key revisions; every commit gets the
//!   next [`Revision`].
//! - [`Durability`]: `Strict`, `Balanced` (default) and `Buffered`; see
//!   `docs/durability.md` for exactly which writes survive which crash.
//! - [`HotCache`]: the in-memory cache of decoded documents with size
//!   accounting, TTLs and sampled LRU/LFU/Hybrid eviction.
//! - [`DocumentStore`]: documents by collection and id, read through the
//!   hot cache (hot → cold → promote).
//! - [`skim::FieldReader`]: chosen fields of a stored document, read from
//!   its bytes without decoding the rest (scans test filters with it).
//!
//! Architecture invariant: this is the only crate that names `sled`; no sled
//! type appears in its public API.

pub mod allocator;
mod backup;
mod batch;
mod bytes;
pub mod cold;
mod commit;
mod config;
mod documents;
mod engine;
mod error;
pub mod format;
mod high_keys;
pub mod hot;
mod lock;
mod maintenance;
mod memtable;
mod merge;
mod metrics;
mod mvcc;
pub mod skim;
mod snapshot;
mod store;
mod wal;
mod watched;

pub use backup::{BackupProgress, BackupReport};
pub use batch::{revision_key, revision_part_key, Batch, CommitOutcome, Condition, Op, Revision};
pub use cold::{ColdStore, Versioned};
pub use commit::CommitHook;
pub use config::{Durability, StoreConfig, WalRecovery};
pub use documents::{
    collection_prefix, document_key, document_key_scope, split_document_key, validate_collection_name,
    with_document_key_bytes, Admitted, DocumentStore, DocumentStoreConfig, DocumentWrites,
};
pub use error::{printable_key, Result, StorageError};
pub use hot::{CacheStats, EvictionPolicy, HotCache};
pub use lock::{DirLock, FORK_GRACE};
pub use metrics::StoreMetricsSnapshot;
pub use snapshot::{Snapshot, SnapshotIter, VersionedEntry};
pub use store::{prefix_successor, Store};
pub use wal::inspect::{TornTail, WalDamage, WalInspection};
pub use wal::replay::{RecoveryReport, Salvaged};
