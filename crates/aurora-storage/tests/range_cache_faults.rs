//! Hostile review of the range cache against the panic boundary
//! (`cold/guarded.rs`): once the backend has panicked, "every later call
//! fails with the same error until the store is reopened" — including
//! scans the range cache would serve from memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::cold::{ColdStore, SledStore};
use aurora_storage::{Durability, StorageError, Store, StoreConfig};
use common::intercept::Intercept;
use std::path::Path;
use std::sync::Arc;

fn open(dir: &Path, budget: usize) -> Store {
    let config = StoreConfig { range_cache_bytes: budget, ..common::config(Durability::Strict) };
    Store::open_with_backend(dir, config, &mut |path, cache| {
        // Sled, but `get` of one key panics.
        let store = Intercept::new(SledStore::open(path, cache)?).on_get(|key| {
            if key == b"bomb" {
                panic!("injected backend panic reading {key:?}");
            }
            None
        });
        Ok(Arc::new(store) as Arc<dyn ColdStore>)
    })
    .unwrap()
}

/// What a scan of `p/` answers after the backend panicked, with the range
/// cache at `budget`.
fn scan_after_a_panic(budget: usize) -> Result<usize, StorageError> {
    let root = tempfile::tempdir().unwrap();
    let store = open(root.path(), budget);
    for i in 0..10 {
        store.put(format!("p/{i}"), "v").unwrap();
    }
    store.checkpoint().unwrap();
    store.keep_resident(b"p/");
    assert_eq!(store.scan_prefix(b"p/").unwrap().count(), 10, "loaded (when on)");
    let err = store.get(b"bomb").unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    let n = store.scan_prefix(b"p/")?.collect::<Result<Vec<_>, _>>()?.len();
    Ok(n)
}

/// The reference: with the range cache off, a scan after the panic is the
/// boundary's `Corrupt` error.
#[test]
fn without_the_range_cache_a_scan_after_a_backend_panic_fails() {
    let got = scan_after_a_panic(0);
    assert!(matches!(got, Err(StorageError::Corrupt { .. })), "{got:?}");
}

/// Review finding 1 (fixed): with the range cache on, the same scan
/// answered from memory as if nothing happened while the resident layer
/// sat above the panic boundary; it sits inside it now (`engine.rs`), so a
/// broken backend fails scans of loaded prefixes too.
#[test]
fn with_the_range_cache_a_scan_after_a_backend_panic_fails_too() {
    let got = scan_after_a_panic(1 << 20);
    assert!(matches!(got, Err(StorageError::Corrupt { .. })), "{got:?}");
}
