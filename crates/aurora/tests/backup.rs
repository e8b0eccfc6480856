//! Online backup: a copy taken while a writer commits holds exactly the
//! commits up to one revision (a prefix of the writer's sequence), opens
//! as an ordinary database with its indexes and change feed, and accepts
//! writes; an existing non-empty target is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, FieldDefinition, FieldType, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_concurrent_writes_is_one_commit_of_the_database() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Aurora::open(tmp.path().join("db")).await.unwrap();
    db.new_collection("log", [("n", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
    for n in 0..2_000i64 {
        db.insert_into("log", doc! { "n": n, "pad": "x".repeat(100) }).await.unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 2_000i64;
            while !stop.load(Ordering::Relaxed) {
                db.insert_into("log", doc! { "n": n, "pad": "y" }).await.unwrap();
                n += 1;
                tokio::task::yield_now().await;
            }
            n
        })
    };
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = calls.clone();
    let report = db
        .backup_to_with_progress(tmp.path().join("copy"), move |p| {
            seen.fetch_add(1, Ordering::Relaxed);
            assert!(p.entries > 0);
        })
        .await
        .unwrap();
    assert!(calls.load(Ordering::Relaxed) >= 2, "progress is reported per batch and at the end");
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(report.entries > 2_000, "{report:?}");

    let copy = Aurora::open(tmp.path().join("copy")).await.unwrap();
    assert_eq!(copy.feed_head().unwrap(), report.revision);
    let ns: Vec<i64> = copy
        .query("log")
        .order_by("n", aurora::Order::Asc)
        .collect()
        .await
        .unwrap()
        .iter()
        .map(|d| d.get("n").and_then(Value::as_i64).unwrap())
        .collect();
    let k = ns.len() as i64;
    assert!(k >= 2_000 && k <= written, "{k} of {written}");
    assert_eq!(ns, (0..k).collect::<Vec<_>>(), "the copy is a prefix of the commit sequence: one consistent commit");
    // Its index answers, its feed ends at its revision, and it takes writes.
    assert_eq!(copy.query("log").filter(|f| f.lt("n", 10)).count().await.unwrap(), 10);
    let feed = copy.changes_since(report.revision.saturating_sub(3)).await.unwrap();
    assert!(feed.iter().all(|e| e.sequence <= report.revision) && !feed.is_empty());
    copy.insert_into("log", doc! { "n": -1 }).await.unwrap();
    assert!(copy.feed_head().unwrap() > report.revision);
    copy.close().await.unwrap();

    // A non-empty target is refused and left alone.
    let again = db.backup_to(tmp.path().join("copy")).await;
    assert!(again.is_err());
    assert!(Aurora::open(tmp.path().join("copy")).await.is_ok());
    db.close().await.unwrap();
}
