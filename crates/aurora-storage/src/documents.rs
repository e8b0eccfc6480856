//! [`DocumentStore`]: documents by collection and id, read through the hot
//! cache (hot → cold → promote) and written through the commit pipeline.

use crate::batch::{Batch, CommitOutcome, Revision};
use crate::commit::CommitHook;
use crate::config::StoreConfig;
use crate::error::{Result, StorageError};
use crate::format;
use crate::hot::{CacheStats, EvictionPolicy, HotCache};
use crate::snapshot::Snapshot;
use crate::store::Store;
use aurora_core::{DocId, Document};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Lock stripes that order cache promotion against writes.
const STRIPES: usize = 256;

/// A cached document, or a cached "no such document".
type Cached = Option<Arc<Document>>;

/// Settings of the document layer's hot cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentStoreConfig {
    /// Hot cache capacity in MiB (default 40), counted as the allocator
    /// hands memory out ([`Document::approx_size`] plus
    /// [`ENTRY_OVERHEAD`](crate::hot::ENTRY_OVERHEAD) and the key per entry).
    pub hot_cache_size_mb: usize,
    /// Eviction policy (default [`EvictionPolicy::Hybrid`]).
    pub eviction_policy: EvictionPolicy,
    /// TTL for cached entries; `None` keeps them until evicted (default).
    pub cache_ttl: Option<Duration>,
}

impl Default for DocumentStoreConfig {
    fn default() -> Self {
        Self { hot_cache_size_mb: 40, eviction_policy: EvictionPolicy::Hybrid, cache_ttl: None }
    }
}

/// Documents stored by `(collection, id)` in a [`Store`], cached hot.
///
/// Reads look in the hot cache, then the cold store, and promote what they
/// find (absent documents are cached too, so repeated misses stay cheap).
/// Writes update the cache in commit order from the commit pipeline, and
/// promotion is ordered against writes by per-key lock stripes, so a read
/// never leaves an older version cached than the one committed.
///
/// ```
/// use aurora_core::doc;
/// use aurora_storage::{DocumentStore, DocumentStoreConfig, StoreConfig};
/// let dir = tempfile::tempdir()?;
/// let docs = DocumentStore::open(dir.path(), StoreConfig::default(), DocumentStoreConfig::default())?;
/// let alice = doc! { "name": "Alice", "age": 30 };
/// docs.put("users", &alice)?;
/// let got = docs.get("users", &alice.id)?.expect("stored");
/// assert_eq!(got.get("name").and_then(|v| v.as_str()), Some("Alice"));
/// assert_eq!(docs.cache_stats().hits, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct DocumentStore {
    store: Store,
    cache: Arc<HotCache<Cached>>,
    stripes: Arc<[Mutex<()>]>,
    ttl: Option<Duration>,
}

/// The storage key of a document: `"d" ++ collection ++ 0x00 ++ id key bytes`.
pub fn document_key(collection: &str, id: &DocId) -> Vec<u8> {
    with_document_key(collection, id, <[u8]>::to_vec)
}

/// Calls `f` with [`document_key`], built on the stack when it is short
/// (the hot read path allocates nothing for it).
fn with_document_key<R>(collection: &str, id: &DocId, f: impl FnOnce(&[u8]) -> R) -> R {
    build_document_key(
        collection,
        id.key_len(),
        |out| {
            id.write_key_bytes(out);
        },
        f,
    )
}

/// Calls `f` with the storage key ([`document_key`]) of the document whose
/// id has the key bytes `id_key` ([`DocId::to_key_bytes`]), without
/// building the id; on the stack when it is short. For readers that hold
/// ids as key bytes, such as index reads.
///
/// ```
/// use aurora_core::DocId;
/// use aurora_storage::{document_key, with_document_key_bytes};
/// let id = DocId::text("u1")?;
/// with_document_key_bytes("users", &id.to_key_bytes(), |key| assert_eq!(key, document_key("users", &id)));
/// # Ok::<(), aurora_core::CoreError>(())
/// ```
pub fn with_document_key_bytes<R>(collection: &str, id_key: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    build_document_key(collection, id_key.len(), |out| out.copy_from_slice(id_key), f)
}

