//! Job-queue benchmarks (Balanced durability, on-disk, 2 tokio workers):
//!
//! - `enqueue/one`: one `workers.enqueue` (a transaction each);
//! - `enqueue/batch_100`: `enqueue_many` of 100 jobs (one transaction);
//! - `end_to_end/concurrency_{1,16}`: 1 000 no-op jobs from enqueue
//!   (batches of 100) to the last completion — three transactions per job
//!   (enqueue, claim, completion); reported as jobs per second.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aurora::{Aurora, Job, WorkerConfig, Workers};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn open(rt: &tokio::runtime::Runtime, concurrency: usize) -> (tempfile::TempDir, Aurora, Workers) {
    let dir = tempfile::tempdir().unwrap();
    let db = rt.block_on(Aurora::open(dir.path())).unwrap();
    let w = rt.block_on(db.workers(WorkerConfig::with_concurrency(concurrency))).unwrap();
    (dir, db, w)
}

fn enqueue(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_d, _db, w) = open(&rt, 1); // not started: measures the queue write alone
    let mut g = c.benchmark_group("workers_enqueue");
    g.throughput(Throughput::Elements(1));
    g.bench_function("one", |b| b.iter(|| rt.block_on(w.enqueue(Job::new("noop"))).unwrap()));
    g.throughput(Throughput::Elements(100));
    g.bench_function("batch_100", |b| {
        b.iter(|| rt.block_on(w.enqueue_many((0..100).map(|_| Job::new("noop")).collect())).unwrap())
    });
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    const JOBS: usize = 1000;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut g = c.benchmark_group("workers_end_to_end");
    g.throughput(Throughput::Elements(JOBS as u64));
    g.sample_size(10);
    for concurrency in [1usize, 16] {
        let (_d, _db, w) = open(&rt, concurrency);
        let done = Arc::new(AtomicUsize::new(0));
        let d = Arc::clone(&done);
        w.register_handler("noop", move |_| {
            d.fetch_add(1, Ordering::Relaxed);
            async { Ok(()) }
        });
        rt.block_on(async { w.start() }).unwrap();
        g.bench_function(BenchmarkId::new("concurrency", concurrency), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let target = done.load(Ordering::Relaxed) + JOBS;
                    let start = Instant::now();
                    rt.block_on(async {
                        for _ in 0..JOBS / 100 {
                            w.enqueue_many((0..100).map(|_| Job::new("noop")).collect()).await.unwrap();
                        }
                        while done.load(Ordering::Relaxed) < target {
                            tokio::time::sleep(Duration::from_micros(200)).await;
                        }
                    });
                    total += start.elapsed();
                }
                total
            })
        });
        rt.block_on(w.shutdown()).unwrap();
    }
    g.finish();
}

criterion_group!(benches, enqueue, end_to_end);
criterion_main!(benches);
