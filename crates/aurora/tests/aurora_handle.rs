//! The `Aurora` handle end to end on a real on-disk database: configuration
//! and presets, the document calls, transactions, closing, concurrency from
//! many tokio tasks, and the ordered change sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{
    doc, Aurora, AuroraConfig, ChangeKind, ChangeSink, Committed, DocId, Durability, Error, FieldDefinition, FieldType,
    Value,
};
use std::sync::{Arc, Mutex};

fn users() -> Vec<(&'static str, FieldDefinition)> {
    vec![
        ("email", FieldDefinition::new(FieldType::String).unique()),
        ("age", FieldDefinition::new(FieldType::Int).indexed()),
        ("nick", FieldDefinition::new(FieldType::String).nullable()),
    ]
}

#[test]
fn presets_and_invalid_settings() {
    let r = AuroraConfig::read_optimized("x");
    assert_eq!((r.hot_cache_size_mb, r.eviction_policy), (512, aurora::EvictionPolicy::Lfu));
    let w = AuroraConfig::write_optimized("x");
    assert_eq!((w.write_buffer_size, w.effective_durability()), (10_000, Durability::Buffered));
    let rt = AuroraConfig::realtime("x");
    assert_eq!((rt.hot_cache_size_mb, rt.write_buffer_size), (1024, 5000));
    for (cfg, setting) in [
        (AuroraConfig { write_buffer_size: 0, ..AuroraConfig::new("x") }, "write_buffer_size"),
        (
            AuroraConfig { enable_write_buffering: true, durability: Durability::Strict, ..AuroraConfig::new("x") },
            "enable_write_buffering",
        ),
        (AuroraConfig { sync_interval_ms: 0, ..AuroraConfig::new("x") }, "sync_interval"),
    ] {
        let err = cfg.validate().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }) && err.to_string().contains(setting), "{err}");
    }
}

#[tokio::test]
async fn invalid_config_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        Aurora::with_config(AuroraConfig { hot_cache_size_mb: 0, ..AuroraConfig::new(dir.path()) }).await.unwrap_err();
    assert!(err.to_string().contains("hot_cache_size_mb"), "{err}");
}

#[tokio::test]
async fn document_calls_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    db.new_collection("users", users()).await.unwrap();
    let id = db.insert_into("users", doc! { "email": "a@x.io", "age": 1 }).await.unwrap();
    let ids = db
        .insert_many("users", vec![doc! { "email": "b@x.io", "age": 2 }, doc! { "email": "c@x.io", "age": 3 }])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    // insert_many is atomic: one bad document, none inserted.
    let err = db
        .insert_many("users", vec![doc! { "email": "d@x.io", "age": 4 }, doc! { "email": "a@x.io", "age": 5 }])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UniqueViolation { .. }), "{err}");
    assert_eq!(db.collection_stats("users").await.unwrap().count, 3);

    let updated = db.update_document("users", &id, doc! { "age": 10, "nick": "al" }).await.unwrap();
    assert_eq!((updated.get("age"), updated.get("email")), (Some(&Value::Int(10)), Some(&Value::from("a@x.io"))));
    let err = db.update_document("users", &id, doc! { "age": null }).await.unwrap_err();
    assert!(err.to_string().contains("`age` is required"), "{err}");
    db.update_document("users", &id, doc! { "nick": null }).await.unwrap();
    let err = db.replace_document("users", doc! { "email": "z@x.io", "age": 0 }).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    db.upsert("users", doc! { "email": "e@x.io", "age": 7 }.id(DocId::text("e").unwrap())).await.unwrap();
    assert!(db.delete_document("users", &DocId::text("e").unwrap()).await.unwrap());
    assert!(!db.delete_document("users", &DocId::text("e").unwrap()).await.unwrap());

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct U {
        email: String,
        age: i64,
    }
    let tid = db.insert_typed("users", &U { email: "t@x.io".into(), age: 9 }).await.unwrap();
    assert_eq!(db.get_typed::<U>("users", &tid).await.unwrap(), Some(U { email: "t@x.io".into(), age: 9 }));

    db.close().await.unwrap();
    assert!(matches!(db.get_document("users", &id).await, Err(Error::Closed)));
    assert!(matches!(db.insert_into("users", doc! {}).await, Err(Error::Closed)));
    assert!(matches!(db.begin(), Err(Error::Closed)));

    let db = Aurora::open(dir.path()).await.unwrap();
    assert_eq!(db.list_collections().unwrap(), vec!["users".to_string()]);
    assert_eq!(db.get_document("users", &id).await.unwrap().unwrap().get("age"), Some(&Value::Int(10)));
    let stats = db.collection_stats("users").await.unwrap();
    assert_eq!(stats.count, 4);
    assert_eq!(stats.indexes.len(), 2);
}

#[tokio::test]
async fn transactions_commit_roll_back_and_conflict() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("c", users()).await.unwrap();
    let mut tx = db.begin().unwrap();
    let id = tx.insert("c", doc! { "email": "a@x.io", "age": 1 }).unwrap();
    tx.rollback();
    assert!(db.get_document("c", &id).await.unwrap().is_none());

    let id = db.insert_into("c", doc! { "email": "a@x.io", "age": 1 }).await.unwrap();
    let mut a = db.begin().unwrap();
    let mut b = db.begin().unwrap();
    a.update("c", &id, [("age".to_string(), Value::Int(2))].into()).unwrap();
    b.update("c", &id, [("age".to_string(), Value::Int(3))].into()).unwrap();
    a.commit().await.unwrap();
    assert!(matches!(b.commit().await, Err(Error::Conflict { .. })));
    assert_eq!(db.get_document("c", &id).await.unwrap().unwrap().get("age"), Some(&Value::Int(2)));
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Committed>>);
impl ChangeSink for Recorder {
    fn publish(&self, c: Committed) {
        self.0.lock().unwrap().push(c);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_and_the_change_sink() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Recorder::default());
    let cfg = AuroraConfig { durability: Durability::Strict, ..AuroraConfig::new(dir.path()) };
    let db = Aurora::with_sink(cfg, sink.clone()).await.unwrap();
    db.new_collection("events", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let db = db.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    db.insert_into("events", doc! { "task": t, "i": i }).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(db.collection_stats("events").await.unwrap().count, 320);
    let log = sink.0.lock().unwrap();
    assert_eq!(log.len(), 320, "one publication per commit");
    assert!(log.windows(2).all(|w| w[0].sequence < w[1].sequence), "in commit order");
    assert!(log.iter().all(|c| c.changes.len() == 1 && c.changes[0].kind == ChangeKind::Insert));
}

#[tokio::test]
async fn system_collection_names_are_reserved() {
    let db = Aurora::temporary().await.unwrap();
    let err = db.new_collection("_jobs", users()).await.unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
    assert!(db.list_collections().unwrap().is_empty(), "nothing created");
    db.new_collection("jobs_", users()).await.unwrap();
}
