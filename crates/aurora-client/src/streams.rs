//! The event streams: [`ChangeStream`] (a collection's commits) and
//! [`LiveQuery`] (a query's results kept current), both
//! `futures_core::Stream`s that reconnect by themselves after a broken
//! connection or a server restart, resuming after the last event they
//! delivered (`Last-Event-ID`): no gap, no duplicate.
//!
//! Each stream is a task feeding a bounded channel; dropping the stream
//! aborts the task and closes its connection. Reconnection waits grow
//! from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`], each drawn at random from
//! its upper half (so clients cut off together do not come back
//! together), and only a connection that delivered an event resets them:
//! a server that accepts and hangs up at once is retried ever more
//! slowly, never in a loop.

use crate::client::document;
use crate::error::{feed_error, from_json, transport};
use crate::http::{encode, is_too_large, timed_out, Event, Http};
use crate::store::LiveEvent;
use aurora::{ChangeCause, ChangeEvent, ChangeType, CommitEvents, DocId, Document, Error, QueryUpdate, Result};
use serde_json::Value as Json;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The first wait before reconnecting; doubled up to [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between reconnection attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Events buffered between the connection and the consumer.
const BUFFER: usize = 256;

/// Whether a failure is worth retrying (the server is down, restarting,
/// busy or silent) rather than final (a bad request, a missing right, an
/// event over the size limit).
fn retryable(e: &Error) -> bool {
    match e {
        Error::Closed => true,
        Error::Remote { code, .. } => {
            matches!(code.as_str(), "unreachable" | "timeout" | "bad_response" | "too_many_streams" | "internal")
        }
        _ => false,
    }
}

/// A reconnection delay: doubling from [`FIRST_BACKOFF`] to
/// [`MAX_BACKOFF`], each wait drawn from the upper half of the current step.
#[derive(Debug)]
pub(crate) struct Backoff {
    step: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { step: FIRST_BACKOFF }
    }

    /// The next wait (and the step grows).
    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = jitter(self.step);
        self.step = (self.step * 2).min(MAX_BACKOFF);
        wait
    }

    /// A connection made progress: the next failure waits the least again.
    pub(crate) fn reset(&mut self) {
        self.step = FIRST_BACKOFF;
    }
}

/// A duration drawn uniformly from `[d/2, d]` (std's per-instance random
/// hash keys as the random source: no dependency for one number).
fn jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |t| t.as_nanos()));
    let half = d / 2;
    let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).saturating_add(1);
    half + Duration::from_nanos(h.finish() % span)
}

/// The stream's receiving side; dropping it stops the connection task.
struct Feed<T> {
    rx: mpsc::Receiver<Result<T>>,
    task: tokio::task::JoinHandle<()>,
}

impl<T> Drop for Feed<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T> Feed<T> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        self.rx.poll_recv(cx)
    }
}

/// Tells the caller that opened a stream how its first connection went:
/// `Ok` once an event arrived, the error if the stream failed before.
struct Opened(Option<oneshot::Sender<Result<()>>>);

impl Opened {
    fn ok(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(Ok(()));
        }
    }

    /// Reports `e` to the caller if it is still waiting (true), else false.
    fn fail(&mut self, e: Error) -> std::result::Result<(), Error> {
        match self.0.take() {
            Some(tx) => {
                let _ = tx.send(Err(e));
                Ok(())
            }
            None => Err(e),
        }
    }

    fn waiting(&self) -> bool {
        self.0.is_some()
    }
}

/// Waits until a stream's first connection delivered an event (or
/// failed), within the request time limit.
async fn wait_opened(http: &Http, opened: oneshot::Receiver<Result<()>>) -> Result<()> {
    let limit = http.options().request_timeout;
    match tokio::time::timeout(limit, opened).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(transport("unreachable", "the stream's task ended before it connected")),
        Err(_) => Err(timed_out("opening the stream", limit)),
    }
}

/// What an `error` event asks for.
enum StreamEnd {
    /// Reconnect (the server cut the stream off: a slow consumer).
    Reconnect,
    /// Give up with this error.
    Fail(Error),
}

