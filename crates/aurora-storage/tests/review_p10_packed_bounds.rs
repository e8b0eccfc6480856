//! Review (session 10) of the packed index trees: the logical key space
//! against a `BTreeMap` model, with scan bounds taken from the chunks
//! themselves (read with raw sled after a close): on a chunk's lower
//! bound, just above and just below it, between chunks, below the first
//! and above the last chunk, empty and inverted ranges, bounds in other
//! trees and the default tree. The keys are chosen to be hard on the
//! prefix compression: suffixes over the bytes `00 01 61 FF` of length 0
//! to 5 (so many keys are prefixes of each other, and the empty suffix —
//! the key equal to the tree's prefix — is one of them), values of every
//! size around the append path's 256-byte threshold and past the 8 KiB
//! chunk limit, runs ascending, descending, shuffled with repeats (later
//! wins) and interleaved with other trees' keys in one `apply`, then
//! purges that empty chunks, then reopens.
//!
//! Sized by `AURORA_REVIEW_PACKED_ROUNDS` (phases, default 6); the random
//! draws by `AURORA_REVIEW_PACKED_SEED`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::cold::SledStore;
use aurora_storage::{ColdStore, Versioned};
use common::cold::open_cold as open;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::Path;

type Model = BTreeMap<Vec<u8>, Versioned>;

