//! [`Watcher`]: a live query.

use aurora_core::{DocId, Document};
use aurora_pubsub::{ChangeEvent, CommitEvents, EventFilter, Listener, RecvError};
use aurora_query::{Query, QueryError, SortKey};
use aurora_txn::{Database, Isolation};
use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// One change to a live query's ordered result set. Indexes are positions
/// in [`Watcher::results`] order and are meant to be applied in sequence:
/// `old_index` is where the document was just before this update,
/// `new_index` where it is just after it ([`QueryUpdate::apply_to`] does
/// exactly that), so a UI can keep its list without re-sorting.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryUpdate {
    /// A document now belongs to the results (it did not before).
    Added {
        /// The document, as the query returns it.
        document: Document,
        /// Where it was inserted.
        new_index: usize,
    },
    /// A document no longer belongs to the results.
    Removed {
        /// The document as it was last reported.
        document: Document,
        /// Where it was removed from.
        old_index: usize,
    },
    /// A document of the results changed, moved, or both.
    Modified {
        /// Before.
        old: Document,
        /// After.
        new: Document,
        /// Where it was.
        old_index: usize,
        /// Where it is now.
        new_index: usize,
    },
}

impl QueryUpdate {
    /// The document the update is about (the new version for `Modified`).
    pub fn document(&self) -> &Document {
        match self {
            QueryUpdate::Added { document, .. } | QueryUpdate::Removed { document, .. } => document,
            QueryUpdate::Modified { new, .. } => new,
        }
    }

    /// Where the document was (`None` for `Added`).
    pub fn old_index(&self) -> Option<usize> {
        match self {
            QueryUpdate::Added { .. } => None,
            QueryUpdate::Removed { old_index, .. } | QueryUpdate::Modified { old_index, .. } => Some(*old_index),
        }
    }

    /// Where the document is now (`None` for `Removed`).
    pub fn new_index(&self) -> Option<usize> {
        match self {
            QueryUpdate::Removed { .. } => None,
            QueryUpdate::Added { new_index, .. } | QueryUpdate::Modified { new_index, .. } => Some(*new_index),
        }
    }

    /// Applies the update to a list that mirrors the results: removes the
    /// document at `old_index`, then inserts it at `new_index`.
    ///
    /// # Panics
    /// If an index is out of the list's bounds (the list did not mirror the
    /// results the updates were computed for).
    pub fn apply_to(&self, list: &mut Vec<Document>) {
        if let Some(i) = self.old_index() {
            list.remove(i);
        }
        if let Some(i) = self.new_index() {
            list.insert(i, self.document().clone());
        }
    }
}

/// Why a watcher stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// Re-running the query failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The event source closed (the database closed).
    #[error("the database closed")]
    Closed,
}

/// One member of the kept result list.
#[derive(Debug, Clone)]
struct Entry {
    key: SortKey,
    doc: Arc<Document>,
}

/// Documents kept past a window's end, so that members leaving the window
/// are replaced from memory; a reload happens only when this runs out.
const MIN_BUFFER: usize = 8;

/// A live query: its current result set, in the query's order, and the
/// updates that change it.
///
/// Every consumer of committed changes here reads a commit as one unit:
/// all of a commit's changes are applied before anything is reported, so
/// after each commit [`Watcher::results`] equals the query re-run at
/// [`Watcher::sequence`]. The watcher is also a `futures_core::Stream` of
/// [`QueryUpdate`]s.
pub struct Watcher {
    db: Database,
    query: Query,
    listener: Listener,
    /// The kept matches in query order: all of them for an unwindowed
    /// query; for a windowed one, the first `offset + limit + buffer` (a
    /// prefix of the ordered matches).
    list: Vec<Entry>,
    /// The sort key of every document in `list`.
    keys: HashMap<DocId, SortKey>,
    /// Whether `list` holds every match (false: matches sorting after its
    /// last entry may exist).
    complete: bool,
    /// Commits at or below this sequence are reflected.
    sequence: u64,
    pending: VecDeque<QueryUpdate>,
    /// `(offset, limit)` for windowed queries (limit, offset or a cursor).
    window: Option<(usize, usize)>,
    /// How many times the query was re-run after the start.
    reloads: u64,
    /// A commit could not be applied (an error evaluating a document): the
    /// query is re-run before anything else — at once the first time, then
    /// after each new commit (not in a loop while the error lasts).
    stale: bool,
    /// The re-run failed: wait for the next commit before trying again.
    retry_after_commit: bool,
    /// The window the consumer was last told about, when the state moved
    /// past it without telling (a refill that failed): what the re-run
    /// diffs against.
    told: Option<Vec<Entry>>,
}

