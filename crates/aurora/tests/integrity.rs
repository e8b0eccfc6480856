//! Integrity at the facade: an oversized document is refused at the first
//! step of every write path (before any copy, encoding or feed entry),
//! with nothing written; a damaged WAL refuses to open through `Aurora`,
//! and the salvage option opens and reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::storage::StorageError;
use aurora::{doc, Aurora, AuroraConfig, Document, Error, Value, WalRecovery};

fn too_large(result: aurora::Result<impl std::fmt::Debug>, path: &str) {
    match result {
        Err(Error::Storage(StorageError::TooLarge { what: "document", size, limit })) => {
            assert!(size > limit, "{path}");
        }
        other => panic!("{path}: expected TooLarge {{ what: \"document\" }}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_documents_are_refused_first_on_every_write_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    db.new_collection("files", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    let small = db.insert_into("files", doc! { "name": "a" }).await.unwrap();
    let before = db.database().collections().documents().store().revision();
    let huge = || doc! { "body": "x".repeat(40 << 20) };
    too_large(db.insert_into("files", huge()).await, "insert_into");
    too_large(db.insert_many("files", vec![doc! { "ok": 1 }, huge()]).await, "insert_many");
    too_large(db.upsert("files", huge().id(small.clone())).await, "upsert");
    too_large(db.replace_document("files", huge().id(small.clone())).await, "replace_document");
    too_large(db.update_document("files", &small, huge()).await, "update_document");
    let mut tx = db.begin().unwrap();
    too_large(tx.insert("files", huge()).map_err(Error::from), "Transaction::insert");
    tx.rollback();
    too_large(db.database().collections().put("files", huge()).map_err(Error::from), "Collections::put");
    assert_eq!(db.database().collections().documents().store().revision(), before, "nothing was written");
    let doc: Document = (*db.get_document("files", &small).await.unwrap().unwrap()).clone();
    assert_eq!(doc.get("name"), Some(&Value::from("a")));
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_refuses_to_open_and_the_salvage_reports() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let db = Aurora::open(&live).await.unwrap();
    db.new_collection("notes", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    for i in 0..50 {
        db.insert_into("notes", doc! { "i": i }).await.unwrap();
    }
    // A killed process: copy the folder while the database is open.
    let crashed = root.path().join("crashed");
    aurora_testkit::image::copy_dir(&live, &crashed);
    db.close().await.unwrap();
    let mut segs: Vec<_> = std::fs::read_dir(crashed.join("wal")).unwrap().map(|e| e.unwrap().path()).collect();
    segs.sort();
    let seg = segs.pop().unwrap();
    let mut data = std::fs::read(&seg).unwrap();
    assert!(data.len() > 100);
    data[0] ^= 0x01; // the length of the first record: intact records follow
    std::fs::write(&seg, &data).unwrap();
    let err = Aurora::open(&crashed).await.unwrap_err();
    assert!(matches!(err, Error::Storage(StorageError::WalCorrupt { .. })), "{err}");
    let cfg = AuroraConfig { wal_recovery: WalRecovery::KeepValidPrefix, ..AuroraConfig::new(&crashed) };
    let db = Aurora::with_config(cfg).await.unwrap();
    let salvaged = db.recovery_report().salvaged.clone().expect("a salvage report");
    assert_eq!(salvaged.offset, 0);
    db.close().await.unwrap();
}
