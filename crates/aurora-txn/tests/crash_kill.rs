//! A writer process doing bank transfers in transactions is killed with
//! SIGKILL; after reopening, the total is unchanged (no half-applied
//! transfer), in `Balanced` mode. Rounds: `AURORA_CRASH_ROUNDS` (default 4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::Durability;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_DIR: &str = "AURORA_TXN_CRASH_DIR";

#[test]
fn crash_child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let (db, _) = common::open(std::path::Path::new(&dir), Durability::Balanced);
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
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let rounds: u32 = std::env::var("AURORA_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let dir = tempfile::tempdir().unwrap();
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child_entry", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_ready(&mut child);
        std::thread::sleep(Duration::from_millis(50 + 97 * u64::from(round % 4)));
        child.kill().unwrap();
        child.wait().unwrap();
        let (db, _) = common::open(dir.path(), Durability::Balanced);
        assert_eq!(db.collections().list_collections(), vec!["accounts".to_string()], "setup committed");
        assert_eq!(common::total(&db), common::ACCOUNTS * common::START, "round {round}");
        db.collections().documents().store().close().unwrap();
    }
}

/// Waits (up to a minute) until the child prints `ready`, so the kill
/// lands while it is working even on a loaded machine.
fn wait_ready(child: &mut std::process::Child) {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.ends_with("ready") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("the child never became ready");
}
