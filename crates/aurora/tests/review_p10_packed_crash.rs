//! Review (session 10) of the packed index trees from the database handle:
//! a child process bulk-loads a collection with two indexes — `age`, whose
//! values repeat (entries appended at ~50 places of the index), and
//! `score`, drawn at random (entries spread over the whole index: inserts
//! in the middle of chunks, splits) — and deletes documents of earlier
//! batches, until killed with SIGKILL. After each reopen:
//!
//! - every acknowledged batch is present whole, with its values, and every
//!   acknowledged delete is absent; nothing else is there but the one
//!   batch in flight at the kill, whole or not at all;
//! - a query by either index (`explain` shows the index) returns exactly
//!   the documents a scan finds with that value, for every `age` and a
//!   sample of `score` values, and a range over `age` likewise.
//!
//! Rounds: `AURORA_CRASH_ROUNDS` (default 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Access, Aurora, AuroraConfig, DocId, Document, Value};
use aurora_testkit::crash::{jitter, CrashTest};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const CRASH: CrashTest = CrashTest::new("packed_crash_child_entry", "AURORA_REVIEW_PACKED_CRASH_DIR");
const BATCH: u64 = 100;

fn config(dir: &std::path::Path) -> AuroraConfig {
    // Frequent checkpoints, so kills land after some (the WAL is cut and
    // the index chunks older than it must survive), and purges.
    AuroraConfig { cold_flush_interval_ms: 30, ..AuroraConfig::new(dir) }
}

/// The values of document `i` of batch `b` of child `pid`.
fn values(pid: u64, b: u64, i: u64) -> (i64, i64) {
    let mut x = pid.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (b << 20) ^ i;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    ((x % 50) as i64, (x >> 8) as i64 % 1_000_000)
}

