//! Snapshot reads stay point-in-time while other snapshots come and go:
//! readers on several threads pin snapshots (some held a while) during
//! concurrent multi-document commits, and every query result equals a model
//! of the collection replayed from the change feed up to the snapshot's
//! revision. (Found through the live-query model test: releasing the last
//! pin pruned history that a snapshot pinned meanwhile still needed, so a
//! re-run live query read a superseded document as absent.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, DocId, Document, FieldDefinition, FieldType, Value, F};
use std::collections::BTreeMap;

async fn writer(db: Aurora, seed: u64, transactions: u64) {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..transactions {
        let mut tx = db.begin().unwrap();
        for _ in 0..(next() % 5 + 1) {
            let r = next();
            let id = DocId::text(&format!("m{}", r % 30)).unwrap();
            match r % 10 {
                0 | 1 => {
                    tx.delete("msgs", &id).unwrap();
                }
                _ => {
                    let tags: Vec<Value> = if r % 3 == 0 { vec!["x".into(), "y".into()] } else { vec!["y".into()] };
                    let mut d = doc! { "n": ((r >> 8) % 100) as i64, "room": "a" }.id(id);
                    d.fields.insert("tags".into(), Value::Array(tags));
                    tx.upsert("msgs", d).unwrap();
                }
            }
        }
        let _ = tx.commit().await;
    }
}

#[test]
fn snapshot_queries_are_point_in_time_under_concurrent_snapshots() {
    let runs = std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(100u64);
    for seed in 0..runs {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            let db = Aurora::with_config(AuroraConfig::new(dir.path())).await.unwrap();
            db.new_collection(
                "msgs",
                [
                    ("n", FieldDefinition::new(FieldType::Int).indexed()),
                    ("room", FieldDefinition::new(FieldType::String)),
                ],
            )
            .await
            .unwrap();
            let tasks: Vec<_> = (0..3).map(|t| tokio::spawn(writer(db.clone(), seed * 31 + t, 30))).collect();
            let q = db.query("msgs").where_filter(F.in_array("tags", "x") | F.lt("n", 20));
            let readers: Vec<_> = (0..4)
                .map(|k| {
                    let db = db.clone();
                    let q = q.clone();
                    std::thread::spawn(move || {
                        let mut seen = Vec::new();
                        for i in 0..200u64 {
                            let mut tx = db.database().begin_with(aurora::Isolation::Snapshot).unwrap();
                            let rev = tx.snapshot_revision();
                            if (i + k) % 3 == 0 {
                                std::thread::sleep(std::time::Duration::from_micros(300));
                            }
                            let docs = q.as_query().collect(&mut tx).unwrap();
                            seen.push((rev, docs));
                        }
                        seen
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let seen: Vec<_> = readers.into_iter().flat_map(|r| r.join().unwrap()).collect();
            let log = db.database().changes_since(0).unwrap();
            for (rev, docs) in seen {
                let mut m: BTreeMap<DocId, Document> = BTreeMap::new();
                for c in log.iter().filter(|c| c.sequence <= rev) {
                    for ch in &c.changes {
                        match &ch.new {
                            Some(d) => {
                                m.insert(ch.id.clone(), (**d).clone());
                            }
                            None => {
                                m.remove(&ch.id);
                            }
                        }
                    }
                }
                let want: Vec<Document> = m.into_values().filter(|d| q.as_query().filter_expr().matches(d)).collect();
                assert_eq!(docs, want, "seed {seed} at revision {rev}");
            }
        });
    }
}
