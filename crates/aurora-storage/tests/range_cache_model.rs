//! Hostile review of the range cache (`cold/resident.rs`) through the
//! public `Store` API: random writes, deletes, checkpoints (which apply
//! the memtable to the cold store and purge tombstones), registrations of
//! nested and overlapping prefixes, snapshots read while newer writes land,
//! forward and backward scans with limits and reopens, against a `BTreeMap`
//! model, under budgets from "off" to "fits everything" — and the memory
//! bound checked after every step. A threaded test then checks that
//! snapshot scans stay consistent while writers, checkpoints and purges
//! race them.
//!
//! Sized by `AURORA_PROPTEST_CASES` (default 24) and
//! `AURORA_RANGE_CACHE_ROUNDS` (default 300).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::{Batch, Durability, Snapshot, Store, StoreConfig};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
}

fn rounds() -> usize {
    std::env::var("AURORA_RANGE_CACHE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

/// The prefixes a step may register: nested (`a`, `a\x01`), disjoint (`b`),
/// one ending in 0xff (whose successor carries), and two whose keys the
/// sled backend keeps in trees of their own (a collection's documents,
/// the change feed).
const PREFIXES: [&[u8]; 6] = [b"a", b"a\x01", b"b", b"a\xff", b"dc\0", b"f"];

#[derive(Debug, Clone)]
enum Op {
    /// One batch: (prefix byte index, key byte, value length or delete).
    Write(Vec<(u8, u8, Option<u8>)>),
    Checkpoint,
    Register(u8),
    /// A scan of `prefix ++ lo ..= prefix ++ hi`, or of the whole prefix.
    Scan {
        prefix: u8,
        lo: u8,
        hi: u8,
        whole: bool,
        descending: bool,
        take: usize,
    },
    Snapshot,
    DropSnapshot,
    /// Reads the oldest kept snapshot (whole prefix, both ways).
    ReadSnapshot {
        prefix: u8,
        descending: bool,
        take: usize,
    },
    /// A scan that reads `take` items, then writes land (and are applied),
    /// then it goes on.
    Interleaved {
        prefix: u8,
        descending: bool,
        take: usize,
        writes: Vec<(u8, Option<u8>)>,
    },
    Reopen,
}

fn key(prefix: u8, k: u8) -> Vec<u8> {
    let mut key = PREFIXES[usize::from(prefix) % PREFIXES.len()].to_vec();
    key.push(k % 6);
    key
}

fn value(k: u8, len: u8, revision: u64) -> Vec<u8> {
    let mut v = vec![k; usize::from(len % 40)];
    v.extend_from_slice(&revision.to_be_bytes());
    v
}

fn op() -> impl Strategy<Value = Op> {
    let write = (0u8..6, any::<u8>(), proptest::option::of(any::<u8>()));
    prop_oneof![
        6 => proptest::collection::vec(write, 1..6).prop_map(Op::Write),
        3 => Just(Op::Checkpoint),
        2 => (0u8..6).prop_map(Op::Register),
        5 => (0u8..6, 0u8..7, 0u8..7, any::<bool>(), any::<bool>(), 0usize..12)
            .prop_map(|(prefix, lo, hi, whole, descending, take)| Op::Scan { prefix, lo, hi, whole, descending, take }),
        1 => Just(Op::Snapshot),
        1 => Just(Op::DropSnapshot),
        2 => (0u8..6, any::<bool>(), 0usize..12).prop_map(|(prefix, descending, take)| Op::ReadSnapshot { prefix, descending, take }),
        2 => (0u8..6, any::<bool>(), 0usize..6, proptest::collection::vec((any::<u8>(), proptest::option::of(any::<u8>())), 1..6))
            .prop_map(|(prefix, descending, take, writes)| Op::Interleaved { prefix, descending, take, writes }),
        1 => Just(Op::Reopen),
    ]
}

fn config(budget: usize) -> StoreConfig {
    StoreConfig { range_cache_bytes: budget, tombstone_purge_threshold: 1, ..common::config(Durability::Strict) }
}

fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let end = aurora_storage::prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(prefix.to_vec()), end)
}

