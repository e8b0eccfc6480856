//! Hostile review of the s8 write-path changes, at the transaction layer:
//!
//! - collection definitions (indexes, schema, the collection itself)
//!   changing while inserts, `insert_many` and transactions run, now that
//!   the definition condition every write carries is decided from the
//!   commit leader's in-memory revision (`Batch::require_watched_revision`);
//! - the change feed trimmed with tiny retention between mixed commits,
//!   reopens, and damaged entries, now that insert-only entries are deleted
//!   by their numbered parts without being read;
//! - inserts encoded once (`format::encode_within`, `admit_encoded`): the
//!   size limit exactly, one byte over, huge then small documents on one
//!   thread, a refused document in the middle of a batch.
//!
//! Rounds: `AURORA_S8_REVIEW_ROUNDS` (default sized for a few seconds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{doc, DocId, Document, FieldDefinition, FieldType, Value};
use aurora_index::{Collections, Existing, IndexConfig, Schema};
use aurora_storage::{format, DocumentStore, DocumentStoreConfig, Durability, StorageError, StoreConfig};
use aurora_txn::{ChangeKind, Database, Isolation, TxnError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn rounds(default: usize) -> usize {
    std::env::var("AURORA_S8_REVIEW_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const LIMIT: usize = 4096;

fn open_with(dir: &Path, durability: Durability) -> (Database, Arc<common::Recorder>) {
    let store = StoreConfig {
        durability,
        max_value_bytes: LIMIT,
        cold_cache_capacity_mb: 8,
        checkpoint_interval: Duration::from_secs(3600),
        ..StoreConfig::default()
    };
    let docs =
        DocumentStore::open(dir, store, DocumentStoreConfig { hot_cache_size_mb: 4, ..Default::default() }).unwrap();
    let collections = Collections::open(docs, IndexConfig::default()).unwrap();
    let recorder = Arc::new(common::Recorder::default());
    (Database::with_options(collections, recorder.clone(), Isolation::default(), true), recorder)
}

fn close(db: Database) {
    db.collections().documents().store().close().unwrap();
}

fn id(name: &str) -> DocId {
    DocId::text(name).unwrap()
}

fn docs_in(db: &Database, collection: &str) -> BTreeMap<String, Document> {
    db.collections().documents().scan(collection).unwrap().map(Result::unwrap).map(|d| (d.id.to_string(), d)).collect()
}

/// The live revision of a collection's definition (the catalog key `c` ++ name).
fn definition_revision(db: &Database, collection: &str) -> u64 {
    let mut key = b"c".to_vec();
    key.extend_from_slice(collection.as_bytes());
    db.collections().documents().store().get_versioned(&key).unwrap().map_or(0, |(r, _)| r)
}

fn acceptable(e: &TxnError) -> bool {
    // A write racing a definition change may be refused — never anything
    // else (a panic, a corrupt store).
    e.is_retryable()
        || matches!(e, TxnError::Index(_))
        || matches!(e, TxnError::NotFound { .. })
        || matches!(e, TxnError::Conflict { .. })
}

// ---------------------------------------------------------------------------
// (2) definitions racing writes
// ---------------------------------------------------------------------------

/// Index builds and drops, and a schema that starts refusing string `n`,
/// race inserts, `insert_many` and updating transactions. Afterwards every
/// ready index holds exactly the entries of the documents (no entry missing
/// from a write planned against the old definition), and no document with
/// a string `n` was committed after the schema that refuses it.
#[test]
fn index_and_schema_changes_racing_writes_leave_consistent_indexes_and_no_schema_bypass() {
    let dir = tempfile::tempdir().unwrap();
    let (db, recorder) = open_with(dir.path(), Durability::Balanced);
    db.collections().create_collection("c", Schema::new()).unwrap();
    let db = Arc::new(db);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = 0u64;
                // Paced, and from the 2000th round on every document written
                // is deleted again, so the schema change's scan of the
                // stored documents (it reads each one) ends.
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    std::thread::sleep(Duration::from_micros(200));
                    let churn = i > 2000;
                    // Every fifth round: a string `n` (refused once the schema says Int).
                    let n =
                        if i.is_multiple_of(5) { Value::String(format!("s{i}")) } else { Value::Int((i % 17) as i64) };
                    let written = match t {
                        0 => db.insert("c", doc! { "n": n.clone(), "u": format!("{t}-{i}") }).map(|id| vec![id]),
                        1 => db.insert_many(
                            "c",
                            (0..3).map(|k| doc! { "n": n.clone(), "u": format!("{t}-{i}-{k}") }).collect(),
                        ),
                        _ => db.transaction(|tx| {
                            let id = tx.insert("c", doc! { "n": Value::Int(1), "u": format!("{t}-{i}") })?;
                            tx.update("c", &id, [("n".to_string(), n.clone())].into_iter().collect())?;
                            Ok(vec![id])
                        }),
                    };
                    let r = match written {
                        Ok(ids) if churn => db.transaction(|tx| {
                            for id in &ids {
                                tx.delete("c", id)?;
                            }
                            Ok(())
                        }),
                        other => other.map(drop),
                    };
                    if let Err(e) = r {
                        assert!(acceptable(&e) || is_schema_refusal(&e), "writer {t}: {e:?}");
                    }
                }
            })
        })
        .collect();
    // The definer: index on, index off, unique index on and off, then the schema.
    for round in 0..rounds(6) {
        let build = db.collections().create_index("c", "n", false).unwrap();
        build.wait().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        check_indexes(&db, &format!("round {round}, index on"));
        db.collections().drop_index("c", "n").unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let build = db.collections().create_index("c", "n", false).unwrap();
    build.wait().unwrap();
    let schema = Schema::new().field("n", FieldDefinition::new(FieldType::Int).indexed());
    db.collections().alter_schema("c", schema, Existing::Skip).unwrap();
    let schema_at = definition_revision(&db, "c");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    writers.into_iter().for_each(|h| h.join().unwrap());
    check_indexes(&db, "the end");
    // No string `n` committed after the schema that refuses it.
    let committed = recorder.0.lock();
    let mut after_schema = 0;
    for c in committed.iter().filter(|c| c.sequence > schema_at) {
        for change in &c.changes {
            after_schema += 1;
            if let Some(new) = &change.new {
                assert!(
                    !matches!(new.get("n"), Some(Value::String(_))),
                    "commit {} wrote a string n after the schema (revision {schema_at}) refused it: {new:?}",
                    c.sequence
                );
            }
        }
    }
    assert!(after_schema > 0, "writes went on after the schema change");
}

