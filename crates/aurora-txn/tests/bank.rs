//! The bank-transfer property: concurrent transactions move money between
//! accounts; the total never changes in any snapshot, across reopens, and
//! the change sink receives every commit once, in commit order, with
//! changes that replay to the final state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::Durability;
use aurora_txn::ChangeKind;
use common::{open, setup_bank, total, transfer, ACCOUNTS, START};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn run(seeds: Vec<(u8, u8, u8)>, threads: usize, durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let (db, recorder) = open(dir.path(), durability);
    setup_bank(&db);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (db, seeds) = (db.clone(), seeds.clone());
            std::thread::spawn(move || {
                for (a, b, amount) in seeds {
                    let from = (i64::from(a) + t as i64) % ACCOUNTS;
                    let to = (i64::from(b) + 2 * t as i64) % ACCOUNTS;
                    if from != to {
                        transfer(&db, from, to, i64::from(amount % 40)).unwrap();
                    }
                }
            })
        })
        .collect();
    while workers.iter().any(|w| !w.is_finished()) {
        assert_eq!(total(&db), ACCOUNTS * START, "a snapshot saw money appear or vanish");
    }
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(total(&db), ACCOUNTS * START);

    // The sink saw every commit once, in order, and replaying it gives the final state.
    let log = recorder.0.lock().clone();
    assert!(log.windows(2).all(|w| w[0].sequence < w[1].sequence), "sink order");
    let mut replayed: BTreeMap<String, i64> = BTreeMap::new();
    for c in &log {
        for ch in &c.changes {
            match ch.kind {
                ChangeKind::Delete => {
                    replayed.remove(&ch.id.to_string());
                }
                _ => {
                    replayed.insert(ch.id.to_string(), common::balance(ch.new.as_ref().unwrap()));
                }
            }
        }
    }
    let mut tx = db.begin().unwrap();
    let now: BTreeMap<String, i64> =
        tx.scan("accounts").unwrap().iter().map(|d| (d.id.to_string(), common::balance(d))).collect();
    assert_eq!(replayed, now);
    drop(tx);

    // And across a reopen.
    db.collections().documents().store().close().unwrap();
    drop(db);
    let (db, _) = open(dir.path(), durability);
    assert_eq!(total(&db), ACCOUNTS * START);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn transfers_preserve_the_total(seeds in prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 1..40), threads in 1usize..5) {
        run(seeds, threads, Durability::Balanced);
    }
}

#[test]
fn transfers_preserve_the_total_in_strict_mode() {
    let seeds: Vec<(u8, u8, u8)> = (0..60u8).map(|i| (i, i.wrapping_mul(7), i.wrapping_mul(13))).collect();
    run(seeds, 4, Durability::Strict);
}

fn cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12)
}
