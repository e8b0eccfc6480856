//! Hostile review of the sled tree layout (branch s8-disk) under SIGKILL:
//! a child commits (`Strict`) to more collections than there are trees —
//! documents and index entries, deletes, whole collections emptied (their
//! trees dropped at the next open and created again later), feed entries —
//! while the applier writes into many trees at once and checkpoints and
//! tombstone purges run every few milliseconds; it is killed at a random
//! moment, several rounds on one folder. After each kill the store holds
//! exactly the acknowledged commits (plus, or not, the one in flight), reads
//! the same through the range cache, and the cold store has no key out of
//! place and no more than `MAX_TREES` trees.
//!
//! Then an online backup of the result opens and equals its source.
//!
//! Sized by `AURORA_CRASH_ROUNDS` (default 4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::cold::SledStore;
use aurora_storage::{Batch, ColdStore, Durability, Store, StoreConfig};
use aurora_testkit::crash::{jitter, CrashTest};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const MAX_TREES: usize = 256;
const COLLECTIONS: usize = 300;

const CRASH: CrashTest = CrashTest::new("trees_crash_child_entry", "AURORA_REVIEW_TREES_CRASH_DIR");

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn config() -> StoreConfig {
    StoreConfig {
        sync_interval: Duration::from_millis(3),
        checkpoint_interval: Duration::from_millis(15),
        tombstone_purge_threshold: 10,
        memtable_flush_bytes: 16 << 10,
        ..common::config(Durability::Strict)
    }
}

fn doc_prefix(c: usize) -> Vec<u8> {
    format!("dc{c:03}\0").into_bytes()
}

fn index_prefix(c: usize) -> Vec<u8> {
    format!("xc{c:03}\0age\0").into_bytes()
}

/// The `step`-th commit of round `seed` on a store holding `model` at
/// revision `revision`: a batch, applied to the model as well.
fn next_commit(rng: &mut fastrand::Rng, model: &mut Model, revision: u64) -> Batch {
    let mut b = Batch::new();
    let c = rng.usize(..COLLECTIONS);
    match rng.u8(..20) {
        0..=12 => {
            for _ in 0..rng.usize(1..6) {
                let id = rng.u16(..200);
                let value = format!("r{revision}-{}", rng.u32(..)).into_bytes();
                let d = [&doc_prefix(c)[..], format!("\x02{id:04}").as_bytes()].concat();
                let x = [&index_prefix(c)[..], &[rng.u8(0x10..0x20)], format!("{id:04}").as_bytes()].concat();
                b.put(d.clone(), value.clone());
                b.put(x.clone(), Vec::new());
                model.insert(d, value);
                model.insert(x, Vec::new());
            }
        }
        13..=15 => {
            let keys: Vec<Vec<u8>> = model.keys().filter(|_| rng.u8(..50) == 0).take(4).cloned().collect();
            for k in keys {
                b.delete(k.clone());
                model.remove(&k);
            }
        }
        16..=18 => {
            // Empty a whole collection (documents and index).
            let keys: Vec<Vec<u8>> = model
                .keys()
                .filter(|k| k.starts_with(&doc_prefix(c)) || k.starts_with(&format!("xc{c:03}\0").into_bytes()))
                .cloned()
                .collect();
            for k in keys {
                b.delete(k.clone());
                model.remove(&k);
            }
        }
        _ => {
            b.put_at_revision(b"f".to_vec(), b"feed".to_vec());
            model.insert(aurora_storage::revision_key(b"f", revision), b"feed".to_vec());
        }
    }
    if b.is_empty() {
        b.put(b"cmeta".to_vec(), format!("{revision}").into_bytes());
        model.insert(b"cmeta".to_vec(), format!("{revision}").into_bytes());
    }
    b
}

fn seed_of(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("seed")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(1)
}

/// Runs only inside the child: commits until killed, printing each
/// acknowledged commit.
#[test]
fn trees_crash_child_entry() {
    let Some(dir) = CRASH.child_dir() else { return };
    let mut rng = fastrand::Rng::with_seed(seed_of(&dir));
    let store = Store::open(dir.join("db"), config()).unwrap();
    let mut model: Model = common::dump(&store).into_iter().collect();
    println!("ready");
    for step in 0u64.. {
        let revision = store.revision() + 1;
        let b = next_commit(&mut rng, &mut model, revision);
        let got = store.commit(b).unwrap().revision().unwrap();
        assert_eq!(got, revision);
        println!("ack {step}");
    }
}

