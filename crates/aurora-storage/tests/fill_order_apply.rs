//! `SledStore::apply` inserts each tree's run of a sorted batch in
//! `fill_order`, not key order: the store must still hold exactly what a
//! `BTreeMap` model does — every key once, the latest version, tombstones
//! included — through point reads, forward and reverse scans, and a
//! reopen. Batches mix runs of document trees, index trees, the feed and
//! default-tree keys, overwrite and delete earlier keys, and some runs are
//! long (several leaves) and append in ascending order as Aurora's keys do.
//!
//! Sized by `AURORA_FILL_ORDER_CASES` (proptest cases, default 24).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::cold::SledStore;
use aurora_storage::{ColdStore, Versioned};
use common::cold::open_cold as open;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;

type Model = BTreeMap<Vec<u8>, Versioned>;

/// Key-space prefixes: two document trees, an index tree, the feed, and
/// two default-tree ranges (one sorting before, one after the trees).
const PREFIXES: [&[u8]; 6] = [b"dusers\0", b"dposts\0", b"xusers\0age\0", b"f", b"cmeta\0", b"zzz"];

fn cases() -> u32 {
    std::env::var("AURORA_FILL_ORDER_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
}

/// One batch: for each prefix, `count` keys starting at `base` (so later
/// batches both append past earlier keys and overwrite them), a tombstone
/// where `delete` divides the index.
#[derive(Debug, Clone)]
struct Run {
    prefix: usize,
    base: u32,
    count: u32,
    delete: u32,
}

fn run() -> impl Strategy<Value = Run> {
    (0..PREFIXES.len(), 0u32..400, 0u32..120, 3u32..50).prop_map(|(prefix, base, count, delete)| Run {
        prefix,
        base,
        count,
        delete,
    })
}

/// The sorted writes of one batch at `revision` (keys distinct, as in a
/// frozen memtable).
fn batch(runs: &[Run], revision: u64) -> Vec<(Vec<u8>, Versioned)> {
    let mut writes = BTreeMap::new();
    for r in runs {
        for i in r.base..r.base + r.count {
            let key = [PREFIXES[r.prefix], &i.to_be_bytes()[..]].concat();
            let value = (i % r.delete != 0).then(|| format!("{revision}:{i}").into_bytes());
            writes.insert(key, Versioned { revision, value });
        }
    }
    writes.into_iter().collect()
}

fn apply(s: &SledStore, model: &mut Model, writes: Vec<(Vec<u8>, Versioned)>) {
    s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
    model.extend(writes);
}

fn check(s: &SledStore, model: &Model) {
    let scanned: Vec<(Vec<u8>, Versioned)> = s.scan(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    let expected: Vec<(Vec<u8>, Versioned)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(scanned.len(), expected.len());
    assert!(scanned == expected, "the forward scan differs from the model");
    let mut reverse: Vec<(Vec<u8>, Versioned)> =
        s.scan_rev(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    reverse.reverse();
    assert!(reverse == expected, "the reverse scan differs from the model");
    for (k, v) in model.iter().step_by(7) {
        assert_eq!(s.get(k).unwrap().as_ref(), Some(v), "{k:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn applied_in_fill_order_the_store_matches_the_model(
        batches in prop::collection::vec(prop::collection::vec(run(), 1..6), 1..5)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cold");
        let mut model = Model::new();
        let s = open(&path);
        for (n, runs) in batches.iter().enumerate() {
            apply(&s, &mut model, batch(runs, n as u64 + 1));
            check(&s, &model);
        }
        s.flush().unwrap();
        drop(s);
        check(&open(&path), &model);
    }
}

/// Long ascending runs (as Aurora's ids and index entries append): many
/// leaves filled in fill order, batch after batch, then overwritten and
/// deleted in place.
#[test]
fn long_appending_runs_match_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cold");
    let s = open(&path);
    let mut model = Model::new();
    let per_batch = 2_000u32;
    for b in 0..4u32 {
        let runs: Vec<Run> = (0..PREFIXES.len())
            .map(|prefix| Run { prefix, base: b * per_batch, count: per_batch, delete: u32::MAX })
            .collect();
        apply(&s, &mut model, batch(&runs, u64::from(b) + 1));
    }
    // Overwrite the middle of every tree, deleting every fifth key.
    let runs: Vec<Run> =
        (0..PREFIXES.len()).map(|prefix| Run { prefix, base: 1_000, count: 3_333, delete: 5 }).collect();
    apply(&s, &mut model, batch(&runs, 5));
    check(&s, &model);
    assert_eq!(model.len(), PREFIXES.len() * 4 * per_batch as usize);
    s.flush().unwrap();
    drop(s);
    check(&open(&path), &model);
}

/// WAL replay and restore hand `apply` writes in revision order, a key
/// repeated with its later versions after the earlier ones: such a run
/// keeps its order, so the last version wins (fill order would have let an
/// earlier version land last — the bug `store_model`'s crash case found).
#[test]
fn a_run_repeating_keys_keeps_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cold");
    let s = open(&path);
    let mut model = Model::new();
    for prefix in [&b"k"[..], b"dusers\0"] {
        // 40 writes to 12 keys, in revision order: every key written
        // several times, the versions out of key order.
        let writes: Vec<(Vec<u8>, Versioned)> = (0..40u64)
            .map(|r| {
                let key = [prefix, &[(r * 5 % 12) as u8][..]].concat();
                let value = (r % 7 != 3).then(|| r.to_be_bytes().to_vec());
                (key, Versioned { revision: r + 1, value })
            })
            .collect();
        s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        model.extend(writes);
    }
    check(&s, &model);
    s.flush().unwrap();
    drop(s);
    check(&open(&path), &model);
}