impl Watcher {
    /// Starts watching: `listener` must already be subscribed to the
    /// query's collection (subscribe first, then call this), with
    /// [`Watcher::listener_filter`] or a wider filter. The query's deadline
    /// and cancel token ([`Query::deadline`](aurora_query::Query::deadline))
    /// bound this initial load only.
    pub fn start(db: Database, query: Query, listener: Listener) -> Result<Self, WatchError> {
        listener.mark_live_query();
        let window = query.is_windowed().then(|| {
            let (offset, limit) = query.window();
            (offset, limit.unwrap_or(usize::MAX))
        });
        let mut w = Self {
            db,
            query,
            listener,
            list: Vec::new(),
            keys: HashMap::new(),
            complete: true,
            sequence: 0,
            pending: VecDeque::new(),
            window,
            reloads: 0,
            stale: false,
            retry_after_commit: false,
            told: None,
        };
        w.load()?;
        // A deadline or cancel token bounds the initial load only: the
        // live query's later re-runs must not fail for it.
        w.query = w.query.clone().without_deadline();
        Ok(w)
    }

    /// The events a watcher of `query` needs: changes of documents that
    /// match its filter before or after the change. A write that cannot
    /// affect the query is dropped by the hub before it is buffered. (With
    /// computed fields, the filter reads fields the stored documents lack,
    /// so every change of the collection is needed.)
    pub fn listener_filter(query: &Query) -> EventFilter {
        if query.has_computed_fields() {
            EventFilter::All
        } else {
            EventFilter::touches(query.filter_expr().clone())
        }
    }

    /// The current results, in the query's order (ties by id).
    pub fn results(&self) -> impl ExactSizeIterator<Item = &Document> {
        let (from, to) = self.window_range();
        self.list[from..to].iter().map(|e| &*e.doc)
    }

    /// The sequence (commit) the results reflect.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Updates computed but not yet received. When it is 0, a list kept
    /// by applying every received update equals [`Watcher::results`].
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// How many times the query was re-run since the start: after the
    /// event stream lagged, or when a window ran out of buffered documents.
    pub fn reloads(&self) -> u64 {
        self.reloads
    }

    /// The part of `list` that is the result.
    fn window_range(&self) -> (usize, usize) {
        match self.window {
            None => (0, self.list.len()),
            Some((offset, limit)) => {
                let from = offset.min(self.list.len());
                (from, from.saturating_add(limit).min(self.list.len()))
            }
        }
    }

    /// How many matches a windowed query keeps: the window and a buffer.
    fn keep(&self) -> Option<usize> {
        self.window.map(|(offset, limit)| {
            let end = offset.saturating_add(limit);
            end.saturating_add(limit.clamp(MIN_BUFFER, 1024))
        })
    }

    /// Runs the query (bounded by [`Watcher::keep`]) at the current
    /// snapshot and makes it the state; the sequence moves to that snapshot.
    fn load(&mut self) -> Result<(), WatchError> {
        let scripts = self.query.runs_scripts();
        off_worker(scripts, || self.load_here())
    }

    fn load_here(&mut self) -> Result<(), WatchError> {
        let keep = self.keep();
        let query = match keep {
            Some(k) => self.query.clone().offset(0).limit(k),
            None => self.query.clone(),
        };
        let mut tx = self.db.begin_with(Isolation::Snapshot).map_err(QueryError::from)?;
        let revision = tx.snapshot_revision();
        let rows = query.collect_keyed(&mut tx).map_err(WatchError::Query)?;
        self.complete = keep.is_none_or(|k| rows.len() < k);
        self.keys = rows.iter().map(|(k, d)| (d.id.clone(), k.clone())).collect();
        self.list = rows.into_iter().map(|(key, doc)| Entry { key, doc: Arc::new(doc) }).collect();
        self.sequence = self.sequence.max(revision);
        Ok(())
    }

