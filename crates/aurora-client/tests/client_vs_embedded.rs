//! The client against a real server (`aurora-server` in this process, on
//! a loopback port) and the embedded handle side by side: the same
//! mistakes give the same `aurora::Error` variants through the `Store`
//! trait; a trimmed feed position is the typed `FeedTruncated` on both;
//! streams cut off under a burst of writes resume with no gap, no
//! duplicate and in order; a stream's position counts only what it
//! yielded; a dropped stream gives its server slot back.

use aurora::index::{Schema, UnknownFields};
use aurora::txn::{FeedRetention, TxnError};
use aurora::{doc, Aurora, DocId, Document, Error, FieldDefinition, FieldType, Order, Update, Value};
use aurora_client::{Client, LiveEvent, NewJob, Query, Store, WriteBatch};
use aurora_server::{Limits, ServerConfig};
use std::time::Duration;
use tokio_stream::StreamExt as _;

const WAIT: Duration = Duration::from_secs(20);

/// A server on its own database; the database handle too.
async fn serve(limits: Limits) -> (Client, Aurora) {
    let db = Aurora::temporary().await.expect("database");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let config = ServerConfig { allow_anonymous: true, limits, ..ServerConfig::default() };
    tokio::spawn(aurora_server::serve(listener, db.clone(), config, std::future::pending()));
    (Client::connect(&url, None).await.expect("connect"), db)
}

fn id(s: &str) -> DocId {
    DocId::parse(s).expect("a valid id")
}

/// The variant of an outcome, with the fields both sides know.
fn kind<T>(r: &aurora::Result<T>) -> String {
    use aurora::index::IndexError as I;
    match r {
        Ok(_) => "ok".into(),
        Err(e) => match e {
            Error::NotFound { collection, id } => format!("NotFound {collection}/{id}"),
            Error::DocumentExists { collection, id } => format!("DocumentExists {collection}/{id}"),
            Error::UnknownCollection(c) => format!("UnknownCollection {c}"),
            Error::CollectionExists(c) => format!("CollectionExists {c}"),
            Error::UniqueViolation { collection, field, .. } => format!("UniqueViolation {collection}.{field}"),
            Error::SchemaViolation { collection, field, .. } => format!("SchemaViolation {collection}.{field}"),
            Error::Conflict { collection, id } => format!("Conflict {collection}/{id}"),
            Error::Update(u) => format!("Update {u}"),
            Error::Workers(aurora::workers::WorkerError::InvalidJob { job_type, reason }) => {
                format!("InvalidJob {job_type:?}: {reason}")
            }
            Error::Core(c) => format!("Core {c}"),
            Error::Query(q) => format!("Query {q}"),
            Error::Index(I::NoIndex { collection, field }) => format!("NoIndex {collection}.{field}"),
            Error::Index(I::InvalidSchema { .. }) => "InvalidSchema".into(),
            Error::Transaction(TxnError::FeedTruncated { requested, oldest }) => {
                format!("FeedTruncated {requested} {oldest}")
            }
            Error::Transaction(TxnError::FeedAhead { requested, head }) => format!("FeedAhead {requested} {head}"),
            other => format!("other: {other:?}"),
        },
    }
}

