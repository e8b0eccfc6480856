//! Full-text search on the database handle: [`Aurora::create_search_index`],
//! [`SearchBuilder`] (from [`Aurora::search`] or [`QueryBuilder::search`]),
//! and the follower that keeps each collection's index in step with the
//! change feed. See `docs/search.md`.
//!
//! [`QueryBuilder::search`]: crate::QueryBuilder::search

use crate::db::{blocking, Aurora};
use crate::error::{Error, Result};
use crate::events::{commit_events, FeedScope};
use aurora_core::{Document, Filter};
use aurora_pubsub::{ChangeType, RecvError};
use aurora_search::{parse, Highlight, SearchDefinition, SearchError, SearchExpr, SearchIndex, SearchOptions};
use aurora_txn::{Database, Isolation, TxnError};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Folder (inside the database folder) holding one sub-folder per search index.
pub const SEARCH_FOLDER: &str = "search";
/// Default number of results of a search without `limit`.
pub const DEFAULT_SEARCH_LIMIT: usize = 10;
/// Most candidates a filtered search asks the index for before giving up
/// on filling its window.
pub const MAX_SEARCH_CANDIDATES: usize = 100_000;

/// The search indexes of one open database.
#[derive(Default)]
pub(crate) struct Registry {
    followers: Mutex<HashMap<String, Arc<Follower>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Registry {
    /// Stops every follower and closes every index (releasing its lock).
    pub(crate) fn close(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
        for (_, f) in self.followers.lock().drain() {
            *f.index.write() = None;
        }
    }

    fn get(&self, collection: &str) -> Result<Arc<Follower>> {
        self.followers
            .lock()
            .get(collection)
            .cloned()
            .ok_or_else(|| Error::Search(SearchError::NoIndex { collection: collection.to_string() }))
    }
}

/// One collection's index and what it needs to follow the feed.
struct Follower {
    collection: String,
    db: Database,
    /// `None` once closed. Searches share it; catching up takes it alone.
    index: RwLock<Option<SearchIndex>>,
    /// Times the index was rebuilt from a scan.
    rebuilds: AtomicU64,
}

fn index_dir(db_path: &Path, collection: &str) -> PathBuf {
    // Collection names are validated identifiers; hex keeps any name a
    // valid, distinct folder name.
    let hex: String = collection.bytes().map(|b| format!("{b:02x}")).collect();
    db_path.join(SEARCH_FOLDER).join(hex)
}

impl Follower {
    /// Brings the index up to the feed head: applies every commit of the
    /// collection after its position, or rebuilds it from a scan if the
    /// feed no longer holds that history or the index is ahead of the
    /// database (commits lost in a crash). Blocking.
    fn catch_up(&self) -> Result<u64> {
        let mut guard = self.index.write();
        let Some(index) = guard.as_mut() else { return Err(Error::Closed) };
        let head = self.db.feed_head();
        if index.applied() > head {
            tracing::warn!(collection = %self.collection, applied = index.applied(), head, "search index is ahead of the database (commits lost in a crash); rebuilding from a scan");
            return self.rebuild(index);
        }
        if index.applied() == head {
            return Ok(head);
        }
        let filter = FeedScope::collections([self.collection.as_str()]).event_filter();
        match self.db.changes_since(index.applied()) {
            Ok(commits) => {
                let mut last = head;
                for commit in commits.iter().filter_map(|c| commit_events(c, &filter)) {
                    index.apply(commit.events.iter().map(|e| {
                        let after = if e.change_type == ChangeType::Delete { None } else { e.document.as_deref() };
                        (&e.id, after)
                    }))?;
                    last = last.max(commit.sequence);
                }
                index.commit(last)?;
                Ok(index.applied())
            }
            Err(TxnError::FeedTruncated { requested, oldest }) => {
                tracing::warn!(collection = %self.collection, requested, oldest, "change feed trimmed past the search index's position; rebuilding from a scan");
                self.rebuild(index)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the index's content with the collection at a snapshot and
    /// records the snapshot's sequence.
    fn rebuild(&self, index: &mut SearchIndex) -> Result<u64> {
        let mut tx = self.db.begin_with(Isolation::Snapshot)?;
        let at = tx.snapshot_revision();
        let docs = match tx.scan_shared(&self.collection) {
            Ok(docs) => docs,
            Err(TxnError::Index(aurora_index::IndexError::UnknownCollection(_))) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        index.clear()?;
        index.apply(docs.iter().map(|d| (&d.id, Some(&**d))))?;
        index.commit(at)?;
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        Ok(index.applied())
    }
}

/// Starts following: catches up now, then after every commit of the collection.
async fn start(db: &Aurora, definition: SearchDefinition, dir: PathBuf) -> Result<Arc<Follower>> {
    let collection = definition.collection.clone();
    let index = blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| {
            Error::Search(SearchError::DefinitionFile { path: dir.display().to_string(), message: e.to_string() })
        })?;
        definition.save(&dir)?;
        Ok(SearchIndex::open(&dir, definition)?)
    })
    .await?;
    let follower = Arc::new(Follower {
        collection: collection.clone(),
        db: db.database().clone(),
        index: RwLock::new(Some(index)),
        rebuilds: AtomicU64::new(0),
    });
    // Subscribe before catching up: no commit falls between the two.
    let mut wake = db.listen(&collection);
    let f = follower.clone();
    blocking(move || f.catch_up().map(drop)).await?;
    let f = follower.clone();
    let task = tokio::spawn(async move {
        loop {
            match wake.recv_commit().await {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
            // Coalesce: one catch-up for every commit already delivered.
            while let Some(Ok(_) | Err(RecvError::Lagged(_))) = wake.try_recv_commit() {}
            let f = f.clone();
            match tokio::task::spawn_blocking(move || f.catch_up()).await {
                Ok(Ok(_)) => {}
                Ok(Err(Error::Closed)) => break,
                Ok(Err(e)) => tracing::error!(error = %e, "search index catch-up failed; retried at the next commit"),
                Err(_) => break,
            }
        }
    });
    db.search_indexes().tasks.lock().push(task);
    db.search_indexes().followers.lock().insert(collection, follower.clone());
    Ok(follower)
}

/// Opens every search index found in the database folder (at open).
pub(crate) async fn open_all(db: &Aurora) -> Result<()> {
    let root = db.config().path.join(SEARCH_FOLDER);
    let Ok(entries) = std::fs::read_dir(&root) else { return Ok(()) };
    for entry in entries.flatten() {
        let dir = entry.path();
        if let Some(definition) = SearchDefinition::load(&dir)? {
            start(db, definition, dir).await?;
        }
    }
    Ok(())
}

impl Aurora {
    /// Creates a full-text search index on `collection` over `fields`
    /// (document paths; a string or an array of strings is indexed), built
    /// now from the collection's documents and then kept in step with every
    /// commit. The definition is kept in `<db>/search/<hex of collection>/
    /// definition.json` next to the tantivy files, so the index exists
    /// after a reopen. Creating the same definition again is a no-op.
    ///
    /// # Errors
    /// `Error::Search`: [`SearchError::Definition`] (no field, a bad
    /// boost), [`SearchError::IndexExists`] (another definition),
    /// [`SearchError::FeedOff`] (the change feed is off); the collection
    /// must exist (`Error::UnknownCollection`).
    pub async fn create_search_index<S: AsRef<str>>(
        &self,
        collection: &str,
        fields: impl IntoIterator<Item = S>,
        options: SearchOptions,
    ) -> Result<()> {
        if self.config().change_feed_retention == 0 {
            return Err(Error::Search(SearchError::FeedOff));
        }
        self.database().collections().definition_shared(collection)?;
        let definition = SearchDefinition::new(collection, fields, &options)?;
        if let Ok(existing) = self.search_indexes().get(collection) {
            let same = existing.index.read().as_ref().is_some_and(|i| i.definition() == &definition);
            return if same {
                Ok(())
            } else {
                Err(Error::Search(SearchError::IndexExists { collection: collection.to_string() }))
            };
        }
        start(self, definition, index_dir(&self.config().path, collection)).await.map(drop)
    }

    /// Drops `collection`'s search index and deletes its files; `false` if
    /// there was none.
    ///
    /// # Errors
    /// `Error::Search(DefinitionFile)` if the folder cannot be removed.
    pub async fn drop_search_index(&self, collection: &str) -> Result<bool> {
        let Some(follower) = self.search_indexes().followers.lock().remove(collection) else { return Ok(false) };
        *follower.index.write() = None;
        let dir = index_dir(&self.config().path, collection);
        blocking(move || {
            std::fs::remove_dir_all(&dir).map_err(|e| {
                Error::Search(SearchError::DefinitionFile { path: dir.display().to_string(), message: e.to_string() })
            })
        })
        .await?;
        Ok(true)
    }

    /// Waits until `collection`'s search index reflects every commit up to
    /// now (at least the sequence of any write already returned), and
    /// returns the sequence it reflects. Read-your-writes:
    /// `db.insert_into(..)` then `db.search_caught_up(..)` (or a search with
    /// [`SearchBuilder::consistent`]).
    ///
    /// # Errors
    /// `Error::Search(NoIndex)`; `Error::Closed`; I/O errors of the index.
    pub async fn search_caught_up(&self, collection: &str) -> Result<u64> {
        let follower = self.search_indexes().get(collection)?;
        blocking(move || follower.catch_up()).await
    }

    /// Where `collection`'s search index stands.
    ///
    /// # Errors
    /// `Error::Search(NoIndex)`; `Error::Closed`.
    pub fn search_index_status(&self, collection: &str) -> Result<SearchIndexStatus> {
        let follower = self.search_indexes().get(collection)?;
        let guard = follower.index.read();
        let index = guard.as_ref().ok_or(Error::Closed)?;
        Ok(SearchIndexStatus {
            sequence: index.applied(),
            durable_sequence: index.durable(),
            documents: index.len(),
            rebuilds: follower.rebuilds.load(Ordering::Relaxed),
        })
    }

    /// A full-text search of `collection` (every indexed field; narrow it
    /// with [`SearchBuilder::field`]) for `text` in the search language:
    /// words (all required), `"phrases"`, `prefix*`, `fuzzy~` / `~2`,
    /// `OR`, `AND`, `-word` / `NOT word`, parentheses.
    pub fn search(&self, collection: &str, text: &str) -> SearchBuilder {
        SearchBuilder {
            db: self.clone(),
            collection: collection.to_string(),
            field: None,
            text: text.to_string(),
            filter: None,
            offset: 0,
            limit: DEFAULT_SEARCH_LIMIT,
            highlights: false,
            consistent: false,
        }
    }
}

/// Where a search index stands ([`Aurora::search_index_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchIndexStatus {
    /// The database sequence it reflects (every commit up to it).
    pub sequence: u64,
    /// The sequence recorded in its last on-disk commit (where a reopen
    /// after a crash resumes from).
    pub durable_sequence: u64,
    /// Documents it holds.
    pub documents: u64,
    /// Times it was rebuilt from a scan (feed trimmed past its position,
    /// or the index ahead of a database that lost commits in a crash)
    /// since the database was opened.
    pub rebuilds: u64,
}

/// A full-text search being built; `run().await` executes it.
#[derive(Debug, Clone)]
#[must_use = "a search does nothing until `run().await`"]
pub struct SearchBuilder {
    db: Aurora,
    collection: String,
    field: Option<String>,
    text: String,
    filter: Option<Filter>,
    offset: usize,
    limit: usize,
    highlights: bool,
    consistent: bool,
}

/// One ranked result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The document, as of a snapshot taken after the index's state.
    pub document: Arc<Document>,
    /// BM25 score (times field boosts); higher ranks first.
    pub score: f32,
    /// Highlighted fragments per matching field (empty unless
    /// [`SearchBuilder::highlights`]).
    pub highlights: Vec<Highlight>,
}

/// The results of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    /// The window of ranked results, best first.
    pub hits: Vec<SearchHit>,
    /// The database sequence the index reflected.
    pub sequence: u64,
}

