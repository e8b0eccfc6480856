//! The fixes of the issue-21 review's findings, each with its siblings:
//! connections (request-head deadline, idle keep-alive, the connection
//! bound, hyper's own answers in JSON, a graceful stop through all that),
//! queries that stop at their deadline or when their client leaves,
//! cursors (small, tied to their query), ids in paths, filters on `_id`,
//! index names, nesting reported as `too_deep`, updates that change
//! nothing, key rights on impossible names, and the warning when a
//! loopback server opens up. Black-box against the real binary, on
//! loopback; every wait is bounded.

#![cfg(feature = "server")]

mod server_support;

use serde_json::{json, Value as Json};
use server_support::{aurora, eventually, keys, temp, Client, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Waits for the server to close `s` (EOF or reset); how long it took, or
/// `None` if it was still open after `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(started.elapsed()),
            Err(_) => return None,
        }
        if started.elapsed() > within {
            return None;
        }
    }
}

fn connect(addr: &str) -> TcpStream {
    TcpStream::connect(addr).expect("connect")
}

/// CPU time (user + system) of a process, in seconds (Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect(")") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

/// A collection `big` of `batches` × 500 documents with a 4 000-letter
/// field, and a filter that compares each with `branches` substrings.
fn expensive(c: &Client, batches: usize, branches: usize) -> Json {
    c.post_ok("/v1/collections", &json!({ "name": "big" }), 201);
    let mut seed = 7u64;
    let mut text = |n: usize| -> String {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (b'a' + ((seed >> 33) % 8) as u8) as char
            })
            .collect()
    };
    for b in 0..batches {
        let writes: Vec<Json> = (0..500)
            .map(|i| json!({"op": "insert", "collection": "big", "document": {"_id": format!("d{b}-{i}"), "n": b * 500 + i, "s": text(4000)}}))
            .collect();
        c.post_ok("/v1/transactions", &json!({ "writes": writes }), 200);
    }
    let or: Vec<Json> = (0..branches).map(|i| json!({"s": {"$contains": format!("zq{i}x")}})).collect();
    json!({ "$or": or })
}

// ---- connections ------------------------------------------------------------

/// The request-head deadline, and what it must not touch: a head sent a
/// byte at a time past the deadline is cut; an idle keep-alive connection
/// is closed after as long; a kept-alive connection that keeps asking is
/// served; an event stream (a response being written) is never cut by it.
#[test]
fn request_heads_have_a_deadline_and_idle_connections_close() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &["--header-timeout-ms", "1500"]);
    server.client().post_ok("/v1/collections", &json!({ "name": "c" }), 201);

    // Trickled: one byte every 300 ms — always something, never a whole head.
    let mut s = connect(&server.addr);
    let head = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let started = Instant::now();
    let mut cut = false;
    for b in head {
        if s.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let cut = cut || closed_within(&mut s, Duration::from_secs(1)).is_some();
    assert!(cut, "a head trickled over {:?} was not cut", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(8), "cut only after {:?}", started.elapsed());

    // Idle keep-alive: answered, then closed after about the deadline.
    let mut s = connect(&server.addr);
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).expect("answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    let idle = closed_within(&mut s, Duration::from_secs(10)).expect("an idle keep-alive connection is closed");
    assert!(idle >= Duration::from_millis(1000), "closed after {idle:?}, before the deadline");

    // Busy keep-alive: ten requests 500 ms apart on one connection, each
    // answered (every new head gets the whole deadline).
    let mut s = connect(&server.addr);
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    for i in 0..10 {
        s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap_or_else(|e| panic!("request {i}: {e}"));
        let n = s.read(&mut buf).unwrap_or_else(|e| panic!("answer {i}: {e}"));
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "answer {i}: {}", String::from_utf8_lossy(&buf[..n]));
        std::thread::sleep(Duration::from_millis(500));
    }

    // A stream stays open past the deadline and still delivers.
    let c = server.client();
    let mut stream = c.events("/v1/changes?collection=c", &[]).expect("stream");
    assert_eq!(stream.next(Duration::from_secs(5)).expect("ready").event, "ready");
    std::thread::sleep(Duration::from_millis(3000));
    c.post_ok("/v1/collections/c/documents", &json!({ "_id": "late" }), 201);
    let e = stream.next(Duration::from_secs(5)).expect("a commit after the deadline");
    assert_eq!(e.event, "commit", "{e:?}");
}

