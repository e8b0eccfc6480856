//! A collection schema in the server's JSON form.

use aurora::index::{Schema, UnknownFields};
use serde_json::{json, Map, Value as Json};

/// `{"fields": {path: {"type", "indexed", "unique", "nullable"}},
/// "unknown_fields", "compound_indexes"}`.
pub(crate) fn schema_json(schema: &Schema) -> Json {
    let fields: Map<String, Json> = schema
        .fields
        .iter()
        .map(|(path, d)| {
            let def = json!({ "type": d.field_type.to_string(), "indexed": d.indexed, "unique": d.unique, "nullable": d.nullable });
            (path.clone(), def)
        })
        .collect();
    let unknown = if schema.unknown_fields == UnknownFields::Reject { "reject" } else { "allow" };
    let compound: Vec<Json> =
        schema.compound_indexes.iter().map(|(fields, unique)| json!({ "fields": fields, "unique": unique })).collect();
    json!({ "fields": fields, "unknown_fields": unknown, "compound_indexes": compound })
}
