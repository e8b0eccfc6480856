//! Black-box tests of the server's event streams: a change stream resumed
//! with `Last-Event-ID` across a SIGKILL of the server (no gap, no
//! duplicate), a live query whose updates keep a client's list equal to
//! re-running the query (also when resumed), a slow consumer cut off with
//! a resumable position, and the errors a stream ends with.

#![cfg(feature = "server")]

mod server_support;

use serde_json::{json, Value as Json};
use server_support::{temp, Client, Event, EventStream, Server};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// Reads events until `done` says so (or panics after [`WAIT`]).
fn read_until(stream: &mut EventStream, mut done: impl FnMut(&Event) -> bool) -> Vec<Event> {
    let started = Instant::now();
    let mut out = Vec::new();
    loop {
        assert!(started.elapsed() < WAIT, "events so far: {out:?}");
        if let Some(e) = stream.next(Duration::from_millis(200)) {
            let stop = done(&e);
            out.push(e);
            if stop {
                return out;
            }
        }
    }
}

/// The document ids of a `commit` event's changes.
fn ids(e: &Event) -> Vec<String> {
    e.json()["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_change_stream_resumes_across_a_sigkill_with_no_gap_and_no_duplicate() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "events" }), 201);
    c.post_ok("/v1/collections", &json!({ "name": "other" }), 201);
    let start = c.get("/v1/health").json()["feed_head"].as_u64().expect("head");

    let mut stream = c.events(&format!("/v1/changes?collection=events&after={start}"), &[]).expect("stream");
    // A writer keeps committing while the server is killed and restarted.
    let writer_addr = std::sync::Arc::new(std::sync::Mutex::new(server.addr.clone()));
    let writer = {
        let addr = std::sync::Arc::clone(&writer_addr);
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for i in 0..300 {
                let id = format!("e{i:03}");
                loop {
                    let a = addr.lock().expect("addr").clone();
                    let c = Client { addr: a, token: None };
                    // Interleave writes to another collection (not in the stream).
                    let r = std::panic::catch_unwind(|| {
                        if i % 7 == 0 {
                            c.post("/v1/collections/other/documents", &json!({ "n": i }));
                        }
                        c.post("/v1/collections/events/documents", &json!({ "_id": id, "n": i }))
                    });
                    match r {
                        Ok(r) if r.status == 201 => break,
                        // Killed before it answered, but maybe committed: then it exists now.
                        Ok(r) if r.status == 409 => break,
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
                acknowledged.push(id);
                std::thread::sleep(Duration::from_millis(2));
            }
            acknowledged
        })
    };

    // Read about a third, then SIGKILL the server mid-stream.
    let mut received: Vec<(u64, String)> = Vec::new();
    let mut last_id = start;
    read_until(&mut stream, |e| {
        if e.event == "commit" {
            let seq = e.seq();
            assert!(seq > last_id, "ids increase");
            last_id = seq;
            received.extend(ids(e).into_iter().map(|i| (seq, i)));
        }
        received.len() >= 100
    });
    let data_dir = server.data.clone();
    server.kill();
    // The connection is gone; read whatever had been sent before the kill.
    while let Some(e) = stream.next(Duration::from_millis(500)) {
        if e.event == "commit" {
            let seq = e.seq();
            assert!(seq > last_id);
            last_id = seq;
            received.extend(ids(&e).into_iter().map(|i| (seq, i)));
        }
    }
    let restarted = Server::start(&data_dir, &[]);
    *writer_addr.lock().expect("addr") = restarted.addr.clone();
    let c2 = restarted.client();
    let mut resumed =
        c2.events("/v1/changes?collection=events", &[("Last-Event-ID", &last_id.to_string())]).expect("resumed stream");
    let acknowledged = writer.join().expect("writer");
    read_until(&mut resumed, |e| {
        if e.event == "commit" {
            let seq = e.seq();
            assert!(seq > last_id, "no duplicate across the resume: {seq} after {last_id}");
            last_id = seq;
            received.extend(ids(e).into_iter().map(|i| (seq, i)));
        }
        received.iter().any(|(_, i)| i == "e299")
    });
    // Nothing more after the last write.
    assert_eq!(resumed.next(Duration::from_millis(300)).filter(|e| e.event == "commit"), None);

    let got: Vec<&String> = received.iter().map(|(_, i)| i).collect();
    let unique: BTreeSet<&String> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "no document twice");
    // Every document in the collection — every commit — came exactly once, in commit order.
    let stored = c2.post_ok("/v1/collections/events/query", &json!({ "limit": 1000 }), 200);
    let stored: BTreeSet<String> = stored["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|d| d["_id"].as_str().unwrap_or_default().to_string())
        .collect();
    let got_set: BTreeSet<String> = unique.into_iter().cloned().collect();
    assert_eq!(got_set, stored, "no gap");
    assert!(acknowledged.iter().all(|a| stored.contains(a)), "every acknowledged write survived the kill");
    let order: Vec<u64> = received.iter().map(|(s, _)| *s).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "one insert per commit, in order");
}

