//! The JSON endpoints: health and metrics, collections and indexes,
//! documents, queries, transactions and jobs.

use crate::error::ApiError;
use crate::extract::{RawBody, Who, P, Q};
use crate::json::{self, core_at, object, only};
use crate::keys::Right;
use crate::App;
use aurora::{DocId, Document, Job, JobStatus, Priority, Update, Value};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value as Json_};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Result<T, E = ApiError> = std::result::Result<T, E>;
type AppState = State<Arc<App>>;

/// The name of the job queue's collection, which job rights are checked on.
const JOBS: &str = "_jobs";

fn created(body: Json_, location: Option<String>) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, l);
    }
    response
}

/// Runs `f` (synchronous work that may read a whole collection) on the
/// blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> aurora::Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(e.to_string()))?.map_err(ApiError::from)
}

// ---- health and metrics ---------------------------------------------------

pub(crate) async fn health(State(app): AppState) -> Result<Response> {
    let head = app.db.feed_head()?;
    Ok(Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "feed_head": head })).into_response())
}

pub(crate) async fn metrics(State(app): AppState, Who(who): Who) -> Result<Response> {
    who.require_all(Right::Read)?;
    let mut text = app.db.metrics().await?.to_prometheus();
    app.stats.write_prometheus(&mut text);
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(response)
}

pub(crate) async fn no_route() -> ApiError {
    ApiError::new("no_route", "no such endpoint (the API is under /v1)")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new("method_not_allowed", "this endpoint does not take that method")
}

// ---- collections ----------------------------------------------------------

pub(crate) async fn list_collections(State(app): AppState, Who(who): Who) -> Result<Response> {
    let names: Vec<String> =
        app.db.list_collections()?.into_iter().filter(|c| !c.starts_with('_') && who.can_read(c)).collect();
    Ok(Json(json!({ "collections": names })).into_response())
}

pub(crate) async fn create_collection(State(app): AppState, Who(who): Who, RawBody(raw): RawBody) -> Result<Response> {
    let body = json::body(&raw)?;
    let obj = object(&body, "")?;
    only(obj, "", &["name", "schema"])?;
    let name = json::required_string(obj, "", "name")?.to_string();
    if name == crate::keys::ALL_COLLECTIONS {
        // `*` stands for every collection in a key's rights: a collection
        // of that name could never be granted rights of its own.
        return Err(ApiError::new(
            "invalid_name",
            "`*` stands for every collection in API-key rights; choose another name",
        )
        .with("collection", name.as_str()));
    }
    who.require(&name, Right::Admin)?;
    let schema = match obj.get("schema") {
        Some(s) if !s.is_null() => json::schema(s, "/schema")?,
        _ => aurora::index::Schema::new(),
    };
    app.db.new_collection_with_schema(&name, schema).await?;
    let location = format!("/v1/collections/{}", json::percent_encode(&name));
    Ok(created(json!({ "name": name }), Some(location)))
}

pub(crate) async fn collection_stats(State(app): AppState, Who(who): Who, P(c): P<String>) -> Result<Response> {
    who.require(&c, Right::Read)?;
    let db = app.db.clone();
    let name = c.clone();
    let (stats, schema) = blocking(move || {
        let def = db.database().collections().definition_shared(&name).map_err(aurora::Error::from)?;
        let stats = tokio::runtime::Handle::current().block_on(db.collection_stats(&name))?;
        Ok((stats, def.schema.clone()))
    })
    .await?;
    Ok(Json(json!({
        "name": c,
        "count": stats.count,
        "bytes": stats.bytes,
        "schema": json::schema_json(&schema),
        "indexes": stats.indexes.iter().map(json::index_json).collect::<Vec<_>>(),
    }))
    .into_response())
}

pub(crate) async fn drop_collection(State(app): AppState, Who(who): Who, P(c): P<String>) -> Result<Response> {
    who.require(&c, Right::Admin)?;
    app.db.drop_collection(&c).await?;
    Ok(Json(json!({ "dropped": c })).into_response())
}

pub(crate) async fn list_indexes(State(app): AppState, Who(who): Who, P(c): P<String>) -> Result<Response> {
    who.require(&c, Right::Read)?;
    let db = app.db.clone();
    let stats = blocking(move || Ok(db.database().collections().index_stats(&c)?)).await?;
    Ok(Json(json!({ "indexes": stats.iter().map(json::index_json).collect::<Vec<_>>() })).into_response())
}

