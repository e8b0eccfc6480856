//! The insert path of issue 17: an insert reads nothing before its commit
//! (the id's absence is a condition of the commit), a taken id is still
//! `DocumentExists` with nothing written, and the document is shared with
//! the hot cache and the change record instead of copied.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../aurora-storage/tests/common/intercept.rs"]
mod intercept;

use aurora_core::{doc, FieldDefinition, FieldType};
use aurora_index::{Collections, IndexConfig, IndexError, Schema};
use aurora_storage::cold::{ColdStore, SledStore};
use aurora_storage::{DocumentStore, DocumentStoreConfig, Durability, Store, StoreConfig};
use aurora_txn::{Database, TxnError};
use intercept::Intercept;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn open_counting(dir: &std::path::Path) -> (Database, Arc<AtomicUsize>) {
    let gets = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&gets);
    let config = StoreConfig {
        durability: Durability::Balanced,
        cold_cache_capacity_mb: 8,
        checkpoint_interval: Duration::from_secs(3600),
        ..StoreConfig::default()
    };
    let store = Store::open_with_backend(dir, config, &mut move |path, cache| {
        // Sled, counting point reads of document keys (`"d" ++ …`).
        let counter = Arc::clone(&counter);
        let store = Intercept::new(SledStore::open(path, cache)?).on_get(move |key| {
            if key.first() == Some(&b'd') {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            None
        });
        Ok(Arc::new(store) as Arc<dyn ColdStore>)
    })
    .unwrap();
    let docs = DocumentStore::new(store, DocumentStoreConfig::default());
    let collections = Collections::open(docs, IndexConfig::default()).unwrap();
    (Database::without_sink(collections), gets)
}

/// Before: each insert read its id at the snapshot (a cold-store read on a
/// miss), the commit leader read it again for the condition, and the
/// commit recorded the replaced version for the transaction's own pinned
/// snapshot (a third read). Now only the condition reads it.
#[test]
fn an_insert_reads_its_document_key_once_for_the_commit_condition() {
    let dir = tempfile::tempdir().unwrap();
    let (db, gets) = open_counting(dir.path());
    let schema = Schema::new().field("age", FieldDefinition::new(FieldType::Int).indexed());
    db.collections().create_collection("users", schema).unwrap();
    let before = gets.load(Ordering::Relaxed);
    for i in 0..100i64 {
        db.transaction(|tx| tx.insert("users", doc! { "age": i })).unwrap();
    }
    let reads = gets.load(Ordering::Relaxed) - before;
    assert!(reads <= 100, "{reads} cold-store reads of document keys for 100 inserts (at most one each)");
    assert_eq!(db.collections().lookup("users", "age", &aurora_core::Value::Int(42)).unwrap().len(), 1);
}

#[test]
fn inserting_a_taken_id_is_document_exists_at_commit_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = common::open(dir.path(), Durability::Balanced);
    let schema = Schema::new().field("age", FieldDefinition::new(FieldType::Int).indexed());
    db.collections().create_collection("users", schema).unwrap();
    let first = doc! { "age": 1 };
    db.transaction(|tx| tx.insert("users", first.clone())).unwrap();
    let revision = db.collections().documents().store().revision();

    // Through `transaction` (not retried: it is not a conflict).
    let err = db.transaction(|tx| tx.insert("users", first.clone().id(first.id.clone()))).unwrap_err();
    assert!(matches!(err, TxnError::Index(IndexError::DocumentExists { .. })), "{err}");
    // By hand: the insert is accepted, the commit refuses.
    let mut tx = db.begin().unwrap();
    let mut again = doc! { "age": 2 };
    again.id = first.id.clone();
    tx.insert("users", again).unwrap();
    let err = tx.commit().unwrap_err();
    assert!(matches!(err, TxnError::Index(IndexError::DocumentExists { .. })), "{err}");
    assert_eq!(db.collections().documents().store().revision(), revision, "nothing was committed");
    assert!(db.collections().lookup("users", "age", &aurora_core::Value::Int(2)).unwrap().is_empty());

    // A transaction that read the document first is refused at once.
    let mut tx = db.begin().unwrap();
    assert!(tx.get("users", &first.id).unwrap().is_some());
    let err = tx.insert("users", first.clone()).unwrap_err();
    assert!(matches!(err, TxnError::Index(IndexError::DocumentExists { .. })), "{err}");
    // And twice in one transaction.
    let mut tx = db.begin().unwrap();
    let fresh = doc! { "age": 3 };
    tx.insert("users", fresh.clone()).unwrap();
    let err = tx.insert("users", fresh).unwrap_err();
    assert!(matches!(err, TxnError::Index(IndexError::DocumentExists { .. })), "{err}");
}