/// A client's copy of a live query's results, kept by applying its events.
#[derive(Default)]
struct LiveList {
    docs: Vec<Json>,
    sequence: u64,
}

impl LiveList {
    fn apply(&mut self, e: &Event) {
        let data = e.json();
        match e.event.as_str() {
            "snapshot" => self.docs = data["results"].as_array().expect("results").clone(),
            "update" => {
                for ch in data["changes"].as_array().expect("changes") {
                    if let Some(i) = ch["old_index"].as_u64() {
                        self.docs.remove(i as usize);
                    }
                    if let Some(i) = ch["new_index"].as_u64() {
                        self.docs.insert(i as usize, ch["document"].clone());
                    }
                }
            }
            "ready" => {}
            other => panic!("unexpected event {other}: {}", e.data),
        }
        if let Some(s) = data["sequence"].as_u64() {
            self.sequence = s;
        }
    }
}

/// A deterministic pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn query_path(q: &Json) -> String {
    let text = q.to_string();
    let encoded: String = text
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    format!("/v1/collections/scores/live?q={encoded}")
}

#[test]
fn a_live_query_stream_matches_rerunning_the_query() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let c = server.client();
    c.post_ok(
        "/v1/collections",
        &json!({ "name": "scores", "schema": { "fields": { "score": { "type": "int", "indexed": true } } } }),
        201,
    );
    c.post_ok("/v1/collections", &json!({ "name": "noise" }), 201);
    for i in 0..30 {
        c.post_ok(
            "/v1/collections/scores/documents",
            &json!({ "_id": format!("p{i:02}"), "score": (i * 37) % 100 }),
            201,
        );
    }
    let query =
        json!({ "filter": { "score": { "$gte": 40 } }, "order": [{ "field": "score", "order": "desc" }], "limit": 7 });
    let run = |c: &Client| -> Vec<Json> {
        c.post_ok("/v1/collections/scores/query", &query, 200)["results"].as_array().expect("r").clone()
    };

    let mut stream = c.events(&query_path(&query), &[]).expect("live");
    let mut list = LiveList::default();
    list.apply(&stream.expect(WAIT));
    assert_eq!(list.docs, run(&c), "the initial result is the query's");

    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut marker = 0;
    for round in 0..8 {
        // Random writes, some in transactions, some that do not touch the query.
        let mut writes = Vec::new();
        for _ in 0..6 {
            let id = format!("p{:02}", rng.next(40));
            writes.push(match rng.next(4) {
                0 => {
                    json!({ "op": "upsert", "collection": "scores", "document": { "_id": id, "score": rng.next(100) } })
                }
                1 => json!({ "op": "delete", "collection": "scores", "id": id }),
                2 => {
                    json!({ "op": "upsert", "collection": "scores", "document": { "_id": id, "score": rng.next(40) } })
                }
                _ => json!({ "op": "insert", "collection": "noise", "document": {} }),
            });
        }
        c.post_ok("/v1/transactions", &json!({ "writes": writes }), 200);
        for _ in 0..3 {
            let id = format!("p{:02}", rng.next(40));
            let r = c.request(
                "PATCH",
                &format!("/v1/collections/scores/documents/{id}"),
                Some(&format!("{{\"score\": {}}}", rng.next(100))),
            );
            assert!(r.status == 200 || r.status == 404);
        }
        // A marker that surely enters the top: once its update is seen, every earlier commit was applied.
        marker += 1;
        let seq = c.post_ok(
            "/v1/transactions",
            &json!({ "writes": [{ "op": "upsert", "collection": "scores", "document": { "_id": format!("m{marker}"), "score": 1000 + marker } }] }),
            200,
        )["sequence"]
            .as_u64()
            .expect("sequence");
        while list.sequence < seq {
            let e = stream.expect(WAIT);
            assert!(e.seq() > list.sequence || e.event == "snapshot", "positions increase");
            list.apply(&e);
        }
        assert_eq!(list.docs, run(&c), "round {round}: the list kept from updates equals the query re-run");
    }

    // Resumed after changes: a fresh snapshot replaces the list.
    let seen = list.sequence;
    drop(stream);
    c.post_ok("/v1/collections/scores/documents", &json!({ "_id": "late", "score": 5000 }), 201);
    let mut resumed = c.events(&query_path(&query), &[("Last-Event-ID", &seen.to_string())]).expect("live");
    let e = resumed.expect(WAIT);
    assert_eq!(e.event, "snapshot");
    list.apply(&e);
    assert_eq!(list.docs, run(&c));
    // Resumed when nothing in the collection changed (other collections did): no snapshot, just go on.
    let seen = list.sequence;
    drop(resumed);
    c.post_ok("/v1/collections/noise/documents", &json!({}), 201);
    let mut resumed = c.events(&query_path(&query), &[("Last-Event-ID", &seen.to_string())]).expect("live");
    let e = resumed.expect(WAIT);
    assert_eq!((e.event.as_str(), e.json()["resumed"].as_bool()), ("ready", Some(true)), "{e:?}");
    list.apply(&e);
    c.post_ok("/v1/collections/scores/documents", &json!({ "_id": "later", "score": 6000 }), 201);
    list.apply(&resumed.expect(WAIT));
    assert_eq!(list.docs, run(&c));

    // A bad query is a JSON error before any stream.
    let bad = c.events(&query_path(&json!({ "filter": { "score": "high" } })), &[]).err().expect("refused");
    assert_eq!((bad.status, bad.code()), (400, "invalid_query".to_string()));
}