/// An `error` event; `position` is where the stream was (the position a
/// `feed_truncated` or `feed_ahead` refused).
fn stream_error(e: &Event, position: u64) -> StreamEnd {
    let json: Json = serde_json::from_str(&e.data).unwrap_or(Json::Null);
    let error = json.get("error").cloned().unwrap_or(Json::Null);
    match error.get("code").and_then(Json::as_str) {
        Some("slow_consumer") => StreamEnd::Reconnect,
        Some("feed_truncated" | "feed_ahead" | "history_not_kept") => StreamEnd::Fail(feed_error(&error, position)),
        Some(_) => StreamEnd::Fail(from_json(200, &error)),
        None => StreamEnd::Fail(transport("bad_response", format!("an error event without a code: {}", e.data))),
    }
}

/// Delivers a final error: to the caller still waiting for the stream to
/// open, else as the stream's last item.
async fn fail<T>(opened: &mut Opened, tx: &mpsc::Sender<Result<T>>, e: Error) {
    if let Err(e) = opened.fail(e) {
        let _ = tx.send(Err(e)).await;
    }
}

/// What an event did to a stream.
enum Handled<T> {
    /// Nothing to deliver (a duplicate, or an event of no interest).
    Skip,
    /// The stream is current (a `ready` event): progress, nothing to deliver.
    Ready,
    /// An item for the consumer.
    Deliver(T),
    /// The server cut the stream off: reconnect.
    Reconnect,
}

/// The state of one kind of stream, across its connections.
trait Reader: Send + 'static {
    type Item: Send + 'static;
    /// The position to resume after (`Last-Event-ID`), if any yet.
    fn position(&self) -> Option<u64>;
    /// Handles one event; an error stops the stream.
    fn on_event(&mut self, e: &Event) -> Result<Handled<Self::Item>>;
}

/// Whether an error reading a connection ends the stream (an event over
/// the size limit or not UTF-8 would come again) rather than calling for
/// a reconnection (broken, or silent too long).
fn final_read_error(e: &Error) -> bool {
    is_too_large(e) || matches!(e, Error::Remote { code, .. } if code == "bad_response")
}

/// Connects, reads each connection with `reader`, and reconnects after a
/// wait, until the consumer leaves or an error ends the stream.
async fn run<R: Reader>(
    http: Http,
    path: String,
    mut reader: R,
    tx: mpsc::Sender<Result<R::Item>>,
    mut opened: Opened,
) {
    let mut backoff = Backoff::new();
    loop {
        match http.events(&path, reader.position()).await {
            Ok(mut events) => {
                let mut progressed = false;
                loop {
                    let event = match events.next().await {
                        Ok(Some(e)) => e,
                        Ok(None) => break,
                        Err(e) if final_read_error(&e) => {
                            fail(&mut opened, &tx, e).await;
                            return;
                        }
                        Err(_) => break,
                    };
                    match reader.on_event(&event) {
                        Ok(Handled::Skip) => {}
                        Ok(Handled::Ready) => {
                            progressed = true;
                            opened.ok();
                        }
                        Ok(Handled::Deliver(item)) => {
                            progressed = true;
                            opened.ok();
                            if tx.send(Ok(item)).await.is_err() {
                                return;
                            }
                        }
                        Ok(Handled::Reconnect) => break,
                        Err(e) => {
                            fail(&mut opened, &tx, e).await;
                            return;
                        }
                    }
                }
                if progressed {
                    backoff.reset();
                }
            }
            // The first connection's failure is the caller's answer;
            // later ones are retried while they may pass.
            Err(e) if retryable(&e) && !opened.waiting() => {}
            Err(e) => {
                fail(&mut opened, &tx, e).await;
                return;
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff.next_wait()).await;
    }
}

/// Starts a stream's task and waits until its first connection delivered
/// an event (so a refusal is the caller's error, as on the embedded handle).
async fn start<R: Reader>(http: Http, path: String, reader: R) -> Result<Feed<R::Item>> {
    let (tx, rx) = mpsc::channel(BUFFER);
    let (opened_tx, opened_rx) = oneshot::channel();
    let task = tokio::spawn(run(http.clone(), path, reader, tx, Opened(Some(opened_tx))));
    // Dropped (and the task aborted) if this future is dropped or fails.
    let feed = Feed { rx, task };
    wait_opened(&http, opened_rx).await?;
    Ok(feed)
}

// ---- change streams -------------------------------------------------------

/// A reconnecting change stream: each item is one commit's changes, in
/// commit order, exactly once ([`Client::changes`](crate::Client::changes)).
/// [`ChangeStream::position`] is the sequence of the last commit the
/// stream yielded.
pub struct ChangeStream {
    feed: Feed<CommitEvents>,
    position: u64,
}

impl std::fmt::Debug for ChangeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeStream").field("position", &self.position()).finish()
    }
}

