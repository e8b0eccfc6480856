//! Hostile review (session 9): a snapshot's lazy iterators (`iter`,
//! `iter_rev`) walked slowly while a writer appends new ids (ascending, as
//! UUID v7 documents and their index entries: the runs the applier now
//! inserts in fill order), rewrites and deletes older ones, with small
//! memtables and frequent checkpoints, so that many memtables move into
//! sled while the iterators are half way. Each slow walk must equal the
//! eager read of the same snapshot taken when it was made. One prefix is
//! kept resident (the range cache's mirror of applied runs), one is not.
//!
//! Sized by `AURORA_S9_RACE_ROUNDS` (default 1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_storage::{Batch, Store, StoreConfig};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

fn rounds() -> usize {
    std::env::var("AURORA_S9_RACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

#[test]
fn slow_snapshot_walks_across_applies_equal_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        memtable_flush_bytes: 8 << 10,
        checkpoint_interval: Duration::from_millis(10),
        tombstone_purge_threshold: 50,
        ..StoreConfig::default()
    };
    let store = Arc::new(Store::open(dir.path(), cfg).unwrap());
    store.keep_resident(b"xusers\0");
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(5);
            let mut next = 0u64;
            for _ in 0..1_500 * rounds() {
                let mut b = Batch::new();
                for _ in 0..rng.usize(1..40) {
                    next += 1;
                    b.put(format!("dusers\0{next:010}").into_bytes(), next.to_be_bytes().to_vec());
                    b.put(format!("xusers\0age\0{next:010}").into_bytes(), Vec::new());
                }
                for _ in 0..rng.usize(0..4) {
                    let old = rng.u64(1..=next);
                    if rng.bool() {
                        b.delete(format!("dusers\0{old:010}").into_bytes());
                        b.delete(format!("xusers\0age\0{old:010}").into_bytes());
                    } else {
                        b.put(format!("dusers\0{old:010}").into_bytes(), b"rewritten".to_vec());
                    }
                }
                assert!(matches!(store.commit(b).unwrap(), aurora_storage::CommitOutcome::Committed(_)));
                std::thread::sleep(Duration::from_micros(300));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let mut walk = 0;
    while walk == 0 || !writer.is_finished() {
        walk += 1;
        let snap = store.snapshot().unwrap();
        for (lo, hi) in [(&b"dusers\0"[..], &b"dusers\x01"[..]), (b"xusers\0", b"xusers\x01"), (b"", b"\xff")] {
            let eager = snap.range(Bound::Included(lo), Bound::Excluded(hi)).unwrap();
            let mut slow = Vec::new();
            for (i, item) in snap.iter(Bound::Included(lo), Bound::Excluded(hi)).unwrap().enumerate() {
                let (k, _, v) = item.unwrap();
                slow.push((k, v));
                if i.is_multiple_of(500) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            assert!(
                slow == eager,
                "walk {walk} {lo:?}: a slow forward walk ({}) differs from the snapshot ({})",
                slow.len(),
                eager.len()
            );
            let mut back = Vec::new();
            for (i, item) in snap.iter_rev(Bound::Included(lo), Bound::Excluded(hi)).unwrap().enumerate() {
                let (k, _, v) = item.unwrap();
                back.push((k, v));
                if i.is_multiple_of(500) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            back.reverse();
            assert!(back == eager, "walk {walk} {lo:?}: a slow reverse walk differs from the snapshot");
        }
    }
    writer.join().unwrap();
    Arc::into_inner(store).unwrap().close().unwrap();
}
