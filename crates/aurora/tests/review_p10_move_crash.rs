//! Review (session 10): SIGKILL during the move of an existing database to
//! packed index trees, from the database handle. A database written by
//! this build is turned back into layout 2 with raw sled (each packed
//! index tree `"p" ++ prefix` unpacked into a per-entry tree named by the
//! prefix, marker 2, checkpoint `[2][revision]`: what the previous build
//! wrote). A child opens it — the move runs inside the open — and then
//! bulk-loads more documents, until killed at a random moment (during the
//! move or after it). After the next open: the layout is packed, every
//! document of the old database and every acknowledged batch is there,
//! and queries by both indexes (`explain` shows the index) equal a scan.
//!
//! Rounds: `AURORA_CRASH_ROUNDS` (default 3); documents in the old
//! database: `AURORA_REVIEW_MOVE_DOCS` (default 60 000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Access, Aurora, AuroraConfig, DocId, Document, Value};
use aurora_testkit::crash::{jitter, CrashTest};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

const CRASH: CrashTest = CrashTest::new("move_crash_child_entry", "AURORA_REVIEW_MOVE_CRASH_DIR");

fn docs() -> u64 {
    std::env::var("AURORA_REVIEW_MOVE_DOCS").ok().and_then(|v| v.parse().ok()).unwrap_or(60_000)
}

fn config(dir: &Path) -> AuroraConfig {
    AuroraConfig { cold_flush_interval_ms: 30, ..AuroraConfig::new(dir) }
}

fn age(n: u64) -> i64 {
    (n * 7919 % 61) as i64
}

