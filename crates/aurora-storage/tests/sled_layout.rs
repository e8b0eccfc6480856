//! The sled backend's layout of sled trees (`cold/sled_store.rs`):
//!
//! - a database written before it (every key in sled's default tree) —
//!   the checked-in fixture `fixtures/layout1`, written by commit 7dd5798
//!   with `fixtures/layout1/generator.rs.txt` — opens and reads the same;
//! - a process killed with SIGKILL at any moment while an open moves such
//!   a database into trees leaves one that opens and converges;
//! - scans that cross tree boundaries, forwards and backwards, with gets,
//!   purges and reopens among the writes, equal a `BTreeMap` model.
//!
//! Sized by `AURORA_CRASH_ROUNDS` (default 4) and `AURORA_PROPTEST_CASES`
//! (default 24).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::cold::SledStore;
use aurora_storage::{Batch, ColdStore, Durability, Store, Versioned};
use aurora_testkit::crash::{jitter, CrashTest};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::time::Duration;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// What the fixture's generator committed: (key, revision, value).
fn fixture_model() -> BTreeMap<Vec<u8>, (u64, Vec<u8>)> {
    let mut model = BTreeMap::new();
    for i in 0..40u64 {
        let r = i + 1;
        model.insert(format!("dusers\0\x02u{i:03}").into_bytes(), (r, format!("doc-{i}").into_bytes()));
        model.insert(format!("xusers\0age\0{:02}u{i:03}", i % 7).into_bytes(), (r, Vec::new()));
        model.insert(format!("uusers\0email\0u{i:03}@x").into_bytes(), (r, format!("u{i:03}").into_bytes()));
        model.insert(format!("dorders\0\x02o{i:03}").into_bytes(), (r, format!("order-{i}").into_bytes()));
        model.insert([&b"f"[..], &r.to_be_bytes()].concat(), (r, format!("feed-{i}").into_bytes()));
    }
    model.insert(b"cusers".to_vec(), (41, b"definition".to_vec()));
    model.insert(b"F".to_vec(), (41, b"floor".to_vec()));
    model.insert(b"vdusers\0\x02u001\0\0\0\0\0\0\0\x05".to_vec(), (41, b"archived".to_vec()));
    model.remove(&b"dusers\0\x02u005"[..]);
    model.remove(&b"dorders\0\x02o007"[..]);
    model
}

fn check_store(store: &Store, model: &BTreeMap<Vec<u8>, (u64, Vec<u8>)>) {
    let all: Vec<(Vec<u8>, Vec<u8>)> = store.scan_prefix(b"").unwrap().map(Result::unwrap).collect();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, (_, v))| (k.clone(), v.clone())).collect();
    assert_eq!(all, expected);
    for (k, (r, v)) in model {
        assert_eq!(store.get_versioned(k).unwrap(), Some((*r, v.clone())), "{}", String::from_utf8_lossy(k));
    }
    let users: Vec<_> = store.scan_prefix(b"dusers\0").unwrap().map(|kv| kv.unwrap().0).collect();
    assert_eq!(users.len(), 39);
}

#[test]
fn a_database_in_the_first_layout_opens_and_reads_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layout1"), &dir);
    let mut model = fixture_model();
    let store = Store::open(&dir, common::config(Durability::Strict)).unwrap();
    check_store(&store, &model);
    // It goes on in the new layout.
    let mut b = Batch::new();
    b.put(b"dusers\0\x02u100".to_vec(), b"new".to_vec());
    b.delete(b"dorders\0\x02o000".to_vec());
    b.put(b"dinvoices\0\x02i1".to_vec(), b"invoice".to_vec());
    let revision = store.commit(b).unwrap().revision().unwrap();
    assert_eq!(revision, 42, "the revisions go on from the fixture's");
    model.insert(b"dusers\0\x02u100".to_vec(), (42, b"new".to_vec()));
    model.insert(b"dinvoices\0\x02i1".to_vec(), (42, b"invoice".to_vec()));
    model.remove(&b"dorders\0\x02o000"[..]);
    store.close().unwrap();
    let store = Store::open(&dir, common::config(Durability::Strict)).unwrap();
    let all: Vec<Vec<u8>> = store.scan_prefix(b"").unwrap().map(|kv| kv.unwrap().0).collect();
    assert_eq!(all, model.keys().cloned().collect::<Vec<_>>());
    assert_eq!(store.get(b"dusers\0\x02u100").unwrap(), Some(b"new".to_vec()));
    store.close().unwrap();
}

