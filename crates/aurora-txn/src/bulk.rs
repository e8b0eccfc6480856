//! The batched insert path: new documents into one collection as one
//! commit, planned straight into the commit's batch.
//!
//! An insert reads nothing, so it needs none of a [`Transaction`]'s
//! machinery — no snapshot pin, no per-document maps of reads and writes,
//! no second schema check at commit: each document is checked, encoded and
//! index-planned once, its id's absence is a condition of the commit
//! (decided without a read for a new id above the collection's others,
//! see [`DocumentWrites::insert_new`]), and the commit ends like a
//! transaction's ([`crate::submit`]), with the same feed entry and events.
//!
//! [`Transaction`]: crate::Transaction

use crate::database::{Database, MAX_TRANSACTION_ATTEMPTS};
use crate::error::{Result, TxnError};
use crate::sink::{Change, ChangeKind};
use crate::submit::{self, Submitted};
use aurora_core::{DocId, Document};
use aurora_index::{IndexError, IndexPlan};
use aurora_storage::{split_document_key, Admitted, DocumentWrites};
use std::sync::Arc;

impl Database {
    /// Inserts new documents into `collection` in one atomic commit and
    /// returns their ids, in order — what a transaction of
    /// [`Transaction::insert`](crate::Transaction::insert)s does, with the
    /// same outcome, change-feed entry and events, for less work per
    /// document.
    ///
    /// Every document passes the entry check first
    /// ([`DocumentStore::admit`](aurora_storage::DocumentStore::admit): id,
    /// nesting, size; on a refusal the others are dropped without
    /// recursion). A commit that conflicts with a collection definition
    /// changed meanwhile (an index created or dropped) is planned again,
    /// up to [`MAX_TRANSACTION_ATTEMPTS`] times.
    ///
    /// # Errors
    /// [`IndexError::DocumentExists`] when an id is taken (or given twice);
    /// [`IndexError::UnknownCollection`], schema violations, unique
    /// violations and storage errors as for a transaction. Nothing is
    /// written on an error.
    ///
    /// ```
    /// use aurora_core::doc;
    /// use aurora_index::{Collections, IndexConfig, Schema};
    /// use aurora_storage::{DocumentStore, DocumentStoreConfig, StoreConfig};
    /// use aurora_txn::Database;
    /// let dir = tempfile::tempdir()?;
    /// let docs = DocumentStore::open(dir.path(), StoreConfig::default(), DocumentStoreConfig::default())?;
    /// let db = Database::without_sink(Collections::open(docs, IndexConfig::default())?);
    /// db.collections().create_collection("users", Schema::new())?;
    /// let ids = db.insert_many("users", vec![doc! { "name": "Ada" }, doc! { "name": "Bo" }])?;
    /// assert_eq!(db.collections().get("users", &ids[1])?.and_then(|d| d.get("name").cloned()), Some("Bo".into()));
    /// let again = db.collections().get("users", &ids[0])?.expect("stored");
    /// assert!(db.insert_many("users", vec![(*again).clone()]).is_err(), "the id is taken");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert_many(&self, collection: &str, docs: Vec<Document>) -> Result<Vec<DocId>> {
        let store = self.collections().documents();
        let mut admitted = Vec::with_capacity(docs.len());
        let mut rest = docs.into_iter();
        for doc in rest.by_ref() {
            // The entry check encodes the document: those bytes are stored.
            match store.admit_encoded(doc) {
                Ok(doc) => admitted.push(doc),
                Err(e) => {
                    aurora_core::dispose_all(rest);
                    return Err(e.into());
                }
            }
        }
        let docs: Vec<Arc<Document>> = admitted.iter().map(|a| Arc::clone(a.doc())).collect();
        self.insert_many_shared(collection, &docs, admitted)?;
        Ok(docs.iter().map(|d| d.id.clone()).collect())
    }

    /// Inserts one new document, as [`Database::insert_many`] of one, and
    /// returns its id.
    ///
    /// # Errors
    /// As [`Database::insert_many`].
    pub fn insert(&self, collection: &str, doc: Document) -> Result<DocId> {
        let admitted = self.collections().documents().admit_encoded(doc)?;
        let doc = Arc::clone(admitted.doc());
        self.insert_many_shared(collection, std::slice::from_ref(&doc), vec![admitted])?;
        Ok(doc.id.clone())
    }

    /// [`Database::insert_many`] of documents that passed the entry check,
    /// shared with the commit (the hot cache and the change record get the
    /// same allocations), with their stored bytes (`stored`: the same
    /// documents as admitted, in order; the first attempt writes their
    /// bytes, a retry encodes again).
    fn insert_many_shared(&self, collection: &str, docs: &[Arc<Document>], stored: Vec<Admitted>) -> Result<()> {
        if docs.is_empty() {
            // Nothing to write, as a transaction that inserts nothing.
            return Ok(());
        }
        if let Some(id) = repeated_id(docs) {
            return Err(IndexError::DocumentExists { collection: collection.into(), id: id.to_string() }.into());
        }
        let mut last = None;
        let mut stored = Some(stored);
        for attempt in 0..MAX_TRANSACTION_ATTEMPTS {
            if attempt > 0 {
                // As `Database::transaction` backs off.
                std::thread::sleep(std::time::Duration::from_micros(20 << attempt.min(8)));
            }
            match self.insert_once(collection, docs, stored.take()) {
                Err(e) if e.is_retryable() => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or(TxnError::Finished))
    }

    /// One attempt of [`Database::insert_many_shared`]; `stored`: the
    /// admitted documents with their stored bytes, if still at hand.
    fn insert_once(&self, collection: &str, docs: &[Arc<Document>], stored: Option<Vec<Admitted>>) -> Result<()> {
        let _span = tracing::debug_span!("insert_many", collection, documents = docs.len()).entered();
        let collections = self.collections();
        let mut batch = DocumentWrites::new();
        let mut plans: Vec<IndexPlan> = Vec::with_capacity(docs.len());
        let mut changes = Vec::with_capacity(docs.len());
        let mut stored = stored.map(Vec::into_iter);
        for doc in docs {
            match stored.as_mut().and_then(Iterator::next) {
                Some(admitted) => batch.insert_admitted(collection, admitted)?,
                None => batch.insert_new(collection, doc)?,
            };
            plans.push(collections.plan_write(collection, &doc.id, None, Some(doc), batch.batch_mut())?);
            changes.push(Change {
                collection: collection.to_string(),
                id: doc.id.clone(),
                kind: ChangeKind::Insert,
                old: None,
                new: Some(Arc::clone(doc)),
            });
        }
        submit::distinct_claims(self, &plans)?;
        // Published in (collection, id) order, as a transaction's changes
        // are (`Committed::changes`); new ids arrive mostly in order, so the
        // sort is nearly a scan.
        changes.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        match submit::submit(self, self.next_transaction_id(), batch, &plans, changes)? {
            Submitted::Committed(_) => Ok(()),
            // Every document key's condition is its id's absence.
            Submitted::Refused(key) => match split_document_key(&key) {
                Some((collection, id)) => {
                    Err(IndexError::DocumentExists { collection: collection.to_string(), id: id.to_string() }.into())
                }
                None => Err(submit::refusal(self, &plans, &key)),
            },
        }
    }
}

/// An id given to more than one of `docs`, if any.
fn repeated_id(docs: &[Arc<Document>]) -> Option<&DocId> {
    if docs.len() < 2 {
        return None;
    }
    let mut ids: Vec<&DocId> = docs.iter().map(|d| &d.id).collect();
    // New ids arrive mostly in order: sorting them is nearly a scan.
    ids.sort_unstable();
    ids.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}
