//! Hostile review of the move of a first-layout sled database (every key
//! in sled's default tree) into sled trees (branch s8-disk): more
//! prefixes than `MAX_TREES`, a WAL holding records past the checkpoint
//! that must replay into the new layout, SIGKILL of a real child at
//! moments spread over the move (and the replay and checkpoint after it),
//! and damaged layout markers.
//!
//! Sized by `AURORA_CRASH_ROUNDS` (default 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::cold::SledStore;
use aurora_storage::{Batch, ColdStore, Durability, Store, Versioned};
use aurora_testkit::crash::{jitter, CrashTest};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::time::{Duration, Instant};

const MAX_TREES: usize = 256;

type Model = BTreeMap<Vec<u8>, Versioned>;

/// sled itself at `path`, retrying while a dropped store's lock is released.
fn raw(path: &Path) -> sled::Db {
    aurora_testkit::raw_sled::open(path)
}

/// A value in the first layout: `[1][revision: u64 BE][kind][bytes]`.
fn first_layout_value(v: &Versioned) -> Vec<u8> {
    let mut out = vec![1u8];
    out.extend_from_slice(&v.revision.to_be_bytes());
    out.push(u8::from(v.value.is_some()));
    out.extend_from_slice(v.value.as_deref().unwrap_or(&[]));
    out
}

/// Writes `model` as the first layout did into a new sled database at
/// `cold`, with the checkpoint revision `checkpoint`.
fn write_first_layout(cold: &Path, model: &Model, checkpoint: u64) {
    let db = raw(cold);
    for (k, v) in model {
        db.insert([&[1u8][..], k].concat(), first_layout_value(v)).unwrap();
    }
    db.insert(b"\x00checkpoint", &checkpoint.to_be_bytes()).unwrap();
    db.flush().unwrap();
}

fn tree_count(cold: &Path) -> usize {
    raw(cold).tree_names().len() - 1
}

fn collection(i: usize) -> String {
    format!("col{i:04}")
}

/// Keys of one collection: documents, index entries, a unique claim.
fn keys_of(i: usize, n: usize) -> Vec<Vec<u8>> {
    let c = collection(i);
    let mut keys = Vec::new();
    for j in 0..n {
        keys.push([&b"d"[..], c.as_bytes(), b"\0\x02", format!("id{j:05}").as_bytes()].concat());
        keys.push(
            [&b"x"[..], c.as_bytes(), b"\0age\0", &[(j % 7) as u8 + 0x10], format!("id{j:05}").as_bytes()].concat(),
        );
    }
    keys.push([&b"u"[..], c.as_bytes(), b"\0mail\0", c.as_bytes()].concat());
    keys.push([&b"c"[..], c.as_bytes()].concat());
    keys
}

