//! [`Transaction`]: snapshot reads, buffered writes, and an optimistic
//! commit through the one write pipeline.

use crate::database::Database;
use crate::error::{Result, TxnError};
use crate::sink::{Change, ChangeKind};
use crate::submit::Submitted;
use aurora_core::{DocId, Document, Fields};
use aurora_index::{IdKey, IndexError, IndexPlan};
use aurora_storage::{
    collection_prefix, document_key, document_key_scope, format, split_document_key, with_document_key_bytes,
    DocumentStore, DocumentWrites, Op, Revision, Snapshot, SnapshotIter,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How much a transaction is protected from concurrent commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Snapshot isolation: reads see the snapshot; a commit fails with
    /// [`TxnError::Conflict`] if a document it writes changed since the
    /// snapshot (first committer wins). Allows write skew.
    Snapshot,
    /// Snapshot isolation plus validation of every document read: the
    /// commit also fails if a document it read changed since the snapshot.
    /// Serializable for transactions that find documents by id; a document
    /// *inserted* concurrently into a scanned collection is not detected
    /// (no phantom protection).
    #[default]
    Serializable,
}

type Key = (String, DocId);

/// A unit of work: reads see one snapshot plus the transaction's own
/// writes; writes become visible all at once at commit, or never.
/// Dropping an uncommitted transaction rolls it back.
pub struct Transaction {
    db: Database,
    snapshot: Snapshot,
    id: u64,
    isolation: Isolation,
    /// Documents read as of the snapshot, with the revision that wrote
    /// them (recorded under `Serializable` only, see `at_snapshot`).
    reads: BTreeMap<Key, (Revision, Option<Arc<Document>>)>,
    /// The final state of each written document (`None` = deleted),
    /// shared with the hot cache and the change record at commit (never
    /// copied).
    writes: BTreeMap<Key, Option<Arc<Document>>>,
    /// Inserts made without reading the document: their absence is a
    /// condition of the commit instead of a read (see [`Transaction::insert`]).
    blind: BTreeSet<Key>,
    finished: bool,
}

/// What a successful commit returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit sequence number (0 for a transaction that wrote nothing).
    pub sequence: Revision,
    /// Documents written.
    pub writes: usize,
}

impl Transaction {
    pub(crate) fn new(db: Database, snapshot: Snapshot, id: u64, isolation: Isolation) -> Self {
        Self {
            db,
            snapshot,
            id,
            isolation,
            reads: BTreeMap::new(),
            writes: BTreeMap::new(),
            blind: BTreeSet::new(),
            finished: false,
        }
    }

    /// The transaction's id (also in its published changes).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The snapshot the transaction reads (for index scans at the same revision).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Ids this transaction wrote (or deleted) in `collection`.
    pub fn written_ids(&self, collection: &str) -> Vec<DocId> {
        self.writes.keys().filter(|(c, _)| c == collection).map(|(_, id)| id.clone()).collect()
    }

    /// The database this transaction belongs to.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The revision the transaction reads at.
    pub fn snapshot_revision(&self) -> Revision {
        self.snapshot.revision()
    }

    fn check_open(&self) -> Result<()> {
        if self.finished {
            return Err(TxnError::Finished);
        }
        Ok(())
    }

    /// The document as of the snapshot, with the revision that wrote it.
    ///
    /// Under [`Isolation::Serializable`] each read is recorded (the commit
    /// re-checks its revision) and answered from the record when repeated.
    /// Under [`Isolation::Snapshot`] nothing is recorded: the snapshot is
    /// immutable, so a repeated read gets the same answer from it, and a
    /// query's read-only transaction does not pay for a growing map of
    /// every document it touched (a third of an indexed query's
    /// instructions, measured with callgrind).
    fn at_snapshot(&mut self, collection: &str, id: &DocId) -> Result<(Revision, Option<Arc<Document>>)> {
        let record = (self.isolation == Isolation::Serializable).then(|| (collection.to_string(), id.clone()));
        if let Some(found) = record.as_ref().and_then(|key| self.reads.get(key)) {
            return Ok(found.clone());
        }
        self.db.collections().definition_shared(collection)?;
        let storage_key = document_key(collection, id);
        let found = self.db.collections().documents().snapshot_versioned(&self.snapshot, &storage_key)?;
        if let Some(key) = record {
            self.reads.insert(key, found.clone());
        }
        Ok(found)
    }

