//! The request and response forms of the API on top of Aurora's plain JSON
//! (`aurora::json`): schemas, update operators, queries and their cursors,
//! plans, index statistics, change events, live-query updates and jobs —
//! plus the encoding of path segments.

use crate::error::ApiError;
use aurora::index::{IndexStats, Schema, UnknownFields};
use aurora::{
    Access, ChangeEvent, ChangeType, CommitEvents, CoreError, Cursor, DocId, Document, FieldDefinition, FieldType,
    Filter, Order, Plan, QueryBuilder, QueryUpdate, Update, UpdateOp, Value,
};
use base64::Engine as _;
use serde_json::{json, Map, Value as Json};

// ---- URL encoding ---------------------------------------------------------

/// What a path segment keeps unescaped: RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Encodes a path segment (everything but unreserved characters escaped).
pub(crate) fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

// ---- bodies and members ---------------------------------------------------

/// The body as JSON (`malformed_json` if it is not).
pub(crate) fn body(bytes: &[u8]) -> Result<Json, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new("malformed_json", "the request needs a JSON body"));
    }
    parse(bytes, "the body")
}

/// JSON text as JSON: `malformed_json` if it is not JSON, `too_deep` if it
/// nests deeper than the parser goes (`serde_json` stops at 128 levels, far
/// past the limit of documents and filters, which is checked afterwards).
pub(crate) fn parse(bytes: &[u8], what: &str) -> Result<Json, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        if aurora::json::text_nesting_depth(bytes) >= PARSER_DEPTH {
            ApiError::new(
                "too_deep",
                format!("{what} nests deeper than {} levels, the limit", aurora::MAX_NESTING_DEPTH),
            )
            .with("limit", aurora::MAX_NESTING_DEPTH as u64)
        } else {
            ApiError::new("malformed_json", format!("{what} is not JSON: {e}"))
        }
    })
}

/// How deep `serde_json` parses.
const PARSER_DEPTH: usize = 128;

/// A JSON pointer segment, escaped.
pub(crate) fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// A core error found at `prefix` inside the request: its pointer is made
/// absolute.
pub(crate) fn core_at(prefix: &str, e: CoreError) -> ApiError {
    match e {
        CoreError::InvalidJson { at, reason } => {
            ApiError::new("invalid_json", format!("invalid JSON at {prefix}{at}: {reason}"))
                .with("at", format!("{prefix}{at}"))
        }
        other => ApiError::from(aurora::Error::Core(other)).with("at", prefix),
    }
}

/// The body as an object.
pub(crate) fn object<'a>(json: &'a Json, at: &str) -> Result<&'a Map<String, Json>, ApiError> {
    json.as_object().ok_or_else(|| ApiError::bad_member(at, format!("{} must be an object", where_(at))))
}

fn where_(at: &str) -> String {
    if at.is_empty() {
        "the body".into()
    } else {
        format!("`{at}`")
    }
}

/// Refuses members other than `allowed` (typos should not pass silently).
pub(crate) fn only(obj: &Map<String, Json>, at: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_member(
            &format!("{at}/{}", escape(k)),
            format!("unknown member `{k}` in {} (expected one of: {})", where_(at), allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

pub(crate) fn string<'a>(obj: &'a Map<String, Json>, at: &str, key: &str) -> Result<Option<&'a str>, ApiError> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_member(&format!("{at}/{key}"), format!("`{key}` must be a string"))),
    }
}

pub(crate) fn required_string<'a>(obj: &'a Map<String, Json>, at: &str, key: &str) -> Result<&'a str, ApiError> {
    string(obj, at, key)?.ok_or_else(|| ApiError::bad_member(&format!("{at}/{key}"), format!("`{key}` is required")))
}

pub(crate) fn uint(obj: &Map<String, Json>, at: &str, key: &str) -> Result<Option<u64>, ApiError> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ApiError::bad_member(&format!("{at}/{key}"), format!("`{key}` must be a non-negative integer"))
        }),
    }
}

pub(crate) fn boolean(obj: &Map<String, Json>, at: &str, key: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::bad_member(&format!("{at}/{key}"), format!("`{key}` must be true or false"))),
    }
}

