//! [`QueryBuilder`]: `db.query("users").filter(..).order_by(..).collect().await`.

use crate::db::Aurora;
use crate::error::{Error, Result};
use aurora_core::{DocId, Document};
use aurora_query::{Aggregate, Cursor, Filter, Group, Hint, Order, Page, Plan, Query, F};
use aurora_reactive::Watcher;
use serde::de::DeserializeOwned;

/// A query being built on an [`Aurora`] handle. Terminal calls read one
/// consistent snapshot; `delete` and `update` change every match in one
/// transaction (retried on conflict).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> aurora::Result<()> {
/// use aurora::{doc, Aurora, FieldDefinition, FieldType, Order};
/// let db = Aurora::temporary().await?;
/// db.new_collection("users", [("age", FieldDefinition::new(FieldType::Int).indexed())]).await?;
/// for (name, age) in [("ada", 36), ("alan", 41), ("grace", 85)] {
///     db.insert_into("users", doc! { "name": name, "age": age, "status": "active" }).await?;
/// }
/// let older = db
///     .query("users")
///     .filter(|f| f.eq("status", "active") & f.gt("age", 40))
///     .order_by("age", Order::Desc)
///     .select(["name"])
///     .limit(10)
///     .collect()
///     .await?;
/// assert_eq!(older.len(), 2);
/// assert_eq!(older[0].get("name").and_then(|v| v.as_str()), Some("grace"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a query does nothing until a terminal call such as `collect().await`"]
pub struct QueryBuilder {
    db: Aurora,
    query: Query,
}

impl QueryBuilder {
    pub(crate) fn new(db: Aurora, collection: &str, computed: Option<aurora_query::computed::Ordered>) -> Self {
        let alive = db.alive_filter(collection);
        let limits = db.config().script_limits;
        let mut query = Query::new(collection).with_computed(computed).with_script_limits(limits);
        // Expired documents are never read, even before the expiry task
        // deletes them.
        if let Some(alive) = alive {
            query = query.where_filter(alive);
        }
        Self { db, query }
    }

    /// Adds a filter (ANDed with earlier ones): `.filter(|f| f.eq("a", 1) | f.lt("b", 2))`.
    pub fn filter(mut self, build: impl FnOnce(F) -> Filter) -> Self {
        self.query = self.query.filter(build);
        self
    }

    /// A full-text search of `field` for `text` (see
    /// [`Aurora::search`]), keeping this query's filters, limit and offset;
    /// results are ranked by score. Needs the `search` feature and a search
    /// index on the collection.
    #[cfg(feature = "search")]
    pub fn search(self, field: &str, text: &str) -> crate::SearchBuilder {
        crate::search::SearchBuilder::from_query(self.db, &self.query, field, text)
    }

    /// Adds a prebuilt [`Filter`] (ANDed with earlier ones).
    pub fn where_filter(mut self, f: Filter) -> Self {
        self.query = self.query.where_filter(f);
        self
    }

    /// Sorts by a field; further calls add tie-breakers.
    pub fn order_by(mut self, field: &str, order: Order) -> Self {
        self.query = self.query.order_by(field, order);
        self
    }

    /// At most `n` results.
    pub fn limit(mut self, n: usize) -> Self {
        self.query = self.query.limit(n);
        self
    }

    /// Skips `n` matches.
    pub fn offset(mut self, n: usize) -> Self {
        self.query = self.query.offset(n);
        self
    }