fn is_schema_refusal(e: &TxnError) -> bool {
    matches!(e, TxnError::Index(_) | TxnError::Storage(_))
}

fn check_indexes(db: &Database, when: &str) {
    let check = db.collections().verify_indexes("c", |_| {}).unwrap();
    assert_eq!(check.problem_count, 0, "{when}: {:?}", check.problems);
}

/// A collection dropped and re-created while writers insert into it: after
/// the last creation, only documents committed after it are in it, its
/// indexes hold exactly them, and a reopen (WAL replay) agrees.
#[test]
fn a_collection_dropped_and_recreated_while_written_holds_only_writes_after_its_creation() {
    let dir = tempfile::tempdir().unwrap();
    let (db, recorder) = open_with(dir.path(), Durability::Balanced);
    let schema = || Schema::new().field("n", FieldDefinition::new(FieldType::Int).indexed());
    db.collections().create_collection("c", schema()).unwrap();
    let db = Arc::new(db);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<DocId>::new()));
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let (db, stop, acked) = (Arc::clone(&db), Arc::clone(&stop), Arc::clone(&acked));
            std::thread::spawn(move || {
                let mut i = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let r = match t {
                        0 => db.insert("c", doc! { "n": i }).map(|id| vec![id]),
                        1 => db.insert_many("c", vec![doc! { "n": i }, doc! { "n": -i }]),
                        _ => db.transaction(|tx| Ok(vec![tx.insert("c", doc! { "n": i })?])),
                    };
                    match r {
                        Ok(ids) => acked.lock().unwrap().extend(ids),
                        Err(e) => assert!(acceptable(&e), "writer {t}: {e:?}"),
                    }
                }
            })
        })
        .collect();
    for _ in 0..rounds(8) {
        std::thread::sleep(Duration::from_millis(15));
        db.collections().drop_collection("c").unwrap();
        std::thread::sleep(Duration::from_millis(3));
        db.collections().create_collection("c", schema()).unwrap();
    }
    let created_at = definition_revision(&db, "c");
    std::thread::sleep(Duration::from_millis(30));
    stop.store(true, Ordering::Relaxed);
    writers.into_iter().for_each(|h| h.join().unwrap());
    check_indexes(&db, "after the races");
    let after_creation: BTreeMap<String, u64> = recorder
        .0
        .lock()
        .iter()
        .filter(|c| c.sequence > created_at)
        .flat_map(|c| c.changes.iter().map(move |ch| (ch.id.to_string(), c.sequence)))
        .collect();
    let held = docs_in(&db, "c");
    for id in held.keys() {
        assert!(after_creation.contains_key(id), "{id} is in the re-created collection but was committed before it");
    }
    assert_eq!(held.len(), after_creation.len(), "every write committed after the creation is there");
    let acked = acked.lock().unwrap();
    for id in held.keys() {
        assert!(acked.iter().any(|a| a.to_string() == *id), "{id} was never acknowledged");
    }
    let db = Arc::into_inner(db).unwrap();
    close(db);
    let (db, _) = open_with(dir.path(), Durability::Balanced);
    assert_eq!(docs_in(&db, "c").keys().collect::<Vec<_>>(), held.keys().collect::<Vec<_>>(), "replayed the same");
    check_indexes(&db, "after a reopen");
    close(db);
}

