//! The change feed's stored form (issue 17): entries are headers, documents
//! are not copied (an update's or delete's old version is archived, a new
//! version is read from the store), full records written by older versions
//! are still read and trimmed, damage met by a feed read is `Corrupt`, and
//! a reader sees each entry exactly as committed while writers go on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{doc, DocId, Document, FieldDefinition, FieldType, Timestamp, Value};
use aurora_index::{Collections, IndexConfig, Schema};
use aurora_storage::{
    document_key, format, Batch, DocumentStore, DocumentStoreConfig, DocumentWrites, StorageError, StoreConfig,
};
use aurora_txn::{ChangeKind, Committed, Database, Isolation, NoSink, TxnError};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

fn open(dir: &Path, feed: bool) -> Database {
    let docs = DocumentStore::open(dir, StoreConfig::default(), DocumentStoreConfig::default()).unwrap();
    let collections = Collections::open(docs, IndexConfig::default()).unwrap();
    Database::with_options(collections, Arc::new(NoSink), Isolation::default(), feed)
}

fn close(db: Database) {
    db.collections().documents().store().close().unwrap();
}

fn with_collection(db: &Database) {
    if db.collections().list_collections().is_empty() {
        let schema = Schema::new().field("n", FieldDefinition::new(FieldType::Int));
        db.collections().create_collection("c", schema).unwrap();
    }
}

fn id(name: &str) -> DocId {
    DocId::text(name).unwrap()
}

fn set_n(n: i64) -> aurora_core::Fields {
    [("n".to_string(), Value::Int(n))].into_iter().collect()
}

fn n_of(doc: &Option<Arc<Document>>) -> Option<i64> {
    doc.as_ref().and_then(|d| d.get("n")).and_then(Value::as_i64)
}

/// Bytes stored under a key prefix.
fn stored_bytes(db: &Database, prefix: &[u8]) -> (usize, usize) {
    let items: Vec<_> = db.collections().documents().store().scan_prefix(prefix).unwrap().map(Result::unwrap).collect();
    (items.len(), items.iter().map(|(k, v)| k.len() + v.len()).sum())
}

/// The full record the feed wrote before issue 17, field for field.
#[derive(Serialize)]
struct OldRecord {
    transaction_id: u64,
    at: Timestamp,
    changes: Vec<OldChange>,
}

#[derive(Serialize)]
struct OldChange {
    collection: String,
    id: DocId,
    kind: ChangeKind,
    old: Option<Document>,
    new: Option<Document>,
}

/// Commits a change the way the feed did before issue 17: the document
/// write and a full record in 4 KiB parts under `"f" ++ revision ++ part`.
fn commit_old_style(db: &Database, kind: ChangeKind, old: Option<Document>, new: Option<Document>, name: &str) {
    let mut writes = DocumentWrites::new();
    match &new {
        Some(doc) => writes.put("c", doc).unwrap(),
        None => writes.delete("c", &id(name)).unwrap(),
    };
    let record = OldRecord {
        transaction_id: 7,
        at: Timestamp::now(),
        changes: vec![OldChange { collection: "c".into(), id: id(name), kind, old, new }],
    };
    let entry = format::encode(&record).unwrap();
    assert_eq!(entry[0], 1, "the old format byte");
    for (part, chunk) in entry.chunks(4096).enumerate() {
        writes.batch_mut().put_at_revision_part(b"f".to_vec(), part as u32, chunk.to_vec());
    }
    db.collections().documents().commit(writes).unwrap().into_result().unwrap();
}

/// The header the feed wrote first (format byte 2), field for field.
#[derive(Serialize)]
struct FirstHeader {
    transaction_id: u64,
    at: Timestamp,
    bytes: u64,
    changes: Vec<FirstHeaderChange>,
}

#[derive(Serialize)]
struct FirstHeaderChange {
    collection: String,
    id: DocId,
    kind: ChangeKind,
    new_crc: u32,
}

