//! The Server-Sent Event streams: the change feed (`GET /v1/changes`) and
//! live queries (`GET /v1/collections/{c}/live`).
//!
//! Each stream is a task that feeds a bounded channel
//! ([`Limits::stream_buffer`](crate::Limits) events) which the response
//! body drains as the client reads. History (a resumed change stream
//! catching up from the persistent feed) is read a page at a time and
//! waits for room in the channel, so a client reading history slowly only
//! slows its own stream down. Live events never wait: when the channel is
//! full the client is not keeping up, and the stream is cut off — the
//! task and its listener go at once, the client gets what is buffered,
//! then an `error` event `slow_consumer` whose `id` is the position to
//! resume from, and the stream ends. Memory per stream is therefore
//! bounded by the channel, whatever the client does.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Who, P, Q};
use crate::keys::Right;
use crate::App;
use aurora::{CommitEvents, EventFilter, FeedScope, RecvError, WatchError, Watcher};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::OwnedSemaphorePermit;

/// Revisions read from the feed per page while catching up.
const PAGE: u64 = 512;

/// How far back (in revisions) a resumed live query looks for changes to
/// its collection before it simply sends a fresh snapshot.
const LIVE_RESUME_WINDOW: u64 = 10_000;

/// The sending side of a stream.
struct Outbox {
    tx: mpsc::Sender<Event>,
    /// The event sent after everything buffered, when the stream ends
    /// (an error, or the cut-off notice).
    tail: Arc<Mutex<Option<Event>>>,
    app: Arc<App>,
    /// Whose stream it is: checked before every event, so nothing is sent
    /// once the key is revoked (the periodic check in [`open`] ends a
    /// stream that is silent meanwhile).
    who: Principal,
}

/// How long a stream may stay silent before a comment line (`:`) keeps
/// the connection (and the proxies on its way) from closing it as idle.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One Server-Sent Event, written out (`event:`, `id:`, `data:` lines and
/// the blank line that ends it): cheap to clone, so one commit's event is
/// written once and shared by every stream that sends it.
#[derive(Debug, Clone)]
pub(crate) struct Event(Bytes);

impl Event {
    /// An event of type `event` with `data` (split into `data:` lines at
    /// line breaks, which JSON text never has) and an optional `id`.
    pub(crate) fn new(event: &str, id: Option<u64>, data: &str) -> Self {
        let mut out = String::with_capacity(data.len() + event.len() + 32);
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
        if let Some(id) = id {
            out.push_str("id: ");
            out.push_str(&id.to_string());
            out.push('\n');
        }
        for line in data.split(['\n', '\r']) {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        Event(Bytes::from(out))
    }
}

/// What became of a live event.
enum Sent {
    Yes,
    /// The channel was full: the stream is cut off.
    CutOff,
    /// The client left.
    Gone,
}

/// The codes of `error` events, which end a stream (its HTTP status was
/// 200 already): the code, and what it means. A request error found while
/// a stream runs (a live query that fails) uses the codes of
/// [`ERROR_CODES`](crate::ERROR_CODES).
pub const STREAM_ERROR_CODES: &[(&str, &str)] = &[
    ("slow_consumer", "the client did not read fast enough; the event's `id` (and `resume_after`) is the position to resume from"),
    ("feed_truncated", "the position was trimmed from the change feed (or the database keeps none); `oldest` is the oldest position still held: re-read the current state, then follow from the head"),
    ("feed_ahead", "the position is beyond the feed's head (`head`): a position from another database"),
    ("history_not_kept", "a feed entry at `sequence` wrote a version of `collection`/`id` that a commit made while the change feed was off replaced: the feed keeps no history written without it; re-read the current state, then follow from the head"),
];

/// An `error` event: `{"error": {"code", "message", ...extra}}`.
fn stream_error(code: &str, message: &str, extra: serde_json::Value) -> Event {
    let mut error = serde_json::Map::new();
    error.insert("code".into(), json!(code));
    error.insert("message".into(), json!(message));
    if let serde_json::Value::Object(m) = extra {
        error.extend(m);
    }
    Event::new("error", None, &json!({ "error": error }).to_string())
}

/// Like [`stream_error`], with the position to resume from as its `id`.
fn stream_error_at(code: &str, message: &str, extra: serde_json::Value, id: u64) -> Event {
    let mut error = serde_json::Map::new();
    error.insert("code".into(), json!(code));
    error.insert("message".into(), json!(message));
    if let serde_json::Value::Object(m) = extra {
        error.extend(m);
    }
    Event::new("error", Some(id), &json!({ "error": error }).to_string())
}

fn error_event(e: &ApiError) -> Event {
    Event::new("error", None, &e.to_json().to_string())
}

/// The event that ends a stream whose key was revoked.
fn revoked_event() -> Event {
    error_event(&ApiError::new("unauthorized", "the API key of this stream was revoked (or its rights changed)"))
}

impl Outbox {
    /// Whether the stream's key still holds; if not, the stream is to end
    /// with the `unauthorized` event and send nothing more.
    fn allowed(&self) -> bool {
        if self.app.keys.still_valid(&self.who) {
            return true;
        }
        self.finish(revoked_event());
        false
    }

