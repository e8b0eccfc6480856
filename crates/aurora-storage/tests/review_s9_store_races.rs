//! Hostile review (session 9) at the `Store` level of the applier's fill
//! order, the sled-tree cap re-checked under the create lock, and
//! watched keys dropped on delete:
//! - readers (snapshots, scans, gets) racing the applier moving frozen
//!   memtables into the cold store in fill order see every batch whole;
//! - 300 collection prefixes written and deleted from two threads while the
//!   applier runs: the store equals the model after reopen, and sled holds
//!   at most `MAX_TREES` trees;
//! - a definition key watched by conditions, dropped and re-created while
//!   writers commit against it: a commit is accepted only while the
//!   definition it names is the live one.
//!
//! Sized by `AURORA_S9_RACE_ROUNDS` (default 1; rounds multiply the work).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_storage::{Batch, CommitOutcome, Revision, Store, StoreConfig};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `cold::sled_store::MAX_TREES` (not exported).
const MAX_TREES: usize = 256;

fn rounds() -> usize {
    std::env::var("AURORA_S9_RACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// Small memtables and frequent checkpoints: the applier runs all the time.
fn busy() -> StoreConfig {
    StoreConfig {
        memtable_flush_bytes: 16 << 10,
        checkpoint_interval: Duration::from_millis(20),
        sync_interval: Duration::from_millis(5),
        ..StoreConfig::default()
    }
}

fn open(dir: &std::path::Path) -> Store {
    let started = std::time::Instant::now();
    loop {
        match Store::open(dir, busy()) {
            Ok(s) => return s,
            Err(e) if started.elapsed() < Duration::from_secs(5) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Each batch writes one document, its index entry and a default-tree
/// counter, all carrying the batch's number `n`; readers check that within
/// one snapshot the three agree (a batch is visible whole or not at all)
/// while the applier moves memtables into the cold store.
#[test]
fn readers_racing_the_applier_see_every_batch_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let n_batches = 6_000 * rounds() as u64;
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for n in 1..=n_batches {
                // 40 documents, rewritten over and over (so applied runs
                // repeat keys across memtables and hold 1..40 keys).
                let id = n % 40;
                let mut b = Batch::new();
                b.put(format!("dusers\0{id:04}").into_bytes(), n.to_be_bytes().to_vec());
                b.put(format!("xusers\0age\0{id:04}").into_bytes(), n.to_be_bytes().to_vec());
                b.put(b"meta/last".to_vec(), n.to_be_bytes().to_vec());
                assert!(matches!(store.commit(b).unwrap(), CommitOutcome::Committed(_)));
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, done) = (Arc::clone(&store), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut checked = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let snap = store.snapshot().unwrap();
                    let last = snap.get(b"meta/last").unwrap().map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
                    let docs: Vec<(Vec<u8>, Vec<u8>)> = snap.scan_prefix(b"dusers\0").unwrap();
                    let index: Vec<(Vec<u8>, Vec<u8>)> = snap.scan_prefix(b"xusers\0age\0").unwrap();
                    assert_eq!(docs.len(), index.len(), "documents and index entries of one snapshot");
                    let mut newest = 0;
                    for ((dk, dv), (ik, iv)) in docs.iter().zip(&index) {
                        assert_eq!(dk[7..], ik[11..], "same ids");
                        assert_eq!(dv, iv, "a document and its index entry from different batches");
                        newest = newest.max(u64::from_be_bytes(dv.clone().try_into().unwrap()));
                    }
                    assert_eq!(newest, last, "the newest document is the last batch's");
                    // Every document is at its latest version as of `last`.
                    for (dk, dv) in &docs {
                        let id: u64 = std::str::from_utf8(&dk[7..]).unwrap().parse().unwrap();
                        let n = u64::from_be_bytes(dv.clone().try_into().unwrap());
                        assert!(n % 40 == id && n <= last && last - n < 40, "id {id}: {n} at {last}");
                    }
                    checked += 1;
                }
                checked
            })
        })
        .collect();
    writer.join().unwrap();
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    store.close().unwrap();
}