    /// The collection at the snapshot, lazily, in id order — without this
    /// transaction's own writes (check [`Transaction::written_ids`]). The
    /// iterator owns what it needs and may outlive the transaction.
    pub fn snapshot_documents(&self, collection: &str) -> Result<SnapshotDocuments> {
        self.db.collections().definition_shared(collection)?;
        let entries = self.snapshot.iter_prefix(&collection_prefix(collection))?;
        Ok(SnapshotDocuments { entries, docs: self.db.collections().documents().clone() })
    }

    /// One document at the snapshot, without this transaction's own writes
    /// and without recording a read (for lazy readers such as streams).
    pub fn snapshot_document(
        snapshot: &Snapshot,
        docs: &DocumentStore,
        collection: &str,
        id: &DocId,
    ) -> Result<Option<Arc<Document>>> {
        Ok(docs.snapshot_versioned(snapshot, &document_key(collection, id))?.1)
    }

    /// Like [`Transaction::snapshot_document`], with the id given as its
    /// key bytes (as an index read yields it): no id is built.
    pub fn snapshot_document_by_key(
        snapshot: &Snapshot,
        docs: &DocumentStore,
        collection: &str,
        id: &IdKey,
    ) -> Result<Option<Arc<Document>>> {
        let found = with_document_key_bytes(collection, id.as_bytes(), |key| docs.snapshot_versioned(snapshot, key))?;
        Ok(found.1)
    }

    /// Like [`Transaction::get_shared`], with the id given as its key bytes
    /// (as [`Collections::scan_index_keys`](aurora_index::Collections::scan_index_keys)
    /// yields them), for readers that have checked the collection exists
    /// (the query engine, before it reads). A read-only snapshot
    /// transaction — every query's — reads the snapshot by key without
    /// building the id or the key on the heap; one that records its reads
    /// (`Serializable`) or has written documents takes the
    /// `get_shared` path, with the same answer.
    pub fn get_shared_by_key(&mut self, collection: &str, id: &IdKey) -> Result<Option<Arc<Document>>> {
        self.check_open()?;
        if self.isolation == Isolation::Serializable || !self.writes.is_empty() {
            // Checked when read, so this does not fail; typed all the same.
            let id = id.to_id().map_err(|e| aurora_storage::StorageError::Corrupt {
                key: aurora_storage::printable_key(id.as_bytes()),
                reason: format!("a document id: {e}"),
            })?;
            return self.get_shared(collection, &id);
        }
        Self::snapshot_document_by_key(&self.snapshot, self.db.collections().documents(), collection, id)
    }

    /// Like [`Transaction::get`], sharing the document instead of copying it.
    pub fn get_shared(&mut self, collection: &str, id: &DocId) -> Result<Option<Arc<Document>>> {
        self.check_open()?;
        // A read-only transaction (every query's) skips building the key.
        if !self.writes.is_empty() {
            if let Some(w) = self.writes.get(&(collection.to_string(), id.clone())) {
                return Ok(w.clone());
            }
        }
        Ok(self.at_snapshot(collection, id)?.1)
    }

    /// The document as this transaction sees it: its own write if any,
    /// else the snapshot's version.
    pub fn get(&mut self, collection: &str, id: &DocId) -> Result<Option<Document>> {
        self.check_open()?;
        if let Some(w) = self.writes.get(&(collection.to_string(), id.clone())) {
            return Ok(w.as_deref().cloned());
        }
        Ok(self.at_snapshot(collection, id)?.1.map(|d| (*d).clone()))
    }

    /// Every document of a collection as this transaction sees it, in id order.
    pub fn scan(&mut self, collection: &str) -> Result<Vec<Document>> {
        Ok(self.scan_shared(collection)?.into_iter().map(|d| (*d).clone()).collect())
    }

    /// Like [`Transaction::scan`], sharing the documents instead of copying them.
    pub fn scan_shared(&mut self, collection: &str) -> Result<Vec<Arc<Document>>> {
        self.check_open()?;
        self.db.collections().definition_shared(collection)?;
        let items: Vec<_> = self.snapshot.iter_prefix(&collection_prefix(collection))?.collect::<Result<_, _>>()?;
        let record_reads = self.isolation == Isolation::Serializable;
        // Storage keys sort by document id, so the snapshot's items are
        // already in id order.
        let mut docs = Vec::with_capacity(items.len());
        for (key, rev, raw) in items {
            let doc = decode_shared(self.db.collections().documents(), &key, rev, &raw)?;
            if record_reads {
                self.reads.entry((collection.to_string(), doc.id.clone())).or_insert((rev, Some(Arc::clone(&doc))));
            }
            docs.push(doc);
        }
        let own: Vec<(&DocId, &Option<Arc<Document>>)> =
            self.writes.iter().filter(|((c, _), _)| c == collection).map(|((_, id), w)| (id, w)).collect();
        if own.is_empty() {
            return Ok(docs);
        }
        let mut seen: BTreeMap<DocId, Option<Arc<Document>>> =
            docs.into_iter().map(|d| (d.id.clone(), Some(d))).collect();
        for (id, w) in own {
            seen.insert(id.clone(), w.clone());
        }
        Ok(seen.into_values().flatten().collect())
    }

