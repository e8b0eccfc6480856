//! Packed index trees under concurrency: an applier splitting chunks
//! (ascending appends and inserts in the middle) and a purger emptying and
//! removing chunks, while readers scan lazily forwards and backwards (one
//! item at a time, yielding between items) and read points. A set of
//! stable keys, written before the readers start and never touched again,
//! must come out of every scan exactly once and in order, and every point
//! read of one must find it: a split or a chunk removal racing a reader
//! may neither hide nor repeat a key.
//!
//! Sized by `AURORA_PACKED_RACE_ROUNDS` (applier rounds, default 60).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_storage::cold::SledStore;
use aurora_storage::{ColdStore, Versioned};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

fn rounds() -> u32 {
    std::env::var("AURORA_PACKED_RACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60)
}

const PREFIX: &[u8] = b"xusers\0age\0";

/// Stable keys are even numbers, the churned ones odd.
fn key(n: u32) -> Vec<u8> {
    [PREFIX, format!("{n:06}").as_bytes()].concat()
}

fn put(s: &SledStore, keys: &[u32], revision: u64, live: bool) {
    let writes: Vec<(Vec<u8>, Versioned)> = keys
        .iter()
        .map(|&n| (key(n), Versioned { revision, value: live.then(|| format!("{revision}").into_bytes()) }))
        .collect();
    s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
}

#[test]
fn splits_and_chunk_removals_racing_lazy_readers_never_hide_or_repeat_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path(), 1 << 20).unwrap();
    // Stable: every 8th even number in 0..40 000 (5 000 keys, ~80 chunks).
    let stable: Vec<u32> = (0..40_000).step_by(8).collect();
    put(&s, &stable, 1, true);
    let stop = AtomicBool::new(false);
    // Scans and point reads done so far: the applier goes on past its
    // rounds until every reader has raced it a few times.
    let (scans_done, reads_done) = (AtomicU32::new(0), AtomicU32::new(0));
    std::thread::scope(|scope| {
        let (s, stop, stable) = (&s, &stop, &stable);
        let (scans_done, reads_done) = (&scans_done, &reads_done);
        let applier = scope.spawn(move || {
            let mut rng = fastrand::Rng::with_seed(7);
            let mut revision = 2;
            let mut round = 0;
            while round < rounds() || scans_done.load(Ordering::SeqCst) < 8 || reads_done.load(Ordering::SeqCst) < 100 {
                round += 1;
                // Odd keys in the middle of chunks (splits), then past the end.
                let base = rng.u32(..39_000) | 1;
                let middle: Vec<u32> = (0..rng.u32(20..200)).map(|i| base + 2 * i).collect();
                put(s, &middle, revision, true);
                revision += 1;
                let end: Vec<u32> = (0..100).map(|i| 40_001 + 2 * (round % 10_000 * 100 + i)).collect();
                put(s, &end, revision, true);
                revision += 1;
                // Delete them all again: the purger empties chunks of them.
                put(s, &middle, revision, false);
                put(s, &end, revision, false);
                revision += 1;
            }
            stop.store(true, Ordering::SeqCst);
        });
        let purger = scope.spawn(move || {
            let mut purges = 0u32;
            while !stop.load(Ordering::SeqCst) {
                s.purge_tombstones(u64::MAX).unwrap();
                purges += 1;
            }
            purges
        });
        let mut readers = Vec::new();
        for reverse in [false, true, false, true] {
            readers.push(scope.spawn(move || {
                let mut scans = 0u32;
                while !stop.load(Ordering::SeqCst) {
                    let iter = if reverse {
                        s.scan_rev(Bound::Unbounded, Bound::Unbounded)
                    } else {
                        s.scan(Bound::Included(PREFIX), Bound::Unbounded)
                    };
                    let mut seen = Vec::with_capacity(stable.len());
                    let mut last: Option<Vec<u8>> = None;
                    for (n, item) in iter.enumerate() {
                        let (k, _) = item.unwrap();
                        if let Some(l) = &last {
                            assert!(
                                if reverse { k < *l } else { k > *l },
                                "out of order or repeated: {k:?} after {l:?}"
                            );
                        }
                        last = Some(k.clone());
                        let number: u32 = std::str::from_utf8(&k[PREFIX.len()..]).unwrap().parse().unwrap();
                        if number.is_multiple_of(2) {
                            seen.push(number);
                        }
                        if n % 64 == 0 {
                            std::thread::yield_now();
                        }
                    }
                    if reverse {
                        seen.reverse();
                    }
                    assert_eq!(seen.len(), stable.len(), "a scan (reverse {reverse}) lost or repeated a stable key");
                    assert_eq!(&seen, stable);
                    scans += 1;
                    scans_done.fetch_add(1, Ordering::SeqCst);
                }
                scans
            }));
        }
        let pointer = scope.spawn(move || {
            let mut reads = 0u32;
            let mut rng = fastrand::Rng::with_seed(9);
            while !stop.load(Ordering::SeqCst) {
                let n = stable[rng.usize(..stable.len())];
                let got = s.get(&key(n)).unwrap();
                assert_eq!(got, Some(Versioned { revision: 1, value: Some(b"1".to_vec()) }), "stable key {n}");
                reads += 1;
                reads_done.fetch_add(1, Ordering::SeqCst);
            }
            reads
        });
        applier.join().unwrap();
        let purges = purger.join().unwrap();
        let scans: u32 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        let reads = pointer.join().unwrap();
        eprintln!("{purges} purges, {scans} scans, {reads} point reads raced the applier");
        assert!(scans > 0 && reads > 0, "the readers ran");
    });
    s.purge_tombstones(u64::MAX).unwrap();
    let all: Vec<Vec<u8>> = s.scan(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap().0).collect();
    assert_eq!(all, stable.iter().map(|&n| key(n)).collect::<Vec<_>>(), "only the stable keys are left");
}
