//! Crash test: a real child process writes and acknowledges, is killed with
//! SIGKILL at a random moment, and the parent reopens the directory and
//! checks the mode's promise: in `Strict` and `Balanced` every acknowledged
//! write is there; in `Buffered` each writer's writes survive as a prefix.
//!
//! Rounds per mode: `AURORA_CRASH_ROUNDS` (default 6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::{Batch, Durability, Store};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_DIR: &str = "AURORA_CRASH_CHILD_DIR";
const CHILD_MODE: &str = "AURORA_CRASH_CHILD_MODE";
const CHILD_ROUND: &str = "AURORA_CRASH_CHILD_ROUND";
const WRITERS: usize = 4;

fn mode_from(s: &str) -> Durability {
    match s {
        "strict" => Durability::Strict,
        "buffered" => Durability::Buffered,
        _ => Durability::Balanced,
    }
}

fn key(round: u32, writer: usize, seq: u64) -> Vec<u8> {
    format!("r{round:03}/w{writer}/{seq:08}").into_bytes()
}

fn value(round: u32, writer: usize, seq: u64) -> Vec<u8> {
    format!("value-{round}-{writer}-{seq}-{}", "x".repeat((seq % 50) as usize)).into_bytes()
}

/// Runs only inside the child: write until killed, printing `ack` lines.
#[test]
fn crash_child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let mode = mode_from(&std::env::var(CHILD_MODE).unwrap());
    let round: u32 = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let store = Store::open(&dir, common::config(mode)).unwrap();
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, out) = (store.clone(), out.clone());
            std::thread::spawn(move || {
                for seq in 0.. {
                    let mut b = Batch::new();
                    b.put(key(round, w, seq), value(round, w, seq));
                    b.put(format!("counter/w{w}").into_bytes(), seq.to_be_bytes().to_vec());
                    assert!(store.commit(b).unwrap().revision().is_some());
                    let mut o = out.lock().unwrap();
                    writeln!(o, "ack {w} {seq}").unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Highest acknowledged sequence per writer in one round.
fn run_child(dir: &std::path::Path, mode: &str, round: u32) -> BTreeMap<usize, u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_MODE, mode)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The test harness may print "test … ... " before the first line.
            let Some(at) = line.rfind("ack ") else { continue };
            let mut parts = line[at..].split_whitespace();
            if parts.next() == Some("ack") {
                let w: usize = parts.next().unwrap().parse().unwrap();
                let seq: u64 = parts.next().unwrap().parse().unwrap();
                if tx.send((w, seq)).is_err() {
                    break;
                }
            }
        }
    });
    // Wait for the first ack, then kill at a random moment.
    let first = rx.recv_timeout(Duration::from_secs(60)).expect("child acknowledged nothing");
    let mut acked = BTreeMap::from([first]);
    let deadline = Instant::now() + Duration::from_millis(20 + fastrand::u64(0..300));
    while Instant::now() < deadline {
        if let Ok((w, s)) = rx.recv_timeout(Duration::from_millis(5)) {
            acked.insert(w, s);
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    // Acks printed before the kill are promises too.
    for (w, s) in rx.try_iter() {
        let e = acked.entry(w).or_insert(s);
        *e = (*e).max(s);
    }
    acked
}

fn crash_rounds(mode: &str) {
    let rounds: u32 = std::env::var("AURORA_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let dir = tempfile::tempdir().unwrap();
    let mut history: Vec<BTreeMap<usize, u64>> = Vec::new();
    for round in 0..rounds {
        let acked = run_child(dir.path(), mode, round);
        assert!(!acked.is_empty());
        history.push(acked);
        let store = Store::open(dir.path(), common::config(mode_from(mode))).unwrap();
        for (r, acked) in history.iter().enumerate() {
            for w in 0..WRITERS {
                // Per writer, the surviving writes must be a prefix 0..n.
                let present: Vec<u64> = store
                    .scan_prefix(format!("r{r:03}/w{w}/").as_bytes())
                    .unwrap()
                    .map(|kv| {
                        let (k, v) = kv.unwrap();
                        let seq: u64 = std::str::from_utf8(&k[k.len() - 8..]).unwrap().parse().unwrap();
                        assert_eq!(v, value(r as u32, w, seq), "value of {}", String::from_utf8_lossy(&k));
                        seq
                    })
                    .collect();
                assert!(
                    present.iter().enumerate().all(|(i, s)| i as u64 == *s),
                    "round {r} writer {w}: hole in {present:?}"
                );
                if mode != "buffered" {
                    if let Some(&last) = acked.get(&w) {
                        assert!(
                            present.len() as u64 > last,
                            "{mode}: round {r} writer {w} acknowledged seq {last} but only {} survived",
                            present.len()
                        );
                    }
                }
            }
        }
        store.close().unwrap();
    }
}

#[test]
fn strict_keeps_every_acknowledged_write() {
    if std::env::var(CHILD_DIR).is_err() {
        crash_rounds("strict");
    }
}

#[test]
fn balanced_keeps_every_acknowledged_write() {
    if std::env::var(CHILD_DIR).is_err() {
        crash_rounds("balanced");
    }
}

#[test]
fn buffered_recovers_a_prefix_per_writer() {
    if std::env::var(CHILD_DIR).is_err() {
        crash_rounds("buffered");
    }
}
