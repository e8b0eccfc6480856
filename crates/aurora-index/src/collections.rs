//! [`Collections`]: named collections of documents with schemas, validated
//! writes, and secondary indexes kept in the same atomic commit as the
//! documents.

use crate::catalog::{self, CollectionDef, IndexDef, IndexState};
use crate::compound;
use crate::count::EntryCount;
use crate::error::{IndexError, Result};
use crate::id_key::IdKey;
use crate::keycodec;
use crate::keys;
use crate::maintain::{self, IndexDelta};
use crate::schema::Schema;
use aurora_core::{DocId, Document, Value};
use aurora_storage::{
    prefix_successor, validate_collection_name, Batch, CommitOutcome, DocumentStore, DocumentWrites, Revision,
    Snapshot, StorageError,
};
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

/// How many times a write is retried when its document changed between
/// reading the old version (for the index diff) and committing.
const MAX_ATTEMPTS: u32 = 64;

/// Each collection's definition and the revision that wrote it.
type Catalog = BTreeMap<String, (Arc<CollectionDef>, Revision)>;

/// Settings of the collection layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexConfig {
    /// Most entries one index of a user collection may hold; default
    /// `usize::MAX`, no cap (a default that refuses the 100 001st customer
    /// is a bug, not a guard). When set, a write that would grow an index
    /// past it fails with [`IndexError::TooManyIndexEntries`] and writes
    /// nothing; the count is in memory and checked before the commit, so
    /// concurrent writers can overshoot it by at most their number. System
    /// collections (names starting with `_`, such as the job queue's
    /// `_jobs`) are exempt.
    pub max_index_entries_per_field: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self { max_index_entries_per_field: usize::MAX }
    }
}

/// Statistics of one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStats {
    /// The index's name: the indexed field path, or for a compound index
    /// its paths joined by [`compound::SEPARATOR`] (see `fields`).
    pub field: String,
    /// The indexed field paths: one, or two or more for a compound index.
    pub fields: Vec<String>,
    /// Whether values are unique.
    pub unique: bool,
    /// Building or ready.
    pub state: IndexState,
    /// Index entries (one per document and distinct value).
    pub entries: u64,
    /// Distinct indexed values (for a compound index: distinct tuples).
    pub distinct_values: u64,
    /// Bytes of index keys (entries and unique claims).
    pub bytes: u64,
}

/// The index side of one planned document write (see
/// [`Collections::plan_write`]).
#[derive(Debug)]
pub struct IndexPlan {
    collection: String,
    /// The revision of the collection definition the plan was made with.
    definition_revision: Revision,
    delta: IndexDelta,
}

impl IndexPlan {
    /// The unique-claim keys this write takes (each conditioned on being
    /// absent in the batch).
    pub fn claim_keys(&self) -> impl Iterator<Item = &[u8]> {
        self.delta.claims.iter().map(|c| c.key.as_slice())
    }
}

/// Which entries of an index to read.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexScan {
    /// Entries equal to a value (array fields: containing it).
    Eq(Value),
    /// Entries within bounds.
    Range(Bound<Value>, Bound<Value>),
    /// String entries starting with a prefix.
    Prefix(String),
    /// Every entry, in value order.
    All,
    /// A compound index read: entries whose leading fields equal `equal`
    /// (in the index's field order), and whose next field lies within
    /// `low..high` (both `Unbounded`: any value). Entries come in the order
    /// of the remaining fields, then id.
    Tuple {
        /// Values of the leading fields (fewer than the index has).
        equal: Vec<Value>,
        /// Lower bound on the next field.
        low: Bound<Value>,
        /// Upper bound on the next field.
        high: Bound<Value>,
    },
}

/// An index's key prefix and the bounds of one read within it.
type IndexBounds = (Vec<u8>, Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The start and end keys of one read.
type KeyBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Live index entry counts by (collection, field), each counted on first use.
type EntryCounts = HashMap<(String, String), Arc<EntryCount>>;

/// Whether a write must create, may replace, or must find the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Insert,
    Upsert,
}

