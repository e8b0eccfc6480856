//! Hostile review of the facade's batched inserts (`insert_into` and
//! `insert_many` on `Database::insert_many`): expired documents under the
//! same id, the change feed of batched inserts read back after a restart
//! and after later updates, listeners compared with the transaction path,
//! and live queries and the search index seeing batched inserts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, ChangeType, DocId, FieldDefinition, ManualTime, Timestamp, Ttl, Value};
use std::time::Duration;

const T0: i64 = 1_700_000_000_000_000;

fn tid(s: &str) -> DocId {
    DocId::text(s).unwrap()
}

fn none() -> Vec<(&'static str, FieldDefinition)> {
    Vec::new()
}

/// Reads treat an expired document as absent, and so does `insert_into`
/// (its `expired_check`): `insert_many` of the same id must accept it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_many_treats_an_expired_document_as_absent_like_insert_into() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualTime::new(Timestamp::from_micros(T0));
    let config = AuroraConfig {
        expiry_clock: clock.clone().into(),
        expiry_interval: Duration::ZERO,
        ..AuroraConfig::new(dir.path())
    };
    let db = Aurora::with_config(config).await.unwrap();
    db.new_collection("s", none()).await.unwrap();
    db.set_ttl("s", Some(Ttl::after("seen", Duration::from_secs(60)))).await.unwrap();
    let seen = Value::Timestamp(Timestamp::from_micros(T0));
    for id in ["one", "many"] {
        db.insert_into("s", doc! { "seen": seen.clone() }.id(tid(id))).await.unwrap();
    }
    clock.advance(Duration::from_secs(120));
    assert!(db.get_document("s", &tid("many")).await.unwrap().is_none(), "expired: absent for reads");
    let fresh = Value::Timestamp(Timestamp::from_micros(T0 + 120_000_000));
    db.insert_into("s", doc! { "seen": fresh.clone() }.id(tid("one"))).await.expect("insert_into: absent");
    let many = db.insert_many("s", vec![doc! { "seen": fresh }.id(tid("many"))]).await;
    assert!(many.is_ok(), "insert_many of an expired id: {many:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_inserts_in_the_feed_after_updates_deletes_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    db.new_collection("c", none()).await.unwrap();
    let ids = db
        .insert_many("c", (0..5).map(|i| doc! { "i": i as i64, "v": "first" }.id(tid(&format!("k{i}")))).collect())
        .await
        .unwrap();
    db.update_document("c", &ids[1], doc! { "v": "second" }).await.unwrap();
    db.delete_document("c", &ids[2]).await.unwrap();
    db.insert_into("c", doc! { "i": 2i64, "v": "reborn" }.id(ids[2].clone())).await.unwrap();
    let before = db.changes_since(0).await.unwrap();
    db.close().await.unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    let after = db.changes_since(0).await.unwrap();
    let summary = |events: &[aurora::ChangeEvent]| {
        events
            .iter()
            .map(|e| {
                let v = e.document.as_ref().and_then(|d| d.get("v").cloned());
                (e.sequence, e.change_type, e.id.to_string(), v)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(&after), summary(&before), "the same feed after a restart");
    let first: Vec<_> = after.iter().take(5).map(|e| e.document.as_ref().unwrap().get("v").cloned()).collect();
    assert!(first.iter().all(|v| *v == Some(Value::from("first"))), "the inserted versions: {first:?}");
    assert_eq!(after.len(), 8);
    assert_eq!(after[5].change_type, ChangeType::Update);
    assert_eq!(after[6].change_type, ChangeType::Delete);
    assert_eq!(after[7].document.as_ref().unwrap().get("v"), Some(&Value::from("reborn")));
    // The ids stay taken across the restart; a deleted-then-reinserted one too.
    for id in &ids {
        assert!(db.insert_many("c", vec![doc! { "i": 9i64 }.id(id.clone())]).await.is_err(), "{id} taken");
    }
}

/// Listeners see a batch's inserts as the events a transaction of the same
/// inserts gives (same kinds, ids, documents; one sequence for the batch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_see_a_batch_as_one_commit_of_inserts() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("c", none()).await.unwrap();
    let mut listener = db.listen("c");
    let ids: Vec<DocId> = ["a", "b", "c"].into_iter().map(tid).collect();
    db.insert_many("c", ids.iter().map(|id| doc! { "x": id.to_string() }.id(id.clone())).collect()).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(tokio::time::timeout(Duration::from_secs(5), listener.recv()).await.unwrap().unwrap());
    }
    assert!(got.iter().all(|e| e.change_type == ChangeType::Insert && e.old_document.is_none()));
    assert!(got.windows(2).all(|w| w[0].sequence == w[1].sequence), "one commit");
    assert_eq!(got.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ids);
    for e in &got {
        assert_eq!(e.document.as_ref().unwrap().get("x"), Some(&Value::from(e.id.to_string())));
    }
    assert!(listener.try_recv().is_none(), "nothing more");
}

#[cfg(feature = "search")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_index_and_live_queries_see_batched_inserts() {
    use tokio_stream::StreamExt;
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("m", none()).await.unwrap();
    db.create_search_index("m", ["body"], aurora::SearchOptions::default()).await.unwrap();
    let mut live = db.query("m").watch().await.unwrap();
    let n = 50;
    db.insert_many("m", (0..n).map(|i| doc! { "body": format!("lunch number {i}") }).collect()).await.unwrap();
    let found = db.search("m", "lunch").limit(1000).consistent().run().await.unwrap();
    assert_eq!(found.hits.len(), n);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while live.results().len() < n {
        assert!(std::time::Instant::now() < deadline, "the live query saw {} of {n}", live.results().len());
        let _ = tokio::time::timeout(Duration::from_millis(100), live.next()).await;
    }
    assert_eq!(db.query("m").count().await.unwrap(), n as u64);
}
