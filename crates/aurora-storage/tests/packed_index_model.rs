//! The packed index trees of the sled backend (`sled_store/packed.rs`)
//! against a `BTreeMap` model: runs of inserts, overwrites and tombstones
//! (ascending appends, inserts in the middle, runs that repeat a key as WAL
//! replay does), full and targeted purges, point reads, forward and
//! reverse scans with arbitrary bounds, and reopens, in any order. The keys
//! are index entries of one collection (a packed tree) with a few of a
//! second one and of a document tree around them, so scans also cross
//! the packed trees' edges.
//!
//! Sized by `AURORA_PACKED_CASES` (proptest cases, default 32).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::{ColdStore, Versioned};
use common::cold::open_cold as open;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;

type Model = BTreeMap<Vec<u8>, Versioned>;

fn cases() -> u32 {
    std::env::var("AURORA_PACKED_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32)
}

/// The key of entry `i` of space `space`: 0 and 1 are the index trees of
/// two collections (`xa`, `xb`), 2 a document tree (`da`).
fn key(space: u8, i: u16) -> Vec<u8> {
    let prefix: &[u8] = match space {
        0 => b"xa\0age\0",
        1 => b"xb\0age\0",
        _ => b"da\0\x02",
    };
    // Variable length keys: a shared prefix, then the number.
    [prefix, &[(i % 7) as u8 + 0x10], format!("{i}").as_bytes()].concat()
}

#[derive(Debug, Clone)]
enum Op {
    /// Writes `count` keys from `base` by `stride` at the next revision; a
    /// tombstone where `delete` divides the index; `shuffle` applies them
    /// unsorted with one key repeated (a WAL replay's run).
    Apply {
        space: u8,
        base: u16,
        count: u16,
        stride: u16,
        delete: u16,
        shuffle: bool,
    },
    Purge {
        back: u64,
    },
    PurgeOf {
        space: u8,
        base: u16,
        count: u16,
        back: u64,
    },
    Get {
        space: u8,
        i: u16,
    },
    Scan {
        lo: Option<(u8, u16, bool)>,
        hi: Option<(u8, u16, bool)>,
        reverse: bool,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let space = prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)];
    let bound = proptest::option::of((0u8..3, 0u16..2000, any::<bool>()));
    prop_oneof![
        8 => (space.clone(), 0u16..1500, 0u16..400, 1u16..9, 2u16..40, any::<bool>()).prop_map(
            |(space, base, count, stride, delete, shuffle)| Op::Apply { space, base, count, stride, delete, shuffle }
        ),
        1 => (0u64..4).prop_map(|back| Op::Purge { back }),
        1 => (space.clone(), 0u16..1500, 0u16..300, 0u64..4)
            .prop_map(|(space, base, count, back)| Op::PurgeOf { space, base, count, back }),
        3 => (space, 0u16..2000).prop_map(|(space, i)| Op::Get { space, i }),
        3 => (bound.clone(), bound, any::<bool>()).prop_map(|(lo, hi, reverse)| Op::Scan { lo, hi, reverse }),
        1 => Just(Op::Reopen),
    ]
}

