//! Hostile review of the sled backend's tree layout (branch s8-disk):
//! scans against a `BTreeMap` model with more prefixes than `MAX_TREES`,
//! trees emptied, dropped at open and created again, lazy scans that
//! outlive a purge and a tree's creation, and damaged layouts.
//!
//! Sized by `AURORA_SLED_TREES_ROUNDS` (default 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::cold::SledStore;
use aurora_storage::{Batch, ColdStore, Durability, StorageError, Store, StoreConfig, Versioned};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::time::Duration;

/// `MAX_TREES` of the backend (not exported): the tests count on it.
const MAX_TREES: usize = 256;

fn rounds() -> usize {
    std::env::var("AURORA_SLED_TREES_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

fn live(revision: u64, value: &[u8]) -> Versioned {
    Versioned { revision, value: Some(value.to_vec()) }
}

fn dead(revision: u64) -> Versioned {
    Versioned { revision, value: None }
}

fn apply(s: &SledStore, writes: &[(Vec<u8>, Versioned)]) {
    s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
}

/// sled itself at `path`, retrying while a dropped store's lock is released.
fn raw(path: &Path) -> sled::Db {
    aurora_testkit::raw_sled::open(path)
}

fn reopen(path: &Path) -> SledStore {
    SledStore::open(path, 1 << 20).unwrap()
}

/// The document key of `id` in collection `c`.
fn doc(c: &str, id: &str) -> Vec<u8> {
    [&b"d"[..], c.as_bytes(), b"\0\x02", id.as_bytes()].concat()
}

/// Fills the backend with exactly `MAX_TREES` trees (collections
/// `c000`..`c255`), then empties the first one and reopens, so one tree is
/// dropped and there is room for one more; `past_cap` keys written while
/// the cap was reached stay in the default tree.
fn at_cap_with_one_free_place(path: &Path, past_cap: &[(Vec<u8>, Versioned)]) -> SledStore {
    let s = reopen(path);
    let trees: Vec<_> = (0..MAX_TREES).map(|i| (doc(&format!("c{i:03}"), "id"), live(1, b"v"))).collect();
    apply(&s, &trees);
    apply(&s, past_cap);
    apply(&s, &[(doc("c000", "id"), dead(2))]);
    assert_eq!(s.purge_tombstones(2).unwrap(), 1);
    s.flush().unwrap();
    drop(s);
    let s = reopen(path);
    let names = s_tree_count(path, s);
    assert_eq!(names.1, MAX_TREES - 1, "the emptied tree is dropped at open");
    names.0
}

/// The number of trees besides the default one (read through sled while
/// the store is closed), and the store reopened.
fn s_tree_count(path: &Path, s: SledStore) -> (SledStore, usize) {
    drop(s);
    let n = {
        let db = raw(path);
        db.tree_names().len() - 1
    };
    (reopen(path), n)
}

// ---------------------------------------------------------------------------
// Finding 1: a lazy scan of the default tree reports a stale key as damage.
// ---------------------------------------------------------------------------

/// REVIEW FINDING 1. sled 0.34's iterators hand out keys from a *copy* of
/// the leaf they last read (`Iter::cached_node`): a key purged after the
/// scan read its leaf can still come out of the scan. Before the tree
/// layout that was harmless (a purged tombstone reads as the absent key it
/// stands for). Now `scan_default` checks every key of the default tree
/// against the trees that exist *when the key comes out*: when the
/// tombstones of a prefix that lived in the default tree (it was met past
/// `MAX_TREES`) are purged and the prefix is written again while a tree
/// place is free (one was dropped at open), the prefix gets a tree, and a
/// scan that was already walking the default tree yields
/// `Corrupt("a key in sled's default tree that belongs in the tree of its
/// prefix")` for the stale tombstone — a healthy database reported as
/// damaged, and the scan (a snapshot read, an online backup) fails.
///
/// Correct: the stale tombstone comes out as the tombstone it is (or not at
/// all); the check for misplaced keys must not fire on keys the scan read
/// before the tree existed (e.g. decide it from the trees the scan started
/// with, or re-read the key from the default tree before calling it
/// misplaced).
#[test]
fn a_scan_of_the_default_tree_does_not_report_a_stale_purged_key_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    // `dp` and `dq` are met past the cap: their keys are in the default tree.
    let past_cap: Vec<_> = std::iter::once((doc("dp", "a"), live(1, b"o")))
        .chain(["a", "b", "c", "d", "e"].iter().map(|id| (doc("dq", id), live(1, b"q"))))
        .collect();
    let s = at_cap_with_one_free_place(dir.path(), &past_cap);
    // Every key of `dq` deleted (tombstones in the default tree).
    let dels: Vec<_> = ["a", "b", "c", "d", "e"].iter().map(|id| (doc("dq", id), dead(10))).collect();
    apply(&s, &dels);
    // A scan from `dp`: its first key read, the leaf with `dq`'s tombstones cached.
    let mut scan = s.scan(Bound::Included(&doc("dp", "")[..]), Bound::Unbounded);
    assert_eq!(scan.next().unwrap().unwrap().0, doc("dp", "a"));
    // The tombstones are purged, and `dq` is written again: it gets the free tree.
    assert_eq!(s.purge_tombstones(10).unwrap(), 5);
    apply(&s, &[(doc("dq", "z"), live(11, b"new"))]);
    assert_eq!(s.get(&doc("dq", "z")).unwrap(), Some(live(11, b"new")));
    let rest: Vec<_> = scan.collect();
    for item in &rest {
        assert!(item.is_ok(), "a healthy store's scan failed: {:?}", item.as_ref().err());
    }
}

/// Finding 1 through the public API: a snapshot iterator (what an online
/// backup reads with) fails with `Corrupt` on a healthy database when a
/// purge and a write to a prefix that lived in the default tree happen
/// while it is open.
#[test]
fn a_snapshot_iterator_survives_a_purge_and_a_new_tree_under_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let first = StoreConfig { tombstone_purge_threshold: 1, ..common::config(Durability::Strict) };
    {
        let store = Store::open(&dir, first.clone()).unwrap();
        let mut b = Batch::new();
        for i in 0..MAX_TREES {
            b.put(doc(&format!("c{i:03}"), "id"), b"v".to_vec());
        }
        b.put(doc("dp", "a"), b"o".to_vec());
        for id in ["a", "b", "c", "d", "e"] {
            b.put(doc("dq", id), b"q".to_vec());
        }
        store.commit(b).unwrap().revision().unwrap();
        store.checkpoint().unwrap();
        store.delete(doc("c000", "id")).unwrap();
        store.checkpoint().unwrap();
        store.close().unwrap();
    }
    // Reopened: `c000`'s emptied tree is dropped, one place is free.
    let later = StoreConfig { tombstone_purge_threshold: 6, ..common::config(Durability::Strict) };
    let store = Store::open(&dir, later).unwrap();
    let mut b = Batch::new();
    for id in ["a", "b", "c", "d", "e"] {
        b.delete(doc("dq", id));
    }
    store.commit(b).unwrap().revision().unwrap();
    store.checkpoint().unwrap(); // applied; 5 deletes: no purge yet
    let snapshot = store.snapshot().unwrap();
    let mut iter = snapshot.iter(Bound::Included(&doc("dp", "")[..]), Bound::Unbounded).unwrap();
    assert_eq!(iter.next().unwrap().unwrap().0, doc("dp", "a"));
    store.delete(doc("c001", "id")).unwrap();
    store.checkpoint().unwrap(); // the sixth delete: a purge up to the snapshot
    store.put(doc("dq", "z"), b"new".to_vec()).unwrap();
    store.checkpoint().unwrap(); // `dq` gets the free tree
    let rest: Vec<_> = iter.collect();
    for item in &rest {
        assert!(item.is_ok(), "a snapshot read of a healthy store failed: {:?}", item.as_ref().err());
    }
    assert!(rest.is_empty(), "`dq` had no live key at the snapshot");
    drop(snapshot);
    store.close().unwrap();
}

