//! [`Aurora`]: the database handle.

use crate::config::AuroraConfig;
use crate::error::{Error, Result};
use crate::events::FeedScope;
use crate::transaction::Transaction;
use aurora_core::{DocId, Document, FieldDefinition, Update};
use aurora_index::{Collections, IndexStats, Schema};
use aurora_pubsub::{ChangeEvent, CommitEvents, EventFilter, Listener, PubSub};
use aurora_query::{ComputedFields, Expression};
use aurora_storage::{DocumentStore, Durability};
use aurora_txn::{ChangeSink, Database, NoSink};
use serde::{de::DeserializeOwned, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// An open Aurora database: a cheap, cloneable handle (`Clone + Send +
/// Sync`) to use from any number of tokio tasks.
///
/// Every write is a transaction through one commit pipeline; a single
/// document write is a one-operation transaction. Durable commits in
/// `Strict` mode wait for their fsync on tokio's blocking pool, never on a
/// runtime worker — except a single write or a transaction's commit driven
/// by a multi-thread runtime's `block_on`, whose calling thread runs no
/// task: it waits on that thread and skips the pool's two thread hand-offs
/// (the other futures that `block_on` polls wait for it meanwhile).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> aurora::Result<()> {
/// use aurora::{doc, Aurora, FieldDefinition, FieldType};
/// let db = Aurora::temporary().await?;
/// db.new_collection("users", [("email", FieldDefinition::new(FieldType::String).unique())]).await?;
/// let id = db.insert_into("users", doc! { "email": "ada@x.io", "name": "Ada" }).await?;
/// let ada = db.get_document("users", &id).await?.expect("stored");
/// assert_eq!(ada.get("name").and_then(|v| v.as_str()), Some("Ada"));
/// db.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Aurora {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    pubsub: PubSub,
    computed: Arc<ComputedFields>,
    /// Time-to-live rules and their clock.
    expiry: Arc<crate::ttl::Expiry>,
    config: AuroraConfig,
    /// Owned background tasks (cache purge, feed trim), aborted on close/drop.
    cleanup: parking_lot::Mutex<Vec<JoinHandle<()>>>,
    /// Job queues opened with [`Aurora::workers`], shut down on close.
    #[cfg(feature = "workers")]
    workers: parking_lot::Mutex<Vec<aurora_workers::Workers>>,
    /// Full-text search indexes, closed before the store.
    #[cfg(feature = "search")]
    search: crate::search::Registry,
    /// Kept until the handle drops, for [`Aurora::temporary`]. Declared
    /// last: the store closes before the folder is removed.
    _temporary: Option<tempfile::TempDir>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.cleanup.lock().drain(..) {
            task.abort();
        }
        #[cfg(feature = "search")]
        self.search.close();
        if let Err(e) = self.db.collections().documents().store().close() {
            tracing::error!(error = %e, "closing the database on drop failed");
        }
        // Listeners and live queries end (`Closed`) instead of waiting forever.
        self.pubsub.close();
    }
}

/// How often the change feed is trimmed to its retention.
const FEED_TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Summary of one collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionStats {
    /// Documents.
    pub count: u64,
    /// Bytes of encoded documents.
    pub bytes: u64,
    /// Each index.
    pub indexes: Vec<IndexStats>,
}

/// Refuses a user collection name starting with `_` (system collections).
pub(crate) fn refuse_reserved(name: &str) -> Result<()> {
    if name.starts_with('_') {
        return Err(Error::Storage(aurora_storage::StorageError::InvalidName {
            name: name.chars().take(64).collect(),
            reason: "names starting with `_` are reserved for system collections (such as `_jobs`)",
        }));
    }
    Ok(())
}

/// Runs blocking work on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Task(e.to_string()))?
}

/// Whether this future is driven by a multi-thread runtime's `block_on` on
/// the caller's own thread: outside every task (so not on a runtime worker,
/// and not in the blocking pool) of a runtime whose tasks all run on other
/// threads — a synchronous caller's thread, which runs no task. A `Strict`
/// commit waits for its fsync there, saving the blocking pool's two thread
/// hand-offs (the pool thread woken, then the caller), which cost about as
/// much as the commit's own work (measured in
/// `benches/examples/write_path.rs`, `strict1`). A current-thread runtime's
/// `block_on` thread runs that runtime's tasks, so it never qualifies.
///
/// What waits with it: the other futures that same `block_on` polls (the
/// siblings of a `join!`/`select!` in it, and the local tasks of a
/// `LocalSet` it drives) wait for that one commit — about the fsync's
/// time. tokio has no public way to tell a `LocalSet` apart; code that must
/// never wait for a commit runs its writes in a task (`tokio::spawn`),
/// which always takes the pool.
pub(crate) fn on_callers_thread() -> bool {
    tokio::task::try_id().is_none()
        && tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// Runs a `Strict` commit on the caller's own thread when it only waits
/// for it ([`on_callers_thread`]), otherwise on tokio's blocking pool. A
/// panic in `f` is [`Error::Task`] either way, as the pool reports it.
pub(crate) async fn blocking_here_or_pool<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    if on_callers_thread() {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .unwrap_or_else(|panic| Err(Error::Task(format!("the write panicked: {}", panic_message(&*panic)))))
    } else {
        blocking(f).await
    }
}

/// The message of a caught panic (a `&str` or `String` payload).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

impl Aurora {
    /// Opens (or creates) the database in `path` with default settings.
    pub async fn open(path: impl Into<std::path::PathBuf>) -> Result<Self> {
        Self::with_config(AuroraConfig::new(path)).await
    }

    /// Opens with a configuration; invalid settings are refused, naming the setting.
    pub async fn with_config(config: AuroraConfig) -> Result<Self> {
        Self::open_inner(config, None, Arc::new(NoSink)).await
    }

    /// Opens with a [`ChangeSink`] that receives every commit's changes in
    /// commit order.
    pub async fn with_sink(config: AuroraConfig, sink: Arc<dyn ChangeSink>) -> Result<Self> {
        Self::open_inner(config, None, sink).await
    }

