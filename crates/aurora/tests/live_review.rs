//! Regressions from the hostile review of live queries and the script
//! sandbox: a commit that fails to evaluate is never half visible (and the
//! list rebuilt from updates equals `results()` once it recovers), a failed
//! re-run waits for a commit instead of spinning, `drop_collection` is seen
//! by listeners and live queries, dropping the last handle ends listeners
//! and live queries, and open script query streams cannot starve others.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, DocId, Document, Expression, FieldDefinition, FieldType, Order, Value, Watcher};
use std::time::Duration;

fn script(code: &str, dependencies: &[&str]) -> Expression {
    Expression::Custom { code: code.into(), dependencies: dependencies.iter().map(|d| d.to_string()).collect() }
}

fn ns(v: &[Document]) -> Vec<i64> {
    v.iter().map(|d| d.get("n").and_then(Value::as_i64).unwrap_or(-1)).collect()
}

/// Applies every ready update to `mirror`; returns how many errors came.
fn pump(w: &mut Watcher, mirror: &mut Vec<Document>) -> usize {
    let mut errors = 0;
    for _ in 0..50 {
        match w.try_recv() {
            Some(Ok(u)) => u.apply_to(mirror),
            Some(Err(_)) => errors += 1,
            None => break,
        }
    }
    errors
}

async fn half_applied(limit: Option<usize>) {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("t", [("n", FieldDefinition::new(FieldType::Int))]).await.unwrap();
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(db.insert_into("t", doc! { "n": n }).await.unwrap());
    }
    db.register_computed("t", "c", script("if (n === 13) throw new Error('thirteen'); return n;", &["n"]))
        .await
        .unwrap();
    let query = || {
        let q = db.query("t").order_by("c", Order::Asc);
        match limit {
            Some(l) => q.limit(l),
            None => q,
        }
    };
    let mut w = query().watch().await.unwrap();
    let mut mirror: Vec<Document> = w.results().cloned().collect();
    let before = ns(&mirror);
    let bad = DocId::text("zzz-bad").unwrap();
    let mut tx = db.begin().unwrap();
    tx.update("t", &ids[0], [("n".to_string(), Value::Int(100))].into()).unwrap();
    tx.upsert("t", doc! { "n": 13 }.id(bad.clone())).unwrap();
    tx.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let errors = pump(&mut w, &mut mirror);
    assert!(errors >= 1, "the failing commit is reported");
    assert!(errors <= 3, "a failed re-run waits for a commit instead of spinning ({errors} errors)");
    assert_eq!(ns(&mirror), before, "no half commit reached the consumer");
    assert_eq!(ns(&w.results().cloned().collect::<Vec<_>>()), before, "results() shows no half commit");
    db.update_document("t", &bad, doc! { "n": 14 }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    pump(&mut w, &mut mirror);
    let rerun = query().collect().await.unwrap();
    assert_eq!(ns(&w.results().cloned().collect::<Vec<_>>()), ns(&rerun), "results() recovers");
    assert_eq!(ns(&mirror), ns(&rerun), "the list rebuilt from the updates recovers too");
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_commit_that_fails_to_evaluate_is_never_half_visible() {
    half_applied(Some(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwindowed_commit_that_fails_to_evaluate_is_never_half_visible() {
    half_applied(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_collection_is_seen_by_listeners_and_live_queries() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("t", [("n", FieldDefinition::new(FieldType::Int))]).await.unwrap();
    for n in 0..3 {
        db.insert_into("t", doc! { "n": n }).await.unwrap();
    }
    let mut w = db.query("t").watch().await.unwrap();
    let mut l = db.listen("t");
    let mut mirror: Vec<Document> = w.results().cloned().collect();
    db.drop_collection("t").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    pump(&mut w, &mut mirror);
    assert_eq!(w.results().count(), 0);
    assert!(mirror.is_empty());
    let mut deletes = 0;
    while let Some(Ok(e)) = l.try_recv() {
        deletes += usize::from(e.change_type == aurora::ChangeType::Delete);
    }
    assert_eq!(deletes, 3, "a Delete per dropped document");
    db.new_collection("t", [("n", FieldDefinition::new(FieldType::Int))]).await.unwrap();
    db.insert_into("t", doc! { "n": 7 }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    pump(&mut w, &mut mirror);
    assert_eq!(ns(&w.results().cloned().collect::<Vec<_>>()), vec![7]);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_ends_listeners_and_live_queries() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("t", [("n", FieldDefinition::new(FieldType::Int))]).await.unwrap();
    let mut l = db.listen("t");
    let mut w = db.query("t").watch().await.unwrap();
    drop(db);
    let r = tokio::time::timeout(Duration::from_secs(10), l.recv()).await;
    assert!(matches!(r, Ok(Err(_))), "the listener ends: {r:?}");
    let r = tokio::time::timeout(Duration::from_secs(10), w.recv()).await;
    assert!(matches!(r, Ok(Err(_))), "the live query ends");
}

/// Open query streams over a collection with a script field (each having
/// evaluated once) cannot starve the sandbox pool: other script queries go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_script_streams_do_not_starve_other_queries() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("t", [("n", FieldDefinition::new(FieldType::Int))]).await.unwrap();
    for n in 0..3 {
        db.insert_into("t", doc! { "n": n }).await.unwrap();
    }
    db.register_computed("t", "c", script("return n + 1;", &["n"])).await.unwrap();
    let db2 = db.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Handle::current();
        let mut streams = Vec::new();
        for _ in 0..24 {
            let mut s = db2.query("t").order_by("n", Order::Asc).stream().unwrap();
            assert!(s.next().is_some());
            streams.push(s);
        }
        let n = rt.block_on(db2.query("t").filter(|f| f.gte("c", 1)).count());
        drop(streams);
        n
    });
    let n = tokio::time::timeout(Duration::from_secs(60), outcome).await.expect("no hang").unwrap().unwrap();
    assert_eq!(n, 3);
    db.close().await.unwrap();
}