// ---------------------------------------------------------------------------
// (3) the feed under trims
// ---------------------------------------------------------------------------

/// One committed change as the model remembers it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    kind: ChangeKind,
    id: String,
    old: Option<i64>,
    new: Option<i64>,
}

fn n_of(d: &Option<Arc<Document>>) -> Option<i64> {
    d.as_ref().and_then(|d| d.get("n")).and_then(Value::as_i64)
}

fn keys_under(db: &Database, prefix: &[u8]) -> Vec<Vec<u8>> {
    db.collections().documents().store().scan_prefix(prefix).unwrap().map(|r| r.unwrap().0).collect()
}

/// Mixed commits (single and multi-document inserts, updates, deletes,
/// re-inserts of deleted ids, big multi-part entries) with a retention of
/// 1 or 2 entries after most commits and reopens in between. The feed read
/// from the floor always equals the model of what was committed; a cursor
/// below the floor is `FeedTruncated`; nothing of a trimmed entry (its
/// parts, its archives) is left; `verify_feed` finds nothing wrong.
#[test]
fn the_feed_trimmed_to_one_or_two_entries_between_mixed_commits_and_reopens_matches_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let schema = || Schema::new().field("n", FieldDefinition::new(FieldType::Int));
    let (mut db, _) = open_with(dir.path(), Durability::Balanced);
    db.collections().create_collection("c", schema()).unwrap();
    // sequence → changes, as committed.
    let mut model: BTreeMap<u64, Vec<Seen>> = BTreeMap::new();
    let mut live: BTreeMap<String, i64> = BTreeMap::new();
    let mut rng = 0x5eed_u64;
    let mut next = |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    let mut trimmed_total = 0;
    for step in 0..rounds(300) {
        let choice = next(10);
        let name = format!("d{:03}-{}", next(12), "x".repeat(30));
        let before = db.feed_head();
        let mut changes = Vec::new();
        let r = match choice {
            0..=2 => {
                // insert (one or many, sometimes spanning several parts)
                let count = if choice == 2 { 40 } else { 1 };
                db.transaction(|tx| {
                    let mut made = Vec::new();
                    for k in 0..count {
                        let nm = format!("{name}-{step}-{k}");
                        if tx.get("c", &id(&nm))?.is_none() {
                            tx.insert("c", doc! { "n": k as i64 }.id(id(&nm)))?;
                            made.push(Seen { kind: ChangeKind::Insert, id: nm, old: None, new: Some(k as i64) });
                        }
                    }
                    Ok(made)
                })
            }
            3..=5 => match live.get(&name).copied() {
                Some(old) => db
                    .transaction(|tx| {
                        tx.update("c", &id(&name), [("n".to_string(), Value::Int(old + 1))].into_iter().collect())
                    })
                    .map(|_| {
                        vec![Seen { kind: ChangeKind::Update, id: name.clone(), old: Some(old), new: Some(old + 1) }]
                    }),
                None => db
                    .insert("c", doc! { "n": 100 }.id(id(&name)))
                    .map(|_| vec![Seen { kind: ChangeKind::Insert, id: name.clone(), old: None, new: Some(100) }]),
            },
            6 | 7 => match live.get(&name).copied() {
                Some(old) => db
                    .transaction(|tx| tx.delete("c", &id(&name)))
                    .map(|_| vec![Seen { kind: ChangeKind::Delete, id: name.clone(), old: Some(old), new: None }]),
                None => db
                    .insert_many("c", vec![doc! { "n": 7 }.id(id(&name))])
                    .map(|_| vec![Seen { kind: ChangeKind::Insert, id: name.clone(), old: None, new: Some(7) }]),
            },
            _ => Ok(Vec::new()),
        };
        changes.extend(r.unwrap());
        if !changes.is_empty() {
            let seq = db.feed_head();
            assert!(seq > before);
            for c in &changes {
                match c.new {
                    Some(n) => live.insert(c.id.clone(), n),
                    None => live.remove(&c.id),
                };
            }
            changes.sort_by(|a, b| a.id.cmp(&b.id));
            model.insert(seq, changes);
        }
        if next(4) != 0 {
            let keep = 1 + next(2) as usize;
            trimmed_total += db.trim_feed(keep, None).unwrap();
            let floor = db.feed_floor().unwrap();
            model.retain(|s, _| *s > floor);
            assert!(model.len() <= keep, "kept {keep}: {model:?}");
        }
        if next(25) == 0 {
            close(db);
            db = open_with(dir.path(), Durability::Balanced).0;
        }
        // The feed from the floor equals the model.
        let floor = db.feed_floor().unwrap();
        let read: BTreeMap<u64, Vec<Seen>> = db
            .changes_since(floor)
            .unwrap()
            .into_iter()
            .map(|c| {
                let mut seen: Vec<Seen> = c
                    .changes
                    .iter()
                    .map(|ch| Seen { kind: ch.kind, id: ch.id.to_string(), old: n_of(&ch.old), new: n_of(&ch.new) })
                    .collect();
                seen.sort_by(|a, b| a.id.cmp(&b.id));
                (c.sequence, seen)
            })
            .collect();
        assert_eq!(read, model, "step {step}: the feed from the floor {floor}");
        if floor > 0 {
            let err = db.changes_since(floor - 1).unwrap_err();
            assert!(matches!(err, TxnError::FeedTruncated { oldest, .. } if oldest == floor), "{err:?}");
        }
        // Nothing of a trimmed entry is left.
        for k in keys_under(&db, b"f") {
            if k.len() >= 9 {
                let seq = u64::from_be_bytes(k[1..9].try_into().unwrap());
                assert!(seq > floor, "step {step}: a part of trimmed entry {seq} is left (floor {floor})");
            }
        }
        let archives = keys_under(&db, b"v").len();
        let owning: usize = model.values().flatten().filter(|c| c.kind != ChangeKind::Insert).count();
        assert_eq!(archives, owning, "step {step}: archives of the kept entries only");
    }
    assert!(trimmed_total > 0);
    assert_eq!(db.verify_feed(|_| {}).unwrap().problems, Vec::<String>::new());
    close(db);
}