fn strings(v: &Json, at: &str) -> Result<Vec<String>, ApiError> {
    let list = v.as_array().ok_or_else(|| ApiError::bad_member(at, format!("`{at}` must be an array of strings")))?;
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            s.as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::bad_member(&format!("{at}/{i}"), "expected a string"))
        })
        .collect()
}

/// A document id from a path segment ([`DocId::from_path_segment`]: a
/// UUID in its canonical form, a text id as it is, or `~` and a text id —
/// for a text id that reads as a UUID or starts with `~`).
pub(crate) fn doc_id(text: &str) -> Result<DocId, ApiError> {
    DocId::from_path_segment(text).map_err(|e| core_at("", e))
}

/// A document id as a path segment, URL-encoded (read back by [`doc_id`]).
pub(crate) fn id_segment(id: &DocId) -> String {
    percent_encode(&id.to_path_segment())
}

// ---- schemas --------------------------------------------------------------

fn field_type(name: &str) -> Option<FieldType> {
    Some(match name {
        "string" => FieldType::String,
        "int" => FieldType::Int,
        "float" => FieldType::Float,
        "bool" => FieldType::Bool,
        "uuid" => FieldType::Uuid,
        "timestamp" => FieldType::Timestamp,
        "bytes" => FieldType::Bytes,
        "array" => FieldType::Array,
        "object" => FieldType::Object,
        "any" => FieldType::Any,
        _ => return None,
    })
}

/// A schema from `{"fields": {path: {"type", "indexed", "unique",
/// "nullable"}}, "unknown_fields": "allow"|"reject", "compound_indexes":
/// [{"fields": [..], "unique": bool}]}`.
pub(crate) fn schema(json: &Json, at: &str) -> Result<Schema, ApiError> {
    let obj = object(json, at)?;
    only(obj, at, &["fields", "unknown_fields", "compound_indexes"])?;
    let mut schema = Schema::new();
    if let Some(fields) = obj.get("fields") {
        let fat = format!("{at}/fields");
        for (path, def) in object(fields, &fat)? {
            let dat = format!("{fat}/{}", escape(path));
            let d = object(def, &dat)?;
            only(d, &dat, &["type", "indexed", "unique", "nullable"])?;
            let ty = required_string(d, &dat, "type")?;
            let ty = field_type(ty).ok_or_else(|| {
                ApiError::bad_member(
                    &format!("{dat}/type"),
                    format!(
                        "unknown type {ty:?} (string, int, float, bool, uuid, timestamp, bytes, array, object, any)"
                    ),
                )
            })?;
            let mut def = FieldDefinition::new(ty);
            def.indexed = boolean(d, &dat, "indexed")?.unwrap_or(false);
            def.unique = boolean(d, &dat, "unique")?.unwrap_or(false);
            def.nullable = boolean(d, &dat, "nullable")?.unwrap_or(false);
            schema = schema.field(path.clone(), def);
        }
    }
    match string(obj, at, "unknown_fields")? {
        None | Some("allow") => {}
        Some("reject") => schema.unknown_fields = UnknownFields::Reject,
        Some(other) => {
            return Err(ApiError::bad_member(
                &format!("{at}/unknown_fields"),
                format!("`unknown_fields` is \"allow\" or \"reject\", not {other:?}"),
            ))
        }
    }
    if let Some(list) = obj.get("compound_indexes") {
        let cat = format!("{at}/compound_indexes");
        let list = list.as_array().ok_or_else(|| ApiError::bad_member(&cat, "`compound_indexes` must be an array"))?;
        for (i, c) in list.iter().enumerate() {
            let iat = format!("{cat}/{i}");
            let c = object(c, &iat)?;
            only(c, &iat, &["fields", "unique"])?;
            let fields = strings(c.get("fields").unwrap_or(&Json::Null), &format!("{iat}/fields"))?;
            schema = schema.compound_index(fields, boolean(c, &iat, "unique")?.unwrap_or(false));
        }
    }
    Ok(schema)
}

