//! Hostile review of the sled tree layout (branch s8-disk) from the
//! database handle: more collections, indexes and unique indexes than the
//! backend has trees (150 collections × documents, index entries, unique
//! claims = 450 prefixes against 256 trees), so some collections live in
//! trees and the others in sled's default tree; queries by index, unique
//! violations and the change feed's resume are the same on both sides of
//! the cap and across reopens; collections dropped (with enough deletes for
//! a tombstone purge, so their trees are emptied and dropped at the next
//! open) and created again under the same names work as new ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, Document, Error, FieldDefinition, Value};
use std::collections::BTreeMap;

const COLLECTIONS: usize = 150;
const DOCS: i64 = 4;

fn config(dir: &std::path::Path) -> AuroraConfig {
    AuroraConfig { cold_flush_interval_ms: 50, ..AuroraConfig::new(dir) }
}

fn name(i: usize) -> String {
    format!("col{i:03}")
}

async fn create(db: &Aurora, i: usize, docs: i64, tag: &str) {
    db.new_collection(&name(i), Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    db.create_index(&name(i), "age", false).await.unwrap();
    db.create_index(&name(i), "email", true).await.unwrap();
    let batch: Vec<Document> =
        (0..docs).map(|j| doc! { "age": j % 10, "email": format!("{tag}{i}-{j}@x"), "i": i as i64 }).collect();
    db.insert_many(&name(i), batch).await.unwrap();
}

/// Collection `i` answers by its indexes and refuses a duplicate unique
/// value: `docs` documents tagged `tag`.
async fn check(db: &Aurora, i: usize, docs: i64, tag: &str) {
    let c = name(i);
    assert_eq!(db.query(&c).count().await.unwrap(), docs as u64, "{c}: count");
    let by_age = db.query(&c).filter(|f| f.eq("age", 2)).count().await.unwrap();
    assert_eq!(by_age, (0..docs).filter(|j| j % 10 == 2).count() as u64, "{c}: by the age index");
    let email = format!("{tag}{i}-1@x");
    let found = db.query(&c).filter(|f| f.eq("email", email.as_str())).collect().await.unwrap();
    assert_eq!(found.len(), 1, "{c}: by the unique index");
    assert_eq!(found[0].get("i"), Some(&Value::Int(i as i64)));
    let dup = db.insert_into(&c, doc! { "age": 1, "email": email.as_str() }).await;
    assert!(matches!(dup, Err(Error::UniqueViolation { .. })), "{c}: duplicate accepted: {dup:?}");
    assert_eq!(db.query(&c).count().await.unwrap(), docs as u64, "{c}: the refused insert wrote nothing");
}

/// Sample of collections: the first ones (in trees), the last ones (past the cap).
const SAMPLE: [usize; 8] = [0, 1, 2, 3, 40, 85, 120, 149];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_on_both_sides_of_the_tree_cap_survive_reopens_drops_and_recreation() {
    let dir = tempfile::tempdir().unwrap();
    let mut sizes: BTreeMap<usize, (i64, String)> = BTreeMap::new();
    let (mid, events_after_mid) = {
        let db = Aurora::with_config(config(dir.path())).await.unwrap();
        // The first three are big: dropping them deletes enough for a purge.
        for i in 0..COLLECTIONS {
            let docs = if i < 3 { 3_500 } else { DOCS };
            create(&db, i, docs, "a").await;
            sizes.insert(i, (docs, "a".into()));
        }
        for &i in &SAMPLE {
            check(&db, i, sizes[&i].0, "a").await;
        }
        let mid = db.feed_head().unwrap();
        for i in (0..COLLECTIONS).step_by(10) {
            db.insert_into(&name(i), doc! { "age": 99, "email": format!("late{i}@x") }).await.unwrap();
        }
        let events: Vec<u64> = db.changes_since(mid).await.unwrap().iter().map(|e| e.sequence).collect();
        assert_eq!(events.len(), COLLECTIONS / 10);
        db.close().await.unwrap();
        (mid, events)
    };
    for i in (0..COLLECTIONS).step_by(10) {
        sizes.get_mut(&i).unwrap().0 += 1;
    }
    {
        let db = Aurora::with_config(config(dir.path())).await.unwrap();
        let resumed: Vec<u64> = db.changes_since(mid).await.unwrap().iter().map(|e| e.sequence).collect();
        assert_eq!(resumed, events_after_mid, "the feed resumes after a restart");
        for &i in &SAMPLE {
            check(&db, i, sizes[&i].0, "a").await;
        }
        // Drop the big ones (10 500+ deletes: the tombstones are purged by the next checkpoint).
        for i in 0..3 {
            db.drop_collection(&name(i)).await.unwrap();
            sizes.remove(&i);
        }
        assert_eq!(db.list_collections().unwrap().len(), COLLECTIONS - 3);
        db.close().await.unwrap();
    }
    {
        // Their emptied trees are dropped at this open; the names are created again.
        let db = Aurora::with_config(config(dir.path())).await.unwrap();
        for i in 0..3 {
            assert!(db.query(&name(i)).count().await.is_err(), "{} was dropped", name(i));
            create(&db, i, 7, "b").await;
            sizes.insert(i, (7, "b".into()));
        }
        // And one more, new, past every other prefix.
        create(&db, 999, 5, "n").await;
        for (&i, (docs, tag)) in &sizes {
            if SAMPLE.contains(&i) || i == 999 {
                check(&db, i, *docs, tag).await;
            }
        }
        check(&db, 999, 5, "n").await;
        db.close().await.unwrap();
    }
    let db = Aurora::with_config(config(dir.path())).await.unwrap();
    for &i in SAMPLE.iter().chain(&[999]) {
        let (docs, tag) = if i == 999 { (5, "n".to_string()) } else { sizes[&i].clone() };
        check(&db, i, docs, &tag).await;
    }
    let all = db.changes_since(0).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].sequence <= w[1].sequence), "the feed stays in order");
    assert_eq!(db.list_collections().unwrap().len(), COLLECTIONS + 1);
    // A backup of it opens and answers the same.
    let backup = tempfile::tempdir().unwrap();
    let copy_dir = backup.path().join("copy");
    db.backup_to(&copy_dir).await.unwrap();
    db.close().await.unwrap();
    let copy = Aurora::with_config(config(&copy_dir)).await.unwrap();
    for &i in &[0usize, 2, 3, 149, 999] {
        let (docs, tag) = if i == 999 { (5, "n".to_string()) } else { sizes[&i].clone() };
        check(&copy, i, docs, &tag).await;
    }
    copy.close().await.unwrap();
}

