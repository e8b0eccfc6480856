//! Hostile review of issue 21 (the server): each test is a break found by
//! the review, written as the behaviour the documentation promises; each
//! failed before its fix (their siblings are in `server_hardening.rs`).
//! Black-box against the real binary, on loopback only; every loop is
//! bounded in count and time.

#![cfg(feature = "server")]

mod server_support;

use serde_json::{json, Value as Json};
use server_support::{keys, temp, Client, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends a raw request on a fresh connection and returns the socket
/// without reading (the caller decides whether and when to read).
fn send_raw(addr: &str, request: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(request.as_bytes()).expect("write");
    s
}

/// Reads the status line of a response on `s`, within `within`;
/// `None` if nothing came.
fn status_within(s: &mut TcpStream, within: Duration) -> Option<u16> {
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    let deadline = Instant::now() + within;
    while !got.windows(2).any(|w| w == b"\r\n") {
        if Instant::now() >= deadline {
            return None;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).split_whitespace().nth(1).and_then(|c| c.parse().ok())
}

/// `GET /v1/health` with its own deadline: the status, or `None` if the
/// server did not answer within `within`.
fn health_within(addr: &str, within: Duration) -> Option<u16> {
    let mut s = send_raw(addr, "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    status_within(&mut s, within)
}

/// A deterministic pseudo-random text of `n` letters a..h.
fn text(seed: &mut u64, n: usize) -> String {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (b'a' + ((*seed >> 33) % 8) as u8) as char
        })
        .collect()
}

/// A collection `big` of `batches` × 500 documents with a 4 000-letter
/// field `s`, and a filter that must compare every one of them against
/// `branches` substrings (none matches).
fn expensive_setup(c: &Client, batches: usize, branches: usize) -> Json {
    c.post_ok("/v1/collections", &json!({ "name": "big" }), 201);
    let mut seed = 7;
    for b in 0..batches {
        let writes: Vec<Json> = (0..500)
            .map(|i| json!({"op": "insert", "collection": "big", "document": {"_id": format!("d{b}-{i}"), "s": text(&mut seed, 4000)}}))
            .collect();
        c.post_ok("/v1/transactions", &json!({ "writes": writes }), 200);
    }
    let or: Vec<Json> = (0..branches).map(|i| json!({"s": {"$contains": format!("zq{i}x")}})).collect();
    json!({ "$or": or })
}

fn url_encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// CPU time (user + system) of a process, in seconds (Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect(")") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime), counted from `state` (field 3).
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

// ---- auth ------------------------------------------------------------------

/// Revocation must take effect: a key revoked while one of its change
/// streams is open must not go on receiving the collection's commits.
/// Found: the stream keeps delivering every commit forever (rights are
/// checked once, when the stream opens).
#[test]
fn review_a_revoked_key_keeps_receiving_commits_on_its_open_stream() {
    let (_tmp, data) = temp();
    std::fs::create_dir_all(&data).expect("dir");
    let admin = keys(&data, &["create", "--admin", "*"]);
    let reader = keys(&data, &["create", "--read", "orders"]);
    let server = Server::start(&data, &[]);
    let a = server.client_with(&admin);
    a.post_ok("/v1/collections", &json!({ "name": "orders" }), 201);
    let r = server.client_with(&reader);
    let mut changes = r.events("/v1/changes?collection=orders", &[]).expect("change stream");
    assert_eq!(changes.expect(Duration::from_secs(10)).event, "ready");
    let mut live = r.events("/v1/collections/orders/live", &[]).expect("live stream");
    assert_eq!(live.expect(Duration::from_secs(10)).event, "snapshot");

    let id = reader.strip_prefix("aurora_").and_then(|t| t.split_once('_')).map(|(id, _)| id.to_string()).expect("id");
    keys(&data, &["revoke", &id]);
    // The server refuses the key for new requests within half a second or so…
    let started = Instant::now();
    while r.get("/v1/collections/orders").status != 401 {
        assert!(started.elapsed() < Duration::from_secs(10), "the revoked key is still accepted");
        std::thread::sleep(Duration::from_millis(100));
    }
    // …but its open streams go on.
    a.post_ok("/v1/collections/orders/documents", &json!({"_id": "after-revocation", "secret": "s3cr3t"}), 201);
    let mut leaked = Vec::new();
    for stream in [&mut changes, &mut live] {
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            match stream.next(Duration::from_millis(200)) {
                Some(e) if e.data.contains("after-revocation") => leaked.push(e),
                Some(_) => {}
                None => {}
            }
        }
    }
    assert!(leaked.is_empty(), "a revoked key received, on streams opened before the revocation: {leaked:?}");
}

