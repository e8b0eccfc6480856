//! Crash test: a child process writes, updates and deletes documents (and
//! rolls transactions back) in a collection with a search index, which its
//! follower keeps committing, until killed with SIGKILL; after reopening,
//! the index holds exactly the committed documents (caught up from the
//! feed, or rebuilt if it was ahead of what the database kept).
//!
//! A second child builds an index over a big collection and bulk-writes
//! (several commits per tantivy commit) until killed, the same way.
//!
//! Rounds: `AURORA_CRASH_ROUNDS` (default 3).
#![cfg(feature = "search")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, DocId, SearchOptions};
use aurora_testkit::crash::CrashTest;
use std::collections::BTreeSet;
use std::time::Duration;

const CRASH: CrashTest = CrashTest::new("crash_child_entry", "AURORA_SEARCH_CRASH_DIR");
const BULK_CRASH: CrashTest = CrashTest::new("bulk_crash_child_entry", "AURORA_SEARCH_BULK_CRASH_DIR");
const WORDS: [&str; 8] = ["amber", "basil", "cedar", "dune", "ember", "fern", "gale", "heron"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_entry() {
    let Some(dir) = CRASH.child_dir() else { return };
    let db = Aurora::open(dir).await.unwrap();
    db.ensure_collection("m", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
    println!("ready");
    let mut seed = std::process::id() as u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        seed >> 33
    };
    loop {
        let k = DocId::text(&format!("d{}", next() % 300)).unwrap();
        let body: Vec<&str> = (0..1 + next() % 4).map(|_| WORDS[(next() % 8) as usize]).collect();
        match next() % 6 {
            0 => {
                db.delete_document("m", &k).await.unwrap();
            }
            1 => {
                let mut tx = db.begin().unwrap();
                tx.upsert("m", doc! { "body": "rolledback ".to_string() + &body.join(" ") }.id(k)).unwrap();
                tx.rollback();
            }
            _ => db.upsert("m", doc! { "body": body.join(" ") }.id(k)).await.unwrap(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_index_equals_committed_documents_after_sigkill() {
    if CRASH.is_child() || BULK_CRASH.is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for round in 0..CRASH.rounds(3) {
        CRASH.spawn(dir.path()).kill_after(Duration::from_millis(150 + u64::from(round) * 137 % 400));

        let db = Aurora::open(dir.path()).await.unwrap();
        let docs = db.query("m").collect().await.unwrap();
        assert!(!docs.is_empty(), "the child wrote something");
        let status = db.search_index_status("m").unwrap();
        eprintln!("round {round}: {} documents, index {status:?}", docs.len());
        assert_eq!(status.documents, docs.len() as u64, "round {round}: {status:?}");
        // Nothing of the collection was left to apply (the head may be
        // further on: opening writes to the store, e.g. trimming the feed).
        let head = db.feed_head().unwrap();
        assert!(db.search_caught_up("m").await.unwrap() >= head);
        assert_eq!(db.search_index_status("m").unwrap().documents, docs.len() as u64, "round {round}");
        // Searches run without `consistent()`: the index caught up at open.
        for word in WORDS.iter().chain(["rolledback"].iter()) {
            let expected: BTreeSet<DocId> = docs
                .iter()
                .filter(|d| d.get("body").and_then(|v| v.as_str()).is_some_and(|b| b.split(' ').any(|w| w == *word)))
                .map(|d| d.id.clone())
                .collect();
            let found = db.search("m", word).limit(10_000).run().await.unwrap();
            let found: BTreeSet<DocId> = found.hits.iter().map(|h| h.document.id.clone()).collect();
            assert_eq!(found, expected, "round {round}: `{word}`");
        }
        db.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_crash_child_entry() {
    let Some(dir) = BULK_CRASH.child_dir() else { return };
    let db = Aurora::open(dir).await.unwrap();
    db.ensure_collection("m", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    let mut seed = std::process::id() as u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut body = move || (0..2 + next() % 6).map(|_| WORDS[(next() % 8) as usize]).collect::<Vec<_>>().join(" ");
    // A collection big enough that building its index takes a while.
    if db.search_index_status("m").is_err() {
        for _ in 0..4 {
            db.insert_many("m", (0..1000).map(|_| doc! { "body": body() }).collect()).await.unwrap();
        }
    }
    println!("ready");
    db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
    let mut round = 0u64;
    loop {
        // Bulk inserts, rewrites of existing documents and deletes, as
        // fast as the follower batches them.
        db.insert_many("m", (0..300).map(|_| doc! { "body": body() }).collect()).await.unwrap();
        let some = db.query("m").limit(50).collect().await.unwrap();
        let mut tx = db.begin().unwrap();
        for (i, d) in some.iter().enumerate() {
            if i % 3 == 0 {
                tx.delete("m", &d.id).unwrap();
            } else {
                tx.upsert("m", doc! { "body": body() }.id(d.id.clone())).unwrap();
            }
        }
        if round % 4 == 3 {
            tx.rollback();
        } else {
            tx.commit().await.unwrap();
        }
        round += 1;
    }
}

/// Kills a child while it builds an index over 4 000 documents or while
/// it bulk-writes (several commits per tantivy commit), repeatedly on the
/// same folder; after each reopen the index holds exactly the committed
/// documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_index_equals_committed_documents_after_sigkill_during_bulk_indexing() {
    if CRASH.is_child() || BULK_CRASH.is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for round in 0..CRASH.rounds(3) {
        BULK_CRASH.spawn(dir.path()).kill_after(Duration::from_millis(50 + u64::from(round) * 211 % 700));

        let db = Aurora::open(dir.path()).await.unwrap();
        let docs = db.query("m").collect().await.unwrap();
        let Ok(status) = db.search_index_status("m") else {
            // Killed before the index's definition was written.
            db.close().await.unwrap();
            continue;
        };
        eprintln!("round {round}: {} documents, index {status:?}", docs.len());
        assert_eq!(status.documents, docs.len() as u64, "round {round}: {status:?}");
        for word in WORDS {
            let expected: BTreeSet<DocId> = docs
                .iter()
                .filter(|d| d.get("body").and_then(|v| v.as_str()).is_some_and(|b| b.split(' ').any(|w| w == word)))
                .map(|d| d.id.clone())
                .collect();
            let found = db.search("m", word).limit(1_000_000).run().await.unwrap();
            let found: BTreeSet<DocId> = found.hits.iter().map(|h| h.document.id.clone()).collect();
            assert_eq!(found, expected, "round {round}: `{word}`");
        }
        db.close().await.unwrap();
    }
}
