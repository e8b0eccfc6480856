//! `aurora check` against the real binary: healthy databases pass, each
//! kind of damage — to the WAL, to an index, to a unique claim, to the
//! change feed, to a document — is found, the exit code is the verdict,
//! and checking changes no byte of the database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use aurora::index::keycodec;
use aurora::storage::{document_key, Batch, Store, StoreConfig};
use aurora::{doc, Aurora, DocId, FieldDefinition, FieldType, Value};
use cli_support::{aurora, check_unchanged as check, rt, s};
use std::path::{Path, PathBuf};

const CRASH_WRITER: &str = "AURORA_CLI_TEST_CRASH_WRITER";

/// A database with `users` (unique `email`, indexed `age`): ada, alan, grace.
fn users(dir: &Path) {
    rt().block_on(async {
        let db = Aurora::open(dir).await.unwrap();
        db.new_collection(
            "users",
            [
                ("email", FieldDefinition::new(FieldType::String).unique()),
                ("age", FieldDefinition::new(FieldType::Int).indexed()),
            ],
        )
        .await
        .unwrap();
        for (id, age) in [("ada", 36), ("alan", 41), ("grace", 85)] {
            let mut d = doc! { "email": format!("{id}@x.io"), "age": age };
            d.id = DocId::text(id).unwrap();
            db.insert_into("users", d).await.unwrap();
        }
        db.update_document(
            "users",
            &DocId::text("ada").unwrap(),
            aurora::Fields::from([("age".to_string(), Value::Int(37))]),
        )
        .await
        .unwrap();
        db.close().await.unwrap();
    });
    cli_support::settle(dir);
}

/// Not a test of its own: run as a child process (see [`crash_after_writes`])
/// it writes to the database named by the environment and exits without
/// closing it, as a killed server would.
#[test]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(CRASH_WRITER) else { return };
    rt().block_on(async {
        let db = Aurora::open(&dir).await.unwrap();
        for i in 0..5 {
            db.insert_into("users", doc! { "email": format!("crash{i}@x.io"), "age": i }).await.unwrap();
        }
        // No close, no destructor: the WAL keeps the five commits.
        std::process::exit(3);
    });
}

/// Makes `dir` a database that was not closed: its WAL holds five commits.
fn crash_after_writes(dir: &Path) {
    users(dir);
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_writer_child", "--nocapture", "--test-threads=1"])
        .env(CRASH_WRITER, dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3), "the writer ran and exited without closing");
}

/// The WAL segment holding records (the largest one).
fn busiest_segment(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
}

/// Changes the stored keys of a closed database through the storage layer.
fn damage(dir: &Path, f: impl FnOnce(&Store, &mut Batch)) {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let mut batch = Batch::new();
    f(&store, &mut batch);
    let _ = store.commit(batch).unwrap();
    store.close().unwrap();
    drop(store);
    cli_support::settle(dir);
}

fn keys_with_prefix(store: &Store, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    store.scan_prefix(prefix).unwrap().map(|r| r.unwrap()).collect()
}

fn entry_prefix(field: &str) -> Vec<u8> {
    [b"xusers\0".as_slice(), field.as_bytes(), b"\0"].concat()
}

fn claim_prefix(field: &str) -> Vec<u8> {
    [b"uusers\0".as_slice(), field.as_bytes(), b"\0"].concat()
}

fn text_id(s: &str) -> DocId {
    DocId::text(s).unwrap()
}

#[test]
fn a_healthy_database_passes_with_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    users(&dir);
    let run = check(&dir).code(0);
    assert!(run.stdout.contains("ok       WAL: 1 segment(s), 0 bytes, 0 record(s)"), "{}", run.stdout);
    assert!(
        run.stdout.contains("ok       collection `users`: 3 documents, 2 index(es), 6 entries, 3 unique claims"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("ok       change feed: 4 entries, 4 changes"), "{}", run.stdout);
    assert!(run.stdout.contains("last change of 3 documents matches"), "{}", run.stdout);
    assert!(run.stdout.ends_with("verdict: healthy\n"), "{}", run.stdout);
}

#[test]
fn a_database_that_was_not_closed_is_checked_on_a_copy_and_left_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    crash_after_writes(&dir);
    let run = check(&dir).code(0);
    assert!(run.stdout.contains("5 record(s)"), "{}", run.stdout);
    assert!(run.stdout.contains("not closed cleanly"), "{}", run.stdout);
    assert!(run.stdout.contains("8 documents"), "{}", run.stdout);
    // A torn tail (a record cut short by the stop) is no damage either.
    let segment = busiest_segment(&dir);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&segment, &bytes).unwrap();
    let run = check(&dir).code(0);
    assert!(run.stdout.contains("note     WAL: a torn tail of 7 bytes"), "{}", run.stdout);
    // The database itself still recovers the five commits.
    let stats = aurora(&["stats", s(&dir), "--json"]).ok();
    assert!(stats.stdout.contains("\"documents\": 8"), "{}", stats.stdout);
}

