//! [`QueryBuilder`]: `db.query("users").filter(..).order_by(..).collect().await`.

use crate::db::Aurora;
use crate::error::{Error, Result};
use aurora_core::{DocId, Document, Fields};
use aurora_query::{Aggregate, Cursor, Filter, Group, Order, Page, Plan, Query, F};
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
        let limits = db.config().script_limits;
        Self { db, query: Query::new(collection).with_computed(computed).with_script_limits(limits) }
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

    /// Keyset paging: start after this cursor (from [`Page::next_cursor`]).
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.query = self.query.after(cursor);
        self
    }

    /// The query as data.
    pub fn as_query(&self) -> &Query {
        &self.query
    }

    /// Runs a read on a snapshot — here, or on tokio's blocking pool when
    /// the query evaluates scripts (they wait on a sandbox process, and an
    /// executor worker must never wait on that).
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Query, &mut aurora_txn::Transaction) -> aurora_query::Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.query.runs_scripts() {
            let (db, query) = (self.db.clone(), self.query.clone());
            return crate::db::blocking(move || {
                let mut tx = db.begin_read()?;
                Ok(f(&query, &mut tx)?)
            })
            .await;
        }
        // Read-only: a snapshot is all it needs (no read set to record).
        let mut tx = self.db.begin_read()?;
        Ok(f(&self.query, &mut tx)?)
    }

    /// The matching documents.
    pub async fn collect(self) -> Result<Vec<Document>> {
        self.read(Query::collect).await
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
    pub async fn watch(self) -> Result<Watcher> {
        let scripts = self.query.runs_scripts();
        let listener = self.db.listen_filtered(self.query.collection(), Watcher::listener_filter(&self.query))?;
        let db = self.db.database().clone();
        let start = move || Ok(Watcher::start(db, self.query, listener)?);
        if scripts {
            crate::db::blocking(start).await
        } else {
            start()
        }
    }

    /// How many documents match.
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

    /// Merges `patch`'s fields into every match in one transaction; returns how many.
    pub async fn update(self, patch: Document) -> Result<u64> {
        if let Err(e) = aurora_core::validate_fields(&patch.fields) {
            aurora_core::dispose_document(patch);
            return Err(e.into());
        }
        let (query, fields): (Query, Fields) = (self.query.clone(), patch.fields);
        self.write(move |tx| query.update(tx, &fields)).await
    }

    async fn write(
        self,
        body: impl Fn(&mut aurora_txn::Transaction) -> aurora_query::Result<u64> + Send + Sync + 'static,
    ) -> Result<u64> {
        let scripts = self.query.runs_scripts();
        let body = std::sync::Arc::new(body);
        let mut last = None;
        for _ in 0..aurora_txn::MAX_TRANSACTION_ATTEMPTS {
            let mut tx = self.db.begin()?;
            let (tx, n) = if scripts {
                // Matching evaluates scripts: off the executor's workers.
                let body = std::sync::Arc::clone(&body);
                crate::db::blocking(move || {
                    let n = body(&mut tx)?;
                    Ok((tx, n))
                })
                .await?
            } else {
                let n = body(&mut tx)?;
                (tx, n)
            };
            match tx.commit().await {
                Ok(_) => return Ok(n),
                Err(e @ Error::Conflict { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(Error::Task("no attempt was made".into())))
    }
}