fn id(pid: u64, b: u64, i: u64) -> String {
    format!("p{pid}-b{b:05}-{i:03}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packed_crash_child_entry() {
    let Some(dir) = CRASH.child_dir() else { return };
    let db = Aurora::with_config(config(&dir)).await.unwrap();
    let pid = u64::from(std::process::id());
    println!("ready");
    for b in 0u64.. {
        let docs: Vec<Document> = (0..BATCH)
            .map(|i| {
                let (age, score) = values(pid, b, i);
                doc! { "age": age, "score": score, "b": b as i64 }.id(DocId::text(&id(pid, b, i)).unwrap())
            })
            .collect();
        db.insert_many("people", docs).await.unwrap();
        println!("ack {pid} {b}");
        if b >= 3 && b % 2 == 1 {
            for i in (0..BATCH).step_by(4) {
                db.delete_document("people", &DocId::text(&id(pid, b - 3, i)).unwrap()).await.unwrap();
                println!("del {}", id(pid, b - 3, i));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_equal_the_documents_after_sigkill_during_bulk_loads() {
    if CRASH.is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Aurora::with_config(config(dir.path())).await.unwrap();
        db.new_collection("people", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
        db.create_index("people", "age", false).await.unwrap();
        db.create_index("people", "score", false).await.unwrap();
        db.close().await.unwrap();
    }
    // The documents that must be there: id -> (age, score).
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for round in 0..CRASH.rounds(3) {
        let lines = CRASH.spawn(dir.path()).kill_after(Duration::from_millis(400) + jitter(900));
        let mut in_flight: Option<(u64, u64)> = None;
        let mut deleted_in_flight: Option<String> = None;
        let mut batches = 0;
        for line in &lines {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["ack", pid, b] => {
                    let (pid, b): (u64, u64) = (pid.parse().unwrap(), b.parse().unwrap());
                    for i in 0..BATCH {
                        expected.insert(id(pid, b, i), values(pid, b, i));
                    }
                    in_flight = Some((pid, b + 1));
                    batches += 1;
                }
                ["del", doc] => {
                    expected.remove(*doc);
                }
                _ => {}
            }
        }
        // A delete in flight: the one after the last acknowledged.
        if let Some(last) = lines.last() {
            if let Some(doc) = last.strip_prefix("del ") {
                let (prefix, i) = doc.rsplit_once('-').unwrap();
                let next = format!("{prefix}-{:03}", i.parse::<u64>().unwrap() + 4);
                deleted_in_flight = Some(next);
            } else if let Some((pid, b)) = in_flight {
                if b >= 4 && b % 2 == 0 {
                    // The batch acknowledged last was odd: its first delete is in flight.
                    deleted_in_flight = Some(id(pid, b - 4, 0));
                }
            }
        }
        let db = Aurora::with_config(config(dir.path())).await.unwrap();
        let docs = db.query("people").collect().await.unwrap();
        let found: BTreeMap<String, (i64, i64)> = docs
            .iter()
            .map(|d| {
                let int = |f: &str| match d.get(f) {
                    Some(Value::Int(v)) => *v,
                    other => panic!("{f} of {:?}: {other:?}", d.id),
                };
                (d.id.to_string(), (int("age"), int("score")))
            })
            .collect();
        // The batch in flight: whole or absent.
        let mut extra: Vec<&String> = found.keys().filter(|k| !expected.contains_key(*k)).collect();
        if let Some((pid, b)) = in_flight {
            let prefix = format!("p{pid}-b{b:05}-");
            let partial: Vec<&&String> = extra.iter().filter(|k| k.starts_with(&prefix)).collect();
            assert!(
                partial.is_empty() || partial.len() as u64 == BATCH,
                "round {round}: {} of the batch in flight",
                partial.len()
            );
            if !partial.is_empty() {
                for i in 0..BATCH {
                    expected.insert(id(pid, b, i), values(pid, b, i));
                }
            }
            extra.retain(|k| !k.starts_with(&prefix));
        }
        extra.retain(|k| Some(k.as_str()) != deleted_in_flight.as_deref());
        assert!(extra.is_empty(), "round {round}: documents never acknowledged: {:?}", &extra[..extra.len().min(5)]);
        if let Some(d) = &deleted_in_flight {
            if !found.contains_key(d) {
                expected.remove(d);
            } else if let Some(v) = values_of(d) {
                expected.insert(d.clone(), v);
            }
        }
        for (k, v) in &expected {
            assert_eq!(found.get(k), Some(v), "round {round}: acknowledged document {k}");
        }
        assert_eq!(found.len(), expected.len(), "round {round}: documents");
        eprintln!("round {round}: {batches} batches acknowledged, {} documents", found.len());
        // Every index answer equals the scan.
        for age in 0..50i64 {
            let q = db.query("people").filter(move |f| f.eq("age", age));
            let plan = q.clone().explain().await.unwrap();
            assert!(matches!(&plan.access, Access::Index { field, .. } if field == "age"), "{plan:?}");
            let got: BTreeSet<String> = q.collect().await.unwrap().iter().map(|d| d.id.to_string()).collect();
            let want: BTreeSet<String> = found.iter().filter(|(_, v)| v.0 == age).map(|(k, _)| k.clone()).collect();
            assert_eq!(got, want, "round {round}: age = {age} by the index");
        }
        let scores: Vec<i64> = found.values().step_by(37).map(|v| v.1).chain([-1, 0, 999_999]).collect();
        for score in scores {
            let q = db.query("people").filter(move |f| f.eq("score", score));
            let plan = q.clone().explain().await.unwrap();
            assert!(matches!(&plan.access, Access::Index { field, .. } if field == "score"), "{plan:?}");
            let got: BTreeSet<String> = q.collect().await.unwrap().iter().map(|d| d.id.to_string()).collect();
            let want: BTreeSet<String> = found.iter().filter(|(_, v)| v.1 == score).map(|(k, _)| k.clone()).collect();
            assert_eq!(got, want, "round {round}: score = {score} by the index");
        }
        let range = db.query("people").filter(|f| f.gte("age", 17) & f.lt("age", 23)).count().await.unwrap();
        assert_eq!(
            range,
            found.values().filter(|v| (17..23).contains(&v.0)).count() as u64,
            "round {round}: age range"
        );
        db.close().await.unwrap();
    }
}

/// The values of a document named by its id.
fn values_of(doc: &str) -> Option<(i64, i64)> {
    let rest = doc.strip_prefix('p')?;
    let (pid, rest) = rest.split_once("-b")?;
    let (b, i) = rest.split_once('-')?;
    Some(values(pid.parse().ok()?, b.parse().ok()?, i.parse().ok()?))
}