/// Commits a change the way the feed's first headers did: the document
/// write, the replaced version archived as its stored bytes alone, and a
/// header with byte 2 under `"f" ++ revision ++ part`.
fn commit_first_header_style(db: &Database, kind: ChangeKind, old: Option<&Document>, new: Option<&Document>) {
    let name = new.or(old).map(|d| d.id.clone()).unwrap();
    let mut writes = DocumentWrites::new();
    match new {
        Some(doc) => writes.put("c", doc).unwrap(),
        None => writes.delete("c", &name).unwrap(),
    };
    if let Some(old) = old {
        let mut prefix = b"v".to_vec();
        prefix.extend_from_slice(&document_key("c", &name));
        writes.batch_mut().put_at_revision(prefix, format::encode(old).unwrap());
    }
    let new_crc = new.map_or(0, |d| crc32fast::hash(&format::encode(d).unwrap()));
    let header = FirstHeader {
        transaction_id: 8,
        at: Timestamp::now(),
        bytes: 0,
        changes: vec![FirstHeaderChange { collection: "c".into(), id: name, kind, new_crc }],
    };
    let mut entry = format::encode(&header).unwrap();
    entry[0] = 2;
    writes.batch_mut().put_at_revision_part(b"f".to_vec(), 0, entry);
    db.collections().documents().commit(writes).unwrap().into_result().unwrap();
}

#[test]
fn the_first_headers_and_their_archives_are_read_and_trimmed_beside_compact_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    with_collection(&db);
    let a1 = doc! { "n": 1 }.id(id("a"));
    let a2 = doc! { "n": 2 }.id(id("a"));
    commit_first_header_style(&db, ChangeKind::Insert, None, Some(&a1));
    commit_first_header_style(&db, ChangeKind::Update, Some(&a1), Some(&a2));
    close(db);

    let db = open(dir.path(), true);
    db.transaction(|tx| tx.update("c", &id("a"), set_n(3)).map(drop)).unwrap();
    db.transaction(|tx| tx.delete("c", &id("a")).map(drop)).unwrap();
    let seen: Vec<_> = db
        .changes_since(0)
        .unwrap()
        .iter()
        .map(|c| (c.changes[0].kind, n_of(&c.changes[0].old), n_of(&c.changes[0].new)))
        .collect();
    let want = vec![
        (ChangeKind::Insert, None, Some(1)),
        (ChangeKind::Update, Some(1), Some(2)),
        (ChangeKind::Update, Some(2), Some(3)),
        (ChangeKind::Delete, Some(3), None),
    ];
    assert_eq!(seen, want);
    assert_eq!(db.verify_feed(|_| {}).unwrap().problems, Vec::<String>::new());
    assert_eq!(db.trim_feed(0, None).unwrap(), 4);
    assert_eq!((stored_bytes(&db, b"v").0, stored_bytes(&db, b"f").0), (0, 0), "every form's archives trimmed");
}

#[test]
fn a_bulk_insert_costs_the_feed_under_24_bytes_per_document() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    with_collection(&db);
    db.transaction(|tx| {
        for i in 0..1000 {
            tx.insert("c", doc! { "n": i })?;
        }
        Ok(())
    })
    .unwrap();
    // Keys and values of the entry's parts: per change a UUID id (18
    // bytes), the kind and a 4-byte CRC; the collection once.
    let (_, feed) = stored_bytes(&db, b"f");
    assert!(feed < 24 * 1000, "{feed} bytes for 1000 inserts");
    let all = db.changes_since(0).unwrap();
    assert_eq!(all[0].changes.len(), 1000);
    assert!(all[0].changes.iter().all(|c| c.kind == ChangeKind::Insert && c.new.is_some()));
}

