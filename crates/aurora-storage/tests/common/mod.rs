//! Helpers shared by the storage integration tests (included with `mod common;`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aurora_storage::{Durability, Store, StoreConfig};
use std::time::Duration;

/// A config for tests: the given mode, small caches, no periodic checkpoint
/// (tests call `checkpoint()` themselves), and no WAL preallocation: the
/// crash tests that cut, flip or zero bytes at a segment's end model a
/// crash before the zeros ahead of the log were written (the file's end is
/// the log's end). `wal_preallocation.rs` runs the same crashes on
/// preallocated segments.
pub fn config(durability: Durability) -> StoreConfig {
    StoreConfig {
        durability,
        cold_cache_capacity_mb: 8,
        checkpoint_interval: Duration::from_secs(3600),
        wal_preallocate_bytes: 0,
        ..StoreConfig::default()
    }
}

/// Like [`config`], with the default WAL preallocation.
pub fn preallocated(durability: Durability) -> StoreConfig {
    StoreConfig { wal_preallocate_bytes: StoreConfig::default().wal_preallocate_bytes, ..config(durability) }
}

#[allow(unused_imports)] // not every test file that includes this module copies folders
pub use aurora_testkit::image::copy_dir;

/// Every live key and value of the store, in order.
pub fn dump(store: &Store) -> Vec<(Vec<u8>, Vec<u8>)> {
    store.scan_prefix(b"").unwrap().map(Result::unwrap).collect()
}

/// How many proptest cases to run: `AURORA_PROPTEST_CASES`, or `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
pub mod cold;
pub mod first_layout;
pub mod flushed;
pub mod intercept;