    /// Sends, waiting for room (history, first events); false if the client
    /// left or the key was revoked.
    async fn paced(&self, e: Event) -> bool {
        self.allowed() && self.tx.send(e).await.is_ok()
    }

    /// Sends a live event without waiting; a full channel cuts the stream
    /// off, to be resumed after `resume` (the last position delivered).
    fn live(&self, e: Event, resume: u64) -> Sent {
        if !self.allowed() {
            return Sent::Gone;
        }
        match self.tx.try_send(e) {
            Ok(()) => Sent::Yes,
            Err(TrySendError::Full(_)) => {
                self.app.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                let notice = stream_error_at(
                    "slow_consumer",
                    "this stream was cut off: the client did not read fast enough; reconnect with Last-Event-ID (the id of this event)",
                    json!({ "resume_after": resume }),
                    resume,
                );
                *self.tail.lock() = Some(notice);
                Sent::CutOff
            }
            Err(TrySendError::Closed(_)) => Sent::Gone,
        }
    }

    /// Ends the stream with an error event.
    fn finish(&self, e: Event) {
        *self.tail.lock() = Some(e);
    }
}

/// The response body of a stream: the channel, then the tail event; a
/// comment line after [`KEEP_ALIVE`] of silence.
struct EventStream {
    rx: mpsc::Receiver<Event>,
    tail: Arc<Mutex<Option<Event>>>,
    task: tokio::task::JoinHandle<()>,
    quiet: Pin<Box<tokio::time::Sleep>>,
}

/// A running stream's place among `max_streams` (and in the
/// `open_streams` gauge), held by its task.
struct StreamSlot {
    _permit: OwnedSemaphorePermit,
    app: Arc<App>,
}

impl StreamSlot {
    fn take(app: &Arc<App>, permit: OwnedSemaphorePermit) -> Self {
        app.stats.open_streams.fetch_add(1, Ordering::Relaxed);
        Self { _permit: permit, app: Arc::clone(app) }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.app.stats.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl futures_core::Stream for EventStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = match this.rx.poll_recv(cx) {
            Poll::Ready(Some(e)) => Some(e.0),
            Poll::Ready(None) => return Poll::Ready(this.tail.lock().take().map(|e| Ok(e.0))),
            Poll::Pending => match this.quiet.as_mut().poll(cx) {
                Poll::Ready(()) => Some(Bytes::from_static(b":\n\n")),
                Poll::Pending => None,
            },
        };
        match item {
            Some(bytes) => {
                this.quiet.as_mut().reset(tokio::time::Instant::now() + KEEP_ALIVE);
                Poll::Ready(Some(Ok(bytes)))
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        // The client left (or the stream ended): the task, its listener and
        // its stream slot go.
        self.task.abort();
    }
}

/// How often a running stream checks that its key still holds.
const REVOCATION_CHECK: Duration = Duration::from_millis(500);

/// Returns once `who` may no longer act (its key revoked or changed).
async fn revoked(app: Arc<App>, who: Principal) {
    loop {
        tokio::time::sleep(REVOCATION_CHECK).await;
        if !app.keys.still_valid(&who) {
            return;
        }
    }
}

/// Opens a stream run by `body` for `who`, within the limit of open
/// streams. The stream ends with an `unauthorized` error event within
/// about a second of its key being revoked.
fn open<F, Fut>(app: &Arc<App>, who: &Principal, body: F) -> Result<Response, ApiError>
where
    F: FnOnce(Outbox) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let permit = Arc::clone(&app.streams).try_acquire_owned().map_err(|_| {
        ApiError::new("too_many_streams", format!("{} streams are open, the limit", app.limits.max_streams))
    })?;
    let (tx, rx) = mpsc::channel(app.limits.stream_buffer.max(1));
    let tail = Arc::new(Mutex::new(None));
    // The stream's place among `max_streams` belongs to its task: a stream
    // that ends — cut off as a slow consumer included — gives it back at
    // once, even while a stuck client never drains what was buffered.
    let slot = StreamSlot::take(app, permit);
    let fut = body(Outbox { tx, tail: Arc::clone(&tail), app: Arc::clone(app), who: who.clone() });
    let (app2, who, ended) = (Arc::clone(app), who.clone(), Arc::clone(&tail));
    let task = tokio::spawn(async move {
        let _slot = slot;
        tokio::select! {
            () = fut => {}
            () = revoked(app2, who) => {
                // Dropping the body drops its listener and its sender: the
                // client gets what is buffered, then this.
                *ended.lock() = Some(revoked_event());
            }
        }
    });
    let quiet = Box::pin(tokio::time::sleep(KEEP_ALIVE));
    let stream = EventStream { rx, tail, task, quiet };
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The position a client resumes from: `Last-Event-ID` (what an
/// `EventSource` sends when it reconnects), else the `after` parameter.
fn resume_position(headers: &HeaderMap, after: Option<&String>) -> Result<Option<u64>, ApiError> {
    if let Some(v) = headers.get("last-event-id") {
        let text = v.to_str().unwrap_or("");
        return text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("Last-Event-ID {text:?} is not a sequence number")));
    }
    match after {
        Some(a) => {
            a.parse().map(Some).map_err(|_| ApiError::bad_request(format!("`after` {a:?} is not a sequence number")))
        }
        None => Ok(None),
    }
}

fn commit_event(c: &CommitEvents) -> Event {
    Event::new("commit", Some(c.sequence), &crate::json::commit_json(c))
}

/// Recent commits whose `commit` event is kept for sharing.
const SHARED_EVENTS: usize = 64;

/// The `commit` events of recent commits, each written once and shared by
/// every change stream of the same scope that sends it live (a thousand
/// subscribers of a collection cost one serialization per commit, not a
/// thousand). Keyed by the commit's sequence and the stream's scope (a
/// collection, or every user collection), which fix the event's content.
#[derive(Default)]
pub(crate) struct SharedEvents {
    recent: Mutex<VecDeque<SharedEvent>>,
}

type SharedEvent = (u64, Option<String>, Arc<OnceLock<Event>>);

impl SharedEvents {
    /// The `commit` event of `c` as heard live by a stream of `scope`.
    fn commit(&self, c: &CommitEvents, scope: Option<&str>) -> Event {
        let cell = {
            let mut recent = self.recent.lock();
            let found = recent.iter().rev().find(|(seq, s, _)| *seq == c.sequence && s.as_deref() == scope);
            match found {
                Some((_, _, cell)) => Arc::clone(cell),
                None => {
                    let cell = Arc::new(OnceLock::new());
                    recent.push_back((c.sequence, scope.map(str::to_string), Arc::clone(&cell)));
                    if recent.len() > SHARED_EVENTS {
                        recent.pop_front();
                    }
                    cell
                }
            }
        };
        // The first stream writes it; the others wait for that (microseconds).
        cell.get_or_init(|| commit_event(c)).clone()
    }
}

fn feed_error(e: aurora::Error) -> Event {
    use aurora::txn::TxnError;
    match e {
        aurora::Error::Transaction(TxnError::FeedTruncated { requested, oldest }) => stream_error(
            "feed_truncated",
            &format!("the change feed was trimmed up to {oldest}: position {requested} can no longer be resumed; re-read the current state, then follow from the feed head"),
            json!({ "oldest": oldest }),
        ),
        aurora::Error::Transaction(TxnError::FeedAhead { requested, head }) => stream_error(
            "feed_ahead",
            &format!("position {requested} is beyond the change feed's head {head} (a position from another database?)"),
            json!({ "head": head }),
        ),
        aurora::Error::Transaction(TxnError::HistoryNotKept { sequence, collection, id }) => stream_error(
            "history_not_kept",
            &format!("feed entry {sequence}: the version of {collection}/{id} it wrote was replaced while the change feed was off; re-read the current state, then follow from the feed head"),
            json!({ "sequence": sequence, "collection": collection, "id": id }),
        ),
        other => error_event(&ApiError::from(other)),
    }
}

// ---- the change feed ------------------------------------------------------

/// `GET /v1/changes?collection=C&after=SEQ`.
pub(crate) async fn changes(
    State(app): State<Arc<App>>,
    Who(who): Who,
    Q(params): Q<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let collection = params.get("collection").cloned();
    match &collection {
        Some(c) => {
            who.require(c, Right::Read)?;
            // A typo is reported, not answered with a stream that waits
            // forever (as a live query of it is).
            if !app.db.list_collections()?.iter().any(|n| n == c) {
                return Err(aurora::Error::UnknownCollection(c.clone()).into());
            }
        }
        None => who.require_all(Right::Read)?,
    }
    let start = match resume_position(&headers, params.get("after"))? {
        Some(p) => p,
        None => app.db.feed_head()?,
    };
    open(&app, &who, move |out| follow_changes(out, collection, start))
}

async fn follow_changes(out: Outbox, collection: Option<String>, mut pos: u64) {
    let app = Arc::clone(&out.app);
    let db = &app.db;
    let scope = match &collection {
        Some(c) => FeedScope::collections([c.clone()]),
        None => FeedScope::User,
    };
    let mut stop = app.shutdown.subscribe();
    match db.feed_head() {
        Ok(head) if pos > head => {
            out.finish(feed_error(aurora::Error::Transaction(aurora::txn::TxnError::FeedAhead {
                requested: pos,
                head,
            })));
            return;
        }
        Ok(head) if pos < head && db.config().change_feed_retention == 0 => {
            out.finish(stream_error(
                "feed_truncated",
                "this database keeps no change feed: history cannot be replayed",
                json!({ "oldest": head }),
            ));
            return;
        }
        Ok(_) => {}
        Err(_) => return,
    }
    let mut ready = false;
    loop {
        // Subscribe first, then read the history: a commit is either in
        // the history read or heard live (and skipped if it was in both).
        let mut live = match &collection {
            Some(c) => db.listen(c),
            None => match db.pubsub().listen_all(EventFilter::UserCollections) {
                Ok(l) => l,
                Err(_) => return,
            },
        };
        loop {
            let Ok(head) = db.feed_head() else { return };
            if pos >= head {
                break;
            }
            let through = head.min(pos.saturating_add(PAGE));
            match db.commits_between_in(pos, through, &scope).await {
                Ok(commits) => {
                    for c in &commits {
                        if !out.paced(commit_event(c)).await {
                            return;
                        }
                    }
                }
                Err(e) => {
                    out.finish(feed_error(e));
                    return;
                }
            }
            pos = through;
        }
        if !ready {
            ready = true;
            let e = Event::new("ready", None, &json!({ "position": pos }).to_string());
            if !out.paced(e).await {
                return;
            }
        }
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                r = live.recv_commit() => match r {
                    Ok(c) if c.sequence <= pos => {}
                    Ok(c) => match out.live(app.shared_events.commit(&c, collection.as_deref()), pos) {
                        Sent::Yes => pos = c.sequence,
                        Sent::CutOff | Sent::Gone => return,
                    },
                    // The hub dropped commits for this listener (the whole
                    // server is overloaded): catch up from the feed again.
                    Err(RecvError::Lagged(_)) => break,
                    Err(_) => return,
                }
            }
        }
    }
}

