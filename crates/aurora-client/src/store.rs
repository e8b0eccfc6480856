//! [`Store`]: what an application asks of a database, implemented by both
//! the embedded [`aurora::Aurora`] handle and the network [`Client`], so
//! that one function runs against either.

use crate::batch::{Op, WriteBatch};
use crate::client::Client;
use crate::jobs::NewJob;
use crate::query::Query;
use aurora::index::Schema;
use aurora::{Aurora, CommitEvents, DocId, Document, Error, FeedScope, QueryUpdate, RecvError, Result, Update};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;

/// A stream of events from either backend.
pub type EventStream<T> = Pin<Box<dyn futures_core::Stream<Item = Result<T>> + Send>>;

/// An event of a live query.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// The results when the query started (always the first event).
    Results {
        /// The commit sequence they are current at.
        sequence: u64,
        /// The documents, in the query's order.
        documents: Vec<Document>,
    },
    /// One commit's changes to the results, in order (apply them one after
    /// the other with [`QueryUpdate::apply_to`]).
    Update {
        /// The commit sequence the results are current at afterwards.
        sequence: u64,
        /// The changes.
        updates: Vec<QueryUpdate>,
    },
}

impl LiveEvent {
    /// Applies the event to a list of results.
    pub fn apply_to(&self, list: &mut Vec<Document>) {
        match self {
            LiveEvent::Results { documents, .. } => *list = documents.clone(),
            LiveEvent::Update { updates, .. } => updates.iter().for_each(|u| u.apply_to(list)),
        }
    }

    /// The commit sequence after the event.
    pub fn sequence(&self) -> u64 {
        match self {
            LiveEvent::Results { sequence, .. } | LiveEvent::Update { sequence, .. } => *sequence,
        }
    }
}

/// A database an application uses: the embedded [`Aurora`] handle or a
/// [`Client`] of a server. Write the application against `impl Store` and
/// choose at start-up (see `examples/either_backend.rs`).
///
/// Failures are the same [`aurora::Error`] variants on both (a duplicate
/// unique value is `UniqueViolation`, a missing document `NotFound`, …);
/// a failed `if_revision` condition is `Conflict` on both.
pub trait Store: Clone + Send + Sync + 'static {
    /// Creates a collection with a schema (`Schema::new()` for none).
    fn create_collection(&self, name: &str, schema: Schema) -> impl Future<Output = Result<()>> + Send;
    /// The collections' names (without the internal `_` ones).
    fn list_collections(&self) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Inserts a document; returns its id.
    fn insert(&self, collection: &str, doc: Document) -> impl Future<Output = Result<DocId>> + Send;
    /// Reads a document.
    fn get(&self, collection: &str, id: &DocId) -> impl Future<Output = Result<Option<Document>>> + Send;
    /// Reads a document with its revision (for conditions in a [`WriteBatch`]).
    fn get_versioned(
        &self,
        collection: &str,
        id: &DocId,
    ) -> impl Future<Output = Result<Option<(Document, u64)>>> + Send;
    /// Replaces an existing document.
    fn replace(&self, collection: &str, doc: Document) -> impl Future<Output = Result<()>> + Send;
    /// Updates a document; returns the new version.
    fn update(&self, collection: &str, id: &DocId, update: Update) -> impl Future<Output = Result<Document>> + Send;
    /// Deletes a document; false if there was none.
    fn delete(&self, collection: &str, id: &DocId) -> impl Future<Output = Result<bool>> + Send;
    /// Runs a query (for the client: one page, up to the server's limit).
    fn find(&self, collection: &str, query: &Query) -> impl Future<Output = Result<Vec<Document>>> + Send;
    /// Commits writes all or nothing; returns the commit's sequence.
    fn commit(&self, batch: WriteBatch) -> impl Future<Output = Result<u64>> + Send;
    /// The commits touching `collection` after sequence `after`, then live
    /// ones, each exactly once. Errors: `UnknownCollection`; a position the
    /// change feed no longer holds is
    /// `Error::Transaction(TxnError::FeedTruncated { .. })`.
    fn changes(&self, collection: &str, after: u64) -> impl Future<Output = Result<EventStream<CommitEvents>>> + Send;
    /// A live query: [`LiveEvent::Results`], then [`LiveEvent::Update`]s.
    fn live(&self, collection: &str, query: &Query) -> impl Future<Output = Result<EventStream<LiveEvent>>> + Send;
    /// Enqueues a job; returns its id.
    fn enqueue(&self, job: &NewJob) -> impl Future<Output = Result<DocId>> + Send;
}