#[test]
fn an_old_store_s_full_records_are_read_and_trimmed_beside_new_headers() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    with_collection(&db);
    let a1 = doc! { "n": 1 }.id(id("a"));
    let a2 = doc! { "n": 2 }.id(id("a"));
    let b1 = doc! { "n": 10, "big": "x".repeat(9000) }.id(id("b"));
    commit_old_style(&db, ChangeKind::Insert, None, Some(a1.clone()), "a");
    commit_old_style(&db, ChangeKind::Insert, None, Some(b1.clone()), "b");
    commit_old_style(&db, ChangeKind::Update, Some(a1), Some(a2), "a");
    commit_old_style(&db, ChangeKind::Delete, Some(b1), None, "b");
    close(db);

    // Opened by this version: the old entries stay as they are, new
    // commits write headers after them.
    let db = open(dir.path(), true);
    db.transaction(|tx| tx.update("c", &id("a"), set_n(3)).map(drop)).unwrap();
    db.transaction(|tx| tx.insert("c", doc! { "n": 20 }.id(id("b"))).map(drop)).unwrap();
    db.transaction(|tx| tx.delete("c", &id("a")).map(drop)).unwrap();
    let all = db.changes_since(0).unwrap();
    let seen: Vec<(ChangeKind, String, Option<i64>, Option<i64>)> = all
        .iter()
        .map(|c| {
            let ch = &c.changes[0];
            (ch.kind, ch.id.to_string(), n_of(&ch.old), n_of(&ch.new))
        })
        .collect();
    let want = vec![
        (ChangeKind::Insert, id("a").to_string(), None, Some(1)),
        (ChangeKind::Insert, id("b").to_string(), None, Some(10)),
        (ChangeKind::Update, id("a").to_string(), Some(1), Some(2)),
        (ChangeKind::Delete, id("b").to_string(), Some(10), None),
        (ChangeKind::Update, id("a").to_string(), Some(2), Some(3)),
        (ChangeKind::Insert, id("b").to_string(), None, Some(20)),
        (ChangeKind::Delete, id("a").to_string(), Some(3), None),
    ];
    assert_eq!(seen, want);
    assert_eq!(all[1].changes[0].new.as_ref().unwrap().get("big").and_then(Value::as_str).map(str::len), Some(9000));
    assert_eq!(db.verify_feed(|_| {}).unwrap().problems, Vec::<String>::new());

    // Trimming goes through both forms, with the archives the new ones own.
    assert_eq!(stored_bytes(&db, b"v").0, 2, "the new update and delete archived what they replaced");
    assert_eq!(db.trim_feed(2, None).unwrap(), 5);
    assert_eq!(stored_bytes(&db, b"v").0, 1, "the trimmed update's archive went with it");
    let kept = db.changes_since(db.feed_floor().unwrap()).unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(n_of(&kept[1].changes[0].old), Some(3));
    assert_eq!(db.trim_feed(0, None).unwrap(), 2);
    assert_eq!(stored_bytes(&db, b"v").0, 0);
    assert_eq!(stored_bytes(&db, b"f").0, 0);
    assert_eq!(db.verify_feed(|_| {}).unwrap().problems, Vec::<String>::new());
}

#[test]
fn inserts_cost_the_feed_no_copy_of_their_documents() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    with_collection(&db);
    let text = "y".repeat(2000);
    for round in 0..5 {
        db.transaction(|tx| {
            for i in 0..100 {
                tx.insert("c", doc! { "n": round * 100 + i, "text": text.clone() })?;
            }
            Ok(())
        })
        .unwrap();
    }
    let (_, docs) = stored_bytes(&db, b"d");
    let (_, feed) = stored_bytes(&db, b"f");
    assert!(docs > 1_000_000, "{docs}");
    assert!(feed * 20 < docs, "the feed holds {feed} bytes for {docs} bytes of documents");
    assert_eq!(stored_bytes(&db, b"v").0, 0, "inserts archive nothing");
    let all = db.changes_since(0).unwrap();
    assert_eq!(all.iter().map(|c| c.changes.len()).sum::<usize>(), 500);
    assert!(all.iter().flat_map(|c| &c.changes).all(|c| c.new.as_ref().unwrap().get("text").is_some()));
}

/// A version of `doc` changed behind the feed's back (as damage would).
fn overwrite(db: &Database, key: Vec<u8>, value: Vec<u8>) {
    let mut batch = Batch::new();
    batch.put(key, value);
    db.collections().documents().store().commit(batch).unwrap().into_result().unwrap();
}

fn is_corrupt(err: &TxnError) -> bool {
    matches!(err, TxnError::Storage(StorageError::Corrupt { .. }))
}

fn is_not_kept(err: &TxnError, name: &str) -> bool {
    matches!(err, TxnError::HistoryNotKept { collection, id, .. } if collection == "c" && id == name)
}

