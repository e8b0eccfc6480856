//! The comparison suite's read workloads, one at a time, in a loop on
//! the calling thread — for counting instructions per query with callgrind,
//! which wall-clock benchmarks on a shared machine cannot give reliably:
//!
//! ```text
//! cargo build --release -p aurora-benches --example read_profile
//! valgrind --tool=callgrind --toggle-collect='read_profile::measured*' \
//!     target/release/examples/read_profile indexed 1000
//! ```
//!
//! Modes: `indexed` (`age == a`, ~111 of 10 000 users, the `age` index),
//! `scan` (`name` ends with "7", 1 000 of 10 000, no index), `chat` (the
//! newest 20 messages of one room, 1 000 rooms / 100 000 messages, the
//! `(room, at)` compound index), `hot` (a document by id from the hot
//! cache), `cold` (a document by id after reopen,
//! past the hot cache), `cold-sled` (the same read on raw sled, the peer it
//! is compared with). The data are the `compare` bench's (`AURORA_BENCH_DOCS`,
//! `AURORA_BENCH_CHAT_MESSAGES`), loaded through the same adapter
//! (`engines/aurora.rs`). Queries run as the adapter's do, minus the hop to
//! tokio's blocking pool: the query engine's `collect_shared` in a
//! read-only (snapshot) transaction. Every value is read once before
//! `measured` runs, so the loop sees warm caches. Prints the wall time
//! per iteration too (only a hint on a shared machine).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../engines/mod.rs"]
mod engines;

use aurora::query_engine::Query;
use aurora::{DocId, Order};
use aurora_benches::user;
use engines::aurora::AuroraEngine;
use engines::sled::SledEngine;
use engines::{chat_message, chat_room, Chat, Engine, Indexes, Mode, CHAT_ROOMS};
use std::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn id(i: u64) -> DocId {
    DocId::text(&format!("u{i:010}")).expect("id")
}

/// One query through the engine's synchronous core, at a fresh snapshot.
fn run(e: &AuroraEngine, q: &Query) -> usize {
    let mut tx = e.db.database().begin_with(aurora::Isolation::Snapshot).expect("begin");
    q.collect_shared(&mut tx).expect("query").len()
}

fn indexed(age: u64) -> Query {
    Query::new("users").filter(|f| f.eq("age", age as i64))
}

fn chat(room: u64) -> Query {
    Query::new("messages").filter(|f| f.eq("room", chat_room(room))).order_by("at", Order::Desc).limit(20)
}

/// Applies every write of the load to the cold store before the measured
/// loop, as a criterion run's steady state has it: the applier's cycle is
/// `sync_interval` (100 ms), longer than a loop of 1 000 queries, which
/// would otherwise merge the last batches from the memtable into every
/// read (4 200 of 62 700 instructions per `chat` query).
fn settle(e: &AuroraEngine) {
    e.db.database().collections().documents().store().checkpoint().expect("checkpoint");
}

/// The loop callgrind counts (`--toggle-collect='read_profile::measured*'`).
#[inline(never)]
fn measured(iters: u64, mut step: impl FnMut(u64) -> usize) -> usize {
    let mut total = 0;
    for i in 0..iters {
        total += step(i);
    }
    total
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "indexed".into());
    let iters: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let n = env("AURORA_BENCH_DOCS", 10_000);
    let mut rng = fastrand::Rng::with_seed(7);
    let (started, total) = match mode.as_str() {
        "indexed" | "scan" => {
            let mut e = AuroraEngine::open(dir.path(), Mode::Normal, Indexes::Age);
            let all: Vec<_> = (0..n).map(user).collect();
            for chunk in all.chunks(1000) {
                e.insert_many(chunk.to_vec());
            }
            settle(&e);
            if mode == "indexed" {
                (0..90).for_each(|a| assert!(run(&e, &indexed(a)) > 0));
                let ages: Vec<u64> = (0..iters).map(|_| rng.u64(0..90)).collect();
                let t = Instant::now();
                (t, measured(iters, |i| run(&e, &indexed(ages[i as usize]))))
            } else {
                let q = Query::new("users").filter(|f| f.ends_with("name", "7"));
                assert_eq!(run(&e, &q), (n / 10) as usize);
                let t = Instant::now();
                (t, measured(iters, |_| run(&e, &q)))
            }
        }
        "chat" => {
            let mut e = AuroraEngine::open_chat(dir.path());
            let m = env("AURORA_BENCH_CHAT_MESSAGES", 100_000);
            let all: Vec<_> = (0..m).map(chat_message).collect();
            for chunk in all.chunks(1000) {
                e.insert_messages(chunk.to_vec());
            }
            (0..CHAT_ROOMS).for_each(|r| assert_eq!(run(&e, &chat(r)), 20));
            settle(&e);
            let rooms: Vec<u64> = (0..iters).map(|_| rng.u64(0..CHAT_ROOMS)).collect();
            let t = Instant::now();
            (t, measured(iters, |i| run(&e, &chat(rooms[i as usize]))))
        }
        "cold" => {
            let mut e = AuroraEngine::open(dir.path(), Mode::Normal, Indexes::None);
            let all: Vec<_> = (0..n).map(user).collect();
            for chunk in all.chunks(1000) {
                e.insert_many(chunk.to_vec());
            }
            e.close();
            let mut e = AuroraEngine::open(dir.path(), Mode::Normal, Indexes::None);
            e.bypass_cache = true;
            (0..n).for_each(|i| assert!(e.get(&id(i))));
            let ids: Vec<DocId> = (0..iters).map(|_| id(rng.u64(0..n))).collect();
            let t = Instant::now();
            (t, measured(iters, |i| usize::from(e.get(&ids[i as usize]))))
        }
        "hot" => {
            // `hot_read`: a document by id from the hot cache.
            let mut e = AuroraEngine::open(dir.path(), Mode::Normal, Indexes::None);
            let all: Vec<_> = (0..n).map(user).collect();
            for chunk in all.chunks(1000) {
                e.insert_many(chunk.to_vec());
            }
            (0..n).for_each(|i| assert!(e.get(&id(i))));
            let ids: Vec<DocId> = (0..iters).map(|_| id(rng.u64(0..n))).collect();
            let t = Instant::now();
            (t, measured(iters, |i| usize::from(e.get(&ids[i as usize]))))
        }
        "cold-sled" => {
            // The peer the cold read is compared with: raw sled, same data.
            let mut e = SledEngine::open(dir.path(), Mode::Normal, Indexes::None);
            let all: Vec<_> = (0..n).map(user).collect();
            for chunk in all.chunks(1000) {
                e.insert_many(chunk.to_vec());
            }
            e.close();
            let mut e = SledEngine::open(dir.path(), Mode::Normal, Indexes::None);
            (0..n).for_each(|i| assert!(e.get(&id(i))));
            let ids: Vec<DocId> = (0..iters).map(|_| id(rng.u64(0..n))).collect();
            let t = Instant::now();
            (t, measured(iters, |i| usize::from(e.get(&ids[i as usize]))))
        }
        other => panic!("unknown mode {other}: indexed, scan, chat, hot, cold or cold-sled"),
    };
    let per = started.elapsed().as_secs_f64() * 1e6 / iters as f64;
    println!("{mode}: {iters} iterations, {total} results, {per:.2} µs per iteration (wall, a hint only)");
}