/// Two writers over 300 collection prefixes (more than `MAX_TREES`),
/// putting and deleting; the store equals the model after a reopen and
/// sled holds at most `MAX_TREES` trees besides its default one.
#[test]
fn three_hundred_prefixes_from_two_writers_stay_within_the_cap_and_match_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
                let mut rng = fastrand::Rng::with_seed(t);
                for i in 0..3_000 * rounds() as u64 {
                    let c = rng.u64(..300);
                    // Each writer its own ids: the models do not overlap.
                    let key = format!("dc{c:03}\0{t}-{:02}", rng.u64(..20)).into_bytes();
                    if rng.u8(..4) == 0 {
                        store.delete(key.clone()).unwrap();
                        model.remove(&key);
                    } else {
                        let v = i.to_be_bytes().to_vec();
                        store.put(key.clone(), v.clone()).unwrap();
                        model.insert(key, v);
                    }
                }
                model
            })
        })
        .collect();
    let mut model = BTreeMap::new();
    for w in writers {
        model.extend(w.join().unwrap());
    }
    let compare = |store: &Store, what: &str| {
        let got: BTreeMap<Vec<u8>, Vec<u8>> = store.scan_prefix(b"dc").unwrap().map(Result::unwrap).collect();
        assert!(got == model, "{what}: {} keys, model {}", got.len(), model.len());
        for (k, v) in model.iter().step_by(11) {
            assert_eq!(store.get(k).unwrap().as_ref(), Some(v), "{what}");
        }
    };
    compare(&store, "open");
    let store = Arc::into_inner(store).unwrap();
    store.close().unwrap();
    drop(store);
    let store = open(dir.path());
    compare(&store, "reopened");
    store.close().unwrap();
    drop(store);
    let db = aurora_testkit::raw_sled::open(&dir.path().join("cold"));
    let trees = db.tree_names().into_iter().filter(|n| n.as_ref() != b"__sled__default").count();
    assert!(trees <= MAX_TREES, "{trees} sled trees, cap {MAX_TREES}");
}

/// A definition key `c/users` is created, dropped and re-created by one
/// thread while two writers commit documents conditioned (watched) on the
/// definition revision they read. A commit at revision `c` conditioned on
/// definition revision `r` is correct only if the definition's live
/// revision just before `c` was `r`: checked against the DDL history.
#[test]
fn commits_against_a_dropped_definition_never_slip_through() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let defs: Vec<Vec<u8>> = (0..4).map(|i| format!("c/coll{i}").into_bytes()).collect();
    // (definition index, revision, live after it)
    let history: Arc<Mutex<Vec<(usize, Revision, bool)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let ddl = {
        let (store, defs, history) = (Arc::clone(&store), defs.clone(), Arc::clone(&history));
        std::thread::spawn(move || {
            let mut live = vec![false; defs.len()];
            let mut rng = fastrand::Rng::with_seed(3);
            for _ in 0..1_500 * rounds() {
                let i = rng.usize(..defs.len());
                // The history records under its lock, so that it is in
                // revision order.
                let mut h = history.lock().unwrap();
                let r = if live[i] {
                    store.delete(defs[i].clone()).unwrap()
                } else {
                    store.put(defs[i].clone(), b"def".to_vec()).unwrap()
                };
                live[i] = !live[i];
                h.push((i, r, live[i]));
                drop(h);
                if rng.u8(..8) == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        })
    };
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (store, defs, done) = (Arc::clone(&store), defs.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut accepted = Vec::new();
                let mut rng = fastrand::Rng::with_seed(10 + t);
                let mut n = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let i = rng.usize(..defs.len());
                    let Some((r, _)) = store.get_versioned(&defs[i]).unwrap() else { continue };
                    if rng.bool() {
                        // A little delay between planning and committing.
                        std::thread::yield_now();
                    }
                    n += 1;
                    let mut b = Batch::new();
                    b.require_watched_revision(defs[i].clone(), r);
                    b.put(format!("dcoll{i}\0{t}-{n}").into_bytes(), b"doc".to_vec());
                    if let CommitOutcome::Committed(c) = store.commit(b).unwrap() {
                        accepted.push((i, r, c));
                    }
                }
                accepted
            })
        })
        .collect();
    ddl.join().unwrap();
    done.store(true, Ordering::Relaxed);
    let accepted: Vec<(usize, Revision, Revision)> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let history = history.lock().unwrap();
    assert!(accepted.len() > 10, "too few commits accepted to say anything: {}", accepted.len());
    for (i, r, c) in accepted {
        // The definition's last DDL event before `c`.
        let last = history.iter().rev().find(|(d, rev, _)| *d == i && *rev < c);
        assert_eq!(
            last.map(|(_, rev, live)| (*rev, *live)),
            Some((r, true)),
            "a document committed at {c} against definition {i} at revision {r}, but the definition's \
             live state just before {c} was {last:?}"
        );
    }
    drop(history);
    Arc::into_inner(store).unwrap().close().unwrap();
}
