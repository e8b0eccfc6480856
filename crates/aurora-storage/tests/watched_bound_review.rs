//! Hostile review of s8's watched conditions (`Batch::require_watched_revision`)
//! past the bound of watched keys (4096): conditions on more keys than the
//! commit leader keeps in memory still decide exactly as reads — a stale
//! revision refused, the live one taken — for the keys watched first and
//! for those past the bound, after deletes and re-creations, in one group
//! and across a reopen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::{Batch, Durability, Revision, StorageError, Store};

const KEYS: usize = 4096 + 300;

fn key(i: usize) -> Vec<u8> {
    format!("c/coll{i:05}").into_bytes()
}

fn conditioned(store: &Store, i: usize, rev: Revision) -> bool {
    let mut b = Batch::new();
    b.require_watched_revision(key(i), rev).put(format!("d/{i}/{rev}").into_bytes(), b"x".to_vec());
    store.commit(b).unwrap().revision().is_some()
}

fn live(store: &Store, i: usize) -> Revision {
    store.get_versioned(&key(i)).unwrap().map_or(0, |(r, _)| r)
}

#[test]
fn watched_conditions_past_the_bound_decide_as_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), common::config(Durability::Balanced)).unwrap();
    let mut first = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        first.push(store.put(key(i), b"v1").unwrap());
    }
    // Watch every key (the first 4096 in memory, the rest read).
    for (i, &rev) in first.iter().enumerate() {
        assert!(conditioned(&store, i, rev), "key {i}: its live revision");
    }
    let metrics = store.metrics();
    assert!(metrics.watched_conditions == 0, "first conditions are reads: {}", metrics.watched_conditions);
    // Change, delete and re-create keys on both sides of the bound.
    let sample = [0, 1, 2047, 4095, 4096, 4097, 4200, KEYS - 1];
    for (n, &i) in sample.iter().enumerate() {
        match n % 3 {
            0 => drop(store.put(key(i), b"v2").unwrap()),
            1 => drop(store.delete(key(i)).unwrap()),
            _ => {
                store.delete(key(i)).unwrap();
                store.put(key(i), b"v3").unwrap();
            }
        }
    }
    for &i in &sample {
        assert!(!conditioned(&store, i, first[i]), "key {i}: the stale revision is refused");
        let now = live(&store, i);
        assert!(conditioned(&store, i, now), "key {i}: the live revision ({now}) is taken");
        if now != 0 {
            assert!(!conditioned(&store, i, 0), "key {i}: absent is refused while it exists");
        }
    }
    for i in (0..KEYS).filter(|i| !sample.contains(i)).step_by(97) {
        assert!(conditioned(&store, i, first[i]), "key {i}: unchanged, still taken");
    }
    assert!(store.metrics().watched_conditions > 0, "decided from memory for the watched ones");
    // One group: threads racing a writer of a key past the bound.
    let i = 4300;
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for _ in 0..200 {
                store.put(key(i), b"again").unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let seen = live(&store, i);
                    let mut b = Batch::new();
                    b.require_watched_revision(key(i), seen).put(b"probe".to_vec(), b"x".to_vec());
                    if let Some(rev) = store.commit(b).unwrap().revision() {
                        // Committed: the key existed at that commit (unless
                        // `seen` was 0). Reading at a past revision with no
                        // snapshot pinned may find its history compacted
                        // by the racing writer's commits: nothing to check.
                        match store.get_at(&key(i), rev) {
                            Ok(at) => assert!(at.is_some() || seen == 0),
                            Err(StorageError::Compacted { .. }) => {}
                            Err(e) => panic!("reading at {rev}: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    writer.join().unwrap();
    readers.into_iter().for_each(|h| h.join().unwrap());
    store.close().unwrap();
    let store = Store::open(dir.path(), common::config(Durability::Balanced)).unwrap();
    for &i in &sample {
        assert!(!conditioned(&store, i, first[i]), "after a reopen, key {i}: stale refused");
        assert!(conditioned(&store, i, live(&store, i)), "after a reopen, key {i}: live taken");
    }
    store.close().unwrap();
}
