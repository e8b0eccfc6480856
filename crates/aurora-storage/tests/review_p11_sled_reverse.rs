//! Hostile review (p11) of the vendored sled's reverse-iteration fix
//! (vendor/sled/AURORA-PATCH.md): keys whose 0xFF runs are longer than the
//! 64 bytes `possible_predecessor` now appends (so the walk along sibling
//! links is what keeps `next_back` correct), random keys drawn from 0x00,
//! 0x7F, 0x80, 0xFF runs against a model with inserts and removes (splits
//! and merges), every reverse entry point (`rev`, `next_back`, `get_lt`,
//! `last`, mixed `next`/`next_back` on one iterator), reverse scans racing
//! writers that split and merge nodes, a reopened flushed database, and the
//! packed index trees of the cold store, whose chunk lookup is a reverse
//! step, with integer-like keys around zero.
//!
//! Size: `AURORA_PROPTEST_CASES` (default 64) scales rounds and key counts.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use aurora_storage::{ColdStore, Versioned};
use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn scale() -> u64 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64).max(1)
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn keys_of(it: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>) -> Vec<Vec<u8>> {
    it.map(|r| r.unwrap().0.to_vec()).collect()
}

/// A key above `P 7F FF^64` (the seek key for the boundary `P 80`): `P`,
/// 0x7F, `run` 0xFF bytes, then `tail`.
fn ff_key(run: usize, tail: &[u8]) -> Vec<u8> {
    [b"ix".as_slice(), &[0x7F], &vec![0xFF; run], tail].concat()
}

/// Every reverse read of `tree` (and a forward scan) against `model`, from
/// probes at and around each key and at the separators of the shape.
fn check_all(tree: &sled::Tree, model: &Model, probes_extra: &[Vec<u8>], what: &str) {
    let expected_rev: Vec<Vec<u8>> = model.keys().rev().cloned().collect();
    assert_eq!(keys_of(tree.iter().rev()), expected_rev, "{what}: whole reverse scan");
    assert_eq!(keys_of(tree.iter()), model.keys().cloned().collect::<Vec<_>>(), "{what}: whole forward scan");
    assert_eq!(tree.last().unwrap().map(|(k, _)| k.to_vec()), model.keys().next_back().cloned(), "{what}: last");
    let mut probes: Vec<Vec<u8>> = model.keys().cloned().collect();
    probes.extend(model.keys().map(|k| [k.as_slice(), &[0]].concat()));
    probes.extend(model.keys().filter(|k| !k.is_empty()).map(|k| {
        let mut p = k.clone();
        let l = p.len() - 1;
        p[l] = p[l].wrapping_add(1);
        p
    }));
    probes.extend(probes_extra.iter().cloned());
    for (n, p) in probes.iter().enumerate() {
        let below = tree.range::<&[u8], _>(..p.as_slice()).next_back().map(|r| r.unwrap().0.to_vec());
        let want_below =
            model.range::<[u8], _>((Unbounded, Excluded(p.as_slice()))).next_back().map(|(k, _)| k.clone());
        assert_eq!(below, want_below, "{what}: range(..p).next_back() at {p:02x?}");
        assert_eq!(tree.get_lt(p).unwrap().map(|(k, _)| k.to_vec()), want_below, "{what}: get_lt {p:02x?}");
        let at = tree.range::<&[u8], _>(..=p.as_slice()).next_back().map(|r| r.unwrap().0.to_vec());
        let want_at = model.range::<[u8], _>((Unbounded, Included(p.as_slice()))).next_back().map(|(k, _)| k.clone());
        assert_eq!(at, want_at, "{what}: range(..=p).next_back() at {p:02x?}");
        // A bounded reverse scan from a few probes, whole.
        if n % 17 == 0 {
            let lo = &probes[(n * 7) % probes.len()];
            if lo <= p {
                let got = keys_of(tree.range::<&[u8], _>(lo.as_slice()..p.as_slice()).rev());
                let want: Vec<Vec<u8>> = model
                    .range::<[u8], _>((Included(lo.as_slice()), Excluded(p.as_slice())))
                    .rev()
                    .map(|(k, _)| k.clone())
                    .collect();
                assert_eq!(got, want, "{what}: range(lo..p).rev()");
            }
        }
    }
}

