//! Review (session 10) of the packed index trees through the `Store`: the
//! applier moves small memtables of index entries into packed chunks all
//! the time, checkpoints every 20 ms purge the tombstones of deleted
//! entries by name (a purge threshold of 64 deletes), and a writer churns
//! entries around a stable set (inserted, deleted, inserted again) while
//! readers walk the index lazily and read points. Every walk meets every
//! stable entry exactly once, in order, with its value; every point read
//! finds it; at the end, and after a reopen, the store holds exactly the
//! writer's model (no entry lost to a purge racing its re-insert).
//!
//! Sized by `AURORA_REVIEW_STORE_RACE_ROUNDS` (writer rounds, default 300).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_storage::{Batch, Store, StoreConfig};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

fn rounds() -> u32 {
    std::env::var("AURORA_REVIEW_STORE_RACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

const PREFIX: &[u8] = b"xusers\0age\0";

fn key(n: u32) -> Vec<u8> {
    [PREFIX, format!("{n:06}").as_bytes()].concat()
}

fn config() -> StoreConfig {
    StoreConfig {
        memtable_flush_bytes: 8 << 10,
        checkpoint_interval: Duration::from_millis(20),
        sync_interval: Duration::from_millis(5),
        tombstone_purge_threshold: 64,
        ..StoreConfig::default()
    }
}

fn open(dir: &std::path::Path) -> Store {
    let started = std::time::Instant::now();
    loop {
        match Store::open(dir, config()) {
            Ok(s) => return s,
            Err(e) if started.elapsed() < Duration::from_secs(5) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Stable entries: multiples of 5 below 20 000.
fn stable(n: u32) -> bool {
    n.is_multiple_of(5) && n < 20_000
}

#[test]
fn lazy_index_walks_and_named_purges_racing_the_applier_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let stable_keys: Vec<u32> = (0..20_000).filter(|&n| stable(n)).collect();
    let mut batch = Batch::new();
    for &n in &stable_keys {
        batch.put(key(n), b"s".to_vec());
    }
    let _ = store.commit(batch).unwrap();
    let stop = AtomicBool::new(false);
    let walks = AtomicU32::new(0);
    let model = std::thread::scope(|scope| {
        let (store, stop, walks, stable_keys) = (&store, &stop, &walks, &stable_keys);
        let writer = scope.spawn(move || {
            let mut model: BTreeMap<u32, Option<Vec<u8>>> = BTreeMap::new();
            let mut rng = fastrand::Rng::with_seed(20);
            let mut round = 0;
            while round < rounds() || walks.load(Ordering::SeqCst) < 20 {
                round += 1;
                let mut batch = Batch::new();
                let from = rng.u32(0..20_400);
                for i in 0..rng.u32(1..120) {
                    let n = from + i;
                    if stable(n) {
                        continue;
                    }
                    // Below everything too (keys 0..5 are churned, 0 is stable).
                    let live = model.get(&n).is_none_or(Option::is_none) || rng.u32(0..4) == 0;
                    if live {
                        let v = format!("r{round}").into_bytes();
                        batch.put(key(n), v.clone());
                        model.insert(n, Some(v));
                    } else {
                        batch.delete(key(n));
                        model.insert(n, None);
                    }
                }
                if !batch.is_empty() {
                    let _ = store.commit(batch).unwrap();
                }
            }
            stop.store(true, Ordering::SeqCst);
            model
        });
        for reverse in [false, true] {
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let mut seen = Vec::with_capacity(stable_keys.len());
                    let mut last: Option<Vec<u8>> = None;
                    let items: Box<dyn Iterator<Item = _>> = if reverse {
                        let mut all: Vec<_> = store.scan_prefix(PREFIX).unwrap().collect();
                        all.reverse();
                        Box::new(all.into_iter())
                    } else {
                        Box::new(store.scan_prefix(PREFIX).unwrap())
                    };
                    for (i, item) in items.enumerate() {
                        let (k, v) = item.unwrap();
                        if let Some(l) = &last {
                            assert!(
                                if reverse { k < *l } else { k > *l },
                                "out of order or repeated: {k:?} after {l:?}"
                            );
                        }
                        let n: u32 = std::str::from_utf8(&k[PREFIX.len()..]).unwrap().parse().unwrap();
                        if stable(n) {
                            assert_eq!(v, b"s", "stable entry {n}");
                            seen.push(n);
                        }
                        last = Some(k);
                        if i % 256 == 0 {
                            std::thread::yield_now();
                        }
                    }
                    if reverse {
                        seen.reverse();
                    }
                    assert!(&seen == stable_keys, "a walk met {} of {} stable entries", seen.len(), stable_keys.len());
                    walks.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        scope.spawn(move || {
            let mut rng = fastrand::Rng::with_seed(21);
            while !stop.load(Ordering::SeqCst) {
                let n = stable_keys[rng.usize(..stable_keys.len())];
                assert_eq!(store.get(&key(n)).unwrap().as_deref(), Some(&b"s"[..]), "stable entry {n}");
            }
        });
        writer.join().unwrap()
    });
    let check = |store: &Store, what: &str| {
        let got: BTreeMap<u32, Vec<u8>> = store
            .scan_prefix(PREFIX)
            .unwrap()
            .map(|r| r.unwrap())
            .map(|(k, v)| (std::str::from_utf8(&k[PREFIX.len()..]).unwrap().parse().unwrap(), v))
            .collect();
        let mut want: BTreeMap<u32, Vec<u8>> = model.iter().filter_map(|(n, v)| v.clone().map(|v| (*n, v))).collect();
        want.extend(stable_keys.iter().map(|&n| (n, b"s".to_vec())));
        assert_eq!(got.len(), want.len(), "{what}: entries");
        assert!(got == want, "{what}: the store differs from the model");
    };
    check(&store, "live");
    // One more round of deletes past the purge threshold, then a
    // checkpoint with no reader pinning anything: every tombstone is due.
    let mut batch = Batch::new();
    for n in 0..64 {
        batch.delete(key(30_000 + n));
    }
    let _ = store.commit(batch).unwrap();
    store.checkpoint().unwrap();
    store.close().unwrap();
    drop(store);
    // The purges took every tombstone.
    let deletes = model.values().filter(|v| v.is_none()).count();
    {
        use aurora_storage::ColdStore;
        let cold = loop {
            match aurora_storage::cold::SledStore::open(&dir.path().join("cold"), 1 << 20) {
                Ok(c) => break c,
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        let tombstones = cold
            .scan(std::ops::Bound::Included(PREFIX), std::ops::Bound::Unbounded)
            .map(|r| r.unwrap())
            .filter(|(_, v)| v.value.is_none())
            .count();
        assert!(deletes > 100, "{deletes} deleted entries");
        assert_eq!(tombstones, 0, "tombstones left of {deletes} deleted entries");
    }
    let store = open(dir.path());
    check(&store, "reopened");
    eprintln!("{} walks raced the writer", walks.load(Ordering::SeqCst));
}