pub(crate) async fn create_index(
    State(app): AppState,
    Who(who): Who,
    P(c): P<String>,
    RawBody(raw): RawBody,
) -> Result<Response> {
    who.require(&c, Right::Admin)?;
    let body = json::body(&raw)?;
    let obj = object(&body, "")?;
    only(obj, "", &["fields", "unique"])?;
    let fields: Vec<String> = match obj.get("fields").and_then(Json_::as_array) {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::bad_member(&format!("/fields/{i}"), "expected a field path"))
            })
            .collect::<Result<_>>()?,
        None => return Err(ApiError::bad_member("/fields", "`fields` (an array of field paths) is required")),
    };
    let unique = json::boolean(obj, "", "unique")?.unwrap_or(false);
    match fields.as_slice() {
        [] => return Err(ApiError::bad_member("/fields", "an index needs at least one field")),
        [one] => app.db.create_index(&c, one, unique).await?,
        many => {
            let refs: Vec<&str> = many.iter().map(String::as_str).collect();
            app.db.create_compound_index(&c, &refs, unique).await?;
        }
    }
    let name = json::index_name(&fields);
    let location = format!("/v1/collections/{}/indexes/{}", json::percent_encode(&c), json::percent_encode(&name));
    Ok(created(json!({ "name": name, "fields": fields, "unique": unique }), Some(location)))
}

pub(crate) async fn drop_index(
    State(app): AppState,
    Who(who): Who,
    P((c, name)): P<(String, String)>,
) -> Result<Response> {
    who.require(&c, Right::Admin)?;
    match json::index_fields(&name)?.as_slice() {
        [one] => app.db.drop_index(&c, one).await?,
        many => {
            let refs: Vec<&str> = many.iter().map(String::as_str).collect();
            app.db.drop_compound_index(&c, &refs).await?;
        }
    }
    Ok(Json(json!({ "dropped": name })).into_response())
}

// ---- documents ------------------------------------------------------------

fn document_location(c: &str, id: &DocId) -> String {
    format!("/v1/collections/{}/documents/{}", json::percent_encode(c), json::id_segment(id))
}

pub(crate) async fn insert(
    State(app): AppState,
    Who(who): Who,
    P(c): P<String>,
    RawBody(raw): RawBody,
) -> Result<Response> {
    who.require(&c, Right::Write)?;
    let doc = Document::from_json(&json::body(&raw)?).map_err(|e| core_at("", e))?;
    let id = app.db.insert_into(&c, doc).await?;
    let location = document_location(&c, &id);
    Ok(created(json!({ "_id": id.to_json() }), Some(location)))
}

pub(crate) async fn get_document(
    State(app): AppState,
    Who(who): Who,
    P((c, id)): P<(String, String)>,
) -> Result<Response> {
    who.require(&c, Right::Read)?;
    let id = json::doc_id(&id)?;
    let doc = app.db.get_document(&c, &id).await?.ok_or_else(|| {
        ApiError::new("not_found", format!("no document {id} in collection `{c}`"))
            .with("collection", c.as_str())
            .with("id", id.to_string())
    })?;
    let (revision, current) =
        app.db.database().collections().documents().get_versioned(&c, &id).map_err(aurora::Error::from)?;
    let mut response = Json(doc.to_json()).into_response();
    if current.is_some_and(|cur| Arc::ptr_eq(&cur, &doc) || *cur == *doc) {
        if let Ok(v) = HeaderValue::from_str(&format!("\"{revision}\"")) {
            response.headers_mut().insert(header::ETAG, v);
        }
    }
    Ok(response)
}

pub(crate) async fn replace_document(
    State(app): AppState,
    Who(who): Who,
    P((c, id)): P<(String, String)>,
    RawBody(raw): RawBody,
) -> Result<Response> {
    who.require(&c, Right::Write)?;
    let id = json::doc_id(&id)?;
    let body = json::body(&raw)?;
    let mut doc = Document::from_json(&body).map_err(|e| core_at("", e))?;
    if body.get(aurora::json::ID_FIELD).is_some() && doc.id != id {
        return Err(ApiError::bad_member("/_id", "`_id` in the body differs from the id in the path"));
    }
    doc.id = id;
    let out = doc.to_json();
    app.db.replace_document(&c, doc).await?;
    Ok(Json(out).into_response())
}

