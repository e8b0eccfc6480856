//! Change-event benchmarks (criterion means; the `event_latency` example
//! prints p50/p99 of the same paths):
//!
//! - `commit_to_listeners/{1,10,100}`: a commit and its delivery to every listener;
//! - `commit_to_live_query`: a commit and the resulting live-query update;
//! - `writer/{0,100}_idle_listeners`: commits while 0 or 100 listeners that
//!   never read are attached (slow consumers must not slow writers).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, FieldDefinition};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn open(rt: &tokio::runtime::Runtime) -> (tempfile::TempDir, Aurora) {
    let dir = tempfile::tempdir().unwrap();
    let db = rt
        .block_on(Aurora::with_config(AuroraConfig { event_buffer: 1 << 16, ..AuroraConfig::new(dir.path()) }))
        .unwrap();
    rt.block_on(db.new_collection("e", Vec::<(&str, FieldDefinition)>::new())).unwrap();
    (dir, db)
}

fn events(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut g = c.benchmark_group("events");
    g.throughput(Throughput::Elements(1));
    for n in [1usize, 10, 100] {
        let (_d, db) = open(&rt);
        let mut listeners: Vec<_> = (0..n).map(|_| db.listen("e")).collect();
        let mut i = 0i64;
        g.bench_function(BenchmarkId::new("commit_to_listeners", n), |b| {
            b.iter(|| {
                i += 1;
                rt.block_on(async {
                    db.insert_into("e", doc! { "n": i }).await.unwrap();
                    for l in &mut listeners {
                        l.recv().await.unwrap();
                    }
                })
            })
        });
    }
    {
        let (_d, db) = open(&rt);
        let mut watcher = rt.block_on(db.query("e").filter(|f| f.gte("n", 0)).watch()).unwrap();
        let mut i = 0i64;
        g.bench_function("commit_to_live_query", |b| {
            b.iter(|| {
                i += 1;
                rt.block_on(async {
                    db.insert_into("e", doc! { "n": i }).await.unwrap();
                    watcher.recv().await.unwrap();
                })
            })
        });
    }
    for idle in [0usize, 100] {
        let (_d, db) = open(&rt);
        let _idle: Vec<_> = (0..idle).map(|_| db.listen("e")).collect();
        let mut i = 0i64;
        g.bench_function(BenchmarkId::new("writer_with_idle_listeners", idle), |b| {
            b.iter(|| {
                i += 1;
                rt.block_on(db.insert_into("e", doc! { "n": i })).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, events);
criterion_main!(benches);