    /// Returns only these fields (plus the id).
    pub fn select<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.query = self.query.select(fields);
        self
    }

    /// Overrides the planner for this query: [`Hint::Scan`] reads every
    /// document, [`Hint::Index`] uses only that index (an error if the
    /// filter and order cannot use it). Results are the same either way.
    pub fn hint(mut self, hint: Hint) -> Self {
        self.query = self.query.hint(hint);
        self
    }

    /// Keyset paging: start after this cursor (from [`Page::next_cursor`]).
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.query = self.query.after(cursor);
        self
    }

    /// Stops the query once the instant `at` has passed: the terminal call
    /// fails with `Error::Query(QueryError::TimedOut)` and the work stops
    /// too — the scan on the blocking pool checks the clock every
    /// [`CHECK_EVERY`](crate::query_engine::CHECK_EVERY) documents or index
    /// entries (see [`Query::deadline`]), so a query given up on does not
    /// go on using a thread. For [`QueryBuilder::watch`], the deadline
    /// bounds the initial load only; the live query then runs for as long
    /// as it is held.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> aurora::Result<()> {
    /// use aurora::{doc, query_engine::QueryError, Aurora, Error};
    /// use std::time::{Duration, Instant};
    /// let db = Aurora::temporary().await?;
    /// db.new_collection("logs", Vec::<(&str, aurora::FieldDefinition)>::new()).await?;
    /// db.insert_many("logs", (0..1000).map(|i| doc! { "n": i }).collect()).await?;
    /// let gone = Instant::now() - Duration::from_millis(1);
    /// let late = db.query("logs").filter(|f| f.gt("n", 10)).deadline(gone).collect().await;
    /// assert!(matches!(late, Err(Error::Query(QueryError::TimedOut))));
    /// // With time to spare, the same query answers.
    /// let n = db.query("logs").filter(|f| f.gt("n", 10)).timeout(Duration::from_secs(5)).count().await?;
    /// assert_eq!(n, 989);
    /// # Ok(()) }
    /// ```
    pub fn deadline(mut self, at: std::time::Instant) -> Self {
        self.query = self.query.deadline(at);
        self
    }

    /// A [`QueryBuilder::deadline`] `limit` from now (from this call, not
    /// from when the query starts running).
    pub fn timeout(mut self, limit: std::time::Duration) -> Self {
        self.query = self.query.timeout(limit);
        self
    }

    /// Stops the query — the terminal call fails with
    /// `Error::Query(QueryError::Cancelled)` and the scan stops — once
    /// `token` is cancelled (from any thread or task): for instance when
    /// the caller that wanted the answer has gone. Checked like
    /// [`QueryBuilder::deadline`].
    pub fn cancel_token(mut self, token: crate::CancelToken) -> Self {
        self.query = self.query.cancel_token(token);
        self
    }

    /// The query as data.
    pub fn as_query(&self) -> &Query {
        &self.query
    }

    /// Runs a read on a snapshot, on tokio's blocking pool: a query may
    /// read the whole collection (or evaluate scripts, which wait on a
    /// sandbox process), and an executor worker must never wait on that.
    /// The hand-off costs a few microseconds per query.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Query, &mut aurora_txn::Transaction) -> aurora_query::Result<T> + Send + 'static,
    ) -> Result<T> {
        let (db, query) = (self.db.clone(), self.query.clone());
        crate::db::blocking(move || {
            // Read-only: a snapshot is all it needs (no read set to record).
            let mut tx = db.begin_read()?;
            Ok(f(&query, &mut tx)?)
        })
        .await
    }

    /// The matching documents.
    pub async fn collect(self) -> Result<Vec<Document>> {
        self.read(Query::collect).await
    }

    /// The matches shared instead of copied (`Arc<Document>`): without
    /// `select` or computed fields no document is cloned, which saves a
    /// deep copy per match over [`QueryBuilder::collect`].
    pub async fn collect_shared(self) -> Result<Vec<std::sync::Arc<Document>>> {
        self.read(Query::collect_shared).await
    }

    /// The matches decoded into a serde type.
    pub async fn collect_as<T: DeserializeOwned>(self) -> Result<Vec<T>> {
        let docs = self.read(Query::collect).await?;
        docs.iter().map(|d| d.decode().map_err(Error::from)).collect()
    }

    /// The first match.
    pub async fn first(self) -> Result<Option<Document>> {
        self.read(Query::first).await
    }

    /// The matches one at a time without collecting them (see
    /// `aurora::query_engine::Query::stream`: unordered queries are read
    /// lazily from one snapshot; ordered ones are sorted first). Iterating is
    /// synchronous and each step reads from the database; the iterator owns
    /// its snapshot. Each step of a query with JavaScript computed fields
    /// waits on a sandbox process: from async code, call and iterate this
    /// on a blocking thread (`tokio::task::spawn_blocking`).
    pub fn stream(self) -> Result<impl Iterator<Item = Result<Document>> + Send> {
        let mut tx = self.db.begin_read()?;
        let inner = self.query.stream(&mut tx)?;
        Ok(inner.map(|r| r.map_err(Error::from)))
    }

    /// A live query: the current results in the query's order
    /// (`Watcher::results`), then, commit by commit, the updates that keep
    /// them equal to re-running the query (`Watcher::recv`, or the watcher
    /// as a `Stream`), each with the document's old and new position.
    /// Windowed queries (`limit`, `offset`) keep their window full: when a
    /// member leaves, the next document enters.
    ///
    /// The initial load runs the query: on the blocking pool, like every
    /// other query terminal, within the query's deadline and cancel token
    /// if it has them ([`QueryBuilder::deadline`]); later re-runs of the
    /// live query are not bound by them.
    pub async fn watch(self) -> Result<Watcher> {
        let listener = self.db.listen_filtered(self.query.collection(), Watcher::listener_filter(&self.query))?;
        let db = self.db.database().clone();
        crate::db::blocking(move || Ok(Watcher::start(db, self.query, listener)?)).await
    }

    /// How many documents match.
    /// An `eq` or `in` on an indexed, declared scalar field is counted from
    /// the index without reading documents.
    pub async fn count(self) -> Result<u64> {
        self.read(Query::count).await
    }

    /// Whether any document matches.
    pub async fn exists(self) -> Result<bool> {
        self.read(Query::exists).await
    }

    /// The ids of the matches.
    pub async fn ids(self) -> Result<Vec<DocId>> {
        self.read(Query::ids).await
    }

    /// The plan with estimated and examined rows (runs the query).
    pub async fn explain(self) -> Result<Plan> {
        self.read(Query::explain).await
    }

    /// One page of results and the cursor for the next.
    pub async fn page(self) -> Result<Page> {
        self.read(Query::page).await
    }

    /// Aggregates over all matches, optionally per `group_by` value.
    pub async fn aggregate(self, group_by: Option<&str>, aggregates: &[Aggregate]) -> Result<Vec<Group>> {
        let (group_by, aggregates) = (group_by.map(str::to_owned), aggregates.to_vec());
        self.read(move |q, tx| q.aggregate(tx, group_by.as_deref(), &aggregates)).await
    }

    /// Deletes every match in one transaction; returns how many.
    pub async fn delete(self) -> Result<u64> {
        let query = self.query.clone();
        self.write(move |tx| query.delete(tx)).await
    }

    /// Changes every match in one transaction — a patch document (its
    /// top-level fields are set) or an [`Update`](aurora_core::Update) of
    /// operators (`increment`, `push`, …, see
    /// [`Aurora::update_document`](crate::Aurora::update_document)) — and
    /// returns how many: one commit, one change event per document. An
    /// operator that does not fit a declared type is refused before any
    /// document is read; any error changes nothing.
    pub async fn update(self, patch: impl Into<aurora_core::Update>) -> Result<u64> {
        let update = self.db.admit_update(patch.into())?;
        let query = self.query.clone();
        self.write(move |tx| query.update_with(tx, &update)).await
    }

    /// Runs a bulk write (matching reads the collection, and may evaluate
    /// scripts) in a transaction whose every attempt — matching and commit —
    /// runs on the blocking pool, retried on conflict like
    /// [`Aurora::transaction`](crate::Aurora::transaction).
    async fn write(
        self,
        body: impl Fn(&mut aurora_txn::Transaction) -> aurora_query::Result<u64> + Send + Sync + 'static,
    ) -> Result<u64> {
        self.db.transaction_heavy(move |tx| Ok(body(tx)?)).await
    }
}