fn check(store: &Store, model: &Model) {
    let all = common::dump(store);
    assert!(all.iter().map(|(k, v)| (k, v)).eq(model.iter()), "the store differs from the acknowledged commits");
    // Through the range cache: register a few prefixes (trees and default tree alike) and read them.
    for c in [0, 7, 128, 255, 256, 299] {
        for prefix in [doc_prefix(c), index_prefix(c)] {
            store.keep_resident(&prefix);
            let expected: Vec<_> = model.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)).collect();
            for _ in 0..2 {
                let got: Vec<_> = store.scan_prefix(&prefix).unwrap().map(Result::unwrap).collect();
                assert!(got.iter().map(|(k, v)| (k, v)).eq(expected.iter().copied()), "resident {prefix:?}");
            }
        }
    }
}

/// The cold store alone (the store closed): nothing misplaced (a full purge
/// checks every key of the default tree), at most `MAX_TREES` trees.
fn check_cold(cold: &Path) {
    let s = SledStore::open(cold, 4 << 20).unwrap();
    assert!(s.purge_tombstones(0).is_ok(), "a key out of place");
    drop(s);
    let trees = aurora_testkit::raw_sled::open(cold).tree_names().len() - 1;
    assert!(trees <= MAX_TREES, "{trees} trees");
}

#[test]
fn kills_while_the_applier_writes_many_trees_converge_to_the_acknowledged_commits() {
    if CRASH.is_child() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().to_path_buf();
    let mut model = Model::new();
    // Start with every collection present: more prefixes than trees.
    {
        let store = Store::open(dir.join("db"), config()).unwrap();
        let mut b = Batch::new();
        for c in 0..COLLECTIONS {
            for id in 0..3 {
                let d = [&doc_prefix(c)[..], format!("\x02{id:04}").as_bytes()].concat();
                let x = [&index_prefix(c)[..], &[0x10], format!("{id:04}").as_bytes()].concat();
                b.put(d.clone(), b"init".to_vec());
                b.put(x.clone(), Vec::new());
                model.insert(d, b"init".to_vec());
                model.insert(x, Vec::new());
            }
        }
        store.commit(b).unwrap().revision().unwrap();
        std::fs::write(dir.join("start_revision"), store.revision().to_string()).unwrap();
        store.close().unwrap();
    }
    for round in 0..CRASH.rounds(4) {
        let seed = 1000 + u64::from(round);
        std::fs::write(dir.join("seed"), seed.to_string()).unwrap();
        let acks = CRASH.spawn(&dir).kill_after(Duration::from_millis(150) + jitter(900));
        let acked = acks.iter().filter(|l| l.starts_with("ack ")).count();
        let store = Store::open(dir.join("db"), config()).unwrap();
        // The model after `acked` commits, or one more (the one in flight).
        let mut rng = fastrand::Rng::with_seed(seed);
        let all: Model = common::dump(&store).into_iter().collect();
        let mut candidate = model.clone();
        // The child began at the revision the previous round ended with.
        let start_revision: u64 = std::fs::read_to_string(dir.join("start_revision")).unwrap().trim().parse().unwrap();
        let mut matched = None;
        for step in 0..=(acked + 1) {
            if step >= acked && all == candidate {
                matched = Some(step);
                break;
            }
            if step == acked + 1 {
                break;
            }
            let _ = next_commit(&mut rng, &mut candidate, start_revision + step as u64 + 1);
        }
        let Some(step) = matched else {
            panic!("round {round}: the store after the kill is neither {acked} nor {} commits of the round", acked + 1);
        };
        model = candidate;
        eprintln!("round {round}: {acked} acknowledged, {step} found, {} keys", model.len());
        check(&store, &model);
        std::fs::write(dir.join("start_revision"), store.revision().to_string()).unwrap();
        assert_eq!(store.revision(), start_revision + step as u64, "round {round}: revisions go on");
        store.close().unwrap();
        drop(store);
        check_cold(&dir.join("db").join("cold"));
    }
    // An online backup of the result opens and equals its source.
    let store = Store::open(dir.join("db"), config()).unwrap();
    let report = store.backup_to(&dir.join("backup"), |_| {}).unwrap();
    let copy = Store::open(dir.join("backup"), config()).unwrap();
    assert_eq!(copy.revision(), report.revision);
    assert!(common::dump(&copy) == common::dump(&store), "the backup differs from its source");
    check(&copy, &model);
    copy.close().unwrap();
    store.close().unwrap();
    check_cold(&dir.join("backup").join("cold"));
}