/// Found by review: a blind insert rewritten in the same transaction must
/// stay an insert, never overwrite the document that holds the id.
#[test]
fn an_insert_of_a_taken_id_updated_in_the_same_transaction_still_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = common::open(dir.path(), Durability::Balanced);
    db.collections().create_collection("users", Schema::new()).unwrap();
    let first = doc! { "v": 1 };
    db.transaction(|tx| tx.insert("users", first.clone())).unwrap();
    let mut tx = db.begin().unwrap();
    tx.insert("users", doc! { "v": 2 }.id(first.id.clone())).unwrap();
    tx.update("users", &first.id, [("v".to_string(), aurora_core::Value::Int(3))].into()).unwrap();
    let err = tx.commit().unwrap_err();
    assert!(matches!(err, TxnError::Index(IndexError::DocumentExists { .. })), "{err}");
    let kept = db.collections().get("users", &first.id).unwrap().unwrap();
    assert_eq!(kept.get("v"), Some(&aurora_core::Value::Int(1)), "the existing document is untouched");
}

#[test]
fn a_deleted_then_reinserted_id_commits_as_an_update() {
    let dir = tempfile::tempdir().unwrap();
    let (db, recorder) = common::open(dir.path(), Durability::Balanced);
    db.collections().create_collection("users", Schema::new()).unwrap();
    let d = doc! { "v": 1 };
    db.transaction(|tx| tx.insert("users", d.clone())).unwrap();
    db.transaction(|tx| {
        tx.delete("users", &d.id)?;
        tx.insert("users", doc! { "v": 2 }.id(d.id.clone()))
    })
    .unwrap();
    let got = db.collections().get("users", &d.id).unwrap().unwrap();
    assert_eq!(got.get("v"), Some(&aurora_core::Value::Int(2)));
    let last = recorder.0.lock().last().cloned().unwrap();
    assert_eq!(last.changes.len(), 1);
    assert_eq!(last.changes[0].kind, aurora_txn::ChangeKind::Update, "the snapshot's version is the old one");
}

/// The committed document, the hot cache's copy and the change record's
/// are one allocation.
#[test]
fn the_inserted_document_is_shared_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let (db, recorder) = common::open(dir.path(), Durability::Balanced);
    db.collections().create_collection("users", Schema::new()).unwrap();
    let doc = Arc::new(doc! { "name": "a" });
    db.transaction(|tx| tx.insert_shared("users", Arc::clone(&doc))).unwrap();
    let cached = db.collections().get("users", &doc.id).unwrap().unwrap();
    assert!(Arc::ptr_eq(&cached, &doc), "the hot cache holds the caller's allocation");
    let published = recorder.0.lock()[0].changes[0].new.clone().unwrap();
    assert!(Arc::ptr_eq(&published, &doc), "so does the change record");
}

/// A shared document is checked like any other (id, nesting, size): an
/// oversized one is refused at `insert_shared` and nothing is written.
#[test]
fn insert_shared_checks_the_document_first() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = common::open(dir.path(), Durability::Balanced);
    db.collections().create_collection("users", Schema::new()).unwrap();
    let big = Arc::new(doc! { "blob": "x".repeat(17 << 20) });
    let mut tx = db.begin().unwrap();
    let err = tx.insert_shared("users", Arc::clone(&big)).unwrap_err();
    assert!(err.to_string().contains("document"), "{err}");
    assert!(tx.get("users", &big.id).unwrap().is_none(), "nothing buffered");
    assert_eq!(tx.commit().unwrap().writes, 0);
}

/// Issue 17: "inserts with generated ids skip the existence read". A new
/// id above every id of its collection (UUID v7 ids grow with the clock) is
/// known absent from the key order; before, the commit leader read each
/// one from the cold store (100 reads for 100 inserts).
#[test]
fn new_ids_are_inserted_without_reading_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (db, gets) = open_counting(dir.path());
    let schema = Schema::new().field("age", FieldDefinition::new(FieldType::Int).indexed());
    db.collections().create_collection("users", schema).unwrap();
    let store = db.collections().documents().store().clone();
    let (before, metrics) = (gets.load(Ordering::Relaxed), store.metrics());
    for i in 0..100i64 {
        db.transaction(|tx| tx.insert("users", doc! { "age": i })).unwrap();
    }
    db.insert_many("users", (0..100i64).map(|i| doc! { "age": i }).collect()).unwrap();
    let one = db.insert("users", doc! { "age": 7 }).unwrap();
    assert_eq!(gets.load(Ordering::Relaxed) - before, 0, "no document key was read");
    let by_order = store.metrics().absences_by_order - metrics.absences_by_order;
    assert_eq!(by_order, 201, "each new id's absence was decided by key order");
    assert!(db.collections().get("users", &one).unwrap().is_some());
    assert_eq!(db.collections().lookup("users", "age", &aurora_core::Value::Int(7)).unwrap().len(), 3);
}

