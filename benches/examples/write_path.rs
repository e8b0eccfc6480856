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
//! - `single`: `insert_into` of one user (text ids, an `age` index) — `insert_1_index_normal`;
//! - `many1000`: `insert_many` of 1 000 short messages with generated ids, no index — `search_vs_fts5`'s inserts;
//! - `feed`: as `many1000`, then the whole change feed read back once
//!   (`Database::changes_since(0)`, what a search index does after its
//!   listener lagged); callgrind's `--toggle-collect='*changes_in*'`
//!   counts that read alone.
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

fn main() {
    let kind = std::env::args().nth(1).unwrap_or_else(|| "bulk100".into());
    let n: u64 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let db = Aurora::with_config(AuroraConfig::new(dir.path())).await.unwrap();
        let fields = match kind.as_str() {
            "many1000" | "feed" => vec![],
            _ => vec![("age", FieldDefinition::new(FieldType::Int).indexed())],
        };
        db.new_collection("users", fields).await.unwrap();
        let start = Instant::now();
        match kind.as_str() {
            "bulk100" | "many1000" | "feed" => {
                let (per, make): (u64, fn(u64) -> Document) =
                    if kind == "bulk100" { (100, user) } else { (1000, message) };
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
    });
}
