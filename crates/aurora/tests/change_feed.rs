//! The resumable change feed: history survives restarts, `listen_from`
//! joins history and live events with no gap and no duplicate, trimmed
//! history is a clear error, and only committed transactions are in it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, Error, FeedScope, FieldDefinition, Value};
use std::collections::BTreeSet;

fn config(dir: &std::path::Path) -> AuroraConfig {
    AuroraConfig::new(dir)
}

#[tokio::test]
async fn resume_after_restart_gets_exactly_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(config(dir.path())).await.unwrap();
    db.new_collection("c", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    for i in 0..10 {
        db.insert_into("c", doc! { "i": i }).await.unwrap();
    }
    let mut tx = db.begin().unwrap();
    tx.insert("c", doc! { "i": 999 }).unwrap();
    tx.rollback();
    let all = db.changes_since(0).await.unwrap();
    assert_eq!(all.len(), 10, "rolled-back work is not in the feed");
    let consumed = &all[..4];
    let last_seen = consumed.last().unwrap().sequence;
    db.close().await.unwrap();

    let db = Aurora::with_config(config(dir.path())).await.unwrap();
    let rest = db.changes_since(last_seen).await.unwrap();
    let want: Vec<i64> = (4..10).collect();
    let got: Vec<i64> =
        rest.iter().map(|e| e.document.as_ref().unwrap().get("i").and_then(Value::as_i64).unwrap()).collect();
    assert_eq!(got, want, "exactly the rest, in order, after a restart");
    // listen_from continues live after the history.
    let mut l = db.listen_from(last_seen).await.unwrap();
    for i in 4..10 {
        assert_eq!(l.recv().await.unwrap().document.unwrap().get("i"), Some(&Value::Int(i)));
    }
    db.insert_into("c", doc! { "i": 10 }).await.unwrap();
    assert_eq!(l.recv().await.unwrap().document.unwrap().get("i"), Some(&Value::Int(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seam_between_history_and_live_has_no_gap_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(config(dir.path())).await.unwrap();
    db.new_collection("c", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    for i in 0..50 {
        db.insert_into("c", doc! { "i": i }).await.unwrap();
    }
    let writer = {
        let db = db.clone();
        tokio::spawn(async move {
            for i in 50..400 {
                db.insert_into("c", doc! { "i": i }).await.unwrap();
            }
        })
    };
    // Join while the writer runs.
    let mut l = db.listen_from(0).await.unwrap();
    writer.await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 400 {
        let e = l.recv().await.unwrap();
        seen.push(e.document.unwrap().get("i").and_then(Value::as_i64).unwrap());
    }
    assert_eq!(seen, (0..400).collect::<Vec<_>>(), "every event once, in order");
    assert!(l.try_recv().is_none());
}

#[tokio::test]
async fn trimmed_history_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(AuroraConfig { change_feed_retention: 5, ..config(dir.path()) }).await.unwrap();
    db.new_collection("c", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    for i in 0..12 {
        db.insert_into("c", doc! { "i": i }).await.unwrap();
    }
    assert_eq!(db.database().trim_feed(5, None).unwrap(), 7);
    let kept = db.changes_since(db.database().feed_floor().unwrap()).await.unwrap();
    assert_eq!(kept.len(), 5);
    let err = db.changes_since(0).await.unwrap_err();
    assert!(matches!(err, Error::Transaction(aurora::txn::TxnError::FeedTruncated { .. })), "{err}");
    assert!(err.to_string().contains("re-read"), "{err}");
    let ids: BTreeSet<_> = kept.iter().map(|e| e.sequence).collect();
    assert_eq!(ids.len(), 5);
}

#[tokio::test]
async fn the_feed_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(AuroraConfig { change_feed_retention: 0, ..config(dir.path()) }).await.unwrap();
    db.new_collection("c", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    db.insert_into("c", doc! { "i": 1 }).await.unwrap();
    assert!(db.changes_since(0).await.unwrap().is_empty());
}

#[tokio::test]
async fn large_transactions_are_stored_in_parts_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(config(dir.path())).await.unwrap();
    db.new_collection("c", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    let text = "x".repeat(300);
    for round in 0..4i64 {
        let docs = (0..200i64).map(|i| doc! { "round": round, "i": i, "text": text.clone() }).collect();
        db.insert_many("c", docs).await.unwrap(); // ~70 KB of feed entry: many parts
    }
    // Each entry (about 23 bytes per change: ~4.6 KB) is more than one part,
    // and no part is larger than the part size.
    let parts: Vec<_> =
        db.database().collections().documents().store().scan_prefix(b"f").unwrap().map(Result::unwrap).collect();
    assert!(parts.len() >= 4 * 2, "entries are split into parts ({} keys)", parts.len());
    assert!(parts.iter().all(|(_, v)| v.len() <= aurora::txn::FEED_PART_BYTES), "parts are at most the part size");
    let all = db.database().changes_since(0).unwrap();
    assert_eq!(all.len(), 4, "one entry per transaction");
    let big: Vec<_> = all.iter().filter(|c| c.changes.len() == 200).collect();
    assert_eq!(big.len(), 4);
    assert_eq!(db.changes_since(0).await.unwrap().len(), 800, "as events: one per document");
    assert!(big.iter().all(|c| c.changes.iter().all(|ch| ch.new.as_ref().unwrap().get("text").is_some())));
    assert_eq!(db.database().trim_feed(2, None).unwrap(), 2);
    let kept = db.database().changes_since(db.database().feed_floor().unwrap()).unwrap();
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().all(|c| c.changes.len() == 200), "whole entries kept, parts of trimmed ones gone");
    db.close().await.unwrap();
    let db = Aurora::with_config(config(dir.path())).await.unwrap();
    assert_eq!(db.database().changes_since(db.database().feed_floor().unwrap()).unwrap().len(), 2, "after reopen");
}

#[tokio::test]
async fn trimming_by_count_and_age_follows_commits_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(config(dir.path())).await.unwrap();
    db.new_collection("c", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    for i in 0..3 {
        db.insert_into("c", doc! { "i": i }).await.unwrap();
    }
    assert_eq!(db.database().trim_feed(100, None).unwrap(), 0, "index loaded, nothing to drop");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for i in 3..6 {
        db.insert_into("c", doc! { "i": i }).await.unwrap(); // recorded by the commit hook
    }
    let dropped = db.database().trim_feed(100, Some(std::time::Duration::from_millis(150))).unwrap();
    assert!((3..=6).contains(&dropped), "the three old entries at least: {dropped}");
    let left: Vec<i64> = db
        .changes_since(db.database().feed_floor().unwrap())
        .await
        .unwrap()
        .iter()
        .map(|e| e.document.as_ref().unwrap().get("i").and_then(Value::as_i64).unwrap())
        .collect();
    assert_eq!(left, (dropped as i64..6).collect::<Vec<_>>(), "a prefix was dropped");
    db.close().await.unwrap();
    let db = Aurora::with_config(config(dir.path())).await.unwrap();
    for i in 6..9 {
        db.insert_into("c", doc! { "i": i }).await.unwrap();
    }
    let before = db.database().changes_since(db.database().feed_floor().unwrap()).unwrap().len();
    assert_eq!(db.database().trim_feed(2, None).unwrap(), before - 2, "the index after reopen counts every entry");
    assert_eq!(db.database().changes_since(db.database().feed_floor().unwrap()).unwrap().len(), 2);
    assert_eq!(db.database().trim_feed(2, None).unwrap(), 0);
}

#[tokio::test]
async fn the_feed_is_kept_under_its_byte_budget_and_close_applies_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuroraConfig { change_feed_max_bytes: Some(100_000), ..config(dir.path()) };
    let db = Aurora::with_config(cfg.clone()).await.unwrap();
    db.new_collection("c", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    let text = "x".repeat(300);
    for round in 0..4i64 {
        let docs = (0..200i64).map(|i| doc! { "round": round, "i": i, "text": text.clone() }).collect();
        db.insert_many("c", docs).await.unwrap(); // ~70 KB of feed each
    }
    assert_eq!(db.database().changes_since(0).unwrap().len(), 4, "not trimmed yet");
    db.close().await.unwrap();
    let db = Aurora::with_config(cfg).await.unwrap();
    let kept = db.database().changes_since(db.database().feed_floor().unwrap()).unwrap();
    assert_eq!(kept.len(), 1, "two entries would exceed 100 000 bytes");
    assert_eq!(kept[0].changes[0].new.as_ref().unwrap().get("round"), Some(&Value::Int(3)), "the newest is kept");
    assert!(db.changes_since(0).await.is_err(), "older history is reported as trimmed");
}

/// Issue 15, item 5: the feed's head is one call, a position beyond it is
/// a typed error (it used to return `Ok` and drop every change up to it),
/// and reading from the head hears exactly what comes after.
#[tokio::test]
async fn the_head_is_known_and_positions_beyond_it_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(config(dir.path())).await.unwrap();
    db.new_collection("c", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    for i in 0..3 {
        db.insert_into("c", doc! { "i": i }).await.unwrap();
    }
    let head = db.feed_head().unwrap();
    assert_eq!(head, db.changes_since(0).await.unwrap().last().unwrap().sequence);
    assert!(db.changes_since(head).await.unwrap().is_empty());
    let beyond = head + 1000;
    let err = db.changes_since(beyond).await.unwrap_err();
    assert!(
        matches!(err, Error::Transaction(aurora::txn::TxnError::FeedAhead { requested, head: h }) if requested == beyond && h == head),
        "{err}"
    );
    assert!(db.listen_from(beyond).await.is_err(), "no listener that silently drops changes");
    let mut from_head = db.listen_from(head).await.unwrap();
    db.insert_into("c", doc! { "i": 3 }).await.unwrap();
    assert_eq!(from_head.recv().await.unwrap().document.unwrap().get("i"), Some(&Value::Int(3)));
    assert!(from_head.try_recv().is_none());
}

/// Issue 15, item 5: the feed is read per collection; system collections
/// (the job queue's `_jobs`) only when asked.
#[tokio::test]
async fn the_feed_is_filtered_by_collection_and_system_collections_are_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(config(dir.path())).await.unwrap();
    db.new_collection("orders", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    db.new_collection("checkpoints", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    let workers = db.workers(aurora::WorkerConfig::default()).await.unwrap();
    let mut live_orders = db.listen_from_in(0, &FeedScope::collections(["orders"])).await.unwrap();
    workers.enqueue(aurora::Job::new("email")).await.unwrap(); // a `_jobs` write
    db.insert_into("orders", doc! { "n": 1 }).await.unwrap();
    db.insert_into("checkpoints", doc! { "at": 1 }).await.unwrap();
    let user: BTreeSet<String> = db.changes_since(0).await.unwrap().into_iter().map(|e| e.collection).collect();
    assert_eq!(user, BTreeSet::from(["orders".to_string(), "checkpoints".to_string()]), "no `_jobs` by default");
    let all: BTreeSet<String> =
        db.changes_since_in(0, &FeedScope::All).await.unwrap().into_iter().map(|e| e.collection).collect();
    assert!(all.contains("_jobs"), "system collections when asked: {all:?}");
    let orders = db.changes_since_in(0, &FeedScope::collections(["orders"])).await.unwrap();
    assert_eq!(orders.len(), 1);
    let e = live_orders.recv().await.unwrap();
    assert_eq!(e.collection, "orders");
    assert!(live_orders.try_recv().is_none(), "only the chosen collection, live too");
    db.close().await.unwrap();
}

/// Issue 15, item 5: retention counts user transactions; the job queue's
/// bookkeeping (three transactions per job) does not crowd them out.
#[tokio::test]
async fn retention_counts_user_transactions_not_job_bookkeeping() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(config(dir.path())).await.unwrap();
    db.new_collection("orders", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    let workers = db.workers(aurora::WorkerConfig::default()).await.unwrap();
    for i in 0..5 {
        db.insert_into("orders", doc! { "i": i }).await.unwrap();
    }
    for _ in 0..10 {
        workers.enqueue(aurora::Job::new("email")).await.unwrap(); // system-only entries
    }
    db.database().trim_feed(5, None).unwrap();
    let kept = db.changes_since(db.feed_floor().unwrap()).await.unwrap();
    assert_eq!(kept.len(), 5, "the five user transactions are kept");
    db.insert_into("orders", doc! { "i": 5 }).await.unwrap();
    assert!(db.database().trim_feed(5, None).unwrap() >= 1, "a sixth user transaction pushes the oldest out");
    let kept: Vec<i64> = db
        .changes_since(db.feed_floor().unwrap())
        .await
        .unwrap()
        .iter()
        .map(|e| e.document.as_ref().unwrap().get("i").and_then(Value::as_i64).unwrap())
        .collect();
    assert_eq!(kept, [1, 2, 3, 4, 5]);
    db.close().await.unwrap();
}