#[test]
fn damage_met_by_a_feed_read_is_corrupt_and_never_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    with_collection(&db);
    db.transaction(|tx| tx.insert("c", doc! { "n": 1 }.id(id("a"))).map(drop)).unwrap();
    db.transaction(|tx| tx.update("c", &id("a"), set_n(2)).map(drop)).unwrap();
    db.transaction(|tx| tx.insert("c", doc! { "n": 5 }.id(id("b"))).map(drop)).unwrap();
    let seqs: Vec<_> = db.changes_since(0).unwrap().iter().map(|c| c.sequence).collect();
    assert_eq!(seqs.len(), 3);

    // The archived old version of `a` damaged: the update's entry (and the
    // insert's, whose new version it is) cannot be served.
    let (archive, _) =
        db.collections().documents().store().scan_prefix(b"v").unwrap().map(Result::unwrap).next().unwrap();
    overwrite(&db, archive, vec![1, 0xFF, 0xFF]);
    // The stored `b` replaced by a commit the feed did not record: its
    // insert's version is no longer kept (what the feed being off leaves).
    overwrite(&db, document_key("c", &id("b")), format::encode(&doc! { "n": 6 }.id(id("b"))).unwrap());
    let err = db.changes_since(0).unwrap_err();
    assert!(is_corrupt(&err), "{err}");
    let err = db.changes_since(seqs[1]).unwrap_err();
    assert!(is_not_kept(&err, "b"), "{err}");
    assert!(err.to_string().contains(&format!("feed entry {}", seqs[2])), "the entry is named: {err}");
    close(db);

    let db = open(dir.path(), true);
    assert!(is_corrupt(&db.changes_since(0).unwrap_err()));
    let check = db.verify_feed(|_| {}).unwrap();
    assert_eq!(check.problem_count, 2, "{:?}", check.problems);
    // Trimming past the damage brings the feed back.
    assert_eq!(db.trim_feed(0, None).unwrap(), 3);
    assert!(db.changes_since(db.feed_floor().unwrap()).unwrap().is_empty());
    assert_eq!(db.verify_feed(|_| {}).unwrap().problems, Vec::<String>::new());
}

#[test]
fn a_document_changed_while_the_feed_was_off_is_reported_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    with_collection(&db);
    db.transaction(|tx| tx.insert("c", doc! { "n": 1 }.id(id("a"))).map(drop)).unwrap();
    close(db);
    let db = open(dir.path(), false);
    db.transaction(|tx| tx.update("c", &id("a"), set_n(2)).map(drop)).unwrap();
    close(db);
    let db = open(dir.path(), true);
    let err = db.changes_since(0).unwrap_err();
    assert!(is_not_kept(&err, "a"), "the insert's version is gone, never served as the later one: {err}");
    assert!(err.to_string().contains("change feed was off"), "{err}");
}

#[test]
fn a_version_replaced_while_the_feed_was_off_and_updated_since_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    with_collection(&db);
    db.transaction(|tx| tx.insert("c", doc! { "n": 1 }.id(id("a"))).map(drop)).unwrap();
    close(db);
    let db = open(dir.path(), false);
    db.transaction(|tx| tx.update("c", &id("a"), set_n(2)).map(drop)).unwrap();
    close(db);
    // Updated again with the feed on: that update archives version 2, which
    // is not what the insert wrote.
    let db = open(dir.path(), true);
    db.transaction(|tx| tx.update("c", &id("a"), set_n(3)).map(drop)).unwrap();
    let all = db.changes_since(0).unwrap_err();
    assert!(is_not_kept(&all, "a"), "{all}");
    // The update recorded with the feed on still reads whole.
    let head = db.feed_head();
    let last = db.changes_since(head - 1).unwrap();
    assert_eq!((n_of(&last[0].changes[0].old), n_of(&last[0].changes[0].new)), (Some(2), Some(3)));
}

#[test]
fn a_document_deleted_while_the_feed_was_off_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    with_collection(&db);
    db.transaction(|tx| tx.insert("c", doc! { "n": 1 }.id(id("a"))).map(drop)).unwrap();
    close(db);
    let db = open(dir.path(), false);
    db.transaction(|tx| tx.delete("c", &id("a")).map(drop)).unwrap();
    close(db);
    let db = open(dir.path(), true);
    let err = db.changes_since(0).unwrap_err();
    assert!(is_not_kept(&err, "a"), "{err}");
}

