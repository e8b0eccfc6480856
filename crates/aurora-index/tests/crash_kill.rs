//! Crash test: a child process writes indexed documents (inserts, updates
//! that move values, deletes) while another thread builds and drops indexes
//! online (a plain one and a unique one), until killed with SIGKILL; after
//! reopening, interrupted builds resume and complete, and every index
//! agrees exactly with the documents.
//!
//! Rounds: `AURORA_CRASH_ROUNDS` (default 4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{doc, DocId};
use aurora_index::IndexConfig;
use aurora_testkit::crash::{jitter, CrashTest};
use std::time::Duration;

const CRASH: CrashTest = CrashTest::new("crash_child_entry", "AURORA_INDEX_CRASH_DIR");

#[test]
fn crash_child_entry() {
    let Some(dir) = CRASH.child_dir() else { return };
    let db = common::open(&dir, IndexConfig::default());
    if db.list_collections().is_empty() {
        db.create_collection("users", common::users_schema()).unwrap();
    }
    db.put("users", doc! { "email": "ready@x.io", "age": 1i64 }.id(DocId::text("ready").unwrap())).unwrap();
    println!("ready");
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let id = DocId::text(&format!("u{}", (i * 7 + t) % 200)).unwrap();
                    let r = if i % 5 == 4 {
                        db.delete("users", &id).map(drop)
                    } else {
                        let d = doc! { "email": format!("e{}@x.io", (i * 13 + t) % 150), "age": (i % 40) as i64,
                        "tags": [format!("t{}", i % 6), format!("t{}", (i + t) % 6)],
                        "score": (i % 17) as i64, "nick": format!("n{}", (i * 7 + t) % 200),
                        "address": { "city": format!("c{}", i % 5) } };
                        db.put("users", d.id(id)).map(drop)
                    };
                    match r {
                        Ok(()) | Err(aurora_index::IndexError::UniqueViolation { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let builder = std::thread::spawn(move || loop {
        for (field, unique) in [("score", false), ("nick", true)] {
            match db.create_index("users", field, unique).and_then(|b| b.wait()) {
                Ok(()) | Err(aurora_index::IndexError::DuplicateValues { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        for field in ["score", "nick"] {
            match db.drop_index("users", field) {
                Ok(()) | Err(aurora_index::IndexError::NoIndex { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
    });
    for t in threads {
        t.join().unwrap();
    }
    builder.join().unwrap();
}

#[test]
fn indexes_agree_with_documents_after_sigkill() {
    if CRASH.is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..CRASH.rounds(4) {
        CRASH.spawn(dir.path()).kill_after(Duration::from_millis(50) + jitter(400));
        let db = common::open(dir.path(), IndexConfig::default());
        assert!(db.documents().scan("users").unwrap().count() > 0, "the child wrote something");
        // Builds the kill interrupted were resumed at open: wait for them.
        for (field, index) in db.definition("users").unwrap().indexes {
            if index.state == aurora_index::IndexState::Building {
                db.create_index("users", &field, index.unique).unwrap().wait().unwrap();
            }
        }
        common::check_indexes(&db, "users");
        db.documents().store().close().unwrap();
    }
}