/// A search kept current ([`SearchBuilder::watch`]).
pub struct LiveSearch {
    search: SearchBuilder,
    listener: aurora_pubsub::Listener,
    current: SearchResults,
}

impl std::fmt::Debug for LiveSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSearch").field("search", &self.search).field("current", &self.current).finish()
    }
}

impl LiveSearch {
    /// The latest results.
    pub fn results(&self) -> &SearchResults {
        &self.current
    }

    /// Waits for the next commit that changes the results (which
    /// documents, their order, or their content — not a score alone) and
    /// returns them (with fresh scores); `None` once the database is
    /// closed.
    ///
    /// # Errors
    /// As [`SearchBuilder::run`].
    pub async fn next(&mut self) -> Option<Result<SearchResults>> {
        loop {
            match self.listener.recv_commit().await {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
            while let Some(Ok(_) | Err(RecvError::Lagged(_))) = self.listener.try_recv_commit() {}
            match self.search.clone().run().await {
                Ok(r) => {
                    let same = r.hits.len() == self.current.hits.len()
                        && r.hits.iter().zip(&self.current.hits).all(|(a, b)| a.document == b.document);
                    self.current = r;
                    if !same {
                        return Some(Ok(self.current.clone()));
                    }
                }
                Err(Error::Closed) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// How a search runs (from [`SearchBuilder::explain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPlan {
    /// The collection.
    pub collection: String,
    /// The field searched, or `None` for every indexed field.
    pub field: Option<String>,
    /// The parsed search.
    pub expression: SearchExpr,
    /// The filter applied to ranked candidates, rendered.
    pub filter: Option<String>,
    /// Results skipped, and at most returned.
    pub window: (usize, usize),
    /// The sequence the index reflects.
    pub sequence: u64,
}

impl std::fmt::Display for SearchPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "search {}.{} for {} (tantivy BM25, index at sequence {})",
            self.collection,
            self.field.as_deref().unwrap_or("*"),
            self.expression,
            self.sequence
        )?;
        if let Some(filter) = &self.filter {
            write!(f, " -> filter {filter}")?;
        }
        write!(f, " -> offset {} limit {}", self.window.0, self.window.1)
    }
}

impl SearchBuilder {
    pub(crate) fn from_query(db: Aurora, query: &aurora_query::Query, field: &str, text: &str) -> Self {
        let (offset, limit) = query.window();
        let filter = query.filter_expr().clone();
        let mut b = db.search(query.collection(), text).field(field);
        b.filter = (!matches!(filter, Filter::All)).then_some(filter);
        b.offset = offset;
        b.limit = limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
        b
    }