    /// Re-runs the query and queues the difference from the current results.
    fn reload(&mut self) -> Result<(), WatchError> {
        let before = self.told.take().unwrap_or_else(|| self.window_entries());
        self.reload_from(before)
    }

    /// Re-runs the query and queues the difference from `before`, the
    /// window the consumer was last told about; if the run fails, `before`
    /// is kept for the next attempt.
    fn reload_from(&mut self, before: Vec<Entry>) -> Result<(), WatchError> {
        if let Err(e) = self.load() {
            self.told = Some(before);
            return Err(e);
        }
        self.reloads += 1;
        let after = self.window_entries();
        diff(&before, &after, &mut self.pending);
        Ok(())
    }

    fn window_entries(&self) -> Vec<Entry> {
        let (from, to) = self.window_range();
        self.list[from..to].to_vec()
    }

    /// Position of `key` in `list` (found or where it would go).
    fn position(&self, key: &SortKey) -> Result<usize, usize> {
        self.list.binary_search_by(|e| e.key.cmp(key))
    }

    /// Removes `id` from the list; returns its entry and former position.
    fn take(&mut self, id: &DocId) -> Option<(usize, Entry)> {
        let key = self.keys.remove(id)?;
        let at = self.position(&key).ok()?;
        Some((at, self.list.remove(at)))
    }

    /// Inserts a match, unless the list is a prefix and it sorts after the
    /// prefix's end; returns where it went.
    fn put(&mut self, key: SortKey, doc: Document) -> Option<usize> {
        let beyond = !self.complete && self.list.last().is_none_or(|last| key > last.key);
        if beyond {
            return None;
        }
        let at = self.position(&key).unwrap_or_else(|i| i);
        self.keys.insert(doc.id.clone(), key.clone());
        self.list.insert(at, Entry { key, doc: Arc::new(doc) });
        Some(at)
    }

    /// The document as the query sees it after `event` (`None`: no match).
    fn evaluate(&self, event: &ChangeEvent) -> Result<Option<(SortKey, Document)>, WatchError> {
        match &event.document {
            Some(d) => off_worker(self.query.runs_scripts(), || Ok(self.query.evaluate_keyed(d)?)),
            None => Ok(None),
        }
    }

    /// Applies one commit's changes of the collection as a unit, then
    /// queues the updates that lead from the results before it to the
    /// results after it.
    fn apply(&mut self, commit: CommitEvents) -> Result<(), WatchError> {
        if commit.sequence <= self.sequence {
            return Ok(()); // already reflected (the start snapshot or a reload)
        }
        // Every document of the commit is evaluated before anything changes:
        // an evaluation that fails (a script error) leaves the state as the
        // consumer last saw it, never half a commit.
        let evaluated =
            commit.events.iter().map(|event| self.evaluate(event)).collect::<Result<Vec<_>, WatchError>>()?;
        if self.window.is_none() {
            // The whole result set is kept: each change is one step, and
            // its positions hold when the steps are applied in order.
            for (event, new) in commit.events.iter().zip(evaluated) {
                let old = self.take(&event.id);
                match (old, new) {
                    (None, Some((key, doc))) => {
                        if let Some(new_index) = self.put(key, doc.clone()) {
                            self.pending.push_back(QueryUpdate::Added { document: doc, new_index });
                        }
                    }
                    (Some((old_index, old)), Some((key, doc))) => {
                        let unchanged = old.key == key && *old.doc == doc;
                        if let Some(new_index) = self.put(key, doc.clone()) {
                            if !unchanged {
                                self.pending.push_back(QueryUpdate::Modified {
                                    old: Arc::unwrap_or_clone(old.doc),
                                    new: doc,
                                    old_index,
                                    new_index,
                                });
                            }
                        }
                    }
                    (Some((old_index, old)), None) => {
                        self.pending
                            .push_back(QueryUpdate::Removed { document: Arc::unwrap_or_clone(old.doc), old_index });
                    }
                    (None, None) => {}
                }
            }
            self.sequence = commit.sequence;
            return Ok(());
        }
        let before = self.window_entries();
        for (event, new) in commit.events.iter().zip(evaluated) {
            self.take(&event.id);
            if let Some((key, doc)) = new {
                self.put(key, doc);
            }
        }
        self.sequence = commit.sequence;
        let (offset, limit) = self.window.unwrap_or((0, usize::MAX));
        let keep = self.keep().unwrap_or(usize::MAX);
        if self.list.len() > keep.saturating_add(keep / 2) {
            // Bound memory: forget matches far past the window.
            for gone in self.list.drain(keep..) {
                self.keys.remove(&gone.doc.id);
            }
            self.complete = false;
        }
        if !self.complete && self.list.len() < offset.saturating_add(limit) {
            // The buffer ran out: refill with a bounded read. If later
            // commits landed meanwhile, the state moves to that snapshot.
            return self.reload_from(before);
        }
        let after = self.window_entries();
        diff(&before, &after, &mut self.pending);
        Ok(())
    }