    /// The entry check (id, nesting, size), before a document is copied or
    /// encoded.
    fn admit(&self, doc: Document) -> Result<Document> {
        Ok(self.db.collections().documents().admit(doc)?)
    }

    fn validate(&self, collection: &str, doc: &Document) -> Result<()> {
        self.db.collections().definition_shared(collection)?.schema.validate(collection, doc)?;
        Ok(())
    }

    /// Inserts a new document; [`IndexError::DocumentExists`] if the id is
    /// taken.
    ///
    /// The store is not read: unless this transaction already saw a
    /// document with this id (then the error comes at once), the id's
    /// absence becomes a condition of the commit, and [`Transaction::commit`]
    /// fails with `DocumentExists` if the id is taken by then. A fresh id
    /// ([`DocId::new`], as [`Document::new`] and `doc!` make) costs no read.
    /// Later writes of the same id in this transaction (update, replace,
    /// upsert) keep it an insert; deleting it again leaves nothing to write
    /// and nothing to check.
    pub fn insert(&mut self, collection: &str, doc: Document) -> Result<DocId> {
        let doc = self.admit(doc)?;
        self.insert_admitted(collection, Arc::new(doc))
    }

    /// Like [`Transaction::insert`] with a shared document, which is then
    /// never copied: the commit encodes it and hands the same allocation to
    /// the hot cache and the change record. Checked first like every
    /// written document ([`DocumentStore::admit_shared`]: id, nesting, size).
    pub fn insert_shared(&mut self, collection: &str, doc: Arc<Document>) -> Result<DocId> {
        let doc = self.db.collections().documents().admit_shared(doc)?;
        self.insert_admitted(collection, doc)
    }

    /// [`Transaction::insert`] of a document that passed the entry check.
    fn insert_admitted(&mut self, collection: &str, doc: Arc<Document>) -> Result<DocId> {
        self.check_open()?;
        let key = (collection.to_string(), doc.id.clone());
        let taken = match (self.writes.get(&key), self.reads.get(&key)) {
            (Some(own), _) => own.is_some(),
            (None, Some((_, seen))) => seen.is_some(),
            (None, None) => {
                self.blind.insert(key.clone());
                false
            }
        };
        if taken {
            return Err(IndexError::DocumentExists { collection: collection.into(), id: doc.id.to_string() }.into());
        }
        self.validate(collection, &doc)?;
        let id = doc.id.clone();
        self.writes.insert(key, Some(doc));
        Ok(id)
    }

    /// Inserts or replaces a document.
    pub fn upsert(&mut self, collection: &str, doc: Document) -> Result<()> {
        self.check_open()?;
        let doc = self.admit(doc)?;
        self.validate(collection, &doc)?;
        // A document this transaction inserted blind stays an insert: its
        // absence is still the commit's condition.
        self.writes.insert((collection.to_string(), doc.id.clone()), Some(Arc::new(doc)));
        Ok(())
    }

    /// Replaces an existing document; [`TxnError::NotFound`] if absent.
    pub fn replace(&mut self, collection: &str, doc: Document) -> Result<()> {
        let doc = self.admit(doc)?;
        if self.get(collection, &doc.id)?.is_none() {
            return Err(TxnError::NotFound { collection: collection.into(), id: doc.id.to_string() });
        }
        self.upsert(collection, doc)
    }

    /// Merges `patch` into an existing document's top-level fields (a
    /// `Null` value sets the field to null, which a non-nullable field
    /// rejects) and returns the result. An empty patch writes nothing.
    pub fn update(&mut self, collection: &str, id: &DocId, patch: Fields) -> Result<Document> {
        // The patch is checked before anything copies it.
        if let Err(e) = aurora_core::validate_fields(&patch) {
            aurora_core::dispose(aurora_core::Value::Object(patch));
            return Err(aurora_storage::StorageError::from(e).into());
        }
        id.validate().map_err(aurora_storage::StorageError::from)?;
        let mut doc = self
            .get(collection, id)?
            .ok_or_else(|| TxnError::NotFound { collection: collection.into(), id: id.to_string() })?;
        // An empty patch writes nothing (no event, the revision stays).
        if patch.is_empty() {
            return Ok(doc);
        }
        doc.fields.extend(patch);
        self.upsert(collection, doc.clone())?;
        Ok(doc)
    }

