//! Hostile review of the batched insert path (`Database::insert_many`,
//! `Batch::require_new` and the high keys): duplicate ids in a batch and
//! against stored documents, ids below and above the highest key after
//! deletes and a reopen, unique and schema refusals, concurrent batches and
//! transactions on the same ids, and the published changes compared with
//! the reference, a transaction of inserts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{doc, DocId, FieldDefinition, FieldType};
use aurora_index::{IndexError, Schema};
use aurora_storage::Durability;
use aurora_txn::{Database, TxnError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn tid(s: &str) -> DocId {
    DocId::text(s).unwrap()
}

fn users(db: &Database) {
    db.collections()
        .create_collection(
            "users",
            Schema::new()
                .field("name", FieldDefinition::new(FieldType::String))
                .field("email", FieldDefinition::new(FieldType::String).unique().nullable()),
        )
        .unwrap();
}

fn exists(e: &TxnError) -> bool {
    matches!(e, TxnError::Index(IndexError::DocumentExists { .. }))
}

#[test]
fn a_repeated_id_in_one_batch_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (db, rec) = common::open(dir.path(), Durability::Balanced);
    users(&db);
    let docs = vec![
        doc! { "name": "a" }.id(tid("k1")),
        doc! { "name": "b" }.id(tid("k2")),
        doc! { "name": "c" }.id(tid("k1")),
    ];
    let err = db.insert_many("users", docs).unwrap_err();
    assert!(exists(&err), "{err:?}");
    assert!(db.collections().get("users", &tid("k1")).unwrap().is_none());
    assert!(db.collections().get("users", &tid("k2")).unwrap().is_none());
    assert!(rec.0.lock().is_empty(), "nothing published");
}

#[test]
fn ids_below_and_above_the_high_key_after_deletes_memtable_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (db, _) = common::open(dir.path(), Durability::Strict);
        users(&db);
        db.insert_many("users", vec![doc! { "name": "a" }.id(tid("k05")), doc! { "name": "b" }.id(tid("k10"))])
            .unwrap();
        // Memtable only: the same ids are taken.
        assert!(exists(&db.insert("users", doc! { "name": "x" }.id(tid("k10"))).unwrap_err()));
        assert!(exists(&db.insert("users", doc! { "name": "x" }.id(tid("k05"))).unwrap_err()));
        db.transaction(|tx| tx.delete("users", &tid("k10"))).unwrap();
        db.insert("users", doc! { "name": "again" }.id(tid("k10"))).expect("a deleted id is free again");
        db.insert("users", doc! { "name": "mid" }.id(tid("k07"))).expect("below the high key, absent");
        assert!(exists(&db.insert("users", doc! { "name": "x" }.id(tid("k07"))).unwrap_err()));
        db.insert("users", doc! { "name": "top" }.id(tid("k99"))).unwrap();
        // Applied to the cold store, then checked again.
        db.collections().documents().store().checkpoint().unwrap();
        assert!(exists(&db.insert("users", doc! { "name": "x" }.id(tid("k99"))).unwrap_err()));
        // UUID ids (v7, growing): its own scope.
        let u = DocId::new();
        db.insert("users", doc! { "name": "u" }.id(u.clone())).unwrap();
        assert!(exists(&db.insert("users", doc! { "name": "x" }.id(u)).unwrap_err()));
        db.collections().documents().store().close().unwrap();
    }
    let (db, _) = common::open(dir.path(), Durability::Strict);
    for id in ["k05", "k07", "k10", "k99"] {
        let err = db.insert_many("users", vec![doc! { "name": "x" }.id(tid(id))]).unwrap_err();
        assert!(exists(&err), "{id} after reopen: {err:?}");
    }
    assert_eq!(db.collections().get("users", &tid("k10")).unwrap().unwrap().get("name").cloned(), Some("again".into()));
    db.insert("users", doc! { "name": "new" }.id(tid("k98"))).unwrap();
    db.insert("users", doc! { "name": "new" }.id(tid("kz"))).unwrap();
}