const MOVE_CRASH: CrashTest = CrashTest::new("move_crash_child_entry", "AURORA_LAYOUT_MOVE_CRASH_DIR");
const MOVED_KEYS: u64 = 30_000;

fn legacy_key(i: u64) -> Vec<u8> {
    match i % 5 {
        0 | 1 => format!("dusers\0\x02u{i:08}").into_bytes(),
        2 => format!("dorders\0\x02o{i:08}").into_bytes(),
        3 => format!("xusers\0age\0{:04}{i:08}", i % 90).into_bytes(),
        _ => [&b"f"[..], &i.to_be_bytes()].concat(),
    }
}

/// A stored value: the first layout's `[1][revision: u64][kind][bytes]`
/// for even revisions, the compact `[2][revision: LEB128][bytes]` else.
fn legacy_value(revision: u64, body: &[u8]) -> Vec<u8> {
    let mut out = if revision.is_multiple_of(2) {
        [&[1u8][..], &revision.to_be_bytes(), &[1u8]].concat()
    } else {
        let mut out = vec![2u8];
        let mut n = revision;
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out
    };
    out.extend_from_slice(body);
    out
}

/// A cold store in the first layout: every key in sled's default tree
/// under `0x01`, the checkpoint under `0x00 "checkpoint"`.
fn write_first_layout(cold: &Path) -> BTreeMap<Vec<u8>, Versioned> {
    let db = sled::Config::new().path(cold).flush_every_ms(None).open().unwrap();
    let mut model = BTreeMap::new();
    for i in 0..MOVED_KEYS {
        let key = legacy_key(i);
        let body = format!("value-{i}").into_bytes();
        db.insert([&[1u8][..], &key].concat(), legacy_value(i + 1, &body)).unwrap();
        model.insert(key, Versioned { revision: i + 1, value: Some(body) });
    }
    for (key, body) in [(&b"cusers"[..], &b"catalog"[..]), (b"F", b"floor")] {
        db.insert([&[1u8][..], key].concat(), legacy_value(7, body)).unwrap();
        model.insert(key.to_vec(), Versioned { revision: 7, value: Some(body.to_vec()) });
    }
    db.insert(b"\x00checkpoint", &MOVED_KEYS.to_be_bytes()).unwrap();
    db.flush().unwrap();
    model
}

/// Runs only inside the child: opens the store (which moves it) until killed.
#[test]
fn move_crash_child_entry() {
    let Some(dir) = MOVE_CRASH.child_dir() else { return };
    println!("ready");
    let store = SledStore::open(&dir, 8 << 20).unwrap();
    println!("opened");
    drop(store);
    std::thread::sleep(Duration::from_secs(3600));
}

