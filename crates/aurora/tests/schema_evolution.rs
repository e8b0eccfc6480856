//! Schema evolution through the `Aurora` handle: the typed refusal, the
//! idempotent start-up call, backfills, typed struct evolution, listeners
//! and live queries across a change, and transactions racing one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, DocId, Error, Existing, FieldDefinition, FieldType, Schema, Update, Value};
use serde::{Deserialize, Serialize};
use std::time::Duration;

fn f(t: FieldType) -> FieldDefinition {
    FieldDefinition::new(t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_change_is_a_typed_error_and_a_backfill_lets_it_pass() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    let v1 = Schema::new().field("title", f(FieldType::String));
    assert!(db.evolve_collection("notes", v1.clone(), Existing::Validate).await.unwrap().created);
    let ids = db.insert_many("notes", (0..10).map(|i| doc! { "title": format!("n{i}") }).collect()).await.unwrap();
    let v2 = v1.clone().field("stars", f(FieldType::Int).indexed());
    let Err(Error::SchemaChangeRefused { collection, id, field, reason }) =
        db.evolve_collection("notes", v2.clone(), Existing::Validate).await
    else {
        panic!("refused")
    };
    let first = ids.iter().map(DocId::to_string).min().unwrap();
    assert_eq!((collection.as_str(), id, field.as_str()), ("notes", first, "stars"));
    assert_eq!(reason, "is required (not nullable), got nothing");
    assert_eq!(db.schema("notes").unwrap(), v1, "nothing changed");

    let filled = db.query("notes").update(Update::new().set_if_absent("stars", 0)).await.unwrap();
    assert_eq!(filled, 10);
    let change = db.evolve_collection("notes", v2.clone(), Existing::Validate).await.unwrap();
    assert_eq!((change.checked, change.nonconforming, change.indexes_built), (10, 0, vec!["stars".to_string()]));
    assert_eq!(db.query("notes").filter(|q| q.eq("stars", 0)).explain().await.unwrap().examined_rows, 10);
    assert!(!db.evolve_collection("notes", v2.clone(), Existing::Validate).await.unwrap().changed);
    db.close().await.unwrap();

    // Persisted: the next start finds the new schema.
    let db = Aurora::open(dir.path()).await.unwrap();
    assert_eq!(db.schema("notes").unwrap(), v2);
    let wrong = db.insert_into("notes", doc! { "title": "t" }).await;
    assert!(matches!(wrong, Err(Error::SchemaViolation { ref field, .. }) if field == "stars"), "{wrong:?}");
    assert!(db.evolve_collection("_jobs", Schema::new(), Existing::Validate).await.is_err(), "reserved");
    assert!(matches!(
        db.alter_schema("nope", Schema::new(), Existing::Validate).await,
        Err(Error::UnknownCollection(_))
    ));
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct NoteV1 {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    id: Option<DocId>,
    title: String,
    body: String,
}

/// Version 2: `body` renamed `text` (old documents still read), a new
/// `pinned` flag that old documents lack (serde default).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct NoteV2 {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    id: Option<DocId>,
    title: String,
    #[serde(alias = "body")]
    text: String,
    #[serde(default)]
    pinned: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_struct_evolves_with_serde_defaults_and_a_rename() {
    let db = Aurora::temporary().await.unwrap();
    let v1 = Schema::new().field("title", f(FieldType::String)).field("body", f(FieldType::String));
    db.evolve_collection("notes", v1, Existing::Validate).await.unwrap();
    let old = db.collection::<NoteV1>("notes");
    let id = old.insert(&NoteV1 { id: None, title: "t".into(), body: "hello".into() }).await.unwrap();

    // The new code reads old documents as they are.
    let notes = db.collection::<NoteV2>("notes");
    let read = notes.get(&id).await.unwrap().unwrap();
    assert_eq!((read.text.as_str(), read.pinned), ("hello", false));
    // The schema of the new code, applied with `Fail`: the old document is
    // reported (no `pinned`, and `body` rather than `text`) and stays readable.
    let v2 = Schema::new()
        .field("title", f(FieldType::String))
        .field("text", f(FieldType::String))
        .field("pinned", f(FieldType::Bool).indexed());
    let change = db.evolve_collection("notes", v2.clone(), Existing::Fail).await.unwrap();
    assert_eq!((change.nonconforming, change.examples[0].field.as_str()), (1, "pinned"), "fields in path order");
    // Rewriting every document through the new struct migrates it …
    for note in notes.query().collect().await.unwrap() {
        notes.replace(&note).await.unwrap();
    }
    let stored = db.get_document("notes", &id).await.unwrap().unwrap();
    assert_eq!((stored.get("text"), stored.get("body")), (Some(&Value::from("hello")), None));
    // … so the same schema now validates.
    let check = db.evolve_collection("notes", v2, Existing::Validate).await.unwrap();
    assert_eq!((check.checked, check.nonconforming), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_and_live_queries_live_through_a_change_and_see_no_backfill() {
    let db = Aurora::temporary().await.unwrap();
    db.evolve_collection("c", Schema::new(), Existing::Validate).await.unwrap();
    db.insert_many("c", (0..20).map(|i| doc! { "n": i }).collect()).await.unwrap();
    let mut listener = db.listen("c");
    let mut live = db.query("c").filter(|q| q.gte("n", 18)).watch().await.unwrap();
    let v2 = Schema::new().field("n", f(FieldType::Int).unique());
    db.alter_schema("c", v2, Existing::Validate).await.unwrap();
    // The back-fill rewrote every document for the new index: that is not
    // a change of any document, so nothing was published.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(listener.try_recv().is_none(), "no events from the schema change");
    db.insert_into("c", doc! { "n": 30 }).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), listener.recv()).await.unwrap().unwrap();
    assert_eq!(event.document.unwrap().get("n"), Some(&Value::Int(30)));
    let update = tokio::time::timeout(Duration::from_secs(5), live.recv()).await.unwrap().unwrap();
    assert!(matches!(update, aurora::QueryUpdate::Added { .. }), "{update:?}");
    assert_eq!(live.results().count(), 3);
    let dup = db.insert_into("c", doc! { "n": 30 }).await;
    assert!(matches!(dup, Err(Error::UniqueViolation { .. })), "{dup:?}");
}

/// Transactions keep inserting while a change that requires an int `n`
/// runs. Some inserts do not fit; they either commit before the change
/// (which then refuses) or are refused themselves — a transaction planned
/// with the old schema and committed after the change began is re-planned,
/// never let through. So a change that was made leaves no document without
/// an int `n`. Rounds: `AURORA_EVOLVE_ROUNDS` (default 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_racing_a_change_never_slip_past_it() {
    let rounds: u32 = std::env::var("AURORA_EVOLVE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let db = Aurora::temporary().await.unwrap();
    let loose = Schema::new();
    let tight = Schema::new().field("n", f(FieldType::Int).indexed());
    db.evolve_collection("c", loose.clone(), Existing::Validate).await.unwrap();
    for round in 0..rounds {
        let writers: Vec<_> = (0..2i64)
            .map(|t| {
                let db = db.clone();
                tokio::spawn(async move {
                    for i in 0..200i64 {
                        let d = match (i + t) % 50 == 49 {
                            true => doc! { "n": "text" },
                            false => doc! { "n": i },
                        };
                        let r = db.transaction(move |tx| Ok(tx.insert("c", d.clone()).map(drop)?)).await;
                        match r {
                            Ok(()) | Err(Error::SchemaViolation { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(u64::from(round) * 3)).await;
        let outcome = db.alter_schema("c", tight.clone(), Existing::Validate).await;
        for w in writers {
            w.await.unwrap();
        }
        match outcome {
            Ok(_) => {
                assert_eq!(db.schema("c").unwrap(), tight);
                let bad = db
                    .query("c")
                    .collect()
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|d| !matches!(d.get("n"), Some(Value::Int(_))))
                    .count();
                assert_eq!(bad, 0, "round {round}: a write slipped past the change");
            }
            Err(Error::SchemaChangeRefused { .. }) => assert_eq!(db.schema("c").unwrap(), loose),
            Err(e) => panic!("{e}"),
        }
        db.alter_schema("c", loose.clone(), Existing::Validate).await.unwrap();
        db.query("c").delete().await.unwrap();
    }
}

/// A schema that declares a compound index is found again by the start-up
/// calls (compound indexes are stored as indexes, not with the schema).
#[tokio::test(flavor = "current_thread")]
async fn start_up_calls_with_a_compound_index_are_idempotent() {
    let db = Aurora::temporary().await.unwrap();
    let schema = || {
        Schema::new()
            .field("room", f(FieldType::String))
            .field("at", f(FieldType::Int))
            .compound_index(["room", "at"], true)
    };
    assert!(db.ensure_collection_with_schema("m", schema()).await.unwrap());
    assert!(!db.ensure_collection_with_schema("m", schema()).await.unwrap(), "found as declared");
    assert!(!db.evolve_collection("m", schema(), Existing::Validate).await.unwrap().changed);
    let other = schema().compound_index(["at", "room"], false);
    assert!(db.ensure_collection_with_schema("m", other.clone()).await.is_err(), "a missing compound index differs");
    let change = db.evolve_collection("m", other, Existing::Validate).await.unwrap();
    assert_eq!(change.indexes_built, ["(at, room)"]);
    assert!(matches!(db.alter_schema("_jobs", Schema::new(), Existing::Validate).await, Err(Error::Storage(_))));
}
