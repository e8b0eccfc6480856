//! Fault injection on the WAL of a real store: unsynced bytes dropped (a
//! power loss), a torn last record, a flipped bit in the tail, and damage
//! before intact records (which must refuse to open, not lose data).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::{Durability, StorageError, Store};
use std::path::{Path, PathBuf};

fn newest_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("wal")).unwrap().map(|e| e.unwrap().path()).collect();
    segs.sort();
    segs.pop().expect("a WAL segment")
}

/// Writes `n` keys in `mode` and returns the store (still open).
fn write_keys(dir: &Path, mode: Durability, range: std::ops::Range<u32>) -> Store {
    let store = Store::open(dir, common::config(mode)).unwrap();
    for i in range {
        store.put(format!("k{i:04}"), format!("v{i}")).unwrap();
    }
    store
}

fn keys(store: &Store) -> Vec<u32> {
    common::dump(store).iter().map(|(k, _)| std::str::from_utf8(&k[1..]).unwrap().parse().unwrap()).collect()
}

/// Simulates a crash that leaves `mutate`d WAL bytes, and reopens.
fn crash_with(src: &Path, mutate: impl FnOnce(&Path)) -> Result<Store, StorageError> {
    let crashed = src.with_extension("crashed");
    common::copy_dir(src, &crashed);
    mutate(&newest_segment(&crashed));
    Store::open(&crashed, common::config(Durability::Balanced))
}

/// One crash per case: each reopened store (which must open) is checked,
/// closed, and its crashed copy removed before the next case.
fn crash_each<C: Copy>(src: &Path, cases: &[C], mutate: impl Fn(&Path, C), check: impl Fn(&Store, C)) {
    for &case in cases {
        let reopened = crash_with(src, |seg| mutate(seg, case)).unwrap();
        check(&reopened, case);
        reopened.close().unwrap();
        std::fs::remove_dir_all(src.with_extension("crashed")).unwrap();
    }
}

/// Cuts the last `n` bytes of a segment (a write torn by the crash).
fn cut_tail(seg: &Path, n: u64) {
    let len = std::fs::metadata(seg).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(seg).unwrap().set_len(len - n).unwrap();
}

#[test]
fn unsynced_bytes_dropped_keeps_synced_prefix() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let store = write_keys(&dir, Durability::Balanced, 0..50);
    assert_eq!(store.sync().unwrap(), 50);
    let synced_len = std::fs::metadata(newest_segment(&dir)).unwrap().len();
    for i in 50..80 {
        store.put(format!("k{i:04}"), "late").unwrap();
    }
    let reopened = crash_with(&dir, |seg| {
        std::fs::OpenOptions::new().write(true).open(seg).unwrap().set_len(synced_len).unwrap();
    })
    .unwrap();
    assert_eq!(keys(&reopened), (0..50).collect::<Vec<_>>());
    assert_eq!(reopened.revision(), 50);
}

#[test]
fn strict_writes_are_synced_before_acknowledgement() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let store = write_keys(&dir, Durability::Strict, 0..20);
    assert_eq!(store.durable_revision(), 20, "every acknowledged Strict write is durable");
}

#[test]
fn torn_last_record_is_discarded() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let _store = write_keys(&dir, Durability::Strict, 0..30);
    crash_each(&dir, &[1u64, 5, 13, 20], cut_tail, |reopened, cut| {
        assert_eq!(keys(reopened), (0..29).collect::<Vec<_>>(), "cut {cut} bytes");
    });
}

#[test]
fn flipped_bit_in_the_tail_drops_only_the_last_record() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let _store = write_keys(&dir, Durability::Strict, 0..30);
    let reopened = crash_with(&dir, |seg| {
        let mut data = std::fs::read(seg).unwrap();
        let at = data.len() - 2;
        data[at] ^= 0x20;
        std::fs::write(seg, data).unwrap();
    })
    .unwrap();
    assert_eq!(keys(&reopened), (0..29).collect::<Vec<_>>());
    // The damaged record is gone for good: a new write takes its revision.
    assert_eq!(reopened.put("new", "x").unwrap(), 30);
}

#[test]
fn damage_before_intact_records_refuses_to_open() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let _store = write_keys(&dir, Durability::Strict, 0..30);
    let err = crash_with(&dir, |seg| {
        let mut data = std::fs::read(seg).unwrap();
        data[20] ^= 0x01; // inside the first record's payload
        std::fs::write(seg, data).unwrap();
    })
    .unwrap_err();
    assert!(matches!(err, StorageError::WalCorrupt { .. }), "{err}");
    assert!(err.to_string().contains(".log"), "names the segment: {err}");
}

/// Zeros after the log's last bytes (what a preallocated segment holds past
/// its records): the log ends there as at a cut end.
fn append_zeros(seg: &Path, n: usize) {
    let mut data = std::fs::read(seg).unwrap();
    data.extend(std::iter::repeat_n(0u8, n));
    std::fs::write(seg, data).unwrap();
}

#[test]
fn a_zero_filled_tail_ends_the_log_like_a_cut_end() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let _store = write_keys(&dir, Durability::Strict, 0..30);
    crash_each(&dir, &[1usize, 11, 12, 4096, 1 << 20], append_zeros, |reopened, zeros| {
        assert_eq!(keys(reopened), (0..30).collect::<Vec<_>>(), "{zeros} zeros");
        assert_eq!(reopened.recovery_report().torn_tail_bytes, 0, "zeros are no torn record");
        assert_eq!(reopened.put("new", "x").unwrap(), 31);
    });
}

#[test]
fn a_torn_record_followed_by_zeros_is_a_torn_tail() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let _store = write_keys(&dir, Durability::Strict, 0..30);
    let cut_then_zeros = |seg: &Path, cut| {
        cut_tail(seg, cut);
        append_zeros(seg, 8192);
    };
    crash_each(&dir, &[1u64, 5, 13, 20], cut_then_zeros, |reopened, cut| {
        assert_eq!(keys(reopened), (0..29).collect::<Vec<_>>(), "cut {cut} bytes, then zeros");
        assert!(reopened.recovery_report().torn_tail_bytes > 8192, "the torn record and the zeros are cut");
        assert_eq!(reopened.put("new", "x").unwrap(), 30, "the torn record's revision is taken again");
    });
}

#[test]
fn zeros_before_intact_records_still_refuse_to_open() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let _store = write_keys(&dir, Durability::Strict, 0..30);
    let err = crash_with(&dir, |seg| {
        let mut data = std::fs::read(seg).unwrap();
        // A zeroed stretch inside the log, intact records after it.
        let at = data.len() / 2;
        data.splice(at..at, std::iter::repeat_n(0u8, 4096));
        std::fs::write(seg, data).unwrap();
    })
    .unwrap_err();
    assert!(matches!(err, StorageError::WalCorrupt { .. }), "{err}");
}
