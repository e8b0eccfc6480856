//! Crash test for schema evolution: a child process writes documents (some
//! that fit the tighter schema, some that do not; keys that sometimes
//! collide) while another thread changes the schema back and forth between
//! a loose one and a tight one (a required int, a unique field, a new
//! index) under every policy, until killed with SIGKILL. After reopening,
//! the collection has one of the two schemas — never a pending change or a
//! mixture — every index is ready and agrees exactly with the documents, a
//! unique field holds no value twice, and a schema marked validated is
//! fitted by every document.
//!
//! Rounds: `AURORA_CRASH_ROUNDS` (default 4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{doc, DocId, FieldDefinition, FieldType};
use aurora_index::{Existing, IndexConfig, IndexError, IndexState, Schema};
use aurora_testkit::crash::{jitter, CrashTest};
use std::time::Duration;

const CRASH: CrashTest = CrashTest::new("schema_crash_child_entry", "AURORA_SCHEMA_CRASH_DIR");

fn loose() -> Schema {
    Schema::new().field("k", FieldDefinition::new(FieldType::String).indexed().nullable())
}

fn tight() -> Schema {
    Schema::new()
        .field("k", FieldDefinition::new(FieldType::String).unique())
        .field("n", FieldDefinition::new(FieldType::Int).indexed())
}

#[test]
fn schema_crash_child_entry() {
    let Some(dir) = CRASH.child_dir() else { return };
    let db = common::open(&dir, IndexConfig::default());
    if db.list_collections().is_empty() {
        db.create_collection("c", loose()).unwrap();
        // Enough documents that a change's check takes a while, so kills
        // often land inside one.
        for i in 0..500u32 {
            db.put("c", doc! { "k": format!("s{i}"), "n": i64::from(i) }.id(DocId::text(&format!("s{i}")).unwrap()))
                .unwrap();
        }
    }
    println!("ready");
    let writers: Vec<_> = (0..2u32)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut i: u32 = t * 7919 + 1;
                loop {
                    i ^= i << 13;
                    i ^= i >> 17;
                    i ^= i << 5;
                    let id = DocId::text(&format!("d{}", i % 300)).unwrap();
                    let key = format!("k{}", (i >> 9) % 5_000);
                    let d = match i % 13 {
                        0 => doc! { "k": key, "n": "not an int" },
                        _ => doc! { "k": key, "n": i64::from(i % 100) },
                    };
                    let r = if i.is_multiple_of(7) {
                        db.delete("c", &id).map(drop)
                    } else {
                        db.put("c", d.id(id)).map(drop)
                    };
                    match r {
                        Ok(()) | Err(IndexError::UniqueViolation { .. } | IndexError::WrongType { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let changer = std::thread::spawn(move || {
        for round in 0u32.. {
            let policy = [Existing::Validate, Existing::Fail, Existing::Skip][round as usize % 3];
            let schema = if round % 2 == 0 { tight() } else { loose() };
            match db.alter_schema("c", schema, policy) {
                Ok(_) | Err(IndexError::SchemaChangeRefused { .. } | IndexError::DuplicateValues { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
    });
    for w in writers {
        w.join().unwrap();
    }
    changer.join().unwrap();
}

#[test]
fn a_schema_change_killed_midway_leaves_the_old_or_the_new_schema() {
    if CRASH.is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..CRASH.rounds(4) {
        CRASH.spawn(dir.path()).kill_after(Duration::from_millis(100) + jitter(400));
        let db = common::open(dir.path(), IndexConfig::default());
        let def = db.definition("c").unwrap();
        assert!(def.pending.is_none(), "an interrupted change is rolled back at open");
        assert!(def.schema == loose() || def.schema == tight(), "old or new, never between: {:?}", def.schema);
        for (name, index) in &def.indexes {
            assert_eq!(index.state, IndexState::Ready, "{name}: only a pending change builds here");
        }
        let declared: Vec<&str> = def.schema.indexed_fields().map(|(p, _)| p).collect();
        assert_eq!(def.indexes.keys().map(String::as_str).collect::<Vec<_>>(), declared, "indexes = the schema's");
        common::check_indexes(&db, "c");
        if def.indexes.get("k").is_some_and(|i| i.unique) {
            common::check_unique(&db, "c", "k");
        }
        if def.validated {
            for d in db.documents().scan("c").unwrap().map(Result::unwrap) {
                def.schema.validate("c", &d).unwrap_or_else(|e| panic!("validated, yet {} does not fit: {e}", d.id));
            }
        }
        db.documents().store().close().unwrap();
    }
}