// ---- limits: query time ---------------------------------------------------

/// A live query's initial snapshot is a query like any other: it must be
/// bound by `--query-timeout-ms`, and it must never stall the server.
/// Found: the snapshot runs on the async runtime's worker threads with no
/// time limit; a few expensive live queries freeze the whole server —
/// `/v1/health` included — for as long as they run (minutes), and even
/// SIGTERM cannot stop it.
#[test]
fn review_expensive_live_queries_freeze_the_whole_server() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &["--query-timeout-ms", "300"]);
    let c = server.client();
    let filter = expensive_setup(&c, 40, 300);
    assert_eq!(health_within(&server.addr, Duration::from_secs(5)), Some(200));
    // The same query over POST is cut off at the limit.
    let r = c.post("/v1/collections/big/query", &json!({ "filter": filter, "limit": 10 }));
    assert_eq!((r.status, r.code().as_str()), (503, "query_timeout"), "{}", r.text());

    let q = url_encode(&json!({ "filter": filter, "limit": 10 }).to_string());
    let mut lives: Vec<TcpStream> = (0..4)
        .map(|_| {
            send_raw(
                &server.addr,
                &format!("GET /v1/collections/big/live?q={q} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let health = health_within(&server.addr, Duration::from_secs(5));
    let answered: Vec<Option<u16>> = lives.iter_mut().map(|s| status_within(s, Duration::from_secs(2))).collect();
    assert_eq!(health, Some(200), "the server stopped answering /v1/health while live queries computed their snapshot");
    assert!(
        answered.iter().all(|s| s.is_some()),
        "live queries did not answer within the query time limit (300 ms) + 7 s: {answered:?}"
    );
}

/// A query answered `query_timeout` must stop working. Found: the work
/// goes on in the blocking pool after the 503 (and its place among the
/// `max_concurrent_queries` is already given back), so each cheap request
/// buys a full expensive scan, with no bound on how many run at once.
#[test]
fn review_a_timed_out_query_keeps_burning_cpu_after_its_503() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &["--query-timeout-ms", "200"]);
    let c = server.client();
    let filter = expensive_setup(&c, 40, 300);
    for _ in 0..3 {
        let r = c.post("/v1/collections/big/query", &json!({ "filter": filter, "limit": 10 }));
        assert_eq!((r.status, r.code().as_str()), (503, "query_timeout"), "{}", r.text());
    }
    std::thread::sleep(Duration::from_secs(1));
    let before = cpu_seconds(server.pid());
    std::thread::sleep(Duration::from_secs(3));
    let burnt = cpu_seconds(server.pid()) - before;
    assert!(
        burnt < 0.5,
        "3 queries answered 503 query_timeout ≥ 1 s ago: the idle server still burnt {burnt:.2} s of CPU in 3 s"
    );
}

// ---- limits: streams ------------------------------------------------------

/// "A stuck or slow client costs the server at most its buffer": once a
/// stream is cut off (`slow_consumer`), it is over. Found: a client that
/// stopped reading keeps its connection and its place among
/// `--max-streams` forever after the cut-off, so a few stuck clients lock
/// every other client out (`429 too_many_streams`) for good.
#[test]
fn review_a_cut_off_stream_keeps_its_stream_slot_forever() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &["--max-streams", "2", "--stream-buffer", "2"]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "feed" }), 201);
    // Two clients open a stream and never read it.
    let stuck: Vec<TcpStream> = (0..2)
        .map(|_| {
            send_raw(
                &server.addr,
                "GET /v1/changes?collection=feed HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Enough data to fill both sockets' buffers, then the stream buffers.
    let big = "x".repeat(1 << 20);
    let started = Instant::now();
    let slow = |c: &Client| {
        let m = c.get("/v1/metrics").text();
        m.lines()
            .find_map(|l| l.strip_prefix("aurora_http_slow_consumers_total "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let mut i = 0;
    while slow(&c).unwrap_or(0) < 2 {
        assert!(i < 120 && started.elapsed() < Duration::from_secs(240), "the stuck streams were never cut off");
        c.post_ok("/v1/collections/feed/documents", &json!({ "i": i, "big": big }), 201);
        i += 1;
    }
    // Both stuck streams are cut off: their slots should be free again.
    std::thread::sleep(Duration::from_secs(2));
    let third = c.events("/v1/changes?collection=feed", &[]);
    let status = third.as_ref().map_or_else(|r| r.status, |_| 200);
    drop(stuck);
    assert_eq!(status, 200, "after both stuck streams were cut off as slow consumers, a new stream is still refused");
}

// ---- documents and ids ----------------------------------------------------

/// A document whose text id is spelled like a UUID (`{"$text": …}`) is
/// created with `201` and a `Location`, but no document endpoint can reach
/// it: the path segment is always read as a UUID id.
#[test]
fn review_a_text_id_spelled_like_a_uuid_cannot_be_read_back() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "t" }), 201);
    let r = c.post(
        "/v1/collections/t/documents",
        &json!({"_id": {"$text": "0190a6b2-0000-7000-8000-000000000002"}, "n": 1}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let location = r.header("location").expect("Location").to_string();
    let got = c.get(&location);
    assert_eq!(got.status, 200, "GET {location} (the Location of the insert): {}", got.text());
    let del = c.request("DELETE", &location, None);
    assert_eq!(del.status, 200, "DELETE {location}: {}", del.text());
}

// ---- queries and cursors --------------------------------------------------

/// The `next_cursor` of a page must be usable: sending it back must not
/// exceed the server's own body limit. Found: the cursor carries the sort
/// values of the last item verbatim (base64 of JSON), so ordering by a
/// large field yields a cursor bigger than `--max-body-bytes`, and the
/// next page is refused `413`.
#[test]
fn review_a_next_cursor_can_be_too_large_to_send_back() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "p" }), 201);
    let big = "y".repeat(3_300_000);
    for id in ["a", "b"] {
        c.post_ok("/v1/collections/p/documents", &json!({ "_id": id, "s": format!("{id}{big}") }), 201);
    }
    let page = c.post_ok("/v1/collections/p/query", &json!({ "order": ["s"], "select": [], "limit": 1 }), 200);
    let cursor = page["next_cursor"].as_str().expect("a next cursor").to_string();
    let next =
        c.post("/v1/collections/p/query", &json!({ "order": ["s"], "select": [], "limit": 1, "cursor": cursor }));
    assert_eq!(
        next.status,
        200,
        "the next page, with the cursor the server gave out ({} bytes): {}",
        cursor.len(),
        next.text()
    );
}

