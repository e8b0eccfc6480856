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

use crate::error::ApiError;
use crate::extract::{Who, P, Q};
use crate::keys::Right;
use crate::App;
use aurora::{CommitEvents, EventFilter, FeedScope, RecvError, WatchError, Watcher};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
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
];

/// An `error` event: `{"error": {"code", "message", ...extra}}`.
fn stream_error(code: &str, message: &str, extra: serde_json::Value) -> Event {
    let mut error = serde_json::Map::new();
    error.insert("code".into(), json!(code));
    error.insert("message".into(), json!(message));
    if let serde_json::Value::Object(m) = extra {
        error.extend(m);
    }
    Event::default().event("error").data(json!({ "error": error }).to_string())
}

fn error_event(e: &ApiError) -> Event {
    Event::default().event("error").data(e.to_json().to_string())
}

impl Outbox {
    /// Sends, waiting for room (history, first events); false if the client left.
    async fn paced(&self, e: Event) -> bool {
        self.tx.send(e).await.is_ok()
    }

    /// Sends a live event without waiting; a full channel cuts the stream
    /// off, to be resumed after `resume` (the last position delivered).
    fn live(&self, e: Event, resume: u64) -> Sent {
        match self.tx.try_send(e) {
            Ok(()) => Sent::Yes,
            Err(TrySendError::Full(_)) => {
                self.app.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                let notice = stream_error(
                    "slow_consumer",
                    "this stream was cut off: the client did not read fast enough; reconnect with Last-Event-ID (the id of this event)",
                    json!({ "resume_after": resume }),
                )
                .id(resume.to_string());
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

/// The response body of a stream: the channel, then the tail event.
struct EventStream {
    rx: mpsc::Receiver<Event>,
    tail: Arc<Mutex<Option<Event>>>,
    task: tokio::task::JoinHandle<()>,
    _permit: OwnedSemaphorePermit,
    app: Arc<App>,
}

impl futures_core::Stream for EventStream {
    type Item = Result<Event, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(e)) => Poll::Ready(Some(Ok(e))),
            Poll::Ready(None) => Poll::Ready(this.tail.lock().take().map(Ok)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        // The client left (or the stream ended): the task and its listener go.
        self.task.abort();
        self.app.stats.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Opens a stream run by `body`, within the limit of open streams.
fn open<F, Fut>(app: &Arc<App>, body: F) -> Result<Response, ApiError>
where
    F: FnOnce(Outbox) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let permit = Arc::clone(&app.streams).try_acquire_owned().map_err(|_| {
        ApiError::new("too_many_streams", format!("{} streams are open, the limit", app.limits.max_streams))
    })?;
    app.stats.open_streams.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(app.limits.stream_buffer.max(1));
    let tail = Arc::new(Mutex::new(None));
    let task = tokio::spawn(body(Outbox { tx, tail: Arc::clone(&tail), app: Arc::clone(app) }));
    let stream = EventStream { rx, tail, task, _permit: permit, app: Arc::clone(app) };
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
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
    Event::default().event("commit").id(c.sequence.to_string()).data(crate::json::commit_json(c))
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
        Some(c) => who.require(c, Right::Read)?,
        None => who.require_all(Right::Read)?,
    }
    let start = match resume_position(&headers, params.get("after"))? {
        Some(p) => p,
        None => app.db.feed_head()?,
    };
    open(&app, move |out| follow_changes(out, collection, start))
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
            let e = Event::default().event("ready").data(json!({ "position": pos }).to_string());
            if !out.paced(e).await {
                return;
            }
        }
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                r = live.recv_commit() => match r {
                    Ok(c) if c.sequence <= pos => {}
                    Ok(c) => match out.live(commit_event(&c), pos) {
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
            let json = serde_json::from_str(q)
                .map_err(|e| ApiError::new("malformed_json", format!("`q` is not JSON: {e}")))?;
            crate::json::query(&json, "/q", true)?
        }
        None => crate::json::QuerySpec::default(),
    };
    let resume = resume_position(&headers, params.get("after"))?;
    // Started here, so that a bad query is a JSON error, not a stream.
    let watcher = spec.build(&app.db, &collection, app.limits.max_results).watch().await?;
    open(&app, move |out| follow_live(out, collection, watcher, resume))
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
        Event::default()
            .event("ready")
            .id(last.to_string())
            .data(json!({ "sequence": last, "resumed": true }).to_string())
    } else {
        let results: Vec<_> = watcher.results().map(aurora::Document::to_json).collect();
        Event::default()
            .event("snapshot")
            .id(last.to_string())
            .data(json!({ "sequence": last, "results": results }).to_string())
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
                    let e = Event::default()
                        .event("update")
                        .id(seq.to_string())
                        .data(json!({ "sequence": seq, "changes": changes }).to_string());
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
