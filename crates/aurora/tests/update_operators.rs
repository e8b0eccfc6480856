//! Atomic update operators through the `Aurora` handle (issue 16, item 5):
//! concurrent increments lose nothing, `query().update(...)` changes every
//! match in one commit with one event each, and a bad operator is a typed
//! error that changes nothing (checked against the schema before any
//! document is read, and against the values found).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::index::IndexError;
use aurora::{doc, Aurora, Error, FieldDefinition, FieldType, Update, UpdateError, Value};

async fn posts() -> Aurora {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection(
        "posts",
        [
            ("title", FieldDefinition::new(FieldType::String)),
            ("views", FieldDefinition::new(FieldType::Int)),
            ("score", FieldDefinition::new(FieldType::Float).nullable()),
            ("tags", FieldDefinition::new(FieldType::Array).nullable()),
            ("kind", FieldDefinition::new(FieldType::String).indexed()),
        ],
    )
    .await
    .unwrap();
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_are_never_lost() {
    let db = posts().await;
    let id = db.insert_into("posts", doc! { "title": "t", "views": 0, "kind": "a" }).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (db, id) = (db.clone(), id.clone());
            tokio::spawn(async move {
                for _ in 0..25 {
                    db.update_document("posts", &id, Update::new().increment("views", 1)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let d = db.get_document("posts", &id).await.unwrap().unwrap();
    assert_eq!(d.get("views"), Some(&Value::Int(200)), "8 × 25 increments, none lost");
}

#[tokio::test]
async fn query_update_applies_operators_to_every_match_with_one_event_each() {
    let db = posts().await;
    for i in 0..6 {
        let kind = if i % 2 == 0 { "even" } else { "odd" };
        db.insert_into("posts", doc! { "title": format!("p{i}"), "views": i, "kind": kind, "tags": ["x"] })
            .await
            .unwrap();
    }
    let mut events = db.listen("posts");
    let update = Update::new()
        .increment("views", 10)
        .decrement("score", 0.5)
        .push("tags", "hot")
        .pull("tags", "x")
        .set_if_absent("owner", "ada")
        .set("meta.seen", true)
        .unset("title");
    let err = db.query("posts").filter(|f| f.eq("kind", "even")).update(update.clone()).await.unwrap_err();
    assert!(
        matches!(&err, Error::SchemaViolation { field, source, .. }
            if field == "title" && matches!(**source, IndexError::MissingField { .. })),
        "unsetting a required field is refused by the schema: {err:?}"
    );
    assert!(events.try_recv().is_none(), "nothing committed");
    let update = Update { ops: update.ops[..6].to_vec() };
    let n = db.query("posts").filter(|f| f.eq("kind", "even")).update(update).await.unwrap();
    assert_eq!(n, 3);
    for _ in 0..3 {
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), events.recv()).await.unwrap().unwrap();
        assert_eq!(e.document.unwrap().get("kind"), Some(&Value::from("even")));
    }
    assert!(events.try_recv().is_none(), "one change event per updated document, no more");
    let evens = db.query("posts").filter(|f| f.eq("kind", "even")).collect().await.unwrap();
    for d in &evens {
        let i: i64 = d.get("title").and_then(Value::as_str).unwrap()[1..].parse().unwrap();
        assert_eq!(d.get("views"), Some(&Value::Int(i + 10)));
        assert_eq!(d.get("score"), Some(&Value::Float(-0.5)), "a missing number counts as 0");
        assert_eq!(d.get("tags"), Some(&Value::from(vec!["hot"])));
        assert_eq!(d.get("owner"), Some(&Value::from("ada")));
        assert_eq!(d.get_path("meta.seen"), Some(&Value::Bool(true)));
    }
    // A patch document still works as before.
    assert_eq!(db.query("posts").filter(|f| f.eq("kind", "odd")).update(doc! { "views": 0 }).await.unwrap(), 3);
    assert_eq!(db.query("posts").filter(|f| f.eq("views", 0)).count().await.unwrap(), 3);
}

#[tokio::test]
async fn bad_operators_are_typed_errors_and_change_nothing() {
    let db = posts().await;
    let id = db.insert_into("posts", doc! { "title": "t", "views": 1, "kind": "a", "tags": ["x"] }).await.unwrap();
    let before = db.get_document("posts", &id).await.unwrap().unwrap();
    let mut events = db.listen("posts");
    type Expect = fn(&Error) -> bool;
    let cases: Vec<(Update, Expect)> = vec![
        // Against the declared types, before any document is read.
        (Update::new().increment("title", 1), |e| matches!(e, Error::Update(UpdateError::WrongType { .. }))),
        (Update::new().push("views", 1), |e| matches!(e, Error::Update(UpdateError::WrongType { .. }))),
        (Update::new().increment("views", "1"), |e| matches!(e, Error::Update(UpdateError::BadOperand { .. }))),
        (Update::new().set("a..b", 1), |e| matches!(e, Error::Update(UpdateError::InvalidPath { .. }))),
        // Against the values found.
        (Update::new().increment("views", 1).set("free", "s").increment("free", 1), |e| {
            matches!(e, Error::Update(UpdateError::WrongType { .. }))
        }),
        (Update::new().set("views", i64::MAX).increment("views", 1), |e| {
            matches!(e, Error::Update(UpdateError::Overflow { .. }))
        }),
        // Against the schema, after applying.
        (Update::new().increment("views", 0.5), |e| matches!(e, Error::SchemaViolation { .. })),
        (Update::new().set("kind", 3), |e| matches!(e, Error::SchemaViolation { .. })),
    ];
    for (update, expected) in cases {
        let err = db.update_document("posts", &id, update.clone()).await.unwrap_err();
        assert!(expected(&err), "{update:?}: {err:?}");
        let err = db.query("posts").update(update.clone()).await.unwrap_err();
        assert!(expected(&err), "query: {update:?}: {err:?}");
    }
    // On an empty match set the declared types are still checked.
    let err = db.query("posts").filter(|f| f.eq("kind", "none")).update(Update::new().increment("title", 1)).await;
    assert!(matches!(err, Err(Error::Update(UpdateError::WrongType { .. }))), "{err:?}");
    let missing = aurora::DocId::text("missing").unwrap();
    let err = db.update_document("posts", &missing, Update::new().increment("views", 1)).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(db.get_document("posts", &id).await.unwrap().unwrap(), before, "nothing changed");
    assert!(events.try_recv().is_none(), "nothing committed");
}