/// The shortcut answers exactly as the read: an id at or below the
/// highest one is read, a taken one refused — also after a reopen, when the
/// highest id is learned from the cold store.
#[test]
fn ids_below_the_highest_are_read_and_taken_ones_refused_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let id = |s: &str| aurora_core::DocId::text(s).unwrap();
    let taken =
        |r: Result<aurora_core::DocId, TxnError>| matches!(r, Err(TxnError::Index(IndexError::DocumentExists { .. })));
    {
        let (db, _) = common::open(dir.path(), Durability::Balanced);
        db.collections().create_collection("t", Schema::new()).unwrap();
        db.insert("t", doc! { "v": 1 }.id(id("m"))).unwrap();
        db.insert("t", doc! { "v": 2 }.id(id("c"))).unwrap();
        assert!(taken(db.insert("t", doc! { "v": 3 }.id(id("c")))), "below the highest, taken");
        assert!(taken(db.insert("t", doc! { "v": 3 }.id(id("m")))), "the highest itself");
        db.collections().documents().store().checkpoint().unwrap();
        db.collections().documents().store().close().unwrap();
    }
    let (db, gets) = open_counting(dir.path());
    let store = db.collections().documents().store().clone();
    assert!(taken(db.insert("t", doc! { "v": 4 }.id(id("m")))), "learned from the cold store after reopen");
    assert!(taken(db.insert("t", doc! { "v": 4 }.id(id("c")))));
    let reads = gets.load(Ordering::Relaxed);
    db.insert("t", doc! { "v": 5 }.id(id("z"))).unwrap();
    assert_eq!(gets.load(Ordering::Relaxed), reads, "above the highest: no read");
    db.transaction(|tx| tx.delete("t", &id("z")).map(drop)).unwrap();
    db.insert("t", doc! { "v": 6 }.id(id("z"))).unwrap();
    assert_eq!(db.collections().get("t", &id("z")).unwrap().unwrap().get("v"), Some(&aurora_core::Value::Int(6)));
    assert!(store.metrics().condition_reads > 0);
    assert_eq!(db.collections().documents().scan("t").unwrap().count(), 3);
}

/// Issue 17: "bulk inserts and `insert_many` take a batched path" — one
/// commit, one change record with every insert in order, the same outcome
/// as a transaction of inserts, and nothing written on any refusal.
#[test]
fn insert_many_commits_once_and_refuses_as_a_transaction_would() {
    let dir = tempfile::tempdir().unwrap();
    let (db, recorder) = common::open(dir.path(), Durability::Balanced);
    let schema = Schema::new()
        .field("n", FieldDefinition::new(FieldType::Int))
        .field("email", FieldDefinition::new(FieldType::String).unique());
    db.collections().create_collection("users", schema).unwrap();
    let store = db.collections().documents().store().clone();
    let docs: Vec<_> = (0..3i64).map(|i| doc! { "n": i, "email": format!("u{i}@x") }).collect();
    let before = store.revision();
    let ids = db.insert_many("users", docs.clone()).unwrap();
    assert_eq!(ids, docs.iter().map(|d| d.id.clone()).collect::<Vec<_>>());
    assert_eq!(store.revision(), before + 1, "one commit");
    let published = recorder.0.lock().last().cloned().unwrap();
    assert_eq!(published.changes.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids);
    assert!(published.changes.iter().all(|c| c.kind == aurora_txn::ChangeKind::Insert && c.old.is_none()));

    let revision = store.revision();
    let refused = |r: Result<Vec<aurora_core::DocId>, TxnError>| r.unwrap_err();
    let fresh = || doc! { "n": 9, "email": format!("{}@y", aurora_core::DocId::new()) };
    let twice = fresh();
    let err = refused(db.insert_many("users", vec![fresh(), twice.clone(), twice]));
    assert!(matches!(err, TxnError::Index(IndexError::DocumentExists { .. })), "an id given twice: {err}");
    let err = refused(db.insert_many("users", vec![fresh(), docs[1].clone()]));
    assert!(
        matches!(&err, TxnError::Index(IndexError::DocumentExists { id, .. }) if *id == docs[1].id.to_string()),
        "a taken id: {err}"
    );
    let err = refused(db.insert_many("users", vec![fresh(), doc! { "n": "x", "email": "e@x" }]));
    assert!(matches!(err, TxnError::Index(IndexError::WrongType { .. })), "a schema violation: {err}");
    let err = refused(db.insert_many("users", vec![fresh(), doc! { "n": 1, "email": "u0@x" }]));
    assert!(matches!(err, TxnError::Index(IndexError::UniqueViolation { .. })), "a taken value: {err}");
    let err =
        refused(db.insert_many("users", vec![doc! { "n": 1, "email": "same" }, doc! { "n": 2, "email": "same" }]));
    assert!(matches!(err, TxnError::Index(IndexError::UniqueViolation { .. })), "a value claimed twice: {err}");
    let err = refused(db.insert_many("nope", vec![fresh()]));
    assert!(matches!(err, TxnError::Index(IndexError::UnknownCollection(_))), "{err}");
    let big = doc! { "blob": "x".repeat(17 << 20) };
    assert!(refused(db.insert_many("users", vec![fresh(), big])).to_string().contains("document"));
    assert_eq!(store.revision(), revision, "nothing was committed");
    assert_eq!(db.collections().documents().scan("users").unwrap().count(), 3);
    assert!(db.insert_many("users", Vec::new()).unwrap().is_empty());
}