/// `--max-connections`: at the limit a new connection waits (it is not
/// refused, and nothing is answered on it) until one closes.
#[test]
fn connections_beyond_the_limit_wait_their_turn() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &["--max-connections", "2"]);
    let mut held: Vec<TcpStream> = (0..2).map(|_| connect(&server.addr)).collect();
    for s in &mut held {
        s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).expect("answer");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }
    // The third connects (the kernel's backlog) but gets no answer…
    let mut third = connect(&server.addr);
    third.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
    third.set_read_timeout(Some(Duration::from_millis(800))).expect("timeout");
    let mut buf = [0u8; 512];
    assert!(third.read(&mut buf).is_err(), "a third connection was served beyond --max-connections 2");
    // …until one of the two closes.
    held.pop();
    third.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let n = third.read(&mut buf).expect("served once a slot is free");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
}

/// SIGTERM through the connection layer: with an event stream, an idle
/// keep-alive connection and a connection in the middle of its head all
/// open, the server still stops cleanly and promptly.
#[test]
fn sigterm_stops_the_server_with_every_kind_of_connection_open() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "c" }), 201);
    let mut stream = c.events("/v1/changes?collection=c", &[]).expect("stream");
    assert_eq!(stream.next(Duration::from_secs(5)).expect("ready").event, "ready");
    let mut idle = connect(&server.addr);
    idle.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut buf = [0u8; 512];
    let _ = idle.read(&mut buf).expect("answer");
    let mut half = connect(&server.addr);
    half.write_all(b"GET /v1/health HTTP/1.1\r\nHost").expect("write");
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert!(server.terminate(Duration::from_secs(15)), "the server did not exit cleanly");
    assert!(started.elapsed() < Duration::from_secs(12), "it took {:?}", started.elapsed());
}

/// hyper's own answers, as JSON: a bad header line, a bad method, a bad
/// version — and the answers of the API itself with those statuses are
/// untouched (a JSON 400 of the router is not rewritten).
#[test]
fn malformed_requests_get_json_errors() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    for raw in [
        &b"GET /v1/health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"[..],
        b"G\x01T /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n",
    ] {
        let r = c.raw(raw);
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "bad_request"),
            "{:?}: {}",
            String::from_utf8_lossy(raw),
            r.text()
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let r = c.raw(b"POST /v1/collections HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"), "{}", r.text());
    assert!(r.json()["error"]["at"].is_string(), "the router's own error, with its details: {}", r.text());
    // The server is fine afterwards.
    assert_eq!(c.get("/v1/health").status, 200);
}

// ---- queries stop ------------------------------------------------------------

