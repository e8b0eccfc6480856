//! Black-box tests of `aurora serve`'s JSON API: the real binary on a
//! loopback port in a temporary directory, talked to over HTTP — CRUD,
//! queries paged with cursors, transactions with a failing condition, jobs,
//! every error code, the loopback rule, and a graceful shutdown.

#![cfg(feature = "server")]

mod server_support;

use serde_json::{json, Value as Json};
use server_support::{aurora, keys, temp, Server};
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn crud_queries_with_cursors_transactions_and_jobs() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();

    assert_eq!(c.get("/v1/health").json()["status"], "ok");
    let schema = json!({ "name": "users", "schema": { "fields": {
        "email": { "type": "string", "unique": true },
        "age": { "type": "int", "indexed": true },
    }}});
    let r = c.post("/v1/collections", &schema);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location"), Some("/v1/collections/users"));
    assert_eq!(c.get("/v1/collections").json(), json!({ "collections": ["users"] }));

    // Create: 201 with the id (made, or the one given).
    let r = c.post("/v1/collections/users/documents", &json!({ "email": "ada@x.io", "age": 36, "name": "Ada" }));
    assert_eq!(r.status, 201, "{}", r.text());
    let ada = r.json()["_id"].as_str().expect("an id").to_string();
    assert_eq!(r.header("location").map(str::to_string), Some(format!("/v1/collections/users/documents/{ada}")));
    let r = c.post("/v1/collections/users/documents", &json!({ "_id": "alan", "email": "alan@x.io", "age": 41 }));
    assert_eq!(r.json(), json!({ "_id": "alan" }));

    // Read, with the revision as the ETag.
    let r = c.get(&format!("/v1/collections/users/documents/{ada}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({ "_id": ada, "email": "ada@x.io", "age": 36, "name": "Ada" }));
    assert!(r.header("etag").is_some());

    // Replace, merge, operators, delete.
    let r = c.request("PUT", "/v1/collections/users/documents/alan", Some(r#"{"email": "alan@x.io", "age": 42}"#));
    assert_eq!(r.json(), json!({ "_id": "alan", "email": "alan@x.io", "age": 42 }));
    let r = c.request("PATCH", "/v1/collections/users/documents/alan", Some(r#"{"name": "Alan"}"#));
    assert_eq!(r.json(), json!({ "_id": "alan", "email": "alan@x.io", "age": 42, "name": "Alan" }));
    let r = c.request(
        "PATCH",
        "/v1/collections/users/documents/alan",
        Some(r#"{"$inc": {"age": 1}, "$push": {"tags": "math"}, "$unset": ["name"]}"#),
    );
    assert_eq!(r.json(), json!({ "_id": "alan", "email": "alan@x.io", "age": 43, "tags": ["math"] }));
    let r = c.request("DELETE", "/v1/collections/users/documents/alan", None);
    assert_eq!(r.json(), json!({ "deleted": true, "_id": "alan" }));
    assert_eq!(c.get("/v1/collections/users/documents/alan").status, 404);

    // Queries paged with cursors: 25 documents, 10 at a time, in order.
    for i in 0..25 {
        c.post_ok(
            "/v1/collections/users/documents",
            &json!({ "_id": format!("u{i:02}"), "email": format!("u{i}@x.io"), "age": 100 + (i * 7) % 25 }),
            201,
        );
    }
    let mut seen = Vec::new();
    let mut cursor = Json::Null;
    let mut pages = 0;
    loop {
        let body = json!({ "filter": { "age": { "$gte": 100 } }, "order": [{ "field": "age", "order": "desc" }], "select": ["age"], "limit": 10, "cursor": cursor });
        let page = c.post_ok("/v1/collections/users/query", &body, 200);
        pages += 1;
        for d in page["results"].as_array().expect("results") {
            assert_eq!(d.as_object().map(|o| o.len()), Some(2), "selected: {d}");
            seen.push(d["age"].as_i64().expect("age"));
        }
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (100..125).rev().collect::<Vec<i64>>(), "every document once, in order");
    let explained =
        c.post_ok("/v1/collections/users/query", &json!({ "filter": { "age": 110 }, "explain": true }), 200);
    assert_eq!(explained["plan"]["access"]["type"], "index");
    assert_eq!(explained["results"].as_array().map(Vec::len), Some(1));
    // A limit above the server's maximum is lowered to it.
    let capped = server_support::Server::start(&data.with_extension("capped"), &["--max-results", "4"]);
    let cc = capped.client();
    cc.post_ok("/v1/collections", &json!({ "name": "t" }), 201);
    for i in 0..6 {
        cc.post_ok("/v1/collections/t/documents", &json!({ "n": i }), 201);
    }
    let page = cc.post_ok("/v1/collections/t/query", &json!({ "limit": 100 }), 200);
    assert_eq!(page["results"].as_array().map(Vec::len), Some(4));
    assert!(page["next_cursor"].is_string());
    drop(capped);

    // Collections and indexes.
    let stats = c.get("/v1/collections/users").json();
    assert_eq!(stats["count"], 26);
    assert_eq!(stats["schema"]["fields"]["email"]["unique"], true);
    c.post_ok("/v1/collections/users/indexes", &json!({ "fields": ["name"] }), 201);
    c.post_ok("/v1/collections/users/indexes", &json!({ "fields": ["age", "email"] }), 201);
    let names: BTreeSet<String> = c.get("/v1/collections/users/indexes").json()["indexes"]
        .as_array()
        .expect("indexes")
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["age", "age,email", "email", "name"].map(String::from).into());
    assert_eq!(c.request("DELETE", "/v1/collections/users/indexes/age,email", None).status, 200);
    assert_eq!(c.request("DELETE", "/v1/collections/users/indexes/name", None).status, 200);
    assert_eq!(c.get("/v1/collections/users/indexes").json()["indexes"].as_array().map(Vec::len), Some(2));

    // A transaction: all or nothing, revision conditions checked first.
    // (Read the revision now: building an index rewrites the documents.)
    let r = c.get(&format!("/v1/collections/users/documents/{ada}"));
    let etag: u64 = r.header("etag").expect("etag").trim_matches('"').parse().expect("a revision");
    let ok = c.post_ok(
        "/v1/transactions",
        &json!({ "writes": [
            { "op": "update", "collection": "users", "id": ada, "update": { "$inc": { "age": 1 } }, "if_revision": etag },
            { "op": "insert", "collection": "users", "document": { "_id": "grace", "email": "grace@x.io", "age": 85 } },
            { "op": "delete", "collection": "users", "id": "u00" },
        ]}),
        200,
    );
    let seq = ok["sequence"].as_u64().expect("sequence");
    assert!(seq > etag);
    assert_eq!(ok["results"][2], json!({ "_id": "u00", "deleted": true }));
    let r = c.get(&format!("/v1/collections/users/documents/{ada}"));
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{seq}\"").as_str()),
        "the document's revision is the commit's sequence"
    );
    // The same condition again fails (the revision moved on): nothing of it is written.
    let failed = c.post(
        "/v1/transactions",
        &json!({ "writes": [
            { "op": "insert", "collection": "users", "document": { "_id": "hopper", "email": "h@x.io", "age": 1 } },
            { "op": "update", "collection": "users", "id": ada, "update": { "age": 0 }, "if_revision": etag },
        ]}),
    );
    assert_eq!((failed.status, failed.code()), (409, "revision_mismatch".to_string()), "{}", failed.text());
    let err = failed.json()["error"].clone();
    assert_eq!(
        (err["index"].as_u64(), err["expected"].as_u64(), err["actual"].as_u64()),
        (Some(1), Some(etag), Some(seq))
    );
    assert_eq!(c.get("/v1/collections/users/documents/hopper").status, 404, "nothing was written");
    assert_eq!(c.get(&format!("/v1/collections/users/documents/{ada}")).json()["age"], 37);
    // `if_revision: 0` means "absent"; `check` asserts without writing.
    let r = c.post(
        "/v1/transactions",
        &json!({ "writes": [
            { "op": "check", "collection": "users", "id": "grace", "if_revision": seq },
            { "op": "upsert", "collection": "users", "document": { "_id": "new", "email": "n@x.io", "age": 2 }, "if_revision": 0 },
        ]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // A write that fails (a unique value taken) rolls the whole transaction back.
    let r = c.post(
        "/v1/transactions",
        &json!({ "writes": [
            { "op": "insert", "collection": "users", "document": { "_id": "x1", "email": "x1@x.io", "age": 3 } },
            { "op": "insert", "collection": "users", "document": { "_id": "x2", "email": "ada@x.io", "age": 3 } },
        ]}),
    );
    assert_eq!((r.status, r.code()), (409, "unique_violation".to_string()));
    assert_eq!(c.get("/v1/collections/users/documents/x1").status, 404);

    // Jobs: enqueue, list by state, cancel, retry.
    let job =
        c.post_ok("/v1/jobs", &json!({ "type": "email", "payload": { "to": "ada@x.io" }, "priority": "high" }), 201);
    let id = job["id"].as_str().expect("job id").to_string();
    let pending = c.get("/v1/jobs?status=pending").json();
    assert_eq!(pending["jobs"][0]["id"], id.as_str());
    assert_eq!(pending["jobs"][0]["payload"], json!({ "to": "ada@x.io" }));
    assert_eq!(pending["jobs"][0]["priority"], "high");
    let r = c.request("POST", &format!("/v1/jobs/{id}/retry"), None);
    assert_eq!(r.json(), json!({ "retried": false, "status": "pending" }), "only failed jobs are retried");
    let r = c.request("POST", &format!("/v1/jobs/{id}/cancel"), None);
    assert_eq!(r.json(), json!({ "cancelled": true, "status": "cancelled" }));
    assert_eq!(c.get("/v1/jobs?status=cancelled").json()["jobs"].as_array().map(Vec::len), Some(1));
    assert_eq!(c.get(&format!("/v1/jobs/{id}")).json()["status"], "cancelled");

    // Metrics in the Prometheus text format.
    let m = c.get("/v1/metrics");
    assert!(m.header("content-type").is_some_and(|t| t.starts_with("text/plain")));
    assert!(m.text().contains("# TYPE aurora_commits_total counter"));
    assert!(m.text().contains("aurora_http_responses_total{class=\"2xx\"}"));

    // Drop.
    assert_eq!(c.request("DELETE", "/v1/collections/users", None).json(), json!({ "dropped": "users" }));
    assert_eq!(c.get("/v1/collections").json(), json!({ "collections": [] }));
}

/// Sends a request and checks the error's code and status.
fn expect_error(r: server_support::Response, code: &str, seen: &mut BTreeSet<String>) -> Json {
    let body = r.json();
    assert_eq!(body["error"]["code"], code, "{}", r.text());
    let status = aurora_server::ERROR_CODES.iter().find(|(c, _, _)| *c == code).map(|(_, s, _)| *s);
    assert_eq!(Some(r.status), status, "{code}: {}", r.text());
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    seen.insert(code.to_string());
    body
}

#[test]
fn every_error_code() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    let mut seen = BTreeSet::new();
    c.post_ok(
        "/v1/collections",
        &json!({ "name": "users", "schema": { "fields": { "email": { "type": "string", "unique": true }, "age": { "type": "int", "nullable": true } } } }),
        201,
    );
    c.post_ok("/v1/collections/users/documents", &json!({ "_id": "ada", "email": "ada@x.io", "age": 36 }), 201);
    c.post_ok("/v1/collections/users/documents", &json!({ "_id": "bob", "email": "bob@x.io", "age": 36 }), 201);

    expect_error(c.post("/v1/collections", &json!({ "nme": "x" })), "bad_request", &mut seen);
    expect_error(c.request("POST", "/v1/collections/users/documents", Some("{oops")), "malformed_json", &mut seen);
    let e = expect_error(
        c.post("/v1/collections/users/documents", &json!({ "email": "x@x.io", "born": { "$date": "yesterday" } })),
        "invalid_json",
        &mut seen,
    );
    assert_eq!(e["error"]["at"], "/born/$date", "a JSON pointer to the culprit");
    expect_error(c.post("/v1/collections", &json!({ "name": "_reserved" })), "invalid_name", &mut seen);
    expect_error(
        c.post("/v1/collections/users/documents", &json!({ "_id": "", "email": "e@x.io" })),
        "invalid_id",
        &mut seen,
    );
    let mut deep = json!(1);
    for _ in 0..105 {
        deep = json!({ "a": deep });
    }
    expect_error(
        c.post("/v1/collections/users/documents", &json!({ "email": "d@x.io", "deep": deep })),
        "too_deep",
        &mut seen,
    );
    expect_error(
        c.post("/v1/collections/users/query", &json!({ "filter": { "age": "old" } })),
        "invalid_query",
        &mut seen,
    );
    expect_error(
        c.post("/v1/collections/users/query", &json!({ "cursor": "not-a-cursor" })),
        "invalid_cursor",
        &mut seen,
    );
    expect_error(c.get("/v2/anything"), "no_route", &mut seen);
    expect_error(c.get("/v1/collections/nope/documents/x"), "unknown_collection", &mut seen);
    expect_error(c.get("/v1/collections/users/documents/nobody"), "not_found", &mut seen);
    expect_error(c.request("DELETE", "/v1/collections/users/indexes/age", None), "no_index", &mut seen);
    expect_error(c.get("/v1/jobs/0190a6b2-0000-7000-8000-000000000000"), "job_not_found", &mut seen);
    expect_error(c.request("PUT", "/v1/collections", None), "method_not_allowed", &mut seen);
    expect_error(
        c.post("/v1/collections/users/documents", &json!({ "_id": "ada", "email": "z@x.io" })),
        "document_exists",
        &mut seen,
    );
    expect_error(c.post("/v1/collections", &json!({ "name": "users" })), "collection_exists", &mut seen);
    let e = expect_error(
        c.post("/v1/collections/users/documents", &json!({ "email": "ada@x.io" })),
        "unique_violation",
        &mut seen,
    );
    assert_eq!(e["error"]["field"], "email");
    expect_error(
        c.post("/v1/collections/users/indexes", &json!({ "fields": ["age"], "unique": true })),
        "duplicate_values",
        &mut seen,
    );
    expect_error(
        c.post(
            "/v1/transactions",
            &json!({ "writes": [{ "op": "delete", "collection": "users", "id": "ada", "if_revision": 1 }] }),
        ),
        "revision_mismatch",
        &mut seen,
    );
    let big = format!("{{\"email\": \"b@x.io\", \"blob\": \"{}\"}}", "x".repeat(5 << 20));
    expect_error(c.request("POST", "/v1/collections/users/documents", Some(&big)), "payload_too_large", &mut seen);
    let e =
        expect_error(c.post("/v1/collections/users/documents", &json!({ "email": 42 })), "schema_violation", &mut seen);
    assert_eq!(e["error"]["field"], "email");
    expect_error(
        c.post("/v1/collections", &json!({ "name": "bad", "schema": { "compound_indexes": [{ "fields": ["a"] }] } })),
        "invalid_schema",
        &mut seen,
    );
    expect_error(
        c.request("PATCH", "/v1/collections/users/documents/ada", Some(r#"{"$inc": {"email": 1}}"#)),
        "update_failed",
        &mut seen,
    );
    expect_error(c.post("/v1/jobs", &json!({ "type": "" })), "invalid_job", &mut seen);
    // A cursor that refers to its document (sort values over 2 KiB), which
    // then changed.
    let long = "l".repeat(3000);
    for id in ["l1", "l2"] {
        c.post_ok(
            "/v1/collections/users/documents",
            &json!({ "_id": id, "email": format!("{id}@x.io"), "bio": format!("{id}{long}") }),
            201,
        );
    }
    let by_bio = json!({ "filter": { "bio": { "$exists": true } }, "order": ["bio"], "limit": 1 });
    let page = c.post_ok("/v1/collections/users/query", &by_bio, 200);
    let cursor = page["next_cursor"].as_str().expect("a cursor").to_string();
    assert!(cursor.len() < 300, "a small cursor: {cursor}");
    c.request("PATCH", "/v1/collections/users/documents/l1", Some(r#"{"bio": "changed"}"#));
    let mut next = by_bio.clone();
    next["cursor"] = json!(cursor);
    expect_error(c.post("/v1/collections/users/query", &next), "cursor_stale", &mut seen);
    // Requests hyper refuses before the API sees them, answered in JSON.
    let many_headers: String = (0..150).map(|i| format!("X-{i}: y\r\n")).collect();
    let r = c.raw(format!("GET /v1/health HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").as_bytes());
    expect_error(r, "headers_too_large", &mut seen);
    let r = c.raw(format!("GET /v1/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).as_bytes());
    expect_error(r, "uri_too_long", &mut seen);
    let r = c.raw(b"NOT HTTP AT ALL\r\n\r\n");
    expect_error(r, "bad_request", &mut seen);

    // Limits, on a server with tiny ones.
    let (_tmp2, data2) = temp();
    let tight = Server::start(&data2, &["--max-streams", "1", "--max-body-bytes", "1024"]);
    let t = tight.client();
    t.post_ok("/v1/collections", &json!({ "name": "t" }), 201);
    let _stream = t.events("/v1/changes", &[]).expect("the first stream opens");
    expect_error(t.events("/v1/changes", &[]).err().expect("the second is refused"), "too_many_streams", &mut seen);
    // A query that sorts 5 000 documents cannot finish in 1 ms.
    let slow = Server::start(&data2.with_extension("slow"), &["--query-timeout-ms", "1"]);
    let q = slow.client();
    q.post_ok("/v1/collections", &json!({ "name": "t" }), 201);
    for batch in 0..5 {
        let writes: Vec<Json> = (0..1000)
            .map(|i| json!({ "op": "insert", "collection": "t", "document": { "n": batch * 1000 + i, "s": format!("{}", (i * 7919) % 1000) } }))
            .collect();
        q.post_ok("/v1/transactions", &json!({ "writes": writes }), 200);
    }
    let timed_out = (0..5)
        .map(|_| {
            q.post("/v1/collections/t/query", &json!({ "filter": { "n": { "$gte": 0 } }, "order": ["s"], "limit": 1 }))
        })
        .find(|r| r.status == 503)
        .expect("a query past the time limit");
    expect_error(timed_out, "query_timeout", &mut seen);
    expect_error(
        t.request("POST", "/v1/collections/t/documents", Some(&format!("{{\"s\": \"{}\"}}", "x".repeat(2000)))),
        "payload_too_large",
        &mut seen,
    );

    // Keys: once one exists (created while the server runs), requests need one.
    let token = keys(&data, &["create", "--read", "users"]);
    let anonymous = server_support::eventually(Duration::from_secs(5), "the server sees the new key", || {
        let r = c.get("/v1/collections");
        (r.status == 401).then_some(r)
    });
    expect_error(anonymous, "unauthorized", &mut seen);
    expect_error(server.client_with(&token).request("DELETE", "/v1/collections/users", None), "forbidden", &mut seen);

    // The rest cannot be provoked from outside a healthy server; their
    // mapping is checked by aurora-server's unit tests (`error.rs`) and,
    // for `computed_failed`, its in-process tests.
    let untestable = ["conflict", "locked", "internal", "unavailable", "computed_failed"];
    let all: BTreeSet<String> = aurora_server::ERROR_CODES.iter().map(|(c, _, _)| c.to_string()).collect();
    let missing: Vec<&String> =
        all.iter().filter(|c| !seen.contains(*c) && !untestable.contains(&c.as_str())).collect();
    assert!(missing.is_empty(), "codes not exercised: {missing:?}");
}

#[test]
fn without_keys_only_loopback_and_one_server_per_directory() {
    let (_tmp, data) = temp();
    let out = aurora().args(["serve", "--data"]).arg(&data).args(["--listen", "0.0.0.0:0"]).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to listen on 0.0.0.0:0 without API keys"), "{err}");

    let server = Server::start(&data, &[]);
    assert!(server.log_text().contains("WITHOUT authentication"), "it says so: {}", server.log_text());
    // The directory is locked by the running server.
    let second = Server::try_start(&data, &[]).err().expect("a second server on the same directory fails");
    assert!(second.contains("locked"), "{second}");
}

#[test]
fn sigterm_ends_streams_and_closes_the_database() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "t" }), 201);
    let mut stream = c.events("/v1/changes?collection=t", &[]).expect("stream");
    assert_eq!(stream.expect(Duration::from_secs(10)).event, "ready");
    c.post_ok("/v1/collections/t/documents", &json!({ "_id": "a" }), 201);
    assert_eq!(stream.expect(Duration::from_secs(10)).event, "commit");
    let log = server.log.clone();
    assert!(server.terminate(Duration::from_secs(20)), "exits cleanly on SIGTERM");
    assert_eq!(stream.next(Duration::from_secs(5)), None, "the stream ended");
    let log = std::fs::read_to_string(log).unwrap_or_default();
    assert!(log.contains("database closed"), "{log}");
    // The database reopens with its data.
    let again = Server::start(&data, &[]);
    assert_eq!(again.client().get("/v1/collections/t/documents/a").status, 200);
}