    /// Searches only this indexed field.
    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    /// Keeps only results whose document matches `filter` (ANDed with
    /// earlier ones); ranking is unchanged.
    pub fn filter(mut self, build: impl FnOnce(aurora_core::F) -> Filter) -> Self {
        let f = build(aurora_core::F);
        self.filter = Some(match self.filter.take() {
            Some(prev) => prev & f,
            None => f,
        });
        self
    }

    /// At most `n` results (default [`DEFAULT_SEARCH_LIMIT`]).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// Skips the `n` best results (pages: `offset(page * size).limit(size)`).
    pub fn offset(mut self, n: usize) -> Self {
        self.offset = n;
        self
    }

    /// Adds highlighted fragments to each hit.
    pub fn highlights(mut self) -> Self {
        self.highlights = true;
        self
    }

    /// Read-your-writes: bring the index up to every commit made before
    /// this search runs (otherwise it reflects commits within the
    /// follower's delay, typically a few milliseconds).
    pub fn consistent(mut self) -> Self {
        self.consistent = true;
        self
    }

    /// How the search would run, without running it.
    ///
    /// # Errors
    /// As [`SearchBuilder::run`] for the search string and the index.
    pub async fn explain(self) -> Result<SearchPlan> {
        let expression = parse(&self.text)?;
        let sequence = self.db.search_index_status(&self.collection)?.sequence;
        Ok(SearchPlan {
            collection: self.collection,
            field: self.field,
            expression,
            filter: self.filter.map(|f| format!("{f:?}")),
            window: (self.offset, self.limit),
            sequence,
        })
    }