    /// Applies update operators ([`Update`](aurora_core::Update): set,
    /// set-if-absent, unset, increment/decrement, push, pull) to an
    /// existing document and returns the result. The read and the write are
    /// in this transaction, so the change is atomic (a concurrent writer of
    /// the document makes the commit conflict, and `Database::transaction`
    /// retries). Operators that do not fit the schema's declared types or
    /// the document's values are [`TxnError::Update`]; a result the schema
    /// refuses is [`TxnError::Index`]; in both cases nothing is written.
    /// An update without operators ([`Update::is_noop`](aurora_core::Update::is_noop))
    /// writes nothing either.
    pub fn update_with(&mut self, collection: &str, id: &DocId, update: &aurora_core::Update) -> Result<Document> {
        id.validate().map_err(aurora_storage::StorageError::from)?;
        let def = self.db.collections().definition_shared(collection)?;
        update.check(|path| def.schema.field_type(path))?;
        let mut doc = self
            .get(collection, id)?
            .ok_or_else(|| TxnError::NotFound { collection: collection.into(), id: id.to_string() })?;
        // An update without operators writes nothing (no event, the
        // revision stays); the document was still read, so a concurrent
        // delete makes a serializable commit conflict as before.
        if update.is_noop() {
            return Ok(doc);
        }
        update.apply(&mut doc)?;
        self.upsert(collection, doc.clone())?;
        Ok(doc)
    }

    /// Deletes a document; returns whether it existed (as this transaction saw it).
    pub fn delete(&mut self, collection: &str, id: &DocId) -> Result<bool> {
        id.validate().map_err(aurora_storage::StorageError::from)?;
        let existed = self.get(collection, id)?.is_some();
        // A document inserted blind and deleted again writes nothing, but its
        // absence stays the commit's condition (see `commit`).
        self.writes.insert((collection.to_string(), id.clone()), None);
        Ok(existed)
    }

    /// Discards the transaction's writes.
    pub fn rollback(mut self) {
        if !self.writes.is_empty() {
            tracing::debug!(txn = self.id, writes = self.writes.len(), "transaction rolled back");
        }
        self.finished = true;
    }