/// Mistakes an application makes, through `impl Store`.
async fn mistakes(db: &impl Store) -> Vec<String> {
    let mut t = Vec::new();
    let schema = Schema::new().field("n", FieldDefinition::new(FieldType::Int).unique());
    t.push(kind(&db.create_collection("m", schema.clone()).await));
    t.push(kind(&db.create_collection("m", schema).await));
    let mut strict = Schema::new().field("n", FieldDefinition::new(FieldType::Int));
    strict.unknown_fields = UnknownFields::Reject;
    t.push(kind(&db.create_collection("strict", strict).await));
    t.push(kind(&db.insert("m", doc! { "n": 1 }.id(id("one"))).await));
    t.push(kind(&db.insert("m", doc! { "n": 1 }).await));
    t.push(kind(&db.insert("m", doc! { "n": 2 }.id(id("one"))).await));
    t.push(kind(&db.insert("m", doc! { "n": "text" }).await));
    t.push(kind(&db.insert("strict", doc! { "x": 1 }).await));
    t.push(kind(&db.insert("nowhere", doc! { "n": 1 }).await));
    t.push(kind(&db.update("m", &id("one"), Update::new().push("n", 3)).await));
    t.push(kind(&db.update("m", &id("none"), Update::new().set("n", 3)).await));
    t.push(kind(&db.replace("m", doc! { "n": 5 }.id(id("none"))).await));
    t.push(kind(&db.delete("nowhere", &id("one")).await));
    t.push(kind(&db.find("nowhere", &Query::new()).await));
    t.push(kind(&db.get_versioned("nowhere", &id("one")).await));
    // Writes in one batch: a failing condition, a duplicate id.
    t.push(kind(&db.commit(WriteBatch::new().check("m", &id("one"), 999)).await));
    t.push(kind(&db.commit(WriteBatch::new().insert("m", doc! { "n": 7 }.id(id("one")))).await));
    t.push(kind(&db.commit(WriteBatch::new().update("m", &id("none"), Update::new().set("n", 1))).await));
    // Input the rules refuse: a field name with a dot, a document nested
    // too deep, a query comparing a typed field with the wrong type.
    t.push(kind(&db.insert("m", doc! { "a.b": 1 }).await));
    let mut deep = Value::from(1);
    for _ in 0..200 {
        deep = Value::Array(vec![deep]);
    }
    t.push(kind(&db.insert("m", doc! { "deep": deep.clone() }).await));
    t.push(kind(&db.update("m", &id("one"), Update::new().set("deep", deep.clone())).await));
    t.push(kind(&db.commit(WriteBatch::new().insert("m", doc! { "x": deep.clone() })).await));
    // Far past any parser's recursion limit: refused before it is walked.
    let mut abyss = Value::from(1);
    for _ in 0..100_000 {
        abyss = Value::Array(vec![abyss]);
    }
    t.push(kind(&db.insert("m", doc! { "abyss": abyss }).await));
    t.push(kind(&db.find("m", &Query::new().filter(|f| f.gt("n", "text"))).await));
    t.push(kind(&db.find("m", &Query::new().order_by("a..b", Order::Asc)).await));
    // Revision conditions: a wrong revision, "absent" for a document
    // that exists, "absent" for a replace of one that is absent.
    let (_, rev) = db.get_versioned("m", &id("one")).await.expect("read").expect("exists");
    t.push(kind(&db.commit(WriteBatch::new().delete_if("m", &id("one"), rev + 1)).await));
    t.push(kind(&db.commit(WriteBatch::new().update_if("m", &id("one"), Update::new().set("n", 5), 0)).await));
    t.push(kind(&db.commit(WriteBatch::new().replace_if("m", doc! { "n": 6 }.id(id("ghost")), 0)).await));
    t.push(kind(&db.commit(WriteBatch::new().delete_if("m", &id("one"), rev)).await));
    t.push(kind(&db.get("m", &id("one")).await.map(|d| d.is_some())));
    // Streams on what does not exist.
    t.push(kind(&db.changes("nowhere", 0).await));
    t.push(kind(&db.live("nowhere", &Query::new()).await));
    t.push(kind(&db.live("m", &Query::new().filter(|f| f.eq("n", 1))).await));
    // A job without a type.
    t.push(kind(&db.enqueue(&NewJob::new("")).await));
    // A text id spelled like a UUID stays a text id.
    let uuid_text = DocId::text("0190a6b2-0000-7000-8000-000000000002").expect("text id");
    let inserted = db.insert("m", doc! { "n": 9 }.id(uuid_text.clone())).await;
    t.push(format!("uuid-spelled text id kept: {}", inserted.as_ref().ok() == Some(&uuid_text)));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_mistakes_give_the_same_errors_embedded_and_over_the_client() {
    let embedded = Aurora::temporary().await.expect("embedded");
    let local = mistakes(&embedded).await;
    let (client, _db) = serve(Limits::default()).await;
    let remote = mistakes(&client).await;
    for (i, (a, b)) in local.iter().zip(&remote).enumerate() {
        assert_eq!(a, b, "mistake {i}: embedded {a}, client {b}");
    }
    assert_eq!(local.len(), remote.len());
    assert!(local.iter().any(|l| l == "UnknownCollection nowhere"), "{local:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trimmed_feed_position_is_the_typed_truncation_error_on_both() {
    async fn trimmed(db: &Aurora, store: &impl Store) -> String {
        store.create_collection("t", Schema::new()).await.expect("create");
        for n in 0..5 {
            store.insert("t", doc! { "n": n }).await.expect("insert");
        }
        let retention = FeedRetention { entries: 1, max_age: None, max_bytes: None };
        db.database().trim_feed_to(&retention).expect("trim");
        kind(&store.changes("t", 0).await)
    }
    let embedded = Aurora::temporary().await.expect("embedded");
    let local = trimmed(&embedded, &embedded).await;
    let (client, db) = serve(Limits::default()).await;
    let remote = trimmed(&db, &client).await;
    assert!(local.starts_with("FeedTruncated 0 "), "{local}");
    assert_eq!(local, remote);
}

/// Applies live events until the list is `expected` (or the wait ends).
async fn follow_live(
    live: &mut aurora_client::EventStream<LiveEvent>,
    list: &mut Vec<Document>,
    seqs: &mut Vec<u64>,
    expected: &[Document],
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while list.as_slice() != expected {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let e = tokio::time::timeout(left, live.next())
            .await
            .unwrap_or_else(|_| panic!("the live list never caught up: {} of {}", list.len(), expected.len()))
            .expect("open")
            .expect("no error");
        seqs.push(e.sequence());
        e.apply_to(list);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_cut_off_under_a_burst_of_writes_resume_with_no_gap_or_duplicate() {
    // A small server-side buffer: a consumer that does not read is cut
    // off (slow_consumer) and its stream reconnects while writes go on.
    let limits = Limits { stream_buffer: 4, ..Limits::default() };
    let (client, _db) = serve(limits).await;
    let schema = Schema::new().field("n", FieldDefinition::new(FieldType::Int).indexed());
    client.create_collection("burst", &schema).await.expect("create");
    let mut changes = client.changes(Some("burst"), None).await.expect("changes");
    let q = Query::new().filter(|f| f.gte("n", 0)).order_by("n", Order::Desc).limit(5);
    let mut live = Store::live(&client, "burst", &q).await.expect("live");
    let mut list = Vec::new();
    let mut seqs = Vec::new();
    let first = tokio::time::timeout(WAIT, live.next()).await.expect("results").expect("open").expect("ok");
    first.apply_to(&mut list);
    // More writes than the client's buffer (256) and the server's (4):
    // nothing reads meanwhile.
    // Events of 64 KiB, so the socket buffers cannot absorb them all.
    let writes = 600;
    let pad = "p".repeat(64 << 10);
    for n in 0..writes {
        client.insert("burst", doc! { "n": n, "pad": pad.as_str() }).await.expect("insert");
    }
    let expected = client.find("burst", &q).await.expect("query");
    follow_live(&mut live, &mut list, &mut seqs, &expected).await;
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "live updates in commit order: {seqs:?}");
    let mut ns = Vec::new();
    let mut last = 0;
    while ns.len() < writes as usize {
        let c = tokio::time::timeout(WAIT, changes.next()).await.expect("a commit in time").expect("open").expect("ok");
        assert!(c.sequence > last, "commits in order, once: {} after {last}", c.sequence);
        last = c.sequence;
        ns.extend(c.events.iter().filter_map(|e| e.document.as_ref()?.get("n")?.as_i64()));
    }
    assert_eq!(ns, (0..writes).collect::<Vec<i64>>(), "every commit once, in order");
    let metrics = client.metrics().await.expect("metrics");
    assert!(
        metrics.lines().any(|l| l.starts_with("aurora_http_slow_consumers_total ") && !l.ends_with(" 0")),
        "the streams were cut off at least once (else this test tests nothing): {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_streams_position_counts_only_the_commits_it_yielded() {
    let (client, _db) = serve(Limits::default()).await;
    client.create_collection("p", &Schema::new()).await.expect("create");
    let start = client.feed_head().await.expect("head");
    let mut changes = client.changes(Some("p"), Some(start)).await.expect("changes");
    for n in 0..10 {
        client.insert("p", doc! { "n": n }).await.expect("insert");
    }
    // Let the stream's task read every commit ahead of the consumer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = tokio::time::timeout(WAIT, changes.next()).await.expect("in time").expect("open").expect("ok");
    assert_eq!(
        changes.position(),
        first.sequence,
        "an application saving position() after each commit it handled must not skip the buffered ones"
    );
}

fn open_streams(metrics: &str) -> Option<u64> {
    metrics.lines().find_map(|l| l.strip_prefix("aurora_http_open_streams ")).and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_gives_its_connection_back() {
    let (client, _db) = serve(Limits::default()).await;
    client.create_collection("d", &Schema::new()).await.expect("create");
    let changes = client.changes(Some("d"), None).await.expect("changes");
    let live = client.live("d", &Query::new()).await.expect("live");
    assert_eq!(open_streams(&client.metrics().await.expect("metrics")), Some(2));
    drop(changes);
    drop(live);
    let closed = |client: Client| async move {
        let deadline = tokio::time::Instant::now() + WAIT;
        while open_streams(&client.metrics().await.expect("metrics")) != Some(0) {
            assert!(tokio::time::Instant::now() < deadline, "the server still holds the dropped streams");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    closed(client.clone()).await;
    // Openings abandoned at any point (their futures dropped by a
    // timeout) leave nothing running either.
    for micros in [1, 100, 1_000, 10_000] {
        let _ = tokio::time::timeout(Duration::from_micros(micros), client.live("d", &Query::new())).await;
        let _ = tokio::time::timeout(Duration::from_micros(micros), client.changes(Some("d"), Some(0))).await;
    }
    closed(client.clone()).await;
}

/// A serde type with what serde has no word for: a UUID (text) and bytes
/// (a list of numbers).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
struct Thing {
    #[serde(rename = "_id")]
    id: DocId,
    owner: uuid::Uuid,
    blob: Vec<u8>,
    note: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_collections_store_odd_serde_types_as_the_embedded_handle_does() {
    let schema = Schema::new()
        .field("owner", FieldDefinition::new(FieldType::Uuid))
        .field("blob", FieldDefinition::new(FieldType::Bytes));
    let thing = Thing {
        id: DocId::text("thing-1").expect("a text id"),
        owner: uuid::Uuid::now_v7(),
        blob: vec![0, 1, 255],
        note: "3f2504e0-4f89-41d3-9a0c-0305e82c3301".into(),
    };
    let embedded = Aurora::temporary().await.expect("embedded");
    Store::create_collection(&embedded, "things", schema.clone()).await.expect("create");
    let things = embedded.collection::<Thing>("things");
    let id = things.insert(&thing).await.expect("embedded insert");
    let local =
        (id.clone(), things.get(&id).await.expect("get"), Store::get(&embedded, "things", &id).await.expect("get"));

    let (client, _db) = serve(Limits::default()).await;
    client.create_collection("things", &schema).await.expect("create");
    let things = client.typed::<Thing>("things");
    let id = things.insert(&thing).await.expect("client insert");
    let remote = (id.clone(), things.get(&id).await.expect("get"), client.get("things", &id).await.expect("get"));
    assert_eq!(local.0, thing.id);
    assert_eq!(local.1.as_ref(), Some(&thing));
    assert_eq!(remote, local, "the client stores and reads back what the embedded handle does");
    // Replacing through the typed view writes the same document, not a UUID-id twin.
    let mut changed = thing.clone();
    changed.blob.push(7);
    things.replace(&changed).await.expect("replace");
    assert_eq!(things.get(&thing.id).await.expect("get"), Some(changed));
    assert_eq!(client.collection("things").await.expect("stats").count, 1);
}

/// A text id spelled like a UUID, through every document endpoint: the
/// client writes it in a path as `~TEXT`, which the server must read back
/// as that text id (not as the UUID id it spells).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_id_spelled_like_a_uuid_is_reachable_through_the_client() {
    let (client, _db) = serve(Limits::default()).await;
    client.create_collection("t", &Schema::new()).await.expect("create");
    let text = DocId::text("0190a6b2-0000-7000-8000-000000000002").expect("a text id");
    let uuid = DocId::parse("0190a6b2-0000-7000-8000-000000000002").expect("a uuid id");
    assert_ne!(text, uuid);
    client.insert("t", doc! { "n": 1 }.id(text.clone())).await.expect("insert");
    client.insert("t", doc! { "n": 2 }.id(uuid.clone())).await.expect("insert its UUID twin");
    let n = |d: Option<Document>| d.and_then(|d| d.get("n").and_then(aurora::Value::as_i64));
    assert_eq!(n(client.get("t", &text).await.expect("get")), Some(1));
    assert_eq!(n(client.get("t", &uuid).await.expect("get")), Some(2));
    client.update("t", &text, Update::new().set("n", 10)).await.expect("update");
    assert!(client.delete("t", &text).await.expect("delete"));
    assert_eq!(n(client.get("t", &uuid).await.expect("get")), Some(2), "the twin is untouched");
    let tilde = DocId::text("~home").expect("a text id");
    client.insert("t", doc! { "n": 3 }.id(tilde.clone())).await.expect("insert");
    assert_eq!(n(client.get("t", &tilde).await.expect("get")), Some(3));
}
