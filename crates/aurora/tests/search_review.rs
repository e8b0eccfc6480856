//! Hostile review of full-text search on the database: concurrent
//! writers, searches and drops; an index created on a big collection while
//! writes continue; a new index built from the collection, not from
//! history (which the feed may not hold); an index left behind while the
//! feed was off, or with unreadable files, is rebuilt at open; extreme
//! windows; concurrent creates.
//!
//! Sizes: `AURORA_SEARCH_REVIEW_DOCS` (default 3 000).
#![cfg(feature = "search")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, DocId, Error, SearchError, SearchOptions};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn docs_count() -> usize {
    std::env::var("AURORA_SEARCH_REVIEW_DOCS").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000)
}

const WORDS: [&str; 8] = ["amber", "basil", "cedar", "dune", "ember", "fern", "gale", "heron"];

fn body(i: usize) -> String {
    format!("{} {} message {i}", WORDS[i % 8], WORDS[(i / 8) % 8])
}

/// The ids of the collection's documents whose `body` has `word`.
async fn expected(db: &Aurora, collection: &str, word: &str) -> BTreeSet<DocId> {
    db.query(collection)
        .collect()
        .await
        .unwrap()
        .iter()
        .filter(|d| d.get("body").and_then(|v| v.as_str()).is_some_and(|b| b.split(' ').any(|w| w == word)))
        .map(|d| d.id.clone())
        .collect()
}

