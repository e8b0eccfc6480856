//! Compound indexes through the `Aurora` handle (issue 16, item 1): built
//! online or declared in the schema, the "last 20 messages of a room"
//! query walking `(room, at)` and stopping early in both directions, ranges
//! on the next field, keyset paging on the walk, unique tuples, arrays as
//! whole values, persistence across reopen, and typed errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::index::{IndexError, Schema};
use aurora::{doc, Access, Aurora, Document, Error, FieldDefinition, FieldType, Order, Value};

const ROOMS: i64 = 50;
const MESSAGES: i64 = 2_000;

fn message(i: i64) -> Document {
    // `at` values repeat across rooms and within one (ties broken by id).
    doc! { "room": format!("r{}", i % ROOMS), "at": i / 3, "text": format!("m{i}") }
}

async fn chat(dir: &std::path::Path) -> Aurora {
    let db = Aurora::open(dir).await.unwrap();
    db.new_collection(
        "messages",
        [("room", FieldDefinition::new(FieldType::String)), ("at", FieldDefinition::new(FieldType::Int))],
    )
    .await
    .unwrap();
    db.insert_many("messages", (0..MESSAGES).map(message).collect()).await.unwrap();
    db
}

/// The naive answer: every message of `room`, sorted by (`at`, id) in `order`.
async fn naive(db: &Aurora, room: &str, order: Order) -> Vec<Document> {
    let mut all: Vec<Document> = db.query("messages").collect().await.unwrap();
    all.retain(|d| d.get("room") == Some(&Value::from(room)));
    all.sort_by(|a, b| (a.get("at"), &a.id).cmp(&(b.get("at"), &b.id)));
    if order == Order::Desc {
        all.reverse();
    }
    all
}

#[tokio::test]
async fn the_last_20_messages_of_a_room_walk_the_compound_index_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let db = chat(dir.path()).await;
    let q = || db.query("messages").filter(|f| f.eq("room", "r7")).order_by("at", Order::Desc).limit(20);
    let before = q().explain().await.unwrap();
    assert!(!matches!(before.access, Access::Compound { .. }), "no compound index yet: {before:?}");
    assert!(before.examined_rows > 21, "without it the whole collection is read: {before:?}");

    // Built online on a populated collection.
    db.create_compound_index("messages", &["room", "at"], false).await.unwrap();
    for order in [Order::Desc, Order::Asc] {
        let q = db.query("messages").filter(|f| f.eq("room", "r7")).order_by("at", order).limit(20);
        let plan = q.clone().explain().await.unwrap();
        assert!(
            matches!(plan.access, Access::Compound { ordered: true, descending, ref equal, .. }
                if descending == (order == Order::Desc) && equal == &[Value::from("r7")]),
            "{plan:?}"
        );
        assert!(plan.examined_rows <= 21, "stops after the limit: {plan:?}");
        assert_eq!(plan.returned_rows, 20);
        let got = q.collect().await.unwrap();
        assert_eq!(got, naive(&db, "r7", order).await[..20].to_vec(), "{order:?}");
    }

    // A range on the next field, with an offset.
    let plan = db
        .query("messages")
        .filter(|f| f.eq("room", "r3") & f.gte("at", 100) & f.lt("at", 400))
        .order_by("at", Order::Asc)
        .offset(2)
        .limit(5)
        .explain()
        .await
        .unwrap();
    assert!(matches!(plan.access, Access::Compound { ordered: true, .. }), "{plan:?}");
    assert!(plan.examined_rows <= 7, "{plan:?}");
    let got = db
        .query("messages")
        .filter(|f| f.eq("room", "r3") & f.gte("at", 100) & f.lt("at", 400))
        .order_by("at", Order::Asc)
        .offset(2)
        .limit(5)
        .collect()
        .await
        .unwrap();
    let want: Vec<Document> = naive(&db, "r3", Order::Asc)
        .await
        .into_iter()
        .filter(|d| (100..400).contains(&d.get("at").and_then(Value::as_i64).unwrap()))
        .skip(2)
        .take(5)
        .collect();
    assert_eq!(got, want);

    // Without an order the read is one candidate set among others.
    let plan = db.query("messages").filter(|f| f.eq("room", "r3") & f.eq("at", 3)).explain().await.unwrap();
    assert!(matches!(plan.access, Access::Compound { ordered: false, .. }), "{plan:?}");
    assert_eq!(plan.examined_rows, plan.returned_rows, "only exact matches read: {plan:?}");
}

