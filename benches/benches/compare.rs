//! The comparison suite: Aurora next to raw sled, redb and SQLite (WAL,
//! `synchronous=NORMAL` / `FULL`), every engine doing the same work on the
//! same documents in the same run, through the adapters in `engines/`.
//! Workloads are named as in the study's §10.1 table; write workloads run
//! in both durability modes (`_normal`, `_strict`, see `engines::Mode`).
//! `cargo xtask bench` runs this and writes `docs/benchmarks.md` from
//! criterion's estimates.
//!
//! Data set size for reads and queries: `AURORA_BENCH_DOCS` (default 10 000);
//! the chat workload ("last 20 of one room among 1 000 rooms"):
//! `AURORA_BENCH_CHAT_MESSAGES` (default 100 000).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../engines/mod.rs"]
mod engines;

use aurora_benches::user;
use aurora_core::DocId;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use engines::aurora::AuroraEngine;
use engines::redb::RedbEngine;
use engines::sled::SledEngine;
use engines::sqlite::SqliteEngine;
use engines::{chat_message, chat_room, Chat, Engine, Indexes, Mode, CHAT_ROOMS};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn docs() -> u64 {
    std::env::var("AURORA_BENCH_DOCS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// Fresh document numbers for inserts, never reused within a run.
static NEXT: AtomicU64 = AtomicU64::new(1 << 32);

fn fresh() -> u64 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn id(i: u64) -> DocId {
    DocId::text(&format!("u{i:010}")).expect("id")
}

fn seeded<E: Engine>(dir: &std::path::Path, mode: Mode, indexes: Indexes, n: u64) -> E {
    let mut e = E::open(dir, mode, indexes);
    for start in (0..n).step_by(1000) {
        e.insert_many((start..(start + 1000).min(n)).map(user).collect());
    }
    e
}

fn group<'a>(c: &'a mut Criterion, name: &str, elements: u64) -> Group<'a> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(elements));
    g
}

fn reads<E: Engine>(c: &mut Criterion, cold_engine: impl FnOnce(&std::path::Path) -> E) {
    let n = docs();
    let name = E::name(Mode::Normal);
    let dir = tempfile::tempdir().unwrap();
    let mut e: E = seeded(dir.path(), Mode::Normal, Indexes::None, n);
    for i in 0..n {
        assert!(e.get(&id(i)));
    }
    group(c, "hot_read", 1).bench_function(&name, |b| b.iter(|| assert!(e.get(&id(fastrand::u64(0..n))))));
    e.close();
    let mut e = cold_engine(dir.path());
    group(c, "cold_read", 1).bench_function(&name, |b| b.iter(|| assert!(e.get(&id(fastrand::u64(0..n))))));
    e.close();
}

fn queries<E: Engine>(c: &mut Criterion) {
    let n = docs();
    let name = E::name(Mode::Normal);
    let dir = tempfile::tempdir().unwrap();
    let mut e: E = seeded(dir.path(), Mode::Normal, Indexes::Age, n);
    group(c, "indexed_query", 1).bench_function(&name, |b| b.iter(|| assert!(e.find_by_age(fastrand::i64(0..90)) > 0)));
    group(c, "full_scan_query", 1)
        .bench_function(&name, |b| b.iter(|| assert_eq!(e.scan_name_ends_with_7(), (n / 10) as usize)));
    e.close();
}

/// "The last 20 messages of one room": `CHAT_ROOMS` rooms, `chat_messages()`
/// messages, each engine with its `(room, at)` index; a random room each
/// iteration, 20 whole documents newest first.
fn chat<E: Chat>(c: &mut Criterion, name: &str) {
    let n = chat_messages();
    let dir = tempfile::tempdir().unwrap();
    let mut e = E::open_chat(dir.path());
    for start in (0..n).step_by(1000) {
        e.insert_messages((start..(start + 1000).min(n)).map(chat_message).collect());
    }
    let newest = |room: u64| -> Vec<i64> {
        let last = (n - 1 - room) / CHAT_ROOMS * CHAT_ROOMS + room;
        (0..20u64).filter_map(|k| last.checked_sub(k * CHAT_ROOMS)).map(|i| i as i64).collect()
    };
    assert_eq!(e.last_20(&chat_room(7)), newest(7), "{name}: the right 20 messages");
    group(c, "chat_last_20", 1).bench_function(name, |b| {
        b.iter(|| {
            let room = fastrand::u64(0..CHAT_ROOMS);
            assert_eq!(e.last_20(&chat_room(room)).len(), 20);
        })
    });
}

