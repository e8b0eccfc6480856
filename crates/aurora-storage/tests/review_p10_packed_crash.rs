//! Review (session 10) of the packed index trees under SIGKILL, on the
//! paths `packed_index_crash` rarely takes: every load lands *below* the
//! first chunk (the merged first piece written under a new lowest key,
//! then the old first chunk removed — or right pieces written below it
//! first when the load is bigger than a chunk), runs that are not
//! ascending (WAL replay's shape: shuffled, a key repeated, the later
//! version winning), deletes of the lowest chunks then *targeted* purges
//! (`purge_tombstones_of`) that empty the first chunks, and full purges.
//! A child applies them straight to the cold store with a checkpoint
//! every few steps and is killed at a random moment; after each reopen
//! every key holds its version at the last flush or one written after it,
//! and scans and point reads agree.
//!
//! Sized by `AURORA_CRASH_ROUNDS` (default 6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::cold::SledStore;
use aurora_storage::{ColdStore, Versioned};
use aurora_testkit::crash::{jitter, CrashTest};
use common::flushed::check_flushed_prefix;
use std::time::Duration;

const CRASH: CrashTest = CrashTest::new("review_packed_crash_child_entry", "AURORA_REVIEW_PACKED_CRASH_DIR");
const SEED_VAR: &str = "AURORA_REVIEW_PACKED_CRASH_SEED";
const FLUSH_EVERY: u64 = 5;
const TOP: u32 = 5_000_000;

fn key(n: u32) -> Vec<u8> {
    [&b"xusers\0age\0"[..], format!("{n:07}").as_bytes()].concat()
}

/// What a step does after its writes.
#[derive(Clone, Copy, PartialEq)]
enum Purge {
    None,
    Named,
    All,
}

/// Writes of a step: key numbers and values (`None`: a delete).
type Writes = Vec<(u32, Option<Vec<u8>>)>;

/// One step: its writes in the order applied (a key may repeat: the later
/// wins), and the purge after them.
fn step(seed: u64, n: u64) -> (Writes, Purge) {
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(7_000_003) + n);
    let value = |k: u32, tag: &str| Some(format!("{n}:{k}{tag}").into_bytes());
    let low = TOP - (n as u32) * 1000;
    match rng.u8(..10) {
        // Below everything written so far, ascending (sometimes more than a chunk).
        0..=3 => ((0..rng.u32(5..300)).map(|i| (low + i, value(low + i, ""))).collect(), Purge::None),
        // Anywhere above, shuffled, one key repeated later in the run.
        4..=5 => {
            let mut w: Writes = (0..rng.u32(20..200)).map(|_| rng.u32(low..TOP)).map(|k| (k, value(k, ""))).collect();
            rng.shuffle(&mut w);
            if let Some(&(k, _)) = w.first() {
                w.push((k, value(k, "again")));
            }
            (w, Purge::None)
        }
        // Delete the lowest keys (the first chunks) and purge them by name.
        6..=8 => ((low..low + rng.u32(100..1500)).map(|k| (k, None)).collect(), Purge::Named),
        // Delete a stretch anywhere and purge everything.
        _ => {
            let from = rng.u32(low..TOP);
            ((from..from + rng.u32(50..800)).map(|k| (k, None)).collect(), Purge::All)
        }
    }
}

/// The writes of a step as one run, in the order given.
fn run(writes: &[(u32, Option<Vec<u8>>)], revision: u64) -> Vec<(Vec<u8>, Versioned)> {
    writes.iter().map(|(k, v)| (key(*k), Versioned { revision, value: v.clone() })).collect()
}

#[test]
fn review_packed_crash_child_entry() {
    let Some(dir) = CRASH.child_dir() else { return };
    let seed: u64 = std::env::var(SEED_VAR).unwrap().parse().unwrap();
    let s = SledStore::open(&dir, 1 << 20).unwrap();
    println!("ready");
    for n in 1u64.. {
        let (writes, purge) = step(seed, n);
        let batch = run(&writes, n);
        s.apply(&mut batch.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        match purge {
            Purge::None => {}
            Purge::Named => {
                s.purge_tombstones_of(&mut batch.iter().rev().map(|(k, _)| k.as_slice()), n).unwrap();
            }
            Purge::All => {
                s.purge_tombstones(n.saturating_sub(1)).unwrap();
            }
        }
        if n % FLUSH_EVERY == 0 {
            s.set_checkpoint(n).unwrap();
            s.flush().unwrap();
            println!("flushed {n}");
        }
    }
}

#[test]
fn a_killed_packed_tree_keeps_everything_flushed_below_the_first_chunk_too() {
    if CRASH.is_child() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    for round in 0..CRASH.rounds(6) {
        let seed = u64::from(round) + 101;
        let dir = root.path().join(format!("r{round}"));
        let lines = CRASH
            .spawn_with(&dir, &[(SEED_VAR, &seed.to_string())])
            .kill_after(Duration::from_millis(100) + jitter(700));
        let printed: u64 = lines.iter().filter_map(|l| l.strip_prefix("flushed ")?.parse().ok()).max().unwrap_or(0);
        let s = SledStore::open(&dir, 1 << 20).unwrap();
        let flushed = s.checkpoint().unwrap();
        assert!(flushed >= printed, "round {round}: checkpoint {flushed} below the flushed {printed}");
        let keys =
            check_flushed_prefix(&s, flushed, FLUSH_EVERY, |n| run(&step(seed, n).0, n), &format!("round {round}"));
        // And the store goes on: one more load below everything, read back.
        let low = TOP - (flushed as u32 + FLUSH_EVERY as u32 + 2) * 1000;
        let more = run(&(0..100).map(|i| (low + i, Some(b"x".to_vec()))).collect::<Vec<_>>(), 1 << 40);
        s.apply(&mut more.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        for (k, v) in &more {
            assert_eq!(s.get(k).unwrap().as_ref(), Some(v), "round {round}: written after the reopen");
        }
        eprintln!("round {round}: flushed at step {flushed}, {keys} keys");
        drop(s);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
