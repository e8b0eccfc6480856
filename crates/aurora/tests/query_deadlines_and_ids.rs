//! From the issue-21 review, on the library side: a query stops at its
//! deadline or when cancelled (and stops working, not only answering);
//! filters on `_id` match ids (and read them by id); a field name holding a
//! comma never clashes with a compound index; an update that changes
//! nothing writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::query_engine::QueryError;
use aurora::{doc, Access, Aurora, CancelToken, DocId, Error, FieldDefinition, FieldType, Order, Update, Value, F};
use std::time::{Duration, Instant};

/// `n` documents with a 2 000-letter field `s`, and a filter that tests
/// each against `branches` substrings (none matches): a scan that takes a
/// while.
async fn expensive(n: usize, branches: usize) -> (Aurora, aurora::Filter) {
    let db = Aurora::temporary().await.unwrap();
    create(&db, "big").await;
    let mut seed = 3u64;
    let mut text = || -> String {
        (0..2000)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (b'a' + ((seed >> 33) % 8) as u8) as char
            })
            .collect()
    };
    for chunk in 0..n / 500 {
        let docs = (0..500).map(|i| doc! { "n": (chunk * 500 + i) as i64, "s": text() }).collect();
        db.insert_many("big", docs).await.unwrap();
    }
    let filter = aurora::Filter::Or((0..branches).map(|i| F.contains("s", &format!("zq{i}x"))).collect());
    (db, filter)
}