fn bounds(prefix: u8, lo: u8, hi: u8, whole: bool) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    if whole {
        prefix_bounds(PREFIXES[usize::from(prefix) % PREFIXES.len()])
    } else {
        (Bound::Included(key(prefix, lo)), Bound::Included(key(prefix, hi)))
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

fn model_range(
    model: &Model,
    start: &Bound<Vec<u8>>,
    end: &Bound<Vec<u8>>,
    descending: bool,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let inverted = match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => s >= e,
        _ => false,
    };
    if inverted {
        return Vec::new();
    }
    let items = model.range::<Vec<u8>, _>((start.clone(), end.clone())).map(|(k, v)| (k.clone(), v.clone()));
    if descending {
        items.rev().collect()
    } else {
        items.collect()
    }
}

fn snapshot_iter(
    snap: &Snapshot,
    start: &Bound<Vec<u8>>,
    end: &Bound<Vec<u8>>,
    descending: bool,
) -> aurora_storage::SnapshotIter {
    if descending {
        snap.iter_rev(as_ref(start), as_ref(end)).unwrap()
    } else {
        snap.iter(as_ref(start), as_ref(end)).unwrap()
    }
}

fn next_pair(it: &mut aurora_storage::SnapshotIter) -> Option<(Vec<u8>, Vec<u8>)> {
    it.next().map(|r| {
        let (k, _, v) = r.unwrap();
        (k, v)
    })
}

fn run(ops: Vec<Op>, budget: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), config(budget)).unwrap();
    let mut model = Model::new();
    let mut registered: Vec<u8> = Vec::new();
    let mut snapshots: Vec<(Snapshot, Model)> = Vec::new();
    let write = |store: &Store, model: &mut Model, writes: &[(u8, u8, Option<u8>)]| {
        let mut batch = Batch::new();
        let revision = store.revision() + 1;
        let mut staged = model.clone();
        for &(p, k, v) in writes {
            let key = key(p, k);
            match v {
                Some(len) => {
                    let value = value(k, len, revision);
                    batch.put(key.clone(), value.clone());
                    staged.insert(key, value);
                }
                None => {
                    batch.delete(key.clone());
                    staged.remove(&key);
                }
            }
        }
        store.commit(batch).unwrap().into_result().unwrap();
        *model = staged;
    };
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Write(writes) => write(&store, &mut model, &writes),
            Op::Checkpoint => store.checkpoint().unwrap(),
            Op::Register(p) => {
                store.keep_resident(PREFIXES[usize::from(p)]);
                registered.push(p);
            }
            Op::Scan { prefix, lo, hi, whole, descending, take } => {
                let (start, end) = bounds(prefix, lo, hi, whole);
                let snap = store.snapshot().unwrap();
                let got: Vec<_> = {
                    let mut it = snapshot_iter(&snap, &start, &end, descending);
                    std::iter::from_fn(|| next_pair(&mut it)).take(take).collect()
                };
                let want: Vec<_> = model_range(&model, &start, &end, descending).into_iter().take(take).collect();
                assert_eq!(got, want, "step {step}: scan {start:?}..{end:?} desc={descending} take={take}");
                if !descending {
                    let plain: Vec<_> = store
                        .range(as_ref(&start), as_ref(&end))
                        .unwrap()
                        .take(take)
                        .collect::<Result<_, _>>()
                        .unwrap();
                    assert_eq!(plain, want, "step {step}: Store::range");
                }
            }
            Op::Snapshot => {
                snapshots.push((store.snapshot().unwrap(), model.clone()));
                if snapshots.len() > 3 {
                    snapshots.remove(0);
                }
            }
            Op::DropSnapshot => {
                if !snapshots.is_empty() {
                    snapshots.remove(0);
                }
            }
            Op::ReadSnapshot { prefix, descending, take } => {
                if let Some((snap, then)) = snapshots.first() {
                    let (start, end) = bounds(prefix, 0, 0, true);
                    let got: Vec<_> = {
                        let mut it = snapshot_iter(snap, &start, &end, descending);
                        std::iter::from_fn(|| next_pair(&mut it)).take(take).collect()
                    };
                    let want: Vec<_> = model_range(then, &start, &end, descending).into_iter().take(take).collect();
                    assert_eq!(got, want, "step {step}: snapshot at {} read", snap.revision());
                }
            }
            Op::Interleaved { prefix, descending, take, writes } => {
                let (start, end) = bounds(prefix, 0, 0, true);
                let snap = store.snapshot().unwrap();
                let want = model_range(&model, &start, &end, descending);
                let mut it = snapshot_iter(&snap, &start, &end, descending);
                let mut got: Vec<_> = std::iter::from_fn(|| next_pair(&mut it)).take(take).collect();
                let writes: Vec<(u8, u8, Option<u8>)> = writes.into_iter().map(|(k, v)| (prefix, k, v)).collect();
                write(&store, &mut model, &writes);
                store.checkpoint().unwrap();
                got.extend(std::iter::from_fn(|| next_pair(&mut it)));
                assert_eq!(got, want, "step {step}: a scan with writes landing midway keeps its snapshot");
            }
            Op::Reopen => {
                snapshots.clear();
                store.close().unwrap();
                drop(store);
                store = Store::open(dir.path(), config(budget)).unwrap();
                for &p in &registered {
                    store.keep_resident(PREFIXES[usize::from(p)]);
                }
            }
        }
        let used = store.resident_bytes();
        assert!(used <= budget, "step {step}: resident bytes {used} over the budget {budget}");
        if budget == 0 {
            assert_eq!(used, 0, "step {step}: range_cache_bytes = 0 keeps nothing");
        }
    }
    // Everything, read through the cache and straight.
    for p in PREFIXES {
        let (start, end) = prefix_bounds(p);
        let got: Vec<_> = store.scan_prefix(p).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(got, model_range(&model, &start, &end, false), "final scan of {p:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Random work against the model, with the range cache off, tiny
    /// (prefixes outgrow it mid-run), middling and roomy.
    #[test]
    fn range_cache_answers_as_the_model(
        ops in proptest::collection::vec(op(), 1..80),
        budget in prop_oneof![Just(0usize), Just(400usize), Just(2_000usize), Just(1usize << 20)],
    ) {
        run(ops, budget);
    }
}

/// A scan that the cache serves while the prefix outgrows the budget
/// midway carries on from the cold store and returns every key once.
#[test]
fn a_prefix_that_outgrows_the_budget_mid_scan_carries_on_from_the_cold_store() {
    for descending in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), config(20_000)).unwrap();
        for i in 0..60u32 {
            store.put([b"p/".as_slice(), &i.to_be_bytes()].concat(), vec![1u8; 10]).unwrap();
        }
        store.checkpoint().unwrap();
        store.keep_resident(b"p/");
        let snap = store.snapshot().unwrap();
        let (start, end) = prefix_bounds(b"p/");
        let mut it = snapshot_iter(&snap, &start, &end, descending);
        let mut got: Vec<Vec<u8>> = std::iter::from_fn(|| next_pair(&mut it)).take(10).map(|(k, _)| k).collect();
        assert!(store.resident_bytes() > 0, "the prefix was loaded");
        // Big values: the prefix no longer fits.
        for i in 60..80u32 {
            store.put([b"p/".as_slice(), &i.to_be_bytes()].concat(), vec![2u8; 2_000]).unwrap();
        }
        store.checkpoint().unwrap();
        assert!(store.resident_bytes() <= 20_000);
        got.extend(std::iter::from_fn(|| next_pair(&mut it)).map(|(k, _)| k));
        let mut want: Vec<Vec<u8>> = (0..60u32).map(|i| [b"p/".as_slice(), &i.to_be_bytes()].concat()).collect();
        if descending {
            want.reverse();
        }
        assert_eq!(got, want, "desc={descending}");
    }
}