    /// Commits: validates every write, plans index changes, and commits
    /// documents, indexes and conditions as one atomic batch through the
    /// storage pipeline. Returns when the store's durability mode's promise
    /// holds. On [`TxnError::Conflict`] or a constraint violation nothing
    /// was written and nothing was published.
    pub fn commit(mut self) -> Result<CommitInfo> {
        self.check_open()?;
        self.finished = true;
        let span = tracing::debug_span!("commit", txn = self.id, writes = self.writes.len());
        let _entered = span.enter();
        let writes = std::mem::take(&mut self.writes);
        let blind = std::mem::take(&mut self.blind);
        let collections = self.db.collections().clone();
        let mut batch = DocumentWrites::new();
        let mut plans: Vec<IndexPlan> = Vec::new();
        let mut changes = Vec::new();
        // Written keys planned without a condition: read as absent and
        // deleted again, nothing to write (a read condition covers them).
        let mut unconditioned: Vec<&Key> = Vec::new();
        // Blind inserts deleted again in this transaction: nothing to write,
        // but the insert would have failed on a taken id, so the commit must.
        let mut absent: Vec<&Key> = Vec::new();
        for (key, new) in &writes {
            let (collection, id) = key;
            // A blind insert is planned as an insert; its condition
            // (absence) fails the commit if the id is taken.
            let blind_insert = blind.contains(key);
            let (rev, old) = match blind_insert {
                true => (0, None),
                false => self.at_snapshot(collection, id)?,
            };
            let kind = match (&old, new) {
                (None, None) if blind_insert => {
                    let doc_key = document_key(collection, id);
                    batch.batch_mut().require_new(doc_key, document_key_scope(collection));
                    absent.push(key);
                    continue;
                }
                (None, None) => {
                    unconditioned.push(key);
                    continue;
                }
                (None, Some(_)) => ChangeKind::Insert,
                (Some(_), Some(_)) => ChangeKind::Update,
                (Some(_), None) => ChangeKind::Delete,
            };
            match new {
                // A new id (UUID v7 ids grow with the clock) is known absent
                // without a read when it sorts above every id of the
                // collection (see `Batch::require_new`).
                Some(doc) if blind_insert => batch.insert_new(collection, doc)?,
                Some(doc) => batch.put_shared(collection, doc)?.require_revision_of(collection, id, rev),
                None => batch.delete(collection, id)?.require_revision_of(collection, id, rev),
            };
            plans.push(collections.plan_write(collection, id, old.as_deref(), new.as_deref(), batch.batch_mut())?);
            changes.push(Change { collection: collection.clone(), id: id.clone(), kind, old, new: new.clone() });
        }
        if changes.is_empty() {
            // Nothing to write: the ids of blind inserts deleted again must
            // still be free now (the insert would have failed otherwise).
            for (collection, id) in absent {
                if collections.get(collection, id)?.is_some() {
                    return Err(
                        IndexError::DocumentExists { collection: collection.clone(), id: id.to_string() }.into()
                    );
                }
            }
            return Ok(CommitInfo { sequence: 0, writes: 0 });
        }
        if self.isolation == Isolation::Serializable {
            for (key, (rev, _)) in &self.reads {
                let conditioned = writes.contains_key(key) && !unconditioned.contains(&key);
                if !conditioned && !blind.contains(key) {
                    batch.batch_mut().require_revision(document_key(&key.0, &key.1), *rev);
                }
            }
        }
        self.merge_claims(&plans, batch.batch_mut())?;
        let count = changes.len();
        // The snapshot is not read again: releasing its pin first spares
        // the commit recording the versions it replaces (a read per written
        // key) when no other snapshot needs them.
        let Transaction { snapshot, db, id: txn_id, .. } = self;
        drop(snapshot);
        match crate::submit::submit(&db, txn_id, batch, &plans, changes)? {
            Submitted::Committed(sequence) => Ok(CommitInfo { sequence, writes: count }),
            Submitted::Refused(key) => match split_document_key(&key) {
                // Only the absence of a blind insert's id is conditioned on
                // it: the id is taken.
                Some((collection, id)) if blind.contains(&(collection.to_string(), id.clone())) => {
                    Err(IndexError::DocumentExists { collection: collection.to_string(), id: id.to_string() }.into())
                }
                Some((collection, id)) => {
                    Err(TxnError::Conflict { collection: collection.to_string(), id: id.to_string() })
                }
                None => Err(crate::submit::refusal(&db, &plans, &key)),
            },
        }
    }

    /// Reconciles unique claims across the documents of one transaction: a
    /// value claimed twice is a violation; a value one document releases and
    /// another claims keeps the claim, conditioned on the claim being
    /// unchanged since the snapshot (instead of being absent).
    fn merge_claims(&self, plans: &[IndexPlan], batch: &mut aurora_storage::Batch) -> Result<()> {
        let claimed = crate::submit::distinct_claims(&self.db, plans)?;
        let released: BTreeSet<Vec<u8>> = batch
            .ops()
            .iter()
            .filter(|op| matches!(op, Op::Delete { .. }) && claimed.contains(op.key()))
            .map(|op| op.key().to_vec())
            .collect();
        if released.is_empty() {
            return Ok(());
        }
        batch.ops_mut().retain(|op| !(matches!(op, Op::Delete { .. }) && released.contains(op.key())));
        for c in batch.conditions_mut().iter_mut() {
            if c.revision == 0 && released.contains(&c.key) {
                let rev = self.snapshot.get_versioned(&c.key)?.map_or(0, |(r, _)| r);
                c.revision = rev;
            }
        }
        Ok(())
    }
}

/// Decodes a stored document, or takes the hot cache's copy of exactly that version.
fn decode_shared(docs: &DocumentStore, key: &[u8], rev: Revision, raw: &[u8]) -> Result<Arc<Document>> {
    match docs.cached_at(key, rev) {
        Some(doc) => Ok(doc),
        None => Ok(Arc::new(format::decode::<Document>(key, raw)?)),
    }
}

/// A collection's documents at a snapshot, read lazily (see
/// [`Transaction::snapshot_documents`]).
pub struct SnapshotDocuments {
    entries: SnapshotIter,
    docs: DocumentStore,
}

impl Iterator for SnapshotDocuments {
    type Item = Result<Arc<Document>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (key, rev, raw) = match self.entries.next()? {
            Ok(e) => e,
            Err(e) => return Some(Err(e.into())),
        };
        Some(decode_shared(&self.docs, &key, rev, &raw))
    }
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("id", &self.id)
            .field("snapshot", &self.snapshot.revision())
            .field("isolation", &self.isolation)
            .field("writes", &self.writes.len())
            .finish()
    }
}
