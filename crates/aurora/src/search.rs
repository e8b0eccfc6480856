//! Full-text search on the database handle: [`Aurora::create_search_index`],
//! [`SearchBuilder`] (from [`Aurora::search`] or [`QueryBuilder::search`]),
//! and the follower that keeps each collection's index in step with the
//! change feed. See `docs/search.md`.
//!
//! [`QueryBuilder::search`]: crate::QueryBuilder::search

use crate::db::{blocking, Aurora};
use crate::error::{Error, Result};
use aurora_core::{Document, Filter};
use aurora_pubsub::{ChangeType, CommitEvents, Listener, RecvError};
use aurora_search::{
    parse, DocChange, Highlight, SearchDefinition, SearchError, SearchExpr, SearchIndex, SearchOptions, DEFINITION_FILE,
};
use aurora_txn::{ChangeKind, Database, Isolation, TxnError};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Folder (inside the database folder) holding one sub-folder per search index.
pub const SEARCH_FOLDER: &str = "search";
/// Default number of results of a search without `limit`.
pub const DEFAULT_SEARCH_LIMIT: usize = 10;
/// Most ranked results a search reads: a window (`offset + limit`) past
/// it is cut there, and a filtered search asks the index for at most this
/// many candidates before giving up on filling its window.
pub const MAX_SEARCH_CANDIDATES: usize = 100_000;
/// Events a search index's listener buffers (or the database's
/// `event_buffer`, if larger) before it falls behind and reads commits back
/// from the change feed instead. The events share their documents with the
/// commit (nothing is copied); at worst this many documents are kept alive
/// for the index while it catches up.
pub const SEARCH_EVENT_BUFFER: usize = 65_536;
/// Shortest time between two tantivy commits of the background follower:
/// an isolated write is searchable right after one catch-up, a stream of
/// writes within this delay (several commits become one tantivy commit).
/// `consistent()` searches do not wait for it.
pub const SEARCH_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);
/// A file in an index folder saying its content cannot be trusted (the
/// database was opened with the change feed off, so commits went by
/// unseen): the index is rebuilt from a scan at the next open with the
/// feed on.
const STALE_FILE: &str = "stale";
/// After a failed catch-up, the follower retries (from the feed) this long
/// after, or at the next commit.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The search indexes of one open database.
#[derive(Default)]
pub(crate) struct Registry {
    followers: Mutex<HashMap<String, Arc<Follower>>>,
    /// Creating and dropping indexes, one at a time (a create racing a
    /// drop of the same folder would lose files).
    admin: tokio::sync::Mutex<()>,
}