/// Mixed `next`/`next_back` on one iterator: the two ends meet exactly.
fn check_mixed(tree: &sled::Tree, model: &Model, rng: &mut fastrand::Rng, what: &str) {
    let mut it = tree.iter();
    let mut want = model.keys().cloned().collect::<std::collections::VecDeque<_>>();
    loop {
        if rng.u64(..2) == 0 {
            let got = it.next().map(|r| r.unwrap().0.to_vec());
            assert_eq!(got, want.pop_front(), "{what}: mixed next");
            if got.is_none() {
                break;
            }
        } else {
            let got = it.next_back().map(|r| r.unwrap().0.to_vec());
            assert_eq!(got, want.pop_back(), "{what}: mixed next_back");
            if got.is_none() {
                break;
            }
        }
    }
}

/// Builds the boundary shape with 0xFF runs of `run` bytes (> 64): first
/// `P 80 …` keys, then many `P 7F FF^run …` keys (so they fill several
/// nodes left of the node that starts at the separator `P 80`).
fn ff_shape(tree: &sled::Tree, model: &mut Model, run: usize, positives: u32, negatives: u32, value: usize) {
    for i in 0..positives {
        let k = [b"ix".as_slice(), &[0x80], &i.to_be_bytes()].concat();
        tree.insert(&k, vec![1u8; value]).unwrap();
        model.insert(k, vec![1u8; value]);
    }
    for i in 0..negatives {
        // Descending (nearest the boundary first, as -1, -2, … would be),
        // all above the 64-byte seek key.
        let k = ff_key(run, &(u32::MAX - i).to_be_bytes());
        let v = vec![(i % 251) as u8; if i % 3 == 0 { value } else { 3 }];
        tree.insert(&k, v.clone()).unwrap();
        model.insert(k, v);
    }
}

#[test]
fn reverse_reads_below_ff_runs_longer_than_64_bytes_match_a_model() {
    let mut boundaries = 0;
    let mut rng = fastrand::Rng::with_seed(99);
    for run in [65usize, 100, 300] {
        for (positives, negatives, value) in
            (4u32..=12).flat_map(|p| [(p, 61u32, 1000usize), (p, 120, 8), (p, 65, 300)])
        {
            let db = sled::Config::new().temporary(true).open().unwrap();
            let tree = db.open_tree("t").unwrap();
            let mut model = Model::new();
            ff_shape(&tree, &mut model, run, positives, negatives, value);
            let dbg = format!("{tree:?}");
            if dbg.contains("lo: [105, 120, 128]") {
                boundaries += 1;
            }
            let what = format!("run {run}, {positives}+{negatives}, values {value}");
            let extra =
                vec![b"ix\x80".to_vec(), ff_key(64, b""), ff_key(65, b""), ff_key(run, b""), b"ix\x7f".to_vec()];
            check_all(&tree, &model, &extra, &what);
            check_mixed(&tree, &model, &mut rng, &what);
            // Remove most of them (merges), check again, then refill.
            let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
            for (i, k) in keys.iter().enumerate() {
                if i % 7 != 0 {
                    tree.remove(k).unwrap();
                    model.remove(k);
                }
            }
            check_all(&tree, &model, &extra, &format!("{what}, after removes"));
            ff_shape(&tree, &mut model, run + 1, positives, negatives, value);
            check_all(&tree, &model, &extra, &format!("{what}, refilled"));
            check_mixed(&tree, &model, &mut rng, &what);
        }
    }
    assert!(boundaries > 0, "no shape produced the node starting at the separator 80");
}