/// The collection layer over a [`DocumentStore`].
///
/// ```
/// use aurora_core::{doc, FieldDefinition, FieldType, Value};
/// use aurora_index::{Collections, IndexConfig, IndexError, Schema};
/// use aurora_storage::{DocumentStore, DocumentStoreConfig, StoreConfig};
///
/// let dir = tempfile::tempdir()?;
/// let docs = DocumentStore::open(dir.path(), StoreConfig::default(), DocumentStoreConfig::default())?;
/// let db = Collections::open(docs, IndexConfig::default())?;
/// db.create_collection("users", Schema::new()
///     .field("email", FieldDefinition::new(FieldType::String).unique())
///     .field("age", FieldDefinition::new(FieldType::Int).indexed()))?;
/// db.insert("users", doc! { "email": "a@x.io", "age": 30 })?;
/// let err = db.insert("users", doc! { "email": "a@x.io", "age": 31 }).unwrap_err();
/// assert!(matches!(err, IndexError::UniqueViolation { .. }));
/// assert_eq!(db.lookup("users", "age", &Value::Int(30))?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Collections {
    docs: DocumentStore,
    /// Each collection's definition and the revision that wrote it: every
    /// document write is conditioned on that revision (see
    /// [`Collections::require_definitions`]).
    catalog: Arc<RwLock<Catalog>>,
    /// Live entry counts per (collection, field), for the size guard.
    counts: Arc<RwLock<EntryCounts>>,
    /// Index builds running in this process.
    builds: crate::build::RunningBuilds,
    /// Held through a schema change ([`Collections::alter_schema`]): one
    /// at a time.
    pub(crate) schema_changes: Arc<parking_lot::Mutex<()>>,
    config: IndexConfig,
}

impl Collections {
    /// Loads the catalog and resumes interrupted index builds. Index
    /// entries are counted when first needed, not here (see `count.rs`).
    pub fn open(docs: DocumentStore, config: IndexConfig) -> Result<Self> {
        let loaded = catalog::load(docs.store())?;
        let this = Self {
            docs,
            catalog: Arc::new(RwLock::new(loaded.into_iter().map(|(k, (v, r))| (k, (Arc::new(v), r))).collect())),
            counts: Arc::default(),
            builds: Arc::default(),
            schema_changes: Arc::default(),
            config,
        };
        // First, so the indexes a change interrupted by a crash added go
        // with it instead of being resumed.
        this.roll_back_interrupted_changes()?;
        this.resume_builds()?;
        Ok(this)
    }

    pub(crate) fn running_builds(&self) -> crate::build::RunningBuilds {
        Arc::clone(&self.builds)
    }

    /// The document store underneath.
    pub fn documents(&self) -> &DocumentStore {
        &self.docs
    }

    fn counter(&self, collection: &str, field: &str) -> Arc<EntryCount> {
        let key = (collection.to_string(), field.to_string());
        if let Some(c) = self.counts.read().get(&key) {
            return Arc::clone(c);
        }
        Arc::clone(self.counts.write().entry(key).or_default())
    }

    fn def(&self, collection: &str) -> Result<Arc<CollectionDef>> {
        self.def_versioned(collection).map(|(def, _)| def)
    }

    /// The definition and the revision that wrote it.
    pub(crate) fn def_versioned(&self, collection: &str) -> Result<(Arc<CollectionDef>, Revision)> {
        self.catalog.read().get(collection).cloned().ok_or_else(|| IndexError::UnknownCollection(collection.into()))
    }

    /// The collection's definition (schema and index states).
    pub fn definition(&self, collection: &str) -> Result<CollectionDef> {
        Ok((*self.def(collection)?).clone())
    }

    /// The collection's definition, shared (no copy).
    pub fn definition_shared(&self, collection: &str) -> Result<Arc<CollectionDef>> {
        self.def(collection)
    }

    /// Names of all collections, sorted.
    pub fn list_collections(&self) -> Vec<String> {
        self.catalog.read().keys().cloned().collect()
    }

