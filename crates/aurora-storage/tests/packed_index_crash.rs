//! Packed index trees under SIGKILL: a child applies runs to a packed
//! tree — ascending appends past the end (full chunks split off), inserts
//! in the middle (chunks split in halves), deletes, purges that empty and
//! remove chunks — straight to the cold store, flushing with a checkpoint
//! every few steps, and is killed at a random moment. After each kill the
//! reopened store must hold, for every key, its version at the last flush
//! or a version written after it (apply is not atomic; the WAL above
//! replays what comes after a checkpoint), never an older one and never a
//! lost key: a split that rewrote the left chunk before writing the right
//! one would lose the moved entries, which WAL replay does not bring back.
//! Forward and reverse scans and point reads agree after every reopen.
//!
//! Sized by `AURORA_CRASH_ROUNDS` (default 6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::cold::SledStore;
use aurora_storage::{ColdStore, Versioned};
use aurora_testkit::crash::{jitter, CrashTest};
use common::flushed::check_flushed_prefix;
use std::collections::BTreeMap;
use std::time::Duration;

const CRASH: CrashTest = CrashTest::new("packed_crash_child_entry", "AURORA_PACKED_CRASH_DIR");
const SEED_VAR: &str = "AURORA_PACKED_CRASH_SEED";
/// Steps between flushes.
const FLUSH_EVERY: u64 = 6;

fn key(n: u32) -> Vec<u8> {
    [&b"xusers\0age\0"[..], format!("{n:07}").as_bytes()].concat()
}

/// Writes of a step: key numbers and values (`None`: a delete).
type Writes = Vec<(u32, Option<Vec<u8>>)>;

/// One step of round `seed`: the writes (`None`: a delete) and whether a
/// purge follows them.
fn step(seed: u64, n: u64) -> (Writes, bool) {
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(1_000_003) + n);
    let value = |k: u32| Some(format!("{n}:{k}").into_bytes());
    let writes = match rng.u8(..10) {
        // Appends past every earlier key (keys grow with the step).
        0..=4 => {
            let base = (n as u32) * 1000;
            (0..rng.u32(50..400)).map(|i| (base + i, value(base + i))).collect()
        }
        // Inserts in the middle of what exists.
        5..=7 => {
            let top = ((n as u32) * 1000).max(1000);
            (0..rng.u32(20..150)).map(|_| rng.u32(..top)).map(|k| (k, value(k))).collect()
        }
        // Deletes of a stretch (chunks the purge then empties).
        _ => {
            let top = ((n as u32) * 1000).max(1000);
            let from = rng.u32(..top);
            (from..from + rng.u32(50..600)).map(|k| (k, None)).collect()
        }
    };
    (writes, rng.u8(..4) == 0)
}

fn sorted(writes: &[(u32, Option<Vec<u8>>)], revision: u64) -> Vec<(Vec<u8>, Versioned)> {
    let map: BTreeMap<Vec<u8>, Versioned> =
        writes.iter().map(|(k, v)| (key(*k), Versioned { revision, value: v.clone() })).collect();
    map.into_iter().collect()
}

#[test]
fn packed_crash_child_entry() {
    let Some(dir) = CRASH.child_dir() else { return };
    let seed: u64 = std::env::var(SEED_VAR).unwrap().parse().unwrap();
    let s = SledStore::open(&dir, 1 << 20).unwrap();
    println!("ready");
    for n in 1u64.. {
        let (writes, purge) = step(seed, n);
        let batch = sorted(&writes, n);
        s.apply(&mut batch.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        if purge {
            s.purge_tombstones(n.saturating_sub(2)).unwrap();
        }
        if n % FLUSH_EVERY == 0 {
            s.set_checkpoint(n).unwrap();
            s.flush().unwrap();
            println!("flushed {n}");
        }
    }
}

#[test]
fn a_killed_packed_tree_keeps_everything_flushed() {
    if CRASH.is_child() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    for round in 0..CRASH.rounds(6) {
        let seed = u64::from(round) + 1;
        let dir = root.path().join(format!("r{round}"));
        let lines = CRASH
            .spawn_with(&dir, &[(SEED_VAR, &seed.to_string())])
            .kill_after(Duration::from_millis(150) + jitter(600));
        let printed: u64 = lines.iter().filter_map(|l| l.strip_prefix("flushed ")?.parse().ok()).max().unwrap_or(0);
        let s = SledStore::open(&dir, 1 << 20).unwrap();
        // A kill between a flush and its line leaves a later checkpoint.
        let flushed = s.checkpoint().unwrap();
        assert!(flushed >= printed, "round {round}: checkpoint {flushed} below the flushed {printed}");
        let keys =
            check_flushed_prefix(&s, flushed, FLUSH_EVERY, |n| sorted(&step(seed, n).0, n), &format!("round {round}"));
        eprintln!("round {round}: flushed at step {flushed}, {keys} keys");
    }
}
