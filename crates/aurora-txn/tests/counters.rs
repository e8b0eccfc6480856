//! Random concurrent read-modify-write transactions over a few counters, at
//! both isolation levels: the final value of every counter equals the number
//! of committed transactions that incremented it — no lost update, and no
//! trace of a transaction that failed with a conflict.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{doc, DocId, Value};
use aurora_index::Schema;
use aurora_storage::Durability;
use aurora_txn::{Isolation, TxnError};
use proptest::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

const COUNTERS: usize = 4;

fn counter(i: usize) -> DocId {
    DocId::text(&format!("c{i}")).unwrap()
}

fn run(plans: Vec<Vec<usize>>, threads: usize, isolation: Isolation) {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = common::open(dir.path(), Durability::Balanced);
    db.collections().create_collection("counters", Schema::new()).unwrap();
    db.transaction(|tx| {
        for i in 0..COUNTERS {
            tx.insert("counters", doc! { "n": 0 }.id(counter(i)))?;
        }
        Ok(())
    })
    .unwrap();
    let committed: Arc<Vec<AtomicI64>> = Arc::new((0..COUNTERS).map(|_| AtomicI64::new(0)).collect());
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (db, plans, committed) = (db.clone(), plans.clone(), committed.clone());
            std::thread::spawn(move || {
                for (k, plan) in plans.iter().enumerate().filter(|(k, _)| k % threads == t) {
                    let mut tx = db.begin_with(isolation).unwrap();
                    let mut targets: Vec<usize> = plan.iter().map(|c| c % COUNTERS).collect();
                    targets.sort();
                    targets.dedup();
                    // Read every counter: the snapshot must be a consistent state.
                    let values: Vec<i64> = (0..COUNTERS)
                        .map(|i| {
                            tx.get("counters", &counter(i)).unwrap().unwrap().get("n").and_then(Value::as_i64).unwrap()
                        })
                        .collect();
                    assert!(values.iter().all(|v| *v >= 0));
                    for &c in &targets {
                        tx.update("counters", &counter(c), [("n".to_string(), Value::Int(values[c] + 1))].into())
                            .unwrap();
                    }
                    match tx.commit() {
                        Ok(_) => targets.iter().for_each(|&c| {
                            committed[c].fetch_add(1, Ordering::Relaxed);
                        }),
                        Err(TxnError::Conflict { .. }) => {}
                        Err(e) => panic!("txn {k}: {e}"),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut tx = db.begin().unwrap();
    for i in 0..COUNTERS {
        let n = tx.get("counters", &counter(i)).unwrap().unwrap().get("n").and_then(Value::as_i64).unwrap();
        assert_eq!(n, committed[i].load(Ordering::Relaxed), "counter {i}: committed increments vs stored value");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn no_lost_updates(plans in prop::collection::vec(prop::collection::vec(0usize..8, 1..4), 1..40),
                       threads in 1usize..5, serializable in any::<bool>()) {
        let level = if serializable { Isolation::Serializable } else { Isolation::Snapshot };
        run(plans, threads, level);
    }
}

fn cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(16)
}
