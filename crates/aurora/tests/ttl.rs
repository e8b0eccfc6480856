//! Expiring documents, with a manual clock: reads hide expired documents
//! at once; an expiry pass deletes exactly them, in commits whose `Delete`
//! events say `Expired` (live, in the feed, after a reopen); live queries
//! drop them; rules persist and can be removed; the background task runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, ChangeCause, ChangeType, ManualTime, QueryUpdate, Timestamp, Ttl, Value};
use std::time::Duration;
use tokio_stream::StreamExt;

const T0: i64 = 1_700_000_000_000_000;

fn config(dir: &std::path::Path, clock: &ManualTime) -> AuroraConfig {
    AuroraConfig { expiry_clock: clock.clone().into(), expiry_interval: Duration::ZERO, ..AuroraConfig::new(dir) }
}

fn at(secs: i64) -> Value {
    Value::Timestamp(Timestamp::from_micros(T0 + secs * 1_000_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_documents_are_hidden_at_once_then_deleted_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualTime::new(Timestamp::from_micros(T0));
    let db = Aurora::with_config(config(dir.path(), &clock)).await.unwrap();
    db.new_collection("sessions", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    db.set_ttl("sessions", Some(Ttl::after("seen_at", Duration::from_secs(60)))).await.unwrap();
    let old = db.insert_into("sessions", doc! { "user": "a", "seen_at": at(-30) }).await.unwrap();
    let fresh = db.insert_into("sessions", doc! { "user": "b", "seen_at": at(0) }).await.unwrap();
    let never = db.insert_into("sessions", doc! { "user": "c" }).await.unwrap();
    let odd = db.insert_into("sessions", doc! { "user": "d", "seen_at": "yesterday" }).await.unwrap();
    let mut listener = db.listen("sessions");
    let mut live = db.query("sessions").order_by("user", aurora::Order::Asc).watch().await.unwrap();
    assert_eq!(live.results().len(), 4);

    clock.advance(Duration::from_secs(45)); // `old` is 75 s old: expired
    assert!(db.get_document("sessions", &old).await.unwrap().is_none(), "hidden before any pass");
    assert!(db.get_document("sessions", &fresh).await.unwrap().is_some());
    assert_eq!(db.query("sessions").count().await.unwrap(), 3);
    let users: Vec<String> = db
        .query("sessions")
        .collect()
        .await
        .unwrap()
        .iter()
        .map(|d| d.get("user").and_then(Value::as_str).unwrap().to_string())
        .collect();
    assert_eq!(users, ["b", "c", "d"], "missing or non-timestamp fields never expire");
    assert!(listener.try_recv().is_none(), "nothing deleted yet");

    assert_eq!(db.expire_now().await.unwrap(), 1);
    let event = listener.recv().await.unwrap();
    assert_eq!((event.change_type, event.cause, &event.id), (ChangeType::Delete, ChangeCause::Expired, &old));
    let update = tokio::time::timeout(Duration::from_secs(5), live.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(update, QueryUpdate::Removed { old_index: 0, .. }), "{update:?}");
    assert_eq!(db.expire_now().await.unwrap(), 0, "nothing more");
    // An ordinary delete says `Write`.
    db.delete_document("sessions", &never).await.unwrap();
    let event = listener.recv().await.unwrap();
    assert_eq!((event.change_type, event.cause), (ChangeType::Delete, ChangeCause::Write));
    let _ = (fresh, odd);
    db.close().await.unwrap();

    // After a reopen: the rule holds, and the feed still says why.
    let db = Aurora::with_config(config(dir.path(), &clock)).await.unwrap();
    assert_eq!(db.ttl("sessions"), Some(Ttl::after("seen_at", Duration::from_secs(60))));
    let expired: Vec<_> =
        db.changes_since(0).await.unwrap().into_iter().filter(|e| e.cause == ChangeCause::Expired).collect();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, old);
    clock.advance(Duration::from_secs(60));
    assert_eq!(db.query("sessions").count().await.unwrap(), 1, "b expired too; d never does");
    assert_eq!(db.expire_now().await.unwrap(), 1);
    // Removing the rule: nothing is hidden or deleted any more.
    db.set_ttl("sessions", None).await.unwrap();
    db.insert_into("sessions", doc! { "user": "e", "seen_at": at(-1000) }).await.unwrap();
    assert_eq!(db.query("sessions").count().await.unwrap(), 2);
    assert_eq!(db.expire_now().await.unwrap(), 0);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_document_expiry_and_the_background_task() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuroraConfig { expiry_interval: Duration::from_millis(20), ..AuroraConfig::new(dir.path()) };
    let db = Aurora::with_config(config).await.unwrap();
    db.new_collection(
        "cache",
        [("expires_at", aurora::FieldDefinition::new(aurora::FieldType::Timestamp).indexed().nullable())],
    )
    .await
    .unwrap();
    db.set_ttl("cache", Some(Ttl::at("expires_at"))).await.unwrap();
    let now = Timestamp::now();
    let gone = db
        .insert_into(
            "cache",
            doc! { "k": 1, "expires_at": Value::Timestamp(now.saturating_sub(Duration::from_secs(1))) },
        )
        .await
        .unwrap();
    let kept = db
        .insert_into(
            "cache",
            doc! { "k": 2, "expires_at": Value::Timestamp(now.saturating_add(Duration::from_secs(3600))) },
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db.database().collections().get("cache", &gone).unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "the expiry task deleted it");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(db.get_document("cache", &kept).await.unwrap().is_some());
    assert!(matches!(
        db.set_ttl("cache", Some(Ttl::at("bad..path"))).await,
        Err(aurora::Error::Core(aurora::CoreError::InvalidName { .. }))
    ));
    assert!(matches!(db.set_ttl("nope", Some(Ttl::at("t"))).await, Err(aurora::Error::UnknownCollection(_))));
    db.close().await.unwrap();
}
