//! What a transaction promises, one behaviour at a time: own writes are
//! visible, rollback and drop write nothing, conflicts are first-committer-
//! wins, violations abort the whole commit, and nothing that did not commit
//! reaches the change sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{doc, DocId, Value};
use aurora_index::IndexError;
use aurora_storage::Durability;
use aurora_txn::{ChangeKind, Isolation, TxnError};
use common::{account, open, setup_bank};

fn setup() -> (tempfile::TempDir, aurora_txn::Database, std::sync::Arc<common::Recorder>) {
    let dir = tempfile::tempdir().unwrap();
    let (db, rec) = open(dir.path(), Durability::Balanced);
    setup_bank(&db);
    rec.0.lock().clear();
    (dir, db, rec)
}

fn revision(db: &aurora_txn::Database) -> u64 {
    db.collections().documents().store().revision()
}

#[test]
fn reads_see_own_writes_and_a_fixed_snapshot() {
    let (_d, db, _) = setup();
    let mut tx = db.begin().unwrap();
    tx.update("accounts", &account(0), [("balance".into(), Value::Int(1))].into()).unwrap();
    assert_eq!(common::balance(&tx.get("accounts", &account(0)).unwrap().unwrap()), 1);
    // A concurrent commit is invisible to the snapshot.
    common::transfer(&db, 1, 2, 50).unwrap();
    assert_eq!(common::balance(&tx.get("accounts", &account(1)).unwrap().unwrap()), 100);
    assert_eq!(tx.scan("accounts").unwrap().iter().map(common::balance).sum::<i64>(), 901);
}

#[test]
fn rollback_and_drop_write_nothing_and_publish_nothing() {
    let (_d, db, rec) = setup();
    let before = revision(&db);
    let mut tx = db.begin().unwrap();
    tx.delete("accounts", &account(0)).unwrap();
    tx.rollback();
    {
        let mut tx = db.begin().unwrap();
        tx.insert("accounts", doc! { "balance": 5, "owner": "new" }).unwrap();
    }
    assert_eq!(revision(&db), before);
    assert!(rec.0.lock().is_empty());
    assert_eq!(common::total(&db), 1000);
}

#[test]
fn first_committer_wins_and_the_loser_writes_nothing() {
    let (_d, db, rec) = setup();
    let mut a = db.begin().unwrap();
    let mut b = db.begin().unwrap();
    a.update("accounts", &account(3), [("balance".into(), Value::Int(1))].into()).unwrap();
    b.update("accounts", &account(3), [("balance".into(), Value::Int(2))].into()).unwrap();
    b.upsert("accounts", doc! { "balance": 0, "owner": "b-only" }).unwrap();
    a.commit().unwrap();
    let before = revision(&db);
    let err = b.commit().unwrap_err();
    assert!(matches!(err, TxnError::Conflict { ref collection, .. } if collection == "accounts"), "{err}");
    assert!(err.is_retryable());
    assert_eq!(revision(&db), before, "the loser wrote nothing");
    assert_eq!(rec.0.lock().len(), 1, "only the winner was published");
    assert_eq!(db.collections().lookup("accounts", "owner", &Value::from("b-only")).unwrap().len(), 0);
}

#[test]
fn serializable_prevents_write_skew_snapshot_allows_it() {
    for (isolation, skew_allowed) in [(Isolation::Serializable, false), (Isolation::Snapshot, true)] {
        let (_d, db, _) = setup();
        // Invariant the app wants: acct0 + acct1 >= 100. Each tx checks it,
        // then withdraws 100 from a different account.
        let mut a = db.begin_with(isolation).unwrap();
        let mut b = db.begin_with(isolation).unwrap();
        for (tx, target) in [(&mut a, 0), (&mut b, 1)] {
            let sum = common::balance(&tx.get("accounts", &account(0)).unwrap().unwrap())
                + common::balance(&tx.get("accounts", &account(1)).unwrap().unwrap());
            assert!(sum >= 200);
            tx.update("accounts", &account(target), [("balance".into(), Value::Int(0))].into()).unwrap();
        }
        a.commit().unwrap();
        let second = b.commit();
        assert_eq!(second.is_ok(), skew_allowed, "{isolation:?}: {second:?}");
    }
}

