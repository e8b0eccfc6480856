//! The event streams: [`ChangeStream`] (a collection's commits) and
//! [`LiveQuery`] (a query's results kept current), both
//! `futures_core::Stream`s that reconnect by themselves after a broken
//! connection or a server restart, resuming after the last event they
//! delivered (`Last-Event-ID`): no gap, no duplicate.

use crate::client::document;
use crate::error::{from_json, transport};
use crate::http::{encode, Event, Http};
use crate::store::LiveEvent;
use aurora::{ChangeCause, ChangeEvent, ChangeType, CommitEvents, DocId, Document, Error, QueryUpdate, Result};
use serde_json::Value as Json;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// The first wait before reconnecting; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Events buffered between the connection and the consumer.
const BUFFER: usize = 256;

/// Whether a failure to connect is worth retrying (the server is down or
/// restarting, or busy) rather than final (a bad request, a missing right).
fn retryable(e: &Error) -> bool {
    match e {
        Error::Closed => true,
        Error::Remote { code, .. } => {
            matches!(code.as_str(), "unreachable" | "bad_response" | "too_many_streams" | "internal")
        }
        _ => false,
    }
}

fn next_backoff(b: Duration) -> Duration {
    (b * 2).min(MAX_BACKOFF)
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

/// What an `error` event asks for.
enum StreamEnd {
    /// Reconnect (the server cut the stream off: a slow consumer).
    Reconnect,
    /// Give up with this error.
    Fail(Error),
}

fn stream_error(e: &Event) -> StreamEnd {
    let json: Json = serde_json::from_str(&e.data).unwrap_or(Json::Null);
    let error = json.get("error").cloned().unwrap_or(Json::Null);
    match error.get("code").and_then(Json::as_str) {
        Some("slow_consumer") => StreamEnd::Reconnect,
        Some(_) => StreamEnd::Fail(from_json(200, &error)),
        None => StreamEnd::Fail(transport("bad_response", format!("an error event without a code: {}", e.data))),
    }
}

// ---- change streams -------------------------------------------------------

/// A reconnecting change stream: each item is one commit's changes, in
/// commit order, exactly once ([`Client::changes`](crate::Client::changes)).
/// [`ChangeStream::position`] is the sequence of the last commit delivered.
pub struct ChangeStream {
    feed: Feed<CommitEvents>,
    position: Arc<AtomicU64>,
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

impl ChangeStream {
    pub(crate) fn start(http: Http, collection: Option<String>, after: u64) -> Self {
        let position = Arc::new(AtomicU64::new(after));
        let (tx, rx) = mpsc::channel(BUFFER);
        let task = tokio::spawn(follow_changes(http, collection, after, Arc::clone(&position), tx));
        Self { feed: Feed { rx, task }, position }
    }

    /// The sequence of the last commit delivered (or the starting position).
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }
}

impl futures_core::Stream for ChangeStream {
    type Item = Result<CommitEvents>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().feed.poll(cx)
    }
}

async fn follow_changes(
    http: Http,
    collection: Option<String>,
    mut last: u64,
    position: Arc<AtomicU64>,
    tx: mpsc::Sender<Result<CommitEvents>>,
) {
    let mut backoff = FIRST_BACKOFF;
    let path = match &collection {
        Some(c) => format!("/v1/changes?collection={}", encode(c)),
        None => "/v1/changes".to_string(),
    };
    loop {
        let mut events = match http.events(&path, Some(last)).await {
            Ok(e) => e,
            Err(e) if retryable(&e) => {
                tokio::time::sleep(backoff).await;
                backoff = next_backoff(backoff);
                continue;
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        backoff = FIRST_BACKOFF;
        while let Ok(Some(e)) = events.next().await {
            match e.event.as_str() {
                "commit" => {
                    let commit = serde_json::from_str(&e.data)
                        .map_err(|err| transport("bad_response", err))
                        .and_then(|j: Json| commit_from_json(&j));
                    match commit {
                        Ok(c) if c.sequence <= last => {}
                        Ok(c) => {
                            last = c.sequence;
                            position.store(last, Ordering::Release);
                            if tx.send(Ok(c)).await.is_err() {
                                return;
                            }
                        }
                        Err(err) => {
                            let _ = tx.send(Err(err)).await;
                            return;
                        }
                    }
                }
                "error" => match stream_error(&e) {
                    StreamEnd::Reconnect => break,
                    StreamEnd::Fail(err) => {
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                },
                _ => {}
            }
        }
        // The stream ended or broke: reconnect after `last`.
        tokio::time::sleep(backoff).await;
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
    pub(crate) fn start(http: Http, collection: String, query: Json) -> Self {
        let (tx, rx) = mpsc::channel(BUFFER);
        let task = tokio::spawn(follow_live(http, collection, query, tx));
        Self { feed: Feed { rx, task } }
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

async fn follow_live(http: Http, collection: String, query: Json, tx: mpsc::Sender<Result<LiveEvent>>) {
    let path = format!("/v1/collections/{}/live?q={}", encode(&collection), encode(&query.to_string()));
    let mut current: Option<Vec<Document>> = None;
    let mut last: Option<u64> = None;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut events = match http.events(&path, last).await {
            Ok(e) => e,
            Err(e) if retryable(&e) => {
                tokio::time::sleep(backoff).await;
                backoff = next_backoff(backoff);
                continue;
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        backoff = FIRST_BACKOFF;
        while let Ok(Some(e)) = events.next().await {
            let out = match e.event.as_str() {
                "snapshot" => parse(&e).and_then(|j| {
                    let sequence = j.get("sequence").and_then(Json::as_u64).unwrap_or(0);
                    let docs = documents(&j)?;
                    last = Some(sequence);
                    Ok(match current.replace(docs.clone()) {
                        None => Some(LiveEvent::Results { sequence, documents: docs }),
                        Some(old) => {
                            let updates = diff(&old, &docs);
                            (!updates.is_empty()).then_some(LiveEvent::Update { sequence, updates })
                        }
                    })
                }),
                "update" => parse(&e).and_then(|j| {
                    let sequence = j.get("sequence").and_then(Json::as_u64).unwrap_or(0);
                    let list = current.get_or_insert_with(Vec::new);
                    let mut updates = Vec::new();
                    for c in j.get("changes").and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[]) {
                        let u = live_change(c, list)?;
                        u.apply_to(list);
                        updates.push(u);
                    }
                    last = Some(sequence);
                    Ok(Some(LiveEvent::Update { sequence, updates }))
                }),
                "error" => match stream_error(&e) {
                    StreamEnd::Reconnect => break,
                    StreamEnd::Fail(err) => Err(err),
                },
                _ => Ok(None),
            };
            match out {
                Ok(Some(event)) => {
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    let _ = tx.send(Err(err)).await;
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
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