/// A search index on a collection in a tree and one on a collection past
/// the cap: caught up from the feed after a reopen, and rebuilt from the
/// documents when created again on the reopened database.
#[cfg(feature = "search")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_indexes_on_both_sides_of_the_tree_cap_catch_up_and_rebuild() {
    use aurora::SearchOptions;
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Aurora::with_config(config(dir.path())).await.unwrap();
        for i in 0..COLLECTIONS {
            create(&db, i, 2, "a").await;
        }
        for i in [0, 149] {
            db.create_search_index(&name(i), ["body"], SearchOptions::default()).await.unwrap();
            db.insert_into(&name(i), doc! { "body": "first words", "email": format!("s{i}@x") }).await.unwrap();
        }
        db.close().await.unwrap();
    }
    let db = Aurora::with_config(config(dir.path())).await.unwrap();
    for i in [0, 149] {
        db.insert_into(&name(i), doc! { "body": "second words", "email": format!("t{i}@x") }).await.unwrap();
        let found = db.search(&name(i), "words").consistent().run().await.unwrap();
        assert_eq!(found.hits.len(), 2, "{}: caught up and current", name(i));
        assert!(db.drop_search_index(&name(i)).await.unwrap());
        db.create_search_index(&name(i), ["body"], SearchOptions::default()).await.unwrap();
        let found = db.search(&name(i), "words").consistent().run().await.unwrap();
        assert_eq!(found.hits.len(), 2, "{}: rebuilt from the documents", name(i));
    }
    db.close().await.unwrap();
}
