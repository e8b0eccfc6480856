//! The client against a fake server (a few lines of tokio on a loopback
//! port) that misbehaves: it never answers, answers with a body or an
//! event larger than the limits, hangs up at once on every stream, goes
//! silent, or repeats and reorders events. Every wait is bounded, nothing
//! is held whole, reconnections slow down, and what a stream yields stays
//! exact.

use aurora::{DocId, Error};
use aurora_client::{Client, ClientOptions, Query};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::StreamExt as _;

/// The longest any test here waits for the client: past it, the client hung.
const HUNG: Duration = Duration::from_secs(20);

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    /// Which connection (0, 1, …).
    connection: usize,
    /// `GET /v1/changes?…`.
    line: String,
    /// The request head, lower-cased.
    head: String,
}

/// What the fake server does with a request.
type Handler = Arc<dyn Fn(&Seen) -> Vec<Act> + Send + Sync>;

/// One step of an answer.
enum Act {
    Write(Vec<u8>),
    /// Keep the connection open and say nothing more.
    Hang,
}

fn write(s: impl Into<Vec<u8>>) -> Act {
    Act::Write(s.into())
}

struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn requests_to(&self, prefix: &str) -> Vec<Seen> {
        self.seen.lock().expect("lock").iter().filter(|s| s.line.starts_with(prefix)).cloned().collect()
    }
}

async fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A fake server answering `/v1/health` itself and everything else with `handler`.
async fn fake(handler: Handler) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let seen2 = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let connection = connections.fetch_add(1, Ordering::SeqCst);
            let (handler, seen) = (Arc::clone(&handler), Arc::clone(&seen2));
            tokio::spawn(async move {
                let Some(head) = read_head(&mut s).await else { return };
                let line = head.lines().next().unwrap_or_default().to_string();
                let req = Seen { connection, line: line.clone(), head: head.to_lowercase() };
                seen.lock().expect("lock").push(req.clone());
                let acts = if line.starts_with("GET /v1/health ") {
                    vec![json_response(r#"{"status":"ok","version":"fake","feed_head":0}"#)]
                } else {
                    handler(&req)
                };
                for act in acts {
                    match act {
                        Act::Write(b) => {
                            if s.write_all(&b).await.is_err() {
                                return;
                            }
                        }
                        Act::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    Fake { url, seen }
}

fn json_response(body: &str) -> Act {
    write(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";

fn quick() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_millis(500),
        stream_idle_timeout: Duration::from_millis(400),
        max_response_bytes: 1 << 20,
        max_event_bytes: 1 << 20,
        ..ClientOptions::default()
    }
}

async fn connect(f: &Fake) -> Client {
    Client::connect_with(&f.url, None, quick()).await.expect("connect to the fake server")
}

fn code(e: &Error) -> &str {
    match e {
        Error::Remote { code, .. } => code,
        _ => "",
    }
}

fn commit_event(seq: u64, n: i64) -> String {
    format!(
        "event: commit\nid: {seq}\ndata: {{\"sequence\":{seq},\"transaction_id\":{seq},\"changes\":[{{\"collection\":\"c\",\"type\":\"insert\",\"id\":\"d{n}\",\"document\":{{\"_id\":\"d{n}\",\"n\":{n}}}}}]}}\n\n"
    )
}

#[tokio::test]
async fn a_server_that_never_answers_cannot_hang_the_caller() {
    let f = fake(Arc::new(|r: &Seen| {
        if r.line.contains("/documents/") {
            // Headers, half a body, then silence.
            vec![
                write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"_id\":"),
                Act::Hang,
            ]
        } else {
            vec![Act::Hang]
        }
    }))
    .await;
    let client = connect(&f).await;
    let r = tokio::time::timeout(HUNG, client.list_collections()).await.expect("the call returned");
    assert_eq!(code(&r.expect_err("no answer")), "timeout");
    let r = tokio::time::timeout(HUNG, client.get("c", &DocId::parse("x").expect("id"))).await.expect("returned");
    assert_eq!(code(&r.expect_err("half an answer")), "timeout");
    // Opening a stream is bounded the same way.
    let r = tokio::time::timeout(HUNG, client.changes(Some("c"), Some(0))).await.expect("returned");
    assert_eq!(code(&r.expect_err("a stream that never opens")), "timeout");
    let r = tokio::time::timeout(HUNG, client.live("c", &Query::new())).await.expect("returned");
    assert_eq!(code(&r.expect_err("a live query that never opens")), "timeout");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_not_held() {
    let f = fake(Arc::new(|_: &Seen| {
        // 2 MiB of a JSON string, chunked (no length announced up front).
        let mut acts = vec![write(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        )];
        let chunk = "x".repeat(64 << 10);
        acts.push(write("1\r\n\"\r\n"));
        for _ in 0..32 {
            acts.push(write(format!("{:x}\r\n{chunk}\r\n", chunk.len())));
        }
        acts.push(write("1\r\n\"\r\n0\r\n\r\n"));
        acts
    }))
    .await;
    let client = connect(&f).await;
    let r = tokio::time::timeout(HUNG, client.list_collections()).await.expect("returned");
    assert_eq!(code(&r.expect_err("too large")), "response_too_large");
}

#[tokio::test]
async fn an_event_over_the_limit_ends_the_stream_with_an_error() {
    let f = fake(Arc::new(|_: &Seen| {
        let mut acts = vec![write(SSE_HEAD), write("event: ready\ndata: {\"position\":0}\n\n"), write("data: ")];
        let chunk = "y".repeat(64 << 10);
        for _ in 0..40 {
            acts.push(write(chunk.clone()));
        }
        acts.push(Act::Hang);
        acts
    }))
    .await;
    let client = connect(&f).await;
    let mut changes = client.changes(Some("c"), Some(0)).await.expect("open");
    let item = tokio::time::timeout(HUNG, changes.next()).await.expect("an item in time").expect("an item");
    assert_eq!(code(&item.expect_err("the event is too large")), "response_too_large");
    let end = tokio::time::timeout(HUNG, changes.next()).await.expect("the end in time");
    assert!(end.is_none(), "the stream ends after its error");
    assert_eq!(f.requests_to("GET /v1/changes").len(), 1, "an event that would come again is not retried");
}

#[tokio::test]
async fn a_server_that_hangs_up_at_once_is_retried_ever_more_slowly() {
    let f = fake(Arc::new(|r: &Seen| {
        if r.connection <= 1 {
            // The first stream connection (after the health check) opens properly.
            vec![write(SSE_HEAD), write("event: ready\ndata: {\"position\":0}\n\n")]
        } else {
            // Every later one: accepted, then closed without an event.
            vec![write(SSE_HEAD)]
        }
    }))
    .await;
    let client = connect(&f).await;
    let changes = client.changes(Some("c"), Some(0)).await.expect("open");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts = f.requests_to("GET /v1/changes").len();
    drop(changes);
    // Waits of 0.1, 0.2, 0.4, 0.8, 1.6 s (each drawn from its upper half)
    // allow at most 7 attempts in 3 s; a fixed 50 ms wait made about 60.
    assert!((2..=8).contains(&attempts), "{attempts} connection attempts in 3 s");
    // Dropping the stream stops the attempts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_drop = f.requests_to("GET /v1/changes").len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(f.requests_to("GET /v1/changes").len(), after_drop, "a dropped stream reconnected");
}

#[tokio::test]
async fn a_silent_stream_is_taken_for_dead_and_resumed_after_its_last_event() {
    let f = fake(Arc::new(|r: &Seen| {
        if r.head.contains("last-event-id: 7") {
            vec![write(SSE_HEAD), write(commit_event(8, 8)), Act::Hang]
        } else {
            // One commit, then silence (no keep-alive either).
            vec![write(SSE_HEAD), write(commit_event(7, 7)), Act::Hang]
        }
    }))
    .await;
    let client = connect(&f).await;
    let mut changes = client.changes(Some("c"), Some(6)).await.expect("open");
    let mut got = Vec::new();
    while got.len() < 2 {
        let c = tokio::time::timeout(HUNG, changes.next()).await.expect("in time").expect("open").expect("no error");
        got.push(c.sequence);
    }
    assert_eq!(got, [7, 8]);
    let asks = f.requests_to("GET /v1/changes");
    assert!(asks.len() >= 2, "{asks:?}");
    assert!(asks[0].head.contains("last-event-id: 6"), "{:?}", asks[0].head);
}

#[tokio::test]
async fn repeated_and_stale_events_are_not_delivered_twice() {
    let f = fake(Arc::new(|r: &Seen| {
        if r.line.starts_with("GET /v1/changes") {
            let mut events = String::new();
            for (seq, n) in [(3, 3), (3, 3), (2, 2), (4, 4)] {
                events.push_str(&commit_event(seq, n));
            }
            vec![write(SSE_HEAD), write(events), Act::Hang]
        } else {
            let doc = |id: &str, n: i64| format!("{{\"_id\":\"{id}\",\"n\":{n}}}");
            let added = |seq: u64, id: &str, n: i64, at: usize| {
                format!(
                    "event: update\nid: {seq}\ndata: {{\"sequence\":{seq},\"changes\":[{{\"type\":\"added\",\"document\":{},\"new_index\":{at}}}]}}\n\n",
                    doc(id, n)
                )
            };
            let events = [
                format!("event: snapshot\nid: 5\ndata: {{\"sequence\":5,\"results\":[{}]}}\n\n", doc("a", 1)),
                added(6, "b", 2, 1),
                added(6, "b", 2, 1),
                added(4, "z", 0, 0),
                added(7, "c", 3, 2),
            ]
            .concat();
            vec![write(SSE_HEAD), write(events), Act::Hang]
        }
    }))
    .await;
    let client = connect(&f).await;
    let mut changes = client.changes(Some("c"), Some(0)).await.expect("open");
    let mut seqs = Vec::new();
    while seqs.len() < 2 {
        let c = tokio::time::timeout(HUNG, changes.next()).await.expect("in time").expect("open").expect("no error");
        seqs.push(c.sequence);
    }
    assert_eq!(seqs, [3, 4], "each commit once, in order");

    let mut live = client.live("c", &Query::new()).await.expect("live");
    let mut list = Vec::new();
    let mut seqs = Vec::new();
    while seqs.last() != Some(&7) {
        let e = tokio::time::timeout(HUNG, live.next()).await.expect("in time").expect("open").expect("no error");
        seqs.push(e.sequence());
        e.apply_to(&mut list);
    }
    assert_eq!(seqs, [5, 6, 7]);
    let ids: Vec<String> = list.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(ids, ["a", "b", "c"], "a repeated update applied twice would hold b twice");
}

#[tokio::test]
async fn garbage_in_a_stream_is_an_error_not_a_silent_skip() {
    let f = fake(Arc::new(|_: &Seen| {
        vec![
            write(SSE_HEAD),
            write("event: ready\ndata: {}\n\nevent: commit\nid: 9\ndata: {\"sequence\": \n\n"),
            Act::Hang,
        ]
    }))
    .await;
    let client = connect(&f).await;
    let mut changes = client.changes(Some("c"), Some(0)).await.expect("open");
    let item = tokio::time::timeout(HUNG, changes.next()).await.expect("in time").expect("an item");
    assert_eq!(code(&item.expect_err("garbage")), "bad_response");
}

#[tokio::test]
async fn a_cursor_that_never_moves_does_not_loop_forever() {
    let f = fake(Arc::new(|_: &Seen| vec![json_response(r#"{"results":[{"_id":"a"}],"next_cursor":"again"}"#)])).await;
    let client = connect(&f).await;
    let r = tokio::time::timeout(HUNG, client.query("c").collect_all()).await.expect("returned");
    assert_eq!(code(&r.expect_err("a stuck cursor")), "bad_response");
    assert_eq!(f.requests_to("POST /v1/collections/c/query").len(), 2);
}