/// Random keys over an alphabet of 0x00, 0x7F, 0x80, 0xFE, 0xFF with long
/// runs, random inserts and removes (splits and merges), every reverse read
/// against a model after each batch.
#[test]
fn random_keys_with_long_ff_runs_under_inserts_and_removes_match_a_model() {
    let mut rng = fastrand::Rng::with_seed(0xDEAD_BEEF);
    for round in 0..(scale() / 8).max(2) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let mut model = Model::new();
        let key = |rng: &mut fastrand::Rng| {
            let mut k = vec![b'k'];
            for _ in 0..(1 + rng.u64(..4)) {
                let byte = [0x00u8, 0x7F, 0x80, 0xFE, 0xFF, 0xFF, 0xFF][rng.u64(..7) as usize];
                let len = match rng.u64(..4) {
                    0 => 1,
                    1 => 1 + rng.u64(..8) as usize,
                    2 => 60 + rng.u64(..10) as usize,
                    _ => 64 + rng.u64(..200) as usize,
                };
                k.extend(std::iter::repeat_n(byte, len));
            }
            k
        };
        for batch in 0..6 {
            for _ in 0..(50 + rng.u64(..150)) {
                let k = key(&mut rng);
                if rng.u64(..3) == 0 && !model.is_empty() {
                    let victim = model.keys().nth(rng.u64(..model.len() as u64) as usize).cloned().unwrap();
                    tree.remove(&victim).unwrap();
                    model.remove(&victim);
                } else {
                    let v = vec![7u8; if rng.u64(..4) == 0 { 2000 } else { 4 }];
                    tree.insert(&k, v.clone()).unwrap();
                    model.insert(k, v);
                }
            }
            if batch == 4 {
                // Mostly empty again: merges.
                let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
                for k in keys.iter().filter(|_| rng.u64(..10) != 0) {
                    tree.remove(k).unwrap();
                    model.remove(k);
                }
            }
            let what = format!("round {round} batch {batch}");
            check_all(&tree, &model, &[vec![b'k', 0x80], vec![b'k', 0x7F], vec![b'k', 0xFF]], &what);
            check_mixed(&tree, &model, &mut rng, &what);
        }
    }
}

/// Reverse scans (whole, bounded, `get_lt`, `last`) racing two writers
/// that insert and remove churn keys in the 0xFF-run region (splits, and
/// merges when most are removed): every scan is strictly decreasing,
/// includes every stable key (present for the whole run) in its range,
/// and finishes (a watchdog turns a hang into a failure).
#[test]
fn reverse_scans_racing_splits_and_merges_stay_ordered_and_complete() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let tree = db.open_tree("t").unwrap();
    let mut stable = Model::new();
    // Stable keys: every 8th slot, in the region and around it.
    let slot = |i: u32, churn: bool| -> Vec<u8> {
        if i.is_multiple_of(3) {
            [b"ix".as_slice(), &[0x80], &i.to_be_bytes(), &[u8::from(churn)]].concat()
        } else {
            ff_key(64 + (i as usize % 90), &[&i.to_be_bytes()[..], &[u8::from(churn)]].concat())
        }
    };
    for i in 0..300u32 {
        let k = slot(i, false);
        tree.insert(&k, vec![0u8; 40]).unwrap();
        stable.insert(k, vec![0u8; 40]);
    }
    let stable = Arc::new(stable);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (tree, stop) = (tree.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t * 31 + 7);
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Fill a stretch with churn keys, then remove them all.
                    let base = rng.u64(..300) as u32;
                    let n = 20 + rng.u64(..200) as u32;
                    for i in base..base + n {
                        tree.insert(slot(i, true), vec![1u8; if i % 5 == 0 { 3000 } else { 10 }]).unwrap();
                    }
                    for i in base..base + n {
                        tree.remove(slot(i, true)).unwrap();
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_millis(300 * scale().min(200));
    let (tx, rx) = std::sync::mpsc::channel();
    let readers: Vec<_> = (0..2u64)
        .map(|t| {
            let (tree, stable, stop, tx) = (tree.clone(), Arc::clone(&stable), Arc::clone(&stop), tx.clone());
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t + 1234);
                let mut scans = 0u64;
                let keys: Vec<Vec<u8>> = stable.keys().cloned().collect();
                while !stop.load(Ordering::Relaxed) {
                    let hi = keys[rng.u64(..keys.len() as u64) as usize].clone();
                    let lo = keys[rng.u64(..keys.len() as u64) as usize].clone();
                    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                    let (got, want): (Vec<Vec<u8>>, Vec<Vec<u8>>) = match rng.u64(..4) {
                        0 => (keys_of(tree.iter().rev()), stable.keys().rev().cloned().collect()),
                        1 => (
                            keys_of(tree.range::<&[u8], _>(lo.as_slice()..hi.as_slice()).rev()),
                            stable
                                .range::<[u8], _>((Included(&lo[..]), Excluded(&hi[..])))
                                .rev()
                                .map(|(k, _)| k.clone())
                                .collect(),
                        ),
                        2 => {
                            let got = tree.get_lt(&hi).unwrap().map(|(k, _)| k.to_vec());
                            let want = stable
                                .range::<[u8], _>((Unbounded, Excluded(hi.as_slice())))
                                .next_back()
                                .map(|(k, _)| k.clone());
                            // A churn key may be above the stable one.
                            match (&got, &want) {
                                (Some(g), Some(w)) => {
                                    assert!(g >= w && g < &hi, "get_lt {hi:02x?}: {g:02x?} not in [{w:02x?}, hi)")
                                }
                                (None, Some(w)) => panic!("get_lt {hi:02x?} found nothing, {w:02x?} is below"),
                                (_, None) => {}
                            }
                            (vec![], vec![])
                        }
                        _ => {
                            let got = tree.last().unwrap().map(|(k, _)| k.to_vec());
                            assert!(got.as_ref() >= stable.keys().next_back(), "last below the greatest stable key");
                            (vec![], vec![])
                        }
                    };
                    for w in got.windows(2) {
                        assert!(w[0] > w[1], "reverse scan not strictly decreasing: {:02x?} then {:02x?}", w[0], w[1]);
                    }
                    let got_set: std::collections::BTreeSet<&Vec<u8>> = got.iter().collect();
                    for w in &want {
                        assert!(got_set.contains(w), "a stable key is missing from a reverse scan: {w:02x?}");
                    }
                    scans += 1;
                }
                tx.send(scans).unwrap();
            })
        })
        .collect();
    drop(tx);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        if readers.iter().any(|r| r.is_finished()) {
            break; // a reader panicked: report it below
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for _ in 0..2 {
        total += rx.recv_timeout(Duration::from_secs(30)).expect("a reverse scan hung (or its thread panicked)");
    }
    for r in readers {
        r.join().unwrap();
    }
    let rounds: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(total > 0 && rounds > 0, "no race happened: {total} scans, {rounds} writer rounds");
    // Quiet again: the tree equals the stable keys.
    let model: Model = (*stable).clone();
    check_all(&tree, &model, &[], "after the race");
}