/// A schema in the form [`schema`] reads.
pub(crate) fn schema_json(schema: &Schema) -> Json {
    let fields: Map<String, Json> = schema
        .fields
        .iter()
        .map(|(path, d)| {
            (
                path.clone(),
                json!({ "type": d.field_type.to_string(), "indexed": d.indexed, "unique": d.unique, "nullable": d.nullable }),
            )
        })
        .collect();
    let unknown = match schema.unknown_fields {
        UnknownFields::Reject => "reject",
        _ => "allow",
    };
    json!({ "fields": fields, "unknown_fields": unknown })
}

/// An index's name in the API: its fields joined with `,`, each field's
/// own `\` and `,` escaped with a `\` — so a compound index on (`a`, `b`)
/// is `a,b` and an index on the one field `a,b` is `a\,b`.
pub(crate) fn index_name<S: AsRef<str>>(fields: &[S]) -> String {
    let escaped: Vec<String> = fields.iter().map(|f| f.as_ref().replace('\\', "\\\\").replace(',', "\\,")).collect();
    escaped.join(",")
}

/// The fields an index name ([`index_name`]) lists.
pub(crate) fn index_fields(name: &str) -> Result<Vec<String>, ApiError> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',')) => field.push(e),
                _ => {
                    return Err(ApiError::new(
                        "invalid_name",
                        format!("index name {name:?}: a `\\` escapes only `,` or `\\` (fields are joined with `,`)"),
                    ))
                }
            },
            ',' => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    Ok(fields)
}

/// Index statistics.
pub(crate) fn index_json(i: &IndexStats) -> Json {
    json!({
        "name": index_name(&i.fields),
        "fields": i.fields,
        "unique": i.unique,
        "state": format!("{:?}", i.state).to_lowercase(),
        "entries": i.entries,
        "distinct_values": i.distinct_values,
        "bytes": i.bytes,
    })
}

// ---- updates --------------------------------------------------------------

/// The operators a `PATCH` body (or a transaction's `update`) may use.
const OPERATORS: &[&str] = &["$set", "$setIfAbsent", "$unset", "$inc", "$push", "$pull"];

/// An update from JSON: either operators (`{"$inc": {"views": 1}, "$push":
/// {"tags": "db"}}`, every key an operator) or a patch document (its
/// top-level fields are set; no key is an operator).
pub(crate) fn update(json: &Json, at: &str) -> Result<Update, ApiError> {
    let obj = object(json, at)?;
    let operators = obj.keys().filter(|k| OPERATORS.contains(&k.as_str())).count();
    if operators == 0 {
        if obj.contains_key(aurora::json::ID_FIELD) {
            return Err(ApiError::bad_member(&format!("{at}/_id"), "a patch cannot change `_id`"));
        }
        let patch = Document::from_json(json).map_err(|e| core_at(at, e))?;
        return Ok(Update::from(patch.fields));
    }
    if operators != obj.len() {
        let plain = obj.keys().find(|k| !OPERATORS.contains(&k.as_str())).cloned().unwrap_or_default();
        return Err(ApiError::bad_member(
            &format!("{at}/{}", escape(&plain)),
            format!(
                "an update is either operators ({}) or a patch of fields, not both (`{plain}`)",
                OPERATORS.join(", ")
            ),
        ));
    }
    let mut update = Update::new();
    for (op, args) in obj {
        let oat = format!("{at}/{}", escape(op));
        if op == "$unset" {
            let paths: Vec<String> = match args {
                Json::Array(_) => strings(args, &oat)?,
                Json::Object(m) => m.keys().cloned().collect(),
                _ => return Err(ApiError::bad_member(&oat, "`$unset` takes an array of field paths")),
            };
            for p in paths {
                update.ops.push(UpdateOp::Unset(p));
            }
            continue;
        }
        for (path, v) in object(args, &oat)? {
            let value = Value::from_json(v).map_err(|e| core_at(&format!("{oat}/{}", escape(path)), e))?;
            let path = path.clone();
            update.ops.push(match op.as_str() {
                "$set" => UpdateOp::Set(path, value),
                "$setIfAbsent" => UpdateOp::SetIfAbsent(path, value),
                "$inc" => UpdateOp::Increment(path, value),
                "$push" => UpdateOp::Push(path, value),
                _ => UpdateOp::Pull(path, value),
            });
        }
    }
    Ok(update)
}

