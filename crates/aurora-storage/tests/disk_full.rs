//! Item 4 of the integrity issue: a full disk never damages the database.
//! Fills a small tmpfs with `Strict` writes until the store refuses
//! (poisoned), checks that `close()` says so, that opening on the full disk
//! is refused with `DiskFull` before anything is written, and that once
//! space is freed every acknowledged write is back.
//!
//! Needs root (to mount a tmpfs). Without it the test says so on stderr and
//! skips — except under CI (`CI` set), where it fails instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_storage::{Durability, StorageError, Store, StoreConfig};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_full_disk_never_damages_the_database() {
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let Some(_fs) = aurora_testkit::tmpfs::Tmpfs::mount_or_skip(&mnt, "64m", "a_full_disk_never_damages_the_database")
    else {
        return;
    };
    let ballast = mnt.join("ballast");
    std::fs::write(&ballast, vec![1u8; 40 << 20]).unwrap();
    let dir = mnt.join("db");
    let config = StoreConfig {
        durability: Durability::Strict,
        cold_cache_capacity_mb: 4,
        wal_segment_bytes: 1 << 20,
        checkpoint_interval: Duration::from_millis(100),
        min_free_disk_bytes: 4 << 20,
        ..StoreConfig::default()
    };
    let store = Store::open(&dir, config.clone()).unwrap();
    let mut acked = BTreeSet::new();
    let value = vec![7u8; 4096];
    let failure = loop {
        let key = format!("k{:06}", acked.len());
        match store.put(key.clone(), value.clone()) {
            Ok(_) => {
                acked.insert(key);
            }
            Err(e) => break e,
        }
        assert!(acked.len() < 100_000, "the disk never filled");
    };
    assert!(
        matches!(failure, StorageError::Poisoned(_) | StorageError::Io { .. }),
        "a full disk is a typed error: {failure}"
    );
    assert!(store.close().is_err(), "close() reports the poisoned store");
    drop(store);

    let before = files(&dir);
    match Store::open(&dir, config.clone()) {
        Err(StorageError::DiskFull { available, required, .. }) => assert!(available < required),
        Err(e) => panic!("expected DiskFull, got {e}"),
        Ok(_) => panic!("opened on a full disk"),
    }
    assert!(files(&dir) == before, "a refused open wrote nothing");

    std::fs::remove_file(&ballast).unwrap();
    let store = Store::open(&dir, config).unwrap();
    for key in &acked {
        assert_eq!(store.get(key.as_bytes()).unwrap().as_deref(), Some(&value[..]), "acknowledged {key} is back");
    }
    eprintln!("{} acknowledged writes before the disk filled; all back after freeing space", acked.len());
    store.close().unwrap();
}