    /// A throw-away on-disk database in a fresh temporary folder, removed
    /// when the last handle drops (for tests and examples).
    pub async fn temporary() -> Result<Self> {
        let dir = tempfile::tempdir().map_err(|e| {
            Error::Storage(aurora_storage::StorageError::Io {
                context: "creating a temporary database folder".into(),
                source: e,
            })
        })?;
        let config = AuroraConfig::new(dir.path());
        Self::open_inner(config, Some(dir), Arc::new(NoSink)).await
    }

    async fn open_inner(
        config: AuroraConfig,
        temporary: Option<tempfile::TempDir>,
        user_sink: Arc<dyn ChangeSink>,
    ) -> Result<Self> {
        config.validate()?;
        let pubsub = PubSub::new(config.event_buffer);
        let sink: Arc<dyn ChangeSink> = Arc::new(crate::events::EventSink { pubsub: pubsub.clone(), next: user_sink });
        let cfg = config.clone();
        let (db, computed, expiry) = blocking(move || {
            let _span = tracing::info_span!("open", path = %cfg.path.display()).entered();
            let docs = DocumentStore::open(&cfg.path, cfg.store_config(), cfg.document_config())?;
            let computed = ComputedFields::load(docs.store())?;
            let collections = Collections::open(docs, cfg.index_config())?;
            let feed = cfg.change_feed_retention > 0;
            let db = Database::with_options(collections, sink, cfg.isolation, feed);
            let expiry = crate::ttl::Expiry::load(&db, cfg.expiry_clock.clone())?;
            Ok((db, Arc::new(computed), Arc::new(expiry)))
        })
        .await?;
        let cleanup = {
            let docs = db.collections().documents().clone();
            let every = Duration::from_secs(config.hot_cache_cleanup_interval_secs);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    docs.purge_expired();
                }
            })
        };
        let feed_trim = (config.change_feed_retention > 0).then(|| {
            let (db, retention) = (db.clone(), config.feed_retention());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(FEED_TRIM_INTERVAL);
                // The first tick is immediate: skip it, so opening does not
                // also load the feed's index (close trims anyway).
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let db = db.clone();
                    let trimmed = tokio::task::spawn_blocking(move || db.trim_feed_to(&retention)).await;
                    if let Ok(Err(e)) = trimmed {
                        tracing::warn!(error = %e, "trimming the change feed failed");
                    }
                }
            })
        });
        let expire = (!config.expiry_interval.is_zero()).then(|| {
            let (db, expiry, every) = (db.clone(), Arc::clone(&expiry), config.expiry_interval);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let (db, expiry) = (db.clone(), Arc::clone(&expiry));
                    match tokio::task::spawn_blocking(move || expiry.expire(&db)).await {
                        Ok(Err(Error::Closed)) => break,
                        Ok(Err(e)) => tracing::warn!(error = %e, "expiring documents failed"),
                        _ => {}
                    }
                }
            })
        });
        let aurora = Self {
            inner: Arc::new(Inner {
                db,
                pubsub,
                computed,
                expiry,
                config,
                cleanup: parking_lot::Mutex::new(vec![cleanup].into_iter().chain(feed_trim).chain(expire).collect()),
                #[cfg(feature = "workers")]
                workers: parking_lot::Mutex::new(Vec::new()),
                #[cfg(feature = "search")]
                search: crate::search::Registry::default(),
                _temporary: temporary,
            }),
        };
        #[cfg(feature = "search")]
        crate::search::open_all(&aurora).await?;
        Ok(aurora)
    }

    /// The search indexes of this database.
    #[cfg(feature = "search")]
    pub(crate) fn search_indexes(&self) -> &crate::search::Registry {
        &self.inner.search
    }

    /// The configuration this database was opened with.
    pub fn config(&self) -> &AuroraConfig {
        &self.inner.config
    }

    /// What recovery found and did when this database was opened: the
    /// records replayed, a torn tail cut, and what a salvaging open
    /// ([`WalRecovery::KeepValidPrefix`](crate::WalRecovery)) dropped.
    pub fn recovery_report(&self) -> &aurora_storage::RecoveryReport {
        self.collections().documents().store().recovery_report()
    }

    /// The synchronous core (collections, transactions, the store).
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    fn collections(&self) -> &Collections {
        self.inner.db.collections()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.collections().documents().store().is_closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn strict(&self) -> bool {
        self.inner.config.effective_durability() == Durability::Strict
    }

    /// Runs a write: inline when it cannot block for long; when it waits
    /// for an fsync, on the blocking pool — or on the caller's thread when
    /// that thread only waits for it ([`on_callers_thread`]).
    async fn write<T: Send + 'static>(&self, f: impl FnOnce(&Database) -> Result<T> + Send + 'static) -> Result<T> {
        self.check_open()?;
        if self.strict() {
            let db = self.inner.db.clone();
            blocking_here_or_pool(move || f(&db)).await
        } else {
            f(&self.inner.db)
        }
    }

    /// Like [`Aurora::write`], always on the blocking pool (a batch or a
    /// whole collection's worth of work: on the caller's thread it would
    /// hold up whatever else that thread's `block_on` polls for as long).
    pub(crate) async fn write_heavy<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.check_open()?;
        let db = self.inner.db.clone();
        blocking(move || f(&db)).await
    }

    /// Stops taking writes, applies and checkpoints everything, and releases
    /// the folder. Every later call fails with [`Error::Closed`]; listeners
    /// and live queries receive what was committed, then end
    /// (`RecvError::Closed` / `WatchError::Closed`). Job queues
    /// opened with `workers` are shut down first (running jobs get their
    /// `shutdown_timeout`).
    pub async fn close(&self) -> Result<()> {
        #[cfg(feature = "workers")]
        let mut first_error = None;
        #[cfg(feature = "workers")]
        {
            let workers: Vec<_> = self.inner.workers.lock().drain(..).collect();
            for w in workers {
                if let Err(e) = w.shutdown().await {
                    first_error.get_or_insert(Error::from(e));
                }
            }
        }
        for task in self.inner.cleanup.lock().drain(..) {
            task.abort();
        }
        #[cfg(feature = "search")]
        self.inner.search.close();
        let trimmed =
            if self.inner.config.change_feed_retention > 0 && !self.collections().documents().store().is_closed() {
                // Apply the retention once more, so the folder left behind is trimmed.
                let (db, retention) = (self.inner.db.clone(), self.inner.config.feed_retention());
                blocking(move || Ok(db.trim_feed_to(&retention)?)).await.map(drop)
            } else {
                Ok(())
            };
        let store = self.collections().documents().store().clone();
        let closed = blocking(move || Ok(store.close()?)).await;
        // After the store: every committed event has been published. On
        // every path, so no listener or live query waits forever.
        self.inner.pubsub.close();
        trimmed?;
        closed?;
        #[cfg(feature = "workers")]
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(())
    }

    // ---- collections ------------------------------------------------------

    /// Creates a collection with the given fields (`indexed`/`unique`
    /// fields get indexes). An empty field list makes a schemaless collection.
    pub async fn new_collection<N: Into<String>>(
        &self,
        name: &str,
        fields: impl IntoIterator<Item = (N, FieldDefinition)>,
    ) -> Result<()> {
        let schema = fields.into_iter().fold(Schema::new(), |s, (n, d)| s.field(n, d));
        self.new_collection_with_schema(name, schema).await
    }

    /// Creates a collection with a full [`Schema`] (e.g. a strict one).
    pub async fn new_collection_with_schema(&self, name: &str, schema: Schema) -> Result<()> {
        refuse_reserved(name)?;
        let name = name.to_string();
        self.write(move |db| Ok(db.collections().create_collection(&name, schema)?)).await
    }

    /// Creates the collection unless it exists — the call every program
    /// start can make. Returns `true` if it created it, `false` if a
    /// collection of that name already had exactly this schema.
    ///
    /// # Errors
    /// [`Error::Index`] with `InvalidSchema` when the existing collection's
    /// schema differs (nothing is changed: a schema is evolved explicitly,
    /// with [`Aurora::evolve_collection`], never by a start-up call that
    /// happens to declare another one); the errors of
    /// [`Aurora::new_collection`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> aurora::Result<()> {
    /// use aurora::{Aurora, FieldDefinition, FieldType};
    /// let db = Aurora::temporary().await?;
    /// let fields = || [("room", FieldDefinition::new(FieldType::String).indexed())];
    /// assert!(db.ensure_collection("messages", fields()).await?);
    /// assert!(!db.ensure_collection("messages", fields()).await?, "the second start finds it");
    /// # Ok(()) }
    /// ```
    pub async fn ensure_collection<N: Into<String>>(
        &self,
        name: &str,
        fields: impl IntoIterator<Item = (N, FieldDefinition)>,
    ) -> Result<bool> {
        let schema = fields.into_iter().fold(Schema::new(), |s, (n, d)| s.field(n, d));
        self.ensure_collection_with_schema(name, schema).await
    }

    /// [`Aurora::ensure_collection`] with a full [`Schema`].
    pub async fn ensure_collection_with_schema(&self, name: &str, schema: Schema) -> Result<bool> {
        match self.new_collection_with_schema(name, schema.clone()).await {
            Ok(()) => Ok(true),
            Err(Error::CollectionExists(_)) => {
                let existing = self.collections().definition_shared(name)?;
                // Compound indexes are not stored with the schema: the
                // declared ones must exist, as declared.
                let compounds_exist = schema.compound_indexes.iter().all(|(fields, unique)| {
                    let index = existing.indexes.get(&aurora_index::compound::compound_name(fields));
                    index.is_some_and(|i| i.unique == *unique)
                });
                let declared = Schema { compound_indexes: Vec::new(), ..schema };
                if existing.schema == declared && compounds_exist {
                    Ok(false)
                } else {
                    Err(Error::Index(aurora_index::IndexError::InvalidSchema {
                        collection: name.to_string(),
                        reason: "the collection exists with a different schema; it is left as it is \
                                 (read it with `db.schema(name)`, change it with `db.evolve_collection`)"
                            .into(),
                    }))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a collection with its documents and indexes.
    ///
    /// The documents are deleted first in transactions of up to 500, so
    /// listeners, live queries and the change feed see a `Delete` for each;
    /// then the definition and whatever a concurrent writer added meanwhile
    /// go (those without events — writers see `UnknownCollection` from the
    /// moment the definition is gone).
    pub async fn drop_collection(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        #[cfg(feature = "search")]
        let dropped = name.clone();
        let expiry = Arc::clone(&self.inner.expiry);
        // Whole-collection work: on the blocking pool.
        self.write_heavy(move |db| {
            // Deleted in transactions, so listeners, live queries and the
            // feed hear every document go. Ids come from the keys: a
            // document whose stored body cannot be decoded (a damaged
            // file) cannot be deleted that way; it is left to the index
            // layer's drop below, which removes documents without reading
            // them (no event: nobody could ever read it).
            let mut damaged: std::collections::HashSet<DocId> = std::collections::HashSet::new();
            loop {
                let ids: Vec<DocId> = db
                    .collections()
                    .documents()
                    .scan_ids(&name)?
                    .filter(|id| id.as_ref().map_or(true, |id| !damaged.contains(id)))
                    .take(500)
                    .collect::<std::result::Result<_, _>>()?;
                if ids.is_empty() {
                    break;
                }
                let chunk = db.transaction(|tx| ids.iter().try_for_each(|id| tx.delete(&name, id).map(drop)));
                match chunk {
                    Ok(()) => {}
                    Err(e) if undecodable(&e) => {
                        for id in ids {
                            match db.transaction(|tx| tx.delete(&name, &id)) {
                                Ok(_) => {}
                                Err(e) if undecodable(&e) => {
                                    damaged.insert(id);
                                }
                                Err(e) => return Err(e.into()),
                            }
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if !damaged.is_empty() {
                tracing::warn!(collection = %name, documents = damaged.len(),
                    "dropping documents that cannot be decoded (damaged), without change events");
            }
            db.collections().drop_collection(&name)?;
            // Its time to live goes with it.
            expiry.forget(db, &name)
        })
        .await?;
        // And its search index (a collection created later under the name
        // starts without one).
        #[cfg(feature = "search")]
        self.drop_search_index(&dropped).await?;
        Ok(())
    }

    /// Collection names, sorted.
    pub fn list_collections(&self) -> Result<Vec<String>> {
        self.check_open()?;
        Ok(self.collections().list_collections())
    }

    /// Document count, bytes and index statistics (scans the collection).
    pub async fn collection_stats(&self, name: &str) -> Result<CollectionStats> {
        self.check_open()?;
        let (count, bytes) = self.collections().documents().scan(name)?.try_fold((0u64, 0u64), |(c, b), d| {
            d.map(|d| (c + 1, b + aurora_storage::format::encode(&d).map_or(0, |e| e.len() as u64)))
        })?;
        Ok(CollectionStats { count, bytes, indexes: self.collections().index_stats(name)? })
    }

    /// Starts building an index on a (possibly populated) collection in the
    /// background; it serves reads once complete. Waits for completion.
    pub async fn create_index(&self, collection: &str, field: &str, unique: bool) -> Result<()> {
        self.check_open()?;
        let build = self.collections().create_index(collection, field, unique)?;
        blocking(move || Ok(build.wait()?)).await
    }

    /// Drops the index on `field` (its entries and unique claims go with
    /// it); a build of it still running ends. A field the schema declares
    /// stays declared, with `indexed` and `unique` cleared.
    ///
    /// # Errors
    /// `Error::Index(NoIndex)` if there is no such index;
    /// [`Error::UnknownCollection`].
    pub async fn drop_index(&self, collection: &str, field: &str) -> Result<()> {
        let (collection, field) = (collection.to_string(), field.to_string());
        self.write(move |db| Ok(db.collections().drop_index(&collection, &field)?)).await
    }

    /// Drops the compound index over `fields` (in its order), with its
    /// entries and unique claims; a build of it still running ends. Its
    /// fields stay declared. A compound index and an index on one field
    /// never share a name, whatever characters the field names hold.
    ///
    /// # Errors
    /// `Error::Index(NoIndex)` if there is no such index;
    /// [`Error::UnknownCollection`].
    pub async fn drop_compound_index(&self, collection: &str, fields: &[&str]) -> Result<()> {
        let collection = collection.to_string();
        let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        self.write(move |db| Ok(db.collections().drop_compound_index(&collection, &fields)?)).await
    }

    /// Builds a compound index over `fields` (2 to 8 distinct paths, in
    /// this order) on a possibly populated collection, online like
    /// [`Aurora::create_index`]; waits for completion. It serves an
    /// equality on its leading fields plus a range and/or the order of the
    /// next one, e.g. `(room, at)` for "the last 20 messages of a room".
    /// Missing fields are indexed as `null`, arrays as whole values. Bad
    /// fields are an error and change nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> aurora::Result<()> {
    /// use aurora::{doc, Access, Aurora, FieldDefinition, FieldType, Order};
    /// let db = Aurora::temporary().await?;
    /// db.new_collection("messages", [("room", FieldDefinition::new(FieldType::String)),
    ///                                ("at", FieldDefinition::new(FieldType::Int))]).await?;
    /// db.insert_many("messages", (0..100).map(|i| doc! { "room": format!("r{}", i % 5), "at": i }).collect()).await?;
    /// db.create_compound_index("messages", &["room", "at"], false).await?;
    /// let plan = db.query("messages").filter(|f| f.eq("room", "r3")).order_by("at", Order::Desc).limit(5).explain().await?;
    /// assert!(matches!(plan.access, Access::Compound { .. }), "{plan:?}");
    /// assert_eq!(plan.examined_rows, 5);
    /// # Ok(()) }
    /// ```
    pub async fn create_compound_index(&self, collection: &str, fields: &[&str], unique: bool) -> Result<()> {
        self.check_open()?;
        let build = self.collections().create_compound_index(collection, fields, unique)?;
        blocking(move || Ok(build.wait()?)).await
    }

    // ---- documents --------------------------------------------------------

    /// The entry check (id, nesting, size), done first: before the document
    /// is cloned for the transaction (which may retry), encoded, or given a
    /// feed entry.
    fn admit(&self, doc: Document) -> Result<Document> {
        Ok(self.collections().documents().admit(doc)?)
    }

    /// Inserts a document; returns its id.
    pub async fn insert_into(&self, collection: &str, doc: Document) -> Result<DocId> {
        let collection = collection.to_string();
        if let Some(expired) = self.expired_check(&collection) {
            // Shared, not copied, for each attempt: the transaction hands
            // the same allocation to the hot cache and the change record.
            let doc = Arc::new(self.admit(doc)?);
            // An expired document under this id is absent for the insert.
            return self
                .transaction(move |tx| {
                    expired.clear(tx, &collection, &doc.id)?;
                    Ok(tx.insert_shared(&collection, Arc::clone(&doc))?)
                })
                .await;
        }
        // The batched insert path (no transaction: an insert reads
        // nothing); it makes the entry check first.
        self.write(move |db| Ok(db.insert(&collection, doc)?)).await
    }

    /// For a collection with a time to live: what its writes need to treat
    /// an expired document as absent, as reads do.
    fn expired_check(&self, collection: &str) -> Option<crate::ttl::ExpiredCheck> {
        self.inner
            .expiry
            .rule(collection)
            .map(|rule| crate::ttl::ExpiredCheck { rule, now: self.inner.expiry.time.now() })
    }

    /// Inserts documents in one atomic transaction; returns their ids.
    pub async fn insert_many(&self, collection: &str, docs: Vec<Document>) -> Result<Vec<DocId>> {
        // A batch is long work — its entry checks too: on the blocking pool
        // whatever the durability, in one hop. The batched insert path
        // makes the entry checks first and commits the documents as one
        // transaction would.
        let collection = collection.to_string();
        if let Some(expired) = self.expired_check(&collection) {
            // As `insert_into`: an expired document under one of these ids
            // is absent for the insert — a transaction clears it first.
            let mut admitted = Vec::with_capacity(docs.len());
            let mut rest = docs.into_iter();
            for doc in rest.by_ref() {
                match self.admit(doc) {
                    Ok(doc) => admitted.push(Arc::new(doc)),
                    Err(e) => {
                        // The rest may be nested too deep for an ordinary drop.
                        aurora_core::dispose_all(rest);
                        return Err(e);
                    }
                }
            }
            let docs = admitted;
            return self
                .transaction(move |tx| {
                    for doc in &docs {
                        expired.clear(tx, &collection, &doc.id)?;
                        tx.insert_shared(&collection, Arc::clone(doc))?;
                    }
                    Ok(docs.iter().map(|d| d.id.clone()).collect())
                })
                .await;
        }
        self.write_heavy(move |db| Ok(db.insert_many(&collection, docs)?)).await
    }

    /// The document, if present (from the hot cache when it can) and not
    /// expired ([`Aurora::set_ttl`]).
    pub async fn get_document(&self, collection: &str, id: &DocId) -> Result<Option<Arc<Document>>> {
        self.check_open()?;
        let found = self.collections().get(collection, id)?;
        Ok(match (found, self.inner.expiry.rule(collection)) {
            (Some(d), Some(rule)) if rule.has_expired(&d, self.inner.expiry.time.now()) => None,
            (found, _) => found,
        })
    }

    // ---- expiring documents ---------------------------------------------

    /// Gives `collection` a time to live (or with `None` takes it away):
    /// a document expires when the timestamp in `rule.field`, plus
    /// `rule.after`, is at or before now. From this call on, reads
    /// (`get_document`, queries, live queries' initial results, typed
    /// collections) never return an expired document, and the expiry task
    /// (every [`AuroraConfig::expiry_interval`]) deletes them in
    /// transactions whose `Delete` events carry
    /// [`ChangeCause::Expired`](crate::ChangeCause). The rule persists.
    /// Index `rule.field` to make each expiry pass an index range read.
    ///
    /// # Errors
    /// [`Error::UnknownCollection`]; storage errors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> aurora::Result<()> {
    /// use aurora::{doc, Aurora, AuroraConfig, ManualTime, TimeSource, Timestamp, Ttl, Value};
    /// use std::time::Duration;
    /// let clock = ManualTime::new(Timestamp::from_micros(1_000_000_000));
    /// let tmp = tempfile::tempdir().expect("temp dir");
    /// // No background pass here, so the example decides when one runs.
    /// let config = AuroraConfig {
    ///     expiry_clock: clock.clone().into(),
    ///     expiry_interval: Duration::ZERO,
    ///     ..AuroraConfig::new(tmp.path())
    /// };
    /// let db = Aurora::with_config(config).await?;
    /// db.new_collection("sessions", Vec::<(&str, aurora::FieldDefinition)>::new()).await?;
    /// db.set_ttl("sessions", Some(Ttl::after("seen_at", Duration::from_secs(60)))).await?;
    /// let id = db.insert_into("sessions", doc! { "seen_at": Value::Timestamp(clock.now()) }).await?;
    /// clock.advance(Duration::from_secs(61));
    /// assert!(db.get_document("sessions", &id).await?.is_none(), "hidden at once");
    /// assert_eq!(db.expire_now().await?, 1, "and deleted by the next pass");
    /// # Ok(()) }
    /// ```
    pub async fn set_ttl(&self, collection: &str, rule: Option<crate::Ttl>) -> Result<()> {
        self.check_open()?;
        let (this, collection) = (self.clone(), collection.to_string());
        blocking(move || this.inner.expiry.set(&this.inner.db, &collection, rule)).await
    }

    /// The time-to-live rule of `collection`, if any.
    pub fn ttl(&self, collection: &str) -> Option<crate::Ttl> {
        self.inner.expiry.rule(collection)
    }

    /// Runs one expiry pass now (what the expiry task does every
    /// [`AuroraConfig::expiry_interval`]); returns how many documents it
    /// deleted.
    pub async fn expire_now(&self) -> Result<u64> {
        self.check_open()?;
        let this = self.clone();
        blocking(move || this.inner.expiry.expire(&this.inner.db)).await
    }

    /// The filter hiding expired documents of `collection` from reads, if
    /// it has a time to live.
    pub(crate) fn alive_filter(&self, collection: &str) -> Option<aurora_core::Filter> {
        self.inner.expiry.rule(collection).map(|rule| rule.alive(self.inner.expiry.time.now()))
    }

    /// Changes an existing document in one atomic commit and returns the
    /// result: either a patch document (its top-level fields are set) or
    /// an [`Update`] of operators — `set`, `set_if_absent`, `unset`,
    /// `increment`/`decrement`, `push`, `pull` — applied to the current
    /// version inside one transaction (retried on conflict, so concurrent
    /// increments never lose one). One change event. Errors change
    /// nothing: [`Error::NotFound`] if the document does not exist,
    /// [`Error::Update`] for an operator that does not fit the declared type
    /// or the value (incrementing a string), [`Error::SchemaViolation`] for
    /// a result the schema refuses. An update that changes nothing
    /// whatever the document — no operator, or an empty patch
    /// ([`Update::is_noop`]) — writes nothing: no commit, no change event,
    /// the revision stays; it returns the document as it is.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> aurora::Result<()> {
    /// use aurora::{doc, Aurora, Update, Value};
    /// let db = Aurora::temporary().await?;
    /// db.new_collection("posts", Vec::<(&str, aurora::FieldDefinition)>::new()).await?;
    /// let id = db.insert_into("posts", doc! { "views": 0, "tags": ["rust"] }).await?;
    /// let d = db.update_document("posts", &id, Update::new().increment("views", 1).push("tags", "db")).await?;
    /// assert_eq!(d.get("views"), Some(&Value::Int(1)));
    /// let err = db.update_document("posts", &id, Update::new().increment("tags", 1)).await.unwrap_err();
    /// assert!(matches!(err, aurora::Error::Update(_)));
    /// # Ok(()) }
    /// ```
    pub async fn update_document(&self, collection: &str, id: &DocId, patch: impl Into<Update>) -> Result<Document> {
        let update = self.admit_update(patch.into())?;
        let (collection, id) = (collection.to_string(), id.clone());
        let expired = self.expired_check(&collection);
        self.transaction(move |tx| {
            if let Some(expired) = &expired {
                expired.absent_as_not_found(tx, &collection, &id)?;
            }
            Ok(tx.update_with(&collection, &id, &update)?)
        })
        .await
    }

    /// The entry check for the values an update writes (nesting, size), as
    /// for a document, done before anything copies them. A refused update
    /// is disposed of without deep recursion.
    pub(crate) fn admit_update(&self, update: Update) -> Result<Update> {
        update.admit_values(|d| self.admit(d))
    }

    /// Replaces an existing document.
    pub async fn replace_document(&self, collection: &str, doc: Document) -> Result<()> {
        let doc = self.admit(doc)?;
        let collection = collection.to_string();
        let expired = self.expired_check(&collection);
        self.transaction(move |tx| {
            if let Some(expired) = &expired {
                expired.absent_as_not_found(tx, &collection, &doc.id)?;
            }
            Ok(tx.replace(&collection, doc.clone())?)
        })
        .await
    }

    /// Inserts or replaces a document.
    pub async fn upsert(&self, collection: &str, doc: Document) -> Result<()> {
        let doc = self.admit(doc)?;
        let collection = collection.to_string();
        let expired = self.expired_check(&collection);
        self.transaction(move |tx| {
            if let Some(expired) = &expired {
                expired.clear(tx, &collection, &doc.id)?;
            }
            Ok(tx.upsert(&collection, doc.clone())?)
        })
        .await
    }

    /// Deletes a document; returns whether it existed.
    pub async fn delete_document(&self, collection: &str, id: &DocId) -> Result<bool> {
        let (collection, id) = (collection.to_string(), id.clone());
        let expired = self.expired_check(&collection);
        self.transaction(move |tx| {
            // An expired document is already gone for readers: deleting it
            // reports `false` and leaves it to the expiry task (whose delete
            // says why).
            if let Some(expired) = &expired {
                if expired.is_expired(tx, &collection, &id)? {
                    return Ok(false);
                }
            }
            Ok(tx.delete(&collection, &id)?)
        })
        .await
    }

    /// Inserts a serde value as a new document. Converted directly (exact
    /// integers, NaN/±infinity kept, `Timestamp` as a timestamp; a `u64`
    /// above `i64::MAX` is refused), then adapted to the collection's
    /// schema where serde has no word for a type: a UUID in a `Uuid` field
    /// and a byte list in a `Bytes` field get those types.
    pub async fn insert_typed<T: Serialize + ?Sized>(&self, collection: &str, value: &T) -> Result<DocId> {
        let doc = crate::typed::to_document(&self.inner.db, collection, value)?;
        self.insert_into(collection, doc).await
    }

    /// Reads a document into a serde type (its id offered as `_id`, see
    /// [`Collection`](crate::Collection)).
    pub async fn get_typed<T: DeserializeOwned>(&self, collection: &str, id: &DocId) -> Result<Option<T>> {
        match self.get_document(collection, id).await? {
            Some(d) => Ok(Some(crate::typed::from_document(&d)?)),
            None => Ok(None),
        }
    }

    // ---- queries ----------------------------------------------------------

    /// Starts a query on a collection: `db.query("users").filter(..).collect().await`.
    /// The collection's computed fields are evaluated on every document.
    pub fn query(&self, collection: &str) -> crate::QueryBuilder {
        crate::QueryBuilder::new(self.clone(), collection, self.inner.computed.for_collection(collection))
    }

    /// Registers a computed field: derived at query time from other fields
    /// (or other computed fields — a cycle is refused), usable in filters,
    /// ordering and selection, and persisted with the database.
    pub async fn register_computed(&self, collection: &str, name: &str, expression: Expression) -> Result<()> {
        self.check_open()?;
        let def = self.collections().definition_shared(collection)?;
        if def.schema.fields.contains_key(name) {
            return Err(Error::Query(aurora_query::QueryError::InvalidComputed {
                name: name.into(),
                reason: format!("`{collection}` declares a stored field of that name"),
            }));
        }
        if expression.is_script() {
            // The script is compiled in a sandbox: wait for it off the executor.
            let (this, collection, name) = (self.clone(), collection.to_string(), name.to_string());
            return blocking(move || {
                let store = this.collections().documents().store();
                Ok(this.inner.computed.register(store, &collection, &name, expression)?)
            })
            .await;
        }
        let store = self.collections().documents().store();
        Ok(self.inner.computed.register(store, collection, name, expression)?)
    }

    /// Removes a computed field; returns whether it existed.
    pub async fn unregister_computed(&self, collection: &str, name: &str) -> Result<bool> {
        self.check_open()?;
        let store = self.collections().documents().store();
        Ok(self.inner.computed.unregister(store, collection, name)?)
    }

    // ---- change events ----------------------------------------------------

    /// Listens to a collection's committed changes, in commit order; a
    /// transaction's events arrive together. A listener that falls behind by
    /// more than `event_buffer` events gets `RecvError::Lagged(n)`; writers
    /// never wait for listeners.
    pub fn listen(&self, collection: &str) -> Listener {
        self.inner.pubsub.listen_unfiltered(collection)
    }

    /// A search index's listener on `collection`: a buffer of
    /// [`SEARCH_EVENT_BUFFER`](crate::search::SEARCH_EVENT_BUFFER) events
    /// (or `event_buffer`, if larger).
    #[cfg(feature = "search")]
    pub(crate) fn search_listener(&self, collection: &str) -> Listener {
        let capacity = crate::search::SEARCH_EVENT_BUFFER.max(self.inner.config.event_buffer);
        self.inner.pubsub.listen_buffered(collection, capacity)
    }

    /// Like [`Aurora::listen`], delivering only events that pass `filter`.
    ///
    /// # Errors
    /// `Error::Core(CoreError::FilterTooDeep)` when the filter nests too
    /// deep ([`EventFilter::check_depth`]: at most
    /// [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH) levels of
    /// combinators, and as many in each query filter); no listener exists.
    pub fn listen_filtered(&self, collection: &str, filter: EventFilter) -> Result<Listener> {
        Ok(self.inner.pubsub.listen(collection, filter)?)
    }

    /// Listens to every collection's committed changes.
    pub fn listen_all(&self) -> Listener {
        self.inner.pubsub.listen_all_unfiltered()
    }

    /// Every retained change of the user collections after sequence
    /// `after`, in commit order (from the persistent feed: this works across
    /// restarts). History trimmed by the retention settings is
    /// `Error::Transaction(FeedTruncated)`; a position beyond
    /// [`Aurora::feed_head`] is `Error::Transaction(FeedAhead)`.
    pub async fn changes_since(&self, after: u64) -> Result<Vec<ChangeEvent>> {
        self.changes_since_in(after, &FeedScope::User).await
    }

    /// Like [`Aurora::changes_since`], for the collections in `scope`.
    pub async fn changes_since_in(&self, after: u64, scope: &FeedScope) -> Result<Vec<ChangeEvent>> {
        Ok(self.commits_since(after, scope)?.into_iter().flat_map(|c| c.events).collect())
    }

    /// The retained commits with a sequence in `after + 1 ..= through`,
    /// restricted to `scope`, each as one [`CommitEvents`] (commits with no
    /// change in `scope` are left out): a bounded page of the feed, read on
    /// the blocking pool, for a consumer that catches up over a long
    /// history page by page (the network server's change streams do) rather
    /// than holding it all at once as [`Aurora::listen_from`] does. Same
    /// errors as [`Aurora::changes_since`] (`FeedTruncated`, `FeedAhead`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> aurora::Result<()> {
    /// use aurora::{doc, Aurora, FeedScope};
    /// let db = Aurora::temporary().await?;
    /// db.new_collection("t", Vec::<(&str, aurora::FieldDefinition)>::new()).await?;
    /// let start = db.feed_head()?;
    /// for n in 0..5 {
    ///     db.insert_into("t", doc! { "n": n }).await?;
    /// }
    /// let first = db.commits_between_in(start, start + 2, &FeedScope::User).await?;
    /// assert_eq!(first.len(), 2);
    /// let rest = db.commits_between_in(start + 2, db.feed_head()?, &FeedScope::User).await?;
    /// assert_eq!(rest.len(), 3);
    /// # Ok(()) }
    /// ```
    pub async fn commits_between_in(&self, after: u64, through: u64, scope: &FeedScope) -> Result<Vec<CommitEvents>> {
        self.check_open()?;
        let (db, filter) = (self.inner.db.clone(), scope.event_filter());
        blocking(move || {
            Ok(db
                .changes_between(after, through)?
                .iter()
                .filter_map(|c| crate::events::commit_events(c, &filter))
                .collect())
        })
        .await
    }

    /// The retained commits after `after`, restricted to `scope`.
    fn commits_since(&self, after: u64, scope: &FeedScope) -> Result<Vec<CommitEvents>> {
        self.check_open()?;
        let filter = scope.event_filter();
        Ok(self
            .inner
            .db
            .changes_since(after)?
            .iter()
            .filter_map(|c| crate::events::commit_events(c, &filter))
            .collect())
    }

    /// The feed's current position: the sequence of the newest commit.
    /// `listen_from(db.feed_head()?)` hears exactly the commits after this
    /// call; a consumer with no checkpoint yet starts here.
    pub fn feed_head(&self) -> Result<u64> {
        self.check_open()?;
        Ok(self.inner.db.feed_head())
    }

    /// The highest sequence trimmed from the feed (0 if none was): the
    /// oldest position [`Aurora::changes_since`] still answers for.
    pub fn feed_floor(&self) -> Result<u64> {
        self.check_open()?;
        Ok(self.inner.db.feed_floor()?)
    }

    /// Listens to the user collections from just after sequence `after`:
    /// retained history first, then live events, commit by commit, with no
    /// gap and no duplicate at the seam (the live subscription is taken
    /// before the history is read). Resume after a restart with the last
    /// sequence seen. A position beyond [`Aurora::feed_head`] is an error
    /// (`FeedAhead`), never a listener that silently drops changes.
    pub async fn listen_from(&self, after: u64) -> Result<Listener> {
        self.listen_from_in(after, &FeedScope::User).await
    }

    /// Like [`Aurora::listen_from`], for the collections in `scope`.
    pub async fn listen_from_in(&self, after: u64, scope: &FeedScope) -> Result<Listener> {
        let live = self.inner.pubsub.listen_all(scope.event_filter())?;
        let backlog = self.commits_since(after, scope)?;
        Ok(live.resume_with(backlog, after))
    }

    /// The event hub (for counts and diagnostics).
    pub fn pubsub(&self) -> &PubSub {
        &self.inner.pubsub
    }

    // ---- job queue --------------------------------------------------------

    /// Opens the durable job queue on this database (jobs live in the
    /// `_jobs` collection). Register handlers, then `start()`; `close()`
    /// shuts it down. Open one per database: two instances in one process
    /// would share the queue (correctly, through transactions) but split it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> aurora::Result<()> {
    /// use aurora::{Aurora, Job, JobStatus, WorkerConfig};
    /// let db = Aurora::temporary().await?;
    /// let workers = db.workers(WorkerConfig::default()).await?;
    /// workers.register_handler("resize", |_job| async { Ok(()) });
    /// workers.start()?;
    /// let id = workers.enqueue(Job::new("resize")).await?;
    /// let done = workers.wait_for(&id, std::time::Duration::from_secs(5)).await?;
    /// assert_eq!(done, Some(JobStatus::Completed));
    /// db.close().await?; // shuts the workers down first
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "workers")]
    pub async fn workers(&self, config: aurora_workers::WorkerConfig) -> Result<aurora_workers::Workers> {
        self.check_open()?;
        let db = self.inner.db.clone();
        let workers = blocking(move || Ok(aurora_workers::Workers::new(db, config)?)).await?;
        self.inner.workers.lock().push(workers.clone());
        Ok(workers)
    }

    /// Writes a consistent copy of the database, as of the newest commit
    /// when the call starts, into `dir` (absent or empty), while writers
    /// go on; runs on the blocking pool. To restore, open the copy (or move
    /// it where the database was) with [`Aurora::open`]: it is an ordinary
    /// database at that commit, with its collections, indexes, computed
    /// fields, change feed and job queue.
    ///
    /// # Errors
    /// `Error::Storage(Io)` if `dir` is not empty or on I/O failure (`dir`
    /// then holds no copy: it is written under `.<name>.partial` and renamed
    /// when complete); [`Error::Closed`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> aurora::Result<()> {
    /// use aurora::{doc, Aurora};
    /// let tmp = tempfile::tempdir().expect("temp dir");
    /// let db = Aurora::open(tmp.path().join("db")).await?;
    /// db.new_collection("t", Vec::<(&str, aurora::FieldDefinition)>::new()).await?;
    /// let id = db.insert_into("t", doc! { "n": 1 }).await?;
    /// let report = db.backup_to(tmp.path().join("backup")).await?;
    /// let copy = Aurora::open(tmp.path().join("backup")).await?;
    /// assert!(copy.get_document("t", &id).await?.is_some());
    /// assert_eq!(copy.feed_head()?, report.revision);
    /// # Ok(()) }
    /// ```
    pub async fn backup_to(&self, dir: impl Into<std::path::PathBuf>) -> Result<aurora_storage::BackupReport> {
        self.backup_to_with_progress(dir, |_| {}).await
    }

    /// [`Aurora::backup_to`], calling `progress` after each batch of
    /// entries copied (from a blocking-pool thread).
    pub async fn backup_to_with_progress(
        &self,
        dir: impl Into<std::path::PathBuf>,
        progress: impl FnMut(aurora_storage::BackupProgress) + Send + 'static,
    ) -> Result<aurora_storage::BackupReport> {
        self.check_open()?;
        let (this, dir) = (self.clone(), dir.into());
        blocking(move || Ok(this.collections().documents().store().backup_to(&dir, progress)?)).await
    }

    /// The job queues opened with [`Aurora::workers`] and not shut down.
    #[cfg(feature = "workers")]
    pub(crate) fn open_workers(&self) -> Vec<aurora_workers::Workers> {
        self.inner.workers.lock().clone()
    }

    // ---- transactions -----------------------------------------------------

    /// Starts a transaction reading a snapshot of the current state.
    pub fn begin(&self) -> Result<Transaction> {
        self.check_open()?;
        Ok(Transaction::new(self.inner.db.begin()?, self.strict()))
    }

    /// A transaction for reading only (snapshot isolation, no read set).
    pub(crate) fn begin_read(&self) -> Result<aurora_txn::Transaction> {
        self.check_open()?;
        Ok(self.inner.db.begin_with(aurora_txn::Isolation::Snapshot)?)
    }

    /// Runs `body` in a transaction and commits. On a conflict (first
    /// committer wins: [`Error::Conflict`], from the commit or returned by
    /// the body) the whole body runs again on a fresh snapshot, at most
    /// [`MAX_TRANSACTION_ATTEMPTS`](aurora_txn::MAX_TRANSACTION_ATTEMPTS)
    /// times, after a growing back-off (20 µs doubling to 5 ms) that
    /// awaits a timer instead of blocking the thread. Any other error — the
    /// body's own, with `?` on any Aurora error or one converted into
    /// [`Error`] — rolls back and returns at once. Keep side effects out of
    /// `body`: it may run more than once.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> aurora::Result<()> {
    /// use aurora::{doc, Aurora, Error, Value};
    /// let db = Aurora::temporary().await?;
    /// db.new_collection("accounts", Vec::<(&str, aurora::FieldDefinition)>::new()).await?;
    /// let a = db.insert_into("accounts", doc! { "balance": 100 }).await?;
    /// let b = db.insert_into("accounts", doc! { "balance": 0 }).await?;
    /// db.transaction(move |tx| {
    ///     let from = tx.get("accounts", &a)?.ok_or(Error::NotFound { collection: "accounts".into(), id: a.to_string() })?;
    ///     let balance = from.get("balance").and_then(Value::as_i64).unwrap_or(0);
    ///     tx.update("accounts", &a, [("balance".to_string(), Value::Int(balance - 30))].into())?;
    ///     tx.update("accounts", &b, [("balance".to_string(), Value::Int(30))].into())?;
    ///     Ok(())
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn transaction<T, F>(&self, body: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut aurora_txn::Transaction) -> Result<T> + Send + 'static,
    {
        self.retrying(body, false).await
    }

    /// [`Aurora::transaction`] for a body that may do long work (a bulk
    /// update or delete): every attempt runs on the blocking pool.
    pub(crate) async fn transaction_heavy<T, F>(&self, body: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut aurora_txn::Transaction) -> Result<T> + Send + 'static,
    {
        self.retrying(body, true).await
    }

    async fn retrying<T, F>(&self, mut body: F, heavy: bool) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut aurora_txn::Transaction) -> Result<T> + Send + 'static,
    {
        let mut attempt = 0;
        loop {
            let once = move |db: &Database| {
                let outcome = run_once(db, &mut body);
                Ok((body, outcome))
            };
            let (returned, outcome) = if heavy { self.write_heavy(once).await? } else { self.write(once).await? };
            body = returned;
            match outcome {
                Err(Error::Conflict { .. }) if attempt + 1 < aurora_txn::MAX_TRANSACTION_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_micros(20 << attempt.min(8))).await;
                }
                other => return other,
            }
        }
    }
}

/// One attempt of [`Aurora::transaction`]: begin, run, commit (a body that
/// fails drops the transaction, which rolls it back).
fn run_once<T>(db: &Database, body: &mut impl FnMut(&mut aurora_txn::Transaction) -> Result<T>) -> Result<T> {
    let mut tx = db.begin()?;
    let out = body(&mut tx)?;
    tx.commit()?;
    Ok(out)
}

impl std::fmt::Debug for Aurora {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aurora").field("path", &self.inner.config.path).finish()
    }
}

/// Whether a transaction failed because a stored document could not be
/// decoded (a damaged file), as opposed to a conflict or a refusal.
fn undecodable(e: &aurora_txn::TxnError) -> bool {
    use aurora_storage::StorageError::Corrupt;
    matches!(
        e,
        aurora_txn::TxnError::Storage(Corrupt { .. })
            | aurora_txn::TxnError::Index(aurora_index::IndexError::Storage(Corrupt { .. }))
    )
}