// ---------------------------------------------------------------------------
// A model test across more prefixes than trees.
// ---------------------------------------------------------------------------

/// Keys around the boundaries the layout makes: collection names that are
/// prefixes of each other (`u`, `users`, `users2`), bare prefixes, keys
/// with no NUL, the longest routed collection name (128 bytes) and one
/// byte longer, names with 0xff, the feed, and plain default-tree keys.
fn key_pool() -> Vec<Vec<u8>> {
    let long = "a".repeat(128);
    let too_long = "a".repeat(129);
    let mut names: Vec<String> = vec!["u".into(), "users".into(), "users2".into(), long, too_long];
    names.extend((0..6).map(|i| format!("k{i}")));
    let mut pool: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"c".to_vec(),
        b"cusers".to_vec(),
        b"d".to_vec(),
        b"d\0".to_vec(),
        b"d\0x".to_vec(),
        b"dusers".to_vec(),
        b"dusers\x01".to_vec(),
        b"dusers\xff".to_vec(),
        b"d\xff\0".to_vec(),
        b"d\xff\0\xff".to_vec(),
        b"d\xff\xff\0a".to_vec(),
        b"e".to_vec(),
        b"f".to_vec(),
        b"f\0".to_vec(),
        b"f\0\0\0\0\0\0\0\x01".to_vec(),
        b"f\xff\xff".to_vec(),
        b"F".to_vec(),
        b"g".to_vec(),
        b"u".to_vec(),
        b"u\0".to_vec(),
        b"v".to_vec(),
        b"x".to_vec(),
        b"\xff".to_vec(),
        b"\xff\xff\0".to_vec(),
    ];
    for n in &names {
        for tag in [b'd', b'u', b'x'] {
            let prefix = [&[tag][..], n.as_bytes(), b"\0"].concat();
            pool.push(prefix.clone());
            pool.push([&prefix[..], b"\0"].concat());
            pool.push([&prefix[..], b"a"].concat());
            pool.push([&prefix[..], b"a\0b"].concat());
            pool.push([&prefix[..], b"\xff"].concat());
            pool.push([&[tag][..], n.as_bytes()].concat());
            pool.push([&[tag][..], n.as_bytes(), b"\x01"].concat());
        }
    }
    pool.sort();
    pool.dedup();
    pool
}