// ---- queries --------------------------------------------------------------

/// A query as the API takes it.
#[derive(Debug, Clone, Default)]
pub(crate) struct QuerySpec {
    pub(crate) filter: Option<Filter>,
    pub(crate) order: Vec<(String, Order)>,
    pub(crate) select: Option<Vec<String>>,
    pub(crate) limit: Option<usize>,
    pub(crate) offset: usize,
    /// The `cursor` member as sent ([`QuerySpec::resolve_cursor`] reads it).
    pub(crate) cursor_text: Option<String>,
    /// The position the page starts after, once resolved.
    pub(crate) cursor: Option<Cursor>,
    pub(crate) explain: bool,
}

/// A query from `{"filter", "order", "select", "limit", "offset",
/// "cursor", "explain"}` (every member optional). `live` refuses the
/// members a live query has no use for.
pub(crate) fn query(json: &Json, at: &str, live: bool) -> Result<QuerySpec, ApiError> {
    let obj = object(json, at)?;
    if live {
        only(obj, at, &["filter", "order", "select", "limit", "offset"])?;
    } else {
        only(obj, at, &["filter", "order", "select", "limit", "offset", "cursor", "explain"])?;
    }
    let mut spec = QuerySpec::default();
    if let Some(f) = obj.get("filter").filter(|f| !f.is_null()) {
        spec.filter = Some(Filter::from_json(f).map_err(|e| core_at(&format!("{at}/filter"), e))?);
    }
    if let Some(order) = obj.get("order").filter(|o| !o.is_null()) {
        let oat = format!("{at}/order");
        let list = order.as_array().ok_or_else(|| ApiError::bad_member(&oat, "`order` must be an array"))?;
        for (i, o) in list.iter().enumerate() {
            let iat = format!("{oat}/{i}");
            spec.order.push(match o {
                Json::String(field) => (field.clone(), Order::Asc),
                Json::Object(m) => {
                    only(m, &iat, &["field", "order"])?;
                    let field = required_string(m, &iat, "field")?.to_string();
                    let order = match string(m, &iat, "order")? {
                        None | Some("asc") => Order::Asc,
                        Some("desc") => Order::Desc,
                        Some(other) => {
                            return Err(ApiError::bad_member(
                                &format!("{iat}/order"),
                                format!("`order` is \"asc\" or \"desc\", not {other:?}"),
                            ))
                        }
                    };
                    (field, order)
                }
                _ => {
                    return Err(ApiError::bad_member(
                        &iat,
                        "an order is a field name or {\"field\": …, \"order\": \"asc\"|\"desc\"}",
                    ))
                }
            });
        }
    }
    if let Some(select) = obj.get("select").filter(|s| !s.is_null()) {
        spec.select = Some(strings(select, &format!("{at}/select"))?);
    }
    spec.limit = uint(obj, at, "limit")?.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    spec.offset = uint(obj, at, "offset")?.map_or(0, |o| usize::try_from(o).unwrap_or(usize::MAX));
    spec.cursor_text = string(obj, at, "cursor")?.map(str::to_string);
    spec.explain = boolean(obj, at, "explain")?.unwrap_or(false);
    Ok(spec)
}

impl QuerySpec {
    /// The query on `db`, with its limit lowered to `max_results`.
    pub(crate) fn build(&self, db: &aurora::Aurora, collection: &str, max_results: usize) -> QueryBuilder {
        let mut q = db.query(collection);
        if let Some(f) = &self.filter {
            q = q.where_filter(f.clone());
        }
        for (field, order) in &self.order {
            q = q.order_by(field, *order);
        }
        if let Some(select) = &self.select {
            q = q.select(select.clone());
        }
        q = q.limit(self.limit.unwrap_or(max_results).min(max_results));
        if self.offset > 0 {
            q = q.offset(self.offset);
        }
        if let Some(c) = &self.cursor {
            q = q.after(c.clone());
        }
        q
    }
}

