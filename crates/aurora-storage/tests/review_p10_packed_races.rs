//! Review (session 10) of the packed index trees under concurrency, beyond
//! `packed_index_races` (whose stable keys never change): keys that are
//! *rewritten* while lazy readers walk them, a first chunk that is made
//! and removed again and again (keys below every chunk, then purged), a
//! purger racing writes that bring purged keys back.
//!
//! - every scan (forwards and backwards, advanced slowly) meets each
//!   rewritten key exactly once, in order, with a version that was written
//!   (its value names its revision) and no older than the one whose
//!   `apply` had returned when the scan began;
//! - every point read likewise, and a reader never sees a key go back to an
//!   older version;
//! - at the end the store holds exactly what the writer's model holds (no
//!   write lost to a racing purge).
//!
//! Sized by `AURORA_REVIEW_RACE_ROUNDS` (writer rounds, default 200).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_storage::cold::SledStore;
use aurora_storage::{ColdStore, Versioned};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

fn rounds() -> u32 {
    std::env::var("AURORA_REVIEW_RACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

const PREFIX: &[u8] = b"xusers\0age\0";

fn key(n: u32) -> Vec<u8> {
    [PREFIX, format!("{n:06}").as_bytes()].concat()
}

fn number(k: &[u8]) -> u32 {
    std::str::from_utf8(&k[PREFIX.len()..]).unwrap().parse().unwrap()
}

/// Rewritten keys: multiples of 10 in 1 000..5 000.
fn rewritten(n: u32) -> bool {
    (1000..5000).contains(&n) && n.is_multiple_of(10)
}

fn version(revision: u64, live: bool) -> Versioned {
    Versioned { revision, value: live.then(|| format!("r{revision}").into_bytes()) }
}

/// The shared state: the last revision whose apply returned, per
/// rewritten key, and the highest revision an apply was started with.
struct Published {
    done: Mutex<BTreeMap<u32, u64>>,
    started: AtomicU64,
}

fn check_version(n: u32, v: &Versioned, floor: u64, started: u64, what: &str) {
    assert!(v.value.is_some(), "{what}: rewritten key {n} is never deleted: {v:?}");
    assert_eq!(
        v.value.as_deref(),
        Some(format!("r{}", v.revision).as_bytes()),
        "{what}: key {n} value of its revision"
    );
    assert!(
        v.revision >= floor,
        "{what}: key {n} at revision {} older than {floor}, applied before the read",
        v.revision
    );
    assert!(v.revision <= started, "{what}: key {n} at revision {} never written (latest {started})", v.revision);
}

#[test]
fn rewritten_keys_read_at_a_version_no_older_than_applied_while_first_chunks_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path(), 1 << 20).unwrap();
    let published = Published { done: Mutex::new(BTreeMap::new()), started: AtomicU64::new(1) };
    let stable: Vec<u32> = (1000..5000).filter(|&n| rewritten(n)).collect();
    let writes: Vec<(Vec<u8>, Versioned)> = stable.iter().map(|&n| (key(n), version(1, true))).collect();
    s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
    published.done.lock().extend(stable.iter().map(|&n| (n, 1)));
    let model: Mutex<BTreeMap<u32, Versioned>> = Mutex::new(stable.iter().map(|&n| (n, version(1, true))).collect());
    let stop = AtomicBool::new(false);
    let horizon = AtomicU64::new(0);
    let (scans_done, reads_done) = (AtomicU32::new(0), AtomicU32::new(0));
    std::thread::scope(|scope| {
        let (s, stop, stable, published, model, horizon) = (&s, &stop, &stable, &published, &model, &horizon);
        let (scans_done, reads_done) = (&scans_done, &reads_done);
        scope.spawn(move || {
            let mut rng = fastrand::Rng::with_seed(10);
            let mut revision = 1u64;
            let mut round = 0;
            let apply = |batch: Vec<(u32, bool)>, revision: u64| {
                let mut batch = batch;
                batch.sort_by_key(|(n, _)| *n);
                batch.dedup_by_key(|(n, _)| *n);
                let writes: Vec<(Vec<u8>, Versioned)> =
                    batch.iter().map(|&(n, live)| (key(n), version(revision, live))).collect();
                published.started.store(revision, Ordering::SeqCst);
                s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
                let mut done = published.done.lock();
                let mut m = model.lock();
                for &(n, live) in &batch {
                    if rewritten(n) {
                        done.insert(n, revision);
                    }
                    m.insert(n, version(revision, live));
                }
                horizon.store(revision, Ordering::SeqCst);
            };
            while round < rounds() || scans_done.load(Ordering::SeqCst) < 12 || reads_done.load(Ordering::SeqCst) < 300
            {
                round += 1;
                // Below every chunk: a new first chunk (purged again later).
                revision += 1;
                let low = rng.u32(0..900);
                apply((0..rng.u32(1..80)).map(|i| (low.saturating_sub(i * 3), true)).collect(), revision);
                // Rewrites of a stretch of the rewritten keys, with new keys
                // between them (splits in the middle).
                revision += 1;
                let from = 1000 + 10 * rng.u32(0..380);
                let mut batch: Vec<(u32, bool)> = (0..rng.u32(5..60)).map(|i| (from + 10 * i, true)).collect();
                batch.retain(|(n, _)| rewritten(*n));
                batch.extend(
                    (0..rng.u32(0..120)).map(|i| (from + 1 + (i * 7) % 400, true)).filter(|(n, _)| !rewritten(*n)),
                );
                apply(batch, revision);
                // Past the end.
                revision += 1;
                apply((0..64).map(|i| (9000 + (round % 50) * 64 + i, true)).collect(), revision);
                // Delete the churned keys (every key not rewritten), the
                // purger takes their tombstones; some come straight back.
                revision += 1;
                let churned: Vec<u32> = model
                    .lock()
                    .iter()
                    .filter(|(n, v)| !rewritten(**n) && v.value.is_some())
                    .map(|(n, _)| *n)
                    .collect();
                let doomed: Vec<(u32, bool)> =
                    churned.iter().filter(|_| rng.u32(0..3) > 0).map(|&n| (n, false)).collect();
                let back: Vec<(u32, bool)> =
                    doomed.iter().filter(|_| rng.u32(0..6) == 0).map(|&(n, _)| (n, true)).collect();
                apply(doomed, revision);
                revision += 1;
                apply(back, revision);
            }
            stop.store(true, Ordering::SeqCst);
        });
        scope.spawn(move || {
            let mut rng = fastrand::Rng::with_seed(11);
            while !stop.load(Ordering::SeqCst) {
                let h = horizon.load(Ordering::SeqCst);
                if rng.bool() {
                    s.purge_tombstones(h).unwrap();
                } else {
                    let named: Vec<Vec<u8>> = (0..300).map(|_| key(rng.u32(0..12_300))).collect();
                    s.purge_tombstones_of(&mut named.iter().map(Vec::as_slice), h).unwrap();
                }
            }
        });
        for (reader, reverse) in [false, true, false, true].into_iter().enumerate() {
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let floor = published.done.lock().clone();
                    let iter = if reverse {
                        s.scan_rev(Bound::Included(PREFIX), Bound::Unbounded)
                    } else {
                        s.scan(Bound::Unbounded, Bound::Unbounded)
                    };
                    let mut seen = Vec::with_capacity(stable.len());
                    let mut last: Option<Vec<u8>> = None;
                    for (i, item) in iter.enumerate() {
                        let (k, v) = item.unwrap();
                        if let Some(l) = &last {
                            assert!(
                                if reverse { k < *l } else { k > *l },
                                "out of order or repeated: {k:?} after {l:?}"
                            );
                        }
                        let n = number(&k);
                        if rewritten(n) {
                            let started = published.started.load(Ordering::SeqCst);
                            check_version(n, &v, floor[&n], started, &format!("scan {reader} (reverse {reverse})"));
                            seen.push(n);
                        }
                        last = Some(k);
                        if i % 16 == 0 {
                            std::thread::sleep(std::time::Duration::from_micros(50));
                        }
                    }
                    if reverse {
                        seen.reverse();
                    }
                    assert!(
                        &seen == stable,
                        "scan {reader} (reverse {reverse}) met {} of {} rewritten keys",
                        seen.len(),
                        stable.len()
                    );
                    scans_done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        scope.spawn(move || {
            let mut rng = fastrand::Rng::with_seed(12);
            let mut last_seen: BTreeMap<u32, u64> = BTreeMap::new();
            while !stop.load(Ordering::SeqCst) {
                let n = stable[rng.usize(..stable.len())];
                let floor = published.done.lock()[&n];
                let v = s.get(&key(n)).unwrap().expect("a rewritten key is always there");
                let started = published.started.load(Ordering::SeqCst);
                check_version(n, &v, floor, started, "get");
                let prev = last_seen.insert(n, v.revision).unwrap_or(0);
                assert!(v.revision >= prev, "get of {n} went back from revision {prev} to {}", v.revision);
                reads_done.fetch_add(1, Ordering::SeqCst);
            }
        });
    });
    // Nothing lost: the store holds the model, up to the purged tombstones.
    let model = model.into_inner();
    let got: Vec<(u32, Versioned)> =
        s.scan(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap()).map(|(k, v)| (number(&k), v)).collect();
    for (n, v) in &got {
        assert_eq!(model.get(n), Some(v), "key {n} in the store");
    }
    let stored: std::collections::BTreeSet<u32> = got.iter().map(|(n, _)| *n).collect();
    for (n, v) in &model {
        assert!(v.value.is_none() || stored.contains(n), "live key {n} ({v:?}) lost");
    }
    eprintln!(
        "{} scans, {} point reads raced the writer",
        scans_done.load(Ordering::SeqCst),
        reads_done.load(Ordering::SeqCst)
    );
}
