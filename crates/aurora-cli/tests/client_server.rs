//! `aurora-client` against a real `aurora serve` on loopback: the same
//! application function on the embedded handle and on the client gives the
//! same transcript; change streams and live queries over the client
//! survive a server restart (SIGKILL) with no gap and no duplicate.
#![cfg(feature = "server")]

mod client_support;

use aurora::index::{Schema, UnknownFields};
use aurora::{doc, Aurora, DocId, Document, Error, FieldDefinition, FieldType, Order, Update};
use aurora_client::{Client, LiveEvent, NewJob, Query, Store, WriteBatch};
use client_support::{create_key, Server};
use std::time::Duration;
use tokio_stream::StreamExt as _;

const WAIT: Duration = Duration::from_secs(15);

fn id(s: &str) -> DocId {
    DocId::parse(s).expect("a valid id")
}

fn with_id(s: &str, mut d: Document) -> Document {
    d.id = id(s);
    d
}

/// What a call did, in a form both backends can be compared on.
fn outcome<T: std::fmt::Debug>(r: &aurora::Result<T>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(Error::UniqueViolation { collection, field, .. }) => format!("UniqueViolation {collection}.{field}"),
        Err(Error::SchemaViolation { collection, field, source }) => {
            format!("SchemaViolation {collection}.{field}: {source}")
        }
        Err(Error::NotFound { collection, id }) => format!("NotFound {collection}/{id}"),
        Err(Error::DocumentExists { collection, id }) => format!("DocumentExists {collection}/{id}"),
        Err(Error::UnknownCollection(c)) => format!("UnknownCollection {c}"),
        Err(Error::CollectionExists(c)) => format!("CollectionExists {c}"),
        Err(Error::Conflict { collection, id }) => format!("Conflict {collection}/{id}"),
        Err(e) => format!("other error: {e}"),
    }
}

fn docs(list: &[Document]) -> String {
    list.iter().map(|d| d.to_json().to_string()).collect::<Vec<_>>().join("\n")
}

async fn next_live(s: &mut aurora_client::EventStream<LiveEvent>) -> LiveEvent {
    tokio::time::timeout(WAIT, s.next())
        .await
        .expect("a live event in time")
        .expect("the stream goes on")
        .expect("no error")
}

