//! [`Client`]: a connection to an Aurora server — collections, documents,
//! queries, write batches, streams and jobs over the HTTP + SSE API.

use crate::batch::{BatchResult, WriteBatch};
use crate::error::transport;
use crate::http::{encode, ClientOptions, Http};
use crate::jobs::{JobSummary, NewJob};
use crate::query::{Page, Query};
use crate::schema::schema_json;
use crate::streams::{ChangeStream, LiveQuery};
use crate::typed::TypedCollection;
use aurora::index::Schema;
use aurora::{DocId, Document, Error, Filter, JobStatus, Order, Result, Update, UpdateOp, F};
use hyper::Method;
use serde_json::{json, Map, Value as Json};

/// A connection to an Aurora server (`aurora serve`). Cheap to clone: the
/// clones share one pool of keep-alive connections.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> aurora::Result<()> {
/// use aurora::doc;
/// use aurora_client::Client;
/// let db = Client::connect("http://127.0.0.1:7878", None).await?;
/// let id = db.insert("notes", doc! { "text": "hello" }).await?;
/// assert!(db.get("notes", &id).await?.is_some());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) http: Http,
}

/// A collection as the server describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionInfo {
    /// The name.
    pub name: String,
    /// Documents held.
    pub count: u64,
    /// Bytes held.
    pub bytes: u64,
    /// The schema, in the server's JSON form (`docs/server.md`).
    pub schema: Json,
    /// The indexes, in the server's JSON form.
    pub indexes: Vec<Json>,
}

fn collection_path(c: &str) -> String {
    format!("/v1/collections/{}", encode(c))
}

fn document_path(c: &str, id: &DocId) -> String {
    // A text id spelled like a UUID (or starting with `~`) is written `~text`.
    format!("/v1/collections/{}/documents/{}", encode(c), encode(&id.to_path_segment()))
}

pub(crate) fn bad_response(what: &str) -> Error {
    transport("bad_response", format!("the server's answer has no valid {what}"))
}

pub(crate) fn document(json: &Json) -> Result<Document> {
    Ok(Document::from_json(json)?)
}

fn id_of(json: &Json) -> Result<DocId> {
    Ok(DocId::from_json(json.get("_id").ok_or_else(|| bad_response("`_id`"))?)?)
}

/// An update in the JSON form `PATCH` takes (operators; a merge is a `$set`
/// of each top-level field).
pub(crate) fn update_json(update: &Update) -> Result<Json> {
    // The entry rules every write obeys, checked here as the embedded
    // handle checks them (same error), and before a value nested past the
    // limit is walked to write its JSON.
    update.check(|_| None).map_err(Error::Update)?;
    let mut ops: Map<String, Json> = Map::new();
    let mut put = |op: &str, path: &str, v: Json| {
        if let Json::Object(m) = ops.entry(op.to_string()).or_insert_with(|| Json::Object(Map::new())) {
            m.insert(path.to_string(), v);
        }
    };
    let mut unset = Vec::new();
    for op in &update.ops {
        match op {
            UpdateOp::Set(p, v) => put("$set", p, v.to_json()),
            UpdateOp::SetIfAbsent(p, v) => put("$setIfAbsent", p, v.to_json()),
            UpdateOp::Unset(p) => unset.push(json!(p)),
            UpdateOp::Increment(p, v) => put("$inc", p, v.to_json()),
            UpdateOp::Push(p, v) => put("$push", p, v.to_json()),
            UpdateOp::Pull(p, v) => put("$pull", p, v.to_json()),
            UpdateOp::Merge(fields) => {
                for (k, v) in fields {
                    put("$set", k, v.to_json());
                }
            }
            other => {
                return Err(Error::Core(aurora::CoreError::Conversion(format!(
                    "the server's update form has no operator for {other:?}"
                ))))
            }
        }
    }
    if !unset.is_empty() {
        ops.insert("$unset".into(), Json::Array(unset));
    }
    Ok(Json::Object(ops))
}

impl Client {
    /// Connects to the server at `address` (`http://host:port`) with an API
    /// key (`None` for a loopback server without keys), and checks that it
    /// answers `/v1/health`.
    pub async fn connect(address: &str, api_key: Option<&str>) -> Result<Self> {
        Self::connect_with(address, api_key, ClientOptions::default()).await
    }

    /// [`Client::connect`] with other time and size limits than the
    /// defaults (every request is bounded by them; see [`ClientOptions`]).
    pub async fn connect_with(address: &str, api_key: Option<&str>, options: ClientOptions) -> Result<Self> {
        let client = Self { http: Http::new(address, api_key, options)? };
        client.health().await?;
        Ok(client)
    }