    /// Polls for the next update (the `Stream` and [`Watcher::recv`] use it).
    fn poll_update(&mut self, cx: &mut Context<'_>) -> Poll<Result<QueryUpdate, WatchError>> {
        loop {
            if let Some(u) = self.pending.pop_front() {
                return Poll::Ready(Ok(u));
            }
            if self.stale && !self.retry_after_commit {
                if let Err(e) = self.reload() {
                    self.retry_after_commit = true;
                    return Poll::Ready(Err(e));
                }
                self.stale = false;
                continue;
            }
            let step = match self.listener.poll_next_commit(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(_) | Err(RecvError::Lagged(_))) if self.stale => {
                    // A re-run at the newest snapshot covers this commit.
                    self.retry_after_commit = false;
                    continue;
                }
                Poll::Ready(Ok(commit)) => self.apply(commit),
                Poll::Ready(Err(RecvError::Lagged(_))) => self.reload(),
                Poll::Ready(Err(_)) => return Poll::Ready(Err(WatchError::Closed)),
            };
            if let Err(e) = step {
                self.stale = true;
                return Poll::Ready(Err(e));
            }
        }
    }

    /// The next update to the results.
    pub async fn recv(&mut self) -> Result<QueryUpdate, WatchError> {
        std::future::poll_fn(|cx| self.poll_update(cx)).await
    }

    /// The next update if one is ready now (applying any commits that
    /// have arrived).
    pub fn try_recv(&mut self) -> Option<Result<QueryUpdate, WatchError>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_update(&mut cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }

    /// Updates that arrive within `window` of the first one, batched (for
    /// UIs that redraw at most so often).
    pub async fn recv_batch(&mut self, window: Duration) -> Result<Vec<QueryUpdate>, WatchError> {
        let first = self.recv().await?;
        let mut batch = vec![first];
        let deadline = tokio::time::sleep(window);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return Ok(batch),
                u = self.recv() => batch.push(u?),
            }
        }
    }
}