#[test]
fn unique_schema_and_unknown_collection_refusals_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, rec) = common::open(dir.path(), Durability::Balanced);
    users(&db);
    db.insert("users", doc! { "name": "a", "email": "a@x" }.id(tid("a"))).unwrap();
    let published = rec.0.lock().len();
    // A unique value twice in the batch.
    let err = db
        .insert_many(
            "users",
            vec![doc! { "name": "b", "email": "b@x" }.id(tid("b")), doc! { "name": "c", "email": "b@x" }.id(tid("c"))],
        )
        .unwrap_err();
    assert!(matches!(err, TxnError::Index(IndexError::UniqueViolation { .. })), "{err:?}");
    // Against a stored document.
    let err = db
        .insert_many(
            "users",
            vec![doc! { "name": "d", "email": "d@x" }.id(tid("d")), doc! { "name": "e", "email": "a@x" }.id(tid("e"))],
        )
        .unwrap_err();
    assert!(matches!(err, TxnError::Index(IndexError::UniqueViolation { .. })), "{err:?}");
    // Schema: a required field missing in the last document.
    let err = db
        .insert_many("users", vec![doc! { "name": "f" }.id(tid("f")), doc! { "email": "g@x" }.id(tid("g"))])
        .unwrap_err();
    assert!(matches!(err, TxnError::Index(_)), "{err:?}");
    let err = db.insert_many("nobody", vec![doc! { "name": "h" }]).unwrap_err();
    assert!(matches!(err, TxnError::Index(IndexError::UnknownCollection(_))), "{err:?}");
    for id in ["b", "c", "d", "e", "f", "g"] {
        assert!(db.collections().get("users", &tid(id)).unwrap().is_none(), "{id} written");
    }
    assert_eq!(rec.0.lock().len(), published, "nothing published");
    // The unique values of refused batches are still free.
    db.insert_many("users", vec![doc! { "name": "b", "email": "b@x" }.id(tid("b"))]).unwrap();
    db.insert("users", doc! { "name": "d", "email": "d@x" }.id(tid("d"))).unwrap();
}

/// Env `AURORA_BULK_HOSTILE_ROUNDS` (default 20): rounds of racing batches
/// and transactions over the same ids.
#[test]
fn concurrent_batches_and_transactions_on_the_same_ids_insert_each_id_once() {
    let rounds: usize = std::env::var("AURORA_BULK_HOSTILE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let (db, rec) = common::open(dir.path(), Durability::Balanced);
    let db = Arc::new(db);
    db.collections().create_collection("c", Schema::new()).unwrap();
    for round in 0..rounds {
        // Half the ids above everything held, half below (a high key first).
        let ids: Vec<DocId> = (0..8).map(|i| tid(&format!("r{round:03}-{i}"))).collect();
        let wins = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for w in 0..4 {
                let (db, ids, wins) = (Arc::clone(&db), ids.clone(), Arc::clone(&wins));
                s.spawn(move || {
                    let docs: Vec<_> = ids.iter().map(|id| doc! { "w": w as i64 }.id(id.clone())).collect();
                    let ok = if w % 2 == 0 {
                        db.insert_many("c", docs).map(|_| ())
                    } else {
                        db.transaction(|tx| {
                            for d in &docs {
                                tx.insert("c", d.clone())?;
                            }
                            Ok(())
                        })
                    };
                    match ok {
                        Ok(()) => {
                            wins.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => assert!(exists(&e) || matches!(e, TxnError::Conflict { .. }), "{e:?}"),
                    }
                });
            }
        });
        assert_eq!(wins.load(Ordering::SeqCst), 1, "round {round}: exactly one writer inserts the ids");
        let winner: Vec<_> =
            ids.iter().map(|id| db.collections().get("c", id).unwrap().unwrap().get("w").cloned()).collect();
        assert!(winner.windows(2).all(|w| w[0] == w[1]), "round {round}: one writer's documents {winner:?}");
    }
    let inserts: usize = rec.0.lock().iter().map(|c| c.changes.len()).sum();
    assert_eq!(inserts, rounds * 8, "one published insert per id");
}

/// The reference: a transaction of the same inserts publishes its changes
/// in (collection, id) order, as `Committed::changes` documents.
#[test]
fn insert_many_publishes_changes_in_the_order_a_transaction_does() {
    let dir = tempfile::tempdir().unwrap();
    let (db, rec) = common::open(dir.path(), Durability::Balanced);
    db.collections().create_collection("c", Schema::new()).unwrap();
    db.collections().create_collection("t", Schema::new()).unwrap();
    let ids = ["m", "b", "z", "a"];
    db.transaction(|tx| {
        for id in ids {
            tx.insert("t", doc! { "v": id }.id(tid(id)))?;
        }
        Ok(())
    })
    .unwrap();
    db.insert_many("c", ids.iter().map(|id| doc! { "v": *id }.id(tid(id))).collect()).unwrap();
    let rec = rec.0.lock();
    let order = |i: usize| rec[i].changes.iter().map(|c| c.id.to_string()).collect::<Vec<_>>();
    assert_eq!(order(0), ["a", "b", "m", "z"], "the transaction: id order");
    assert_eq!(order(1), order(0), "the batch: the same order as the transaction");
}

