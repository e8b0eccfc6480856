//! Storage benchmarks, each next to raw sled doing the same work in the same run:
//!
//! - `get_hot`: a cached document (`DocumentStore::get`) vs a sled `get` of
//!   the encoded document, with and without decoding it;
//! - `get_cold`: a document read through the cold path (hot cache off,
//!   store reopened) vs sled `get` + decode;
//! - `put_1` / `put_64`: inserting documents in each durability mode with
//!   1 and 64 concurrent writers, vs sled `insert` (no durability) and sled
//!   `insert` + `flush` (durable, like `Strict`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aurora_benches::user;
use aurora_core::Document;
use aurora_storage::{format, DocumentStore, DocumentStoreConfig, Durability, StoreConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEYS: u64 = 10_000;
const COLLECTION: &str = "users";

fn store_config(durability: Durability) -> StoreConfig {
    StoreConfig { durability, cold_cache_capacity_mb: 64, ..StoreConfig::default() }
}

fn open_docs(dir: &std::path::Path, durability: Durability, hot_mb: usize) -> DocumentStore {
    let cfg = DocumentStoreConfig { hot_cache_size_mb: hot_mb, ..DocumentStoreConfig::default() };
    DocumentStore::open(dir, store_config(durability), cfg).unwrap()
}

fn open_sled(dir: &std::path::Path) -> sled::Db {
    sled::Config::new().path(dir).cache_capacity(64 << 20).open().unwrap()
}

/// An Aurora store and a sled db holding the same `KEYS` documents.
fn populated() -> (tempfile::TempDir, tempfile::TempDir, Vec<Document>) {
    let docs: Vec<Document> = (0..KEYS).map(user).collect();
    let adir = tempfile::tempdir().unwrap();
    let a = open_docs(adir.path(), Durability::Balanced, 128);
    for chunk in docs.chunks(500) {
        a.put_many(COLLECTION, chunk).unwrap();
    }
    a.store().close().unwrap();
    let sdir = tempfile::tempdir().unwrap();
    let s = open_sled(sdir.path());
    for d in &docs {
        s.insert(aurora_storage::document_key(COLLECTION, &d.id), format::encode(d).unwrap()).unwrap();
    }
    s.flush().unwrap();
    (adir, sdir, docs)
}

fn gets(c: &mut Criterion) {
    let (adir, sdir, docs) = populated();
    let keys: Vec<Vec<u8>> = docs.iter().map(|d| aurora_storage::document_key(COLLECTION, &d.id)).collect();
    let sled_db = open_sled(sdir.path());
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 7919) % KEYS as usize;
        i
    };

    let mut g = c.benchmark_group("get_hot");
    g.throughput(Throughput::Elements(1));
    let hot = open_docs(adir.path(), Durability::Balanced, 128);
    for d in &docs {
        hot.get(COLLECTION, &d.id).unwrap();
    }
    g.bench_function("aurora", |b| b.iter(|| black_box(hot.get(COLLECTION, &docs[next()].id).unwrap())));
    g.bench_function("sled_get_raw", |b| b.iter(|| black_box(sled_db.get(&keys[next()]).unwrap())));
    g.bench_function("sled_get_decode", |b| {
        b.iter(|| {
            let raw = sled_db.get(&keys[next()]).unwrap().unwrap();
            black_box(format::decode::<Document>(b"", &raw).unwrap())
        })
    });
    g.finish();
    hot.store().close().unwrap();

    let mut g = c.benchmark_group("get_cold");
    g.throughput(Throughput::Elements(1));
    let cold = open_docs(adir.path(), Durability::Balanced, 0);
    g.bench_function("aurora", |b| b.iter(|| black_box(cold.get(COLLECTION, &docs[next()].id).unwrap())));
    g.bench_function("sled_get_decode", |b| {
        b.iter(|| {
            let raw = sled_db.get(&keys[next()]).unwrap().unwrap();
            black_box(format::decode::<Document>(b"", &raw).unwrap())
        })
    });
    g.finish();
}

/// Runs `iters` operations split over `writers` threads; returns the wall time.
fn concurrent(writers: u64, iters: u64, op: impl Fn(u64) + Send + Sync + 'static) -> Duration {
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= iters {
                    break;
                }
                op(i);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    start.elapsed()
}

fn puts(c: &mut Criterion) {
    let seq = Arc::new(AtomicU64::new(1_000_000));
    for writers in [1u64, 64] {
        let mut g = c.benchmark_group(format!("put_{writers}"));
        g.throughput(Throughput::Elements(1));
        g.sample_size(10);
        for (name, mode) in [
            ("aurora_strict", Durability::Strict),
            ("aurora_balanced", Durability::Balanced),
            ("aurora_buffered", Durability::Buffered),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let docs = open_docs(dir.path(), mode, 128);
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| {
                    let (docs, seq) = (docs.clone(), seq.clone());
                    concurrent(writers, iters, move |_| {
                        docs.put(COLLECTION, &user(seq.fetch_add(1, Ordering::Relaxed))).unwrap();
                    })
                })
            });
            docs.store().close().unwrap();
        }
        for (name, flush) in [("sled_insert", false), ("sled_insert_flush", true)] {
            let dir = tempfile::tempdir().unwrap();
            let db = open_sled(dir.path());
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| {
                    let (db, seq) = (db.clone(), seq.clone());
                    concurrent(writers, iters, move |_| {
                        let d = user(seq.fetch_add(1, Ordering::Relaxed));
                        db.insert(aurora_storage::document_key(COLLECTION, &d.id), format::encode(&d).unwrap())
                            .unwrap();
                        if flush {
                            db.flush().unwrap();
                        }
                    })
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, gets, puts);
criterion_main!(benches);
