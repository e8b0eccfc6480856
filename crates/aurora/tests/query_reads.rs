//! Reads that copy and decode less (issue 16, item 3): `count`, `exists`
//! and `ids` of an indexed equality or `in` come from the index without a
//! document read, `collect_shared` hands out the shared copies instead of
//! cloning them, and a long `in` list on an unindexed field is a hash
//! lookup per document — all with the same answers as before.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, FieldDefinition, FieldType, Hint, Value};
use std::sync::Arc;

async fn events() -> Aurora {
    events_in(None).await
}

/// The `events` collection, in `dir` (to reopen) or a temporary database.
async fn events_in(dir: Option<&std::path::Path>) -> Aurora {
    let db = match dir {
        Some(dir) => Aurora::open(dir).await.unwrap(),
        None => Aurora::temporary().await.unwrap(),
    };
    db.new_collection(
        "events",
        [
            ("kind", FieldDefinition::new(FieldType::String).indexed()),
            ("n", FieldDefinition::new(FieldType::Int)),
            ("tags", FieldDefinition::new(FieldType::Array).indexed().nullable()),
        ],
    )
    .await
    .unwrap();
    let docs = (0..2000i64).map(|i| doc! { "kind": format!("k{}", i % 20), "n": i, "tags": [i % 3, i % 5] }).collect();
    db.insert_many("events", docs).await.unwrap();
    db
}

/// Removes one document's body behind the index's back (its index entry
/// stays), so after a reopen (which empties the hot cache) any read of
/// documents misses it and an index-only answer, which reads none, does not.
fn remove_body(db: &Aurora, id: &aurora::DocId) {
    let mut batch = aurora::storage::Batch::new();
    batch.delete(aurora::storage::document_key("events", id));
    db.database().collections().documents().store().commit(batch).unwrap().into_result().unwrap();
}

#[tokio::test]
async fn count_exists_and_ids_of_an_indexed_equality_read_no_document() {
    let dir = tempfile::tempdir().unwrap();
    let db = events_in(Some(dir.path())).await;
    let k3 = db.query("events").filter(|f| f.eq("kind", "k3")).ids().await.unwrap();
    assert_eq!(k3.len(), 100);
    assert_eq!(db.query("events").filter(|f| f.eq("kind", "k3")).hint(Hint::Scan).ids().await.unwrap(), k3);
    let k19 = db.query("events").filter(|f| f.eq("kind", "k19")).ids().await.unwrap();
    let k7 = db.query("events").filter(|f| f.eq("kind", "k7")).hint(Hint::Scan).ids().await.unwrap();
    remove_body(&db, &k3[0]);
    for id in &k19 {
        remove_body(&db, id);
    }
    db.close().await.unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    // Answered from the index alone: the missing bodies are not noticed.
    assert_eq!(db.query("events").filter(|f| f.eq("kind", "k3")).count().await.unwrap(), 100);
    assert_eq!(db.query("events").filter(|f| f.in_values("kind", ["k3", "k4", "k3"])).count().await.unwrap(), 200);
    assert!(db.query("events").filter(|f| f.eq("kind", "k19")).exists().await.unwrap());
    assert!(!db.query("events").filter(|f| f.eq("kind", "nope")).exists().await.unwrap());
    let ids = db.query("events").filter(|f| f.eq("kind", "k7")).offset(10).limit(5).ids().await.unwrap();
    assert_eq!(ids, k7[10..15].to_vec(), "ids in id order, paged");
    // Reading the documents (by scan, or through the same index with a
    // second condition) sees them gone: the shortcut was taken above.
    assert_eq!(db.query("events").filter(|f| f.eq("kind", "k3")).hint(Hint::Scan).count().await.unwrap(), 99);
    assert!(!db.query("events").filter(|f| f.eq("kind", "k19")).hint(Hint::Scan).exists().await.unwrap());
    let read = db.query("events").filter(|f| f.eq("kind", "k3") & f.gte("n", 0)).explain().await.unwrap();
    assert!(matches!(read.access, aurora::Access::Index { .. }), "{read:?}");
    assert_eq!((read.estimated_rows, read.returned_rows), (100, 99), "candidates from the index, one body gone");
    db.close().await.unwrap();
}

#[tokio::test]
async fn collect_shared_hands_out_the_shared_copies() {
    let db = events().await;
    let q = || db.query("events").filter(|f| f.eq("kind", "k1"));
    let owned = q().collect().await.unwrap();
    let shared = q().collect_shared().await.unwrap();
    let again = q().collect_shared().await.unwrap();
    assert_eq!(shared.len(), 100);
    assert_eq!(shared.iter().map(|d| (**d).clone()).collect::<Vec<_>>(), owned);
    assert!(shared.iter().zip(&again).all(|(a, b)| Arc::ptr_eq(a, b)), "the same shared copy, not a clone per call");
    let projected = q().select(["n"]).collect_shared().await.unwrap();
    assert!(projected.iter().all(|d| d.fields.len() == 1));
}