/// Runs `f` — a step that evaluates JavaScript computed fields when
/// `scripts` is set, and so waits on a sandbox process — without holding a
/// tokio worker: on a multi-threaded runtime the worker hands its other
/// tasks over first (`block_in_place`). On a current-thread runtime, or
/// outside tokio, it runs in place (call `recv` from a blocking thread
/// there; the computed-fields guide says so).
fn off_worker<T>(scripts: bool, f: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if scripts && multi_thread {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

impl futures_core::Stream for Watcher {
    type Item = Result<QueryUpdate, WatchError>;

    /// The updates in order; ends when the database closes.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().poll_update(cx) {
            Poll::Ready(Err(WatchError::Closed)) => Poll::Ready(None),
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("collection", &self.query.collection())
            .field("sequence", &self.sequence)
            .field("results", &self.window_range())
            .finish()
    }
}

/// Queues updates that turn `before` into `after` when applied in order,
/// reporting each document at most once: leavers are `Removed`; members
/// whose document or position changed are `Modified`, moved in the order
/// of their final positions to just after their nearest settled
/// predecessor; newcomers are `Added` at their final positions. Members
/// that did not change get no update (they never need to move: their
/// relative order is the same before and after).
fn diff(before: &[Entry], after: &[Entry], out: &mut VecDeque<QueryUpdate>) {
    let after_ids: HashSet<&DocId> = after.iter().map(|e| &e.doc.id).collect();
    let before_by_id: HashMap<&DocId, &Entry> = before.iter().map(|e| (&e.doc.id, e)).collect();
    let mut current: Vec<&DocId> = Vec::with_capacity(before.len().max(after.len()));
    for e in before {
        if after_ids.contains(&e.doc.id) {
            current.push(&e.doc.id);
        } else {
            let old_index = current.len();
            out.push_back(QueryUpdate::Removed { document: (*e.doc).clone(), old_index });
        }
    }
    let mut settled: HashSet<&DocId> = after
        .iter()
        .filter(|a| before_by_id.get(&a.doc.id).is_some_and(|b| b.key == a.key && b.doc == a.doc))
        .map(|a| &a.doc.id)
        .collect();
    for (k, a) in after.iter().enumerate() {
        let id = &a.doc.id;
        let Some(old) = before_by_id.get(id) else { continue };
        if settled.contains(id) {
            continue;
        }
        let Some(old_index) = current.iter().position(|x| *x == id) else { continue };
        current.remove(old_index);
        let new_index = after[..k]
            .iter()
            .rev()
            .find(|p| settled.contains(&p.doc.id))
            .and_then(|p| current.iter().position(|x| **x == p.doc.id))
            .map_or(0, |i| i + 1);
        current.insert(new_index, id);
        settled.insert(id);
        out.push_back(QueryUpdate::Modified { old: (*old.doc).clone(), new: (*a.doc).clone(), old_index, new_index });
    }
    for (new_index, a) in after.iter().enumerate() {
        if !before_by_id.contains_key(&a.doc.id) {
            current.insert(new_index, &a.doc.id);
            out.push_back(QueryUpdate::Added { document: (*a.doc).clone(), new_index });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use aurora_core::doc;
    use aurora_query::Order;

    fn entries(query: &Query, docs: &[Document]) -> Vec<Entry> {
        let mut out: Vec<Entry> =
            docs.iter().map(|d| Entry { key: query.sort_key(d), doc: Arc::new(d.clone()) }).collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Applying the diff's updates in order to the old list gives the new
    /// one, and unchanged members are never reported.
    #[test]
    fn diff_updates_replay_to_the_new_list() {
        let q = Query::new("c").order_by("n", Order::Asc);
        let d = |id: &str, n: i64| doc! { "n": n }.id(DocId::text(id).unwrap());
        let cases: Vec<(Vec<Document>, Vec<Document>)> = vec![
            (vec![d("a", 1), d("b", 2), d("c", 3)], vec![d("b", 2), d("c", 3), d("a", 4)]),
            (vec![d("a", 1), d("b", 2), d("c", 3)], vec![d("c", 0), d("x", 1), d("a", 5)]),
            (vec![d("a", 1), d("b", 2), d("c", 3), d("e", 5)], vec![d("e", 0), d("c", 1), d("b", 2), d("z", 9)]),
            (vec![], vec![d("a", 1), d("b", 2)]),
            (vec![d("a", 1), d("b", 2)], vec![]),
        ];
        for (before, after) in cases {
            let (b, a) = (entries(&q, &before), entries(&q, &after));
            let mut out = VecDeque::new();
            diff(&b, &a, &mut out);
            let mut mirror: Vec<Document> = b.iter().map(|e| (*e.doc).clone()).collect();
            for u in &out {
                u.apply_to(&mut mirror);
            }
            assert_eq!(mirror, a.iter().map(|e| (*e.doc).clone()).collect::<Vec<_>>(), "{out:?}");
            let reported: Vec<&DocId> = out.iter().map(|u| &u.document().id).collect();
            let unique: HashSet<&&DocId> = reported.iter().collect();
            assert_eq!(unique.len(), reported.len(), "one update per document");
            if before.contains(&d("b", 2)) && after.contains(&d("b", 2)) {
                assert!(!reported.contains(&&DocId::text("b").unwrap()), "b never changed");
            }
        }
    }
}