fn build_document_key<R>(
    collection: &str,
    id_len: usize,
    write_id: impl FnOnce(&mut [u8]),
    f: impl FnOnce(&[u8]) -> R,
) -> R {
    const INLINE: usize = 160;
    let len = 2 + collection.len() + id_len;
    let mut inline = [0u8; INLINE];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= INLINE {
        &mut inline[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    buf[0] = b'd';
    buf[1..=collection.len()].copy_from_slice(collection.as_bytes());
    buf[1 + collection.len()] = 0;
    write_id(&mut buf[2 + collection.len()..]);
    f(buf)
}

/// The collection and id a [`document_key`] was made of, or `None` for a
/// key that is not a document key.
pub fn split_document_key(key: &[u8]) -> Option<(&str, DocId)> {
    let rest = key.strip_prefix(b"d")?;
    let end = rest.iter().position(|b| *b == 0)?;
    let collection = std::str::from_utf8(&rest[..end]).ok()?;
    let id = DocId::from_key_bytes(&rest[end + 1..]).ok()?;
    Some((collection, id))
}

/// The scope of a document key for [`Batch::require_new`]: the
/// collection's key prefix and the id's kind byte, so UUID ids (time
/// ordered: [`DocId::new`] makes UUID v7) and text ids are each ordered on
/// their own.
pub fn document_key_scope(collection: &str) -> usize {
    collection.len() + 3
}

/// The prefix of every document key of a collection.
pub fn collection_prefix(collection: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(collection.len() + 20);
    k.push(b'd');
    k.extend_from_slice(collection.as_bytes());
    k.push(0);
    k
}

/// Checks a collection name: 1 to 128 bytes, no NUL. Names starting with
/// `_` are reserved for Aurora's system collections (such as `_jobs`): the
/// `Aurora` handle refuses them for user collections; the layers below
/// accept them, since that is how system collections are made.
pub fn validate_collection_name(name: &str) -> Result<()> {
    match aurora_core::names::validate_collection_name(name) {
        Err(aurora_core::CoreError::InvalidName { name, reason, .. }) => {
            Err(StorageError::InvalidName { name, reason })
        }
        other => Ok(other?),
    }
}

impl DocumentStore {
    /// Opens a store at `dir` and wraps it.
    pub fn open(dir: impl AsRef<Path>, store: StoreConfig, docs: DocumentStoreConfig) -> Result<Self> {
        Ok(Self::new(Store::open(dir, store)?, docs))
    }

    /// Wraps an open store.
    pub fn new(store: Store, config: DocumentStoreConfig) -> Self {
        let stripes: Vec<Mutex<()>> = (0..STRIPES).map(|_| Mutex::new(())).collect();
        Self {
            store,
            cache: Arc::new(HotCache::new(config.hot_cache_size_mb << 20, config.eviction_policy)),
            stripes: stripes.into(),
            ttl: config.cache_ttl,
        }
    }

    /// What every write path checks first, before the document is copied
    /// or encoded: a valid id and nesting within
    /// [`MAX_NESTING_DEPTH`](aurora_core::MAX_NESTING_DEPTH)
    /// ([`Document::validate`], a [`StorageError::Core`]), and an encoded
    /// size within [`StoreConfig::max_value_bytes`](crate::StoreConfig)
    /// ([`StorageError::TooLarge`] with `what: "document"`; the size is
    /// found by encoding into a counter that stops at the limit).
    ///
    /// Takes the document and gives it back: a refused one is dropped
    /// without recursion ([`aurora_core::dispose_document`]), since a caller
    /// can build one nested deeper than the stack can drop.
    pub fn admit(&self, doc: Document) -> Result<Document> {
        match self.check(&doc) {
            Ok(()) => Ok(doc),
            Err(e) => {
                aurora_core::dispose_document(doc);
                Err(e)
            }
        }
    }

    /// [`DocumentStore::admit`] for a shared document: a refused one is
    /// disposed of without recursion if this was its last reference.
    pub fn admit_shared(&self, doc: Arc<Document>) -> Result<Arc<Document>> {
        match self.check(&doc) {
            Ok(()) => Ok(doc),
            Err(e) => {
                if let Ok(doc) = Arc::try_unwrap(doc) {
                    aurora_core::dispose_document(doc);
                }
                Err(e)
            }
        }
    }

    /// [`DocumentStore::admit`], keeping the document's stored bytes as
    /// well: the size check encodes it anyway, so a caller that writes it
    /// with [`DocumentWrites::insert_admitted`] serializes it once.
    ///
    /// # Errors
    /// As [`DocumentStore::admit`].
    pub fn admit_encoded(&self, doc: Document) -> Result<Admitted> {
        let checked = doc
            .validate()
            .map_err(StorageError::from)
            .and_then(|()| format::encode_within(&doc, self.store().config().max_value_bytes, "document"));
        match checked {
            Ok(stored) => Ok(Admitted { doc: Arc::new(doc), stored }),
            Err(e) => {
                aurora_core::dispose_document(doc);
                Err(e)
            }
        }
    }

    /// The checks of [`DocumentStore::admit`].
    fn check(&self, doc: &Document) -> Result<()> {
        doc.validate()
            .map_err(StorageError::from)
            .and_then(|()| format::check_encoded_len(doc, self.store().config().max_value_bytes, "document").map(drop))
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Hot-cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Drops expired cache entries; returns how many.
    pub fn purge_expired(&self) -> usize {
        self.cache.purge_expired()
    }

    fn stripe(&self, key: &[u8]) -> &Mutex<()> {
        &self.stripes[stripe_index(key, self.stripes.len())]
    }

    /// The commit hook of a batch: caches each written document (`None`:
    /// deleted) at the commit's revision, then runs the batch's own hooks.
    /// One hook per batch, whatever its size.
    fn commit_hook(&self, cached: Vec<(Vec<u8>, Cached, usize)>, after: Vec<CommitHook>) -> CommitHook {
        let (cache, stripes, ttl) = (Arc::clone(&self.cache), Arc::clone(&self.stripes), self.ttl);
        Box::new(move |rev| {
            for (key, value, size) in cached {
                let _order = stripes[stripe_index(&key, stripes.len())].lock();
                cache.insert(&key, value, size, rev, ttl);
            }
            after.into_iter().for_each(|h| h(rev));
        })
    }

    /// Inserts or replaces a document; returns the commit revision.
    pub fn put(&self, collection: &str, doc: &Document) -> Result<Revision> {
        self.put_many(collection, std::slice::from_ref(doc))
    }

    /// Inserts or replaces documents in one atomic batch.
    pub fn put_many(&self, collection: &str, docs: &[Document]) -> Result<Revision> {
        let mut writes = DocumentWrites::new();
        for doc in docs {
            writes.put(collection, doc)?;
        }
        self.commit(writes)?.into_result()
    }

    /// Deletes a document (deleting an absent one is not an error).
    pub fn delete(&self, collection: &str, id: &DocId) -> Result<Revision> {
        let mut writes = DocumentWrites::new();
        writes.delete(collection, id)?;
        self.commit(writes)?.into_result()
    }

    /// Commits document writes together with whatever else their batch
    /// carries (index entries, conditions), updating the hot cache in
    /// commit order if it commits.
    pub fn commit(&self, writes: DocumentWrites) -> Result<CommitOutcome> {
        let DocumentWrites { batch, cached, after } = writes;
        self.store.commit_with(batch, Some(self.commit_hook(cached, after)))
    }

    /// The document, from the hot cache or the cold store.
    pub fn get(&self, collection: &str, id: &DocId) -> Result<Option<Arc<Document>>> {
        Ok(self.get_versioned(collection, id)?.1)
    }

    /// The document with the revision that wrote it (`0` when absent): the
    /// revision to put in a [`Batch::require_revision`] condition for a
    /// read-modify-write.
    pub fn get_versioned(&self, collection: &str, id: &DocId) -> Result<(Revision, Option<Arc<Document>>)> {
        if self.store.is_closed() {
            return Err(StorageError::Closed);
        }
        if let Some((hit, rev)) = with_document_key(collection, id, |key| self.cache.get_versioned(key)) {
            return Ok(live(rev, hit));
        }
        let key = document_key(collection, id);
        let _order = self.stripe(&key).lock();
        if let Some((hit, rev)) = self.cache.peek_versioned(&key) {
            return Ok(live(rev, hit));
        }
        let (rev, doc) = match self.store.get_versioned(&key)? {
            Some((rev, raw)) => (rev, Some(Arc::new(format::decode::<Document>(&key, &raw)?))),
            None => (0, None),
        };
        let size = doc.as_ref().map_or(0, |d| d.approx_size());
        self.cache.insert(&key, doc.clone(), size, rev, self.ttl);
        Ok((rev, doc))
    }

    /// The document under `key` as `snapshot` sees it, with the revision
    /// that wrote it (`0` when absent).
    ///
    /// Served from the hot cache without touching the store when that is
    /// exact: every document write updates the cache in its commit hook,
    /// in revision order, and promotion is ordered against those hooks, so
    /// once all hooks up to the snapshot have run, a cached version not
    /// newer than the snapshot is the snapshot's version. Otherwise (newer
    /// cached version, a miss, or hooks still running) the snapshot reads
    /// the store and its history.
    pub fn snapshot_versioned(&self, snapshot: &Snapshot, key: &[u8]) -> Result<(Revision, Cached)> {
        let at = snapshot.revision();
        if self.store.hooks_done() >= at {
            if let Some((doc, rev)) = self.cache.peek_versioned(key) {
                if rev <= at {
                    return Ok(live(rev, doc));
                }
            }
        }
        match snapshot.get_versioned(key)? {
            Some((rev, raw)) => {
                let doc = match self.cached_at(key, rev) {
                    Some(doc) => doc,
                    None => Arc::new(format::decode::<Document>(key, &raw)?),
                };
                Ok((rev, Some(doc)))
            }
            None => Ok((0, None)),
        }
    }

    /// The cached decoded document for a storage key, if the cache holds
    /// exactly the version written at `revision` (lets snapshot readers skip
    /// decoding what is already in memory).
    pub fn cached_at(&self, key: &[u8], revision: Revision) -> Option<Arc<Document>> {
        match self.cache.peek_versioned(key) {
            Some((Some(doc), rev)) if rev == revision => Some(doc),
            _ => None,
        }
    }

    /// Every document of a collection, in id order, read from the cold store.
    pub fn scan(&self, collection: &str) -> Result<impl Iterator<Item = Result<Document>>> {
        validate_collection_name(collection)?;
        let iter = self.store.scan_prefix(&collection_prefix(collection))?;
        Ok(iter.map(|item| item.and_then(|(k, v)| format::decode::<Document>(&k, &v))))
    }
}

impl DocumentStore {
    /// The ids of a collection's documents, in id order, read from the keys
    /// alone: a document whose stored body cannot be decoded (a damaged
    /// file) is still listed, so it can be removed by id.
    ///
    /// # Errors
    /// A key that does not hold a valid id is [`StorageError::Corrupt`].
    pub fn scan_ids(&self, collection: &str) -> Result<impl Iterator<Item = Result<DocId>>> {
        validate_collection_name(collection)?;
        let prefix = collection_prefix(collection);
        let iter = self.store.scan_prefix(&prefix)?;
        Ok(iter.map(move |item| {
            item.and_then(|(k, _)| {
                DocId::from_key_bytes(&k[prefix.len()..]).map_err(|e| StorageError::Corrupt {
                    key: crate::printable_key(&k),
                    reason: format!("a document key without a valid id: {e}"),
                })
            })
        }))
    }
}

/// A cached entry's live revision: absent documents count as revision 0.
fn live(rev: Revision, doc: Cached) -> (Revision, Cached) {
    (if doc.is_some() { rev } else { 0 }, doc)
}

/// A document that passed [`DocumentStore::admit_encoded`]'s entry check,
/// shared (`Arc`) and with the stored bytes the check encoded; written by
/// [`DocumentWrites::insert_admitted`]. Made only by the check, so the
/// bytes cannot differ from the document — a caller cannot pair other
/// bytes with it:
///
/// ```compile_fail
/// use aurora_storage::Admitted;
/// let doc = std::sync::Arc::new(aurora_core::Document::new());
/// let forged = Admitted { doc, stored: b"not the document".to_vec() };
/// ```
#[derive(Debug, Clone)]
pub struct Admitted {
    doc: Arc<Document>,
    stored: Vec<u8>,
}

impl Admitted {
    /// The admitted document (the allocation the commit shares with the
    /// hot cache and the change record).
    pub fn doc(&self) -> &Arc<Document> {
        &self.doc
    }
}

/// Document writes being assembled into one atomic batch; the batch is
/// open for other writes and conditions that must commit with them.
#[derive(Default)]
pub struct DocumentWrites {
    batch: Batch,
    /// Documents to cache at commit, with their cache charge (measured
    /// here, off the commit leader's path).
    cached: Vec<(Vec<u8>, Cached, usize)>,
    after: Vec<CommitHook>,
}

impl DocumentWrites {
    /// No writes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an insert-or-replace of `doc`.
    pub fn put(&mut self, collection: &str, doc: &Document) -> Result<&mut Self> {
        validate_collection_name(collection)?;
        self.put_shared(collection, &Arc::new(doc.clone()))
    }

    /// Like [`DocumentWrites::put`] with a shared document: the hot cache
    /// gets the same allocation at commit instead of a copy.
    pub fn put_shared(&mut self, collection: &str, doc: &Arc<Document>) -> Result<&mut Self> {
        validate_collection_name(collection)?;
        let key = document_key(collection, &doc.id);
        self.batch.put(key.clone(), format::encode(&**doc)?);
        self.cached.push((key, Some(Arc::clone(doc)), doc.approx_size()));
        Ok(self)
    }

    /// Adds an insert of a new document: a put of `doc`, conditioned on its
    /// id being absent at commit (a failed condition names its
    /// [`document_key`]). The absence of a new id above every id of the
    /// collection is known without a read ([`Batch::require_new`] with the
    /// [`document_key_scope`]): ids made by [`DocId::new`] (UUID v7) grow
    /// with the clock.
    pub fn insert_new(&mut self, collection: &str, doc: &Arc<Document>) -> Result<&mut Self> {
        let stored = format::encode(&**doc)?;
        self.insert_admitted(collection, Admitted { doc: Arc::clone(doc), stored })
    }

    /// [`DocumentWrites::insert_new`] of a document that passed
    /// [`DocumentStore::admit_encoded`]: the bytes its check encoded are
    /// stored, without encoding it again. Only `admit_encoded` makes an
    /// [`Admitted`], so the bytes are always the document's own.
    ///
    /// # Errors
    /// As [`DocumentWrites::insert_new`].
    pub fn insert_admitted(&mut self, collection: &str, admitted: Admitted) -> Result<&mut Self> {
        validate_collection_name(collection)?;
        let Admitted { doc, stored } = admitted;
        let key = document_key(collection, &doc.id);
        self.batch.put(key.clone(), stored);
        self.batch.require_new(key.clone(), document_key_scope(collection));
        let size = doc.approx_size();
        self.cached.push((key, Some(doc), size));
        Ok(self)
    }

    /// Conditions the batch on the document's live version having been
    /// written at `revision` (`0`: absent) when it commits.
    pub fn require_revision_of(&mut self, collection: &str, id: &DocId, revision: Revision) -> &mut Self {
        self.batch.require_revision(document_key(collection, id), revision);
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, collection: &str, id: &DocId) -> Result<&mut Self> {
        validate_collection_name(collection)?;
        let key = document_key(collection, id);
        self.batch.delete(key.clone());
        self.cached.push((key, None, 0));
        Ok(self)
    }

    /// The batch, for writes and conditions that must commit atomically
    /// with the documents.
    pub fn batch_mut(&mut self) -> &mut Batch {
        &mut self.batch
    }

    /// Runs `hook` with the revision if the batch commits, after the cache
    /// is updated, in commit order with every other commit's hooks.
    pub fn on_commit(&mut self, hook: CommitHook) -> &mut Self {
        self.after.push(hook);
        self
    }
}

impl std::fmt::Debug for DocumentWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentWrites").field("batch", &self.batch).field("hooks", &self.after.len()).finish()
    }
}

/// FNV-1a of the key, modulo the stripe count.
fn stripe_index(key: &[u8], n: usize) -> usize {
    let h = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    (h as usize) % n
}

impl std::fmt::Debug for DocumentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentStore").field("store", &self.store).field("cache", &self.cache).finish()
    }
}
