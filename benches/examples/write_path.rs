//! The write path alone, for a profiler (callgrind) or a wall clock: `n`
//! documents written through the `Aurora` handle the way the comparison
//! benchmark and the search benchmark write them, then the database closed
//! (everything applied to the cold store and checkpointed, so the
//! background work of a write is counted too).
//!
//! `cargo run --release -p aurora-benches --example write_path -- <kind> [n]`
//!
//! kinds (default n = 20 000):
//! - `bulk100`: `insert_many` of 100 users (text ids, an `age` index) — `bulk_insert_100_normal`;
//! - `random100`: as `bulk100`, each user with a `score` drawn at random
//!   (seeded) and indexed beside `age` — index entries that land all over
//!   their index instead of at the end of a few runs (the worst case for
//!   an index stored in chunks of entries);
//! - `single`: `insert_into` of one user (text ids, an `age` index) — `insert_1_index_normal`;
//! - `many1000`: `insert_many` of 1 000 short messages with generated ids, no index — `search_vs_fts5`'s inserts;
//! - `feed`: as `many1000`, then the whole change feed read back once
//!   (`Database::changes_since(0)`, what a search index does after its
//!   listener lagged); callgrind's `--toggle-collect='*changes_in*'`
//!   counts that read alone;
//! - `strict1`: `insert_into` of one user (text ids, no index) under
//!   `Durability::Strict`, from a plain thread through `block_on` on a
//!   two-worker runtime — `writers_strict_1`; for `strace -f -c` (system
//!   calls and fsyncs per commit) and `perf stat -e context-switches`;
//! - `strict1-core`: as `strict1`, calling the synchronous core
//!   (`Database::insert`) on the thread — the commit without the async
//!   handle's hand-off to the blocking pool;
//! - `strict1-sqlite`: the same inserts into SQLite (WAL,
//!   `synchronous=FULL`) as `writers_strict_1` sets it up — the peer, in
//!   the same run;
//! - `strict1-floor`: one 153-byte `pwrite` and one `fdatasync` per commit
//!   on a zero-filled file, nothing else — what the disk costs.
//!
//! Every kind prints the bytes the process wrote to the disk
//! (`/proc/self/io` `write_bytes`, WAL and cold store, up to the close) per
//! document.
//!
//! Instructions per document: run twice under
//! `valgrind --tool=callgrind` with n and 2n and divide the difference by n
//! (the open and close cancel out).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
use aurora::{doc, Aurora, AuroraConfig, Document, FieldDefinition, FieldType};
use aurora_benches::user;
use std::time::Instant;

fn message(i: u64) -> Document {
    doc! { "room": format!("r{}", i % 10), "body": format!("message number {i} about nothing in particular") }
}

/// A user with a `score` drawn at random (seeded by `i`) in `0..2^40`.
fn scored_user(i: u64) -> Document {
    let score = fastrand::Rng::with_seed(i).i64(0..1 << 40);
    let mut doc = user(i);
    doc.set("score", score);
    doc
}