/// `invalid_cursor`: "the cursor is not one this server gave out for this
/// query". Found: a cursor is not tied to its query; one from another
/// order (or collection) is accepted and silently pages from the wrong
/// place.
#[test]
fn review_a_cursor_from_another_query_is_accepted() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "q" }), 201);
    for i in 0..6 {
        c.post_ok(
            "/v1/collections/q/documents",
            &json!({ "_id": format!("d{i}"), "n": i, "s": format!("s{}", 9 - i) }),
            201,
        );
    }
    let page = c.post_ok("/v1/collections/q/query", &json!({ "order": ["n"], "limit": 2 }), 200);
    let cursor = page["next_cursor"].as_str().expect("cursor").to_string();
    let other = c.post("/v1/collections/q/query", &json!({ "order": ["s"], "limit": 2, "cursor": cursor }));
    assert_eq!(
        (other.status, other.code().as_str()),
        (400, "invalid_cursor"),
        "a cursor of `order: [n]` used with `order: [s]`: {}",
        other.text()
    );
}

// ---- names, streams of unknown collections ---------------------------------

/// `*` stands for every collection in a key's rights; a collection of that
/// name cannot be given rights of its own, and `--read '*'` meant for it
/// grants everything. Found: `POST /v1/collections {"name": "*"}` → 201.
#[test]
fn review_a_collection_named_star_is_accepted() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let r = server.client().post("/v1/collections", &json!({ "name": "*" }));
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_name"), "{}", r.text());
}