#[test]
fn a_damaged_wal_segment_is_found_and_nothing_is_salvaged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    crash_after_writes(&dir);
    let segment = busiest_segment(&dir);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[20] ^= 0xFF; // inside the first record's payload; four intact records follow
    std::fs::write(&segment, &bytes).unwrap();
    let run = check(&dir).code(1);
    assert!(run.stdout.contains("PROBLEM  WAL segment"), "{}", run.stdout);
    assert!(run.stdout.contains("at byte 0: record checksum mismatch with intact records after it"), "{}", run.stdout);
    assert!(run.stdout.contains("verdict: 1 problem found"), "{}", run.stdout);
    // Opening still refuses: the check salvaged nothing.
    let run = aurora(&["stats", s(&dir)]).code(1);
    assert!(run.stderr.contains("write-ahead log segment"), "{}", run.stderr);
    // A segment out of place: named for a revision it does not start at.
    let tmp2 = tempfile::tempdir().unwrap();
    let dir2 = tmp2.path().join("db");
    crash_after_writes(&dir2);
    let segment = busiest_segment(&dir2);
    let name = segment.file_name().unwrap().to_str().unwrap().to_string();
    let first: u64 = name.trim_end_matches(".log").parse().unwrap();
    std::fs::copy(&segment, dir2.join("wal").join(format!("{:020}.log", first + 100))).unwrap();
    let run = check(&dir2).code(1);
    assert!(
        run.stdout.contains(&format!("is named for revision {} but starts at revision {first}", first + 100)),
        "{}",
        run.stdout
    );
}

#[test]
fn each_kind_of_index_damage_is_found() {
    type Damage = Box<dyn Fn(&Store, &mut Batch)>;
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "a deleted index entry",
            Box::new(|store, b| {
                let (key, _) = keys_with_prefix(store, &entry_prefix("age")).remove(1);
                b.delete(key);
            }),
            "index `age`: document alan has no entry",
        ),
        (
            "a stray index entry naming no document",
            Box::new(|_, b| {
                let key = [entry_prefix("age"), keycodec::encode(&Value::Int(99)), text_id("ghost").to_key_bytes()];
                b.put(key.concat(), Vec::new());
            }),
            "index `age`: stray entry",
        ),
        (
            "a stray index entry with the wrong value",
            Box::new(|_, b| {
                let key = [entry_prefix("age"), keycodec::encode(&Value::Int(7)), text_id("ada").to_key_bytes()];
                b.put(key.concat(), Vec::new());
            }),
            "document ada does not hold this value",
        ),
        (
            "an entry of an index the collection does not have",
            Box::new(|_, b| {
                let key = [entry_prefix("gone"), keycodec::encode(&Value::Int(1)), text_id("ada").to_key_bytes()];
                b.put(key.concat(), Vec::new());
            }),
            "index `gone`: stray entry",
        ),
        (
            "a deleted unique claim",
            Box::new(|store, b| {
                let (key, _) = keys_with_prefix(store, &claim_prefix("email")).remove(2);
                b.delete(key);
            }),
            "unique index `email`: document grace has no claim",
        ),
        (
            "a unique claim no document holds",
            Box::new(|_, b| {
                let key = [claim_prefix("email"), keycodec::encode(&Value::String("nobody@x.io".into()))].concat();
                b.put(key, text_id("ada").to_key_bytes());
            }),
            "unique index `email`: stray claim",
        ),
    ];
    for (what, hurt, expected) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        users(&dir);
        damage(&dir, hurt);
        let run = check(&dir);
        assert_eq!(run.code, 1, "{what}: {run:#?}");
        assert!(run.stdout.contains(expected), "{what}: expected {expected:?} in\n{}", run.stdout);
        assert!(run.stdout.contains("verdict: 1 problem found"), "{what}: {}", run.stdout);
    }
}

#[test]
fn damage_to_the_change_feed_or_a_document_is_found() {
    type Damage = Box<dyn Fn(&Store, &mut Batch)>;
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "a feed entry that does not decode",
            Box::new(|store, b| {
                let (key, _) = keys_with_prefix(store, b"f").remove(0);
                b.put(key, vec![0xFF; 9]);
            }),
            "does not decode",
        ),
        (
            "a lost feed entry (the update of ada)",
            Box::new(|store, b| {
                let (key, _) = keys_with_prefix(store, b"f").pop().unwrap();
                b.delete(key);
            }),
            "users/ada: the feed's last change",
        ),
        (
            "a document deleted behind the indexes' back",
            Box::new(|_, b| {
                b.delete(document_key("users", &text_id("alan")));
            }),
            "document alan does not exist",
        ),
        (
            "a document that does not decode",
            Box::new(|_, b| {
                b.put(document_key("users", &text_id("grace")), vec![1, 2, 3]);
            }),
            "PROBLEM  collection `users`",
        ),
    ];
    for (what, hurt, expected) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        users(&dir);
        damage(&dir, hurt);
        let run = check(&dir);
        assert_eq!(run.code, 1, "{what}: {run:#?}");
        assert!(run.stdout.contains(expected), "{what}: expected {expected:?} in\n{}", run.stdout);
    }
}