fn bound(b: &Option<(u8, u16, bool)>) -> Bound<Vec<u8>> {
    match b {
        None => Bound::Unbounded,
        Some((space, i, true)) => Bound::Included(key(*space, *i)),
        Some((space, i, false)) => Bound::Excluded(key(*space, *i)),
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Whether `lo..hi` is a range `BTreeMap::range` accepts.
fn valid(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    match (lo, hi) {
        (Bound::Included(s), Bound::Included(e)) => s <= e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => {
            s < e || (s == e && matches!((lo, hi), (Bound::Included(_), Bound::Included(_))))
        }
        _ => true,
    }
}

/// Runs `ops` against a store and the model; panics at the first difference.
fn check(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    let mut model = Model::new();
    let mut revision = 0u64;
    for op in ops {
        match op {
            Op::Apply { space, base, count, stride, delete, shuffle } => {
                revision += 1;
                let mut writes: Vec<(Vec<u8>, Versioned)> = (0..*count)
                    .map(|n| {
                        let i = base.saturating_add(n.saturating_mul(*stride));
                        let value = (i % delete != 0).then(|| format!("{revision}:{i}").into_bytes());
                        (key(*space, i), Versioned { revision, value })
                    })
                    .collect();
                if *shuffle {
                    let mut rng = fastrand::Rng::with_seed(revision);
                    rng.shuffle(&mut writes);
                    if let Some(first) = writes.first().cloned() {
                        // A repeat, later in the run: its second version wins.
                        let later = Versioned { revision, value: Some(b"again".to_vec()) };
                        writes.push((first.0, later));
                    }
                } else {
                    writes.sort_by(|a, b| a.0.cmp(&b.0));
                    writes.dedup_by(|a, b| a.0 == b.0);
                }
                s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
                model.extend(writes);
            }
            Op::Purge { back } => {
                let horizon = revision.saturating_sub(*back);
                let expected = model.values().filter(|v| v.value.is_none() && v.revision <= horizon).count();
                assert_eq!(s.purge_tombstones(horizon).unwrap(), expected, "purge at {horizon}");
                model.retain(|_, v| v.value.is_some() || v.revision > horizon);
            }
            Op::PurgeOf { space, base, count, back } => {
                let horizon = revision.saturating_sub(*back);
                let keys: Vec<Vec<u8>> = (*base..base.saturating_add(*count)).rev().map(|i| key(*space, i)).collect();
                let purgeable =
                    |k: &Vec<u8>, m: &Model| m.get(k).is_some_and(|v| v.value.is_none() && v.revision <= horizon);
                let mut unique = keys.clone();
                unique.sort();
                unique.dedup();
                let expected = unique.iter().filter(|k| purgeable(k, &model)).count();
                let removed = s.purge_tombstones_of(&mut keys.iter().map(Vec::as_slice), horizon).unwrap();
                assert_eq!(removed, expected, "targeted purge at {horizon}");
                for k in unique {
                    if purgeable(&k, &model) {
                        model.remove(&k);
                    }
                }
            }
            Op::Get { space, i } => {
                let k = key(*space, *i);
                assert_eq!(s.get(&k).unwrap(), model.get(&k).cloned(), "get {k:?}");
            }
            Op::Scan { lo, hi, reverse } => {
                let (lo, hi) = (bound(lo), bound(hi));
                if !valid(&lo, &hi) {
                    continue;
                }
                let got: Vec<(Vec<u8>, Versioned)> = if *reverse {
                    s.scan_rev(as_ref(&lo), as_ref(&hi)).map(Result::unwrap).collect()
                } else {
                    s.scan(as_ref(&lo), as_ref(&hi)).map(Result::unwrap).collect()
                };
                let mut expected: Vec<(Vec<u8>, Versioned)> =
                    model.range((lo.clone(), hi.clone())).map(|(k, v)| (k.clone(), v.clone())).collect();
                if *reverse {
                    expected.reverse();
                }
                assert_eq!(got.len(), expected.len(), "scan {lo:?}..{hi:?} reverse {reverse}");
                assert_eq!(got, expected, "scan {lo:?}..{hi:?} reverse {reverse}");
            }
            Op::Reopen => {
                s.flush().unwrap();
                drop(s);
                s = open(dir.path());
            }
        }
    }
    let all: Vec<(Vec<u8>, Versioned)> = s.scan(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    assert_eq!(all, model.into_iter().collect::<Vec<_>>());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn packed_index_trees_hold_what_the_model_holds(ops in proptest::collection::vec(op(), 1..40)) {
        check(&ops);
    }
}

/// A long ascending load (many full chunks), then deletes and purges that
/// empty whole chunks at the start, the middle and the end, then inserts
/// below the first chunk: every chunk-removal and first-chunk path.
#[test]
fn chunks_emptied_by_purges_and_keys_below_the_first_chunk() {
    let mut ops = vec![Op::Apply { space: 0, base: 500, count: 1000, stride: 1, delete: 1000, shuffle: false }];
    for (base, count) in [(500u16, 300u16), (900, 200), (1300, 200)] {
        ops.push(Op::Apply { space: 0, base, count, stride: 1, delete: 1, shuffle: false });
        ops.push(Op::Purge { back: 0 });
        ops.push(Op::Scan { lo: None, hi: None, reverse: true });
    }
    ops.push(Op::Apply { space: 0, base: 0, count: 200, stride: 2, delete: 1000, shuffle: false });
    ops.push(Op::Reopen);
    ops.push(Op::Apply { space: 0, base: 1, count: 400, stride: 3, delete: 5, shuffle: true });
    ops.push(Op::PurgeOf { space: 0, base: 0, count: 2000, back: 0 });
    ops.push(Op::Scan { lo: Some((0, 100, true)), hi: Some((0, 1400, false)), reverse: false });
    ops.push(Op::Scan { lo: Some((0, 100, false)), hi: Some((0, 1400, true)), reverse: true });
    for i in (0..2000).step_by(37) {
        ops.push(Op::Get { space: 0, i });
    }
    check(&ops);
}