/// A schemaless collection.
async fn create(db: &Aurora, name: &str) {
    db.new_collection(name, Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
}

fn timed_out<T: std::fmt::Debug>(r: aurora::Result<T>) -> bool {
    matches!(r, Err(Error::Query(QueryError::TimedOut)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_stops_at_its_deadline_in_every_terminal() {
    let (db, filter) = expensive(5_000, 200).await;
    // How long the whole scan takes, for scale.
    let t = Instant::now();
    assert_eq!(db.query("big").where_filter(filter.clone()).count().await.unwrap(), 0);
    let full = t.elapsed();
    let limit = Duration::from_millis(20);
    let q = || db.query("big").where_filter(filter.clone()).timeout(limit);
    let within = |t: Instant, what: &str| {
        let took = t.elapsed();
        assert!(
            took < limit + full / 2 + Duration::from_millis(200),
            "{what}: stopped after {took:?} (full scan {full:?})"
        );
    };
    let t = Instant::now();
    assert!(timed_out(q().collect().await), "collect");
    within(t, "collect");
    let t = Instant::now();
    assert!(timed_out(q().order_by("n", Order::Desc).limit(5).collect().await), "ordered");
    within(t, "ordered");
    let t = Instant::now();
    assert!(timed_out(q().count().await), "count");
    within(t, "count");
    let t = Instant::now();
    assert!(timed_out(q().explain().await), "explain");
    within(t, "explain");
    let t = Instant::now();
    assert!(timed_out(q().aggregate(None, &[aurora::Aggregate::Count]).await), "aggregate");
    within(t, "aggregate");
    let t = Instant::now();
    assert!(timed_out(q().page().await), "page");
    within(t, "page");
    // The lazy iterator ends with the error too.
    let t = Instant::now();
    let mut it = q().stream().unwrap();
    assert!(matches!(it.next(), Some(Err(Error::Query(QueryError::TimedOut)))));
    within(t, "stream");
    // A live query's initial load.
    let t = Instant::now();
    assert!(timed_out(q().watch().await.map(|_| ())), "watch");
    within(t, "watch");
    // A deadline already past: nothing is read.
    let past = Instant::now().checked_sub(Duration::from_millis(1)).unwrap();
    assert!(timed_out(db.query("big").deadline(past).first().await));
    // Time to spare: the same queries answer.
    let ok = db.query("big").where_filter(F.eq("n", 7)).timeout(Duration::from_secs(60));
    assert_eq!(ok.clone().count().await.unwrap(), 1);
    assert_eq!(ok.collect().await.unwrap().len(), 1);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_query_stops_and_frees_its_thread() {
    let (db, filter) = expensive(5_000, 200).await;
    let token = CancelToken::new();
    let q = db.query("big").where_filter(filter.clone()).order_by("s", Order::Asc).cancel_token(token.clone());
    let running = tokio::spawn(q.collect());
    tokio::time::sleep(Duration::from_millis(30)).await;
    let t = Instant::now();
    token.cancel();
    let r = running.await.unwrap();
    assert!(matches!(r, Err(Error::Query(QueryError::Cancelled))), "{r:?}");
    assert!(t.elapsed() < Duration::from_millis(500), "stopped {:?} after the cancel", t.elapsed());
    // A cancelled token stops every query holding it, at once.
    let t = Instant::now();
    let again = db.query("big").where_filter(filter).cancel_token(token).count().await;
    assert!(matches!(again, Err(Error::Query(QueryError::Cancelled))), "{again:?}");
    assert!(t.elapsed() < Duration::from_millis(200));
    db.close().await.unwrap();
}

/// The deadline bounds a live query's initial load only: once started it
/// follows commits, and re-runs (a window refilling) after the deadline
/// still work.
#[tokio::test]
async fn a_live_querys_deadline_bounds_only_its_start() {
    let db = Aurora::temporary().await.unwrap();
    create(&db, "c").await;
    for i in 0..5 {
        db.insert_into("c", doc! { "n": i }).await.unwrap();
    }
    let mut w =
        db.query("c").order_by("n", Order::Asc).limit(2).timeout(Duration::from_millis(200)).watch().await.unwrap();
    assert_eq!(w.results().count(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Delete both members: the window refills by re-reading.
    let ids: Vec<DocId> = w.results().map(|d| d.id.clone()).collect();
    for id in &ids {
        db.delete_document("c", id).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while w.results().any(|d| ids.contains(&d.id)) || w.results().count() < 2 {
        assert!(Instant::now() < deadline, "the window did not refill");
        let _ = tokio::time::timeout(Duration::from_millis(200), w.recv()).await;
    }
    let ns: Vec<&Value> = w.results().filter_map(|d| d.get("n")).collect();
    assert_eq!(ns, [&Value::Int(2), &Value::Int(3)]);
    db.close().await.unwrap();
}

// ---- filters on `_id` ----------------------------------------------------------

#[tokio::test]
async fn filters_on_id_match_ids_and_read_by_id() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("u", [("n", FieldDefinition::new(FieldType::Int))]).await.unwrap();
    let uuid = DocId::new();
    let uuid_text = DocId::text(&uuid.to_string()).unwrap();
    for (id, n) in [
        (DocId::text("a1").unwrap(), 1),
        (DocId::text("a2").unwrap(), 2),
        (DocId::text("b1").unwrap(), 3),
        (uuid.clone(), 4),
        (uuid_text.clone(), 5),
    ] {
        let mut d = doc! { "n": n };
        d.id = id;
        db.insert_into("u", d).await.unwrap();
    }
    let ns = |f: aurora::Filter| {
        let db = db.clone();
        async move {
            let docs = db.query("u").where_filter(f).order_by("n", Order::Asc).collect().await.unwrap();
            docs.iter().map(|d| d.get("n").and_then(Value::as_i64).unwrap()).collect::<Vec<_>>()
        }
    };
    assert_eq!(ns(F.eq("_id", "a2")).await, [2]);
    assert_eq!(ns(F.eq("_id", &uuid)).await, [4]);
    assert_eq!(ns(F.eq("_id", &uuid_text)).await, [5], "a text id spelled like a UUID is a text");
    assert_eq!(ns(F.in_values("_id", ["a1", "b1", "nobody"])).await, [1, 3]);
    assert_eq!(ns(F.ne("_id", "a1")).await, [2, 3, 4, 5]);
    assert_eq!(ns(F.gte("_id", "a2") & F.lt("_id", "c")).await, [2, 3]);
    assert_eq!(ns(F.starts_with("_id", "a")).await, [1, 2]);
    assert_eq!(ns(F.eq("_id", "a1") | F.eq("n", 3)).await, [1, 3]);
    assert_eq!(ns(F.eq("_id", "a1") & F.eq("n", 2)).await, Vec::<i64>::new());
    // Read by id: the plan examines only those documents.
    let plan = db.query("u").where_filter(F.in_values("_id", ["a1", "a2", "zz"])).explain().await.unwrap();
    assert_eq!(plan.access, Access::Ids { count: 3 });
    assert_eq!((plan.examined_rows, plan.returned_rows), (3, 2));
    assert_eq!(db.query("u").where_filter(F.eq("_id", "b1")).count().await.unwrap(), 1);
    assert!(db.query("u").where_filter(F.eq("_id", "b1")).exists().await.unwrap());
    // Ordering by `_id` is ordering by id.
    let ids = db.query("u").where_filter(F.starts_with("_id", "a")).order_by("_id", Order::Desc).ids().await.unwrap();
    assert_eq!(ids, [DocId::text("a2").unwrap(), DocId::text("a1").unwrap()]);
    // A value that can be no id is refused, not silently unmatched.
    let e = db.query("u").where_filter(F.eq("_id", 5)).collect().await.unwrap_err();
    assert!(matches!(e, Error::Query(QueryError::TypeMismatch { .. })), "{e}");
    // Bulk writes by `_id`.
    assert_eq!(db.query("u").where_filter(F.eq("_id", "a1")).update(doc! { "n": 10 }).await.unwrap(), 1);
    assert_eq!(db.query("u").where_filter(F.in_values("_id", ["b1"])).delete().await.unwrap(), 1);
    assert_eq!(ns(aurora::Filter::All).await, [2, 4, 5, 10]);
    // No index on `_id`: it is no field.
    let e = db.create_index("u", "_id", false).await.unwrap_err();
    assert!(matches!(e, Error::Index(_)), "{e}");
    db.close().await.unwrap();
}

#[tokio::test]
async fn live_queries_filtered_on_id_hear_their_document() {
    let db = Aurora::temporary().await.unwrap();
    create(&db, "c").await;
    for id in ["x", "y"] {
        let mut d = doc! { "n": 0 };
        d.id = DocId::text(id).unwrap();
        db.insert_into("c", d).await.unwrap();
    }
    let x = DocId::text("x").unwrap();
    let mut w = db.query("c").where_filter(F.eq("_id", "x")).watch().await.unwrap();
    assert_eq!(w.results().count(), 1);
    db.update_document("c", &DocId::text("y").unwrap(), Update::new().increment("n", 1)).await.unwrap();
    db.update_document("c", &x, Update::new().increment("n", 1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), w.recv()).await.expect("an update").unwrap();
    assert_eq!(w.results().next().map(|d| (&d.id, d.get("n"))), Some((&x, Some(&Value::Int(1)))));
    db.close().await.unwrap();
}

// ---- index names -----------------------------------------------------------------

#[tokio::test]
async fn a_field_with_a_comma_and_a_compound_index_live_apart() {
    let db = Aurora::temporary().await.unwrap();
    create(&db, "c").await;
    db.insert_into("c", doc! { "a,b": 1, "a": 2, "b": 3 }).await.unwrap();
    db.create_index("c", "a,b", false).await.unwrap();
    db.create_compound_index("c", &["a", "b"], false).await.unwrap();
    let fields = |db: &Aurora| {
        let db = db.clone();
        async move {
            let mut f: Vec<Vec<String>> =
                db.collection_stats("c").await.unwrap().indexes.iter().map(|i| i.fields.clone()).collect();
            f.sort();
            f
        }
    };
    assert_eq!(fields(&db).await, vec![vec!["a".to_string(), "b".to_string()], vec!["a,b".to_string()]]);
    assert_eq!(db.query("c").filter(|f| f.eq("a,b", 1)).count().await.unwrap(), 1);
    db.drop_compound_index("c", &["a", "b"]).await.unwrap();
    assert_eq!(fields(&db).await, vec![vec!["a,b".to_string()]]);
    assert!(db.drop_compound_index("c", &["a", "b"]).await.is_err());
    db.drop_index("c", "a,b").await.unwrap();
    assert!(fields(&db).await.is_empty());
    db.close().await.unwrap();
}

// ---- updates that change nothing ----------------------------------------------------

#[tokio::test]
async fn an_update_that_changes_nothing_writes_nothing() {
    let db = Aurora::temporary().await.unwrap();
    create(&db, "c").await;
    let id = db.insert_into("c", doc! { "n": 1 }).await.unwrap();
    let revision = || db.database().collections().documents().get_versioned("c", &id).unwrap().0;
    let before = revision();
    let head = db.feed_head().unwrap();
    let mut listener = db.listen("c");
    for update in [Update::new(), Update::from(aurora::Fields::new())] {
        let d = db.update_document("c", &id, update).await.unwrap();
        assert_eq!(d.get("n"), Some(&Value::Int(1)));
    }
    assert_eq!(db.query("c").update(aurora::Fields::new()).await.unwrap(), 1, "matched, not written");
    assert_eq!(revision(), before, "the revision stays");
    assert_eq!(db.feed_head().unwrap(), head, "no commit");
    assert!(listener.try_recv().is_none(), "no change event");
    let e = db.update_document("c", &DocId::text("nobody").unwrap(), Update::new()).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    db.update_document("c", &id, Update::new().set("n", 2)).await.unwrap();
    assert!(revision() > before);
    db.close().await.unwrap();
}
