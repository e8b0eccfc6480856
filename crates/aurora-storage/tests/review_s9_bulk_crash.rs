//! Hostile review (session 9): SIGKILL while the applier moves large
//! memtables into sled in fill order. A child bulk-loads (`Strict`) up to
//! 200 000 documents with an index entry each, in batches of 500 that also
//! update and delete earlier documents, with checkpoints (and their
//! `malloc_trim`) every 50 ms; it is killed at a random moment, several
//! rounds on one folder. After each kill the store equals the model after
//! exactly the acknowledged batches, or one more (the one in flight) —
//! nothing partial, nothing lost — and reads the same after a second
//! reopen.
//!
//! Sized by `AURORA_CRASH_ROUNDS` (default 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::{Batch, Durability, Store, StoreConfig};
use aurora_testkit::crash::{jitter, CrashTest};
use std::collections::BTreeMap;
use std::time::Duration;

const CRASH: CrashTest = CrashTest::new("bulk_crash_child_entry", "AURORA_REVIEW_S9_BULK_CRASH_DIR");
const PER_BATCH: u64 = 500;
const BATCHES: u64 = 400;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn config() -> StoreConfig {
    StoreConfig { checkpoint_interval: Duration::from_millis(50), ..common::config(Durability::Strict) }
}

fn doc(id: u64) -> Vec<u8> {
    format!("dbulk\0{id:08}").into_bytes()
}

/// Batch `n` (from 1), applied to `model` too.
fn batch(n: u64, model: &mut Model) -> Batch {
    let mut b = Batch::new();
    let put = |b: &mut Batch, model: &mut Model, k: Vec<u8>, v: Vec<u8>| {
        b.put(k.clone(), v.clone());
        model.insert(k, v);
    };
    for j in 0..PER_BATCH {
        let id = (n - 1) * PER_BATCH + j;
        put(&mut b, model, doc(id), format!("v{n}").into_bytes());
        put(&mut b, model, format!("xbulk\0age\0{:02}\0{id:08}", id % 50).into_bytes(), Vec::new());
    }
    if n > 1 {
        let before = (n - 1) * PER_BATCH;
        put(&mut b, model, doc(n * 37 % before), format!("u{n}").into_bytes());
        let gone = doc(n * 91 % before);
        b.delete(gone.clone());
        model.remove(&gone);
    }
    put(&mut b, model, b"meta/batches".to_vec(), n.to_be_bytes().to_vec());
    b
}

fn model_after(k: u64) -> Model {
    let mut m = Model::new();
    for n in 1..=k {
        let _ = batch(n, &mut m);
    }
    m
}

fn batches_in(store: &Store) -> u64 {
    store.get(b"meta/batches").unwrap().map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()))
}

/// Runs only inside the child: commits batches until killed (or done),
/// printing each acknowledged one.
#[test]
fn bulk_crash_child_entry() {
    let Some(dir) = CRASH.child_dir() else { return };
    let store = Store::open(dir.join("db"), config()).unwrap();
    let first = batches_in(&store) + 1;
    let mut scratch = Model::new();
    println!("ready");
    for n in first..=BATCHES {
        let b = batch(n, &mut scratch);
        scratch.clear();
        store.commit(b).unwrap().revision().unwrap();
        println!("ack {n}");
    }
    println!("done");
    std::thread::sleep(Duration::from_secs(3600));
}

#[test]
fn kills_during_a_bulk_load_keep_exactly_the_acknowledged_batches() {
    if CRASH.is_child() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().to_path_buf();
    let mut before = 0;
    for round in 0..CRASH.rounds(3) {
        let lines = CRASH.spawn(&dir).kill_after(Duration::from_millis(60) + jitter(500));
        let acked = lines.iter().filter_map(|l| l.strip_prefix("ack ")).filter_map(|n| n.parse::<u64>().ok()).max();
        let acked = acked.unwrap_or(before);
        for reopen in 0..2 {
            let store = Store::open(dir.join("db"), config()).unwrap();
            let k = batches_in(&store);
            assert!(
                k == acked || k == acked + 1,
                "round {round} reopen {reopen}: {k} batches in the store, {acked} acknowledged"
            );
            let all: Model = common::dump(&store).into_iter().collect();
            let model = model_after(k);
            assert!(
                all == model,
                "round {round} reopen {reopen}: the store ({} keys) differs from {k} whole batches ({} keys)",
                all.len(),
                model.len()
            );
            if reopen == 0 {
                eprintln!("round {round}: {k} batches ({} keys), {acked} acknowledged", all.len());
            }
            store.close().unwrap();
            before = k;
        }
        if before == BATCHES {
            break;
        }
    }
    assert!(before > 0, "no batch was acknowledged in any round");
}
