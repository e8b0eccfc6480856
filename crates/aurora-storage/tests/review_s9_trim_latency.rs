//! Hostile review (session 9) of `malloc_trim` after checkpoints
//! (`allocator.rs`): `malloc_trim(0)` walks every glibc arena holding its
//! lock, so a thread that allocates meanwhile waits. Two measurements:
//!
//! - `a_trim_of_a_fragmented_heap_stalls_other_allocators_briefly`: a heap
//!   fragmented over several threads' arenas (as sled's freed pages and
//!   I/O buffers leave it), then `release_free_memory` while another thread
//!   allocates in a loop; asserts the trim and the longest single
//!   allocation stay under `AURORA_S9_TRIM_STALL_MS` (default 50 ms).
//! - `single_puts_during_a_bulk_load` (measurement, gated by
//!   `AURORA_S9_TRIM_LATENCY=1`): single puts at a steady rate while
//!   another thread bulk-loads, 20 ms checkpoints; prints p50/p99/p99.9/max.
//!   `AURORA_S9_TRIM_LOADER_PAUSE_US` paces the bulk load (default 0).
//!   Run it with `LD_PRELOAD=libnotrim.so` (a `malloc_trim` that does
//!   nothing) for the comparison without the trim.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_storage::{Batch, Store, StoreConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn stall_bound() -> Duration {
    Duration::from_millis(std::env::var("AURORA_S9_TRIM_STALL_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(50))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_trim_of_a_fragmented_heap_stalls_other_allocators_briefly() {
    // Four threads (four arenas) each leave 32 MiB free between pinned
    // small blocks.
    let pins: Vec<Vec<Vec<u8>>> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut pins = Vec::new();
                let mut blocks = Vec::new();
                for i in 0..2048 {
                    blocks.push(vec![(i + t) as u8 | 1; 16 << 10]);
                    pins.push(vec![1u8; 64]);
                }
                drop(blocks);
                pins
            })
            .join()
            .unwrap()
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let allocator = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let mut keep: Vec<Vec<u8>> = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let v = vec![i as u8; 64 + i % 4096];
                worst = worst.max(t.elapsed());
                keep.push(v);
                if keep.len() > 256 {
                    keep.clear();
                }
                i += 1;
            }
            worst
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let mut trims = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        aurora_storage::allocator::release_free_memory();
        trims.push(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let worst = allocator.join().unwrap();
    eprintln!("trims {trims:?}; longest allocation meanwhile {worst:?}");
    assert!(trims[0] < stall_bound(), "the first trim took {:?}", trims[0]);
    assert!(worst < stall_bound(), "an allocation waited {worst:?} for the trim");
    assert_eq!(pins.iter().map(Vec::len).sum::<usize>(), 4 * 2048);
}

#[test]
fn single_puts_during_a_bulk_load() {
    if std::env::var("AURORA_S9_TRIM_LATENCY").is_err() {
        return;
    }
    let seconds: u64 = std::env::var("AURORA_S9_TRIM_LATENCY_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig { checkpoint_interval: Duration::from_millis(20), ..StoreConfig::default() };
    let store = Arc::new(Store::open(dir.path(), cfg).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    // A pause after each bulk batch of 100 documents (µs): 0 loads flat
    // out (commits then wait for the applier: memtable backpressure).
    let pause: u64 = std::env::var("AURORA_S9_TRIM_LOADER_PAUSE_US").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let loader = {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut b = Batch::new();
                for _ in 0..100 {
                    n += 1;
                    b.put(format!("dbulk\0{n:012}").into_bytes(), vec![b'x'; 200]);
                    b.put(format!("xbulk\0age\0{:04}{n:012}", n % 97).into_bytes(), Vec::new());
                }
                assert!(matches!(store.commit(b).unwrap(), aurora_storage::CommitOutcome::Committed(_)));
                if pause > 0 {
                    std::thread::sleep(Duration::from_micros(pause));
                }
            }
            n
        })
    };
    let mut lat = Vec::new();
    let started = Instant::now();
    let mut next = started;
    let mut i = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        next += Duration::from_millis(2);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        i += 1;
        let t = Instant::now();
        store.put(format!("dsingle\0{i:012}").into_bytes(), vec![b'y'; 200]).unwrap();
        lat.push(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let bulk = loader.join().unwrap();
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    eprintln!(
        "single puts {} (every 2 ms) during a bulk load of {bulk} documents + index entries in {seconds} s: \
         p50 {:?} p99 {:?} p99.9 {:?} max {:?} (LD_PRELOAD {:?})",
        lat.len(),
        p(0.5),
        p(0.99),
        p(0.999),
        p(1.0),
        std::env::var("LD_PRELOAD").ok()
    );
    Arc::into_inner(store).unwrap().close().unwrap();
}
