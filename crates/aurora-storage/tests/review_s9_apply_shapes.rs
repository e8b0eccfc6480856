//! Hostile review (session 9) of `SledStore::apply`'s fill order: whatever
//! sequence a caller hands `apply` — the applier's sorted memtables, WAL
//! replay's revision order (repeated keys), restore's batches — the store
//! must equal a `BTreeMap` model of "the last write of each key, in the
//! order given, wins", through point reads, both scan directions and a
//! reopen. Shapes: runs of exactly 1/15/16/17/33 keys (the block edges of
//! `fill_order`), descending runs, runs ascending but for one repeat at
//! the end, keys that are prefixes of one another (the empty suffix, the
//! bare tree name `dusers\0`, the feed's `f`), default-tree keys between
//! tree runs, tombstones, and the same prefix split into several runs by
//! other prefixes in between.
//!
//! Sized by `AURORA_PROPTEST_CASES` (default 32).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::cold::SledStore;
use aurora_storage::{ColdStore, Versioned};
use common::cold::open_cold as open;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;

type Model = BTreeMap<Vec<u8>, Versioned>;
type Writes = Vec<(Vec<u8>, Versioned)>;

/// Tree prefixes and default-tree prefixes; some are prefixes of others
/// (`d` / `dusers\0` / `dusers\0\0`, `f` / `f\0`), and the bare names are
/// keys themselves (an empty suffix).
const PREFIXES: [&[u8]; 8] = [b"dusers\0", b"dusers\0\0", b"xusers\0age\0", b"f", b"f\0", b"d", b"dusers", b"cmeta\0"];

fn cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32)
}

fn check(s: &SledStore, model: &Model, what: &str) {
    let expected: Writes = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let scanned: Writes = s.scan(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    assert!(scanned == expected, "{what}: forward scan differs from the model\n{scanned:?}\n{expected:?}");
    let mut reverse: Writes = s.scan_rev(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    reverse.reverse();
    assert!(reverse == expected, "{what}: reverse scan differs from the model");
    for (k, v) in model {
        assert_eq!(s.get(k).unwrap().as_ref(), Some(v), "{what}: get {k:?}");
    }
    // Bounded scans starting inside each prefix.
    for p in PREFIXES {
        let got: Writes = s.scan(Bound::Included(p), Bound::Unbounded).map(Result::unwrap).collect();
        let want: Writes = model.range(p.to_vec()..).map(|(k, v)| (k.clone(), v.clone())).collect();
        assert!(got == want, "{what}: scan from {p:?} differs");
    }
}

fn apply(s: &SledStore, model: &mut Model, writes: &Writes) {
    s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
    for (k, v) in writes {
        model.insert(k.clone(), v.clone());
    }
}

fn key(prefix: usize, suffix: &[u8]) -> Vec<u8> {
    [PREFIXES[prefix], suffix].concat()
}

fn write(prefix: usize, suffix: &[u8], revision: u64, tomb: bool) -> (Vec<u8>, Versioned) {
    let value = (!tomb).then(|| format!("{revision}:{suffix:?}").into_bytes());
    (key(prefix, suffix), Versioned { revision, value })
}

/// A run of `n` keys of one prefix in the given shape.
fn shaped(prefix: usize, n: usize, shape: u8, revision: &mut u64) -> Writes {
    let mut idx: Vec<usize> = (0..n).collect();
    match shape % 4 {
        0 => {}                    // ascending
        1 => idx.reverse(),        // descending
        2 => idx.push(n / 2),      // ascending, then a repeat
        _ => idx.insert(0, n - 1), // the last key first, then all ascending (repeat)
    }
    idx.into_iter()
        .map(|i| {
            *revision += 1;
            // Suffixes of different lengths: i as one byte, and the empty
            // suffix for i == 0 (a key equal to the prefix).
            let suffix: Vec<u8> = if i == 0 { vec![] } else { vec![(i / 7) as u8, (i % 7) as u8] };
            write(prefix, &suffix, *revision, (*revision).is_multiple_of(5))
        })
        .collect()
}

#[test]
fn runs_at_the_block_edges_in_every_shape_match_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cold");
    let s = open(&path);
    let mut model = Model::new();
    let mut revision = 0;
    for n in [1usize, 2, 15, 16, 17, 31, 32, 33, 48, 49] {
        for shape in 0..4u8 {
            for prefix in 0..PREFIXES.len() {
                let writes = shaped(prefix, n, shape, &mut revision);
                apply(&s, &mut model, &writes);
                check(&s, &model, &format!("n {n} shape {shape} prefix {prefix}"));
            }
        }
    }
    // All prefixes in one call, interleaved: prefix A, B, A, C, A.
    let mut writes = Writes::new();
    for (p, n) in [(0, 17), (3, 16), (0, 33), (5, 1), (0, 15), (4, 17), (3, 33)] {
        writes.extend(shaped(p, n, 0, &mut revision));
    }
    apply(&s, &mut model, &writes);
    check(&s, &model, "interleaved");
    s.flush().unwrap();
    drop(s);
    check(&open(&path), &model, "after reopen");
}

fn any_write() -> impl Strategy<Value = (usize, Vec<u8>, bool)> {
    (0..PREFIXES.len(), prop::collection::vec(0u8..4, 0..3), prop::bool::weighted(0.2))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Arbitrary sequences (any order, repeats, tombstones, every prefix)
    /// and sorted-distinct sequences of the same writes, several calls.
    #[test]
    fn any_sequence_the_last_write_in_the_order_given_wins(
        calls in prop::collection::vec((prop::collection::vec(any_write(), 0..80), any::<bool>()), 1..6)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cold");
        let s = open(&path);
        let mut model = Model::new();
        let mut revision = 0u64;
        for (n, (ops, sorted)) in calls.iter().enumerate() {
            let mut writes: Writes = ops.iter().map(|(p, suffix, tomb)| {
                revision += 1;
                write(*p, suffix, revision, *tomb)
            }).collect();
            if *sorted {
                // The applier's shape: distinct keys in key order.
                let distinct: BTreeMap<Vec<u8>, Versioned> = writes.into_iter().collect();
                writes = distinct.into_iter().collect();
            }
            apply(&s, &mut model, &writes);
            check(&s, &model, &format!("call {n}"));
        }
        s.flush().unwrap();
        drop(s);
        check(&open(&path), &model, "after reopen");
    }
}