/// A flushed database with the shape, reopened: the same reverse reads.
#[test]
fn a_reopened_flushed_database_reads_backwards_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    {
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("t").unwrap();
        ff_shape(&tree, &mut model, 100, 10, 150, 500);
        db.flush().unwrap();
    }
    let db = sled::open(dir.path()).unwrap();
    let tree = db.open_tree("t").unwrap();
    check_all(&tree, &model, &[b"ix\x80".to_vec(), ff_key(64, b"")], "reopened");
    check_mixed(&tree, &model, &mut fastrand::Rng::with_seed(4), "reopened");
}

/// FINDING (upstream sled, not touched by the patch): `next_back` with no
/// upper bound seeks `[0xFF; 1 MiB]` (`high_key`, vendor/sled/src/iter.rs
/// `MAX_KEY`); when a node boundary lies above that key (keys of more than
/// 1 MiB of 0xFF bytes filling more than one node), the node found does not
/// contain the unbounded end, the "node too low" branch seeks the same key
/// again, and it loops until the 1,000,000-round limit panics (after
/// minutes of comparing megabyte keys). `Tree::last` and `iter().rev()`
/// never return. A watchdog turns it into a failure after 12 s.
#[test]
fn reverse_reads_above_a_megabyte_of_ff_bytes_finish() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let tree = db.open_tree("t").unwrap();
    let big = vec![0xFFu8; 1 << 20];
    let mut keys = Vec::new();
    for i in 0..40u8 {
        let k = [big.as_slice(), &[i]].concat();
        tree.insert(&k, vec![i]).unwrap();
        keys.push(k);
    }
    // Control: the same keys in one node (no boundary above the seek key)
    // answer at once.
    let small = db.open_tree("small").unwrap();
    for k in keys.iter().take(5) {
        small.insert(k, vec![0]).unwrap();
    }
    let started = Instant::now();
    assert_eq!(small.last().unwrap().map(|(k, _)| k.len()), Some((1 << 20) + 1));
    assert_eq!(small.iter().rev().count(), 5);
    assert!(started.elapsed() < Duration::from_secs(5), "the control is slow too: {:?}", started.elapsed());
    let (tx, rx) = std::sync::mpsc::channel();
    let t = tree.clone();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (t.last().unwrap().map(|(k, _)| k.len()), t.iter().rev().count())
        }));
        let _ = tx.send(r.map_err(|_| ()));
    });
    match rx.recv_timeout(Duration::from_secs(12)) {
        Ok(Ok((last, n))) => {
            assert_eq!(last, Some((1 << 20) + 1));
            assert_eq!(n, keys.len());
        }
        Ok(Err(())) => panic!("reverse read panicked (sled's traversal loop limit)"),
        Err(_) => panic!("Tree::last did not return within 12 s (next_back loops on the 'node too low' branch)"),
    }
}