    /// The server's address.
    pub fn address(&self) -> &str {
        self.http.base()
    }

    /// `GET /v1/health`: `{"status": "ok", "version", "feed_head"}`.
    pub async fn health(&self) -> Result<Json> {
        self.http.call(Method::GET, "/v1/health", None).await
    }

    /// The change feed's head: the sequence of the last commit.
    pub async fn feed_head(&self) -> Result<u64> {
        self.health().await?.get("feed_head").and_then(Json::as_u64).ok_or_else(|| bad_response("`feed_head`"))
    }

    /// The metrics, in Prometheus' text form.
    pub async fn metrics(&self) -> Result<String> {
        self.http.text("/v1/metrics").await
    }

    // ---- collections ------------------------------------------------------

    /// The collections this key may read.
    pub async fn list_collections(&self) -> Result<Vec<String>> {
        let j = self.http.call(Method::GET, "/v1/collections", None).await?;
        let list = j.get("collections").and_then(Json::as_array).ok_or_else(|| bad_response("`collections`"))?;
        Ok(list.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
    }

    /// Creates a collection with a schema (`Schema::new()` for none).
    pub async fn create_collection(&self, name: &str, schema: &Schema) -> Result<()> {
        let body = json!({ "name": name, "schema": schema_json(schema) });
        self.http.call(Method::POST, "/v1/collections", Some(&body)).await.map(drop)
    }

    /// Drops a collection and its documents.
    pub async fn drop_collection(&self, name: &str) -> Result<()> {
        self.http.call(Method::DELETE, &collection_path(name), None).await.map(drop)
    }

    /// A collection's count, size, schema and indexes.
    pub async fn collection(&self, name: &str) -> Result<CollectionInfo> {
        let j = self.http.call(Method::GET, &collection_path(name), None).await?;
        Ok(CollectionInfo {
            name: name.to_string(),
            count: j.get("count").and_then(Json::as_u64).ok_or_else(|| bad_response("`count`"))?,
            bytes: j.get("bytes").and_then(Json::as_u64).unwrap_or(0),
            schema: j.get("schema").cloned().unwrap_or(Json::Null),
            indexes: j.get("indexes").and_then(Json::as_array).cloned().unwrap_or_default(),
        })
    }

    /// Creates an index on one field or, with several, a compound index.
    pub async fn create_index(&self, collection: &str, fields: &[&str], unique: bool) -> Result<()> {
        let body = json!({ "fields": fields, "unique": unique });
        self.http.call(Method::POST, &format!("{}/indexes", collection_path(collection)), Some(&body)).await.map(drop)
    }

    // ---- documents --------------------------------------------------------

    /// Inserts a document; returns its id.
    pub async fn insert(&self, collection: &str, doc: Document) -> Result<DocId> {
        if let Err(e) = doc.validate() {
            aurora::dispose_document(doc);
            return Err(e.into());
        }
        let path = format!("{}/documents", collection_path(collection));
        id_of(&self.http.call(Method::POST, &path, Some(&doc.to_json())).await?)
    }

    /// Reads a document (`None` if there is none with this id).
    pub async fn get(&self, collection: &str, id: &DocId) -> Result<Option<Document>> {
        match self.http.call(Method::GET, &document_path(collection, id), None).await {
            Ok(j) => Ok(Some(document(&j)?)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads a document with its revision (for a [`WriteBatch`] condition).
    pub async fn get_versioned(&self, collection: &str, id: &DocId) -> Result<Option<(Document, u64)>> {
        match self.http.call_etag(&document_path(collection, id)).await {
            Ok((j, Some(revision))) => Ok(Some((document(&j)?, revision))),
            Ok((_, None)) => Err(bad_response("`ETag` (the document's revision)")),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces a document (it must exist).
    pub async fn replace(&self, collection: &str, doc: Document) -> Result<()> {
        if let Err(e) = doc.validate() {
            aurora::dispose_document(doc);
            return Err(e.into());
        }
        let path = document_path(collection, &doc.id);
        self.http.call(Method::PUT, &path, Some(&doc.to_json())).await.map(drop)
    }

    /// Applies an update (operators or a merge); returns the new document.
    pub async fn update(&self, collection: &str, id: &DocId, update: impl Into<Update>) -> Result<Document> {
        // The entry check of the embedded handle (`Aurora::update_document`):
        // a value nested past the limit is `CoreError::TooDeep` on both.
        let update = update.into().admit_values(|d| match d.validate() {
            Ok(()) => Ok(d),
            Err(e) => {
                aurora::dispose_document(d);
                Err(e)
            }
        })?;
        let body = match update_json(&update) {
            Ok(b) => b,
            Err(e) => {
                aurora::dispose_update(update);
                return Err(e);
            }
        };
        document(&self.http.call(Method::PATCH, &document_path(collection, id), Some(&body)).await?)
    }

    /// Deletes a document; false if there was none.
    pub async fn delete(&self, collection: &str, id: &DocId) -> Result<bool> {
        match self.http.call(Method::DELETE, &document_path(collection, id), None).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A typed view of a collection (serde types, `_id` as the id).
    pub fn typed<T>(&self, collection: &str) -> TypedCollection<T> {
        TypedCollection::new(self.clone(), collection)
    }

    // ---- queries ----------------------------------------------------------

    /// A query on `collection`, built like the embedded one.
    pub fn query(&self, collection: &str) -> RemoteQuery {
        RemoteQuery { client: self.clone(), collection: collection.to_string(), query: Query::new(), cursor: None }
    }

    /// Runs `query` on `collection` (one page: up to its limit, capped by the server).
    pub async fn find(&self, collection: &str, query: &Query) -> Result<Vec<Document>> {
        RemoteQuery { client: self.clone(), collection: collection.into(), query: query.clone(), cursor: None }
            .collect()
            .await
    }

    // ---- writes in one transaction ---------------------------------------

    /// Commits a batch of writes all or nothing (conditions checked first).
    pub async fn commit(&self, batch: WriteBatch) -> Result<BatchResult> {
        let body = match batch.to_json() {
            Ok(b) => b,
            Err(e) => {
                batch.dispose();
                return Err(e);
            }
        };
        let j = self.http.call(Method::POST, "/v1/transactions", Some(&body)).await?;
        Ok(BatchResult {
            sequence: j.get("sequence").and_then(Json::as_u64).ok_or_else(|| bad_response("`sequence`"))?,
            results: j.get("results").and_then(Json::as_array).cloned().unwrap_or_default(),
        })
    }

    // ---- streams ----------------------------------------------------------

    /// The change stream of `collection` (`None`: every collection the key
    /// reads), from just after sequence `after` (`None`: from now — the
    /// feed's head is read before this returns, so every commit after the
    /// call is delivered). It returns once the server accepted the stream;
    /// then it reconnects by itself and resumes after the last commit
    /// delivered.
    ///
    /// Errors: the embedded handle's for the same mistake —
    /// `UnknownCollection`, and `Error::Transaction(TxnError::FeedTruncated
    /// { requested, oldest })` for a position the feed no longer holds (also
    /// as the stream's last item, if a reconnection finds the position
    /// trimmed); `Error::Remote` for a refusal (`forbidden`) or a server
    /// that cannot be reached.
    pub async fn changes(&self, collection: Option<&str>, after: Option<u64>) -> Result<ChangeStream> {
        let after = match after {
            Some(a) => a,
            None => self.feed_head().await?,
        };
        ChangeStream::open(self.http.clone(), collection.map(str::to_string), after).await
    }

    /// A live query: its results, then ordered updates. It returns once
    /// the server sent the results (a bad query or an unknown collection
    /// is the error, as on the embedded handle); then it reconnects by
    /// itself.
    pub async fn live(&self, collection: &str, query: &Query) -> Result<LiveQuery> {
        LiveQuery::open(self.http.clone(), collection, &query.to_json()).await
    }

    // ---- jobs -------------------------------------------------------------

    /// Enqueues a job; returns its id.
    pub async fn enqueue(&self, job: &NewJob) -> Result<DocId> {
        let j = self.http.call(Method::POST, "/v1/jobs", Some(&job.to_json())).await?;
        Ok(DocId::from_json(j.get("id").ok_or_else(|| bad_response("`id`"))?)?)
    }

    /// Jobs in `status`, at most `limit`.
    pub async fn jobs(&self, status: JobStatus, limit: usize) -> Result<Vec<JobSummary>> {
        let path = format!("/v1/jobs?status={}&limit={limit}", status.as_str());
        let j = self.http.call(Method::GET, &path, None).await?;
        let list = j.get("jobs").and_then(Json::as_array).ok_or_else(|| bad_response("`jobs`"))?;
        list.iter().map(JobSummary::from_json).collect()
    }

    /// One job (`None` if unknown).
    pub async fn job(&self, id: &DocId) -> Result<Option<JobSummary>> {
        match self.http.call(Method::GET, &format!("/v1/jobs/{}", encode(&id.to_path_segment())), None).await {
            Ok(j) => Ok(Some(JobSummary::from_json(&j)?)),
            Err(Error::Remote { code, .. }) if code == "job_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Cancels a job that has not finished; false if it had.
    pub async fn cancel_job(&self, id: &DocId) -> Result<bool> {
        let j =
            self.http.call(Method::POST, &format!("/v1/jobs/{}/cancel", encode(&id.to_path_segment())), None).await?;
        Ok(j.get("cancelled").and_then(Json::as_bool).unwrap_or(false))
    }

    /// Puts a failed or dead-letter job back in the queue with a fresh retry
    /// budget; false for any other status.
    pub async fn retry_job(&self, id: &DocId) -> Result<bool> {
        let j =
            self.http.call(Method::POST, &format!("/v1/jobs/{}/retry", encode(&id.to_path_segment())), None).await?;
        Ok(j.get("retried").and_then(Json::as_bool).unwrap_or(false))
    }
}

/// A query on a [`Client`], built like [`aurora::QueryBuilder`]; run it
/// with [`collect`](RemoteQuery::collect), [`page`](RemoteQuery::page) or
/// [`explain`](RemoteQuery::explain).
#[derive(Debug, Clone)]
#[must_use = "a query does nothing until it is run"]
pub struct RemoteQuery {
    client: Client,
    collection: String,
    query: Query,
    cursor: Option<String>,
}

impl RemoteQuery {
    /// Adds a filter (ANDed with earlier ones).
    pub fn filter(mut self, build: impl FnOnce(F) -> Filter) -> Self {
        self.query = self.query.filter(build);
        self
    }

    /// Adds a filter value (ANDed with earlier ones).
    pub fn where_filter(mut self, f: Filter) -> Self {
        self.query = self.query.where_filter(f);
        self
    }

    /// Adds a sort key.
    pub fn order_by(mut self, field: &str, order: Order) -> Self {
        self.query = self.query.order_by(field, order);
        self
    }

    /// At most `n` documents per page.
    pub fn limit(mut self, n: usize) -> Self {
        self.query = self.query.limit(n);
        self
    }

    /// Skips the first `n` matches.
    pub fn offset(mut self, n: usize) -> Self {
        self.query = self.query.offset(n);
        self
    }

    /// Only these fields (and `_id`).
    pub fn select<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.query = self.query.select(fields);
        self
    }

    /// Continues after a page (its [`Page::next_cursor`]).
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// The query built so far.
    pub fn as_query(&self) -> &Query {
        &self.query
    }

    async fn run(&self, explain: bool) -> Result<Json> {
        let mut body = self.query.to_json();
        if let Json::Object(m) = &mut body {
            if let Some(c) = &self.cursor {
                m.insert("cursor".into(), json!(c));
            }
            if explain {
                m.insert("explain".into(), json!(true));
            }
        }
        let path = format!("{}/query", collection_path(&self.collection));
        self.client.http.call(Method::POST, &path, Some(&body)).await
    }

    /// One page and the cursor of the next.
    pub async fn page(self) -> Result<Page> {
        let j = self.run(false).await?;
        let items = j.get("results").and_then(Json::as_array).ok_or_else(|| bad_response("`results`"))?;
        Ok(Page {
            items: items.iter().map(document).collect::<Result<_>>()?,
            next_cursor: j.get("next_cursor").and_then(Json::as_str).map(str::to_string),
        })
    }

    /// The documents of one page.
    pub async fn collect(self) -> Result<Vec<Document>> {
        Ok(self.page().await?.items)
    }

    /// Every match, page after page (for a query without a limit, the
    /// server's page size applies to each page).
    pub async fn collect_all(self) -> Result<Vec<Document>> {
        let mut out = Vec::new();
        let mut q = self;
        loop {
            let page = q.clone().page().await?;
            out.extend(page.items);
            match page.next_cursor {
                // The cursor just sent, again: the same page forever.
                Some(c) if q.cursor.as_deref() == Some(c.as_str()) => {
                    return Err(transport("bad_response", "the server gave the same page cursor twice"))
                }
                Some(c) => q = q.after(c),
                None => return Ok(out),
            }
        }
    }

    /// The plan the server chose (`{"access", "estimated_rows",
    /// "examined_rows", "returned_rows"}`).
    pub async fn explain(self) -> Result<Json> {
        self.run(true).await?.get("plan").cloned().ok_or_else(|| bad_response("`plan`"))
    }
}