    /// A live search: the results now, then again after every commit of
    /// the collection that changes them (the search re-runs, consistent,
    /// on each commit — re-scoring included; commits that arrive together
    /// are taken as one).
    ///
    /// # Errors
    /// As [`SearchBuilder::run`] for the first results.
    pub async fn watch(self) -> Result<LiveSearch> {
        let listener = self.db.listen(&self.collection);
        let search = self.consistent();
        let current = search.clone().run().await?;
        Ok(LiveSearch { search, listener, current })
    }

    /// Runs the search: ranked by score, filtered, windowed.
    ///
    /// # Errors
    /// `Error::Search`: [`SearchError::Parse`] (with the byte position),
    /// [`SearchError::QueryTooLong`], [`SearchError::TooManyTerms`],
    /// [`SearchError::NoIndex`], [`SearchError::UnknownField`]; `Error::Closed`.
    pub async fn run(self) -> Result<SearchResults> {
        let expr = parse(&self.text)?;
        let follower = self.db.search_indexes().get(&self.collection)?;
        let read = self.db.clone();
        blocking(move || {
            if self.consistent {
                follower.catch_up()?;
            }
            let guard = follower.index.read();
            let index = guard.as_ref().ok_or(Error::Closed)?;
            let sequence = index.applied();
            let mut tx = read.begin_read()?;
            let want = self.offset.saturating_add(self.limit);
            let mut asked = if self.filter.is_some() { want.saturating_mul(4).max(64) } else { want };
            let field = self.field.as_deref();
            let found = loop {
                let hits = index.search(&expr, field, asked, 0)?;
                let exhausted = hits.len() < asked;
                let mut found = Vec::new();
                for hit in hits {
                    let Some(document) = tx.get_shared(&self.collection, &hit.id)? else { continue };
                    if self.filter.as_ref().is_none_or(|f| f.matches(&document)) {
                        found.push((document, hit.score));
                    }
                }
                if found.len() >= want || exhausted || asked >= MAX_SEARCH_CANDIDATES {
                    break found;
                }
                asked = asked.saturating_mul(4).min(MAX_SEARCH_CANDIDATES);
            };
            let mut hits = Vec::new();
            for (document, score) in found.into_iter().skip(self.offset).take(self.limit) {
                let highlights = if self.highlights { index.highlights(&expr, field, &document)? } else { Vec::new() };
                hits.push(SearchHit { document, score, highlights });
            }
            Ok(SearchResults { hits, sequence })
        })
        .await
    }
}
