//! Put latency distribution per durability mode: 100 000 single-writer
//! `DocumentStore::put`s (2 000 in `Strict`), printing throughput and
//! p50/p99/p99.9/max latency. Tail latency is what criterion's means hide
//! (this is how sled's multi-second flush stalls were found).
//!
//! `cargo run --release -p aurora-benches --example put_latency [checkpoint_ms]`
#![allow(missing_docs, clippy::unwrap_used)]
use aurora_benches::user;
use aurora_storage::{DocumentStore, DocumentStoreConfig, Durability, StoreConfig};
use std::time::{Duration, Instant};

fn main() {
    let ckpt: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let prealloc = StoreConfig::default().wal_preallocate_bytes;
    let strict_rounds = (0..3).flat_map(|_| [(Durability::Strict, 0), (Durability::Strict, prealloc)]);
    let runs = [(Durability::Buffered, prealloc), (Durability::Balanced, prealloc)].into_iter().chain(strict_rounds);
    for (mode, preallocate) in runs {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            durability: mode,
            checkpoint_interval: Duration::from_millis(ckpt),
            wal_preallocate_bytes: preallocate,
            ..StoreConfig::default()
        };
        let docs = DocumentStore::open(dir.path(), cfg, DocumentStoreConfig::default()).unwrap();
        let n = if mode == Durability::Strict { 2000 } else { 100_000 };
        let mut lat = Vec::with_capacity(n);
        let start = Instant::now();
        for i in 0..n as u64 {
            let t = Instant::now();
            docs.put("users", &user(i)).unwrap();
            lat.push(t.elapsed());
        }
        let total = start.elapsed();
        lat.sort();
        let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
        println!(
            "{mode:?}{}: {:.0} ops/s p50 {:?} p99 {:?} p999 {:?} max {:?}",
            if mode == Durability::Strict { format!(" (preallocate {preallocate} B)") } else { String::new() },
            n as f64 / total.as_secs_f64(),
            p(0.5),
            p(0.99),
            p(0.999),
            p(1.0)
        );
    }
}