// ---- live queries ---------------------------------------------------------

/// `GET /v1/collections/{c}/live?q=QUERY-JSON`.
pub(crate) async fn live(
    State(app): State<Arc<App>>,
    Who(who): Who,
    P(collection): P<String>,
    Q(params): Q<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    who.require(&collection, Right::Read)?;
    let spec = match params.get("q") {
        Some(q) => {
            let json = crate::json::parse(q.as_bytes(), "`q`")?;
            crate::json::query(&json, "/q", true)?
        }
        None => crate::json::QuerySpec::default(),
    };
    let resume = resume_position(&headers, params.get("after"))?;
    // Started here, so that a bad query is a JSON error, not a stream. The
    // initial load is a query like any other: within the limits of
    // concurrent queries and of query time (it stops by itself at the
    // deadline, and when this request is dropped).
    let limit = app.limits.query_timeout;
    let cancel = crate::routes::CancelOnDrop::default();
    let load = spec
        .build(&app.db, &collection, app.limits.max_results)
        .deadline(std::time::Instant::now() + limit)
        .cancel_token(cancel.token())
        .watch();
    let watcher = crate::routes::within_query_time(limit, async {
        let _permit =
            app.queries.acquire().await.map_err(|_| ApiError::new("unavailable", "the server is shutting down"))?;
        load.await.map_err(ApiError::from)
    })
    .await?;
    open(&app, &who, move |out| follow_live(out, collection, watcher, resume))
}