impl Store for Client {
    async fn create_collection(&self, name: &str, schema: Schema) -> Result<()> {
        Client::create_collection(self, name, &schema).await
    }
    async fn list_collections(&self) -> Result<Vec<String>> {
        Client::list_collections(self).await
    }
    async fn insert(&self, collection: &str, doc: Document) -> Result<DocId> {
        Client::insert(self, collection, doc).await
    }
    async fn get(&self, collection: &str, id: &DocId) -> Result<Option<Document>> {
        Client::get(self, collection, id).await
    }
    async fn get_versioned(&self, collection: &str, id: &DocId) -> Result<Option<(Document, u64)>> {
        Client::get_versioned(self, collection, id).await
    }
    async fn replace(&self, collection: &str, doc: Document) -> Result<()> {
        Client::replace(self, collection, doc).await
    }
    async fn update(&self, collection: &str, id: &DocId, update: Update) -> Result<Document> {
        Client::update(self, collection, id, update).await
    }
    async fn delete(&self, collection: &str, id: &DocId) -> Result<bool> {
        Client::delete(self, collection, id).await
    }
    async fn find(&self, collection: &str, query: &Query) -> Result<Vec<Document>> {
        Client::find(self, collection, query).await
    }
    async fn commit(&self, batch: WriteBatch) -> Result<u64> {
        Ok(Client::commit(self, batch).await?.sequence)
    }
    async fn changes(&self, collection: &str, after: u64) -> Result<EventStream<CommitEvents>> {
        Ok(Box::pin(Client::changes(self, Some(collection), Some(after)).await?))
    }
    async fn live(&self, collection: &str, query: &Query) -> Result<EventStream<LiveEvent>> {
        Ok(Box::pin(Client::live(self, collection, query).await?))
    }
    async fn enqueue(&self, job: &NewJob) -> Result<DocId> {
        Client::enqueue(self, job).await
    }
}

/// A channel-backed stream whose task ends when the stream is dropped.
struct Forward<T> {
    rx: mpsc::Receiver<Result<T>>,
    task: tokio::task::JoinHandle<()>,
}