    /// Creates an empty collection with `schema`; its `indexed`/`unique`
    /// fields get indexes at once. The definition is persisted.
    pub fn create_collection(&self, name: &str, schema: Schema) -> Result<()> {
        validate_collection_name(name)?;
        schema.check(name)?;
        let def = CollectionDef::new(schema);
        let key = keys::catalog_key(name);
        let mut batch = Batch::new();
        batch.require_absent(key.clone()).put(key, catalog::encode(&def)?);
        let mut catalog = self.catalog.write();
        if catalog.contains_key(name) {
            return Err(IndexError::CollectionExists(name.into()));
        }
        match self.docs.store().commit(batch)? {
            CommitOutcome::Committed(revision) => {
                catalog.insert(name.to_string(), (Arc::new(def), revision));
                Ok(())
            }
            CommitOutcome::ConditionFailed { .. } => Err(IndexError::CollectionExists(name.into())),
        }
    }

    /// Deletes a collection: its documents with their index entries (in
    /// batches, each atomic, so indexes agree with documents at every
    /// point), then its definition. Writers see `UnknownCollection` from the
    /// start; a crash midway leaves the collection defined with fewer
    /// documents, and dropping it again finishes the job.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        {
            let mut catalog = self.catalog.write();
            let entry = catalog.get(name).cloned().ok_or_else(|| IndexError::UnknownCollection(name.into()))?;
            // Rewriting the definition moves its revision: a writer that
            // planned against it before the removal fails its condition,
            // re-reads the catalog and gets `UnknownCollection`, so no
            // document lands behind the scan below.
            let mut bump = Batch::new();
            bump.put(keys::catalog_key(name), catalog::encode(&entry.0)?);
            self.docs.store().commit(bump)?.into_result()?;
            catalog.remove(name);
        }
        // The documents go by id, read from their keys: none is decoded, so
        // a damaged one cannot keep the collection alive, and memory holds
        // one chunk of ids. Their index entries and claims go with the
        // index prefixes below.
        loop {
            let ids: Vec<DocId> = self.docs.scan_ids(name)?.take(500).collect::<Result<_, _>>()?;
            if ids.is_empty() {
                break;
            }
            let mut writes = DocumentWrites::new();
            for id in &ids {
                writes.delete(name, id)?;
            }
            self.docs.commit(writes)?.into_result()?;
        }
        self.delete_prefixes(&keys::collection_prefixes(name))?;
        let mut batch = Batch::new();
        batch.delete(keys::catalog_key(name));
        self.docs.store().commit(batch)?.into_result()?;
        self.counts.write().retain(|(c, _), _| c != name);
        Ok(())
    }

    /// Deletes every key under the given prefixes, in batches.
    pub(crate) fn delete_prefixes(&self, prefixes: &[Vec<u8>]) -> Result<()> {
        let store = self.docs.store();
        for prefix in prefixes {
            let doomed: Vec<Vec<u8>> =
                store.scan_prefix(prefix)?.map(|kv| kv.map(|(k, _)| k)).collect::<Result<_, _>>()?;
            for chunk in doomed.chunks(1000) {
                let mut batch = Batch::new();
                for k in chunk {
                    batch.delete(k.clone());
                }
                store.commit(batch)?.into_result()?;
            }
        }
        Ok(())
    }

    /// Inserts a new document; fails with [`IndexError::DocumentExists`] if
    /// its id is taken. Returns the id.
    ///
    /// This and [`Collections::put`]/[`Collections::delete`] are the index
    /// layer's own single-document writes: atomic with their indexes, but
    /// outside transactions, so they reach no change sink, event or change
    /// feed. Applications write through `aurora_txn::Database` (or the
    /// `Aurora` handle), which has one write path for everything.
    pub fn insert(&self, collection: &str, doc: Document) -> Result<DocId> {
        let id = doc.id.clone();
        self.write(collection, &id, Some(doc), Mode::Insert)?;
        Ok(id)
    }

    /// Inserts or replaces a document; returns the commit revision.
    pub fn put(&self, collection: &str, doc: Document) -> Result<Revision> {
        let id = doc.id.clone();
        self.write(collection, &id, Some(doc), Mode::Upsert)
    }

    /// Deletes a document; returns whether it existed.
    pub fn delete(&self, collection: &str, id: &DocId) -> Result<bool> {
        let existed = self.docs.get(collection, id)?.is_some();
        self.write(collection, id, None, Mode::Upsert)?;
        Ok(existed)
    }

    /// The document, if present.
    pub fn get(&self, collection: &str, id: &DocId) -> Result<Option<Arc<Document>>> {
        self.def(collection)?;
        Ok(self.docs.get(collection, id)?)
    }

    /// Validates, diffs the indexes against the current version, and commits
    /// document + index writes atomically, conditioned on the document not
    /// having changed and on every new unique value being unclaimed.
    fn write(&self, collection: &str, id: &DocId, new: Option<Document>, mode: Mode) -> Result<Revision> {
        let new = new.map(|doc| self.docs.admit(doc)).transpose()?;
        for _ in 0..MAX_ATTEMPTS {
            let (rev, old) = self.docs.get_versioned(collection, id)?;
            // The write is conditioned on the definition's revision: one
            // planned against a definition that changed since (an index
            // created or dropped) fails and is planned again.
            let (def, def_rev) = self.def_versioned(collection)?;
            if let Some(doc) = &new {
                def.check_write(collection, old.as_deref(), doc)?;
            }
            if mode == Mode::Insert && old.is_some() {
                return Err(IndexError::DocumentExists { collection: collection.into(), id: id.to_string() });
            }
            let mut writes = DocumentWrites::new();
            match &new {
                Some(doc) => writes.put(collection, doc)?,
                None => writes.delete(collection, id)?,
            };
            let doc_key = aurora_storage::document_key(collection, id);
            writes.batch_mut().require_revision(doc_key.clone(), rev);
            writes.batch_mut().require_revision(keys::catalog_key(collection), def_rev);
            let delta = maintain::plan(collection, &def, id, old.as_deref(), new.as_ref(), writes.batch_mut());
            maintain::release_claims(self.docs.store(), id, &delta, writes.batch_mut())?;
            self.check_limits(collection, &delta)?;
            match self.docs.commit(writes)? {
                CommitOutcome::Committed(r) => {
                    for (field, n) in &delta.entry_deltas {
                        self.counter(collection, field).add(*n, r);
                    }
                    return Ok(r);
                }
                CommitOutcome::ConditionFailed { key, .. } if key == doc_key => continue,
                CommitOutcome::ConditionFailed { key, .. } if key == keys::catalog_key(collection) => continue,
                // A claim this write releases changed hands: plan again.
                CommitOutcome::ConditionFailed { key, .. } if delta.releases.contains(&key) => continue,
                CommitOutcome::ConditionFailed { key, .. } => {
                    let claim = delta.claims.iter().find(|c| c.key == key);
                    return Err(IndexError::UniqueViolation {
                        collection: collection.into(),
                        field: claim.map_or_else(String::new, |c| c.field.clone()),
                        value: claim.map_or_else(String::new, |c| c.value.clone()),
                    });
                }
            }
        }
        Err(IndexError::Contention { collection: collection.into(), id: id.to_string(), attempts: MAX_ATTEMPTS })
    }

    fn check_limits(&self, collection: &str, delta: &IndexDelta) -> Result<()> {
        if collection.starts_with('_') {
            // System collections (`_jobs`, …) are sized by their owners
            // (retention), not by the guard against user schema mistakes.
            return Ok(());
        }
        let limit = self.config.max_index_entries_per_field;
        if limit == usize::MAX {
            // No limit (the default): nothing to count.
            return Ok(());
        }
        for (field, n) in &delta.entry_deltas {
            if *n <= 0 {
                continue;
            }
            let now = self.entry_count(collection, field)?;
            if now.saturating_add(*n) > isize::try_from(limit).unwrap_or(isize::MAX) {
                return Err(IndexError::TooManyIndexEntries {
                    collection: collection.into(),
                    field: field.clone(),
                    limit,
                });
            }
        }
        Ok(())
    }

    fn ready(&self, collection: &str, field: &str) -> Result<()> {
        match self.def(collection)?.ready_index(field) {
            Some(_) => Ok(()),
            None => Err(IndexError::NoIndex { collection: collection.into(), field: compound::display_name(field) }),
        }
    }

    /// Ids of the documents whose `field` equals `value` (or, for an array
    /// field, contains it), in id order.
    pub fn lookup(&self, collection: &str, field: &str, value: &Value) -> Result<Vec<DocId>> {
        self.scan_index(None, collection, field, &IndexScan::Eq(value.clone()))
    }

    /// Ids of the documents whose `field` equals any of `values` (an `in`
    /// query: one point lookup per distinct value), in value order.
    pub fn lookup_any(&self, collection: &str, field: &str, values: &[Value]) -> Result<Vec<DocId>> {
        let distinct: std::collections::BTreeSet<&Value> = values.iter().collect();
        let mut out = Vec::new();
        for v in distinct {
            out.extend(self.lookup(collection, field, v)?);
        }
        Ok(out)
    }

    /// Ids of the documents whose `field` lies in the range, in value order
    /// (then id order).
    pub fn range(&self, collection: &str, field: &str, low: Bound<&Value>, high: Bound<&Value>) -> Result<Vec<DocId>> {
        let scan = IndexScan::Range(low.cloned(), high.cloned());
        self.scan_index(None, collection, field, &scan)
    }

    /// Ids of the documents whose string `field` starts with `prefix`.
    pub fn starts_with(&self, collection: &str, field: &str, prefix: &str) -> Result<Vec<DocId>> {
        self.scan_index(None, collection, field, &IndexScan::Prefix(prefix.to_string()))
    }

    /// Ids from a ready index, in (value, id) order, read at `at` (a
    /// snapshot) or at the latest revision.
    pub fn scan_index(
        &self,
        at: Option<&Snapshot>,
        collection: &str,
        field: &str,
        scan: &IndexScan,
    ) -> Result<Vec<DocId>> {
        let Some((base, start, end)) = self.index_bounds(collection, field, scan)? else { return Ok(Vec::new()) };
        let (start, end) = (start.as_ref().map(Vec::as_slice), end.as_ref().map(Vec::as_slice));
        let keys: Vec<Vec<u8>> = match at {
            Some(snapshot) => snapshot.range(start, end)?.into_iter().map(|(k, _)| k).collect(),
            None => self.docs.store().range(start, end)?.map(|kv| kv.map(|(k, _)| k)).collect::<Result<_, _>>()?,
        };
        let parts = compound::index_fields(field).len();
        keys.iter().map(|k| id_of_entry(&base, parts, k)).collect()
    }

    /// Like [`Collections::scan_index`] at a snapshot, lazily, in ascending
    /// (value, id) order: stopping early reads nothing more.
    pub fn scan_index_lazy(
        &self,
        at: &Snapshot,
        collection: &str,
        field: &str,
        scan: &IndexScan,
    ) -> Result<Box<dyn Iterator<Item = Result<DocId>> + Send>> {
        self.scan_index_ordered(at, collection, field, scan, false)
    }

    /// Like [`Collections::scan_index_lazy`], in descending (value, id)
    /// order, lazily: stopping early reads nothing more.
    pub fn scan_index_desc(
        &self,
        at: &Snapshot,
        collection: &str,
        field: &str,
        scan: &IndexScan,
    ) -> Result<Box<dyn Iterator<Item = Result<DocId>> + Send>> {
        self.scan_index_ordered(at, collection, field, scan, true)
    }

    /// The ids of an index read at a snapshot, lazily, in (value, id)
    /// order or its reverse.
    fn scan_index_ordered(
        &self,
        at: &Snapshot,
        collection: &str,
        field: &str,
        scan: &IndexScan,
        descending: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<DocId>> + Send>> {
        let keys = self.scan_index_keys(at, collection, field, scan, descending)?;
        Ok(Box::new(keys.map(|key| {
            let key = key?;
            // Checked when read, so this does not fail; typed all the same.
            key.to_id().map_err(|e| entry_corrupt(key.as_bytes(), e.to_string()))
        })))
    }

    /// Like [`Collections::scan_index_lazy`] (or
    /// [`Collections::scan_index_desc`] when `descending`), yielding each
    /// entry's document id as its key bytes: checked as an id (a damaged
    /// entry is [`StorageError::Corrupt`], as there), but not built into
    /// one, so a reader that fetches the documents by key
    /// (`Transaction::get_shared_by_key`) allocates nothing per entry for
    /// the id. Lazy: stopping early reads nothing more.
    pub fn scan_index_keys(
        &self,
        at: &Snapshot,
        collection: &str,
        field: &str,
        scan: &IndexScan,
        descending: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<IdKey>> + Send>> {
        let Some((base, start, end)) = self.index_bounds(collection, field, scan)? else {
            return Ok(Box::new(std::iter::empty()));
        };
        let (start, end) = (start.as_ref().map(Vec::as_slice), end.as_ref().map(Vec::as_slice));
        let iter = if descending { at.iter_rev(start, end)? } else { at.iter(start, end)? };
        let parts = compound::index_fields(field).len();
        Ok(Box::new(iter.map(move |entry| {
            let (mut key, _, _) = entry?;
            let id_at = id_start(&base, parts, &key)?;
            // The key's own buffer becomes the id's: no allocation.
            key.drain(..id_at);
            Ok(IdKey::checked(key))
        })))
    }

    /// The entry-key bounds of an index read, or `None` for an empty read.
    fn index_bounds(&self, collection: &str, field: &str, scan: &IndexScan) -> Result<Option<IndexBounds>> {
        self.ready(collection, field)?;
        let base = keys::entries_prefix(collection, field);
        // An index that is read is worth keeping in memory (within the
        // store's `range_cache_bytes`): its reads then skip the cold
        // store's iterator.
        self.docs.store().keep_resident(&base);
        let with = |v: &Value| {
            let mut k = base.clone();
            keycodec::encode_into(v, &mut k);
            k
        };
        let (start, end) = match scan {
            IndexScan::Eq(v) => {
                let prefix = with(v);
                (Bound::Included(prefix.clone()), prefix_bound(&prefix))
            }
            IndexScan::Prefix(p) => {
                let mut k = base.clone();
                k.extend_from_slice(&keycodec::string_prefix(p));
                (Bound::Included(k.clone()), prefix_bound(&k))
            }
            IndexScan::All => (Bound::Included(base.clone()), prefix_bound(&base)),
            IndexScan::Range(low, high) => match range_bounds(&base, low, high) {
                Some(bounds) => bounds,
                None => return Ok(None),
            },
            IndexScan::Tuple { equal, low, high } => {
                let mut scope = base.clone();
                for v in equal {
                    keycodec::encode_into(v, &mut scope);
                }
                match range_bounds(&scope, low, high) {
                    Some(bounds) => bounds,
                    None => return Ok(None),
                }
            }
        };
        Ok(Some((base, start, end)))
    }

    /// Live entries of one index. Counted by a scan of the index the
    /// first time it is asked for (or checked against
    /// [`IndexConfig::max_index_entries_per_field`]), then kept current in
    /// memory; 0 if counting failed (a storage error, logged).
    pub fn index_entries(&self, collection: &str, field: &str) -> u64 {
        match self.entry_count(collection, field) {
            Ok(n) => n.max(0) as u64,
            Err(e) => {
                tracing::warn!(collection, field, error = %e, "counting index entries failed");
                0
            }
        }
    }

    /// Average entries per distinct value of one index — the planner's
    /// estimate of the rows an equality on it reads (the uniform
    /// assumption; a skewed value reads more or fewer). Counted by the same
    /// first scan as [`Collections::index_entries`] and not kept current
    /// afterwards (entries are; distinct values are not); 0.0 for an index
    /// that was empty then, or if counting failed (a storage error, logged).
    pub fn index_entries_per_value(&self, collection: &str, field: &str) -> f64 {
        let store = self.docs.store();
        let prefix = keys::entries_prefix(collection, field);
        match self.counter(collection, field).entries_per_value(|| Ok(store.snapshot()?), &prefix) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(collection, field, error = %e, "counting index values failed");
                0.0
            }
        }
    }

    /// The live entry count of one index, counted at a snapshot on first use.
    fn entry_count(&self, collection: &str, field: &str) -> Result<isize> {
        let store = self.docs.store();
        self.counter(collection, field).get(|| Ok(store.snapshot()?), &keys::entries_prefix(collection, field))
    }

    /// Statistics of every index of a collection (scans the indexes).
    pub fn index_stats(&self, collection: &str) -> Result<Vec<IndexStats>> {
        let def = self.def(collection)?;
        let mut out = Vec::new();
        for (field, index) in &def.indexes {
            let base = keys::entries_prefix(collection, field);
            let parts = compound::index_fields(field).len();
            let (mut entries, mut distinct, mut bytes) = (0u64, 0u64, 0u64);
            let mut last_value: Option<Vec<u8>> = None;
            for item in self.docs.store().scan_prefix(&base)? {
                let (key, _) = item?;
                let value = split_entry(&base, parts, &key)?.0.to_vec();
                entries += 1;
                bytes += key.len() as u64;
                if last_value.as_ref() != Some(&value) {
                    distinct += 1;
                    last_value = Some(value);
                }
            }
            for item in self.docs.store().scan_prefix(&keys::claims_prefix(collection, field))? {
                let (key, value) = item?;
                bytes += (key.len() + value.len()) as u64;
            }
            out.push(IndexStats {
                field: field.clone(),
                fields: compound::index_fields(field).into_iter().map(String::from).collect(),
                unique: index.unique,
                state: index.state,
                entries,
                distinct_values: distinct,
                bytes,
            });
        }
        Ok(out)
    }

    /// Plans a write for a caller that assembles its own batch (the
    /// transaction layer): validates `new` against the schema, adds the
    /// index entries and unique claims that turn `old` into `new`, and checks
    /// the entry guard. Pass the plan to [`Collections::committed`] once the
    /// batch commits, or to [`Collections::violation`] if a condition failed.
    pub fn plan_write(
        &self,
        collection: &str,
        id: &DocId,
        old: Option<&Document>,
        new: Option<&Document>,
        batch: &mut Batch,
    ) -> Result<IndexPlan> {
        let (def, definition_revision) = self.def_versioned(collection)?;
        if let Some(doc) = new {
            def.check_write(collection, old, doc)?;
        }
        let delta = maintain::plan(collection, &def, id, old, new, batch);
        maintain::release_claims(self.docs.store(), id, &delta, batch)?;
        self.check_limits(collection, &delta)?;
        Ok(IndexPlan { collection: collection.to_string(), definition_revision, delta })
    }

    /// Conditions `batch` on the revision of every collection definition
    /// the `plans` were made with (once per collection). A batch planned
    /// against a definition that has changed since — an index created or
    /// dropped, the collection dropped — then fails instead of writing index
    /// entries for the old definition; [`Collections::changed_definition`]
    /// recognises that failure. This is the invariant that keeps online
    /// index builds exact (ARCHITECTURE.md, "Collections and indexes").
    pub fn require_definitions(&self, plans: &[IndexPlan], batch: &mut Batch) {
        let mut seen = std::collections::BTreeSet::new();
        for plan in plans {
            if seen.insert(plan.collection.as_str()) {
                batch.require_watched_revision(keys::catalog_key(&plan.collection), plan.definition_revision);
            }
        }
    }

    /// If `key` (from a failed condition) is the definition of one of the
    /// plans' collections, that collection's name: the batch was planned
    /// against a definition that changed, and planning again will do.
    pub fn changed_definition<'p>(&self, plans: &'p [IndexPlan], key: &[u8]) -> Option<&'p str> {
        plans.iter().map(|p| p.collection.as_str()).find(|c| keys::catalog_key(c) == key)
    }

    /// Updates entry counts after planned writes committed together at
    /// `revision`: their deltas are summed per index first, so a batch of
    /// any size updates each count once.
    pub fn committed(&self, plans: &[IndexPlan], revision: Revision) {
        let mut sums: Vec<(&str, &str, isize)> = Vec::new();
        for plan in plans {
            for (field, n) in &plan.delta.entry_deltas {
                match sums.iter_mut().find(|(c, f, _)| *c == plan.collection && *f == field) {
                    Some(sum) => sum.2 += n,
                    None => sums.push((&plan.collection, field, *n)),
                }
            }
        }
        for (collection, field, n) in sums {
            if n != 0 {
                self.counter(collection, field).add(n, revision);
            }
        }
    }

    /// The unique violation a failed condition on `key` means, if `key` is
    /// one of the plan's unique claims.
    pub fn violation(&self, plan: &IndexPlan, key: &[u8]) -> Option<IndexError> {
        plan.delta.claims.iter().find(|c| c.key == key).map(|c| IndexError::UniqueViolation {
            collection: plan.collection.clone(),
            field: c.field.clone(),
            value: c.value.clone(),
        })
    }

    /// Forgets the entry count of one index (after a build or drop rewrote
    /// it): the next use counts it again.
    pub(crate) fn recount(&self, collection: &str, field: &str) -> Result<()> {
        self.counter(collection, field).reset();
        Ok(())
    }

    pub(crate) fn update_definition<R>(
        &self,
        collection: &str,
        change: impl FnOnce(&mut CollectionDef) -> Result<R>,
    ) -> Result<R> {
        let mut catalog = self.catalog.write();
        let mut def = match catalog.get(collection) {
            Some((def, _)) => (**def).clone(),
            None => return Err(IndexError::UnknownCollection(collection.into())),
        };
        let out = change(&mut def)?;
        let mut batch = Batch::new();
        batch.put(keys::catalog_key(collection), catalog::encode(&def)?);
        let revision = self.docs.store().commit(batch)?.into_result()?;
        catalog.insert(collection.to_string(), (Arc::new(def), revision));
        Ok(out)
    }

    /// The index definition of a field, if any.
    pub fn index(&self, collection: &str, field: &str) -> Result<Option<IndexDef>> {
        Ok(self.def(collection)?.indexes.get(field).copied())
    }
}