/// A query stops — the server's CPU goes quiet — however it ends: past
/// the time limit on the query endpoint, past it in a live query's
/// initial load, or because its client disconnected before the limit.
#[test]
fn a_stopped_query_stops_working_whichever_way_it_stopped() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &["--query-timeout-ms", "300"]);
    let c = server.client();
    let filter = expensive(&c, 40, 300);
    let quiet = |what: &str| {
        std::thread::sleep(Duration::from_millis(700));
        let before = cpu_seconds(server.pid());
        std::thread::sleep(Duration::from_secs(2));
        let burnt = cpu_seconds(server.pid()) - before;
        assert!(burnt < 0.4, "{what}: the idle server burnt {burnt:.2} s of CPU in 2 s");
    };

    // The query endpoint: 503 within the limit plus a little.
    let t = Instant::now();
    let r = c.post("/v1/collections/big/query", &json!({ "filter": filter, "order": ["s"], "limit": 5 }));
    assert_eq!((r.status, r.code().as_str()), (503, "query_timeout"), "{}", r.text());
    assert!(t.elapsed() < Duration::from_secs(3), "answered after {:?}", t.elapsed());
    assert_eq!(r.json()["error"]["limit_ms"], 300);
    quiet("after a query answered 503");

    // A live query's initial load: 503 too, and it stops.
    let q = serde_json::to_string(&json!({ "filter": filter })).expect("json");
    let q: String = q
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let live = c.events(&format!("/v1/collections/big/live?q={q}"), &[]).err().expect("refused");
    assert_eq!((live.status, live.code().as_str()), (503, "query_timeout"));
    quiet("after a live query answered 503");

    // A client that gives up before the limit: its query stops too (the
    // limit is long here, so only the disconnection can stop it).
    drop(server);
    let (_tmp2, data2) = temp();
    let server = Server::start(&data2, &["--query-timeout-ms", "60000"]);
    let c = server.client();
    let filter = expensive(&c, 40, 300);
    let body = json!({ "filter": filter, "limit": 5 }).to_string();
    for _ in 0..2 {
        let mut s = connect(&server.addr);
        let req = format!(
            "POST /v1/collections/big/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("write");
        std::thread::sleep(Duration::from_millis(300));
        drop(s);
    }
    std::thread::sleep(Duration::from_millis(700));
    let before = cpu_seconds(server.pid());
    std::thread::sleep(Duration::from_secs(2));
    let burnt = cpu_seconds(server.pid()) - before;
    assert!(burnt < 0.4, "queries whose clients left went on: {burnt:.2} s of CPU in 2 s");
    // And a cheap query is answered at once.
    let t = Instant::now();
    let r = c.post("/v1/collections/big/query", &json!({ "filter": { "_id": "d0-1" } }));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

// ---- cursors -------------------------------------------------------------------

/// A cursor belongs to its collection, filter and order (not to its page
/// size or projection); a large sort value makes a small cursor that still
/// pages exactly.
#[test]
fn cursors_are_small_and_belong_to_their_query() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    for name in ["a", "b"] {
        c.post_ok("/v1/collections", &json!({ "name": name }), 201);
        for i in 0..6 {
            c.post_ok(
                &format!("/v1/collections/{name}/documents"),
                &json!({ "_id": format!("d{i}"), "n": i, "t": i % 2 }),
                201,
            );
        }
    }
    let base = json!({ "filter": { "n": { "$gte": 0 } }, "order": ["n"], "limit": 2 });
    let page = c.post_ok("/v1/collections/a/query", &base, 200);
    let cursor = page["next_cursor"].clone();
    let with = |mut q: Json| {
        q["cursor"] = cursor.clone();
        q
    };
    let refused = |path: &str, q: Json| {
        let r = c.post(path, &q);
        assert_eq!((r.status, r.code().as_str()), (400, "invalid_cursor"), "{path} {q}: {}", r.text());
    };
    refused("/v1/collections/b/query", with(base.clone()));
    refused("/v1/collections/a/query", with(json!({ "filter": { "n": { "$gte": 1 } }, "order": ["n"], "limit": 2 })));
    refused(
        "/v1/collections/a/query",
        with(json!({ "filter": { "n": { "$gte": 0 } }, "order": [{ "field": "n", "order": "desc" }], "limit": 2 })),
    );
    refused("/v1/collections/a/query", with(json!({ "order": ["n"], "limit": 2 })));
    // Same query, other page size and projection: fine.
    let next = c.post_ok(
        "/v1/collections/a/query",
        &with(json!({ "filter": { "n": { "$gte": 0 } }, "order": ["n"], "limit": 3, "select": ["t"] })),
        200,
    );
    let ids: Vec<&str> =
        next["results"].as_array().expect("results").iter().map(|d| d["_id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["d2", "d3", "d4"]);

    // Sort values of 100 KB: every cursor stays small, and paging through
    // gives every document once, in order.
    c.post_ok("/v1/collections", &json!({ "name": "big" }), 201);
    for i in 0..5 {
        c.post_ok(
            "/v1/collections/big/documents",
            &json!({ "_id": format!("b{i}"), "s": format!("{i}{}", "z".repeat(100_000)) }),
            201,
        );
    }
    let mut seen = Vec::new();
    let mut cursor = Json::Null;
    for _ in 0..10 {
        let mut q = json!({ "order": [{ "field": "s", "order": "desc" }], "select": [], "limit": 2 });
        if !cursor.is_null() {
            q["cursor"] = cursor.clone();
        }
        let page = c.post_ok("/v1/collections/big/query", &q, 200);
        seen.extend(
            page["results"].as_array().expect("results").iter().map(|d| d["_id"].as_str().expect("id").to_string()),
        );
        cursor = page["next_cursor"].clone();
        if let Some(t) = cursor.as_str() {
            assert!(t.len() < 300, "a cursor of {} bytes", t.len());
        } else {
            break;
        }
    }
    assert_eq!(seen, ["b4", "b3", "b2", "b1", "b0"]);
}

// ---- ids in paths ----------------------------------------------------------------

/// Every kind of id reaches its document through the path: UUID ids, text
/// ids, text ids spelled like a UUID (`~` in front), text ids starting
/// with `~` (`~~`), with every document method, and through `Location`.
#[test]
fn every_kind_of_id_has_a_path() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "t" }), 201);
    let uuid = "0190a6b2-0000-7000-8000-000000000002";
    let cases = [
        (json!(uuid), format!("/v1/collections/t/documents/{uuid}")),
        (json!({ "$text": uuid }), format!("/v1/collections/t/documents/~{uuid}")),
        (json!("~home"), "/v1/collections/t/documents/~~home".to_string()),
        (json!("plain id"), "/v1/collections/t/documents/plain%20id".to_string()),
        (json!("~"), "/v1/collections/t/documents/~~".to_string()),
    ];
    for (i, (id, path)) in cases.iter().enumerate() {
        let r = c.post("/v1/collections/t/documents", &json!({ "_id": id, "n": i }));
        assert_eq!(r.status, 201, "{id}: {}", r.text());
        assert_eq!(r.header("location"), Some(path.as_str()), "{id}");
        assert_eq!(&r.json()["_id"], id);
    }
    for (i, (id, path)) in cases.iter().enumerate() {
        let got = c.get(path);
        assert_eq!(got.status, 200, "GET {path}: {}", got.text());
        assert_eq!((&got.json()["_id"], &got.json()["n"]), (id, &json!(i)), "GET {path}");
        let put = c.request("PUT", path, Some(&json!({ "n": i, "put": true }).to_string()));
        assert_eq!((put.status, &put.json()["_id"]), (200, id), "PUT {path}: {}", put.text());
        let patch = c.request("PATCH", path, Some(r#"{"$inc": {"n": 100}}"#));
        assert_eq!(patch.json()["n"], json!(i + 100), "PATCH {path}: {}", patch.text());
    }
    // The UUID id and the text id spelled like it are two documents.
    assert_eq!(c.post_ok("/v1/collections/t/query", &json!({}), 200)["results"].as_array().map(Vec::len), Some(5));
    for (id, path) in &cases {
        let del = c.request("DELETE", path, None);
        assert_eq!((del.status, &del.json()["_id"]), (200, id), "DELETE {path}: {}", del.text());
        assert_eq!(c.get(path).code(), "not_found");
    }
    // `~` alone is the empty text id: not an id.
    assert_eq!(c.get("/v1/collections/t/documents/~").code(), "invalid_id");
}

// ---- filters on `_id` ------------------------------------------------------------

#[test]
fn filters_on_id_match_ids() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok(
        "/v1/collections",
        &json!({ "name": "i", "schema": { "fields": { "n": { "type": "int" } }, "unknown_fields": "reject" } }),
        201,
    );
    let uuid = "0190a6b2-0000-7000-8000-00000000000a";
    for (id, n) in
        [(json!("a1"), 1), (json!("a2"), 2), (json!("b1"), 3), (json!(uuid), 4), (json!({ "$text": uuid }), 5)]
    {
        c.post_ok("/v1/collections/i/documents", &json!({ "_id": id, "n": n }), 201);
    }
    let ns = |filter: Json| -> Vec<i64> {
        let r = c.post_ok("/v1/collections/i/query", &json!({ "filter": filter, "order": ["n"] }), 200);
        r["results"].as_array().expect("results").iter().map(|d| d["n"].as_i64().expect("n")).collect()
    };
    assert_eq!(ns(json!({ "_id": "a2" })), [2]);
    assert_eq!(ns(json!({ "_id": { "$in": ["a1", "b1", "zz"] } })), [1, 3]);
    assert_eq!(ns(json!({ "_id": { "$ne": "a1" } })), [2, 3, 4, 5]);
    assert_eq!(ns(json!({ "_id": { "$gte": "a2", "$lt": "c" } })), [2, 3]);
    assert_eq!(ns(json!({ "_id": { "$startsWith": "a" } })), [1, 2]);
    // A UUID id by its text; a text id spelled like a UUID by `$text`.
    assert_eq!(ns(json!({ "_id": uuid })), [4]);
    assert_eq!(ns(json!({ "_id": { "$text": uuid } })), [5]);
    assert_eq!(ns(json!({ "_id": { "$in": [uuid, { "$text": uuid }] } })), [4, 5]);
    assert_eq!(ns(json!({ "$or": [{ "_id": "a1" }, { "n": 3 }] })), [1, 3]);
    assert_eq!(ns(json!({ "_id": "a1", "n": 2 })), Vec::<i64>::new());
    // Read by id, not scanned.
    let plan = c.post_ok(
        "/v1/collections/i/query",
        &json!({ "filter": { "_id": { "$in": ["a1", "a2"] } }, "explain": true }),
        200,
    );
    assert_eq!(plan["plan"]["access"], json!({ "type": "ids", "count": 2 }), "{plan}");
    assert_eq!(plan["plan"]["examined_rows"], 2);
    // An id is a text or a UUID.
    let r = c.post("/v1/collections/i/query", &json!({ "filter": { "_id": 5 } }));
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_query"), "{}", r.text());
    // Live queries and change streams see the same.
    let q = "%7B%22filter%22%3A%7B%22_id%22%3A%22a1%22%7D%7D"; // {"filter":{"_id":"a1"}}
    let mut live = c.events(&format!("/v1/collections/i/live?q={q}"), &[]).expect("live");
    let snapshot = live.next(Duration::from_secs(5)).expect("snapshot");
    assert_eq!(snapshot.json()["results"].as_array().map(Vec::len), Some(1), "{snapshot:?}");
    c.request("PATCH", "/v1/collections/i/documents/a2", Some(r#"{"n": 20}"#));
    c.request("PATCH", "/v1/collections/i/documents/a1", Some(r#"{"n": 10}"#));
    let update = live.next(Duration::from_secs(5)).expect("update");
    assert_eq!(update.json()["changes"][0]["document"]["_id"], "a1", "{update:?}");
}

// ---- index names ----------------------------------------------------------------

#[test]
fn an_index_on_a_field_with_a_comma_and_the_compound_index_live_apart() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "x" }), 201);
    c.post_ok("/v1/collections/x/documents", &json!({ "a,b": 1, "a": 2, "b": 3, "c\\d": 4 }), 201);
    let single = c.post_ok("/v1/collections/x/indexes", &json!({ "fields": ["a,b"] }), 201);
    let compound = c.post_ok("/v1/collections/x/indexes", &json!({ "fields": ["a", "b"] }), 201);
    let backslash = c.post_ok("/v1/collections/x/indexes", &json!({ "fields": ["c\\d", "a,b"] }), 201);
    assert_eq!(single["name"], "a\\,b");
    assert_eq!(compound["name"], "a,b");
    assert_eq!(backslash["name"], "c\\\\d,a\\,b");
    let names: Vec<String> = c.get("/v1/collections/x/indexes").json()["indexes"]
        .as_array()
        .expect("indexes")
        .iter()
        .map(|i| i["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for created in [&single, &compound, &backslash] {
        let name = created["name"].as_str().expect("name");
        let encoded: String = name
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        let r = c.request("DELETE", &format!("/v1/collections/x/indexes/{encoded}"), None);
        assert_eq!(r.status, 200, "DELETE {name}: {}", r.text());
        let left = c.get("/v1/collections/x/indexes").json()["indexes"].as_array().map(Vec::len);
        assert!(left.is_some_and(|n| n < 3), "{name}");
        // Dropped: the same name again is no longer there.
        assert_eq!(c.request("DELETE", &format!("/v1/collections/x/indexes/{encoded}"), None).code(), "no_index");
    }
    let r = c.request("DELETE", "/v1/collections/x/indexes/a%5Cx", None);
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_name"), "{}", r.text());
}

// ---- nesting ----------------------------------------------------------------------

/// Nesting past the limit is `too_deep` wherever it comes: a document, a
/// transaction's document, a job's payload, a patch, a filter, a live
/// query's `q` — whether the nesting is past the parser's depth (128) or
/// only past the limit (100).
#[test]
fn deep_nesting_is_too_deep_everywhere() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "n" }), 201);
    c.post_ok("/v1/collections/n/documents", &json!({ "_id": "d" }), 201);
    for depth in [110, 5_000] {
        let value = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let filter = format!("{}{{\"n\":1}}{}", "{\"$not\":".repeat(depth), "}".repeat(depth));
        let cases = [
            ("POST", "/v1/collections/n/documents".to_string(), format!("{{\"x\":{value}}}")),
            (
                "POST",
                "/v1/transactions".to_string(),
                format!("{{\"writes\":[{{\"op\":\"insert\",\"collection\":\"n\",\"document\":{{\"x\":{value}}}}}]}}"),
            ),
            ("POST", "/v1/jobs".to_string(), format!("{{\"type\":\"t\",\"payload\":{value}}}")),
            ("PATCH", "/v1/collections/n/documents/d".to_string(), format!("{{\"$set\":{{\"x\":{value}}}}}")),
            ("POST", "/v1/collections/n/query".to_string(), format!("{{\"filter\":{filter}}}")),
        ];
        for (method, path, body) in &cases {
            let r = c.request(method, path, Some(body));
            assert_eq!(
                (r.status, r.code().as_str()),
                (400, "too_deep"),
                "{method} {path} at depth {depth}: {}",
                r.text()
            );
        }
        let q: String = format!("{{\"filter\":{filter}}}")
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        if depth < 1000 {
            let live = c.events(&format!("/v1/collections/n/live?q={q}"), &[]).err().expect("refused");
            assert_eq!((live.status, live.code().as_str()), (400, "too_deep"), "live at depth {depth}");
        }
    }
}