/// Writers commit transfers between keys of their own (a key emptied is
/// deleted, a key filled is created), so every snapshot's sum is the same;
/// readers scan snapshots forwards and backwards while the applier,
/// checkpoints and tombstone purges race them, and registrations come in
/// midway (an outer prefix replaces an inner loaded one).
fn race(budget: usize) {
    const WRITERS: u64 = 3;
    const KEYS: u64 = 16;
    const START: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        range_cache_bytes: budget,
        tombstone_purge_threshold: 4,
        memtable_flush_bytes: 512,
        checkpoint_interval: std::time::Duration::from_millis(5),
        ..common::config(Durability::Balanced)
    };
    let store = Store::open(dir.path(), config).unwrap();
    let key = |w: u64, k: u64| format!("acct/{w}/{k:02}").into_bytes();
    let mut batch = Batch::new();
    for w in 0..WRITERS {
        for k in 0..KEYS {
            batch.put(key(w, k), START.to_be_bytes().to_vec());
        }
    }
    store.commit(batch).unwrap().into_result().unwrap();
    store.checkpoint().unwrap();
    store.keep_resident(b"acct/1/");
    let total = WRITERS * KEYS * START;
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = rounds();
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let store = &store;
            s.spawn(move || {
                let mut held: Vec<u64> = vec![START; KEYS as usize];
                let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ w;
                for _ in 0..rounds {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let (from, to) = ((seed % KEYS) as usize, ((seed >> 8) % KEYS) as usize);
                    if from == to || held[from] == 0 {
                        continue;
                    }
                    let amount = if seed.is_multiple_of(3) { held[from] } else { 1 + (seed >> 16) % held[from] };
                    held[from] -= amount;
                    held[to] += amount;
                    let mut batch = Batch::new();
                    for i in [from, to] {
                        if held[i] == 0 {
                            batch.delete(key(w, i as u64));
                        } else {
                            batch.put(key(w, i as u64), held[i].to_be_bytes().to_vec());
                        }
                    }
                    store.commit(batch).unwrap().into_result().unwrap();
                }
            });
        }
        for r in 0..2u64 {
            let (store, stop) = (&store, Arc::clone(&stop));
            s.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    if r == 0 && n == 20 {
                        store.keep_resident(b"acct/");
                    }
                    let snap = store.snapshot().unwrap();
                    let (start, end) = prefix_bounds(b"acct/");
                    let fwd: Vec<_> = snap.range(as_ref(&start), as_ref(&end)).unwrap();
                    let mut back: Vec<_> = {
                        let mut it = snapshot_iter(&snap, &start, &end, true);
                        std::iter::from_fn(|| next_pair(&mut it)).collect()
                    };
                    back.reverse();
                    let sum = |items: &[(Vec<u8>, Vec<u8>)]| -> u64 {
                        items.iter().map(|(_, v)| u64::from_be_bytes(v.as_slice().try_into().unwrap())).sum()
                    };
                    assert_eq!(sum(&fwd), total, "forward scan of snapshot {}", snap.revision());
                    assert_eq!(fwd, back, "backward scan of snapshot {}", snap.revision());
                    assert!(fwd.windows(2).all(|w| w[0].0 < w[1].0), "in key order, each key once");
                    assert!(store.resident_bytes() <= budget);
                }
            });
        }
        s.spawn(|| {
            // Stop the readers once the writers are done (they are the
            // other scoped threads; wait on the revision instead).
            let mut last = 0;
            loop {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let now = store.revision();
                if now == last {
                    break;
                }
                last = now;
            }
            stop.store(true, Ordering::Release);
        });
    });
    store.checkpoint().unwrap();
    let all: Vec<_> = store.scan_prefix(b"acct/").unwrap().collect::<Result<_, _>>().unwrap();
    let sum: u64 = all.iter().map(|(_, v)| u64::from_be_bytes(v.as_slice().try_into().unwrap())).sum();
    assert_eq!(sum, total);
}