fn rounds() -> u32 {
    std::env::var("AURORA_REVIEW_PACKED_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(6)
}

/// The packed tree under test and its neighbours.
const XA: &[u8] = b"xa\0";
const OTHERS: [&[u8]; 3] = [b"da\0", b"xb\0", b"xa"];

/// A suffix over a small alphabet: prefixes of each other, shared bytes.
fn suffix(rng: &mut fastrand::Rng) -> Vec<u8> {
    const ALPHABET: [u8; 4] = [0x00, 0x01, 0x61, 0xFF];
    let len = rng.usize(0..6);
    (0..len).map(|_| ALPHABET[rng.usize(..ALPHABET.len())]).collect()
}

fn value(rng: &mut fastrand::Rng, revision: u64) -> Option<Vec<u8>> {
    let len = match rng.u32(0..20) {
        0..=3 => return None,
        4..=8 => rng.usize(0..4),
        9..=13 => rng.usize(225..=262), // around the append path's 256 bytes (key + 11 + value)
        14..=16 => rng.usize(1000..1100),
        17 => 8 << 10,
        18 => (8 << 10) + 1,
        _ => 20_000,
    };
    let mut v = revision.to_be_bytes().to_vec();
    v.resize(len.max(8), rng.u8(..));
    Some(v)
}

/// The keys of a chunk (`[1]([shared][rest len][rest][value len][value])*`).
fn chunk_entries(raw: &[u8]) -> Vec<Vec<u8>> {
    aurora_testkit::packed_chunk::decode(raw).into_iter().map(|(k, _)| k).collect()
}

/// The chunk keys of the packed tree `XA` (with the prefix), after
/// checking what no write sequence without a crash may leave: an empty
/// chunk, more than 32 entries in one, or an entry outside the interval
/// its chunk owns (stale entries are only left by a kill between two
/// writes of a split).
fn chunk_keys(path: &Path) -> Vec<Vec<u8>> {
    let db = aurora_testkit::raw_sled::open(path);
    let name = [b"p", XA].concat();
    assert!(db.tree_names().iter().any(|n| n.as_ref() == name.as_slice()), "the index tree is packed");
    let tree = db.open_tree(&name).unwrap();
    let chunks: Vec<(Vec<u8>, Vec<Vec<u8>>)> =
        tree.iter().map(|r| r.unwrap()).map(|(k, v)| (k.to_vec(), chunk_entries(&v))).collect();
    for (i, (k, entries)) in chunks.iter().enumerate() {
        assert!(!entries.is_empty() && entries.len() <= 32, "chunk {k:?}: {} entries", entries.len());
        let next = chunks.get(i + 1).map(|(n, _)| n);
        for e in entries {
            assert!(e >= k && next.is_none_or(|n| e < n), "chunk {k:?} holds {e:?} outside [{k:?}, {next:?})");
        }
    }
    chunks.into_iter().map(|(k, _)| [XA, &k].concat()).collect()
}

fn in_range(k: &[u8], lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    let above = match lo {
        Bound::Unbounded => true,
        Bound::Included(s) => k >= s.as_slice(),
        Bound::Excluded(s) => k > s.as_slice(),
    };
    let below = match hi {
        Bound::Unbounded => true,
        Bound::Included(e) => k <= e.as_slice(),
        Bound::Excluded(e) => k < e.as_slice(),
    };
    above && below
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Keys right around `k`: itself, just above (`k ++ 00`), just below
/// (the last byte decremented and padded with FF, or `k` without its last
/// byte), and a longer key sharing it.
fn around(k: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![k.to_vec(), [k, &[0][..]].concat(), [k, &[0xFF, 0xFF][..]].concat()];
    if let Some((&last, rest)) = k.split_last() {
        out.push(rest.to_vec());
        if last > 0 {
            out.push([rest, &[last - 1, 0xFF, 0xFF, 0xFF][..]].concat());
        }
    }
    out
}

fn check_reads(s: &SledStore, model: &Model, chunks: &[Vec<u8>], rng: &mut fastrand::Rng, what: &str) {
    let mut points: BTreeSet<Vec<u8>> = BTreeSet::new();
    for c in chunks {
        points.extend(around(c));
    }
    for p in [XA, b"xa", b"xa\x01", b"x", b"", b"\xFF\xFF", b"da\0", b"xb\0", b"xb\0\x61"] {
        points.extend(around(p));
    }
    for k in model.keys().step_by(7) {
        points.insert(k.clone());
    }
    let points: Vec<Vec<u8>> = points.into_iter().collect();
    for p in &points {
        assert_eq!(s.get(p).unwrap(), model.get(p).cloned(), "{what}: get {p:?}");
    }
    let bound = |rng: &mut fastrand::Rng| match rng.u32(0..7) {
        0 => Bound::Unbounded,
        1..=3 => Bound::Included(points[rng.usize(..points.len())].clone()),
        _ => Bound::Excluded(points[rng.usize(..points.len())].clone()),
    };
    for _ in 0..400 {
        let (lo, hi) = (bound(rng), bound(rng));
        let expected: Vec<(Vec<u8>, Versioned)> =
            model.iter().filter(|(k, _)| in_range(k, &lo, &hi)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let got: Vec<(Vec<u8>, Versioned)> = s.scan(as_ref(&lo), as_ref(&hi)).map(Result::unwrap).collect();
        assert!(got == expected, "{what}: scan {lo:?}..{hi:?}: {} keys, model {}", got.len(), expected.len());
        let mut got: Vec<(Vec<u8>, Versioned)> = s.scan_rev(as_ref(&lo), as_ref(&hi)).map(Result::unwrap).collect();
        got.reverse();
        assert!(got == expected, "{what}: scan_rev {lo:?}..{hi:?}: {} keys, model {}", got.len(), expected.len());
    }
}

/// One `apply` and the model after it (later versions of a key win).
fn apply(s: &SledStore, model: &mut Model, writes: &[(Vec<u8>, Versioned)]) {
    s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
    for (k, v) in writes {
        model.insert(k.clone(), v.clone());
    }
}

#[test]
fn every_bound_around_the_chunks_reads_what_the_model_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    let mut model = Model::new();
    let seed = std::env::var("AURORA_REVIEW_PACKED_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5EED_0010);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut revision = 0u64;
    for phase in 0..rounds() {
        for _ in 0..12 {
            revision += 1;
            let n = rng.usize(1..150);
            let mut writes: Vec<(Vec<u8>, Versioned)> = (0..n)
                .map(|_| {
                    let tree = if rng.u32(0..6) == 0 { OTHERS[rng.usize(..OTHERS.len())] } else { XA };
                    ([tree, &suffix(&mut rng)].concat(), Versioned { revision, value: value(&mut rng, revision) })
                })
                .collect();
            match rng.u32(0..4) {
                0 => {
                    writes.sort_by(|a, b| a.0.cmp(&b.0));
                    writes.dedup_by(|a, b| a.0 == b.0);
                }
                1 => {
                    writes.sort_by(|a, b| b.0.cmp(&a.0));
                    writes.dedup_by(|a, b| a.0 == b.0);
                }
                2 => {
                    // Sorted with repeats: the second of two equal keys wins.
                    writes.sort_by(|a, b| a.0.cmp(&b.0));
                    let repeats: Vec<(Vec<u8>, Versioned)> = writes
                        .iter()
                        .step_by(3)
                        .map(|(k, _)| (k.clone(), Versioned { revision, value: value(&mut rng, revision) }))
                        .collect();
                    writes.extend(repeats);
                    writes.sort_by(|a, b| a.0.cmp(&b.0));
                }
                _ => {} // as drawn: shuffled, interleaved with other trees, repeats possible
            }
            apply(&s, &mut model, &writes);
        }
        // Delete the whole first or last few chunks' worth, or a middle
        // stretch, then purge it (fully or by name).
        revision += 1;
        let keys: Vec<Vec<u8>> = model.keys().filter(|k| k.starts_with(XA)).cloned().collect();
        if !keys.is_empty() {
            let len = rng.usize(1..=keys.len().min(120));
            let start = match phase % 3 {
                0 => 0,
                1 => keys.len() - len,
                _ => rng.usize(..=keys.len() - len),
            };
            let deletes: Vec<(Vec<u8>, Versioned)> =
                keys[start..start + len].iter().map(|k| (k.clone(), Versioned { revision, value: None })).collect();
            apply(&s, &mut model, &deletes);
            let purgeable = model.values().filter(|v| v.value.is_none()).count();
            if phase % 2 == 0 {
                assert_eq!(s.purge_tombstones(revision).unwrap(), purgeable, "phase {phase}: purge");
            } else {
                let named: Vec<Vec<u8>> =
                    model.iter().filter(|(_, v)| v.value.is_none()).map(|(k, _)| k.clone()).collect();
                let removed = s.purge_tombstones_of(&mut named.iter().rev().map(Vec::as_slice), revision).unwrap();
                assert_eq!(removed, purgeable, "phase {phase}: targeted purge");
            }
            model.retain(|_, v| v.value.is_some());
        }
        s.flush().unwrap();
        drop(s);
        let chunks = chunk_keys(dir.path());
        assert!(!chunks.is_empty(), "phase {phase}: chunks in the packed tree");
        s = open(dir.path());
        check_reads(&s, &model, &chunks, &mut rng, &format!("phase {phase} ({} chunks)", chunks.len()));
    }
    // Delete everything in the packed tree and purge: a get, a scan and a
    // reopen of an emptied tree.
    revision += 1;
    let deletes: Vec<(Vec<u8>, Versioned)> =
        model.keys().filter(|k| k.starts_with(XA)).map(|k| (k.clone(), Versioned { revision, value: None })).collect();
    apply(&s, &mut model, &deletes);
    s.purge_tombstones(revision).unwrap();
    model.retain(|_, v| v.value.is_some());
    check_reads(&s, &model, &[], &mut rng, "emptied");
    drop(s);
    let s = open(dir.path());
    check_reads(&s, &model, &[], &mut rng, "emptied, reopened");
    // And written again from nothing.
    revision += 1;
    let writes: Vec<(Vec<u8>, Versioned)> = (0..100u32)
        .rev()
        .map(|i| ([XA, &i.to_be_bytes()[..]].concat(), Versioned { revision, value: Some(vec![1; 300]) }))
        .collect();
    apply(&s, &mut model, &writes);
    check_reads(&s, &model, &[], &mut rng, "refilled");
}

/// Loads of exactly 1, 31, 32, 33, 64 and 65 entries, entries of exactly
/// 256 bytes (the append path's limit: key + 11 + value) and of 257, a
/// chunk's worth of bytes exactly (32 × 256 = 8 KiB) and one byte past it;
/// then one more key at the end, below the first and in the middle of
/// each; the chunks stay within their invariants and read as the model.
#[test]
fn loads_at_and_past_the_chunk_limits() {
    for count in [1usize, 31, 32, 33, 64, 65] {
        for entry_bytes in [24usize, 256, 257] {
            let dir = tempfile::tempdir().unwrap();
            let s = open(dir.path());
            let mut model = Model::new();
            let mut rng = fastrand::Rng::with_seed(count as u64 * 1000 + entry_bytes as u64);
            // Keys `XA ++ 'k' ++ 4 digits` (5 bytes of suffix); the value
            // fills the entry to `entry_bytes` with its 11-byte header.
            let k = |i: usize| [XA, format!("k{i:04}").as_bytes()].concat();
            let v = |r: u64| Versioned { revision: r, value: Some(vec![b'v'; entry_bytes - 5 - 11]) };
            let load: Vec<(Vec<u8>, Versioned)> = (0..count).map(|i| (k(100 + 2 * i), v(1))).collect();
            apply(&s, &mut model, &load);
            for (n, at) in [100 + 2 * count + 10, 50, (100 + count) | 1].into_iter().enumerate() {
                apply(&s, &mut model, &[(k(at), v(2 + n as u64))]);
            }
            s.flush().unwrap();
            drop(s);
            let chunks = chunk_keys(dir.path());
            let s = open(dir.path());
            check_reads(&s, &model, &chunks, &mut rng, &format!("{count} entries of {entry_bytes} bytes"));
        }
    }
}