// ---- cursors --------------------------------------------------------------
//
// A cursor is an opaque string: base64url of a small JSON object with
//
// - `q`: the query's fingerprint — 16 hex digits of the SHA-256 of its
//   collection, filter and order (what positions depend on; `select`,
//   `limit` and `offset` do not change where a page ends). A cursor sent
//   with another query is `invalid_cursor`.
// - `id`: the id of the last document of the page (the final tie-breaker).
// - `v`: the sort values of that document, when their JSON is at most
//   [`MAX_INLINE_CURSOR_BYTES`]; or else
// - `h`: the SHA-256 of those values, and the next page reads them from the
//   document itself. If it changed them (or was deleted) meanwhile, the
//   position is lost: `cursor_stale`. So a cursor is always small — sort
//   values of several megabytes never travel back and forth.

/// Largest sort values (their plain JSON, in bytes) a cursor carries; larger
/// ones are referred to through the document (see above).
pub(crate) const MAX_INLINE_CURSOR_BYTES: usize = 2048;

/// What positions of `spec` on `collection` depend on, as 16 hex digits.
fn fingerprint(collection: &str, spec: &QuerySpec) -> String {
    use sha2::{Digest, Sha256};
    let order: Vec<Json> =
        spec.order.iter().map(|(f, o)| json!([f, if *o == Order::Desc { "desc" } else { "asc" }])).collect();
    let filter = spec.filter.as_ref().map_or(Json::Null, Filter::to_json);
    let text = json!([collection, filter, order]).to_string();
    hex(&Sha256::digest(text.as_bytes())[..8])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn values_digest(values: &Json) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(values.to_string().as_bytes()))
}

/// The cursor of a page's last position, for `spec` on `collection`.
pub(crate) fn encode_cursor(c: &Cursor, collection: &str, spec: &QuerySpec) -> String {
    let values = Json::Array(c.values.iter().map(Value::to_json).collect());
    let mut obj = Map::new();
    obj.insert("q".into(), json!(fingerprint(collection, spec)));
    obj.insert("id".into(), c.id.to_json());
    let inline = values.to_string().len() <= MAX_INLINE_CURSOR_BYTES;
    if inline {
        obj.insert("v".into(), values);
    } else {
        obj.insert("h".into(), json!(values_digest(&values)));
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Json::Object(obj).to_string())
}

/// A decoded cursor: the position, or the document that holds it.
pub(crate) enum CursorRef {
    Values(Cursor),
    Document { id: DocId, digest: String },
}