#[test]
fn a_kill_during_the_move_into_trees_leaves_a_database_that_converges() {
    if MOVE_CRASH.is_child() {
        return;
    }
    for _ in 0..MOVE_CRASH.rounds(4) {
        let tmp = tempfile::tempdir().unwrap();
        let cold = tmp.path().join("cold");
        let model = write_first_layout(&cold);
        // A few kills in a row on one folder, each at a varied moment of
        // the move (or of the open around it), then an open that finishes.
        for _ in 0..3 {
            MOVE_CRASH.spawn(&cold).kill_after(jitter(1200));
        }
        let store = SledStore::open(&cold, 8 << 20).unwrap();
        assert_eq!(store.checkpoint().unwrap(), MOVED_KEYS);
        let all: BTreeMap<Vec<u8>, Versioned> =
            store.scan(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
        assert_eq!(all.len(), model.len());
        assert!(all == model, "the moved store differs from what the first layout held");
        let rev: Vec<Vec<u8>> = store.scan_rev(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap().0).collect();
        assert!(rev.iter().rev().eq(model.keys()));
        for i in (0..MOVED_KEYS).step_by(997) {
            assert_eq!(store.get(&legacy_key(i)).unwrap().as_ref(), model.get(&legacy_key(i)));
        }
    }
}

/// Keys spread over the default tree and several trees, with keys just
/// around the trees' boundaries.
const KEYS: [&[u8]; 16] = [
    b"",
    b"c",
    b"d",
    b"dA",
    b"dA\0",
    b"dA\0a",
    b"dA\0b",
    b"dA\x01",
    b"dB\0a",
    b"e",
    b"f",
    b"f\0",
    b"f\xff",
    b"u\0a",
    b"uA\0a",
    b"xA\0\xff",
];

#[derive(Debug, Clone)]
enum Op {
    /// (key, revision-tagged value or a tombstone).
    Apply(Vec<(u8, Option<u8>)>),
    Get(u8),
    /// A scan from one key to another, each bound included, excluded or
    /// open; forwards or backwards.
    Scan {
        lo: (u8, u8),
        hi: (u8, u8),
        reverse: bool,
    },
    Purge(bool),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => proptest::collection::vec((any::<u8>(), proptest::option::of(any::<u8>())), 1..6).prop_map(Op::Apply),
        2 => any::<u8>().prop_map(Op::Get),
        5 => ((any::<u8>(), 0u8..3), (any::<u8>(), 0u8..3), any::<bool>())
            .prop_map(|(lo, hi, reverse)| Op::Scan { lo, hi, reverse }),
        1 => any::<bool>().prop_map(Op::Purge),
        1 => Just(Op::Reopen),
    ]
}

fn bound(k: u8, kind: u8) -> Bound<&'static [u8]> {
    let key = KEYS[usize::from(k) % KEYS.len()];
    match kind {
        0 => Bound::Included(key),
        1 => Bound::Excluded(key),
        _ => Bound::Unbounded,
    }
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

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]

    #[test]
    fn scans_across_tree_boundaries_equal_a_model(ops in proptest::collection::vec(op(), 1..40)) {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = Some(SledStore::open(tmp.path(), 1 << 20).unwrap());
        let mut model: BTreeMap<Vec<u8>, Versioned> = BTreeMap::new();
        let mut revision = 0u64;
        for op in ops {
            let s = store.as_ref().unwrap();
            match op {
                Op::Apply(writes) => {
                    let mut batch = BTreeMap::new();
                    for (k, v) in writes {
                        revision += 1;
                        let key = KEYS[usize::from(k) % KEYS.len()].to_vec();
                        batch.insert(key, Versioned { revision, value: v.map(|v| vec![v; usize::from(v % 5)]) });
                    }
                    s.apply(&mut batch.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
                    model.extend(batch);
                }
                Op::Get(k) => {
                    let key = KEYS[usize::from(k) % KEYS.len()];
                    let got = s.get(key).unwrap();
                    prop_assert_eq!(got.as_ref(), model.get(key));
                }
                Op::Scan { lo, hi, reverse } => {
                    let (start, end) = (bound(lo.0, lo.1), bound(hi.0, hi.1));
                    let mut expected: Vec<(Vec<u8>, Versioned)> = model
                        .iter()
                        .filter(|(k, _)| in_range(k, start, end))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    let got: Vec<(Vec<u8>, Versioned)> = if reverse {
                        expected.reverse();
                        s.scan_rev(start, end).map(Result::unwrap).collect()
                    } else {
                        s.scan(start, end).map(Result::unwrap).collect()
                    };
                    prop_assert_eq!(got, expected, "{:?}..{:?} reverse {}", start, end, reverse);
                }
                Op::Purge(targeted) => {
                    let horizon = revision / 2;
                    let removed = if targeted {
                        let keys: Vec<&[u8]> = KEYS.to_vec();
                        s.purge_tombstones_of(&mut keys.into_iter(), horizon).unwrap()
                    } else {
                        s.purge_tombstones(horizon).unwrap()
                    };
                    let before = model.len();
                    model.retain(|_, v| v.value.is_some() || v.revision > horizon);
                    prop_assert_eq!(removed, before - model.len());
                }
                Op::Reopen => {
                    s.flush().unwrap();
                    drop(store.take());
                    store = Some(SledStore::open(tmp.path(), 1 << 20).unwrap());
                }
            }
        }
    }
}
