//! [`TypedCollection`]: one collection read and written as a serde type
//! over the client, with the embedded handle's `_id` convention (a field
//! serialized as `_id` is the document id).

use crate::client::Client;
use crate::query::Query;
use aurora::json::ID_FIELD;
use aurora::{CoreError, DocId, Document, Error, Result, Value};
use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;

/// A collection as the serde type `T`, made by [`Client::typed`].
pub struct TypedCollection<T> {
    client: Client,
    name: String,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for TypedCollection<T> {
    fn clone(&self) -> Self {
        Self { client: self.client.clone(), name: self.name.clone(), _type: PhantomData }
    }
}

impl<T> std::fmt::Debug for TypedCollection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedCollection").field("name", &self.name).finish()
    }
}

/// `value` as a document: its `_id` field (if any) is the id.
pub(crate) fn to_document<T: Serialize + ?Sized>(value: &T) -> Result<Document> {
    let mut fields = match Value::from_serde(value)? {
        Value::Object(f) => f,
        other => {
            return Err(Error::Core(CoreError::Conversion(format!(
                "a document must be built from a map or struct, got {}",
                other.type_name()
            ))))
        }
    };
    let id = match fields.remove(ID_FIELD) {
        None | Some(Value::Null) => DocId::new(),
        Some(Value::String(s)) => DocId::parse(&s)?,
        Some(Value::Uuid(u)) => DocId::Uuid(u),
        Some(other) => other.decode::<DocId>()?,
    };
    Ok(Document { id, fields })
}

/// The one key of the object a text id that reads as a UUID is offered
/// as (the embedded typed collections' convention: a `DocId` field reads
/// it as that text id, a `String` field as the text).
const TEXT_ID_TOKEN: &str = "$aurora::TextId";

/// A document as `T`, its id offered as the `_id` field: as its text, or,
/// for a text id spelled like a UUID, as `{TEXT_ID_TOKEN: text}` (offered
/// as plain text, a `DocId` field would read it as a UUID id — another
/// document — and a `replace` would write there).
pub(crate) fn from_document<T: DeserializeOwned>(doc: &Document) -> Result<T> {
    let mut with_id = doc.clone();
    let id = match &doc.id {
        DocId::Text(s) if DocId::canonical_uuid(s).is_some() => {
            Value::Object([(TEXT_ID_TOKEN.to_string(), Value::String(s.to_string()))].into())
        }
        other => Value::String(other.to_string()),
    };
    with_id.fields.insert(ID_FIELD.to_string(), id);
    Ok(with_id.decode()?)
}

/// Whether `v` holds a value serde has no word for but a schema may
/// (a UUID serialized as text, bytes as a list of numbers).
fn may_need_schema(v: &Value) -> bool {
    match v {
        Value::String(s) => DocId::canonical_uuid(s).is_some(),
        Value::Array(items) => {
            (!items.is_empty() && items.iter().all(|x| matches!(x, Value::Int(i) if (0..=255).contains(i))))
                || items.iter().any(may_need_schema)
        }
        Value::Object(fields) => fields.values().any(may_need_schema),
        _ => false,
    }
}

/// The `uuid` and `bytes` fields of a schema in the server's JSON form
/// (`{"fields": {path: {"type": …}}}`), as a schema that adapts serde values.
fn adapting_schema(schema: &serde_json::Value) -> aurora::index::Schema {
    let mut out = aurora::index::Schema::new();
    if let Some(fields) = schema.get("fields").and_then(serde_json::Value::as_object) {
        for (path, def) in fields {
            let t = match def.get("type").and_then(serde_json::Value::as_str) {
                Some("uuid") => aurora::FieldType::Uuid,
                Some("bytes") => aurora::FieldType::Bytes,
                _ => continue,
            };
            out = out.field(path.clone(), aurora::FieldDefinition::new(t));
        }
    }
    out
}

impl<T> TypedCollection<T> {
    pub(crate) fn new(client: Client, name: &str) -> Self {
        Self { client, name: name.to_string(), _type: PhantomData }
    }
}

impl<T: Serialize + DeserializeOwned> TypedCollection<T> {
    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `value` as a document, its values given the types the collection's
    /// schema declares where serde has no word for them (a `Uuid` field, a
    /// `Bytes` field), as the embedded typed collection does. The schema is
    /// read from the server only when the document holds such a candidate.
    async fn document(&self, value: &T) -> Result<Document> {
        let mut doc = to_document(value)?;
        if doc.fields.values().any(may_need_schema) {
            let info = self.client.collection(&self.name).await?;
            adapting_schema(&info.schema).adapt_serde_values(&mut doc);
        }
        Ok(doc)
    }

    /// Inserts `value`; returns its id.
    pub async fn insert(&self, value: &T) -> Result<DocId> {
        self.client.insert(&self.name, self.document(value).await?).await
    }

    /// Replaces the document `value`'s `_id` names.
    pub async fn replace(&self, value: &T) -> Result<()> {
        self.client.replace(&self.name, self.document(value).await?).await
    }

    /// Reads one.
    pub async fn get(&self, id: &DocId) -> Result<Option<T>> {
        match self.client.get(&self.name, id).await? {
            Some(d) => Ok(Some(from_document(&d)?)),
            None => Ok(None),
        }
    }

    /// Merges `patch`'s fields into a document; returns the result.
    pub async fn update(&self, id: &DocId, patch: Document) -> Result<T> {
        from_document(&self.client.update(&self.name, id, patch.fields).await?)
    }

    /// Deletes one; false if there was none.
    pub async fn delete(&self, id: &DocId) -> Result<bool> {
        self.client.delete(&self.name, id).await
    }

    /// Runs a query; the matches as `T`.
    pub async fn find(&self, query: &Query) -> Result<Vec<T>> {
        self.client.find(&self.name, query).await?.iter().map(from_document).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct WithId {
        #[serde(rename = "_id")]
        id: DocId,
    }

    #[test]
    fn a_text_id_spelled_like_a_uuid_reads_back_as_text() {
        let text = DocId::text("0190a6b2-0000-7000-8000-000000000002").expect("a text id");
        let doc = Document { id: text.clone(), fields: Default::default() };
        // The token is the core's: a drift would read the UUID id instead.
        assert_eq!(from_document::<WithId>(&doc).expect("decoded").id, text);
        assert_eq!(text.to_path_segment(), "~0190a6b2-0000-7000-8000-000000000002");
        assert_eq!(DocId::text("~x").expect("id").to_path_segment(), "~~x");
        assert_eq!(DocId::text("plain").expect("id").to_path_segment(), "plain");
    }
}