/// A consumer resuming from a cursor trimmed meanwhile is told so (typed,
/// with the floor), also when the trim deleted insert-only entries unread.
#[test]
fn a_cursor_trimmed_between_two_reads_is_reported_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open_with(dir.path(), Durability::Balanced);
    db.collections().create_collection("c", Schema::new()).unwrap();
    db.insert("c", doc! { "n": 1 }).unwrap();
    let cursor = db.feed_head();
    for n in 2..6 {
        db.insert("c", doc! { "n": n }).unwrap();
    }
    assert_eq!(db.changes_since(cursor).unwrap().len(), 4);
    assert_eq!(db.trim_feed(1, None).unwrap(), 4);
    let floor = db.feed_floor().unwrap();
    assert!(floor > cursor);
    match db.changes_since(cursor) {
        Err(TxnError::FeedTruncated { requested, oldest }) => assert_eq!((requested, oldest), (cursor, floor)),
        other => panic!("{other:?}"),
    }
    assert_eq!(db.changes_since(floor).unwrap().len(), 1);
    close(db);
}

/// A damaged feed entry (garbage in one of its parts): reads and trims
/// report it as a typed error and never panic; other work goes on.
#[test]
fn a_damaged_feed_entry_is_a_typed_error_for_reads_and_trims() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open_with(dir.path(), Durability::Balanced);
    db.collections().create_collection("c", Schema::new()).unwrap();
    for n in 0..4 {
        db.insert("c", doc! { "n": n }).unwrap();
    }
    let parts = keys_under(&db, b"f");
    let victim = parts[1].clone();
    for garbage in [vec![], vec![0xff; 3], vec![3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]] {
        db.collections().documents().store().put(victim.clone(), garbage.clone()).unwrap();
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.changes_since(0)));
        let read = read.unwrap_or_else(|_| panic!("changes_since panicked on {garbage:?}"));
        assert!(matches!(read, Err(TxnError::Storage(_))), "{garbage:?}: {read:?}");
        let trim = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.trim_feed(1, None)));
        let trim = trim.unwrap_or_else(|_| panic!("trim_feed panicked on {garbage:?}"));
        // The in-memory index may trim it unread (it was written as
        // insert-only) or refuse: either is fine, never a panic.
        if let Err(e) = trim {
            assert!(matches!(e, TxnError::Storage(_)), "{garbage:?}: {e:?}");
        }
    }
    db.insert("c", doc! { "n": 9 }).unwrap();
    close(db);
    // After a reopen the index is loaded from the store: the damaged entry
    // (if still there) is met by the load.
    let (db, _) = open_with(dir.path(), Durability::Balanced);
    let trim = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.trim_feed(1, None))).expect("no panic");
    if let Err(e) = trim {
        assert!(
            matches!(e, TxnError::Storage(StorageError::Corrupt { .. } | StorageError::UnknownFormat { .. })),
            "{e:?}"
        );
    }
    db.insert("c", doc! { "n": 10 }).unwrap();
    close(db);
}