/// Reads a cursor sent with `spec` on `collection`: `invalid_cursor` if it
/// is not one this server gave out for that query.
pub(crate) fn decode_cursor(s: &str, collection: &str, spec: &QuerySpec) -> Result<CursorRef, ApiError> {
    let bad = |why: &str| ApiError::new("invalid_cursor", format!("the cursor is not one this server gave out{why}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| bad(""))?;
    let json: Json = serde_json::from_slice(&bytes).map_err(|_| bad(""))?;
    if json.get("q").and_then(Json::as_str) != Some(fingerprint(collection, spec).as_str()) {
        return Err(bad(
            " for this query: a cursor belongs to the collection, filter and order of the query that gave it out",
        ));
    }
    let id = DocId::from_json(json.get("id").ok_or_else(|| bad(""))?).map_err(|_| bad(""))?;
    if let Some(values) = json.get("v").and_then(Json::as_array) {
        let values = values.iter().map(Value::from_json).collect::<Result<Vec<_>, _>>().map_err(|_| bad(""))?;
        return Ok(CursorRef::Values(Cursor { values, id }));
    }
    match json.get("h").and_then(Json::as_str) {
        Some(h) => Ok(CursorRef::Document { id, digest: h.to_string() }),
        None => Err(bad("")),
    }
}

impl QuerySpec {
    /// Resolves the `cursor` member (if any) for a query of `collection`:
    /// decodes it, and reads the sort values of a cursor that refers to
    /// its document.
    pub(crate) async fn resolve_cursor(&mut self, db: &aurora::Aurora, collection: &str) -> Result<(), ApiError> {
        let Some(text) = self.cursor_text.clone() else { return Ok(()) };
        let at = |e: ApiError| e.with("at", "/cursor");
        self.cursor = Some(match decode_cursor(&text, collection, self).map_err(at)? {
            CursorRef::Values(c) => c,
            CursorRef::Document { id, digest } => {
                let doc = db.get_document(collection, &id).await?;
                let values: Option<Vec<Value>> = doc
                    .map(|d| self.order.iter().map(|(f, _)| d.get_path(f).cloned().unwrap_or(Value::Null)).collect());
                match values {
                    Some(v) if values_digest(&Json::Array(v.iter().map(Value::to_json).collect())) == digest => {
                        Cursor { values: v, id }
                    }
                    _ => {
                        return Err(ApiError::new(
                            "cursor_stale",
                            format!(
                                "the cursor's position was document {id}, whose sort values were too large to carry in \
                                 the cursor; it has changed them or was deleted since: start again from the first page"
                            ),
                        )
                        .with("id", id.to_json()))
                    }
                }
            }
        });
        Ok(())
    }
}

fn access_json(a: &Access) -> Json {
    match a {
        Access::FullScan => json!({ "type": "full_scan" }),
        Access::Ids { count } => json!({ "type": "ids", "count": count }),
        Access::Index { field, scans } => json!({ "type": "index", "field": field, "scans": scans.len() }),
        Access::Intersection(x, y) => json!({ "type": "intersection", "of": [access_json(x), access_json(y)] }),
        Access::IndexOrder { field, descending } => {
            json!({ "type": "index_order", "field": field, "descending": descending })
        }
        Access::Compound { fields, equal, ordered, descending, .. } => json!({
            "type": "compound", "fields": fields, "equal": equal.iter().map(Value::to_json).collect::<Vec<_>>(),
            "ordered": ordered, "descending": descending,
        }),
    }
}

/// A plan, as `explain` reports it.
pub(crate) fn plan_json(p: &Plan) -> Json {
    json!({
        "access": access_json(&p.access),
        "estimated_rows": p.estimated_rows,
        "examined_rows": p.examined_rows,
        "returned_rows": p.returned_rows,
    })
}

// ---- events ---------------------------------------------------------------

fn change_type(t: ChangeType) -> &'static str {
    match t {
        ChangeType::Insert => "insert",
        ChangeType::Update => "update",
        ChangeType::Delete => "delete",
    }
}

fn change_json(e: &ChangeEvent) -> Json {
    let mut m = Map::new();
    m.insert("collection".into(), json!(e.collection));
    m.insert("type".into(), json!(change_type(e.change_type)));
    m.insert("id".into(), e.id.to_json());
    if let Some(d) = &e.document {
        m.insert("document".into(), d.to_json());
    }
    if let Some(d) = &e.old_document {
        m.insert("old_document".into(), d.to_json());
    }
    if matches!(e.cause, aurora::ChangeCause::Expired) {
        m.insert("cause".into(), json!("expired"));
    }
    Json::Object(m)
}

/// One commit's changes: the data of a `commit` event.
pub(crate) fn commit_json(c: &CommitEvents) -> String {
    json!({
        "sequence": c.sequence,
        "transaction_id": c.transaction_id,
        "changes": c.events.iter().map(change_json).collect::<Vec<_>>(),
    })
    .to_string()
}

/// One live-query update.
pub(crate) fn query_update_json(u: &QueryUpdate) -> Json {
    match u {
        QueryUpdate::Added { document, new_index } => {
            json!({ "type": "added", "document": document.to_json(), "new_index": new_index })
        }
        QueryUpdate::Removed { document, old_index } => {
            json!({ "type": "removed", "id": document.id.to_json(), "old_index": old_index })
        }
        QueryUpdate::Modified { new, old_index, new_index, .. } => {
            json!({ "type": "modified", "document": new.to_json(), "old_index": old_index, "new_index": new_index })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_escape_all_but_unreserved_characters() {
        assert_eq!(percent_encode("a b/c?d=e&f~_.-"), "a%20b%2Fc%3Fd%3De%26f~_.-");
        assert_eq!(percent_encode("ü%"), "%C3%BC%25");
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_query() {
        let spec = QuerySpec { order: vec![("n".into(), Order::Asc), ("s".into(), Order::Desc)], ..Default::default() };
        let c = Cursor { values: vec![Value::Int(3), Value::from("x")], id: DocId::new() };
        let text = encode_cursor(&c, "c", &spec);
        assert!(matches!(decode_cursor(&text, "c", &spec), Ok(CursorRef::Values(d)) if d == c));
        assert_eq!(decode_cursor("nonsense!", "c", &spec).err().map(|e| e.code()), Some("invalid_cursor"));
        // Another collection, filter or order: refused.
        let other_order =
            QuerySpec { order: vec![("n".into(), Order::Desc), ("s".into(), Order::Desc)], ..spec.clone() };
        let other_filter = QuerySpec { filter: Some(Filter::Eq("n".into(), Value::Int(1))), ..spec.clone() };
        for (coll, s) in [("d", &spec), ("c", &other_order), ("c", &other_filter)] {
            assert_eq!(decode_cursor(&text, coll, s).err().map(|e| e.code()), Some("invalid_cursor"));
        }
        // The page size, projection and offset do not matter.
        let paged = QuerySpec { limit: Some(5), select: Some(vec!["n".into()]), offset: 2, ..spec.clone() };
        assert!(decode_cursor(&text, "c", &paged).is_ok());
        // Large sort values are referred to, never carried.
        let big = Cursor { values: vec![Value::from("x".repeat(100_000)), Value::Null], id: DocId::new() };
        let text = encode_cursor(&big, "c", &spec);
        assert!(text.len() < 200, "{} bytes", text.len());
        assert!(matches!(decode_cursor(&text, "c", &spec), Ok(CursorRef::Document { id, .. }) if id == big.id));
    }

    #[test]
    fn index_names_keep_fields_with_commas_apart() {
        for fields in
            [vec!["a"], vec!["a", "b"], vec!["a,b"], vec!["a\\", "b"], vec!["a\\,b", ",", "c"], vec!["ü,", "\\\\"]]
        {
            let name = index_name(&fields);
            assert_eq!(index_fields(&name).expect("parses"), fields, "{name}");
        }
        assert_ne!(index_name(&["a,b"]), index_name(&["a", "b"]));
        assert_eq!(index_name(&["a", "b"]), "a,b");
        assert_eq!(index_name(&["a,b"]), "a\\,b");
        assert_eq!(index_fields("a\\x").unwrap_err().code(), "invalid_name");
        assert_eq!(index_fields("a\\").unwrap_err().code(), "invalid_name");
    }

    #[test]
    fn updates_are_operators_or_patches() {
        let u = update(&json!({"$inc": {"n": 1}, "$unset": ["old"], "$push": {"tags": "x"}}), "").expect("ops");
        assert_eq!(u.ops.len(), 3);
        let p = update(&json!({"n": 1, "name": "x"}), "").expect("patch");
        assert!(matches!(&p.ops[..], [UpdateOp::Merge(f)] if f.len() == 2));
        let mixed = update(&json!({"$inc": {"n": 1}, "name": "x"}), "/update").unwrap_err();
        assert_eq!((mixed.code(), mixed.to_json()["error"]["at"].as_str()), ("bad_request", Some("/update/name")));
        let bad = update(&json!({"$set": {"at": {"$date": "never"}}}), "").unwrap_err();
        assert_eq!(bad.code(), "invalid_json");
        assert_eq!(bad.to_json()["error"]["at"], "/$set/at/$date");
    }

    #[test]
    fn schemas_read_back() {
        let s = schema(
            &json!({"fields": {"email": {"type": "string", "unique": true}, "age": {"type": "int", "indexed": true, "nullable": true}}, "unknown_fields": "reject"}),
            "/schema",
        )
        .expect("schema");
        assert!(s.fields["email"].unique && s.fields["age"].nullable);
        assert_eq!(schema(&schema_json(&s), "").expect("again"), s);
        let e = schema(&json!({"fields": {"a": {"type": "text"}}}), "/schema").unwrap_err();
        assert_eq!(e.to_json()["error"]["at"], "/schema/fields/a/type");
    }
}