fn check_cold(s: &SledStore, model: &Model) {
    let all: Vec<_> = s.scan(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    assert_eq!(all.len(), model.len());
    assert!(all.iter().map(|(k, v)| (k, v)).eq(model.iter()), "the moved store differs from the model");
    let mut rev: Vec<_> = s.scan_rev(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    rev.reverse();
    assert!(rev == all);
    for (k, v) in model.iter().step_by(7) {
        assert_eq!(s.get(k).unwrap().as_ref(), Some(v));
    }
}

/// A first-layout database of 300 collections (900 tree-worthy prefixes,
/// interleaved with catalog keys and feed entries, tombstones among them)
/// moves into exactly `MAX_TREES` trees, the rest staying in the default
/// tree; it reads the same, takes writes to prefixes on both sides of the
/// cap afterwards, and reads the same after reopens.
#[test]
fn a_first_layout_with_more_prefixes_than_trees_moves_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let mut revision = 0;
    for i in 0..300 {
        for k in keys_of(i, 3) {
            revision += 1;
            let value = if revision % 11 == 0 { None } else { Some(format!("v{revision}").into_bytes()) };
            model.insert(k, Versioned { revision, value });
        }
        revision += 1;
        model.insert([&b"f"[..], &(revision).to_be_bytes()].concat(), Versioned { revision, value: Some(vec![7]) });
    }
    write_first_layout(dir.path(), &model, revision);
    let s = SledStore::open(dir.path(), 4 << 20).unwrap();
    assert_eq!(s.checkpoint().unwrap(), revision);
    check_cold(&s, &model);
    // Writes on both sides of the cap: the first collection (in a tree), the last (past the cap).
    let mut more = Model::new();
    for i in [0, 299] {
        for k in keys_of(i, 5) {
            revision += 1;
            more.insert(k, Versioned { revision, value: Some(b"later".to_vec()) });
        }
    }
    s.apply(&mut more.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
    model.extend(more);
    check_cold(&s, &model);
    assert_eq!(s.purge_tombstones(revision).unwrap(), model.values().filter(|v| v.value.is_none()).count());
    model.retain(|_, v| v.value.is_some());
    s.flush().unwrap();
    drop(s);
    assert_eq!(tree_count(dir.path()), MAX_TREES);
    let s = SledStore::open(dir.path(), 4 << 20).unwrap();
    check_cold(&s, &model);
}

/// Damaged or lost layout markers on a database already in the tree layout
/// (some of its prefixes in the default tree, past the cap, with free
/// places after a reopen dropped emptied trees): a lost marker (as if the
/// move had never run) or `copied` (as if it stopped before removing) must
/// move nothing wrongly — the store reads the same.
#[test]
fn a_lost_or_rewound_layout_marker_on_a_tree_database_changes_nothing() {
    for marker in [None, Some(1u8), Some(2u8)] {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::new();
        let s = SledStore::open(dir.path(), 4 << 20).unwrap();
        let mut revision = 0;
        for i in 0..(MAX_TREES + 20) {
            for k in keys_of(i, 1).into_iter().take(1) {
                revision += 1;
                model.insert(k, Versioned { revision, value: Some(b"v".to_vec()) });
            }
        }
        s.apply(&mut model.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        // Empty ten collections that have trees.
        let emptied: Vec<Vec<u8>> = model.keys().take(10).cloned().collect();
        revision += 1;
        let dels: Vec<_> = emptied.iter().map(|k| (k.clone(), Versioned { revision, value: None })).collect();
        s.apply(&mut dels.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        assert_eq!(s.purge_tombstones(revision).unwrap(), 10);
        for k in &emptied {
            model.remove(k);
        }
        s.flush().unwrap();
        drop(s);
        drop(SledStore::open(dir.path(), 4 << 20).unwrap()); // drops the emptied trees
        {
            let db = raw(dir.path());
            match marker {
                None => drop(db.remove(b"\x00layout").unwrap()),
                Some(m) => drop(db.insert(b"\x00layout", &[m]).unwrap()),
            }
            db.flush().unwrap();
        }
        let s = SledStore::open(dir.path(), 4 << 20).unwrap();
        check_cold(&s, &model);
        assert!(s.purge_tombstones(revision).is_ok(), "marker {marker:?}: nothing misplaced");
        drop(s);
        assert!(tree_count(dir.path()) <= MAX_TREES);
        let s = SledStore::open(dir.path(), 4 << 20).unwrap();
        check_cold(&s, &model);
    }
}

// ---------------------------------------------------------------------------
// A first-layout database with a WAL past its checkpoint.
// ---------------------------------------------------------------------------

/// What the store holds at a revision, as (revision, value) per live key.
type Live = BTreeMap<Vec<u8>, (u64, Vec<u8>)>;

/// Builds, under `root/template`, a database whose cold store is in the
/// first layout (checkpoint `n`) and whose WAL holds the commits after `n`
/// (written by the store while open, copied as a killed process leaves
/// it). Returns what the store must hold after recovery.
fn first_layout_with_wal(root: &Path, collections: usize, per: usize) -> Live {
    let live_dir = root.join("live");
    let template = root.join("template");
    let config = common::config(Durability::Strict);
    let mut cold_model = Model::new();
    let mut live = Live::new();
    // Phase 1: commits up to the checkpoint (their cold-store image is written by hand below).
    let store = Store::open(&live_dir, config.clone()).unwrap();
    for i in 0..collections {
        let mut b = Batch::new();
        let keys = keys_of(i, per);
        for k in &keys {
            b.put(k.clone(), format!("c{i}").into_bytes());
        }
        b.delete(keys[0].clone());
        let r = store.commit(b).unwrap().revision().unwrap();
        for k in &keys[1..] {
            cold_model.insert(k.clone(), Versioned { revision: r, value: Some(format!("c{i}").into_bytes()) });
            live.insert(k.clone(), (r, format!("c{i}").into_bytes()));
        }
        cold_model.insert(keys[0].clone(), Versioned { revision: r, value: None });
        live.remove(&keys[0]);
    }
    store.close().unwrap();
    let n = cold_model.values().map(|v| v.revision).max().unwrap();
    // Phase 2: more commits, only in the WAL (no checkpoint), copied while open.
    let store = Store::open(&live_dir, config).unwrap();
    for i in (0..collections).step_by(3) {
        let mut b = Batch::new();
        let keys = keys_of(i, per);
        b.put(keys[0].clone(), b"revived".to_vec());
        b.delete(keys[2].clone());
        b.put(keys_of(collections + i, 1)[0].clone(), b"new collection".to_vec());
        b.put_at_revision(b"f".to_vec(), b"feed".to_vec());
        let r = store.commit(b).unwrap().revision().unwrap();
        live.insert(keys[0].clone(), (r, b"revived".to_vec()));
        live.remove(&keys[2]);
        live.insert(keys_of(collections + i, 1)[0].clone(), (r, b"new collection".to_vec()));
        live.insert(aurora_storage::revision_key(b"f", r), (r, b"feed".to_vec()));
    }
    common::copy_dir(&live_dir, &template);
    store.close().unwrap();
    // The cold store as the first layout held it at checkpoint `n`.
    std::fs::remove_dir_all(template.join("cold")).unwrap();
    write_first_layout(&template.join("cold"), &cold_model, n);
    live
}

fn check_store(store: &Store, live: &Live) {
    let all = common::dump(store);
    assert_eq!(all.len(), live.len());
    assert!(all.iter().map(|(k, v)| (k, v)).eq(live.iter().map(|(k, (_, v))| (k, v))), "the store differs");
    for (k, (r, v)) in live.iter().step_by(5) {
        assert_eq!(store.get_versioned(k).unwrap(), Some((*r, v.clone())));
    }
}

/// The WAL's records past the checkpoint of a first-layout database replay
/// into the tree layout (documents, deletes of keys the cold store holds,
/// new collections past the cap, feed entries), and the store reads the same
/// after a reopen.
#[test]
fn a_wal_past_the_checkpoint_of_a_first_layout_database_replays_into_trees() {
    let root = tempfile::tempdir().unwrap();
    let live = first_layout_with_wal(root.path(), 300, 2);
    let dir = root.path().join("template");
    let store = Store::open(&dir, common::config(Durability::Strict)).unwrap();
    assert!(store.recovery_report().replayed > 0, "the WAL held records past the checkpoint");
    check_store(&store, &live);
    store.close().unwrap();
    assert_eq!(tree_count(&dir.join("cold")), MAX_TREES);
    let store = Store::open(&dir, common::config(Durability::Strict)).unwrap();
    check_store(&store, &live);
    store.close().unwrap();
}

const OPEN_CRASH: CrashTest = CrashTest::new("open_crash_child_entry", "AURORA_REVIEW_MIGRATION_CRASH_DIR");

/// Runs only inside the child: opens the store (move, replay, checkpoint)
/// until killed.
#[test]
fn open_crash_child_entry() {
    let Some(dir) = OPEN_CRASH.child_dir() else { return };
    println!("ready");
    let store = Store::open(&dir, common::config(Durability::Strict)).unwrap();
    println!("opened");
    drop(store);
    std::thread::sleep(Duration::from_secs(3600));
}

/// SIGKILL at moments spread over a whole open of a first-layout database
/// with a WAL past its checkpoint and more prefixes than trees — the move
/// (copy, flush, marks, removal), the drop of empty trees, the replay into
/// trees, the checkpoint and the WAL's trim — several times on one folder:
/// the next open converges to exactly what was committed.
#[test]
fn kills_during_an_upgrading_open_with_a_wal_converge() {
    if OPEN_CRASH.is_child() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let live = first_layout_with_wal(root.path(), 320, 40);
    let template = root.path().join("template");
    // How long an undisturbed open takes here (the kills spread over it).
    let timing = root.path().join("timing");
    common::copy_dir(&template, &timing);
    let started = Instant::now();
    drop(Store::open(&timing, common::config(Durability::Strict)).unwrap());
    let span = started.elapsed().as_millis() as u64 + 200;
    for round in 0..OPEN_CRASH.rounds(3) {
        let dir = root.path().join(format!("round{round}"));
        common::copy_dir(&template, &dir);
        for _ in 0..3 {
            OPEN_CRASH.spawn(&dir).kill_after(jitter(span));
        }
        let store = Store::open(&dir, common::config(Durability::Strict)).unwrap();
        check_store(&store, &live);
        store.close().unwrap();
        assert!(tree_count(&dir.join("cold")) <= MAX_TREES);
    }
}

// ---------------------------------------------------------------------------
// Memory of a big move.
// ---------------------------------------------------------------------------

/// The process's peak and current resident memory, in KiB (Linux).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

const BIG_MOVE_VAR: &str = "AURORA_REVIEW_BIG_MOVE_DIR";

/// Runs only as the child of the big move test: opens (moves) the store and
/// prints its memory before and after.
#[test]
fn big_move_child_entry() {
    let Some(dir) = std::env::var_os(BIG_MOVE_VAR) else { return };
    let before = memory_kib();
    let store = SledStore::open(Path::new(&dir), 8 << 20).unwrap();
    let after = memory_kib();
    println!("memory {} {} {}", before.1, after.0, after.1);
    drop(store);
}

/// Keys of the big move: `AURORA_REVIEW_BIG_MOVE_KEYS` (default 120 000).
fn big_move_keys() -> u64 {
    std::env::var("AURORA_REVIEW_BIG_MOVE_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(120_000)
}

/// A first-layout database much larger than the cache (the default: 120 000
/// keys of 300 bytes, ~75 MiB of sled files, against an 8 MiB cache) moves
/// into trees in a fresh process whose peak resident memory stays bounded:
/// it must not grow with the database (measured: 38 MiB of files +51 MiB,
/// 171 MiB of files +63 MiB — sled's per-page bookkeeping).
#[test]
fn a_big_first_layout_moves_within_bounded_memory() {
    if std::env::var_os(BIG_MOVE_VAR).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let n = big_move_keys();
    {
        let db = raw(dir.path());
        for i in 0..n {
            let key = [&b"d"[..], format!("c{}", i % 50).as_bytes(), b"\0\x02", format!("{i:010}").as_bytes()].concat();
            let v = Versioned { revision: i + 1, value: Some(vec![(i % 251) as u8; 300]) };
            db.insert([&[1u8][..], &key].concat(), first_layout_value(&v)).unwrap();
        }
        db.insert(b"\x00checkpoint", &n.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let files: u64 = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.metadata().unwrap().len()).sum();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["big_move_child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(BIG_MOVE_VAR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.split_once("memory ")).unwrap_or_else(|| panic!("child: {stdout}")).1;
    let v: Vec<u64> = line.split_whitespace().take(3).map(|x| x.parse().unwrap()).collect();
    let (before, peak) = (v[0], v[1]);
    let grew_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "{n} keys, sled files {} MiB: resident {} MiB before, peak {} MiB (+{grew_mib} MiB)",
        files >> 20,
        before / 1024,
        peak / 1024
    );
    let s = SledStore::open(dir.path(), 8 << 20).unwrap();
    assert_eq!(s.scan(Bound::Unbounded, Bound::Unbounded).count() as u64, n);
    drop(s);
    assert!(
        grew_mib < 80 + (files >> 20) / 4,
        "the move grew the process by {grew_mib} MiB for {} MiB of files",
        files >> 20
    );
}

/// A damaged first-layout database (an undecodable value in a collection
/// that moves into a tree, another in one that stays in the default tree,
/// a value of an unknown kind): the move carries the bytes as they are, so
/// the damage stays a typed error on exactly those keys — every other key
/// reads the same, and nothing panics.
#[test]
fn damage_in_a_first_layout_database_stays_a_typed_error_on_its_keys_after_the_move() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    for i in 0..(MAX_TREES + 4) {
        for k in keys_of(i, 1) {
            model.insert(k, Versioned { revision: 1, value: Some(b"ok".to_vec()) });
        }
    }
    write_first_layout(dir.path(), &model, 1);
    let in_tree = [&b"d"[..], collection(0).as_bytes(), b"\0\x02bad"].concat();
    let past_cap = [&b"d"[..], collection(MAX_TREES + 3).as_bytes(), b"\0\x02bad"].concat();
    {
        let db = raw(dir.path());
        db.insert([&[1u8][..], &in_tree].concat(), &[1u8, 0, 0][..]).unwrap(); // shorter than its header
        db.insert([&[1u8][..], &past_cap].concat(), &[1u8, 0, 0, 0, 0, 0, 0, 0, 1, 9, b'x'][..]).unwrap(); // kind 9
        db.flush().unwrap();
    }
    let s = SledStore::open(dir.path(), 4 << 20).unwrap();
    assert!(matches!(s.get(&in_tree), Err(aurora_storage::StorageError::Corrupt { .. })));
    assert!(matches!(s.get(&past_cap), Err(aurora_storage::StorageError::Corrupt { .. })));
    let items: Vec<_> = s.scan(Bound::Unbounded, Bound::Unbounded).collect();
    let bad: Vec<_> = items.iter().filter(|r| r.is_err()).collect();
    assert_eq!(bad.len(), 2, "exactly the two damaged keys");
    let good: Model = items.into_iter().filter_map(Result::ok).collect();
    assert!(good == model, "every other key reads the same");
    for (k, v) in model.iter().step_by(11) {
        assert_eq!(s.get(k).unwrap().as_ref(), Some(v));
    }
}