/// The application: one function over `impl Store`, run on both backends.
async fn scenario(db: &impl Store) -> Vec<String> {
    let mut t = Vec::new();
    let schema = Schema::new()
        .field("email", FieldDefinition::new(FieldType::String).unique())
        .field("age", FieldDefinition::new(FieldType::Int).indexed());
    t.push(outcome(&db.create_collection("people", schema.clone()).await));
    t.push(outcome(&db.create_collection("people", schema).await));
    let mut strict = Schema::new().field("n", FieldDefinition::new(FieldType::Int));
    strict.unknown_fields = UnknownFields::Reject;
    t.push(outcome(&db.create_collection("strict", strict).await));
    t.push(format!(
        "{:?}",
        db.list_collections().await.map(|mut v| {
            v.sort();
            v
        })
    ));

    // The live query starts before the writes.
    let q = Query::new().filter(|f| f.gte("age", 30)).order_by("age", Order::Asc);
    let mut live = db.live("people", &q).await.expect("live query");
    let first = next_live(&mut live).await;
    t.push(format!("live first: {}", matches!(&first, LiveEvent::Results { documents, .. } if documents.is_empty())));
    let mut list = Vec::new();
    first.apply_to(&mut list);

    for (name, age) in [("ada", 36), ("bob", 25), ("cy", 41), ("di", 30)] {
        let r = db.insert("people", with_id(name, doc! { "email": format!("{name}@x.io"), "age": age })).await;
        t.push(outcome(&r));
    }
    t.push(outcome(&db.insert("people", with_id("eve", doc! { "email": "ada@x.io", "age": 50 })).await));
    t.push(outcome(&db.insert("people", with_id("ada", doc! { "email": "other@x.io", "age": 1 })).await));
    t.push(outcome(&db.insert("people", with_id("fay", doc! { "email": "fay@x.io", "age": "old" })).await));
    t.push(outcome(&db.insert("strict", with_id("s1", doc! { "n": 1, "extra": true })).await));
    t.push(outcome(&db.insert("nowhere", doc! { "a": 1 }).await));

    t.push(outcome(&db.get("people", &id("cy")).await));
    t.push(outcome(&db.get("people", &id("zed")).await));
    t.push(outcome(&db.update("people", &id("bob"), Update::new().increment("age", 10)).await));
    t.push(outcome(&db.update("people", &id("zed"), Update::new().set("age", 1)).await));
    t.push(outcome(&db.replace("people", with_id("di", doc! { "email": "di@y.io", "age": 31 })).await));
    t.push(outcome(&db.delete("people", &id("cy")).await));
    t.push(outcome(&db.delete("people", &id("cy")).await));

    let found =
        db.find("people", &Query::new().filter(|f| f.gt("age", 30)).order_by("age", Order::Desc).limit(10)).await;
    t.push(format!("find: {}", found.as_deref().map(docs).unwrap_or_else(|e| e.to_string())));
    let selected = db.find("people", &Query::new().order_by("email", Order::Asc).select(["email"]).limit(2)).await;
    t.push(format!("select: {}", selected.as_deref().map(docs).unwrap_or_else(|e| e.to_string())));

    // A batch with a failing condition writes nothing; a good one commits.
    let (_, rev) = db.get_versioned("people", &id("ada")).await.expect("read").expect("ada exists");
    let bad = WriteBatch::new().insert("people", with_id("gus", doc! { "email": "gus@x.io", "age": 60 })).update_if(
        "people",
        &id("ada"),
        Update::new().set("age", 99),
        rev + 1,
    );
    t.push(outcome(&db.commit(bad).await.map(|_| ())));
    t.push(outcome(&db.get("people", &id("gus")).await));
    let good = WriteBatch::new()
        .insert("people", with_id("gus", doc! { "email": "gus@x.io", "age": 60 }))
        .update_if("people", &id("ada"), Update::new().set("age", 37), rev)
        .check("people", &id("nobody"), 0);
    t.push(outcome(&db.commit(good).await.map(|_| ())));
    t.push(outcome(&db.get("people", &id("ada")).await));

    // The live query saw every change, in order: its list is the query's result.
    let expected = db.find("people", &q).await.expect("query");
    while list != expected {
        next_live(&mut live).await.apply_to(&mut list);
    }
    t.push(format!("live: {}", docs(&list)));

    // A job (the outbox on the embedded handle, POST /v1/jobs on the client).
    let job = db.enqueue(&NewJob::new("welcome").payload(aurora::Value::from("ada")).queue("mail")).await;
    t.push(format!("job enqueued: {}", job.is_ok()));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_function_gives_the_same_results_embedded_and_over_the_client() {
    let embedded = Aurora::temporary().await.expect("embedded database");
    let local = scenario(&embedded).await;
    embedded.close().await.expect("close");

    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let client = Client::connect(&server.url(), None).await.expect("connect");
    let remote = scenario(&client).await;
    for (i, (a, b)) in local.iter().zip(&remote).enumerate() {
        assert_eq!(a, b, "step {i} differs");
    }
    assert_eq!(local.len(), remote.len());
    // The transcript is not trivially equal: errors happened and were matched.
    assert!(local.iter().any(|l| l.starts_with("UniqueViolation people.email")), "{local:#?}");
    assert!(local.iter().any(|l| l.starts_with("SchemaViolation people.age")), "{local:#?}");
    assert!(local.iter().any(|l| l.starts_with("Conflict people/ada")), "{local:#?}");
    assert!(local.iter().any(|l| l.starts_with("UnknownCollection nowhere")), "{local:#?}");
    let jobs = client.jobs(aurora::JobStatus::Pending, 10).await.expect("jobs");
    assert_eq!(jobs.iter().map(|j| (j.job_type.as_str(), j.queue.as_str())).collect::<Vec<_>>(), [("welcome", "mail")]);
    assert!(client.cancel_job(&jobs[0].id).await.expect("cancel"));
    assert_eq!(client.job(&jobs[0].id).await.expect("job").map(|j| j.status), Some("cancelled".to_string()));
    // Only failed and dead-letter jobs are retried.
    assert!(!client.retry_job(&jobs[0].id).await.expect("retry"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_page_with_cursors_and_explain_their_plan() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let client = Client::connect(&server.url(), None).await.expect("connect");
    let schema = Schema::new().field("n", FieldDefinition::new(FieldType::Int).indexed());
    client.create_collection("nums", &schema).await.expect("create");
    let batch = (0..25).fold(WriteBatch::new(), |b, n| b.insert("nums", doc! { "n": n }));
    client.commit(batch).await.expect("commit");
    let all = client
        .query("nums")
        .filter(|f| f.gte("n", 5))
        .order_by("n", Order::Asc)
        .limit(7)
        .collect_all()
        .await
        .expect("pages");
    let ns: Vec<i64> = all.iter().filter_map(|d| d.get("n").and_then(aurora::Value::as_i64)).collect();
    assert_eq!(ns, (5..25).collect::<Vec<_>>());
    let plan = client.query("nums").filter(|f| f.eq("n", 3)).explain().await.expect("plan");
    assert_eq!(plan["access"]["type"], "index", "{plan}");
    assert_eq!(plan["returned_rows"], 1, "{plan}");
    let info = client.collection("nums").await.expect("stats");
    assert_eq!(info.count, 25);
    assert_eq!(info.schema["fields"]["n"]["type"], "int");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_stream_resumes_across_a_server_restart_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(dir.path());
    let client = Client::connect(&server.url(), None).await.expect("connect");
    client.create_collection("log", &Schema::new()).await.expect("create");
    let mut changes = client.changes(Some("log"), None).await.expect("changes");
    let mut seen = Vec::new();
    for n in 0..5 {
        client.insert("log", doc! { "n": n }).await.expect("insert");
    }
    while seen.len() < 5 {
        let c = tokio::time::timeout(WAIT, changes.next()).await.expect("in time").expect("open").expect("no error");
        seen.push(c);
    }
    server.restart();
    // Writes while the stream reconnects, and after.
    let writer = Client::connect(&server.url(), None).await.expect("reconnect");
    for n in 5..10 {
        writer.insert("log", doc! { "n": n }).await.expect("insert");
    }
    while seen.len() < 10 {
        let c = tokio::time::timeout(WAIT, changes.next()).await.expect("in time").expect("open").expect("no error");
        seen.push(c);
    }
    let ns: Vec<i64> = seen
        .iter()
        .flat_map(|c| &c.events)
        .filter_map(|e| e.document.as_ref().and_then(|d| d.get("n")).and_then(aurora::Value::as_i64))
        .collect();
    assert_eq!(ns, (0..10).collect::<Vec<_>>(), "every commit exactly once, in order");
    assert!(seen.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(changes.position(), seen[9].sequence);
    // Nothing more (no duplicate delivered late).
    assert!(tokio::time::timeout(Duration::from_millis(500), changes.next()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_query_over_the_client_survives_a_server_restart_without_a_gap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(dir.path());
    let client = Client::connect(&server.url(), None).await.expect("connect");
    let schema = Schema::new().field("score", FieldDefinition::new(FieldType::Int).indexed());
    client.create_collection("board", &schema).await.expect("create");
    for (name, score) in [("a", 10), ("b", 20)] {
        client.insert("board", with_id(name, doc! { "score": score })).await.expect("insert");
    }
    let q = Query::new().filter(|f| f.gt("score", 5)).order_by("score", Order::Desc).limit(3);
    let mut live: aurora_client::EventStream<LiveEvent> = Box::pin(client.live("board", &q).await.expect("live"));
    let mut list = Vec::new();
    let mut sequences = Vec::new();
    let mut apply = |e: LiveEvent, list: &mut Vec<Document>| {
        sequences.push(e.sequence());
        e.apply_to(list);
    };
    apply(next_live(&mut live).await, &mut list);
    assert_eq!(list.len(), 2);
    client.insert("board", with_id("c", doc! { "score": 30 })).await.expect("insert");
    apply(next_live(&mut live).await, &mut list);
    assert_eq!(list[0].id, id("c"));

    server.restart();
    let writer = Client::connect(&server.url(), None).await.expect("reconnect");
    // Changes while the live query is reconnecting: a new leader, one
    // pushed out of the top 3, one that leaves the filter.
    writer.insert("board", with_id("d", doc! { "score": 40 })).await.expect("insert");
    writer.update("board", &id("a"), Update::new().set("score", 1)).await.expect("update");
    writer.insert("board", with_id("e", doc! { "score": 25 })).await.expect("insert");
    let expected = writer.find("board", &q).await.expect("query");
    let deadline = tokio::time::Instant::now() + WAIT;
    while list != expected {
        assert!(tokio::time::Instant::now() < deadline, "the live list never caught up: {list:?}");
        apply(next_live(&mut live).await, &mut list);
    }
    // And after the reconnection, live updates go on.
    writer.delete("board", &id("d")).await.expect("delete");
    let expected = writer.find("board", &q).await.expect("query");
    while list != expected {
        assert!(tokio::time::Instant::now() < deadline, "the live list never caught up: {list:?}");
        apply(next_live(&mut live).await, &mut list);
    }
    let ids: Vec<String> = list.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(ids, ["c", "e", "b"]);
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "updates in commit order: {sequences:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_sends_its_api_key_and_maps_refusals() {
    let dir = tempfile::tempdir().expect("temp dir");
    let admin = create_key(dir.path(), &["--admin", "*"]);
    let reader = create_key(dir.path(), &["--read", "notes"]);
    let server = Server::start(dir.path());
    match Client::connect(&server.url(), None).await.expect("health needs no key").list_collections().await {
        Err(Error::Remote { code, status: 401, .. }) => assert_eq!(code, "unauthorized"),
        other => panic!("without a key: {other:?}"),
    }
    let a = Client::connect(&server.url(), Some(&admin)).await.expect("connect");
    a.create_collection("notes", &Schema::new()).await.expect("admin creates");
    let r = Client::connect(&server.url(), Some(&reader)).await.expect("connect");
    assert_eq!(r.list_collections().await.expect("reader lists"), ["notes"]);
    match r.insert("notes", doc! { "x": 1 }).await {
        Err(Error::Remote { code, status: 403, .. }) => assert_eq!(code, "forbidden"),
        other => panic!("a reader writing: {other:?}"),
    }
}