/// The key bounds of the entries under `scope` whose next encoded value
/// lies within `low..high`, or `None` for an empty read.
fn range_bounds(scope: &[u8], low: &Bound<Value>, high: &Bound<Value>) -> Option<KeyBounds> {
    let with = |v: &Value| {
        let mut k = scope.to_vec();
        keycodec::encode_into(v, &mut k);
        k
    };
    let start = match low {
        Bound::Included(v) => Bound::Included(with(v)),
        // Past every entry of `v`: the successor of its prefix.
        Bound::Excluded(v) => match prefix_bound(&with(v)) {
            Bound::Excluded(k) => Bound::Included(k),
            _ => return None,
        },
        Bound::Unbounded => Bound::Included(scope.to_vec()),
    };
    let end = match high {
        Bound::Included(v) => prefix_bound(&with(v)),
        Bound::Excluded(v) => Bound::Excluded(with(v)),
        Bound::Unbounded => prefix_bound(scope),
    };
    Some((start, end))
}

/// The upper bound just past every key starting with `prefix`.
fn prefix_bound(prefix: &[u8]) -> Bound<Vec<u8>> {
    prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded)
}

/// Decodes the document id at the end of an index entry key
/// (`base ++ enc(value) ++ id key bytes`; `parts` encoded values for a
/// compound index).
pub(crate) fn id_of_entry(base: &[u8], parts: usize, key: &[u8]) -> Result<DocId> {
    Ok(split_entry(base, parts, key)?.1)
}

