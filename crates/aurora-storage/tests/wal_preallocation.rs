//! `Strict` mode keeps zeros written ahead of the WAL's end (so an fsync
//! overwrites blocks the file holds instead of growing it). The crashes of
//! `wal_faults.rs` on such segments: zeros after the last record are the
//! log's end, a torn or damaged last record before them is a torn tail,
//! damage before intact records still refuses to open, and a full segment
//! is cut back to its records when the next one starts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::{Durability, StorageError, Store, StoreConfig};
use std::path::{Path, PathBuf};

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("wal")).unwrap().map(|e| e.unwrap().path()).collect();
    segs.sort();
    segs
}

fn newest_segment(dir: &Path) -> PathBuf {
    segments(dir).pop().expect("a WAL segment")
}

/// Bytes up to the last non-zero byte: where the records end.
fn records_end(data: &[u8]) -> usize {
    data.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1)
}

fn strict_store(dir: &Path, n: u32) -> Store {
    let store = Store::open(dir, common::preallocated(Durability::Strict)).unwrap();
    for i in 0..n {
        store.put(format!("k{i:04}"), format!("v{i}")).unwrap();
    }
    store
}

fn keys(store: &Store) -> Vec<u32> {
    common::dump(store).iter().map(|(k, _)| std::str::from_utf8(&k[1..]).unwrap().parse().unwrap()).collect()
}

fn crash_with(src: &Path, mutate: impl FnOnce(&mut Vec<u8>)) -> Result<Store, StorageError> {
    let crashed = src.with_extension("crashed");
    let _ = std::fs::remove_dir_all(&crashed);
    common::copy_dir(src, &crashed);
    let seg = newest_segment(&crashed);
    let mut data = std::fs::read(&seg).unwrap();
    mutate(&mut data);
    std::fs::write(&seg, data).unwrap();
    Store::open(&crashed, common::preallocated(Durability::Strict))
}

#[test]
fn a_strict_segment_holds_zeros_ahead_of_its_records_and_reopens_whole() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let _store = strict_store(&dir, 30);
    let data = std::fs::read(newest_segment(&dir)).unwrap();
    let preallocate = StoreConfig::default().wal_preallocate_bytes as usize;
    assert!(data.len() >= preallocate, "{} bytes", data.len());
    assert!(records_end(&data) < data.len() / 2, "zeros after the records");
    let reopened = crash_with(&dir, |_| {}).unwrap();
    assert_eq!(keys(&reopened), (0..30).collect::<Vec<_>>());
    assert_eq!(reopened.recovery_report().torn_tail_bytes, 0, "the zeros are no torn record");
    assert_eq!(reopened.put("new", "x").unwrap(), 31);
}

#[test]
fn a_torn_last_record_before_the_zeros_is_discarded() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let _store = strict_store(&dir, 30);
    for cut in [1usize, 5, 13, 20] {
        // The record's last bytes never reached the disk: zeros remain there.
        let reopened = crash_with(&dir, |data| {
            let end = records_end(data);
            data[end - cut..end].fill(0);
        })
        .unwrap();
        assert_eq!(keys(&reopened), (0..29).collect::<Vec<_>>(), "cut {cut} bytes");
        assert!(reopened.recovery_report().torn_tail_bytes > 0);
        assert_eq!(reopened.put("new", "x").unwrap(), 30, "the torn record's revision is taken again");
        reopened.close().unwrap();
    }
}

#[test]
fn a_flipped_bit_in_the_last_record_drops_only_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let _store = strict_store(&dir, 30);
    let reopened = crash_with(&dir, |data| {
        let at = records_end(data) - 2;
        data[at] ^= 0x20;
    })
    .unwrap();
    assert_eq!(keys(&reopened), (0..29).collect::<Vec<_>>());
    assert_eq!(reopened.put("new", "x").unwrap(), 30);
}

#[test]
fn damage_before_intact_records_still_refuses_to_open() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let _store = strict_store(&dir, 30);
    let err = crash_with(&dir, |data| data[20] ^= 0x01).unwrap_err();
    assert!(matches!(err, StorageError::WalCorrupt { .. }), "{err}");
    // A zeroed stretch inside the records (a lost page), intact ones after.
    let err = crash_with(&dir, |data| {
        let end = records_end(data);
        data[end / 3..end / 2].fill(0);
    })
    .unwrap_err();
    assert!(matches!(err, StorageError::WalCorrupt { .. }), "{err}");
}

#[test]
fn a_full_segment_is_cut_back_to_its_records() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let config = StoreConfig { wal_segment_bytes: 4096, ..common::preallocated(Durability::Strict) };
    let store = Store::open(&dir, config.clone()).unwrap();
    for i in 0..300u32 {
        store.put(format!("k{i:04}"), vec![7u8; 100]).unwrap();
    }
    let segs = segments(&dir);
    assert!(segs.len() > 3, "{} segments", segs.len());
    for seg in &segs[..segs.len() - 1] {
        let data = std::fs::read(seg).unwrap();
        assert_eq!(records_end(&data), data.len(), "{} ends at its last record", seg.display());
    }
    let crashed = dir.with_extension("crashed");
    common::copy_dir(&dir, &crashed);
    let reopened = Store::open(&crashed, config).unwrap();
    assert_eq!(reopened.revision(), 300);
    assert_eq!(common::dump(&reopened).len(), 300);
}

#[test]
fn other_modes_do_not_preallocate() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let store = Store::open(&dir, common::preallocated(Durability::Balanced)).unwrap();
    for i in 0..30u32 {
        store.put(format!("k{i:04}"), "v").unwrap();
    }
    store.sync().unwrap();
    let data = std::fs::read(newest_segment(&dir)).unwrap();
    assert_eq!(records_end(&data), data.len());
}
