//! Hostile review (session 9) of the move into sled trees refused with
//! `DiskFull` when free space is below the cold folder's size + 16 MiB
//! (`layout.rs::check_room_to_move`): right at the boundary — free space
//! just above what the check asks for — the move must either finish or
//! fail with a typed `DiskFull`, never a generic backend error or damage,
//! and once space is freed the database opens and reads the same. The
//! databases are bigger than the session-8 test's (the removal of the old
//! copies rewrites the default tree's pages, which scales with the size).
//!
//! Needs root (a tmpfs). Sized by `AURORA_S9_MOVE_KEYS` (default 60 000)
//! and `AURORA_S9_MOVE_VALUE` (bytes per value, default 700): ~78 MiB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::first_layout::{dir_bytes, write_first_layout};

use aurora_storage::{Durability, StorageError, Store, StoreConfig};
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn a_move_with_free_space_just_above_the_check_finishes_or_fails_typed() {
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let Some(_fs) = aurora_testkit::tmpfs::Tmpfs::mount_or_skip(
        &mnt,
        "400m",
        "a_move_with_free_space_just_above_the_check_finishes_or_fails_typed",
    ) else {
        return;
    };
    let keys: u32 = std::env::var("AURORA_S9_MOVE_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(60_000);
    let value: usize = std::env::var("AURORA_S9_MOVE_VALUE").ok().and_then(|v| v.parse().ok()).unwrap_or(700);
    let mut model = BTreeMap::new();
    for i in 0..keys {
        let key = [&b"d"[..], format!("c{:02}", i % 40).as_bytes(), b"\0\x02", format!("{i:08}").as_bytes()].concat();
        model.insert(key, vec![(i % 251) as u8; value]);
    }
    let config =
        StoreConfig { min_free_disk_bytes: 1 << 20, cold_cache_capacity_mb: 4, ..common::config(Durability::Strict) };
    for (round, extra_kib) in [256u64, 2048].into_iter().enumerate() {
        let db = mnt.join(format!("db{round}"));
        write_first_layout(&db, &model);
        let cold_bytes = dir_bytes(&db.join("cold"));
        // What the move's check asks for, plus a little.
        let required = cold_bytes + (16 << 20);
        let available = fs2::available_space(&mnt).unwrap();
        let ballast = mnt.join("ballast");
        std::fs::write(&ballast, vec![1u8; (available - required - (extra_kib << 10)) as usize]).unwrap();
        let first = Store::open(&db, config.clone());
        eprintln!(
            "cold store {} MiB, free {} KiB above the move's {} MiB: {:?}",
            cold_bytes >> 20,
            extra_kib,
            required >> 20,
            first.as_ref().err()
        );
        match &first {
            Ok(store) => assert_eq!(common::dump(store).len(), model.len()),
            Err(e) => assert!(matches!(e, StorageError::DiskFull { .. }), "a typed DiskFull, not {e:?}"),
        }
        drop(first);
        std::thread::sleep(Duration::from_millis(300));
        std::fs::remove_file(&ballast).unwrap();
        let store = Store::open(&db, config.clone()).expect("opens once space is freed");
        let all = common::dump(&store);
        assert!(
            all.len() == model.len() && all.iter().map(|(k, v)| (k, v)).eq(model.iter()),
            "the store reads the same"
        );
        store.close().unwrap();
        drop(store);
        std::fs::remove_dir_all(&db).unwrap();
    }
}