/// Messages of the chat workload: `AURORA_BENCH_CHAT_MESSAGES` (default 100 000).
fn chat_messages() -> u64 {
    std::env::var("AURORA_BENCH_CHAT_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

fn writes<E: Engine>(c: &mut Criterion, mode: Mode) {
    let suffix = if mode == Mode::Strict { "strict" } else { "normal" };
    let name = E::name(mode);
    for (workload, indexes) in [("insert_1_index", Indexes::Age), ("insert_2_indexes", Indexes::AgeAndEmail)] {
        let dir = tempfile::tempdir().unwrap();
        let mut e = E::open(dir.path(), mode, indexes);
        group(c, &format!("{workload}_{suffix}"), 1).bench_function(&name, |b| b.iter(|| e.insert(user(fresh()))));
        e.close();
    }
    {
        let dir = tempfile::tempdir().unwrap();
        let mut e = E::open(dir.path(), mode, Indexes::Age);
        group(c, &format!("bulk_insert_100_{suffix}"), 100).bench_function(&name, |b| {
            b.iter(|| {
                let batch: Vec<_> = (0..100).map(|_| user(fresh())).collect();
                e.insert_many(batch);
            })
        });
        e.close();
    }
    {
        let dir = tempfile::tempdir().unwrap();
        let mut e: E = seeded(dir.path(), mode, Indexes::None, 1000);
        group(c, &format!("txn_3_ops_{suffix}"), 1).bench_function(&name, |b| {
            b.iter(|| {
                let a = fastrand::u64(0..1000);
                let b2 = (a + 1 + fastrand::u64(0..998)) % 1000;
                e.transfer(&id(a), &id(b2), &user(fresh()));
            })
        });
        e.close();
    }
}

/// `threads` writers sharing `write`, for `iters` writes in all; the time
/// is scaled to exactly `iters` writes.
fn concurrent(iters: u64, threads: u64, write: Arc<dyn Fn(u64) + Send + Sync>) -> Duration {
    let per = iters.div_ceil(threads).max(1);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let write = Arc::clone(&write);
            std::thread::spawn(move || (0..per).for_each(|_| write(fresh())))
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    start.elapsed().mul_f64(iters as f64 / (per * threads) as f64)
}

fn writers(c: &mut Criterion) {
    for threads in [1u64, 8, 64] {
        let mut g = group(c, &format!("writers_strict_{threads}"), 1);
        {
            let dir = tempfile::tempdir().unwrap();
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let config = AuroraEngine::config(dir.path(), Mode::Strict);
            let db = rt.block_on(aurora::Aurora::with_config(config)).unwrap();
            rt.block_on(db.new_collection("users", Vec::<(&str, aurora::FieldDefinition)>::new())).unwrap();
            let rt = Arc::new(rt);
            let (d, r) = (db.clone(), Arc::clone(&rt));
            let write: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |i| {
                r.block_on(d.insert_into("users", user(i))).unwrap();
            });
            g.bench_function("aurora", |b| b.iter_custom(|n| concurrent(n, threads, Arc::clone(&write))));
            rt.block_on(db.close()).unwrap();
        }
        {
            let dir = tempfile::tempdir().unwrap();
            let db = sled::open(dir.path().join("sled")).unwrap();
            let write: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |i| {
                let d = user(i);
                db.insert(d.id.to_string(), aurora_storage::format::encode(&d).unwrap()).unwrap();
                db.flush().unwrap();
            });
            g.bench_function("sled", |b| b.iter_custom(|n| concurrent(n, threads, Arc::clone(&write))));
        }
        {
            let dir = tempfile::tempdir().unwrap();
            let db = Arc::new(redb::Database::create(dir.path().join("bench.redb")).unwrap());
            const T: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new("docs");
            let write: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |i| {
                let d = user(i);
                let tx = db.begin_write().unwrap(); // Durability::Immediate by default
                {
                    let mut t = tx.open_table(T).unwrap();
                    let raw = aurora_storage::format::encode(&d).unwrap();
                    t.insert(d.id.to_string().as_str(), raw.as_slice()).unwrap();
                }
                tx.commit().unwrap();
            });
            g.bench_function("redb", |b| b.iter_custom(|n| concurrent(n, threads, Arc::clone(&write))));
        }
        {
            let dir = tempfile::tempdir().unwrap();
            drop(SqliteEngine::open(dir.path(), Mode::Strict, Indexes::None));
            // One connection behind a mutex: SQLite allows one writer at a
            // time, and connections per thread would wait in its busy
            // handler (which sleeps), far slower than queueing here.
            let conn = parking_lot::Mutex::new(SqliteEngine::connect(dir.path(), Mode::Strict));
            let write: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |i| {
                let d = user(i);
                conn.lock()
                    .prepare_cached("INSERT INTO users (id, name, email, age, active) VALUES (?1, 'n', 'e', 1, 1)")
                    .unwrap()
                    .execute([d.id.to_string()])
                    .unwrap();
            });
            g.bench_function("sqlite-full", |b| b.iter_custom(|n| concurrent(n, threads, Arc::clone(&write))));
        }
        g.finish();
    }
}

fn suite(c: &mut Criterion) {
    // Aurora's cold read: after reopen, past the hot cache, so every read
    // is a cache miss (otherwise the first read of a key promotes it).
    reads::<AuroraEngine>(c, |dir| {
        let mut e = AuroraEngine::open(dir, Mode::Normal, Indexes::None);
        e.bypass_cache = true;
        e
    });
    reads::<SledEngine>(c, |dir| SledEngine::open(dir, Mode::Normal, Indexes::None));
    reads::<RedbEngine>(c, |dir| RedbEngine::open(dir, Mode::Normal, Indexes::None));
    reads::<SqliteEngine>(c, |dir| SqliteEngine::open(dir, Mode::Normal, Indexes::None));
    queries::<AuroraEngine>(c);
    queries::<SledEngine>(c);
    queries::<RedbEngine>(c);
    queries::<SqliteEngine>(c);
    chat::<AuroraEngine>(c, "aurora");
    chat::<engines::sled::SledChat>(c, "sled");
    chat::<RedbEngine>(c, "redb");
    chat::<SqliteEngine>(c, "sqlite-normal");
    for mode in [Mode::Normal, Mode::Strict] {
        writes::<AuroraEngine>(c, mode);
        writes::<SledEngine>(c, mode);
        writes::<RedbEngine>(c, mode);
        writes::<SqliteEngine>(c, mode);
    }
}

criterion_group!(benches, suite, writers);
criterion_main!(benches);
