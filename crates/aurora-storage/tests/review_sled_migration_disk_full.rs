//! Hostile review of the move into sled trees (branch s8-disk) on a nearly
//! full disk: the move copies every key before it removes the old copies,
//! so it needs about the database's size again in free space, which the
//! free-space check at open (`min_free_disk_bytes` + twice the WAL + twice
//! sled's snapshot) does not ask for.
//!
//! Needs root (to mount a tmpfs). Without it the test says so on stderr and
//! skips — except under CI (`CI` set), where it fails instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::first_layout::{dir_bytes, write_first_layout};

use aurora_storage::{Durability, StorageError, Store, StoreConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What `check_free_space` asks for at open: `min_free` + twice the WAL +
/// twice sled's largest snapshot.
fn required_at_open(db: &Path, min_free: u64) -> u64 {
    let wal = dir_bytes(&db.join("wal"));
    let snap = std::fs::read_dir(db.join("cold"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("snap."))
        .map(|e| e.metadata().unwrap().len())
        .max()
        .unwrap_or(0);
    min_free + 2 * wal + 2 * snap
}

/// Opening a first-layout database on a disk whose free space passes the
/// check at open but is too small for the move (the space left varied from
/// far too little to almost enough, so the disk fills in the copy, its
/// flush, or the removal of the old copies): the open fails with a typed
/// error, nothing is damaged, and once space is freed the database opens
/// and reads the same.
#[test]
fn an_upgrade_on_a_nearly_full_disk_fails_cleanly_and_finishes_once_space_is_freed() {
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let Some(_fs) = aurora_testkit::tmpfs::Tmpfs::mount_or_skip(
        &mnt,
        "200m",
        "an_upgrade_on_a_nearly_full_disk_fails_cleanly_and_finishes_once_space_is_freed",
    ) else {
        return;
    };
    let mut model = BTreeMap::new();
    for i in 0..15_000u32 {
        let key = [&b"d"[..], format!("c{:02}", i % 40).as_bytes(), b"\0\x02", format!("{i:08}").as_bytes()].concat();
        model.insert(key, vec![(i % 251) as u8; 700]);
    }
    let config =
        StoreConfig { min_free_disk_bytes: 4 << 20, cold_cache_capacity_mb: 4, ..common::config(Durability::Strict) };
    for (round, extra_mib) in [1u64, 12, 40].into_iter().enumerate() {
        let db = mnt.join(format!("db{round}"));
        write_first_layout(&db, &model);
        let cold_bytes = dir_bytes(&db.join("cold"));
        let required = required_at_open(&db, config.min_free_disk_bytes);
        // Leave what the check at open asks for, plus a little more.
        let available = fs2::available_space(&mnt).unwrap();
        let ballast = mnt.join("ballast");
        let ballast_bytes = available - required - (extra_mib << 20);
        std::fs::write(&ballast, vec![1u8; ballast_bytes as usize]).unwrap();
        let first = Store::open(&db, config.clone());
        eprintln!(
            "cold store {} MiB, free {} MiB above the check's {} MiB: {:?}",
            cold_bytes >> 20,
            extra_mib,
            required >> 20,
            first.as_ref().err()
        );
        if let Err(e) = &first {
            assert!(matches!(e, StorageError::DiskFull { .. }), "a typed DiskFull, not {e:?}");
        }
        if let Ok(store) = first {
            assert_eq!(common::dump(&store).len(), model.len());
            drop(store);
        }
        std::thread::sleep(Duration::from_millis(300));
        std::fs::remove_file(&ballast).unwrap();
        let store = Store::open(&db, config.clone()).expect("opens once space is freed");
        let all = common::dump(&store);
        assert_eq!(all.len(), model.len());
        assert!(all.iter().map(|(k, v)| (k, v)).eq(model.iter()), "the store reads the same");
        store.close().unwrap();
        drop(store);
        std::fs::remove_dir_all(&db).unwrap();
    }
}
