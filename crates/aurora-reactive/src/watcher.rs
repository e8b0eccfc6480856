//! [`Watcher`]: a live query.

use aurora_core::{DocId, Document};
use aurora_pubsub::{Listener, RecvError};
use aurora_query::{Query, QueryError};
use aurora_txn::{Database, Isolation};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// One change to a live query's result set.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryUpdate {
    /// A document now matches (it did not before).
    Added(Document),
    /// A document no longer matches.
    Removed(Document),
    /// A matching document changed and still matches.
    Modified {
        /// Before.
        old: Document,
        /// After.
        new: Document,
    },
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

/// A live query: its current result set, and the updates that change it.
pub struct Watcher {
    db: Database,
    query: Query,
    listener: Listener,
    /// The current result set by id.
    state: BTreeMap<DocId, Document>,
    /// Events at or below this sequence are already reflected.
    sequence: u64,
    pending: VecDeque<QueryUpdate>,
    /// Windowed (limit) queries are re-run and diffed instead of updated incrementally.
    windowed: bool,
}

fn run(db: &Database, query: &Query) -> Result<(Vec<Document>, u64), QueryError> {
    let mut tx = db.begin_with(Isolation::Snapshot)?;
    let rev = tx.snapshot_revision();
    Ok((query.collect(&mut tx)?, rev))
}

/// Runs `f` here, or — when the query evaluates scripts, which wait on a
/// sandbox process — on tokio's blocking pool, so a live query never holds
/// an executor worker while a script runs.
async fn off_worker<T: Send + 'static>(
    scripts: bool,
    f: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, WatchError> {
    if !scripts {
        return Ok(f()?);
    }
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(WatchError::Closed),
    }
}

impl Watcher {
    /// Starts watching: `listener` must already be subscribed to the
    /// query's collection (subscribe first, then call this). Runs the query
    /// on the calling thread (async callers of a query with scripts, see
    /// `Query::runs_scripts`, should call it from a blocking thread).
    pub fn start(db: Database, query: Query, listener: Listener) -> Result<Self, WatchError> {
        let (docs, sequence) = run(&db, &query)?;
        let windowed = query.is_windowed();
        let state = docs.into_iter().map(|d| (d.id.clone(), d)).collect();
        Ok(Self { db, query, listener, state, sequence, pending: VecDeque::new(), windowed })
    }

    /// The current result set (in id order; re-run the query for its ordering).
    pub fn results(&self) -> impl Iterator<Item = &Document> {
        self.state.values()
    }

    /// The sequence the result set reflects.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Re-runs the query and queues the difference from the current state.
    async fn resync(&mut self) -> Result<(), WatchError> {
        let (db, query) = (self.db.clone(), self.query.clone());
        let (docs, rev) = off_worker(self.query.runs_scripts(), move || run(&db, &query)).await?;
        let fresh: BTreeMap<DocId, Document> = docs.into_iter().map(|d| (d.id.clone(), d)).collect();
        for (id, old) in &self.state {
            match fresh.get(id) {
                None => self.pending.push_back(QueryUpdate::Removed(old.clone())),
                Some(new) if new != old => {
                    self.pending.push_back(QueryUpdate::Modified { old: old.clone(), new: new.clone() })
                }
                Some(_) => {}
            }
        }
        for (id, new) in &fresh {
            if !self.state.contains_key(id) {
                self.pending.push_back(QueryUpdate::Added(new.clone()));
            }
        }
        self.state = fresh;
        self.sequence = self.sequence.max(rev);
        Ok(())
    }

    /// The next update to the result set.
    pub async fn recv(&mut self) -> Result<QueryUpdate, WatchError> {
        loop {
            if let Some(u) = self.pending.pop_front() {
                return Ok(u);
            }
            match self.listener.recv().await {
                Err(RecvError::Lagged(_)) => self.resync().await?,
                Err(_) => return Err(WatchError::Closed),
                Ok(event) if event.sequence <= self.sequence => {}
                Ok(_) if self.windowed => self.resync().await?,
                Ok(event) => {
                    self.sequence = event.sequence;
                    let old = self.state.get(&event.id).cloned();
                    let new = match event.document.clone() {
                        Some(d) => {
                            let query = self.query.clone();
                            off_worker(query.runs_scripts(), move || query.evaluate(&d)).await?
                        }
                        None => None,
                    };
                    match (old, new) {
                        (None, Some(n)) => {
                            self.state.insert(event.id.clone(), n.clone());
                            self.pending.push_back(QueryUpdate::Added(n));
                        }
                        (Some(o), Some(n)) => {
                            self.state.insert(event.id.clone(), n.clone());
                            self.pending.push_back(QueryUpdate::Modified { old: o, new: n });
                        }
                        (Some(o), None) => {
                            self.state.remove(&event.id);
                            self.pending.push_back(QueryUpdate::Removed(o));
                        }
                        (None, None) => {}
                    }
                }
            }
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