/// A change stream of a collection that does not exist should be refused
/// like a live query of one (`404 unknown_collection`). Found: `200` and
/// an empty stream that waits forever (a typo is never reported).
#[test]
fn review_a_change_stream_of_an_unknown_collection_is_accepted() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    let live = c.events("/v1/collections/nope/live", &[]).err().map(|r| (r.status, r.code()));
    assert_eq!(live, Some((404, "unknown_collection".to_string())));
    let changes = c.events("/v1/changes?collection=nope", &[]).err().map(|r| (r.status, r.code()));
    assert_eq!(changes, Some((404, "unknown_collection".to_string())), "GET /v1/changes?collection=nope");
}

// ---- error codes ----------------------------------------------------------

/// `too_deep` (400): "a document, value or filter nests deeper than the
/// limit". Found: a document nested 10 000 levels is `malformed_json` ("the
/// body is not JSON", from serde_json's recursion limit), and a filter
/// nested beyond the limit is `invalid_json`; `too_deep` only comes for
/// documents between 101 and ~127 levels.
#[test]
fn review_deep_nesting_is_not_reported_as_too_deep() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "n" }), 201);
    let deep = format!("{{\"x\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let r = c.request("POST", "/v1/collections/n/documents", Some(&deep));
    let deep_filter = format!("{{\"filter\":{}{{\"n\":1}}{}}}", "{\"$not\":".repeat(120), "}".repeat(120));
    let f = c.request("POST", "/v1/collections/n/query", Some(&deep_filter));
    assert_eq!(
        [(r.status, r.code()), (f.status, f.code())],
        [(400, "too_deep".to_string()), (400, "too_deep".to_string())],
        "document: {}; filter: {}",
        r.text(),
        f.text()
    );
}

/// `_id` is reserved for the id: a filter on it must either match by id or
/// be refused. Found: `{"filter": {"_id": "d1"}}` (what every MongoDB user
/// writes first) is accepted and silently matches nothing.
#[test]
fn review_a_filter_on_id_silently_matches_nothing() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "i" }), 201);
    c.post_ok("/v1/collections/i/documents", &json!({ "_id": "d1", "n": 1 }), 201);
    let r = c.post("/v1/collections/i/query", &json!({ "filter": { "_id": "d1" } }));
    let found = r.status == 200 && r.json()["results"].as_array().is_some_and(|a| a.len() == 1);
    let refused = r.status == 400;
    assert!(found || refused, "filter {{\"_id\": \"d1\"}} on a collection holding d1: {} {}", r.status, r.text());
}

/// An index is named by its fields joined with `,`, and
/// `DELETE …/indexes/{name}` splits the name at `,`. Found: a field whose
/// name holds a comma (`"a,b"`, a legal field name) gets an index named
/// `a,b` — the same name as the compound index on (a, b) — and that index
/// can never be dropped over HTTP (`no_index`, or the compound one is
/// dropped instead).
#[test]
fn review_an_index_on_a_field_with_a_comma_cannot_be_dropped() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "x" }), 201);
    c.post_ok("/v1/collections/x/documents", &json!({ "a,b": 1 }), 201);
    let created = c.post_ok("/v1/collections/x/indexes", &json!({ "fields": ["a,b"] }), 201);
    let name = created["name"].as_str().expect("name").to_string();
    let location = format!("/v1/collections/x/indexes/{}", name.replace(',', "%2C"));
    let dropped = c.request("DELETE", &location, None);
    assert_eq!(dropped.status, 200, "DELETE {location} (the index's own name {name:?}): {}", dropped.text());
}

/// Slowloris: a connection that never finishes its request headers must
/// be closed after a while (hyper's usual header read timeout is 30 s, the
/// server's default; `--header-timeout-ms` sets it, here to 2 s so that the
/// test is short), else anyone who can connect — no key needed, the
/// headers never complete — holds sockets and file descriptors until the
/// server can accept no more. Found: still open after 45 s (axum::serve
/// without a header read timeout).
#[test]
fn review_a_connection_with_unfinished_headers_is_never_closed() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &["--header-timeout-ms", "2000"]);
    let mut s = send_raw(&server.addr, "GET /v1/health HTTP/1.1\r\nHost: x\r\n");
    s.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let mut buf = [0u8; 64];
    let started = Instant::now();
    let outcome = s.read(&mut buf);
    let closed = outcome.is_ok() || matches!(&outcome, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset);
    assert!(closed, "a connection with half a request head is still open after {:?}: {outcome:?}", started.elapsed());
    assert!(started.elapsed() >= Duration::from_millis(1500), "closed too early: {:?}", started.elapsed());
}
