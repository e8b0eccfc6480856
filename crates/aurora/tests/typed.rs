//! Typed collections, typed transactions, the errors applications match
//! on, idempotent collection creation and the transaction closure's `?`,
//! on a real on-disk database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, DocId, Error, FieldDefinition, FieldType, Order, TypedTransaction, TypedUpdate, Value};
use serde::{Deserialize, Serialize};
use tokio_stream::StreamExt;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Message {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    id: Option<DocId>,
    room: String,
    text: String,
    at: i64,
}

fn msg(room: &str, text: &str, at: i64) -> Message {
    Message { id: None, room: room.into(), text: text.into(), at }
}

async fn open(dir: &std::path::Path) -> Aurora {
    let db = Aurora::open(dir).await.unwrap();
    let fields = || {
        [
            ("room", FieldDefinition::new(FieldType::String).indexed()),
            ("text", FieldDefinition::new(FieldType::String)),
            ("at", FieldDefinition::new(FieldType::Int).indexed()),
        ]
    };
    db.ensure_collection("messages", fields()).await.unwrap();
    assert!(!db.ensure_collection("messages", fields()).await.unwrap(), "a second start finds it");
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_collection_round_trips_through_every_call_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let messages = db.collection::<Message>("messages");
    let a = messages.insert(&msg("rust", "hi", 1)).await.unwrap();
    let chosen = DocId::text("welcome").unwrap();
    let b = messages.insert(&Message { id: Some(chosen.clone()), ..msg("rust", "welcome", 2) }).await.unwrap();
    assert_eq!(b, chosen, "the struct's _id is the document id");
    messages.insert_many(&[msg("go", "x", 3), msg("rust", "again", 4)]).await.unwrap();

    let got = messages.get(&a).await.unwrap().unwrap();
    assert_eq!(got, Message { id: Some(a.clone()), ..msg("rust", "hi", 1) });
    // The id is not stored as a field.
    assert!(db.get_document("messages", &a).await.unwrap().unwrap().get("_id").is_none());

    let latest =
        messages.query().filter(|f| f.eq("room", "rust")).order_by("at", Order::Desc).limit(2).collect().await.unwrap();
    assert_eq!(latest.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["again", "welcome"]);
    let page = messages.query().order_by("at", Order::Asc).limit(3).page().await.unwrap();
    assert_eq!(page.items.len(), 3);
    let rest = messages.query().order_by("at", Order::Asc).after(page.next_cursor.unwrap()).collect().await.unwrap();
    assert_eq!(rest.len(), 1);

    let updated = messages.update(&a, doc! { "text": "hello" }).await.unwrap();
    assert_eq!(updated.text, "hello");
    let mut edited = updated.clone();
    edited.at = 10;
    messages.replace(&edited).await.unwrap();
    assert_eq!(messages.get(&a).await.unwrap().unwrap().at, 10);
    assert!(messages.delete(&b).await.unwrap());
    assert_eq!(messages.query().count().await.unwrap(), 3);
    db.close().await.unwrap();

    let db = open(dir.path()).await;
    assert_eq!(db.collection::<Message>("messages").get(&a).await.unwrap().unwrap().text, "hello");
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_can_be_strings_or_absent() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Named {
        #[serde(rename = "_id")]
        id: String,
        n: i64,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Bare {
        n: i64,
    }
    let db = Aurora::temporary().await.unwrap();
    db.ensure_collection("t", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    let id = db.collection::<Named>("t").insert(&Named { id: "ada".into(), n: 1 }).await.unwrap();
    assert_eq!(id, DocId::text("ada").unwrap());
    assert_eq!(db.collection::<Named>("t").get(&id).await.unwrap(), Some(Named { id: "ada".into(), n: 1 }));
    let bare = db.collection::<Bare>("t").insert(&Bare { n: 2 }).await.unwrap();
    assert_eq!(db.collection::<Bare>("t").get(&bare).await.unwrap(), Some(Bare { n: 2 }));
    // A UUID id reads into a String field as its text.
    assert_eq!(db.collection::<Named>("t").get(&bare).await.unwrap().unwrap().id, bare.to_string());
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_users_match_on_are_variants_of_aurora_error() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("users", [("email", FieldDefinition::new(FieldType::String).unique())]).await.unwrap();
    let users = db.collection::<serde_json::Value>("users");
    let first = users.insert(&serde_json::json!({ "email": "ada@x.io" })).await.unwrap();
    match users.insert(&serde_json::json!({ "email": "ada@x.io" })).await {
        Err(Error::UniqueViolation { collection, field, value }) => {
            assert_eq!((collection.as_str(), field.as_str()), ("users", "email"));
            assert!(value.contains("ada@x.io"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(users.insert(&serde_json::json!({ "email": 5 })).await, Err(Error::SchemaViolation { field, .. }) if field == "email")
    );
    let taken = users.insert(&serde_json::json!({ "_id": first.to_string(), "email": "b@x.io" })).await;
    assert!(matches!(taken, Err(Error::DocumentExists { .. })), "{taken:?}");
    let missing = db.update_document("users", &DocId::text("nobody").unwrap(), doc! { "email": "c@x.io" }).await;
    assert!(matches!(missing, Err(Error::NotFound { .. })), "{missing:?}");
    assert!(matches!(db.collection::<serde_json::Value>("nope").get(&first).await, Err(Error::UnknownCollection(_))));
    assert!(matches!(
        db.new_collection("users", Vec::<(&str, FieldDefinition)>::new()).await,
        Err(Error::CollectionExists(_))
    ));
    let other_schema = db.ensure_collection("users", [("email", FieldDefinition::new(FieldType::Int))]).await;
    assert!(
        matches!(other_schema, Err(Error::Index(_))),
        "a different schema is never changed silently: {other_schema:?}"
    );
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_typed_take_question_marks_and_retry_on_conflict() {
    let db = Aurora::temporary().await.unwrap();
    db.ensure_collection("counters", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    #[derive(Serialize, Deserialize)]
    struct Counter {
        #[serde(rename = "_id")]
        id: DocId,
        n: i64,
    }
    let id = DocId::text("hits").unwrap();
    let c = id.clone();
    db.transaction(move |tx| tx.insert_typed("counters", &Counter { id: c.clone(), n: 0 })).await.unwrap();
    // 8 tasks × 25 increments, each a read-modify-write: conflicts are
    // retried (with an async back-off), none is lost.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (db, id) = (db.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                let id = id.clone();
                db.transaction(move |tx| {
                    let mut c: Counter = tx
                        .get_typed("counters", &id)?
                        .ok_or(Error::NotFound { collection: "counters".into(), id: id.to_string() })?;
                    c.n += 1;
                    tx.replace_typed("counters", &c)
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = db.collection::<Counter>("counters").get(&id).await.unwrap().unwrap();
    assert_eq!(c.n, 200);
    // The body's own error rolls back and comes out as it is.
    let r: aurora::Result<()> = db
        .transaction(move |tx| {
            tx.insert("counters", doc! { "n": 1 })?;
            Err(Error::NotFound { collection: "counters".into(), id: "x".into() })
        })
        .await;
    assert!(matches!(r, Err(Error::NotFound { .. })));
    assert_eq!(db.query("counters").count().await.unwrap(), 1, "the failed body wrote nothing");
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_live_query_streams_typed_updates_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let messages = db.collection::<Message>("messages");
    messages.insert(&msg("rust", "one", 1)).await.unwrap();
    let mut live =
        messages.query().filter(|f| f.eq("room", "rust")).order_by("at", Order::Desc).limit(2).watch().await.unwrap();
    assert_eq!(live.results().unwrap().len(), 1);
    messages.insert(&msg("go", "elsewhere", 2)).await.unwrap();
    messages.insert(&msg("rust", "two", 3)).await.unwrap();
    let update = tokio::time::timeout(std::time::Duration::from_secs(5), live.next()).await.unwrap().unwrap().unwrap();
    match update {
        TypedUpdate::Added { value, new_index } => assert_eq!((value.text.as_str(), new_index), ("two", 0)),
        other => panic!("{other:?}"),
    }
    assert_eq!(live.results().unwrap().iter().map(|m| m.at).collect::<Vec<_>>(), [3, 1]);
    let _ = Value::Null;
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_job_arguments_reach_typed_handlers_and_bad_ones_fail_at_once() {
    use aurora::{Job, JobStatus, WorkerConfig};
    #[derive(Serialize, Deserialize, Clone)]
    struct Resize {
        image: String,
        width: u32,
    }
    let db = Aurora::temporary().await.unwrap();
    let workers = db.workers(WorkerConfig::default()).await.unwrap();
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s = seen.clone();
    workers.register("resize", move |_ctx, args: Resize| {
        let s = s.clone();
        async move {
            s.lock().push((args.image, args.width));
            Ok(())
        }
    });
    workers.start().unwrap();
    let ok =
        workers.enqueue(Job::new("resize").args(&Resize { image: "a.png".into(), width: 640 }).unwrap()).await.unwrap();
    let bad = workers.enqueue(Job::new("resize").payload(doc! { "image": 5 })).await.unwrap();
    let wait = std::time::Duration::from_secs(10);
    assert_eq!(workers.wait_for(&ok, wait).await.unwrap(), Some(JobStatus::Completed));
    assert_eq!(
        workers.wait_for(&bad, wait).await.unwrap(),
        Some(JobStatus::Failed),
        "no retries for arguments that never decode"
    );
    assert_eq!(*seen.lock(), vec![("a.png".to_string(), 640)]);
    assert!(Job::new("resize").args(&u64::MAX).is_err(), "arguments that do not convert are refused at once");
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_results_are_named() {
    use aurora::Aggregate;
    let db = Aurora::temporary().await.unwrap();
    db.ensure_collection("orders", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    for (c, t) in [("ada", 10), ("ada", 30), ("bob", 5)] {
        db.insert_into("orders", doc! { "customer": c, "total": t }).await.unwrap();
    }
    let groups = db
        .query("orders")
        .aggregate(Some("customer"), &[Aggregate::Count, Aggregate::Sum("total".into())])
        .await
        .unwrap();
    let ada = groups.iter().find(|g| g.key == Value::from("ada")).unwrap();
    assert_eq!(ada.get("count"), Some(&Value::Int(2)));
    assert_eq!(ada.get("sum(total)"), Some(&Value::Int(40)));
    assert_eq!(ada.named().map(|(n, _)| n).collect::<Vec<_>>(), ["count", "sum(total)"]);
    db.close().await.unwrap();
}

/// A commit reaches the live query before the write returns: its update is
/// ready at once (`try_recv`), and then there is none.
#[tokio::test(flavor = "current_thread")]
async fn a_typed_live_query_has_the_update_of_a_returned_write_ready() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let messages = db.collection::<Message>("messages");
    let mut live = messages.query().filter(|f| f.eq("room", "r")).order_by("at", Order::Desc).watch().await.unwrap();
    assert!(live.try_recv().unwrap().is_none());
    for at in 0..5 {
        messages.insert(&msg("r", "hi", at)).await.unwrap();
        let update = live.try_recv().unwrap().expect("ready when insert returned");
        assert!(matches!(&update, TypedUpdate::Added { value, new_index: 0 } if value.at == at), "{update:?}");
        assert!(live.try_recv().unwrap().is_none(), "one update per insert");
    }
    messages.insert(&msg("elsewhere", "x", 9)).await.unwrap();
    assert!(live.try_recv().unwrap().is_none(), "another room changes nothing");
}