fn change_type(t: &str) -> Result<ChangeType> {
    Ok(match t {
        "insert" => ChangeType::Insert,
        "update" => ChangeType::Update,
        "delete" => ChangeType::Delete,
        other => return Err(transport("bad_response", format!("unknown change type {other:?}"))),
    })
}

/// A `commit` event's data as the embedded [`CommitEvents`].
pub(crate) fn commit_from_json(j: &Json) -> Result<CommitEvents> {
    let bad = |what: &str| transport("bad_response", format!("a commit event without {what}"));
    let sequence = j.get("sequence").and_then(Json::as_u64).ok_or_else(|| bad("`sequence`"))?;
    let transaction_id = j.get("transaction_id").and_then(Json::as_u64).unwrap_or(0);
    let changes = j.get("changes").and_then(Json::as_array).ok_or_else(|| bad("`changes`"))?;
    let mut events = Vec::with_capacity(changes.len());
    for c in changes {
        let doc =
            |k: &str| -> Result<Option<Arc<Document>>> { c.get(k).map(|d| document(d).map(Arc::new)).transpose() };
        events.push(ChangeEvent {
            collection: c.get("collection").and_then(Json::as_str).ok_or_else(|| bad("`collection`"))?.to_string(),
            change_type: change_type(c.get("type").and_then(Json::as_str).unwrap_or(""))?,
            id: DocId::from_json(c.get("id").ok_or_else(|| bad("`id`"))?)?,
            document: doc("document")?,
            old_document: doc("old_document")?,
            sequence,
            transaction_id,
            cause: if c.get("cause").and_then(Json::as_str) == Some("expired") {
                ChangeCause::Expired
            } else {
                ChangeCause::Write
            },
        });
    }
    Ok(CommitEvents { sequence, transaction_id, events })
}

/// A change stream's state across connections: the last commit read.
struct Changes {
    last: u64,
}

impl Reader for Changes {
    type Item = CommitEvents;

    fn position(&self) -> Option<u64> {
        Some(self.last)
    }

    fn on_event(&mut self, e: &Event) -> Result<Handled<CommitEvents>> {
        match e.event.as_str() {
            "commit" => {
                let commit = commit_from_json(&parse(e)?)?;
                // A commit at or before the position is one already
                // delivered (a server replaying after a reconnection).
                if commit.sequence <= self.last {
                    return Ok(Handled::Skip);
                }
                self.last = commit.sequence;
                Ok(Handled::Deliver(commit))
            }
            "ready" => Ok(Handled::Ready),
            "error" => match stream_error(e, self.last) {
                StreamEnd::Reconnect => Ok(Handled::Reconnect),
                StreamEnd::Fail(err) => Err(err),
            },
            _ => Ok(Handled::Skip),
        }
    }
}

impl ChangeStream {
    /// Opens the stream after sequence `after`; returns once the server
    /// accepted it (its refusal — an unknown collection, a missing right, a
    /// trimmed position — is the error).
    pub(crate) async fn open(http: Http, collection: Option<String>, after: u64) -> Result<Self> {
        let path = match &collection {
            Some(c) => format!("/v1/changes?collection={}", encode(c)),
            None => "/v1/changes".to_string(),
        };
        let feed = start(http, path, Changes { last: after }).await?;
        Ok(Self { feed, position: after })
    }

    /// The sequence of the last commit this stream yielded (or the
    /// starting position): where to resume after the items consumed so
    /// far — commits read from the server but not yet yielded do not count.
    pub fn position(&self) -> u64 {
        self.position
    }
}