#[tokio::test]
async fn a_long_in_list_on_an_unindexed_field_is_a_lookup_per_document() {
    let db = events().await;
    // 200 000 values, 2 000 documents: 4 × 10^8 comparisons as a list.
    let values: Vec<Value> = (0..200_000i64).map(|i| Value::Int(i * 7)).collect();
    let started = std::time::Instant::now();
    let got = db.query("events").filter(|f| f.in_values("n", values.clone())).count().await.unwrap();
    let took = started.elapsed();
    assert_eq!(got, (0..2000).filter(|i| i % 7 == 0).count() as u64);
    // Mixed numbers compare numerically, as in the list form.
    let floats = vec![Value::Float(14.0), Value::Int(21), Value::Float(21.0), Value::Float(0.5)];
    let floats: Vec<Value> = floats.into_iter().chain((0..20).map(|i| Value::Int(-i - 1))).collect();
    assert_eq!(db.query("events").filter(|f| f.in_values("n", floats)).count().await.unwrap(), 2);
    eprintln!("in with 200 000 values over 2 000 documents: {took:?}");
}

/// Index reads hand the query each entry's id as key bytes and the
/// documents are fetched by key (no id built per entry): every path that
/// reads an index — an equality read, an ordered walk, an `in`, `count`,
/// `ids`, `stream`, and a query inside a recording (`Serializable`)
/// transaction with its own write — returns what a scan returns. An entry
/// whose id bytes are no id's (a text id with a NUL) is still a typed
/// `Corrupt` error on every one of those paths, never a silently skipped
/// document.
#[tokio::test]
async fn index_reads_fetch_by_key_and_still_refuse_a_damaged_id() {
    let db = events().await;
    let by_scan = db.query("events").filter(|f| f.eq("kind", "k3")).hint(Hint::Scan).collect().await.unwrap();
    assert_eq!(db.query("events").filter(|f| f.eq("kind", "k3")).collect().await.unwrap(), by_scan);
    let newest = db.query("events").order_by("kind", aurora::Order::Desc).limit(3).collect().await.unwrap();
    assert!(newest.iter().all(|d| d.get("kind") == Some(&Value::from("k9"))), "{newest:?}");
    let streamed: Vec<_> =
        db.query("events").filter(|f| f.eq("kind", "k3")).stream().unwrap().map(|d| d.unwrap()).collect();
    assert_eq!(streamed, by_scan);
    let written = by_scan[0].id.clone();
    let first = written.clone();
    let seen = db
        .transaction(move |tx| {
            tx.update("events", &first, [("n".to_string(), Value::Int(-1))].into())?;
            let q = aurora::query_engine::Query::new("events").filter(|f| f.eq("kind", "k3"));
            Ok(q.collect(tx)?)
        })
        .await
        .unwrap();
    assert_eq!(seen.len(), 100);
    assert_eq!(seen.iter().find(|d| d.id == written).and_then(|d| d.get("n")), Some(&Value::Int(-1)), "own write");
    // An entry of `k3` whose id is the text "a\0b" (tag 2, then the bytes).
    let damaged =
        [b"xevents\0kind\0".as_slice(), &aurora::index::keycodec::encode(&"k3".into()), b"\x02a\x00b"].concat();
    let mut batch = aurora::storage::Batch::new();
    batch.put(damaged, Vec::new());
    db.database().collections().documents().store().commit(batch).unwrap().into_result().unwrap();
    let corrupt = |r: aurora::Result<String>| match r {
        Err(e) => e.to_string().contains("index entry"),
        Ok(_) => false,
    };
    let k3 = || db.query("events").filter(|f| f.eq("kind", "k3"));
    assert!(corrupt(k3().collect().await.map(|d| format!("{d:?}"))));
    assert!(corrupt(k3().count().await.map(|n| n.to_string())));
    assert!(corrupt(k3().ids().await.map(|ids| format!("{ids:?}"))));
    assert!(corrupt(
        db.query("events").filter(|f| f.in_values("kind", ["k3", "k4"])).collect().await.map(|d| format!("{d:?}"))
    ));
    assert!(corrupt(k3().stream().and_then(|s| s.collect::<aurora::Result<Vec<_>>>()).map(|d| format!("{d:?}"))));
    let walk = db.query("events").filter(|f| f.gte("kind", "k3")).order_by("kind", aurora::Order::Asc).limit(200);
    assert!(corrupt(walk.collect().await.map(|d| format!("{d:?}"))));
}