#[test]
fn snapshot_scans_stay_consistent_while_writers_and_purges_race_them() {
    race(1 << 20);
}

#[test]
fn snapshot_scans_stay_consistent_with_a_budget_the_prefix_outgrows() {
    race(3_000);
}

/// An outer prefix registered while a scan of a loaded inner one is
/// midway replaces it (its bytes are returned); the scan carries on from
/// the cold store, and the next scan loads the outer prefix.
#[test]
fn an_outer_prefix_registered_mid_scan_replaces_the_inner_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config(1 << 20)).unwrap();
    let key = |i: u8| vec![b'a', 1, i];
    for i in 0..64u8 {
        store.put(key(i), vec![i; 20]).unwrap();
    }
    store.put(b"a\x02".to_vec(), b"outer".to_vec()).unwrap();
    store.checkpoint().unwrap();
    store.keep_resident(b"a\x01");
    let snap = store.snapshot().unwrap();
    let (start, end) = prefix_bounds(b"a\x01");
    let mut it = snapshot_iter(&snap, &start, &end, true);
    let mut got: Vec<Vec<u8>> = std::iter::from_fn(|| next_pair(&mut it)).take(10).map(|(k, _)| k).collect();
    assert!(store.resident_bytes() > 0, "the inner prefix was loaded");
    store.keep_resident(b"a");
    assert_eq!(store.resident_bytes(), 0, "the inner prefix's bytes were returned");
    for i in 0..64u8 {
        store.delete(key(i)).unwrap();
    }
    store.checkpoint().unwrap();
    got.extend(std::iter::from_fn(|| next_pair(&mut it)).map(|(k, _)| k));
    assert_eq!(got, (0..64u8).rev().map(key).collect::<Vec<_>>(), "the snapshot's keys, each once");
    let now: Vec<_> = store.scan_prefix(b"a").unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(now, vec![(b"a\x02".to_vec(), b"outer".to_vec())]);
    assert!(store.resident_bytes() > 0, "the outer prefix was loaded");
}
