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

/// A document as `T`, its id offered as the `_id` field (text).
pub(crate) fn from_document<T: DeserializeOwned>(doc: &Document) -> Result<T> {
    let mut with_id = doc.clone();
    with_id.fields.insert(ID_FIELD.to_string(), Value::String(doc.id.to_string()));
    Ok(with_id.decode()?)
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

    /// Inserts `value`; returns its id.
    pub async fn insert(&self, value: &T) -> Result<DocId> {
        self.client.insert(&self.name, to_document(value)?).await
    }

    /// Replaces the document `value`'s `_id` names.
    pub async fn replace(&self, value: &T) -> Result<()> {
        self.client.replace(&self.name, to_document(value)?).await
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