impl<T> Drop for Forward<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T> futures_core::Stream for Forward<T> {
    type Item = Result<T>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Result<T>>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

/// Checks a write's `if_revision` against the transaction's snapshot (and
/// records the read, so a concurrent change makes the commit conflict).
fn check(db: &Aurora, tx: &mut aurora::Transaction, w: &crate::batch::Write) -> Result<()> {
    let Some(expected) = w.if_revision else { return Ok(()) };
    let docs = db.database().collections().documents();
    db.database().collections().definition_shared(&w.collection)?;
    let key = aurora::storage::document_key(&w.collection, w.id());
    let (revision, found) = docs.snapshot_versioned(tx.snapshot(), &key)?;
    let actual = if found.is_some() { revision } else { 0 };
    tx.get(&w.collection, w.id())?;
    if actual != expected {
        return Err(Error::Conflict { collection: w.collection.clone(), id: w.id().to_string() });
    }
    Ok(())
}

impl Store for Aurora {
    async fn create_collection(&self, name: &str, schema: Schema) -> Result<()> {
        self.new_collection_with_schema(name, schema).await
    }
    async fn list_collections(&self) -> Result<Vec<String>> {
        Ok(Aurora::list_collections(self)?.into_iter().filter(|c| !c.starts_with('_')).collect())
    }
    async fn insert(&self, collection: &str, doc: Document) -> Result<DocId> {
        self.insert_into(collection, doc).await
    }
    async fn get(&self, collection: &str, id: &DocId) -> Result<Option<Document>> {
        Ok(self.get_document(collection, id).await?.map(|d| (*d).clone()))
    }
    async fn get_versioned(&self, collection: &str, id: &DocId) -> Result<Option<(Document, u64)>> {
        self.database().collections().definition_shared(collection)?;
        let (revision, doc) = self.database().collections().documents().get_versioned(collection, id)?;
        Ok(doc.map(|d| ((*d).clone(), revision)))
    }
    async fn replace(&self, collection: &str, doc: Document) -> Result<()> {
        self.replace_document(collection, doc).await
    }
    async fn update(&self, collection: &str, id: &DocId, update: Update) -> Result<Document> {
        self.update_document(collection, id, update).await
    }
    async fn delete(&self, collection: &str, id: &DocId) -> Result<bool> {
        self.delete_document(collection, id).await
    }
    async fn find(&self, collection: &str, query: &Query) -> Result<Vec<Document>> {
        query.on(self, collection).collect().await
    }
    async fn commit(&self, batch: WriteBatch) -> Result<u64> {
        let mut attempt = 0;
        loop {
            let mut tx = self.begin()?;
            for w in &batch.writes {
                check(self, &mut tx, w)?;
            }
            for w in &batch.writes {
                let c = &w.collection;
                match &w.op {
                    Op::Insert(d) => {
                        tx.insert(c, d.clone())?;
                    }
                    Op::Upsert(d) => tx.upsert(c, d.clone())?,
                    Op::Replace(d) => tx.replace(c, d.clone())?,
                    Op::Update(id, u) => {
                        tx.update_with(c, id, u)?;
                    }
                    Op::Delete(id) => {
                        tx.delete(c, id)?;
                    }
                    Op::Check(_) => {}
                }
            }
            match tx.commit().await {
                Ok(info) => return Ok(info.sequence),
                Err(Error::Conflict { .. }) if attempt + 1 < aurora::txn::MAX_TRANSACTION_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }
    async fn changes(&self, collection: &str, after: u64) -> Result<EventStream<CommitEvents>> {
        // A typo is an error, as the server's (a listener of a collection
        // that does not exist would wait forever).
        self.database().collections().definition_shared(collection)?;
        let scope = FeedScope::collections([collection.to_string()]);
        let mut listener = self.listen_from_in(after, &scope).await?;
        let (tx, rx) = mpsc::channel(256);
        let db = self.clone();
        let task = tokio::spawn(async move {
            let mut last = after;
            loop {
                match listener.recv_commit().await {
                    Ok(c) if c.sequence <= last => {}
                    Ok(c) => {
                        last = c.sequence;
                        if tx.send(Ok(c)).await.is_err() {
                            return;
                        }
                    }
                    // Events were dropped for this listener: read them from
                    // the feed again, after the last one delivered.
                    Err(RecvError::Lagged(_)) => match db.listen_from_in(last, &scope).await {
                        Ok(l) => listener = l,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    },
                    Err(_) => return,
                }
            }
        });
        Ok(Box::pin(Forward { rx, task }))
    }
    async fn live(&self, collection: &str, query: &Query) -> Result<EventStream<LiveEvent>> {
        let mut watcher = query.on(self, collection).watch().await?;
        let (tx, rx) = mpsc::channel(256);
        let task = tokio::spawn(async move {
            let first =
                LiveEvent::Results { sequence: watcher.sequence(), documents: watcher.results().cloned().collect() };
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                let mut updates = match watcher.recv().await {
                    Ok(u) => vec![u],
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                while watcher.pending() > 0 {
                    match watcher.try_recv() {
                        Some(Ok(u)) => updates.push(u),
                        _ => break,
                    }
                }
                if tx.send(Ok(LiveEvent::Update { sequence: watcher.sequence(), updates })).await.is_err() {
                    return;
                }
            }
        });
        Ok(Box::pin(Forward { rx, task }))
    }
    async fn enqueue(&self, job: &NewJob) -> Result<DocId> {
        // In a transaction of its own (the outbox), so that no job queue
        // needs to be opened on the handle just to add a job.
        let mut tx = self.begin()?;
        // The outbox reports an invalid job as an aborted transaction; the
        // server (and `Workers::enqueue`) as the worker error it is.
        let id = aurora::EnqueueExt::enqueue(&mut *tx, job.to_job()).map_err(|e| match &e {
            aurora::txn::TxnError::Aborted(m) => crate::error::invalid_job(m).unwrap_or_else(|| e.into()),
            _ => e.into(),
        })?;
        tx.commit().await?;
        Ok(id)
    }
}
