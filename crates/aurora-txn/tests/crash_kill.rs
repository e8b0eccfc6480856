//! A writer process doing bank transfers in transactions is killed with
//! SIGKILL; after reopening, the total is unchanged (no half-applied
//! transfer), in `Balanced` mode. Rounds: `AURORA_CRASH_ROUNDS` (default 4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::Durability;
use aurora_testkit::crash::CrashTest;
use std::time::Duration;

const CRASH: CrashTest = CrashTest::new("crash_child_entry", "AURORA_TXN_CRASH_DIR");

#[test]
fn crash_child_entry() {
    let Some(dir) = CRASH.child_dir() else { return };
    let (db, _) = common::open(&dir, Durability::Balanced);
    common::setup_bank(&db);
    common::transfer(&db, 0, 1, 1).unwrap();
    common::transfer(&db, 1, 0, 1).unwrap();
    println!("ready");
    let threads: Vec<_> = (0..3i64)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0i64.. {
                    let (from, to) = ((i + t) % common::ACCOUNTS, (i * 3 + t + 1) % common::ACCOUNTS);
                    if from != to {
                        common::transfer(&db, from, to, 1 + i % 30).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn total_survives_sigkill_of_a_writer() {
    if CRASH.is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for round in 0..CRASH.rounds(4) {
        CRASH.spawn(dir.path()).kill_after(Duration::from_millis(50 + 97 * u64::from(round % 4)));
        let (db, _) = common::open(dir.path(), Durability::Balanced);
        assert_eq!(db.collections().list_collections(), vec!["accounts".to_string()], "setup committed");
        assert_eq!(common::total(&db), common::ACCOUNTS * common::START, "round {round}");
        db.collections().documents().store().close().unwrap();
    }
}