pub(crate) async fn patch_document(
    State(app): AppState,
    Who(who): Who,
    P((c, id)): P<(String, String)>,
    RawBody(raw): RawBody,
) -> Result<Response> {
    who.require(&c, Right::Write)?;
    let id = json::doc_id(&id)?;
    let update: Update = json::update(&json::body(&raw)?, "")?;
    let doc = app.db.update_document(&c, &id, update).await?;
    Ok(Json(doc.to_json()).into_response())
}

pub(crate) async fn delete_document(
    State(app): AppState,
    Who(who): Who,
    P((c, id)): P<(String, String)>,
) -> Result<Response> {
    who.require(&c, Right::Write)?;
    let id = json::doc_id(&id)?;
    if app.db.delete_document(&c, &id).await? {
        Ok(Json(json!({ "deleted": true, "_id": id.to_json() })).into_response())
    } else {
        Err(ApiError::new("not_found", format!("no document {id} in collection `{c}`"))
            .with("collection", c)
            .with("id", id.to_string()))
    }
}

// ---- queries --------------------------------------------------------------

pub(crate) async fn query(
    State(app): AppState,
    Who(who): Who,
    P(c): P<String>,
    RawBody(raw): RawBody,
) -> Result<Response> {
    who.require(&c, Right::Read)?;
    let mut spec = json::query(&json::body(&raw)?, "", false)?;
    spec.resolve_cursor(&app.db, &c).await?;
    let limit = app.limits.query_timeout;
    // The query stops itself at the deadline (the engine checks it as it
    // reads), and when this request is dropped — the client left.
    let cancel = CancelOnDrop::default();
    let builder =
        spec.build(&app.db, &c, app.limits.max_results).deadline(Instant::now() + limit).cancel_token(cancel.token());
    let run = async {
        let _permit = app.queries.acquire().await.map_err(|_| ApiError::new("unavailable", "shutting down"))?;
        let plan = match spec.explain {
            true => Some(builder.clone().explain().await?),
            false => None,
        };
        let page = builder.page().await?;
        Ok::<_, ApiError>((plan, page))
    };
    let (plan, page) = within_query_time(limit, run).await?;
    let mut out = serde_json::Map::new();
    out.insert("results".into(), Json_::Array(page.items.iter().map(Document::to_json).collect()));
    let next = match &page.next_cursor {
        Some(cursor) => Json_::String(json::encode_cursor(cursor, &c, &spec)),
        None => Json_::Null,
    };
    out.insert("next_cursor".into(), next);
    if let Some(plan) = plan {
        out.insert("plan".into(), json::plan_json(&plan));
    }
    Ok(Json(Json_::Object(out)).into_response())
}

/// Cancels its token when dropped: a query given this token stops when
/// the request that runs it is dropped (its client disconnected).
#[derive(Default)]
pub(crate) struct CancelOnDrop(aurora::CancelToken);