// ---- the cold store's packed index trees ----------------------------------

/// An index entry key: the packed tree's prefix (collection `a`, field
/// `f`), the value as sortable big-endian bytes, an id.
fn index_key(value: i64, id: u32) -> Vec<u8> {
    [b"xa\0f\0".as_slice(), &((value as u64) ^ (1 << 63)).to_be_bytes(), &id.to_be_bytes()].concat()
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Included(k) => Included(k),
        Excluded(k) => Excluded(k),
        Unbounded => Unbounded,
    }
}

/// Integer index entries around zero (and the extremes) written to the
/// cold store's packed trees in orders that put a chunk boundary between
/// -1 and 0, rewritten and deleted (moving values across zero), with
/// point reads and reverse and forward scans across zero against a model,
/// and a reopen.
#[test]
fn packed_index_trees_around_zero_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = common::cold::open_cold(dir.path());
    let mut model: BTreeMap<Vec<u8>, Versioned> = BTreeMap::new();
    let mut rng = fastrand::Rng::with_seed(17);
    let special = [i64::MIN, i64::MIN + 1, -65536, -256, -2, -1, 0, 1, 255, 0xFFFF_FFFF, i64::MAX - 1, i64::MAX];
    let n = 200 + scale() * 20;
    let value_of = |i: u64, rng: &mut fastrand::Rng| -> i64 {
        match rng.u64(..4) {
            0 => special[rng.u64(..special.len() as u64) as usize],
            1 => -(rng.u64(..50) as i64) - 1,
            2 => rng.u64(..50) as i64,
            _ => (rng.u64(..) as i64) >> (i % 60),
        }
    };
    let mut docs: Vec<Option<i64>> = vec![None; n as usize];
    for step in 0..8u64 {
        let revision = step + 1;
        let mut writes: Vec<(Vec<u8>, Versioned)> = Vec::new();
        for id in 0..n as u32 {
            let roll = rng.u64(..4);
            if step > 0 && roll != 0 {
                continue;
            }
            // Moving a document's value: tombstone the old entry, add the new.
            if let Some(old) = docs[id as usize] {
                writes.push((index_key(old, id), Versioned { revision, value: None }));
            }
            let v = if step == 3 {
                -value_of(id as u64, &mut rng).saturating_abs() - 1
            } else {
                value_of(id as u64, &mut rng)
            };
            docs[id as usize] = Some(v);
            writes.push((index_key(v, id), Versioned { revision, value: Some(vec![b'v'; (id % 9) as usize]) }));
        }
        if step % 2 == 0 {
            writes.sort_by(|a, b| a.0.cmp(&b.0));
        } else {
            // Descending (negatives near zero first, as a WAL replay may).
            writes.sort_by(|a, b| b.0.cmp(&a.0));
        }
        writes.dedup_by(|a, b| a.0 == b.0);
        store.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        model.extend(writes);
        if step == 5 {
            store.flush().unwrap();
            drop(store);
            store = common::cold::open_cold(dir.path());
        }
        // Point reads.
        for (k, v) in model.iter().step_by(3) {
            assert_eq!(store.get(k).unwrap().as_ref(), Some(v), "step {step}: get {k:02x?}");
        }
        for v in special {
            let k = index_key(v, u32::MAX);
            assert_eq!(store.get(&k).unwrap(), None);
        }
        // Scans across zero and the extremes, both ways.
        let bounds: Vec<Bound<Vec<u8>>> = vec![
            Unbounded,
            Included(index_key(-1, 0)),
            Excluded(index_key(-1, u32::MAX)),
            Included(index_key(0, 0)),
            Excluded(index_key(0, 0)),
            Included(b"xa\0f\0\x80".to_vec()),
            Excluded(b"xa\0f\0\x7f".to_vec()),
            Included(index_key(-5, 0)),
            Excluded(index_key(5, 0)),
            Included(index_key(i64::MIN, 0)),
            Included(index_key(i64::MAX, u32::MAX)),
            Included(index_key(0xFFFF_FFFF, 3)),
        ];
        for lo in &bounds {
            for hi in &bounds {
                let ok = match (lo, hi) {
                    (Included(a) | Excluded(a), Included(b) | Excluded(b)) => a < b,
                    _ => true,
                };
                if !ok {
                    continue;
                }
                let want: Vec<(Vec<u8>, Versioned)> =
                    model.range((lo.clone(), hi.clone())).map(|(k, v)| (k.clone(), v.clone())).collect();
                let rev: Vec<(Vec<u8>, Versioned)> =
                    store.scan_rev(as_ref(lo), as_ref(hi)).map(Result::unwrap).collect();
                let mut want_rev = want.clone();
                want_rev.reverse();
                assert_eq!(rev, want_rev, "step {step}: scan_rev {lo:02x?}..{hi:02x?}");
                let fwd: Vec<(Vec<u8>, Versioned)> = store.scan(as_ref(lo), as_ref(hi)).map(Result::unwrap).collect();
                assert_eq!(fwd, want, "step {step}: scan {lo:02x?}..{hi:02x?}");
            }
        }
    }
    store.flush().unwrap();
    drop(store);
    let store = common::cold::open_cold(dir.path());
    let all: Vec<(Vec<u8>, Versioned)> = store.scan_rev(Unbounded, Unbounded).map(Result::unwrap).collect();
    let want: Vec<(Vec<u8>, Versioned)> = model.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(all.iter().filter(|(k, _)| k.starts_with(b"xa")).count(), want.len());
    assert_eq!(all, want, "after reopen");
}