// ---- updates that change nothing -------------------------------------------------

#[test]
fn a_patch_that_changes_nothing_writes_nothing() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "p" }), 201);
    c.post_ok("/v1/collections/p/documents", &json!({ "_id": "d", "n": 1 }), 201);
    let etag = c.get("/v1/collections/p/documents/d").header("etag").map(str::to_string);
    let head = c.get("/v1/health").json()["feed_head"].clone();
    let mut stream = c.events("/v1/changes?collection=p", &[]).expect("stream");
    assert_eq!(stream.next(Duration::from_secs(5)).expect("ready").event, "ready");
    for body in ["{}", r#"{"$set": {}}"#, r#"{"$unset": []}"#] {
        let r = c.request("PATCH", "/v1/collections/p/documents/d", Some(body));
        assert_eq!((r.status, r.json()), (200, json!({ "_id": "d", "n": 1 })), "{body}");
    }
    let tx = c.post_ok(
        "/v1/transactions",
        &json!({ "writes": [{ "op": "update", "collection": "p", "id": "d", "update": {} }] }),
        200,
    );
    assert_eq!(tx["results"][0]["document"], json!({ "_id": "d", "n": 1 }));
    assert_eq!(c.get("/v1/collections/p/documents/d").header("etag").map(str::to_string), etag);
    assert_eq!(c.get("/v1/health").json()["feed_head"], head, "no commit");
    // The first event the stream gets is the next real change.
    c.request("PATCH", "/v1/collections/p/documents/d", Some(r#"{"n": 2}"#));
    let e = stream.next(Duration::from_secs(5)).expect("a commit");
    assert_eq!(e.json()["changes"][0]["document"]["n"], 2, "{e:?}");
    // A patch of a missing document is still `not_found`.
    assert_eq!(c.request("PATCH", "/v1/collections/p/documents/nobody", Some("{}")).code(), "not_found");
}

// ---- keys ----------------------------------------------------------------------------

#[test]
fn key_rights_on_impossible_names_are_refused_and_opening_up_is_logged() {
    let (_tmp, data) = temp();
    std::fs::create_dir_all(&data).expect("dir");
    let long = "x".repeat(200);
    for bad in ["a\nb", "_system", "", long.as_str()] {
        let out = aurora().args(["keys", "create", "--data"]).arg(&data).args(["--read", bad]).output().expect("run");
        assert!(!out.status.success(), "a right on {bad:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no right can be given"), "{err}");
    }
    let ok = keys(&data, &["create", "--read", "_jobs", "--write", "orders", "--admin", "*"]);
    assert!(ok.starts_with("aurora_"));
    let server = Server::start(&data, &[]);
    let c = server.client();
    assert_eq!(c.get("/v1/collections").status, 401);
    let id = ok.strip_prefix("aurora_").and_then(|t| t.split_once('_')).map(|(id, _)| id.to_string()).expect("id");
    keys(&data, &["revoke", &id]);
    eventually(Duration::from_secs(10), "the loopback server opens again", || {
        (c.get("/v1/collections").status == 200).then_some(())
    });
    let log = eventually(Duration::from_secs(5), "the warning", || {
        let log = server.log_text();
        log.contains("the last API key was revoked").then_some(log)
    });
    assert!(log.contains("WARN") && log.contains("WITHOUT a key"), "{log}");
}