#[test]
fn violations_abort_the_whole_transaction() {
    let (_d, db, rec) = setup();
    let before = revision(&db);
    // Unique violation against committed data: nothing of the transaction lands.
    let mut tx = db.begin().unwrap();
    tx.update("accounts", &account(0), [("balance".into(), Value::Int(7))].into()).unwrap();
    tx.insert("accounts", doc! { "balance": 1, "owner": "owner3" }).unwrap();
    let err = tx.commit().unwrap_err();
    assert!(matches!(err, TxnError::Index(IndexError::UniqueViolation { ref field, .. }) if field == "owner"), "{err}");
    // Two documents of one transaction claiming one value.
    let mut tx = db.begin().unwrap();
    tx.insert("accounts", doc! { "balance": 1, "owner": "twin" }).unwrap();
    tx.insert("accounts", doc! { "balance": 2, "owner": "twin" }).unwrap();
    assert!(matches!(tx.commit(), Err(TxnError::Index(IndexError::UniqueViolation { .. }))));
    // Schema violations are refused at once and not buffered.
    let mut tx = db.begin().unwrap();
    let err = tx.update("accounts", &account(0), [("balance".into(), Value::Null)].into()).unwrap_err();
    assert!(matches!(err, TxnError::Index(IndexError::MissingField { .. })), "{err}");
    let err = tx.insert("accounts", doc! { "balance": "lots", "owner": "x" }).unwrap_err();
    assert!(matches!(err, TxnError::Index(IndexError::WrongType { .. })), "{err}");
    assert_eq!(tx.commit().unwrap().writes, 0);
    assert_eq!(revision(&db), before);
    assert!(rec.0.lock().is_empty());
    assert_eq!(common::balance(&db.begin().unwrap().get("accounts", &account(0)).unwrap().unwrap()), 100);
}

#[test]
fn a_unique_value_can_move_between_documents_in_one_transaction() {
    let (_d, db, rec) = setup();
    let mut tx = db.begin().unwrap();
    tx.update("accounts", &account(0), [("owner".into(), Value::from("released"))].into()).unwrap();
    tx.update("accounts", &account(1), [("owner".into(), Value::from("owner0"))].into()).unwrap();
    tx.commit().unwrap();
    assert_eq!(db.collections().lookup("accounts", "owner", &Value::from("owner0")).unwrap(), vec![account(1)]);
    let log = rec.0.lock();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].changes.len(), 2);
    assert!(log[0].changes.iter().all(|c| c.kind == ChangeKind::Update && c.old.is_some() && c.new.is_some()));
}

#[test]
fn transaction_closure_retries_conflicts() {
    let (_d, db, _) = setup();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    db.transaction(|tx| {
                        let d = tx.get("accounts", &account(9))?.unwrap();
                        tx.update(
                            "accounts",
                            &account(9),
                            [("balance".into(), Value::Int(common::balance(&d) + 1))].into(),
                        )?;
                        Ok(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let d = db.begin().unwrap().get("accounts", &account(9)).unwrap().unwrap();
    assert_eq!(common::balance(&d), 200, "no lost update among 100 increments");
    assert!(matches!(
        db.begin().unwrap().replace("accounts", doc! { "balance": 1, "owner": "z" }.id(DocId::text("ghost").unwrap())),
        Err(TxnError::NotFound { .. })
    ));
}

#[test]
fn snapshot_reads_served_from_the_hot_cache_are_exact() {
    let (_d, db, _) = setup();
    let k = account(3);
    let bal = |tx: &mut aurora_txn::Transaction| tx.get("accounts", &k).unwrap().map(|d| common::balance(&d));
    let _ = db.collections().documents().get("accounts", &k).unwrap(); // hot
    let mut old = db.begin().unwrap();
    db.transaction(|tx| tx.update("accounts", &k, [("balance".into(), Value::Int(7))].into()).map(|_| ())).unwrap();
    // The cache now holds a version newer than `old`'s snapshot: history answers.
    assert_eq!(bal(&mut old), Some(100));
    // A new snapshot gets the cached version with its exact revision, so
    // its conditional write commits (a wrong revision would conflict).
    let mut fresh = db.begin().unwrap();
    assert_eq!(bal(&mut fresh), Some(7));
    fresh.update("accounts", &k, [("balance".into(), Value::Int(8))].into()).unwrap();
    fresh.commit().unwrap();
    // Deleted after a snapshot: still there for it; gone for a new one.
    let mut before_delete = db.begin().unwrap();
    db.transaction(|tx| tx.delete("accounts", &k).map(|_| ())).unwrap();
    assert_eq!(bal(&mut before_delete), Some(8));
    let mut after_delete = db.begin().unwrap();
    assert_eq!(bal(&mut after_delete), None);
    // Inserted after a snapshot (and cached by its commit): absent for it.
    let late = DocId::text("late").unwrap();
    let mut snap = db.begin().unwrap();
    db.transaction(|tx| tx.upsert("accounts", doc! { "owner": "late", "balance": 1 }.id(late.clone()))).unwrap();
    assert!(snap.get("accounts", &late).unwrap().is_none());
    assert_eq!(old.get("accounts", &k).unwrap().map(|d| common::balance(&d)), Some(100), "still stable");
}