/// Splits an index entry key into its encoded value(s) and document id.
pub(crate) fn split_entry<'k>(base: &[u8], parts: usize, key: &'k [u8]) -> Result<(&'k [u8], DocId)> {
    let id_at = id_start(base, parts, key)?;
    let id = DocId::from_key_bytes(&key[id_at..]).map_err(|e| entry_corrupt(key, e.to_string()))?;
    Ok((&key[base.len()..id_at], id))
}

/// Where the document id starts in an index entry key
/// (`base ++ enc(value) ++ id key bytes`; `parts` encoded values for a
/// compound index), the id's key bytes checked.
fn id_start(base: &[u8], parts: usize, key: &[u8]) -> Result<usize> {
    let rest = key.get(base.len()..).ok_or_else(|| entry_corrupt(key, "shorter than its prefix".into()))?;
    let mut n = 0;
    for _ in 0..parts {
        n += rest
            .get(n..)
            .and_then(keycodec::encoded_len)
            .ok_or_else(|| entry_corrupt(key, "undecodable value".into()))?;
    }
    DocId::check_key_bytes(&rest[n..]).map_err(|e| entry_corrupt(key, e.to_string()))?;
    Ok(base.len() + n)
}

fn entry_corrupt(key: &[u8], reason: String) -> IndexError {
    IndexError::Storage(StorageError::Corrupt {
        key: aurora_storage::printable_key(key),
        reason: format!("index entry: {reason}"),
    })
}