impl CancelOnDrop {
    pub(crate) fn token(&self) -> aurora::CancelToken {
        self.0.clone()
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// How long past its deadline a query's request waits for the engine to
/// notice it (the engine checks every few documents; this only bounds a
/// step that would not check, such as a slow disk read).
const DEADLINE_SLACK: Duration = Duration::from_secs(2);

/// Runs `work` (a query given the deadline now + `limit`): its result,
/// with a query stopped at its deadline answered `query_timeout` (with the
/// limit).
pub(crate) async fn within_query_time<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let timeout = || {
        ApiError::new("query_timeout", format!("the query ran longer than the limit of {limit:?}"))
            .with("limit_ms", limit.as_millis() as u64)
    };
    match tokio::time::timeout(limit + DEADLINE_SLACK, work).await {
        Ok(Err(e)) if e.code() == "query_timeout" => Err(timeout()),
        Ok(r) => r,
        Err(_) => Err(timeout()),
    }
}

// ---- transactions ---------------------------------------------------------

/// One write of a transaction request.
enum Op {
    Insert(Document),
    Upsert(Document),
    Replace(Document),
    Update(DocId, Update),
    Delete(DocId),
    Check(DocId),
}

struct TxWrite {
    collection: String,
    op: Op,
    if_revision: Option<u64>,
}

impl TxWrite {
    fn id(&self) -> &DocId {
        match &self.op {
            Op::Insert(d) | Op::Upsert(d) | Op::Replace(d) => &d.id,
            Op::Update(id, _) | Op::Delete(id) | Op::Check(id) => id,
        }
    }
}

fn parse_write(v: &Json_, at: &str) -> Result<TxWrite> {
    let obj = object(v, at)?;
    let op = json::required_string(obj, at, "op")?;
    let collection = json::required_string(obj, at, "collection")?.to_string();
    let if_revision = json::uint(obj, at, "if_revision")?;
    let document = |at: &str| -> Result<Document> {
        let d = obj
            .get("document")
            .ok_or_else(|| ApiError::bad_member(&format!("{at}/document"), "`document` is required"))?;
        Document::from_json(d).map_err(|e| core_at(&format!("{at}/document"), e))
    };
    let id = |at: &str| -> Result<DocId> {
        let id = obj.get("id").ok_or_else(|| ApiError::bad_member(&format!("{at}/id"), "`id` is required"))?;
        DocId::from_json(id).map_err(|e| core_at(&format!("{at}/id"), e))
    };
    let (op, allowed): (Op, &[&str]) = match op {
        "insert" => (Op::Insert(document(at)?), &["op", "collection", "document"]),
        "upsert" => (Op::Upsert(document(at)?), &["op", "collection", "document", "if_revision"]),
        "replace" => {
            let d = obj.get("document");
            if d.and_then(|d| d.get(aurora::json::ID_FIELD)).is_none() {
                return Err(ApiError::bad_member(
                    &format!("{at}/document/_id"),
                    "`replace` needs the document's `_id`",
                ));
            }
            (Op::Replace(document(at)?), &["op", "collection", "document", "if_revision"])
        }
        "update" => {
            let u = obj
                .get("update")
                .ok_or_else(|| ApiError::bad_member(&format!("{at}/update"), "`update` is required"))?;
            (
                Op::Update(id(at)?, json::update(u, &format!("{at}/update"))?),
                &["op", "collection", "id", "update", "if_revision"],
            )
        }
        "delete" => (Op::Delete(id(at)?), &["op", "collection", "id", "if_revision"]),
        "check" => {
            if if_revision.is_none() {
                return Err(ApiError::bad_member(&format!("{at}/if_revision"), "`check` needs `if_revision`"));
            }
            (Op::Check(id(at)?), &["op", "collection", "id", "if_revision"])
        }
        other => {
            return Err(ApiError::bad_member(
                &format!("{at}/op"),
                format!("unknown op {other:?} (insert, upsert, replace, update, delete, check)"),
            ))
        }
    };
    only(obj, at, allowed)?;
    Ok(TxWrite { collection, op, if_revision })
}

/// Checks the conditions of every write against the transaction's
/// snapshot (recording each document read, so a concurrent change to it
/// makes the commit conflict).
fn check_conditions(db: &aurora::Aurora, tx: &mut aurora::Transaction, writes: &[TxWrite]) -> Result<()> {
    let docs = db.database().collections().documents();
    for (i, w) in writes.iter().enumerate() {
        let Some(expected) = w.if_revision else { continue };
        db.database().collections().definition_shared(&w.collection).map_err(aurora::Error::from)?;
        let key = aurora::storage::document_key(&w.collection, w.id());
        let (revision, found) = docs.snapshot_versioned(tx.snapshot(), &key).map_err(aurora::Error::from)?;
        let actual = if found.is_some() { revision } else { 0 };
        tx.get(&w.collection, w.id()).map_err(aurora::Error::from)?;
        if actual != expected {
            return Err(ApiError::new(
                "revision_mismatch",
                format!(
                    "write {i}: {}/{} is at revision {actual}, the condition expects {expected}; nothing was written",
                    w.collection,
                    w.id()
                ),
            )
            .with("index", i as u64)
            .with("collection", w.collection.as_str())
            .with("id", w.id().to_json())
            .with("expected", expected)
            .with("actual", actual));
        }
    }
    Ok(())
}

fn apply(tx: &mut aurora::Transaction, w: &TxWrite) -> aurora::Result<Json_> {
    let c = &w.collection;
    Ok(match &w.op {
        Op::Insert(d) => json!({ "_id": tx.insert(c, d.clone())?.to_json() }),
        Op::Upsert(d) => {
            tx.upsert(c, d.clone())?;
            json!({ "_id": d.id.to_json() })
        }
        Op::Replace(d) => {
            tx.replace(c, d.clone())?;
            json!({ "_id": d.id.to_json() })
        }
        Op::Update(id, u) => {
            let d = tx.update_with(c, id, u)?;
            json!({ "_id": id.to_json(), "document": d.to_json() })
        }
        Op::Delete(id) => json!({ "_id": id.to_json(), "deleted": tx.delete(c, id)? }),
        Op::Check(id) => json!({ "_id": id.to_json() }),
    })
}

pub(crate) async fn transaction(State(app): AppState, Who(who): Who, RawBody(raw): RawBody) -> Result<Response> {
    let body = json::body(&raw)?;
    let obj = object(&body, "")?;
    only(obj, "", &["writes"])?;
    let list = obj
        .get("writes")
        .and_then(Json_::as_array)
        .ok_or_else(|| ApiError::bad_member("/writes", "`writes` (an array) is required"))?;
    if list.len() > app.limits.max_transaction_writes {
        return Err(ApiError::new(
            "payload_too_large",
            format!("{} writes; a transaction may hold at most {}", list.len(), app.limits.max_transaction_writes),
        ));
    }
    // Rights first, for every write, before anything is parsed further.
    for (i, w) in list.iter().enumerate() {
        let at = format!("/writes/{i}");
        let obj = object(w, &at)?;
        let collection = json::required_string(obj, &at, "collection")?;
        let right = if obj.get("op").and_then(Json_::as_str) == Some("check") { Right::Read } else { Right::Write };
        who.require(collection, right)?;
    }
    let writes: Vec<TxWrite> =
        list.iter().enumerate().map(|(i, w)| parse_write(w, &format!("/writes/{i}"))).collect::<Result<_>>()?;
    let mut attempt = 0;
    loop {
        let mut tx = app.db.begin()?;
        check_conditions(&app.db, &mut tx, &writes)?;
        let mut results = Vec::with_capacity(writes.len());
        for (i, w) in writes.iter().enumerate() {
            match apply(&mut tx, w) {
                Ok(r) => results.push(r),
                Err(e) => return Err(ApiError::from(e).with("index", i as u64)),
            }
        }
        match tx.commit().await {
            Ok(info) => return Ok(Json(json!({ "sequence": info.sequence, "results": results })).into_response()),
            Err(aurora::Error::Conflict { .. }) if attempt + 1 < aurora::txn::MAX_TRANSACTION_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_micros(20 << attempt.min(8))).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

// ---- jobs -----------------------------------------------------------------

fn timestamp(t: Option<aurora::Timestamp>) -> Json_ {
    t.map_or(Json_::Null, |t| Value::Timestamp(t).to_json())
}

fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Critical => "critical",
    }
}

fn job_json(j: &aurora::workers::JobInfo) -> Json_ {
    json!({
        "id": j.id.to_json(),
        "type": j.job_type,
        "queue": j.queue,
        "payload": j.payload.to_json(),
        "priority": priority_name(j.priority),
        "status": j.status.as_str(),
        "attempts": j.attempts,
        "failures": j.failures,
        "max_retries": j.max_retries,
        "last_error": j.last_error,
        "unique_key": j.unique_key,
        "run_at": timestamp(j.run_at),
        "created_at": timestamp(Some(j.created_at)),
        "updated_at": timestamp(Some(j.updated_at)),
        "finished_at": timestamp(j.finished_at),
    })
}

fn job_from_json(body: &Json_) -> Result<Job> {
    let obj = object(body, "")?;
    only(
        obj,
        "",
        &["type", "payload", "queue", "priority", "max_retries", "delay_ms", "run_at", "timeout_ms", "unique_key"],
    )?;
    let mut job = Job::new(json::required_string(obj, "", "type")?);
    if let Some(p) = obj.get("payload") {
        job = job.payload(Value::from_json(p).map_err(|e| core_at("/payload", e))?);
    }
    if let Some(q) = json::string(obj, "", "queue")? {
        job = job.queue(q);
    }
    if let Some(p) = json::string(obj, "", "priority")? {
        job = job.priority(match p {
            "low" => Priority::Low,
            "normal" => Priority::Normal,
            "high" => Priority::High,
            "critical" => Priority::Critical,
            other => {
                return Err(ApiError::bad_member(
                    "/priority",
                    format!("unknown priority {other:?} (low, normal, high, critical)"),
                ))
            }
        });
    }
    if let Some(n) = json::uint(obj, "", "max_retries")? {
        job = job.max_retries(u32::try_from(n).unwrap_or(u32::MAX));
    }
    if let Some(ms) = json::uint(obj, "", "delay_ms")? {
        job = job.delay(Duration::from_millis(ms));
    }
    if let Some(at) = obj.get("run_at") {
        match Value::from_json(at).map_err(|e| core_at("/run_at", e))? {
            Value::Timestamp(t) => job = job.run_at(t),
            _ => return Err(ApiError::bad_member("/run_at", "`run_at` is a {\"$date\": …} timestamp")),
        }
    }
    if let Some(ms) = json::uint(obj, "", "timeout_ms")? {
        job = job.timeout(Duration::from_millis(ms));
    }
    if let Some(k) = json::string(obj, "", "unique_key")? {
        job = job.unique_key(k);
    }
    Ok(job)
}

pub(crate) async fn enqueue(State(app): AppState, Who(who): Who, RawBody(raw): RawBody) -> Result<Response> {
    who.require(JOBS, Right::Write)?;
    let job = job_from_json(&json::body(&raw)?)?;
    let id = app.workers().await?.enqueue(job).await.map_err(aurora::Error::from)?;
    let location = format!("/v1/jobs/{}", json::id_segment(&id));
    Ok(created(json!({ "id": id.to_json() }), Some(location)))
}

pub(crate) async fn list_jobs(
    State(app): AppState,
    Who(who): Who,
    Q(params): Q<HashMap<String, String>>,
) -> Result<Response> {
    who.require(JOBS, Right::Read)?;
    let status = params.get("status").map_or("pending", String::as_str);
    let status = JobStatus::parse(status).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown status {status:?} ({})",
            JobStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let limit = match params.get("limit") {
        Some(l) => l.parse::<usize>().map_err(|_| ApiError::bad_request("`limit` must be a non-negative integer"))?,
        None => app.limits.max_results,
    }
    .min(app.limits.max_results);
    let jobs = app.workers().await?.list(status, limit).await.map_err(aurora::Error::from)?;
    Ok(Json(json!({ "jobs": jobs.iter().map(job_json).collect::<Vec<_>>() })).into_response())
}

async fn find_job(app: &App, id: &str) -> Result<(aurora::Workers, DocId)> {
    let workers = app.workers().await?;
    let id = json::doc_id(id)?;
    if workers.job(&id).await.map_err(aurora::Error::from)?.is_none() {
        return Err(ApiError::new("job_not_found", format!("no job {id}")).with("id", id.to_string()));
    }
    Ok((workers, id))
}

pub(crate) async fn get_job(State(app): AppState, Who(who): Who, P(id): P<String>) -> Result<Response> {
    who.require(JOBS, Right::Read)?;
    let workers = app.workers().await?;
    let id = json::doc_id(&id)?;
    match workers.job(&id).await.map_err(aurora::Error::from)? {
        Some(j) => Ok(Json(job_json(&j)).into_response()),
        None => Err(ApiError::new("job_not_found", format!("no job {id}")).with("id", id.to_string())),
    }
}

pub(crate) async fn cancel_job(State(app): AppState, Who(who): Who, P(id): P<String>) -> Result<Response> {
    who.require(JOBS, Right::Write)?;
    let (workers, id) = find_job(&app, &id).await?;
    let cancelled = workers.cancel(&id).await.map_err(aurora::Error::from)?;
    let status = workers.job_status(&id).await.map_err(aurora::Error::from)?.map(JobStatus::as_str);
    Ok(Json(json!({ "cancelled": cancelled, "status": status })).into_response())
}

pub(crate) async fn retry_job(State(app): AppState, Who(who): Who, P(id): P<String>) -> Result<Response> {
    who.require(JOBS, Right::Write)?;
    let (workers, id) = find_job(&app, &id).await?;
    let retried = workers.retry(&id).await.map_err(aurora::Error::from)?;
    let status = workers.job_status(&id).await.map_err(aurora::Error::from)?.map(JobStatus::as_str);
    Ok(Json(json!({ "retried": retried, "status": status })).into_response())
}