impl futures_core::Stream for ChangeStream {
    type Item = Result<CommitEvents>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = this.feed.poll(cx);
        if let Poll::Ready(Some(Ok(c))) = &next {
            this.position = c.sequence;
        }
        next
    }
}

// ---- live queries ---------------------------------------------------------

/// A reconnecting live query ([`Client::live`](crate::Client::live)): first
/// [`LiveEvent::Results`], then [`LiveEvent::Update`]s in commit order —
/// the same events as [`Store::live`](crate::Store::live) on the embedded
/// handle. After a reconnection the stream resumes after the last update
/// delivered; if the results changed meanwhile, the difference comes as
/// one update (so applying every update to the first results always gives
/// the current results).
pub struct LiveQuery {
    feed: Feed<LiveEvent>,
}

impl std::fmt::Debug for LiveQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveQuery").finish_non_exhaustive()
    }
}

impl LiveQuery {
    /// Opens the live query; returns once the server sent its results (a
    /// refusal — a bad query, an unknown collection — is the error).
    pub(crate) async fn open(http: Http, collection: &str, query: &Json) -> Result<Self> {
        let path = format!("/v1/collections/{}/live?q={}", encode(collection), encode(&query.to_string()));
        let feed = start(http, path, Live { current: None, last: None }).await?;
        Ok(Self { feed })
    }
}

impl futures_core::Stream for LiveQuery {
    type Item = Result<LiveEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().feed.poll(cx)
    }
}

/// The updates that turn `old` into `new` (removals first, then each
/// position of `new` in order), as a live query reports them.
pub(crate) fn diff(old: &[Document], new: &[Document]) -> Vec<QueryUpdate> {
    let mut current: Vec<Document> = old.to_vec();
    let mut updates = Vec::new();
    let keep: std::collections::HashSet<&DocId> = new.iter().map(|d| &d.id).collect();
    for i in (0..current.len()).rev() {
        if !keep.contains(&current[i].id) {
            let document = current.remove(i);
            updates.push(QueryUpdate::Removed { document, old_index: i });
        }
    }
    for (i, doc) in new.iter().enumerate() {
        match current.iter().position(|d| d.id == doc.id) {
            Some(j) if j == i && current[j] == *doc => {}
            Some(j) => {
                let old = current.remove(j);
                current.insert(i, doc.clone());
                updates.push(QueryUpdate::Modified { old, new: doc.clone(), old_index: j, new_index: i });
            }
            None => {
                current.insert(i, doc.clone());
                updates.push(QueryUpdate::Added { document: doc.clone(), new_index: i });
            }
        }
    }
    updates
}

/// One change of an `update` event, against the results so far.
fn live_change(c: &Json, current: &[Document]) -> Result<QueryUpdate> {
    let bad = |what: &str| transport("bad_response", format!("a live update without {what}"));
    let index = |k: &str| c.get(k).and_then(Json::as_u64).map(|i| i as usize).ok_or_else(|| bad(k));
    let at = |i: usize| current.get(i).cloned().ok_or_else(|| bad("a valid `old_index`"));
    Ok(match c.get("type").and_then(Json::as_str) {
        Some("added") => QueryUpdate::Added {
            document: document(c.get("document").ok_or_else(|| bad("`document`"))?)?,
            new_index: index("new_index")?,
        },
        Some("removed") => QueryUpdate::Removed { document: at(index("old_index")?)?, old_index: index("old_index")? },
        Some("modified") => QueryUpdate::Modified {
            old: at(index("old_index")?)?,
            new: document(c.get("document").ok_or_else(|| bad("`document`"))?)?,
            old_index: index("old_index")?,
            new_index: index("new_index")?,
        },
        _ => return Err(bad("a known `type`")),
    })
}

fn parse(e: &Event) -> Result<Json> {
    serde_json::from_str(&e.data).map_err(|err| transport("bad_response", err))
}

fn documents(j: &Json) -> Result<Vec<Document>> {
    j.get("results")
        .and_then(Json::as_array)
        .ok_or_else(|| transport("bad_response", "a snapshot without `results`"))?
        .iter()
        .map(document)
        .collect()
}