#[test]
fn an_index_build_rewriting_documents_keeps_their_feed_entries_readable() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    with_collection(&db);
    for i in 0..20 {
        db.transaction(|tx| tx.insert("c", doc! { "n": i }).map(drop)).unwrap();
    }
    db.collections().create_index("c", "n", true).unwrap().wait().unwrap();
    let all = db.changes_since(0).unwrap();
    let ns: Vec<_> = all.iter().map(|c| n_of(&c.changes[0].new).unwrap()).collect();
    assert_eq!(ns, (0..20).collect::<Vec<_>>());
}

#[test]
fn readers_see_every_entry_as_committed_while_a_writer_updates() {
    let rounds: i64 = std::env::var("AURORA_FEED_RACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    with_collection(&db);
    db.transaction(|tx| tx.insert("c", doc! { "n": 0 }.id(id("a"))).map(drop)).unwrap();
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for n in 1..=rounds {
                db.transaction(|tx| tx.update("c", &id("a"), set_n(n)).map(drop)).unwrap();
                if n % 50 == 0 {
                    db.trim_feed(40, None).unwrap();
                }
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        let floor = db.feed_floor().unwrap();
        let entries: Vec<Committed> = match db.changes_since(floor) {
            Ok(e) => e,
            Err(TxnError::FeedTruncated { .. }) => continue,
            Err(e) => panic!("{e}"),
        };
        let mut previous: Option<i64> = None;
        for c in &entries {
            let ch = &c.changes[0];
            let (old, new) = (n_of(&ch.old), n_of(&ch.new).unwrap());
            if let Some(p) = previous {
                assert_eq!(old, Some(p), "entry {}: its old version is the previous entry's new", c.sequence);
            }
            assert_eq!(old.map_or(0, |o| o + 1), new, "entry {}: each update adds one", c.sequence);
            previous = Some(new);
        }
        reads += 1;
    }
    writer.join().unwrap();
    let last = db.changes_since(db.feed_floor().unwrap()).unwrap();
    assert_eq!(n_of(&last.last().unwrap().changes[0].new), Some(rounds));
    assert_eq!(db.verify_feed(|_| {}).unwrap().problems, Vec::<String>::new());
}

#[test]
fn trimming_deletes_every_part_of_multi_part_insert_entries_whether_the_index_was_fed_or_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    with_collection(&db);
    // Entries of 60 inserts with long ids span several 512-byte parts;
    // updates own archives, so their entries are read when trimmed.
    let insert_60 = |db: &Database, round: usize| {
        db.transaction(|tx| {
            for i in 0..60 {
                tx.insert("c", doc! { "n": i }.id(id(&format!("{round:04}-{i:04}-{}", "x".repeat(40)))))?;
            }
            Ok(())
        })
        .unwrap();
    };
    let parts_below = |db: &Database, floor: u64| {
        let store = db.collections().documents().store();
        store.scan_prefix(b"f").unwrap().map(Result::unwrap).filter(|(k, _)| k[1..9] <= floor.to_be_bytes()[..]).count()
    };
    for round in 0..6 {
        insert_60(&db, round);
        db.transaction(|tx| tx.update("c", &id(&format!("{round:04}-0000-{}", "x".repeat(40))), set_n(-1)).map(drop))
            .unwrap();
    }
    let (parts, _) = stored_bytes(&db, b"f");
    assert!(parts > 12 * 2, "entries of several parts: {parts}");
    // Fed by commits: keep the newest 7 of 12.
    assert_eq!(db.trim_feed(7, None).unwrap(), 5);
    let floor = db.feed_floor().unwrap();
    assert_eq!(parts_below(&db, floor), 0, "no part at or below the floor is left");
    assert_eq!(db.verify_feed(|_| {}).unwrap().problems, Vec::<String>::new());
    close(db);

    // Loaded from the store after a reopen.
    let db = open(dir.path(), true);
    insert_60(&db, 6);
    assert_eq!(db.trim_feed(2, None).unwrap(), 6);
    let floor = db.feed_floor().unwrap();
    assert_eq!(parts_below(&db, floor), 0);
    assert_eq!(stored_bytes(&db, b"v").0, 1, "the trimmed updates' archives went with them; the kept one's stayed");
    assert_eq!(db.verify_feed(|_| {}).unwrap().problems, Vec::<String>::new());
    let left = db.changes_since(floor).unwrap();
    assert_eq!(left.iter().map(|c| c.changes.len()).sum::<usize>(), 1 + 60);
}