async fn found(db: &Aurora, collection: &str, word: &str) -> BTreeSet<DocId> {
    let r = db.search(collection, word).consistent().limit(1_000_000).run().await.unwrap();
    r.hits.iter().map(|h| h.document.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_index_on_a_big_collection_while_writes_continue() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("m", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    let n = docs_count();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let docs = chunk.iter().map(|&i| doc! { "body": body(i) }.id(DocId::text(&format!("d{i}")).unwrap())).collect();
        db.insert_many("m", docs).await.unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let k = DocId::text(&format!("d{}", (i * 7919) % (n + 200))).unwrap();
                if i.is_multiple_of(5) {
                    db.delete_document("m", &k).await.unwrap();
                } else {
                    db.upsert("m", doc! { "body": body(i + 3) }.id(k)).await.unwrap();
                }
                i += 1;
                tokio::task::yield_now().await;
            }
            i
        })
    };
    db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
    // Searches while the writes go on never fail.
    for w in WORDS {
        db.search("m", w).limit(50).run().await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(writes > 0);
    for w in WORDS {
        assert_eq!(found(&db, "m", w).await, expected(&db, "m", w).await, "`{w}` after {writes} concurrent writes");
    }
    let status = db.search_index_status("m").unwrap();
    assert_eq!(status.documents, db.query("m").collect().await.unwrap().len() as u64);
    assert_eq!(status.rebuilds, 0, "building a new index is not a rebuild");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_searches_and_index_drops() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("m", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..2usize {
        let (db, stop) = (db.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let k = DocId::text(&format!("w{t}-{}", i % 300)).unwrap();
                db.upsert("m", doc! { "body": body(i) }.id(k)).await.unwrap();
                i += 1;
                // A write that completes at once does not yield: without
                // this, two writers hold both runtime threads.
                tokio::task::yield_now().await;
            }
        }));
    }
    {
        let (db, stop) = (db.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match db.search("m", "amber OR dune*").limit(20).run().await {
                    Ok(_) | Err(Error::Search(SearchError::NoIndex { .. })) => {}
                    Err(e) => panic!("search during drops: {e:?}"),
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for round in 0..6 {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        assert!(db.drop_search_index("m").await.unwrap(), "round {round}");
        let (a, b) = tokio::join!(
            db.create_search_index("m", ["body"], SearchOptions::default()),
            db.create_search_index("m", ["body"], SearchOptions::default())
        );
        a.unwrap();
        b.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    for w in WORDS {
        assert_eq!(found(&db, "m", w).await, expected(&db, "m", w).await, "`{w}`");
    }
    // Dropping the collection while its index follows it.
    db.drop_collection("m").await.unwrap();
    assert!(matches!(db.search("m", "amber").run().await, Err(Error::Search(SearchError::NoIndex { .. }))));
    db.new_collection("m", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    db.insert_into("m", doc! { "body": "fresh amber" }).await.unwrap();
    db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
    assert_eq!(found(&db, "m", "amber").await.len(), 1, "nothing of the dropped collection");
}

#[tokio::test]
async fn a_new_index_is_built_from_the_collection_not_from_history() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Written with the change feed off: the feed never holds these.
        let mut config = AuroraConfig::new(dir.path());
        config.change_feed_retention = 0;
        let db = Aurora::with_config(config).await.unwrap();
        db.new_collection("m", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
        for i in 0..20 {
            db.insert_into("m", doc! { "body": body(i) }).await.unwrap();
        }
        db.close().await.unwrap();
    }
    let db = Aurora::open(dir.path()).await.unwrap();
    db.insert_into("m", doc! { "body": "amber later" }).await.unwrap();
    db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
    assert_eq!(db.search_index_status("m").unwrap().documents, 21);
    for w in WORDS {
        assert_eq!(found(&db, "m", w).await, expected(&db, "m", w).await, "`{w}`");
    }
}

#[tokio::test]
async fn an_index_left_behind_while_the_feed_was_off_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Aurora::open(dir.path()).await.unwrap();
        db.new_collection("m", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
        db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
        db.insert_into("m", doc! { "body": "amber before" }).await.unwrap();
        db.search_caught_up("m").await.unwrap();
        db.close().await.unwrap();
    }
    {
        let mut config = AuroraConfig::new(dir.path());
        config.change_feed_retention = 0;
        let db = Aurora::with_config(config).await.unwrap();
        db.insert_into("m", doc! { "body": "amber unseen" }).await.unwrap();
        assert!(matches!(db.search("m", "amber").run().await, Err(Error::Search(SearchError::FeedOff))));
        db.close().await.unwrap();
    }
    let db = Aurora::open(dir.path()).await.unwrap();
    assert_eq!(db.search_index_status("m").unwrap().documents, 2);
    assert_eq!(found(&db, "m", "amber").await, expected(&db, "m", "amber").await);
    assert_eq!(found(&db, "m", "unseen").await.len(), 1);
    db.close().await.unwrap();
    // Rebuilt once; the next open follows the feed again.
    let db = Aurora::open(dir.path()).await.unwrap();
    assert_eq!(db.search_index_status("m").unwrap().rebuilds, 0);
}

#[tokio::test]
async fn unreadable_index_files_are_rebuilt_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Aurora::open(dir.path()).await.unwrap();
        db.new_collection("m", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
        db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
        for i in 0..10 {
            db.insert_into("m", doc! { "body": body(i) }).await.unwrap();
        }
        db.search_caught_up("m").await.unwrap();
        db.close().await.unwrap();
    }
    let index_dir = std::fs::read_dir(dir.path().join("search")).unwrap().next().unwrap().unwrap().path();
    std::fs::write(index_dir.join("meta.json"), b"{ torn").unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    assert_eq!(db.search_index_status("m").unwrap().documents, 10);
    for w in WORDS {
        assert_eq!(found(&db, "m", w).await, expected(&db, "m", w).await, "`{w}`");
    }
}

#[tokio::test]
async fn extreme_windows_are_bounded() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("m", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
    for i in 0..30 {
        db.insert_into("m", doc! { "room": (i % 2) as i64, "body": body(i) }).await.unwrap();
    }
    let all = db.search("m", "message").consistent().limit(usize::MAX).run().await.unwrap();
    assert_eq!(all.hits.len(), 30);
    let none = db.search("m", "message").offset(usize::MAX).limit(usize::MAX).run().await.unwrap();
    assert!(none.hits.is_empty());
    let filtered =
        db.search("m", "message").filter(|f| f.eq("room", 1i64)).offset(3).limit(usize::MAX).run().await.unwrap();
    assert_eq!(filtered.hits.len(), 12);
    assert!(db.search("m", "message").limit(0).run().await.unwrap().hits.is_empty());
}

#[tokio::test]
async fn unknown_and_odd_fields() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("m", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    db.create_search_index("m", ["body", "meta.title"], SearchOptions::default()).await.unwrap();
    db.insert_into("m", doc! { "body": { "not": "text" }, "meta": { "title": "amber" } }).await.unwrap();
    db.insert_into("m", doc! { "body": [1, 2, "amber"], "meta": "flat" }).await.unwrap();
    assert_eq!(db.search("m", "amber").consistent().run().await.unwrap().hits.len(), 2);
    assert_eq!(db.search("m", "amber").field("meta.title").run().await.unwrap().hits.len(), 1);
    for field in ["meta", "title", "body.not", ""] {
        assert!(
            matches!(
                db.search("m", "amber").field(field).run().await,
                Err(Error::Search(SearchError::UnknownField { .. }))
            ),
            "`{field}`"
        );
    }
    // Only-operator and empty searches are typed errors before any work.
    for q in ["", "OR", "AND b", "(", "\"", "a~9", "-"] {
        assert!(matches!(db.search("m", q).run().await, Err(Error::Search(SearchError::Parse { .. }))), "`{q}`");
    }
}