/// A live query's state across connections: the results so far and the
/// sequence they are current at.
struct Live {
    current: Option<Vec<Document>>,
    last: Option<u64>,
}

fn sequence_of(j: &Json) -> Result<u64> {
    j.get("sequence").and_then(Json::as_u64).ok_or_else(|| transport("bad_response", "an event without `sequence`"))
}

impl Reader for Live {
    type Item = LiveEvent;

    fn position(&self) -> Option<u64> {
        self.last
    }

    fn on_event(&mut self, e: &Event) -> Result<Handled<LiveEvent>> {
        match e.event.as_str() {
            "snapshot" => {
                let j = parse(e)?;
                let sequence = sequence_of(&j)?;
                let docs = documents(&j)?;
                self.last = Some(sequence);
                Ok(match self.current.replace(docs.clone()) {
                    None => Handled::Deliver(LiveEvent::Results { sequence, documents: docs }),
                    Some(old) => {
                        let updates = diff(&old, &docs);
                        if updates.is_empty() {
                            Handled::Ready
                        } else {
                            Handled::Deliver(LiveEvent::Update { sequence, updates })
                        }
                    }
                })
            }
            "update" => {
                let j = parse(e)?;
                let sequence = sequence_of(&j)?;
                // An update at or before the results' sequence is in them
                // already: applying it again would corrupt the list.
                if self.last.is_some_and(|l| sequence <= l) {
                    return Ok(Handled::Skip);
                }
                let list = self
                    .current
                    .as_mut()
                    .ok_or_else(|| transport("bad_response", "a live update before the results"))?;
                let mut updates = Vec::new();
                for c in j.get("changes").and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[]) {
                    let u = live_change(c, list)?;
                    u.apply_to(list);
                    updates.push(u);
                }
                self.last = Some(sequence);
                Ok(Handled::Deliver(LiveEvent::Update { sequence, updates }))
            }
            // Resumed: the results are still those at `sequence`.
            "ready" if self.current.is_some() => {
                if let Ok(s) = parse(e).and_then(|j| sequence_of(&j)) {
                    self.last = Some(self.last.map_or(s, |l| l.max(s)));
                }
                Ok(Handled::Ready)
            }
            "error" => match stream_error(e, self.last.unwrap_or(0)) {
                StreamEnd::Reconnect => Ok(Handled::Reconnect),
                StreamEnd::Fail(err) => Err(err),
            },
            _ => Ok(Handled::Skip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora::doc;

    fn d(id: &str, n: i64) -> Document {
        let mut x = doc! { "n": n };
        x.id = DocId::parse(id).expect("id");
        x
    }

    #[test]
    fn reconnection_waits_grow_to_a_bound_and_are_jittered() {
        let mut b = Backoff::new();
        let mut step = FIRST_BACKOFF;
        for _ in 0..10 {
            let w = b.next_wait();
            assert!(w >= step / 2 && w <= step, "{w:?} outside [{:?}, {step:?}]", step / 2);
            step = (step * 2).min(MAX_BACKOFF);
        }
        assert_eq!(step, MAX_BACKOFF);
        // Twenty waits at the top step are not all the same.
        let waits: std::collections::HashSet<Duration> = (0..20).map(|_| b.next_wait()).collect();
        assert!(waits.len() > 1, "no jitter: {waits:?}");
        b.reset();
        assert!(b.next_wait() <= FIRST_BACKOFF);
    }

    #[test]
    fn a_diff_applied_gives_the_new_results() {
        let old = vec![d("a", 1), d("b", 2), d("c", 3), d("d", 4)];
        let new = vec![d("c", 3), d("e", 5), d("a", 9), d("d", 4)];
        let mut list = old.clone();
        let updates = diff(&old, &new);
        for u in &updates {
            u.apply_to(&mut list);
        }
        assert_eq!(list, new);
        assert!(matches!(updates[0], QueryUpdate::Removed { old_index: 1, .. }), "{updates:?}");
        assert!(diff(&new, &new).is_empty());
    }
}