/// Whether the results a client saw at `seen` are still those at `now`: no
/// commit touched the collection in between (checked in the feed).
async fn unchanged(app: &App, collection: &str, seen: u64, now: u64) -> bool {
    if seen == now {
        return true;
    }
    if seen > now || now - seen > LIVE_RESUME_WINDOW || app.db.config().change_feed_retention == 0 {
        return false;
    }
    let scope = FeedScope::collections([collection.to_string()]);
    matches!(app.db.commits_between_in(seen, now, &scope).await, Ok(v) if v.is_empty())
}

async fn follow_live(out: Outbox, collection: String, mut watcher: Watcher, resume: Option<u64>) {
    let app = Arc::clone(&out.app);
    let mut stop = app.shutdown.subscribe();
    let mut last = watcher.sequence();
    let resumed = match resume {
        Some(seen) => unchanged(&app, &collection, seen, last).await,
        None => false,
    };
    let first = if resumed {
        Event::new("ready", Some(last), &json!({ "sequence": last, "resumed": true }).to_string())
    } else {
        let results: Vec<_> = watcher.results().map(aurora::Document::to_json).collect();
        Event::new("snapshot", Some(last), &json!({ "sequence": last, "results": results }).to_string())
    };
    if !out.paced(first).await {
        return;
    }
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            u = watcher.recv() => match u {
                Ok(first) => {
                    // A commit's updates come together: take the rest of them.
                    let mut changes = vec![crate::json::query_update_json(&first)];
                    while watcher.pending() > 0 {
                        match watcher.try_recv() {
                            Some(Ok(u)) => changes.push(crate::json::query_update_json(&u)),
                            _ => break,
                        }
                    }
                    let seq = watcher.sequence();
                    let e = Event::new("update", Some(seq), &json!({ "sequence": seq, "changes": changes }).to_string());
                    match out.live(e, last) {
                        Sent::Yes => last = seq,
                        Sent::CutOff | Sent::Gone => return,
                    }
                }
                Err(WatchError::Closed) => return,
                Err(e) => {
                    out.finish(error_event(&ApiError::from(aurora::Error::from(e))));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_written_in_the_sse_format() {
        let e = Event::new("commit", Some(7), "{\"a\":1}");
        assert_eq!(&e.0[..], b"event: commit\nid: 7\ndata: {\"a\":1}\n\n");
        // A line break in the data (never in JSON text) makes `data:` lines.
        let e = Event::new("x", None, "one\ntwo");
        assert_eq!(&e.0[..], b"event: x\ndata: one\ndata: two\n\n");
    }

    #[test]
    fn a_commits_event_is_written_once_per_scope() {
        let shared = SharedEvents::default();
        let c = CommitEvents { sequence: 3, transaction_id: 1, events: Vec::new() };
        let a = shared.commit(&c, Some("c"));
        let b = shared.commit(&c, Some("c"));
        // The same bytes, not a copy.
        assert_eq!(a.0.as_ptr(), b.0.as_ptr());
        let other = shared.commit(&c, None);
        assert_ne!(a.0.as_ptr(), other.0.as_ptr());
        // Old commits make room for new ones.
        for seq in 4..(4 + SHARED_EVENTS as u64) {
            shared.commit(&CommitEvents { sequence: seq, ..c.clone() }, Some("c"));
        }
        assert!(shared.recent.lock().len() <= SHARED_EVENTS);
    }
}