/// A crash image (the directory copied while open: the ids only in the
/// WAL, not in the cold store) reopens with every acknowledged id taken.
#[test]
fn ids_only_in_the_wal_after_a_crash_are_still_taken() {
    let dir = tempfile::tempdir().unwrap();
    let image = tempfile::tempdir().unwrap();
    let (db, _) = common::open(dir.path(), Durability::Strict);
    users(&db);
    let uuids: Vec<DocId> = (0..4).map(|_| DocId::new()).collect();
    db.insert_many("users", uuids.iter().map(|id| doc! { "name": "u" }.id(id.clone())).collect()).unwrap();
    db.insert_many("users", vec![doc! { "name": "t" }.id(tid("t5")), doc! { "name": "t" }.id(tid("t9"))]).unwrap();
    aurora_testkit::image::copy_dir(dir.path(), &image.path().join("db"));
    drop(db);
    let (db, _) = common::open(&image.path().join("db"), Durability::Strict);
    for id in uuids.iter().chain(&[tid("t5"), tid("t9")]) {
        let err = db.insert("users", doc! { "name": "again" }.id(id.clone())).unwrap_err();
        assert!(exists(&err), "{id}: {err:?}");
        let err =
            db.transaction(|tx| tx.insert("users", doc! { "name": "again" }.id(id.clone())).map(|_| ())).unwrap_err();
        assert!(exists(&err), "{id} by a transaction: {err:?}");
    }
    db.insert("users", doc! { "name": "new" }.id(DocId::new())).unwrap();
    db.insert("users", doc! { "name": "new" }.id(tid("t7"))).unwrap();
}

/// Batches racing drops and re-creations of their collection: each batch is
/// refused with `UnknownCollection` or lands whole in a live collection,
/// and the index agrees with the documents at the end.
/// Env `AURORA_BULK_HOSTILE_ROUNDS` sizes it (default 20).
#[test]
fn batches_racing_a_dropped_and_recreated_collection_stay_whole_and_indexed() {
    let rounds: usize = std::env::var("AURORA_BULK_HOSTILE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = common::open(dir.path(), Durability::Balanced);
    let schema = || Schema::new().field("g", FieldDefinition::new(FieldType::Int).indexed());
    db.collections().create_collection("c", schema()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let last = std::sync::atomic::AtomicI64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..rounds {
                db.collections().drop_collection("c").unwrap();
                db.collections().create_collection("c", schema()).unwrap();
            }
            stop.store(true, Ordering::SeqCst);
        });
        s.spawn(|| {
            let mut g = 0i64;
            while !stop.load(Ordering::SeqCst) {
                g += 1;
                last.store(g, Ordering::SeqCst);
                let docs: Vec<_> = (0..5).map(|_| doc! { "g": g }).collect();
                match db.insert_many("c", docs) {
                    Ok(ids) => assert_eq!(ids.len(), 5),
                    Err(e) => assert!(
                        matches!(e, TxnError::Index(IndexError::UnknownCollection(_)) | TxnError::Conflict { .. }),
                        "{e:?}"
                    ),
                }
            }
        });
    });
    // Whatever survived: every group of five whole, index and documents agree.
    for g in 1..=last.load(Ordering::SeqCst) {
        let ids = db.collections().lookup("c", "g", &aurora_core::Value::Int(g)).unwrap();
        if ids.is_empty() {
            continue;
        }
        assert_eq!(ids.len(), 5, "group {g} partly present: {ids:?}");
        for id in &ids {
            let d = db.collections().get("c", id).unwrap().expect("an index entry without its document");
            assert_eq!(d.get("g"), Some(&aurora_core::Value::Int(g)));
        }
    }
}

/// A batch inserting an id while a transaction deletes the document holding
/// it: the outcome is one of the two serial orders (in one commit group the
/// leader's overlay decides). Env `AURORA_BULK_HOSTILE_ROUNDS` sizes it.
#[test]
fn a_batch_racing_a_delete_of_its_id_ends_in_a_serial_order() {
    let rounds: usize = std::env::var("AURORA_BULK_HOSTILE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = common::open(dir.path(), Durability::Balanced);
    db.collections().create_collection("c", Schema::new()).unwrap();
    for round in 0..rounds {
        let id = tid(&format!("x{round:04}"));
        db.insert("c", doc! { "by": "seed" }.id(id.clone())).unwrap();
        let (inserted, deleted) = std::thread::scope(|s| {
            let b = s.spawn(|| db.insert_many("c", vec![doc! { "by": "batch" }.id(id.clone())]));
            let t = s.spawn(|| db.transaction(|tx| tx.delete("c", &id)));
            (b.join().unwrap(), t.join().unwrap())
        });
        assert!(deleted.unwrap(), "round {round}: the seeded document is deleted once");
        let now = db.collections().get("c", &id).unwrap().and_then(|d| d.get("by").cloned());
        match inserted {
            Ok(_) => assert_eq!(now, Some("batch".into()), "round {round}: delete, then the batch"),
            Err(e) => {
                assert!(exists(&e), "{e:?}");
                assert_eq!(now, None, "round {round}: the batch refused, then the delete");
            }
        }
    }
}