/// Bytes this process has caused to be written to storage so far
/// (`/proc/self/io`, `write_bytes`; 0 where it cannot be read).
fn written_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("write_bytes: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

fn main() {
    let kind = std::env::args().nth(1).unwrap_or_else(|| "bulk100".into());
    let n: u64 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    if kind.starts_with("strict1") {
        return strict(&kind, n);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let db = Aurora::with_config(AuroraConfig::new(dir.path())).await.unwrap();
        let fields = match kind.as_str() {
            "many1000" | "feed" => vec![],
            "random100" => vec![
                ("age", FieldDefinition::new(FieldType::Int).indexed()),
                ("score", FieldDefinition::new(FieldType::Int).indexed()),
            ],
            _ => vec![("age", FieldDefinition::new(FieldType::Int).indexed())],
        };
        db.new_collection("users", fields).await.unwrap();
        let start = Instant::now();
        match kind.as_str() {
            "bulk100" | "random100" | "many1000" | "feed" => {
                let (per, make): (u64, fn(u64) -> Document) = match kind.as_str() {
                    "bulk100" => (100, user),
                    "random100" => (100, scored_user),
                    _ => (1000, message),
                };
                let mut i = 0;
                while i < n {
                    let batch: Vec<Document> = (i..(i + per).min(n)).map(make).collect();
                    db.insert_many("users", batch).await.unwrap();
                    i += per;
                }
            }
            "single" => {
                for i in 0..n {
                    db.insert_into("users", user(i)).await.unwrap();
                }
            }
            other => panic!("unknown kind {other} (bulk100, single, many1000)"),
        }
        let t = start.elapsed();
        if kind == "feed" {
            let read = Instant::now();
            let commits = db.database().changes_since(0).unwrap();
            let changes: usize = commits.iter().map(|c| c.changes.len()).sum();
            assert_eq!(changes as u64, n);
            println!("feed: {changes} changes read back in {:.3} s", read.elapsed().as_secs_f64());
        }
        db.close().await.unwrap();
        println!("{kind}: {n} documents in {:.3} s = {:.0} docs/s", t.as_secs_f64(), n as f64 / t.as_secs_f64());
        println!("{kind}: {:.0} bytes written to disk per document", written_bytes() as f64 / n as f64);
    });
}

/// One `Strict` writer, set up as `compare.rs`'s `writers_strict_1`.
fn strict(kind: &str, n: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    if kind == "strict1-sqlite" || kind == "strict1-floor" {
        return peer(kind, n, dir.path());
    }
    let config = AuroraConfig { durability: aurora::Durability::Strict, ..AuroraConfig::new(dir.path()) };
    let db = rt.block_on(Aurora::with_config(config)).unwrap();
    rt.block_on(db.new_collection("users", Vec::<(&str, FieldDefinition)>::new())).unwrap();
    let start = Instant::now();
    for i in 0..n {
        if kind == "strict1-core" {
            db.database().insert("users", user(i)).unwrap();
        } else {
            rt.block_on(db.insert_into("users", user(i))).unwrap();
        }
    }
    let t = start.elapsed();
    rt.block_on(db.close()).unwrap();
    let per = t.as_secs_f64() / n as f64 * 1e6;
    println!(
        "{kind}: {n} commits in {:.3} s = {:.0} commits/s, {per:.1} µs each",
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64()
    );
}

/// The peer and the floor of `strict`: SQLite in WAL mode with
/// `synchronous=FULL`, or a bare write + `fdatasync` per commit.
fn peer(kind: &str, n: u64, dir: &std::path::Path) {
    use std::os::unix::fs::FileExt;
    let start;
    if kind == "strict1-sqlite" {
        let conn = rusqlite::Connection::open(dir.join("bench.sqlite")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute(
            "CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, email TEXT, age INTEGER, active INTEGER)",
            [],
        )
        .unwrap();
        start = Instant::now();
        for i in 0..n {
            let d = user(i);
            conn.prepare_cached("INSERT INTO users (id, name, email, age, active) VALUES (?1, 'n', 'e', 1, 1)")
                .unwrap()
                .execute([d.id.to_string()])
                .unwrap();
        }
    } else {
        let file = std::fs::File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.join("floor"))
            .unwrap();
        file.write_all_at(&vec![0u8; 1 << 20], 0).unwrap();
        file.sync_all().unwrap();
        let record = [7u8; 153];
        start = Instant::now();
        for i in 0..n {
            file.write_all_at(&record, (i * 153) % (1 << 20)).unwrap();
            file.sync_data().unwrap();
        }
    }
    let t = start.elapsed();
    let per = t.as_secs_f64() / n as f64 * 1e6;
    println!(
        "{kind}: {n} commits in {:.3} s = {:.0} commits/s, {per:.1} µs each",
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64()
    );
}