/// Packed trees with keys whose 0xFF runs are longer than 64 bytes (a
/// string index value of many 0xFF bytes): chunk lookups walk, reads and
/// reverse scans still match.
#[test]
fn packed_index_trees_with_long_ff_runs_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::cold::open_cold(dir.path());
    let mut model: BTreeMap<Vec<u8>, Versioned> = BTreeMap::new();
    let key = |run: usize, i: u32| [b"xa\0s\0".as_slice(), &[0x7F], &vec![0xFF; run], &i.to_be_bytes()].concat();
    for round in 0..4u32 {
        let revision = u64::from(round) + 1;
        let mut writes: Vec<(Vec<u8>, Versioned)> = (0..50u32)
            .map(|i| {
                (
                    [b"xa\0s\0".as_slice(), &[0x80], &(i + round * 50).to_be_bytes()].concat(),
                    Versioned { revision, value: Some(vec![1]) },
                )
            })
            .collect();
        writes.extend((0..400u32).map(|i| {
            let value = (i % 11 != 0).then(|| vec![2; (i % 40) as usize]);
            (key(65 + (i as usize * 7) % 200, i + round * 400), Versioned { revision, value })
        }));
        writes.sort_by(|a, b| a.0.cmp(&b.0));
        if round % 2 == 1 {
            writes.reverse();
        }
        store.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        model.extend(writes);
        for (k, v) in &model {
            assert_eq!(store.get(k).unwrap().as_ref(), Some(v), "get {k:02x?}");
        }
        let rev: Vec<(Vec<u8>, Versioned)> = store.scan_rev(Unbounded, Unbounded).map(Result::unwrap).collect();
        let want: Vec<(Vec<u8>, Versioned)> = model.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(rev, want, "round {round}");
        let hi = b"xa\0s\0\x80".to_vec();
        let rev: Vec<(Vec<u8>, Versioned)> = store.scan_rev(Unbounded, Excluded(&hi)).map(Result::unwrap).collect();
        let want: Vec<(Vec<u8>, Versioned)> = model
            .range::<[u8], _>((Unbounded, Excluded(hi.as_slice())))
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(rev, want, "round {round}: below 80");
    }
}