impl Registry {
    /// Stops every follower, makes what each applied searchable on disk
    /// (so the next open has less to catch up), and closes every index
    /// (releasing its lock).
    pub(crate) fn close(&self) {
        for (_, f) in self.followers.lock().drain() {
            f.stop();
            let mut guard = f.index.write();
            if let Some(index) = guard.as_mut() {
                if index.has_uncommitted() {
                    if let Err(e) = index.publish() {
                        tracing::warn!(collection = %f.collection, error = %e, "search index could not commit at close; caught up at the next open");
                    }
                }
            }
            *guard = None;
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

/// The commits delivered to a follower and not applied yet. Whoever
/// applies commits (the background task's step, or a read-your-writes
/// catch-up) takes them all from here while holding the index's write
/// lock, so they are applied in order and none is skipped; the
/// background task only waits here for something to do.
struct Inbox {
    /// Subscribed before the index first caught up: every commit of the
    /// collection after the index's position is delivered here (or
    /// reported as a lag).
    listener: Listener,
    /// Commits the background task's wait took from the listener.
    taken: Vec<CommitEvents>,
    /// Set after a lag or a failed step: the next application reads
    /// every commit after the index's position from the persistent feed
    /// (the delivered events are then skipped by sequence).
    from_feed: bool,
    /// The background task's waker: a catch-up that empties the listener
    /// leaves it registered there (a no-op waker would lose the task's
    /// next wake-up).
    waker: Option<Waker>,
}

impl Inbox {
    /// Every delivered commit, in order, and whether they must be read
    /// from the feed instead (after a lag or a failure).
    fn drain(&mut self) -> (Vec<CommitEvents>, bool) {
        let waker = self.waker.clone().unwrap_or_else(|| Waker::noop().clone());
        let mut cx = Context::from_waker(&waker);
        let mut commits = std::mem::take(&mut self.taken);
        loop {
            match self.listener.poll_next_commit(&mut cx) {
                Poll::Ready(Ok(c)) => commits.push(c),
                Poll::Ready(Err(RecvError::Lagged(_))) => self.from_feed = true,
                Poll::Ready(Err(_)) | Poll::Pending => break,
            }
        }
        (commits, std::mem::take(&mut self.from_feed))
    }

    /// Ready when a commit was delivered or the listener lagged (`true`),
    /// or the database closed (`false`). (After a failed step the flag
    /// to read from the feed is set but not a reason to wake: the retry
    /// waits for the next commit or its delay.)
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if !self.taken.is_empty() {
            return Poll::Ready(true);
        }
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
        match self.listener.poll_next_commit(cx) {
            Poll::Ready(Ok(c)) => {
                self.taken.push(c);
                Poll::Ready(true)
            }
            Poll::Ready(Err(RecvError::Lagged(_))) => {
                self.from_feed = true;
                Poll::Ready(true)
            }
            Poll::Ready(Err(_)) => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// One collection's index and what it needs to follow the feed.
struct Follower {
    collection: String,
    db: Database,
    /// `None` once closed. Searches share it; applying changes takes it
    /// alone (and then the inbox: always in this order).
    index: RwLock<Option<SearchIndex>>,
    /// The commits delivered and not applied yet.
    inbox: Mutex<Inbox>,
    /// Times the index was rebuilt from a scan.
    rebuilds: AtomicU64,
    /// Commits applied from the persistent feed (not from the listener).
    feed_commits: AtomicU64,
    /// When the background follower last made its changes searchable.
    last_publish: Mutex<Instant>,
    /// The folder (to drop the stale mark once rebuilt).
    dir: PathBuf,
    /// The background task.
    task: Mutex<Option<JoinHandle<()>>>,
    /// Set when the index was dropped (not the database closed).
    dropped: std::sync::atomic::AtomicBool,
}

fn index_dir(db_path: &Path, collection: &str) -> PathBuf {
    // Collection names are validated identifiers; hex keeps any name a
    // valid, distinct folder name.
    let hex: String = collection.bytes().map(|b| format!("{b:02x}")).collect();
    db_path.join(SEARCH_FOLDER).join(hex)
}

fn folder_error(dir: &Path, e: &std::io::Error) -> Error {
    Error::Search(SearchError::DefinitionFile { path: dir.display().to_string(), message: e.to_string() })
}

/// Deletes tantivy's files from an index folder, keeping the definition
/// (and the stale mark, removed only once the rebuild is committed).
fn wipe(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| folder_error(dir, &e))? {
        let entry = entry.map_err(|e| folder_error(dir, &e))?;
        let name = entry.file_name();
        if name == DEFINITION_FILE || name == STALE_FILE {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.map_err(|e| folder_error(&path, &e))?;
    }
    Ok(())
}

/// Opens the index in `dir`, starting it afresh (to be rebuilt from a
/// scan) if it is marked stale or its files cannot be opened (torn or
/// corrupt files, files of another format): the index is derived data.
/// Blocking.
fn open_index(dir: &Path, definition: SearchDefinition) -> Result<SearchIndex> {
    if dir.join(STALE_FILE).exists() {
        tracing::warn!(collection = %definition.collection, "search index was left behind while the change feed was off; rebuilding it from a scan");
        wipe(dir)?;
    }
    match SearchIndex::open(dir, definition.clone()) {
        Ok(index) => Ok(index),
        Err(e @ SearchError::Locked { .. }) => Err(e.into()),
        Err(e) => {
            tracing::warn!(collection = %definition.collection, error = %e, "search index cannot be opened; rebuilding it from a scan");
            wipe(dir)?;
            Ok(SearchIndex::open(dir, definition)?)
        }
    }
}

impl Follower {
    /// Why the index is gone: dropped (`NoIndex`, as for a search that
    /// came after the drop) or the database closed.
    fn gone(&self) -> Error {
        if self.dropped.load(Ordering::Acquire) {
            Error::Search(SearchError::NoIndex { collection: self.collection.clone() })
        } else {
            Error::Closed
        }
    }

    fn stop(&self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
    }

    /// Runs `step` on the open index; on failure returns the index to its
    /// last commit (nothing half-applied stays) and has the next step read
    /// from the feed (the commits taken from the inbox are gone), so the
    /// next attempt starts from a known position. Blocking.
    fn with_index<T>(&self, step: impl FnOnce(&Self, &mut SearchIndex) -> Result<T>) -> Result<T> {
        let mut guard = self.index.write();
        let Some(index) = guard.as_mut() else { return Err(self.gone()) };
        let result = step(self, index);
        if result.is_err() {
            self.inbox.lock().from_feed = true;
            if let Err(e) = index.rollback() {
                tracing::error!(collection = %self.collection, error = %e, "search index rollback failed");
            }
        }
        result
    }

    /// Applies the commits delivered to the inbox; after a lag or a
    /// failure, everything from the feed instead; a new index is first
    /// built from a scan (then the delivered commits after its snapshot
    /// are applied). Blocking; the caller holds the index's write lock.
    fn apply_delivered(&self, index: &mut SearchIndex) -> Result<()> {
        let (commits, from_feed) = self.inbox.lock().drain();
        if from_feed || index.is_new() {
            self.apply_feed(index)?;
        }
        if from_feed {
            return Ok(());
        }
        self.apply_events(index, &commits)
    }

    /// Read-your-writes: applies the commits already delivered to the
    /// listener (kept in memory: no feed read), then from the feed any
    /// commit up to the feed head not delivered yet, then makes it
    /// searchable. Returns the sequence the index reflects. Blocking.
    fn catch_up(&self) -> Result<u64> {
        self.with_index(|f, index| {
            f.apply_delivered(index)?;
            f.read_feed(index)?;
            index.publish()?;
            f.published(index)?;
            Ok(index.applied())
        })
    }

    /// One round of the background follower: applies the delivered commits
    /// (or, after a lag or a failure, everything from the feed), and makes
    /// them searchable unless the last publish was less than
    /// [`SEARCH_PUBLISH_INTERVAL`] ago. Returns when to publish what is
    /// left. Blocking.
    fn step(&self) -> Result<Option<Instant>> {
        self.with_index(|f, index| {
            // A rebuild is published at once: until then the index is
            // still new, and another rebuild would not remove the
            // documents of this one still in tantivy's indexing queue.
            let building = index.is_new();
            f.apply_delivered(index)?;
            if !index.has_uncommitted() {
                return Ok(None);
            }
            let due = *f.last_publish.lock() + SEARCH_PUBLISH_INTERVAL;
            if !building && Instant::now() < due {
                return Ok(Some(due));
            }
            index.publish()?;
            f.published(index)?;
            Ok(None)
        })
    }

    /// After a publish: notes the time, and drops the stale mark once a
    /// rebuild is committed.
    fn published(&self, index: &SearchIndex) -> Result<()> {
        *self.last_publish.lock() = Instant::now();
        let stale = self.dir.join(STALE_FILE);
        if index.durable() == index.applied() && stale.exists() {
            std::fs::remove_file(&stale).map_err(|e| folder_error(&stale, &e))?;
        }
        Ok(())
    }

    /// Applies commits delivered to the follower's listener, in order,
    /// skipping those the index already has. The listener was subscribed
    /// before the index first caught up and reports any gap as a lag, so
    /// every commit of the collection after the index's position is here.
    fn apply_events(&self, index: &mut SearchIndex, commits: &[CommitEvents]) -> Result<()> {
        for commit in commits {
            if commit.sequence <= index.pending() {
                continue;
            }
            index.apply(commit.events.iter().filter(|e| e.collection == self.collection).map(|e| {
                match (e.change_type, e.document.as_deref()) {
                    (ChangeType::Insert, Some(doc)) => DocChange::Insert(&e.id, doc),
                    (ChangeType::Update, Some(doc)) => {
                        DocChange::Update { id: &e.id, before: e.old_document.as_deref(), after: doc }
                    }
                    _ => DocChange::Delete(&e.id),
                }
            }))?;
            index.advance(commit.sequence);
        }
        Ok(())
    }

    /// Applies, from the persistent feed, every commit of the collection
    /// after the index's position (not yet searchable); or rebuilds it
    /// from a scan if it is new, the feed no longer holds that history, or
    /// the index is ahead of the database (commits lost in a crash).
    fn apply_feed(&self, index: &mut SearchIndex) -> Result<()> {
        if index.is_new() {
            return self.rebuild(index);
        }
        self.read_feed(index)
    }

    /// Applies, from the persistent feed, every commit of the collection
    /// after the index's pending position (a new index just rebuilt from
    /// a scan included: its position is the scan's snapshot); or rebuilds
    /// it from a scan if the feed no longer holds that history or the
    /// index is ahead of the database.
    fn read_feed(&self, index: &mut SearchIndex) -> Result<()> {
        let head = self.db.feed_head();
        if index.pending() > head {
            tracing::warn!(collection = %self.collection, position = index.pending(), head, "search index is ahead of the database (commits lost in a crash); rebuilding from a scan");
            return self.rebuild(index);
        }
        if index.pending() == head {
            return Ok(());
        }
        match self.db.changes_since(index.pending()) {
            Ok(commits) => {
                self.feed_commits.fetch_add(commits.len() as u64, Ordering::Relaxed);
                for commit in &commits {
                    index.apply(commit.changes.iter().filter(|c| c.collection == self.collection).map(|c| {
                        match (c.kind, c.new.as_deref()) {
                            (ChangeKind::Insert, Some(doc)) => DocChange::Insert(&c.id, doc),
                            (ChangeKind::Update, Some(doc)) => {
                                DocChange::Update { id: &c.id, before: c.old.as_deref(), after: doc }
                            }
                            _ => DocChange::Delete(&c.id),
                        }
                    }))?;
                    index.advance(commit.sequence);
                }
                index.advance(head);
                Ok(())
            }
            Err(TxnError::FeedTruncated { requested, oldest }) => {
                tracing::warn!(collection = %self.collection, requested, oldest, "change feed trimmed past the search index's position; rebuilding from a scan");
                self.rebuild(index)
            }
            Err(TxnError::HistoryNotKept { sequence, .. }) => {
                tracing::warn!(collection = %self.collection, sequence, "the change feed no longer holds what an entry after the search index's position wrote (changed while the feed was off); rebuilding from a scan");
                self.rebuild(index)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the index's content with the collection at a snapshot,
    /// positioned at the snapshot's sequence (searchable at the next
    /// publish).
    fn rebuild(&self, index: &mut SearchIndex) -> Result<()> {
        let mut tx = self.db.begin_with(Isolation::Snapshot)?;
        let at = tx.snapshot_revision();
        let docs = match tx.scan_shared(&self.collection) {
            Ok(docs) => docs,
            Err(TxnError::Index(aurora_index::IndexError::UnknownCollection(_))) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        index.clear()?;
        index.apply(docs.iter().map(|d| DocChange::Insert(&d.id, d)))?;
        index.advance(at);
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Starts following: catches up now (a new index is built from a scan),
/// then follows the collection's commits in a background task.
async fn start(db: &Aurora, definition: SearchDefinition, dir: PathBuf) -> Result<Arc<Follower>> {
    let collection = definition.collection.clone();
    let open_dir = dir.clone();
    let index = blocking(move || {
        std::fs::create_dir_all(&open_dir).map_err(|e| folder_error(&open_dir, &e))?;
        definition.save(&open_dir)?;
        open_index(&open_dir, definition)
    })
    .await?;
    let fresh = index.is_new();
    // Subscribe before catching up: no commit falls between the two. The
    // listener buffers up to SEARCH_EVENT_BUFFER events: a follower that
    // lags reads the commits back from the feed, which costs more than
    // the events themselves (each document is looked up again), so under
    // a burst of bulk inserts a small buffer makes it slower still.
    let listener = db.search_listener(&collection);
    let follower = Arc::new(Follower {
        collection: collection.clone(),
        db: db.database().clone(),
        index: RwLock::new(Some(index)),
        inbox: Mutex::new(Inbox { listener, taken: Vec::new(), from_feed: false, waker: None }),
        rebuilds: AtomicU64::new(0),
        feed_commits: AtomicU64::new(0),
        last_publish: Mutex::new(Instant::now()),
        dir,
        task: Mutex::new(None),
        dropped: std::sync::atomic::AtomicBool::new(false),
    });
    let f = follower.clone();
    blocking(move || f.catch_up().map(drop)).await?;
    if fresh {
        // Building a new index is not a rebuild.
        follower.rebuilds.fetch_sub(1, Ordering::Relaxed);
    }
    let f = follower.clone();
    let task = tokio::spawn(async move {
        let mut due: Option<Instant> = None;
        loop {
            let wait = due.map(tokio::time::Instant::from_std);
            tokio::select! {
                open = std::future::poll_fn(|cx| f.inbox.lock().poll_ready(cx)) => if !open { break },
                () = async { if let Some(at) = wait { tokio::time::sleep_until(at).await } }, if wait.is_some() => {}
            }
            // Every commit already delivered is taken in this step.
            let step = f.clone();
            match tokio::task::spawn_blocking(move || step.step()).await {
                Ok(Ok(next)) => due = next,
                Ok(Err(Error::Closed | Error::Search(SearchError::NoIndex { .. }))) | Err(_) => break,
                Ok(Err(e)) => {
                    // The step set the inbox to read from the feed.
                    tracing::error!(collection = %f.collection, error = %e, "search index catch-up failed; retried from the feed");
                    due = Some(Instant::now() + RETRY_AFTER);
                }
            }
        }
    });
    *follower.task.lock() = Some(task);
    db.search_indexes().followers.lock().insert(collection, follower.clone());
    Ok(follower)
}

/// Opens every search index found in the database folder (at open). With
/// the change feed off, indexes cannot follow commits: they are marked
/// stale (rebuilt at the next open with the feed on) and not opened.
pub(crate) async fn open_all(db: &Aurora) -> Result<()> {
    let root = db.config().path.join(SEARCH_FOLDER);
    let Ok(entries) = std::fs::read_dir(&root) else { return Ok(()) };
    for entry in entries.flatten() {
        let dir = entry.path();
        if let Some(definition) = SearchDefinition::load(&dir)? {
            if db.config().change_feed_retention == 0 {
                let stale = dir.join(STALE_FILE);
                std::fs::write(&stale, b"").map_err(|e| folder_error(&stale, &e))?;
                continue;
            }
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
        let _one_at_a_time = self.search_indexes().admin.lock().await;
        if let Ok(existing) = self.search_indexes().get(collection) {
            let same = existing.index.read().as_ref().is_some_and(|i| i.definition() == &definition);
            return if same {
                Ok(())
            } else {
                Err(Error::Search(SearchError::IndexExists { collection: collection.to_string() }))
            };
        }
        let dir = index_dir(&self.config().path, collection);
        match start(self, definition, dir.clone()).await {
            Ok(_) => Ok(()),
            Err(e) => {
                // Leave nothing behind that the next open would start.
                let removed = blocking(move || std::fs::remove_dir_all(&dir).map_err(|e| folder_error(&dir, &e))).await;
                if let Err(r) = removed {
                    tracing::warn!(error = %r, "could not remove the folder of a search index that failed to build");
                }
                Err(e)
            }
        }
    }

    /// Drops `collection`'s search index and deletes its files; `false` if
    /// there was none. A catch-up in progress finishes first; searches
    /// after it are `NoIndex`.
    ///
    /// # Errors
    /// `Error::Search(DefinitionFile)` if the folder cannot be removed.
    pub async fn drop_search_index(&self, collection: &str) -> Result<bool> {
        let _one_at_a_time = self.search_indexes().admin.lock().await;
        let Some(follower) = self.search_indexes().followers.lock().remove(collection) else { return Ok(false) };
        follower.dropped.store(true, Ordering::Release);
        follower.stop();
        let dir = index_dir(&self.config().path, collection);
        blocking(move || {
            let index = follower.index.write().take();
            if let Some(index) = index {
                // Background merges finish before the files go.
                if let Err(e) = index.close() {
                    tracing::warn!(error = %e, "a merge of a dropped search index failed");
                }
            }
            std::fs::remove_dir_all(&dir).map_err(|e| folder_error(&dir, &e))
        })
        .await?;
        Ok(true)
    }

    /// The follower of `collection`'s index.
    fn search_follower(&self, collection: &str) -> Result<Arc<Follower>> {
        if self.config().change_feed_retention == 0 {
            return Err(Error::Search(SearchError::FeedOff));
        }
        self.search_indexes().get(collection)
    }

    /// Waits until `collection`'s search index reflects every commit up to
    /// now (at least the sequence of any write already returned), and
    /// returns the sequence it reflects. Read-your-writes:
    /// `db.insert_into(..)` then `db.search_caught_up(..)` (or a search with
    /// [`SearchBuilder::consistent`]).
    ///
    /// # Errors
    /// `Error::Search(NoIndex)`; `Error::Search(FeedOff)` (the database
    /// was opened with the change feed off: its indexes are not followed,
    /// and are rebuilt at the next open with it on); `Error::Closed`; I/O
    /// errors of the index.
    pub async fn search_caught_up(&self, collection: &str) -> Result<u64> {
        let follower = self.search_follower(collection)?;
        blocking(move || follower.catch_up()).await
    }

    /// Where `collection`'s search index stands.
    ///
    /// # Errors
    /// `Error::Search(NoIndex)`, `Error::Search(FeedOff)`; `Error::Closed`.
    pub fn search_index_status(&self, collection: &str) -> Result<SearchIndexStatus> {
        let follower = self.search_follower(collection)?;
        let guard = follower.index.read();
        let index = guard.as_ref().ok_or_else(|| follower.gone())?;
        Ok(SearchIndexStatus {
            sequence: index.applied(),
            durable_sequence: index.durable(),
            documents: index.len(),
            segments: index.segments() as u64,
            rebuilds: follower.rebuilds.load(Ordering::Relaxed),
            feed_commits: follower.feed_commits.load(Ordering::Relaxed),
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
    /// tantivy segments its searchable state is made of (each tantivy
    /// commit with changed documents writes one; background merges join
    /// them).
    pub segments: u64,
    /// Times it was rebuilt from a scan (feed trimmed past its position,
    /// or the index ahead of a database that lost commits in a crash)
    /// since the database was opened.
    pub rebuilds: u64,
    /// Commits it read back from the persistent change feed since the
    /// database was opened — after its listener lagged (more than
    /// [`SEARCH_EVENT_BUFFER`] events behind), after a failed step, to
    /// catch up at open, or for a consistent search when a commit was in
    /// the feed but not yet delivered to the listener — instead of taking
    /// them from the in-memory events (the cheap way: a feed read looks
    /// each document up again).
    pub feed_commits: u64,
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
        self.db.search_follower(&self.collection)?;
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
        let follower = self.db.search_follower(&self.collection)?;
        let read = self.db.clone();
        blocking(move || {
            if self.consistent {
                follower.catch_up()?;
            }
            let guard = follower.index.read();
            let index = guard.as_ref().ok_or_else(|| follower.gone())?;
            let sequence = index.applied();
            let mut tx = read.begin_read()?;
            // Bounded work: at most MAX_SEARCH_CANDIDATES ranked results
            // are read, whatever the window.
            let want = self.offset.saturating_add(self.limit).min(MAX_SEARCH_CANDIDATES);
            let mut asked =
                if self.filter.is_some() { want.saturating_mul(4).clamp(64, MAX_SEARCH_CANDIDATES) } else { want };
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

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_core::{doc, DocId};

    /// The follower's background task stopped: commits wait in its
    /// listener, as they do when it falls behind under a burst of writes.
    async fn stalled_follower(db: &Aurora) -> Arc<Follower> {
        db.new_collection("m", Vec::<(&str, crate::FieldDefinition)>::new()).await.unwrap();
        db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
        let follower = db.search_indexes().get("m").unwrap();
        follower.stop();
        follower
    }

    #[tokio::test]
    async fn catch_up_applies_the_delivered_commits_without_reading_the_feed() {
        let db = Aurora::temporary().await.unwrap();
        let follower = stalled_follower(&db).await;
        let before = follower.feed_commits.load(Ordering::Relaxed);
        for i in 0..5 {
            db.insert_into("m", doc! { "body": format!("common word{i}") }).await.unwrap();
        }
        let head = db.feed_head().unwrap();
        assert_eq!(db.search_caught_up("m").await.unwrap(), head);
        assert_eq!(db.search("m", "common").run().await.unwrap().hits.len(), 5);
        assert_eq!(
            follower.feed_commits.load(Ordering::Relaxed),
            before,
            "the five commits were in the listener: none is read back from the feed"
        );
        db.close().await.unwrap();
    }

    #[tokio::test]
    async fn an_index_built_over_existing_documents_is_built_once() {
        let db = Aurora::temporary().await.unwrap();
        db.new_collection("m", Vec::<(&str, crate::FieldDefinition)>::new()).await.unwrap();
        let id = DocId::text("d0").unwrap();
        db.upsert("m", doc! { "body": "old" }.id(id.clone())).await.unwrap();
        db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
        let status = db.search_index_status("m").unwrap();
        assert_eq!((status.documents, status.rebuilds), (1, 0), "built once from the scan, not rebuilt");
        db.upsert("m", doc! { "body": "new" }.id(id)).await.unwrap();
        db.search_caught_up("m").await.unwrap();
        assert_eq!(db.search_index_status("m").unwrap().documents, 1);
        assert!(db.search("m", "old").run().await.unwrap().hits.is_empty());
        assert_eq!(db.search("m", "new").run().await.unwrap().hits.len(), 1);
        db.close().await.unwrap();
    }

    #[tokio::test]
    async fn catch_up_after_a_lag_reads_the_feed_and_skips_the_delivered_duplicates() {
        let db = Aurora::temporary().await.unwrap();
        let follower = stalled_follower(&db).await;
        db.insert_into("m", doc! { "body": "first" }).await.unwrap();
        // As after a lag (or a failed step): the delivered events cannot be trusted.
        follower.inbox.lock().from_feed = true;
        db.insert_into("m", doc! { "body": "second" }).await.unwrap();
        let before = follower.feed_commits.load(Ordering::Relaxed);
        db.search_caught_up("m").await.unwrap();
        assert_eq!(follower.feed_commits.load(Ordering::Relaxed) - before, 2, "both commits read from the feed");
        db.insert_into("m", doc! { "body": "third" }).await.unwrap();
        db.search_caught_up("m").await.unwrap();
        assert_eq!(follower.feed_commits.load(Ordering::Relaxed) - before, 2, "back to the listener");
        for word in ["first", "second", "third"] {
            assert_eq!(db.search("m", word).run().await.unwrap().hits.len(), 1, "{word} indexed once");
        }
        assert_eq!(db.search_index_status("m").unwrap().documents, 3);
        db.close().await.unwrap();
    }
}
