//! Bad input at the facade (issue "Bad input never crashes, bricks or
//! silently changes data"): documents nested past the limit and invalid
//! ids are refused at every write path with a typed error, nothing is
//! written, and the database keeps working and reopens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, CoreError, DocId, Document, Error, EventFilter, Value, F, MAX_NESTING_DEPTH};

/// A document whose field `deep` nests `levels` levels (arrays and objects
/// alternating), built without recursion.
fn nested(levels: usize) -> Document {
    let mut v = Value::Int(1);
    for i in 1..levels {
        v = if i % 2 == 0 { Value::Array(vec![v]) } else { Value::Object([("k".to_string(), v)].into()) };
    }
    Document { fields: [("deep".to_string(), v)].into(), ..Document::new() }
}

fn refused<T>(r: &aurora::Result<T>) -> bool {
    matches!(r, Err(Error::Core(CoreError::FilterTooDeep { limit: MAX_NESTING_DEPTH })))
}

fn too_deep<T: std::fmt::Debug>(r: aurora::Result<T>, what: &str) {
    assert!(matches!(r, Err(Error::Core(CoreError::TooDeep { .. }))), "{what}: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_nested_past_the_limit_are_refused_everywhere_and_nothing_bricks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    db.new_collection("docs", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    let at_limit = db.insert_into("docs", nested(MAX_NESTING_DEPTH)).await.unwrap();
    let before = db.database().collections().documents().store().revision();
    // 101 levels, and depths that used to abort the process after a
    // restart (5 000, 50 000) or at insert (100 000): refused, and dropped
    // without overflowing the stack.
    for levels in [MAX_NESTING_DEPTH + 1, 5_000, 50_000, 100_000] {
        too_deep(db.insert_into("docs", nested(levels)).await, "insert_into");
        too_deep(db.insert_many("docs", vec![doc! { "ok": 1 }, nested(levels)]).await, "insert_many");
        too_deep(db.upsert("docs", nested(levels)).await, "upsert");
        too_deep(db.update_document("docs", &at_limit, nested(levels)).await, "update_document");
        let deep = || nested(levels).fields.remove("deep").unwrap();
        let ops = || aurora::Update::new().increment("n", 1).push("list", deep()).set("x", deep());
        too_deep(db.update_document("docs", &at_limit, ops()).await, "update_document with operators");
        too_deep(db.query("docs").update(ops()).await, "query().update with operators");
        too_deep(db.query("docs").update(nested(levels)).await, "query().update with a patch");
        let mut tx = db.begin().unwrap();
        too_deep(tx.insert("docs", nested(levels)).map_err(Error::from), "Transaction::insert");
        tx.rollback();
    }
    assert_eq!(db.database().collections().documents().store().revision(), before, "nothing was written");
    db.close().await.unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    let back = db.get_document("docs", &at_limit).await.unwrap().unwrap();
    assert_eq!(*back, nested(MAX_NESTING_DEPTH).id(at_limit.clone()), "a document at the limit round-trips");
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_text_ids_are_refused_and_cannot_be_deserialized() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    db.new_collection("docs", vec![("n", aurora::FieldDefinition::new(aurora::FieldType::Int).indexed())])
        .await
        .unwrap();
    for bad in ["", "a\0b", &"x".repeat(513)] {
        // An invalid text id cannot be built at all (`DocId::Text` holds a
        // checked `TextId`): the only ways in are refused.
        let r = DocId::text(bad);
        assert!(matches!(r, Err(CoreError::InvalidDocId { .. })), "{bad:?}: {r:?}");
        assert!(DocId::parse(bad).is_err(), "{bad:?}");
        assert!(r.unwrap_err().to_string().len() < 200, "bounded message");
    }
    // Index reads of the collection keep working.
    db.insert_into("docs", doc! { "n": 1 }).await.unwrap();
    let n = db.query("docs").filter(|f| f.eq("n", 1)).count().await.unwrap();
    assert_eq!(n, 1);
    assert!(serde_json::from_str::<DocId>(r#"{"Text":""}"#).is_err(), "no empty id by deserializing");
    assert!(serde_json::from_str::<DocId>(r#"{"Text":"ok"}"#).is_ok());
    db.close().await.unwrap();
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Reading {
    at: aurora::Timestamp,
    value: f64,
    count: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_structs_round_trip_numbers_and_timestamps_exactly() {
    use aurora::{FieldDefinition, FieldType};
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    db.new_collection(
        "readings",
        vec![
            ("at", FieldDefinition::new(FieldType::Timestamp).indexed()),
            ("value", FieldDefinition::new(FieldType::Float)),
            ("count", FieldDefinition::new(FieldType::Int)),
        ],
    )
    .await
    .unwrap();
    let at = aurora::Timestamp::from_micros(1_700_000_000_000_001);
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, f64::MIN_POSITIVE] {
        let r = Reading { at, value, count: i64::MAX as u64 };
        let id = db.insert_typed("readings", &r).await.unwrap();
        let back: Reading = db.get_typed("readings", &id).await.unwrap().unwrap();
        assert_eq!(back.at, at);
        assert_eq!(back.count, i64::MAX as u64);
        assert_eq!(back.value.to_bits(), value.to_bits(), "{value} round-trips bit for bit");
    }
    let before = db.database().collections().documents().store().revision();
    let err = db.insert_typed("readings", &Reading { at, value: 1.0, count: u64::MAX }).await.unwrap_err();
    assert!(matches!(err, Error::Core(CoreError::Serde { .. })), "a u64 that does not fit is refused: {err}");
    assert_eq!(db.database().collections().documents().store().revision(), before);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_nested_past_the_limit_are_refused_before_they_are_walked() {
    use aurora::Filter;
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    db.new_collection("docs", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    db.insert_into("docs", doc! { "n": 1 }).await.unwrap();
    let mut deep = Filter::Eq("n".into(), Value::Int(1));
    for _ in 0..3_000 {
        deep = Filter::Not(Box::new(Filter::Not(Box::new(deep))));
    }
    // A filter whose *value* nests too deep is the same kind.
    let deep_value = Filter::Eq("n".into(), nested(5_000).fields["deep"].clone());
    let revision = db.database().collections().documents().store().revision();
    for filter in [deep.clone(), deep_value] {
        let f = filter.clone();
        let r = db.query("docs").filter(move |_| f.clone()).count().await;
        assert!(refused(&r), "count: {r:?}");
        let f = filter.clone();
        let r = db.query("docs").filter(move |_| f.clone()).update(doc! { "n": 2 }).await;
        assert!(refused(&r), "update: {r:?}");
        let f = filter.clone();
        let r = db.query("docs").filter(move |_| f.clone()).delete().await;
        assert!(refused(&r), "delete: {r:?}");
        let f = filter.clone();
        let r = db.query("docs").filter(move |_| f.clone()).watch().await.map(|_| ());
        assert!(refused(&r), "watch: {r:?}");
        // Listeners: a deep query filter inside an event filter, and deep
        // combinators around a shallow one, are refused before a listener
        // exists (matching them at publish would overflow the writer's stack).
        let r = db.listen_filtered("docs", EventFilter::Matches(filter.clone())).map(|_| ());
        assert!(refused(&r), "listen_filtered: {r:?}");
        let r = db.pubsub().listen_all(EventFilter::MatchesAfter(filter)).map(|_| ());
        assert!(matches!(r, Err(CoreError::FilterTooDeep { .. })), "PubSub::listen_all: {r:?}");
    }
    let mut combinators = EventFilter::Matches(F.eq("n", 1));
    for _ in 0..5_000 {
        combinators = EventFilter::Not(Box::new(combinators));
    }
    let r = db.listen_filtered("docs", combinators).map(|_| ());
    assert!(refused(&r), "deep event combinators: {r:?}");
    assert_eq!(db.pubsub().listener_count("docs"), 0, "no refused listener was registered");
    assert_eq!(db.database().collections().documents().store().revision(), revision, "nothing was written");

    // At the limit everything works: a query filter of exactly the limit,
    // wrapped by `touches` (two more combinator levels), still listens.
    let mut ok = Filter::Eq("n".into(), Value::Int(1));
    let mut nots = 0;
    while ok.nesting_depth(MAX_NESTING_DEPTH) < MAX_NESTING_DEPTH {
        ok = Filter::Not(Box::new(ok));
        nots += 1;
    }
    let even = nots % 2 == 0;
    let expected: u64 = if even { 1 } else { 0 };
    let f = ok.clone();
    assert_eq!(db.query("docs").filter(move |_| f.clone()).count().await.unwrap(), expected);
    let mut listener = db.listen_filtered("docs", EventFilter::touches(ok.clone())).unwrap();
    let f = ok.clone();
    let watcher = db.query("docs").filter(move |_| f.clone()).watch().await.unwrap();
    assert_eq!(watcher.results().len() as u64, expected);
    db.insert_into("docs", doc! { "n": 1 }).await.unwrap();
    if even {
        let event = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv()).await.unwrap().unwrap();
        assert_eq!(event.collection, "docs");
    }
    drop(watcher);
    db.close().await.unwrap();
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Upload {
    owner: uuid::Uuid,
    body: Vec<u8>,
    at: aurora::Timestamp,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uuids_bytes_and_timestamps_round_trip_into_fields_of_their_own_type() {
    use aurora::{FieldDefinition, FieldType};
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    db.new_collection(
        "uploads",
        vec![
            ("owner", FieldDefinition::new(FieldType::Uuid).indexed()),
            ("body", FieldDefinition::new(FieldType::Bytes)),
            ("at", FieldDefinition::new(FieldType::Timestamp)),
        ],
    )
    .await
    .unwrap();
    let up = Upload { owner: uuid::Uuid::now_v7(), body: vec![0, 1, 255], at: aurora::Timestamp::now() };
    let id = db.insert_typed("uploads", &up).await.unwrap();
    let stored = db.get_document("uploads", &id).await.unwrap().unwrap();
    assert_eq!(stored.get("owner"), Some(&Value::Uuid(up.owner)));
    assert_eq!(stored.get("body"), Some(&Value::Bytes(vec![0, 1, 255])));
    assert_eq!(stored.get("at"), Some(&Value::Timestamp(up.at)));
    let back: Upload = db.get_typed("uploads", &id).await.unwrap().unwrap();
    assert_eq!(back, up);
    db.close().await.unwrap();
}