// ---------------------------------------------------------------------------
// (4) encoding once
// ---------------------------------------------------------------------------

/// A document whose stored encoding is exactly `len` bytes.
fn doc_of_len(name: &str, len: usize) -> Document {
    let mut k = len.saturating_sub(64);
    loop {
        let d = doc! { "s": "x".repeat(k) }.id(id(name));
        let n = format::encode(&d).unwrap().len();
        if n == len {
            return d;
        }
        assert!(n < len, "no document of exactly {len} bytes ({n} at {k})");
        k += 1;
    }
}

fn is_too_large(e: &TxnError) -> bool {
    matches!(e, TxnError::Storage(StorageError::TooLarge { what: "document", limit, .. }) if *limit == LIMIT)
}

/// The size limit: a document of exactly the limit is stored by every
/// write path (insert, insert_many, transaction insert, update, replace);
/// one byte over is `TooLarge` on every path and writes nothing.
#[test]
fn every_write_path_takes_a_document_of_exactly_the_limit_and_refuses_one_byte_more() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open_with(dir.path(), Durability::Balanced);
    db.collections().create_collection("c", Schema::new()).unwrap();
    let at = |name: &str| doc_of_len(name, LIMIT);
    let over = |name: &str| doc_of_len(name, LIMIT + 1);
    db.insert("c", at("a")).unwrap();
    db.insert_many("c", vec![at("b"), doc! { "n": 1 }.id(id("b2"))]).unwrap();
    db.transaction(|tx| tx.insert("c", at("t"))).unwrap();
    db.collections().documents().store().sync().unwrap();
    let head = db.feed_head();
    let held = docs_in(&db, "c");
    assert_eq!(held.len(), 4);
    // One byte over, on every path: refused, nothing written.
    assert!(is_too_large(&db.insert("c", over("x1")).unwrap_err()));
    let e = db.insert_many("c", vec![doc! { "n": 1 }.id(id("x2a")), over("x2"), doc! { "n": 2 }]).unwrap_err();
    assert!(is_too_large(&e), "{e:?}");
    assert!(is_too_large(&db.transaction(|tx| tx.insert("c", over("x3"))).unwrap_err()));
    assert!(is_too_large(&db.transaction(|tx| tx.replace("c", over("a"))).unwrap_err()));
    assert_eq!(db.feed_head(), head, "nothing committed");
    assert_eq!(docs_in(&db, "c"), held, "nothing written");
    // Exactly the limit through replace: the same boundary as insert.
    db.transaction(|tx| tx.replace("c", at("b2"))).unwrap();
    close(db);
    let (db, _) = open_with(dir.path(), Durability::Balanced);
    for name in ["a", "b", "t", "b2"] {
        let d = db.collections().get("c", &id(name)).unwrap().unwrap();
        assert_eq!(format::encode(&*d).unwrap().len(), LIMIT, "{name} after a reopen");
    }
    close(db);
}