#[test]
fn a_slow_consumer_is_cut_off_with_a_resumable_position() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &["--stream-buffer", "8"]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "big" }), 201);
    let start = c.get("/v1/health").json()["feed_head"].as_u64().expect("head");
    let mut slow = c.events(&format!("/v1/changes?collection=big&after={start}"), &[]).expect("stream");
    assert_eq!(slow.expect(WAIT).event, "ready");
    // The client stops reading; 64 KiB documents fill the socket buffers,
    // then the stream's 8 events.
    let blob = "x".repeat(64 << 10);
    let writes = 600;
    for i in 0..writes {
        c.post_ok("/v1/collections/big/documents", &json!({ "_id": format!("b{i:04}"), "blob": blob }), 201);
    }
    let metrics = c.get("/v1/metrics").text();
    assert!(
        metrics.contains("aurora_http_slow_consumers_total 1"),
        "{}",
        metrics.lines().filter(|l| l.contains("slow")).collect::<Vec<_>>().join("\n")
    );

    // Reading again: what was buffered, then the cut-off notice, then the end.
    let mut got = Vec::new();
    let notice = loop {
        let e = slow.expect(WAIT);
        if e.event == "error" {
            break e;
        }
        got.push(e.seq());
    };
    assert_eq!(slow.next(Duration::from_secs(5)), None, "the stream ended");
    let body = notice.json();
    assert_eq!(body["error"]["code"], "slow_consumer");
    let resume = notice.seq();
    assert_eq!(body["error"]["resume_after"].as_u64(), Some(resume));
    assert_eq!(got.last().copied(), Some(resume), "the position is the last event delivered");
    assert!(got.len() < writes, "cut off before the end ({} of {writes})", got.len());
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "no gap before the cut");

    // Resuming from the notice's id delivers the rest: no gap, no duplicate.
    let mut rest = c.events("/v1/changes?collection=big", &[("Last-Event-ID", &resume.to_string())]).expect("resume");
    let last = start + 1 + writes as u64 - 1;
    let mut next = resume;
    read_until(&mut rest, |e| {
        if e.event == "commit" {
            assert_eq!(e.seq(), next + 1, "contiguous");
            next = e.seq();
        }
        next == last
    });
}

#[test]
fn streams_end_with_an_error_event_at_a_position_they_cannot_serve() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &["--feed-retention", "5"]);
    let c = server.client();
    c.post_ok("/v1/collections", &json!({ "name": "t" }), 201);
    for i in 0..40 {
        c.post_ok("/v1/collections/t/documents", &json!({ "n": i }), 201);
    }
    let head = c.get("/v1/health").json()["feed_head"].as_u64().expect("head");
    // Beyond the head: a position from another database.
    let mut s = c.events(&format!("/v1/changes?after={}", head + 100), &[]).expect("stream");
    let e = s.expect(WAIT);
    assert_eq!((e.event.as_str(), e.json()["error"]["code"].as_str()), ("error", Some("feed_ahead")));
    assert_eq!(e.json()["error"]["head"].as_u64(), Some(head));
    assert_eq!(s.next(Duration::from_secs(5)), None);
    drop(s);
    // Trimmed (a clean shutdown applies the retention): `feed_truncated`, with the oldest position held.
    let data_dir = server.data.clone();
    assert!(server.terminate(Duration::from_secs(20)));
    let server = Server::start(&data_dir, &["--feed-retention", "5"]);
    let c = server.client();
    let mut s = c.events("/v1/changes?collection=t", &[("Last-Event-ID", "3")]).expect("stream");
    let e = s.expect(WAIT);
    let body = e.json();
    assert_eq!((e.event.as_str(), body["error"]["code"].as_str()), ("error", Some("feed_truncated")), "{body}");
    let oldest = body["error"]["oldest"].as_u64().expect("oldest");
    assert!(oldest > 3 && oldest < head);
    // From the oldest position held, it serves the retained history.
    let mut s = c.events(&format!("/v1/changes?collection=t&after={oldest}"), &[]).expect("stream");
    let mut seqs = BTreeMap::new();
    read_until(&mut s, |e| {
        if e.event == "commit" {
            seqs.insert(e.seq(), ());
        }
        e.event == "ready"
    });
    assert_eq!(seqs.keys().next_back().copied(), Some(head));
}
