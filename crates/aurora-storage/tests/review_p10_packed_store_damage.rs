//! Review (session 10) of the packed index trees through the `Store` (WAL,
//! applier, checkpoints): one damaged chunk, and an acknowledged write of
//! an index entry in the interval that chunk owns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_storage::{Store, StoreConfig};
use std::path::Path;
use std::time::Duration;

fn key(i: u32) -> Vec<u8> {
    format!("xusers\0age\0{i:05}").into_bytes()
}

fn open(dir: &Path) -> aurora_storage::Result<Store> {
    let started = std::time::Instant::now();
    loop {
        match Store::open(dir, StoreConfig::default()) {
            Err(aurora_storage::StorageError::Locked { .. } | aurora_storage::StorageError::Backend { .. })
                if started.elapsed() < Duration::from_secs(5) =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// 320 index entries (10 chunks), then the middle chunk's value cut short
/// with raw sled; returns the damaged chunk's interval.
fn damaged_database(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let store = open(dir).unwrap();
    let mut batch = aurora_storage::Batch::new();
    for i in 0..320 {
        batch.put(key(i * 2), b"".to_vec());
    }
    batch.put(b"dusers\0\x02u1".to_vec(), b"{doc}".to_vec());
    let _ = store.commit(batch).unwrap();
    store.close().unwrap();
    drop(store);
    let cold = aurora_testkit::raw_sled::open(&dir.join("cold"));
    let tree = cold.open_tree(b"pxusers\0").unwrap();
    let chunks: Vec<(Vec<u8>, Vec<u8>)> =
        tree.iter().map(|r| r.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    assert!(chunks.len() >= 6, "{} chunks", chunks.len());
    let (ck, raw) = &chunks[chunks.len() / 2];
    tree.insert(ck, &raw[..raw.len() - 2]).unwrap();
    cold.flush().unwrap();
    let lo = [&b"xusers\0"[..], ck].concat();
    let hi = [&b"xusers\0"[..], &chunks[chunks.len() / 2 + 1].0].concat();
    (lo, hi)
}

/// One damaged index chunk and one acknowledged write of an index entry
/// inside the interval it owns: the applier's merge decodes the chunk,
/// `ColdStore::apply` fails with `Corrupt`, the engine poisons the store
/// (every later commit is refused), and at the next open the WAL replay
/// applies the same write, fails the same way, and the open is refused —
/// every time. Under layout 2 the same damage (one index entry's value)
/// was only an error when that key was read, and a write of a neighbour
/// (or of the key itself) never read it. So a few damaged bytes in one
/// index chunk, plus any write near them, take the whole database down,
/// acknowledged writes included, and `aurora check` can only say it does
/// not open.
/// Correct: the damage stays confined to the chunk's entries — the write
/// is applied (e.g. into a new chunk for the damaged one's interval that
/// keeps its undecodable bytes aside, or by refusing only reads of that
/// interval) and the database keeps opening; at the least, it must stay
/// openable so that the index can be dropped and rebuilt.
#[test]
fn a_write_next_to_a_damaged_chunk_does_not_take_the_database_down() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (lo, hi) = damaged_database(dir);
    assert!(lo < hi);
    let store = open(dir).expect("a damaged chunk does not stop an open");
    // Far from the damage: fine.
    store.put(key(1), b"".to_vec()).unwrap();
    store.checkpoint().unwrap();
    // Inside the damaged chunk's interval, acknowledged:
    let near = [&lo[..], b"\x01"].concat();
    store.put(near.clone(), b"".to_vec()).unwrap();
    let checkpoint = store.checkpoint();
    let later = store.put(key(3), b"".to_vec());
    let closed = store.close();
    drop(store);
    let reopened = open(dir);
    assert!(
        checkpoint.is_ok() && later.is_ok() && closed.is_ok() && reopened.is_ok(),
        "checkpoint after the write: {checkpoint:?}\nnext commit: {later:?}\nclose: {closed:?}\nreopen: {:?}",
        reopened.as_ref().err()
    );
    let store = reopened.unwrap();
    assert_eq!(store.get(&key(3)).unwrap(), Some(Vec::new()), "the later commit");
    assert_eq!(store.get(&key(1)).unwrap(), Some(Vec::new()));
}

/// What holds: a damaged chunk does not stop an open, reads outside its
/// interval, nor writes outside it.
#[test]
fn a_damaged_chunk_leaves_the_rest_of_the_index_readable_and_writable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (lo, hi) = damaged_database(dir);
    let store = open(dir).unwrap();
    for i in 0..320u32 {
        let k = key(i * 2);
        match store.get(&k) {
            Ok(v) => assert_eq!(v, Some(Vec::new()), "{i}"),
            Err(e) => {
                assert!(k >= lo && k < hi, "{i} outside the damaged chunk: {e}");
                assert!(matches!(e, aurora_storage::StorageError::Corrupt { .. }), "{e}");
            }
        }
    }
    for i in [1u32, 3, 601, 639, 700] {
        store.put(key(i), b"w".to_vec()).unwrap();
    }
    store.checkpoint().unwrap();
    store.close().unwrap();
    drop(store);
    let store = open(dir).unwrap();
    for i in [1u32, 3, 601, 639, 700] {
        assert_eq!(store.get(&key(i)).unwrap(), Some(b"w".to_vec()), "{i}");
    }
}