/// Huge then small then huge documents inserted from one thread (the
/// per-thread scratch buffer grows, is released, is reused) are stored
/// byte for byte, also after a WAL replay; a refused huge one in between
/// leaves nothing behind in the next encoding.
#[test]
fn huge_and_small_documents_from_one_thread_are_stored_exactly_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let big_limit = 1 << 20;
    let config = StoreConfig {
        durability: Durability::Balanced,
        max_value_bytes: big_limit,
        checkpoint_interval: Duration::from_secs(3600),
        ..StoreConfig::default()
    };
    let open = |dir: &Path| {
        let docs = DocumentStore::open(dir, config.clone(), DocumentStoreConfig::default()).unwrap();
        Database::new(Collections::open(docs, IndexConfig::default()).unwrap(), Arc::new(aurora_txn::NoSink))
    };
    let db = open(dir.path());
    db.collections().create_collection("c", Schema::new()).unwrap();
    let mut expect = BTreeMap::new();
    for round in 0..rounds(40) {
        let size = match round % 4 {
            0 => 900_000,
            1 => 3,
            2 => 70_000,
            _ => 200,
        };
        let d = doc! { "s": "y".repeat(size), "round": round as i64 }.id(id(&format!("r{round}")));
        expect.insert(format!("r{round}"), format::encode(&d).unwrap());
        if round % 2 == 0 {
            db.insert("c", d).unwrap();
        } else {
            db.insert_many("c", vec![d]).unwrap();
        }
        if round % 7 == 0 {
            let too_big = doc! { "s": "z".repeat(big_limit) };
            let e = db.insert("c", too_big).unwrap_err();
            assert!(matches!(e, TxnError::Storage(StorageError::TooLarge { .. })), "{e:?}");
        }
    }
    let check = |db: &Database| {
        for (name, bytes) in &expect {
            let d = db.collections().get("c", &id(name)).unwrap().unwrap();
            assert_eq!(&format::encode(&*d).unwrap(), bytes, "{name}");
        }
        assert_eq!(docs_in(db, "c").len(), expect.len());
    };
    check(&db);
    db.collections().documents().store().sync().unwrap();
    drop(db); // no close: the next open replays the WAL
    let db = open(dir.path());
    check(&db);
    db.collections().documents().store().close().unwrap();
}