fn score(n: u64) -> i64 {
    (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as i64
}

/// Turns the closed database at `dir` back into layout 2.
fn to_layout2(dir: &Path) {
    let cold = aurora_testkit::raw_sled::open(&dir.join("cold"));
    let packed: Vec<Vec<u8>> =
        cold.tree_names().into_iter().map(|n| n.to_vec()).filter(|n| n.first() == Some(&b'p')).collect();
    assert!(!packed.is_empty(), "this build packs index trees");
    for name in packed {
        let plain = cold.open_tree(&name[1..]).unwrap();
        for item in cold.open_tree(&name).unwrap().iter() {
            let (_, raw) = item.unwrap();
            for (key, value) in aurora_testkit::packed_chunk::decode(&raw) {
                plain.insert(key, value).unwrap();
            }
        }
        cold.drop_tree(&name).unwrap();
    }
    let checkpoint = cold.get(b"\x00checkpoint").unwrap().unwrap();
    assert_eq!(checkpoint[0], 4);
    cold.insert(b"\x00checkpoint", [&[2u8][..], &checkpoint[1..]].concat()).unwrap();
    cold.insert(b"\x00layout", &[2u8]).unwrap();
    cold.flush().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn layout_marker(dir: &Path) -> Vec<u8> {
    let cold = aurora_testkit::raw_sled::open(&dir.join("cold"));
    cold.get(b"\x00layout").unwrap().map(|v| v.to_vec()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_crash_child_entry() {
    let Some(dir) = CRASH.child_dir() else { return };
    println!("ready");
    let db = Aurora::with_config(config(&dir)).await.unwrap();
    println!("opened");
    let base = 1_000_000 * u64::from(std::process::id());
    for b in 0u64.. {
        let batch: Vec<Document> = (0..100)
            .map(|i| {
                let n = base + b * 100 + i;
                doc! { "age": age(n), "score": score(n), "n": n as i64 }.id(DocId::text(&format!("n{n}")).unwrap())
            })
            .collect();
        db.insert_many("people", batch).await.unwrap();
        println!("ack {base} {b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_killed_anywhere_keeps_every_document_and_index_entry() {
    if CRASH.is_child() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template");
    {
        let db = Aurora::with_config(config(&template)).await.unwrap();
        db.new_collection("people", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
        db.create_index("people", "age", false).await.unwrap();
        db.create_index("people", "score", false).await.unwrap();
        for chunk in (0..docs()).collect::<Vec<_>>().chunks(1000) {
            let batch: Vec<Document> = chunk
                .iter()
                .map(|&n| {
                    doc! { "age": age(n), "score": score(n), "n": n as i64 }.id(DocId::text(&format!("n{n}")).unwrap())
                })
                .collect();
            db.insert_many("people", batch).await.unwrap();
        }
        db.close().await.unwrap();
    }
    to_layout2(&template);
    // How long the open takes (the move inside it): most kills land in it.
    let open_ms = {
        let probe = tmp.path().join("probe");
        copy_dir(&template, &probe);
        let started = Instant::now();
        let db = Aurora::with_config(config(&probe)).await.unwrap();
        let ms = started.elapsed().as_millis() as u64;
        db.close().await.unwrap();
        drop(db);
        std::fs::remove_dir_all(&probe).unwrap();
        ms
    };
    let mut moved_during_kill = 0;
    for round in 0..CRASH.rounds(3) {
        let dir = tmp.path().join(format!("round{round}"));
        copy_dir(&template, &dir);
        let window = if round % 3 == 2 { 1500 } else { open_ms + 20 };
        let lines = CRASH.spawn(&dir).kill_after(Duration::from_millis(1) + jitter(window));
        let opened = lines.iter().any(|l| l == "opened");
        moved_during_kill += usize::from(!opened);
        let mut expected: BTreeMap<String, (i64, i64)> =
            (0..docs()).map(|n| (format!("n{n}"), (age(n), score(n)))).collect();
        let mut in_flight = None;
        for line in &lines {
            if let ["ack", base, b] = line.split(' ').collect::<Vec<_>>().as_slice() {
                let (base, b): (u64, u64) = (base.parse().unwrap(), b.parse().unwrap());
                for n in base + b * 100..base + b * 100 + 100 {
                    expected.insert(format!("n{n}"), (age(n), score(n)));
                }
                in_flight = Some((base, b + 1));
            }
        }
        let db = Aurora::with_config(config(&dir)).await.unwrap();
        let found: BTreeMap<String, (i64, i64)> = db
            .query("people")
            .collect()
            .await
            .unwrap()
            .iter()
            .map(|d| {
                let int = |f: &str| match d.get(f) {
                    Some(Value::Int(v)) => *v,
                    other => panic!("{f}: {other:?}"),
                };
                (d.id.to_string(), (int("age"), int("score")))
            })
            .collect();
        let mut extra: Vec<&String> = found.keys().filter(|k| !expected.contains_key(*k)).collect();
        if let Some((base, b)) = in_flight {
            let batch: BTreeSet<String> = (base + b * 100..base + b * 100 + 100).map(|n| format!("n{n}")).collect();
            let present = extra.iter().filter(|k| batch.contains(**k)).count();
            assert!(present == 0 || present == 100, "round {round}: {present} of the batch in flight");
            extra.retain(|k| !batch.contains(*k));
            for k in batch.iter().filter(|k| found.contains_key(*k)) {
                expected.insert(k.clone(), found[k]);
            }
        }
        assert!(extra.is_empty(), "round {round}: never written: {:?}", &extra[..extra.len().min(5)]);
        for (k, v) in &expected {
            assert_eq!(found.get(k), Some(v), "round {round}: document {k}");
        }
        for a in 0..61i64 {
            let q = db.query("people").filter(move |f| f.eq("age", a));
            let plan = q.clone().explain().await.unwrap();
            assert!(matches!(&plan.access, Access::Index { field, .. } if field == "age"), "{plan:?}");
            let got: BTreeSet<String> = q.collect().await.unwrap().iter().map(|d| d.id.to_string()).collect();
            let want: BTreeSet<String> = found.iter().filter(|(_, v)| v.0 == a).map(|(k, _)| k.clone()).collect();
            assert_eq!(got, want, "round {round}: age = {a}");
        }
        for s in found.values().step_by(997).map(|v| v.1).collect::<Vec<_>>() {
            let q = db.query("people").filter(move |f| f.eq("score", s));
            let plan = q.clone().explain().await.unwrap();
            assert!(matches!(&plan.access, Access::Index { field, .. } if field == "score"), "{plan:?}");
            let got: BTreeSet<String> = q.collect().await.unwrap().iter().map(|d| d.id.to_string()).collect();
            let want: BTreeSet<String> = found.iter().filter(|(_, v)| v.1 == s).map(|(k, _)| k.clone()).collect();
            assert_eq!(got, want, "round {round}: score = {s}");
        }
        db.close().await.unwrap();
        drop(db);
        assert_eq!(layout_marker(&dir), vec![4u8], "round {round}: the layout is packed");
        eprintln!(
            "round {round}: killed {} the open, {} documents",
            if opened { "after" } else { "during" },
            found.len()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!("{moved_during_kill} kills landed before the open returned (an open took {open_ms} ms)");
}