/// The filler prefixes that take every tree place before the pool's keys
/// are written (so the pool's collections land partly in trees, partly in
/// the default tree).
fn filler(i: usize) -> Vec<u8> {
    doc(&format!("b{i:03}"), "id")
}

fn in_range(key: &[u8], start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    (match start {
        Bound::Included(s) => key >= s,
        Bound::Excluded(s) => key > s,
        Bound::Unbounded => true,
    }) && (match end {
        Bound::Included(e) => key <= e,
        Bound::Excluded(e) => key < e,
        Bound::Unbounded => true,
    })
}

/// A bound near one of the pool's keys: the key itself, the key with a
/// byte appended or its successor, or open.
fn random_bound(rng: &mut fastrand::Rng, pool: &[Vec<u8>]) -> Bound<Vec<u8>> {
    let key = pool[rng.usize(..pool.len())].clone();
    let key = match rng.u8(..4) {
        0 => key,
        1 => [&key[..], &[rng.u8(..)]].concat(),
        2 => aurora_storage::prefix_successor(&key).unwrap_or(key),
        _ => key[..rng.usize(..=key.len())].to_vec(),
    };
    match rng.u8(..5) {
        0 | 1 => Bound::Included(key),
        2 | 3 => Bound::Excluded(key),
        _ => Bound::Unbounded,
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn check_scans(s: &SledStore, model: &BTreeMap<Vec<u8>, Versioned>, rng: &mut fastrand::Rng, pool: &[Vec<u8>]) {
    for _ in 0..40 {
        let (start, end) = (random_bound(rng, pool), random_bound(rng, pool));
        let (start, end) = (as_ref(&start), as_ref(&end));
        let expected: Vec<(Vec<u8>, Versioned)> =
            model.iter().filter(|(k, _)| in_range(k, start, end)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let got: Vec<_> = s.scan(start, end).map(Result::unwrap).collect();
        assert!(got == expected, "scan {start:?}..{end:?}: {} keys, expected {}", got.len(), expected.len());
        let mut rev: Vec<_> = s.scan_rev(start, end).map(Result::unwrap).collect();
        rev.reverse();
        assert!(rev == expected, "scan_rev {start:?}..{end:?}");
    }
    let all: Vec<_> = s.scan(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    assert!(all.iter().map(|(k, v)| (k, v)).eq(model.iter()), "the whole store differs from the model");
}

/// Random writes, deletes, purges (full and targeted) and reopens over keys
/// that fall on every boundary the layout makes, with every tree place
/// taken first (so some collections of the pool are in trees, the others in
/// the default tree, interleaved) and places freed at reopens; every scan
/// (random bounds, both directions) and every get equals the model.
#[test]
fn scans_with_more_prefixes_than_trees_equal_a_model() {
    let pool = key_pool();
    for round in 0..rounds() {
        let seed = 0x5EED_0000 + round as u64;
        let mut rng = fastrand::Rng::with_seed(seed);
        let dir = tempfile::tempdir().unwrap();
        let mut s = reopen(dir.path());
        let mut model: BTreeMap<Vec<u8>, Versioned> = BTreeMap::new();
        let mut revision = 1;
        // Take all but a few places (varied per round), then the pool.
        let fill = MAX_TREES - rng.usize(0..20);
        let fillers: Vec<_> = (0..fill).map(|i| (filler(i), live(revision, b"f"))).collect();
        apply(&s, &fillers);
        model.extend(fillers);
        for _step in 0..60 {
            match rng.u8(..10) {
                0..=4 => {
                    let mut batch = BTreeMap::new();
                    for _ in 0..rng.usize(1..12) {
                        revision += 1;
                        let key = pool[rng.usize(..pool.len())].clone();
                        let v = if rng.u8(..3) == 0 {
                            dead(revision)
                        } else {
                            live(revision, &vec![rng.u8(..); rng.usize(..4)])
                        };
                        batch.insert(key, v);
                    }
                    // Writes come in key order or not (the engine's are ordered; replay's per chunk).
                    let mut writes: Vec<_> = batch.clone().into_iter().collect();
                    if rng.bool() {
                        rng.shuffle(&mut writes);
                    }
                    apply(&s, &writes);
                    model.extend(batch);
                }
                5 => {
                    // Empty a few fillers (their trees go at the next open).
                    for _ in 0..rng.usize(1..4) {
                        revision += 1;
                        let k = filler(rng.usize(..fill));
                        apply(&s, &[(k.clone(), dead(revision))]);
                        model.insert(k, dead(revision));
                    }
                }
                6 => {
                    let horizon = rng.u64(0..=revision);
                    let removed = if rng.bool() {
                        let named: Vec<Vec<u8>> = model.keys().filter(|_| rng.bool()).cloned().collect();
                        let before = model.len();
                        model.retain(|k, v| !(v.value.is_none() && v.revision <= horizon && named.contains(k)));
                        let removed = s.purge_tombstones_of(&mut named.iter().map(Vec::as_slice), horizon).unwrap();
                        assert_eq!(removed, before - model.len(), "targeted purge at {horizon}");
                        removed
                    } else {
                        let before = model.len();
                        model.retain(|_, v| v.value.is_some() || v.revision > horizon);
                        let removed = s.purge_tombstones(horizon).unwrap();
                        assert_eq!(removed, before - model.len(), "full purge at {horizon}");
                        removed
                    };
                    let _ = removed;
                }
                7 => {
                    s.flush().unwrap();
                    drop(s);
                    s = reopen(dir.path());
                }
                _ => {
                    for _ in 0..8 {
                        let key = &pool[rng.usize(..pool.len())];
                        assert_eq!(s.get(key).unwrap().as_ref(), model.get(key), "get {key:?}");
                    }
                    check_scans(&s, &model, &mut rng, &pool);
                }
            }
        }
        check_scans(&s, &model, &mut rng, &pool);
        s.flush().unwrap();
        drop(s);
        let s = reopen(dir.path());
        check_scans(&s, &model, &mut rng, &pool);
        drop(s);
        let trees = raw(dir.path()).tree_names().len() - 1;
        assert!(trees <= MAX_TREES, "seed {seed:#x}: {trees} trees");
    }
}

// ---------------------------------------------------------------------------
// The cap, dropped trees and their re-creation.
// ---------------------------------------------------------------------------

/// The key space of `s` equals `model`; `zz` reads as one prefix; nothing
/// is misplaced (a full purge finds no misplaced key).
fn check_tree_model(s: &SledStore, model: &BTreeMap<Vec<u8>, Versioned>) {
    let all: Vec<_> = s.scan(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    assert!(all.iter().map(|(k, v)| (k, v)).eq(model.iter()));
    let zz = doc("zz", "");
    let end = aurora_storage::prefix_successor(&zz).unwrap();
    let got: Vec<_> = s.scan(Bound::Included(&zz), Bound::Excluded(&end)).map(|r| r.unwrap().0).collect();
    let expected: Vec<_> = model.keys().filter(|k| k.starts_with(&zz)).cloned().collect();
    assert_eq!(got, expected);
    for (k, v) in model {
        assert_eq!(s.get(k).unwrap().as_ref(), Some(v));
    }
    assert!(s.purge_tombstones(u64::MAX).is_ok(), "no key is misplaced");
}

/// A collection emptied, its tree dropped at open, and the collection
/// written again — in the same session as the drop, and across reopens;
/// the key space equals the model throughout, and the prefix that lived in
/// the default tree keeps living there (never split).
#[test]
fn a_dropped_tree_comes_back_and_a_default_tree_prefix_is_never_split() {
    let dir = tempfile::tempdir().unwrap();
    let past = vec![(doc("zz", "a"), live(1, b"z"))];
    let s = at_cap_with_one_free_place(dir.path(), &past);
    let mut model: BTreeMap<Vec<u8>, Versioned> = BTreeMap::new();
    for i in 1..MAX_TREES {
        model.insert(doc(&format!("c{i:03}"), "id"), live(1, b"v"));
    }
    model.insert(doc("zz", "a"), live(1, b"z"));
    // `zz` has keys in the default tree: a write keeps them there, even with room.
    apply(&s, &[(doc("zz", "b"), live(3, b"z2"))]);
    model.insert(doc("zz", "b"), live(3, b"z2"));
    // `c000` (its tree dropped at this open) is written again: it takes the place.
    apply(&s, &[(doc("c000", "again"), live(4, b"back"))]);
    model.insert(doc("c000", "again"), live(4, b"back"));
    // Emptied and refilled within one session.
    apply(&s, &[(doc("c005", "id"), dead(5))]);
    assert_eq!(s.purge_tombstones(5).unwrap(), 1);
    model.remove(&doc("c005", "id"));
    apply(&s, &[(doc("c005", "x"), live(6, b"refill"))]);
    model.insert(doc("c005", "x"), live(6, b"refill"));
    check_tree_model(&s, &model);
    s.flush().unwrap();
    let (s, trees) = s_tree_count(dir.path(), s);
    assert_eq!(trees, MAX_TREES, "c000 got its place back; zz stayed in the default tree");
    check_tree_model(&s, &model);
    // Every key of `zz` deleted and purged: now it may take a place.
    apply(&s, &[(doc("c009", "id"), dead(7))]);
    apply(&s, &[(doc("zz", "a"), dead(7)), (doc("zz", "b"), dead(7))]);
    assert_eq!(s.purge_tombstones(7).unwrap(), 3);
    model.remove(&doc("c009", "id"));
    model.remove(&doc("zz", "a"));
    model.remove(&doc("zz", "b"));
    s.flush().unwrap();
    drop(s);
    let s = reopen(dir.path()); // c009 dropped
    apply(&s, &[(doc("zz", "c"), live(8, b"tree"))]);
    model.insert(doc("zz", "c"), live(8, b"tree"));
    check_tree_model(&s, &model);
    s.flush().unwrap();
    let (s, trees) = s_tree_count(dir.path(), s);
    assert_eq!(trees, MAX_TREES);
    check_tree_model(&s, &model);
}

/// More prefixes than trees written in one `apply` whose writes are not in
/// key order: the cap holds, every key reads back, and the key space is in
/// order.
#[test]
fn the_cap_holds_with_unordered_writes_over_many_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let s = reopen(dir.path());
    let mut rng = fastrand::Rng::with_seed(17);
    let mut writes: Vec<_> = (0..(MAX_TREES + 60))
        .flat_map(|i| {
            let c = format!("c{i:04}");
            [
                (doc(&c, "a"), live(1, b"d")),
                ([&b"x"[..], c.as_bytes(), b"\0age\0\x10"].concat(), live(1, b"")),
                ([&b"u"[..], c.as_bytes(), b"\0mail\0m"].concat(), live(1, b"id")),
            ]
        })
        .collect();
    rng.shuffle(&mut writes);
    apply(&s, &writes);
    let model: BTreeMap<_, _> = writes.into_iter().collect();
    let all: Vec<_> = s.scan(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    assert!(all.iter().map(|(k, v)| (k, v)).eq(model.iter()));
    let mut rev: Vec<_> = s.scan_rev(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    rev.reverse();
    assert!(rev == all);
    s.flush().unwrap();
    let (s, trees) = s_tree_count(dir.path(), s);
    assert_eq!(trees, MAX_TREES);
    for (k, v) in &model {
        assert_eq!(s.get(k).unwrap().as_ref(), Some(v));
    }
}

// ---------------------------------------------------------------------------
// Damage.
// ---------------------------------------------------------------------------

/// Trees whose names the layout never makes — an empty collection part, a
/// collection part past 128 bytes, a key below a prefix, a feed with a
/// suffix — are `Corrupt` at open, never a panic.
#[test]
fn trees_with_names_the_layout_never_makes_are_corrupt_at_open() {
    let bad: [Vec<u8>; 6] = [
        b"d\0".to_vec(),
        [&b"d"[..], &[b'a'; 129], b"\0"].concat(),
        b"dusers\0\x02u1".to_vec(),
        b"fx".to_vec(),
        b"cusers".to_vec(),
        vec![0xff; 3],
    ];
    for name in bad {
        let dir = tempfile::tempdir().unwrap();
        drop(reopen(dir.path()));
        {
            let db = raw(dir.path());
            db.open_tree(&name).unwrap().insert(b"k", b"\x02\x01v").unwrap();
            db.flush().unwrap();
        }
        match SledStore::open(dir.path(), 1 << 20) {
            Err(StorageError::Corrupt { .. }) => {}
            Err(e) => panic!("{name:?}: {e}"),
            Ok(_) => panic!("{name:?}: opened"),
        }
    }
}

/// A damaged value inside a tree is `Corrupt` for a get and for scans in
/// both directions; a damaged layout marker (empty, two bytes, zero, a
/// future version) is a typed error at open.
#[test]
fn damaged_values_in_trees_and_damaged_markers_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = reopen(dir.path());
    apply(&s, &[(doc("users", "a"), live(1, b"v")), (b"f\0\0\0\0\0\0\0\x01".to_vec(), live(1, b"e"))]);
    s.flush().unwrap();
    drop(s);
    {
        let db = raw(dir.path());
        db.open_tree(b"dusers\0").unwrap().insert(b"\x02b", &[7u8, 1, 2][..]).unwrap();
        db.open_tree(b"f").unwrap().insert(b"\0", &[][..]).unwrap();
        db.flush().unwrap();
    }
    let s = reopen(dir.path());
    assert!(matches!(s.get(&doc("users", "b")), Err(StorageError::UnknownFormat { .. })));
    assert!(matches!(s.get(b"f\0"), Err(StorageError::Corrupt { .. })));
    let fwd: Vec<_> = s.scan(Bound::Unbounded, Bound::Unbounded).collect();
    assert!(fwd.iter().any(Result::is_err));
    let rev: Vec<_> = s.scan_rev(Bound::Unbounded, Bound::Unbounded).collect();
    assert!(rev.iter().any(Result::is_err));
    assert!(s.purge_tombstones(5).is_err());
    drop(s);
    // 3 and 4 are the packed layout's (`sled_store/layout.rs`): 5 is the
    // first version no build knows.
    for marker in [&[][..], &[2, 2][..], &[0][..], &[5][..], &[255][..]] {
        raw(dir.path()).insert(b"\x00layout", marker).unwrap();
        match SledStore::open(dir.path(), 1 << 20) {
            Err(StorageError::Corrupt { .. } | StorageError::UnknownFormat { .. }) => {}
            Err(e) => panic!("marker {marker:?}: {e}"),
            Ok(_) => panic!("marker {marker:?}: opened"),
        }
    }
}

/// Review finding 2, settled as documented (ARCHITECTURE.md, "The layout
/// in sled"): a key left in the default tree although its prefix has a
/// tree (only damage puts it there) is reported as `Corrupt` by every scan
/// over it — the full-store scans of `aurora check` and of online backup
/// among them — while a point read consults only the prefix's tree and
/// does not see it. Looking in the default tree on every miss would double
/// the cost of the reads that miss (unique-claim checks on each insert).
#[test]
fn a_misplaced_key_is_reported_by_scans_and_unseen_by_point_reads() {
    let dir = tempfile::tempdir().unwrap();
    let s = reopen(dir.path());
    apply(&s, &[(doc("users", "a"), live(1, b"v"))]);
    s.flush().unwrap();
    drop(s);
    {
        let db = raw(dir.path());
        // The compact value encoding: [2][revision LEB128][bytes].
        db.insert([&[1u8][..], &doc("users", "b")].concat(), &[2u8, 2, b'w'][..]).unwrap();
        db.flush().unwrap();
    }
    let s = reopen(dir.path());
    let scanned: Vec<_> = s.scan(Bound::Unbounded, Bound::Unbounded).collect();
    assert!(scanned.iter().any(|r| matches!(r, Err(StorageError::Corrupt { .. }))), "scans see the damage");
    assert_eq!(s.get(&doc("users", "b")).unwrap(), None, "a point read looks in the prefix's tree only");
    assert_eq!(s.get(&doc("users", "a")).unwrap(), Some(live(1, b"v")));
}

// ---------------------------------------------------------------------------
// Readers against writers, purges and trees coming and going.
// ---------------------------------------------------------------------------

/// Snapshot iterators and plain range scans run while a writer fills and
/// empties collections on both sides of the tree cap and checkpoints purge
/// tombstones every few milliseconds: every read is `Ok`, in strictly
/// ascending (or descending) key order, and a snapshot read twice gives
/// the same answer; the store is reopened every second (dropping the trees
/// emptied meanwhile). Sized by `AURORA_SLED_TREES_ROUNDS` (seconds of
/// load, default 3).
///
/// REVIEW FINDING 1 in a plain workload (no hand-placed timing): the slow
/// snapshot reader failed with `Corrupt { key: "dc2NN\0\x02b", reason: "a
/// key in sled's default tree that belongs in the tree of its prefix" }`
/// in 3 of about 12 runs on a loaded 2-core machine (timing-dependent: the
/// deterministic reproductions are the two tests above), while the store
/// on disk was healthy (the checks after the load pass). Correct: every
/// read is `Ok`.
#[test]
fn readers_never_fail_while_writers_purge_and_trees_come_and_go() {
    const PAST_CAP: usize = 60;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let config = StoreConfig {
        tombstone_purge_threshold: 5,
        checkpoint_interval: Duration::from_millis(5),
        sync_interval: Duration::from_millis(2),
        ..common::config(Durability::Balanced)
    };
    // Take every tree place, then reopen with places freed (emptied trees dropped).
    {
        let store = Store::open(&dir, StoreConfig { tombstone_purge_threshold: 1, ..config.clone() }).unwrap();
        let mut b = Batch::new();
        for i in 0..(MAX_TREES + PAST_CAP) {
            b.put(doc(&format!("c{i:03}"), "id"), b"v".to_vec());
        }
        store.commit(b).unwrap().revision().unwrap();
        store.checkpoint().unwrap();
        for i in (0..MAX_TREES).step_by(8) {
            store.delete(doc(&format!("c{i:03}"), "id")).unwrap();
        }
        store.checkpoint().unwrap();
        store.close().unwrap();
    }
    let mut failures = Vec::new();
    for round in 0..rounds() {
        // Each reopen drops the trees emptied meanwhile: places for the prefixes past the cap.
        let store = Store::open(&dir, config.clone()).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(7);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Mostly collections past the cap (in the default tree), which
                    // take a freed place once every key of theirs is purged.
                    let c = format!("c{:03}", MAX_TREES + rng.usize(..PAST_CAP));
                    let mut b = Batch::new();
                    if rng.bool() {
                        for id in ["a", "b", "c", "id"] {
                            b.delete(doc(&c, id));
                        }
                    } else {
                        for id in ["a", "b", "c"] {
                            b.put(doc(&c, id), vec![rng.u8(..); 3]);
                        }
                    }
                    store.commit(b).unwrap().revision().unwrap();
                }
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (store, stop) = (store.clone(), stop.clone());
                std::thread::spawn(move || -> Result<u64, StorageError> {
                    let mut reads = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let snapshot = store.snapshot().unwrap();
                        let start = doc(&format!("c{:03}", MAX_TREES - 10), "");
                        let first: Vec<_> = if r == 0 {
                            // Slowly: the writer and the purges get in between the items.
                            let iter = snapshot.iter(Bound::Included(&start[..]), Bound::Unbounded).unwrap();
                            iter.inspect(|_| std::thread::sleep(Duration::from_micros(100)))
                                .collect::<Result<Vec<_>, _>>()?
                        } else {
                            let mut v: Vec<_> = snapshot
                                .iter_rev(Bound::Included(&start[..]), Bound::Unbounded)?
                                .collect::<Result<Vec<_>, _>>()?;
                            v.reverse();
                            v
                        };
                        assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "keys out of order");
                        std::thread::sleep(Duration::from_micros(200));
                        let again: Vec<_> = snapshot
                            .iter(Bound::Included(&start[..]), Bound::Unbounded)?
                            .collect::<Result<Vec<_>, _>>()?;
                        assert!(first == again, "a snapshot read twice differs");
                        let plain: Vec<_> = store
                            .range(Bound::Included(&start[..]), Bound::Unbounded)?
                            .collect::<Result<Vec<_>, _>>()?;
                        assert!(plain.windows(2).all(|w| w[0].0 < w[1].0));
                        reads += 1;
                    }
                    Ok(reads)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        let results: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        store.close().unwrap();
        failures.extend(results.into_iter().filter_map(Result::err).map(|e| format!("round {round}: {e}")));
    }
    // The store itself is healthy: no key is out of place on disk.
    let cold = reopen(&dir.join("cold"));
    assert!(cold.scan(Bound::Unbounded, Bound::Unbounded).all(|r| r.is_ok()), "a key really is misplaced");
    assert!(cold.purge_tombstones(0).is_ok(), "a key really is misplaced");
    drop(cold);
    assert!(failures.is_empty(), "reads of a healthy store failed: {failures:?}");
}