#[tokio::test]
async fn keyset_pages_walk_the_compound_index_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let db = chat(dir.path()).await;
    db.create_compound_index("messages", &["room", "at"], false).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let mut q =
            db.query("messages").filter(|f| f.eq("room", "r1")).order_by("at", Order::Desc).select(["text"]).limit(7);
        if let Some(c) = cursor.take() {
            q = q.after(c);
        }
        let plan = q.clone().explain().await.unwrap();
        assert!(plan.examined_rows <= 7 + 3, "each page reads a page (and ties), not the pages before: {plan:?}");
        let page = q.page().await.unwrap();
        seen.extend(page.items.into_iter().map(|d| d.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<_> = naive(&db, "r1", Order::Desc).await.into_iter().map(|d| d.id).collect();
    assert_eq!(seen, want, "every message once, newest first");
}

#[tokio::test]
async fn compound_indexes_persist_enforce_uniqueness_and_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Aurora::open(dir.path()).await.unwrap();
        let schema = Schema::new()
            .field("room", FieldDefinition::new(FieldType::String))
            .field("seat", FieldDefinition::new(FieldType::Int).nullable())
            .field("tags", FieldDefinition::new(FieldType::Array).nullable())
            .compound_index(["room", "seat"], true)
            .compound_index(["tags", "room"], false);
        db.new_collection_with_schema("seats", schema).await.unwrap();
        db.insert_into("seats", doc! { "room": "a", "seat": 1, "tags": ["x", "y"] }).await.unwrap();
        let err = db.insert_into("seats", doc! { "room": "a", "seat": 1 }).await.unwrap_err();
        assert!(
            matches!(&err, Error::UniqueViolation { field, value, .. }
                if field == "(room, seat)" && value == "(\"a\", 1)"),
            "{err:?}"
        );
        // A null part never claims uniqueness (as in SQL).
        db.insert_into("seats", doc! { "room": "a" }).await.unwrap();
        db.insert_into("seats", doc! { "room": "a", "seat": null }).await.unwrap();
        assert_eq!(db.query("seats").count().await.unwrap(), 3, "the refused write changed nothing");

        // Bad input: a typed error, and no index appears.
        let stats = db.collection_stats("seats").await.unwrap().indexes.len();
        for bad in [&["room"][..], &["room", "room"][..], &["room", "a..b"][..], &[][..]] {
            let err = db.create_compound_index("seats", bad, false).await.unwrap_err();
            assert!(matches!(err, Error::Index(IndexError::InvalidSchema { .. })), "{bad:?}: {err:?}");
        }
        assert_eq!(db.collection_stats("seats").await.unwrap().indexes.len(), stats);

        // A unique build over duplicate tuples fails and leaves no index.
        db.insert_into("seats", doc! { "room": "b", "seat": 2, "tags": ["z"] }).await.unwrap();
        db.insert_into("seats", doc! { "room": "c", "seat": 2, "tags": ["z"] }).await.unwrap();
        let err = db.create_compound_index("seats", &["tags", "seat"], true).await.unwrap_err();
        assert!(matches!(err, Error::Index(IndexError::DuplicateValues { .. })), "{err:?}");
        assert_eq!(db.collection_stats("seats").await.unwrap().indexes.len(), stats);
        db.close().await.unwrap();
    }
    let db = Aurora::open(dir.path()).await.unwrap();
    let stats = db.collection_stats("seats").await.unwrap();
    let fields: Vec<Vec<String>> = stats.indexes.iter().map(|s| s.fields.clone()).collect();
    assert!(fields.contains(&vec!["room".to_string(), "seat".to_string()]), "{fields:?}");
    let err = db.insert_into("seats", doc! { "room": "a", "seat": 1 }).await.unwrap_err();
    assert!(matches!(err, Error::UniqueViolation { .. }), "still unique after reopen: {err:?}");

    // Arrays are indexed whole: `eq` on the whole array uses the index,
    // `in_array` (an element) does not and still finds it.
    let tags = Value::Array(vec![Value::from("x"), Value::from("y")]);
    let plan = db.query("seats").filter(|f| f.eq("tags", tags.clone()) & f.eq("room", "a")).explain().await.unwrap();
    assert!(matches!(plan.access, Access::Compound { .. }), "{plan:?}");
    assert_eq!(plan.returned_rows, 1);
    let plan = db.query("seats").filter(|f| f.in_array("tags", "x")).explain().await.unwrap();
    assert!(!matches!(plan.access, Access::Compound { .. }), "{plan:?}");
    assert_eq!(plan.returned_rows, 1);
}