/// A key stored in sled's default tree although its collection has a tree
/// of its own: point reads never look there, the store-wide scan finds it.
#[test]
fn a_key_in_the_wrong_sled_tree_is_found_by_the_store_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    users(&dir);
    let healthy = check(&dir);
    assert_eq!(healthy.code, 0, "{healthy:#?}");
    assert!(healthy.stdout.contains("ok       store: "), "{}", healthy.stdout);
    {
        let cold = aurora_testkit::raw_sled::open(&dir.join("cold"));
        // The default tree's data keys are `0x01 ++ key`; `users` has a tree.
        let misplaced = [&[1u8][..], &document_key("users", &text_id("bogus"))].concat();
        cold.insert(misplaced, &[2u8, 1, 0][..]).unwrap();
        cold.flush().unwrap();
    }
    let run = check(&dir);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.contains("PROBLEM  store: after"), "{}", run.stdout);
    assert!(run.stdout.contains("belongs in the tree of its prefix"), "{}", run.stdout);
    assert!(run.stdout.contains("collection `users`: 3 documents"), "the other checks still run: {}", run.stdout);
}

#[test]
fn what_cannot_be_checked_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let run = aurora(&["check", s(&tmp.path().join("missing"))]).code(2);
    assert!(run.stderr.contains("no such directory"), "{}", run.stderr);
    assert!(run.stdout.contains("verdict: could not check"), "{}", run.stdout);
    let run = aurora(&["check", s(tmp.path())]).code(2);
    assert!(run.stderr.contains("not an Aurora database"), "{}", run.stderr);
    // In use: see cli_query's a_database_in_use_is_refused_with_a_clear_message.
}

#[test]
fn every_kind_of_index_and_system_collection_passes_when_sound() {
    // Array, nested, compound (unique, with nulls), an index built on a
    // populated collection, a dropped-and-recreated collection, the job
    // queue's own collection: none of it may be reported.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    rt().block_on(async {
        let db = Aurora::open(&dir).await.unwrap();
        let schema = aurora::index::Schema::new()
            .field("tags", FieldDefinition::new(FieldType::Array).indexed())
            .field("room", FieldDefinition::new(FieldType::String))
            .compound_index(["room", "at"], true);
        db.new_collection_with_schema("msgs", schema).await.unwrap();
        let mut docs = Vec::new();
        for i in 0..50 {
            let mut d = doc! { "room": format!("r{}", i % 3), "tags": ["a", "b", format!("t{}", i % 7)], "meta": { "score": i } };
            if i % 5 != 0 {
                d.fields.insert("at".into(), Value::Int(i));
            }
            docs.push(d);
        }
        db.insert_many("msgs", docs).await.unwrap();
        db.create_index("msgs", "meta.score", true).await.unwrap();
        db.query("msgs").filter(|f| f.lt("meta.score", 10)).delete().await.unwrap();
        db.query("msgs").filter(|f| f.eq("room", "r1")).update(aurora::Fields::from([("tags".to_string(), Value::Array(vec![]))])).await.unwrap();
        db.new_collection("gone", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
        db.insert_into("gone", doc! { "x": 1 }).await.unwrap();
        db.drop_collection("gone").await.unwrap();
        db.new_collection("gone", [("x", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
        db.insert_into("gone", doc! { "x": 2 }).await.unwrap();
        let workers = db.workers(aurora::WorkerConfig::default()).await.unwrap();
        workers.register_handler("noop", |_job| async { Ok(()) });
        workers.start().unwrap();
        let id = workers.enqueue(aurora::Job::new("noop")).await.unwrap();
        workers.wait_for(&id, std::time::Duration::from_secs(10)).await.unwrap();
        db.close().await.unwrap();
    });
    cli_support::settle(&dir);
    let run = check(&dir).code(0);
    assert!(run.stdout.contains("collection `msgs`: 40 documents, 3 index(es)"), "{}", run.stdout);
    assert!(run.stdout.contains("collection `_jobs`"), "{}", run.stdout);
    assert!(run.stdout.ends_with("verdict: healthy\n"), "{}", run.stdout);
}
