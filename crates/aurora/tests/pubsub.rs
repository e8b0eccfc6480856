//! Change events through the `Aurora` handle: commit order, transactions
//! delivered together, nothing for rolled-back or failed work, filters,
//! exact lag reporting without slowing writers, and channel clean-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, ChangeType, EventFilter, FieldDefinition, FieldType, RecvError, Value, F};

async fn db_with(buffer: usize) -> (tempfile::TempDir, Aurora) {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(AuroraConfig { event_buffer: buffer, ..AuroraConfig::new(dir.path()) }).await.unwrap();
    db.new_collection("msgs", [("room", FieldDefinition::new(FieldType::String).indexed())]).await.unwrap();
    db.new_collection("other", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    (dir, db)
}

#[tokio::test]
async fn events_follow_commits_in_order() {
    let (_d, db) = db_with(1024).await;
    let mut msgs = db.listen("msgs");
    let mut all = db.listen_all();
    let id = db.insert_into("msgs", doc! { "room": "a", "text": "hi" }).await.unwrap();
    db.update_document("msgs", &id, doc! { "text": "hello" }).await.unwrap();
    let mut tx = db.begin().unwrap();
    tx.insert("msgs", doc! { "room": "b", "text": "x" }).unwrap();
    tx.insert("other", doc! { "n": 1 }).unwrap();
    tx.commit().await.unwrap();
    db.delete_document("msgs", &id).await.unwrap();
    // Rolled back and failed work publish nothing.
    let mut tx = db.begin().unwrap();
    tx.insert("msgs", doc! { "room": "c" }).unwrap();
    tx.rollback();
    assert!(db.insert_into("msgs", doc! { "room": 5 }).await.is_err());
    db.insert_into("other", doc! { "n": 2 }).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..4 {
        let e = msgs.recv().await.unwrap();
        seen.push((e.change_type, e.sequence));
    }
    assert!(matches!(
        seen.as_slice(),
        [(ChangeType::Insert, _), (ChangeType::Update, _), (ChangeType::Insert, _), (ChangeType::Delete, _)]
    ));
    assert!(seen.windows(2).all(|w| w[0].1 < w[1].1), "commit order");
    assert!(msgs.try_recv().is_none(), "nothing for rolled-back or failed writes");

    let mut global = Vec::new();
    for _ in 0..6 {
        let e = all.recv().await.unwrap();
        global.push((e.collection, e.sequence, e.transaction_id));
    }
    assert_eq!(global[2].1, global[3].1, "a transaction's events share its sequence");
    assert_eq!(global[2].2, global[3].2);
    assert_eq!((global[2].0.as_str(), global[3].0.as_str()), ("msgs", "other"), "and arrive together");
    assert!(global.windows(2).all(|w| w[0].1 <= w[1].1));
    let upd = {
        let mut l = db.listen("msgs");
        db.update_document(
            "msgs",
            &db.insert_into("msgs", doc! { "room": "z", "text": "a" }).await.unwrap(),
            doc! { "text": "b" },
        )
        .await
        .unwrap();
        l.recv().await.unwrap();
        l.recv().await.unwrap()
    };
    assert_eq!(upd.old_document.unwrap().get("text"), Some(&Value::from("a")));
    assert_eq!(upd.document.unwrap().get("text"), Some(&Value::from("b")));
}

#[tokio::test]
async fn filters_run_before_delivery() {
    let (_d, db) = db_with(1024).await;
    let mut room_a = db.listen_filtered("msgs", EventFilter::field_equals("room", "a")).unwrap();
    let mut edits = db
        .listen_filtered(
            "msgs",
            EventFilter::And(vec![
                EventFilter::ChangeType(ChangeType::Update),
                EventFilter::FieldChanged("text".into()),
            ]),
        )
        .unwrap();
    let a = db.insert_into("msgs", doc! { "room": "a", "text": "1" }).await.unwrap();
    db.insert_into("msgs", doc! { "room": "b", "text": "2" }).await.unwrap();
    db.update_document("msgs", &a, doc! { "seen": true }).await.unwrap();
    db.update_document("msgs", &a, doc! { "text": "1!" }).await.unwrap();
    let got: Vec<ChangeType> = vec![
        room_a.recv().await.unwrap().change_type,
        room_a.recv().await.unwrap().change_type,
        room_a.recv().await.unwrap().change_type,
    ];
    assert_eq!(got, [ChangeType::Insert, ChangeType::Update, ChangeType::Update]);
    assert!(room_a.try_recv().is_none());
    let e = edits.recv().await.unwrap();
    assert_eq!(e.document.unwrap().get("text"), Some(&Value::from("1!")));
    assert!(edits.try_recv().is_none(), "the update that did not touch `text` was filtered out");
}

/// Issue 15, item 4: listeners take the query filter language, with the
/// query's semantics (array membership, comparisons, negation).
#[tokio::test]
async fn listener_filters_are_the_query_language() {
    let (_d, db) = db_with(1024).await;
    let mut tagged = db.listen_filtered("msgs", EventFilter::Matches(F.in_array("tags", "a"))).unwrap();
    let mut big_not_b = db.listen_filtered("msgs", EventFilter::Matches(F.gte("n", 100) & !F.eq("room", "b"))).unwrap();
    db.insert_into("msgs", doc! { "room": "a", "tags": ["a", "b"], "n": 150 }).await.unwrap();
    db.insert_into("msgs", doc! { "room": "b", "tags": ["b"], "n": 500 }).await.unwrap();
    db.insert_into("msgs", doc! { "room": "c", "tags": [], "n": 5 }).await.unwrap();
    let e = tagged.recv().await.unwrap();
    assert_eq!(e.document.unwrap().get("n"), Some(&Value::Int(150)), "array membership, as `in_array` in queries");
    assert!(tagged.try_recv().is_none());
    assert_eq!(big_not_b.recv().await.unwrap().document.unwrap().get("n"), Some(&Value::Int(150)));
    assert!(big_not_b.try_recv().is_none());
}

/// Issue 15, item 4: the filter runs before buffering, so a listener lags
/// only on events it would have received, and counts only those.
#[tokio::test]
async fn lag_counts_only_events_the_filter_passes() {
    let (_d, db) = db_with(8).await;
    let mut room_a = db.listen_filtered("msgs", EventFilter::field_equals("room", "a")).unwrap();
    for i in 0..100 {
        db.insert_into("msgs", doc! { "room": "b", "i": i }).await.unwrap();
    }
    for i in 0..3 {
        db.insert_into("msgs", doc! { "room": "a", "i": i }).await.unwrap();
    }
    for i in 0..3 {
        assert_eq!(room_a.recv().await.unwrap().document.unwrap().get("i"), Some(&Value::Int(i)), "no lag");
    }
    for i in 0..20 {
        db.insert_into("msgs", doc! { "room": "a", "i": i }).await.unwrap();
        db.insert_into("msgs", doc! { "room": "b", "i": i }).await.unwrap();
    }
    assert_eq!(room_a.recv().await, Err(RecvError::Lagged(12)), "20 passed the filter, 8 buffered");
}

/// Issue 15, item 1 (listeners): a commit is one unit: delivered together,
/// and dropped whole on lag.
#[tokio::test]
async fn a_commit_is_delivered_as_one_unit() {
    let (_d, db) = db_with(4).await;
    let mut l = db.listen("msgs");
    db.insert_many("msgs", (0..3).map(|i| doc! { "room": "a", "i": i }).collect()).await.unwrap();
    let c = l.recv_commit().await.unwrap();
    assert_eq!(c.events.len(), 3);
    assert!(c.events.iter().all(|e| e.sequence == c.sequence));
    for _ in 0..3 {
        db.insert_many("msgs", (0..3).map(|i| doc! { "room": "a", "i": i }).collect()).await.unwrap();
    }
    // 9 events in three commits, 4 buffered: the two oldest commits go whole.
    assert_eq!(l.recv_commit().await, Err(RecvError::Lagged(6)));
    assert_eq!(l.recv_commit().await.unwrap().events.len(), 3, "the rest of the newest commit, whole");
    // A commit bigger than the buffer is still delivered whole.
    db.insert_many("msgs", (0..10).map(|i| doc! { "room": "a", "i": i }).collect()).await.unwrap();
    assert_eq!(l.recv_commit().await.unwrap().events.len(), 10);
}

#[tokio::test]
async fn a_slow_listener_lags_by_exactly_what_it_missed() {
    let (_d, db) = db_with(8).await;
    let mut slow = db.listen("msgs");
    for i in 0..20 {
        db.insert_into("msgs", doc! { "room": "a", "i": i }).await.unwrap();
    }
    assert_eq!(slow.recv().await, Err(RecvError::Lagged(12)), "20 sent, 8 buffered");
    let next = slow.recv().await.unwrap();
    assert_eq!(next.document.unwrap().get("i"), Some(&Value::Int(12)), "resumes at the oldest buffered");
}

#[tokio::test]
async fn channels_are_created_lazily_and_removed_with_their_last_listener() {
    let (_d, db) = db_with(16).await;
    assert_eq!(db.pubsub().channel_count(), 0);
    for _ in 0..100 {
        let a = db.listen("msgs");
        let b = db.listen("msgs");
        let g = db.listen_all();
        assert_eq!(db.pubsub().listener_count("msgs"), 2);
        drop((a, b, g));
    }
    assert_eq!(db.pubsub().channel_count(), 0, "no channel leaks with short-lived listeners");
    db.insert_into("msgs", doc! { "room": "a" }).await.unwrap();
}

#[tokio::test]
async fn closing_the_database_ends_listeners_and_live_queries_after_the_committed_events() {
    let (_dir, db) = db_with(64).await;
    let mut listener = db.listen("other");
    let mut all = db.listen_all();
    let mut watcher = db.query("other").watch().await.unwrap();
    db.insert_into("other", doc! { "n": 1 }).await.unwrap();
    db.close().await.unwrap();
    assert!(listener.recv().await.is_ok(), "the committed event is still delivered");
    assert!(matches!(listener.recv().await, Err(aurora::RecvError::Closed)));
    assert!(all.recv().await.is_ok());
    assert!(matches!(all.recv().await, Err(aurora::RecvError::Closed)));
    assert!(watcher.recv().await.is_ok());
    assert!(matches!(watcher.recv().await, Err(aurora::WatchError::Closed)));
    let mut late = db.listen("other");
    assert!(matches!(late.recv().await, Err(aurora::RecvError::Closed)), "a listener after close ends at once");
}