/// Trims to one or two entries running in a loop while three writers
/// insert, update and delete: the index the trim decides from is fed by
/// commits as it trims. Afterwards no part of a trimmed entry and no
/// archive of one is left, every kept entry reads, and `verify_feed` is
/// clean — live and after a reopen (the index loaded from the store).
#[test]
fn trims_racing_mixed_writers_leave_nothing_of_trimmed_entries_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open_with(dir.path(), Durability::Balanced);
    db.collections().create_collection("c", Schema::new()).unwrap();
    let db = Arc::new(db);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) && i < 4000 {
                    i += 1;
                    let name = id(&format!("w{t}-{}", i % 9));
                    let r = db.transaction(|tx| {
                        match tx.get("c", &name)? {
                            None if i.is_multiple_of(4) => {
                                for k in 0..30 {
                                    tx.insert("c", doc! { "n": k }.id(id(&format!("w{t}-{i}-bulk{k}"))))?;
                                }
                                tx.insert("c", doc! { "n": 0 }.id(name.clone()))?;
                            }
                            None => drop(tx.insert("c", doc! { "n": 0 }.id(name.clone()))?),
                            Some(_) if i.is_multiple_of(3) => drop(tx.delete("c", &name)?),
                            Some(d) => {
                                let n = d.get("n").and_then(Value::as_i64).unwrap_or(0);
                                drop(tx.update(
                                    "c",
                                    &name,
                                    [("n".to_string(), Value::Int(n + 1))].into_iter().collect(),
                                )?)
                            }
                        }
                        Ok(())
                    });
                    if let Err(e) = r {
                        assert!(e.is_retryable(), "{e:?}");
                    }
                }
            })
        })
        .collect();
    let trimmer = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0usize;
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                n += db.trim_feed(1 + k % 2, None).unwrap();
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(rounds(1500) as u64));
    stop.store(true, Ordering::Relaxed);
    writers.into_iter().for_each(|h| h.join().unwrap());
    assert!(trimmer.join().unwrap() > 0);
    let check = |db: &Database, when: &str| {
        let floor = db.feed_floor().unwrap();
        for k in keys_under(db, b"f") {
            if k.len() >= 9 {
                let seq = u64::from_be_bytes(k[1..9].try_into().unwrap());
                assert!(seq > floor, "{when}: a part of trimmed entry {seq} is left (floor {floor})");
            }
        }
        let kept = db.changes_since(floor).unwrap();
        let owning: usize = kept.iter().flat_map(|c| &c.changes).filter(|c| c.kind != ChangeKind::Insert).count();
        assert_eq!(keys_under(db, b"v").len(), owning, "{when}: archives of the kept entries only");
        assert_eq!(db.verify_feed(|_| {}).unwrap().problems, Vec::<String>::new(), "{when}");
    };
    db.trim_feed(1, None).unwrap();
    check(&db, "live");
    let db = Arc::into_inner(db).unwrap();
    close(db);
    let (db, _) = open_with(dir.path(), Durability::Balanced);
    db.transaction(|tx| tx.insert("c", doc! { "n": 1 }).map(drop)).unwrap();
    db.trim_feed(1, None).unwrap();
    check(&db, "after a reopen");
    close(db);
}
