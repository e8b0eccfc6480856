//! The request and response forms of the API on top of Aurora's plain JSON
//! (`aurora::json`): schemas, update operators, queries and their cursors,
//! plans, index statistics, change events, live-query updates and jobs —
//! plus the little URL encoding the server needs.

use crate::error::ApiError;
use aurora::index::{IndexStats, Schema, UnknownFields};
use aurora::{
    Access, ChangeEvent, ChangeType, CommitEvents, CoreError, Cursor, DocId, Document, FieldDefinition, FieldType,
    Filter, Order, Plan, QueryBuilder, QueryUpdate, Update, UpdateOp, Value,
};
use base64::Engine as _;
use serde_json::{json, Map, Value as Json};

// ---- URL encoding ---------------------------------------------------------

/// Decodes `%XX` escapes and `+` (as a space, for query strings).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a path segment (everything but unreserved characters escaped).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---- bodies and members ---------------------------------------------------

/// The body as JSON (`malformed_json` if it is not).
pub(crate) fn body(bytes: &[u8]) -> Result<Json, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new("malformed_json", "the request needs a JSON body"));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::new("malformed_json", format!("the body is not JSON: {e}")))
}

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

/// A document id written as JSON (a path segment is a JSON string).
pub(crate) fn doc_id(text: &str) -> Result<DocId, ApiError> {
    DocId::from_json(&Json::String(text.to_string())).map_err(|e| core_at("", e))
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

/// Index statistics.
pub(crate) fn index_json(i: &IndexStats) -> Json {
    json!({
        "name": i.fields.join(","),
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
    if let Some(c) = string(obj, at, "cursor")? {
        spec.cursor = Some(decode_cursor(c).map_err(|e| e.with("at", format!("{at}/cursor")))?);
    }
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

/// A cursor as an opaque string: base64url of its plain JSON.
pub(crate) fn encode_cursor(c: &Cursor) -> String {
    let json = json!({ "v": c.values.iter().map(Value::to_json).collect::<Vec<_>>(), "id": c.id.to_json() });
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
}

fn decode_cursor(s: &str) -> Result<Cursor, ApiError> {
    let bad = || ApiError::new("invalid_cursor", "the cursor is not one this server gave out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    let json: Json = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let values = json.get("v").and_then(Json::as_array).ok_or_else(bad)?;
    let values = values.iter().map(Value::from_json).collect::<Result<Vec<_>, _>>().map_err(|_| bad())?;
    let id = DocId::from_json(json.get("id").ok_or_else(bad)?).map_err(|_| bad())?;
    Ok(Cursor { values, id })
}

fn access_json(a: &Access) -> Json {
    match a {
        Access::FullScan => json!({ "type": "full_scan" }),
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
    fn percent_round_trip() {
        for s in ["plain", "a b/c?d=e&f", "ünï", "%", "a%2"] {
            assert_eq!(percent_decode(&percent_encode(s)), s);
        }
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn cursors_round_trip() {
        let c = Cursor { values: vec![Value::Int(3), Value::from("x"), Value::Null], id: DocId::new() };
        assert_eq!(decode_cursor(&encode_cursor(&c)).expect("decodes"), c);
        assert_eq!(decode_cursor("nonsense!").unwrap_err().code(), "invalid_cursor");
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
