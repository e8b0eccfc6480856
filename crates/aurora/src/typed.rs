//! Typed collections: [`Collection<T>`] reads and writes one collection as
//! a serde type, with the document id carried by the struct itself, and
//! [`TypedTransaction`] does the same inside a transaction.
//!
//! **The id convention.** A field serialized under the name `_id` (the name
//! the [plain-JSON form](crate::json) gives the id) of type [`DocId`] or
//! `Option<DocId>` is the document id: on write it chooses the id (`None`
//! or absent: a new UUID v7 id), on read it is filled in. A `String`
//! `_id` is read as [`DocId::parse`] on write. A type without such a field
//! works too; its ids are returned by the writes.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> aurora::Result<()> {
//! use aurora::{Aurora, DocId, Order};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Message {
//!     #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
//!     id: Option<DocId>,
//!     room: String,
//!     text: String,
//!     at: u32,
//! }
//!
//! let db = Aurora::temporary().await?;
//! db.ensure_collection("messages", Vec::<(&str, aurora::FieldDefinition)>::new()).await?;
//! let messages = db.collection::<Message>("messages");
//! let id = messages.insert(&Message { id: None, room: "rust".into(), text: "hi".into(), at: 1 }).await?;
//! let back = messages.get(&id).await?.expect("stored");
//! assert_eq!(back.id, Some(id.clone()));
//! let latest = messages.query().filter(|f| f.eq("room", "rust")).order_by("at", Order::Desc).limit(20).collect().await?;
//! assert_eq!(latest, vec![back]);
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::query::QueryBuilder;
use crate::Aurora;
use aurora_core::json::ID_FIELD;
use aurora_core::{DocId, Document, Filter, Value, F};
use aurora_query::{Cursor, Order};
use aurora_reactive::{QueryUpdate, Watcher};
use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Converts `value` into a document for `collection`: the `_id` field, if
/// any, becomes the id, and the collection's schema adapts serde's forms
/// of UUIDs and bytes.
pub(crate) fn to_document<T: Serialize + ?Sized>(
    db: &aurora_txn::Database,
    collection: &str,
    value: &T,
) -> Result<Document> {
    let fields = match Value::from_serde(value)? {
        Value::Object(fields) => fields,
        other => {
            return Err(Error::Core(aurora_core::CoreError::Conversion(format!(
                "a document must be built from a map or struct, got {}",
                other.type_name()
            ))))
        }
    };
    let mut doc = Document { id: DocId::new(), fields };
    if let Some(id) = doc.fields.remove(ID_FIELD) {
        doc.id = match id {
            Value::Null => DocId::new(),
            // As the JSON form reads ids: the canonical spelling of a UUID
            // is a UUID id, any other text a text id (so it reads back as
            // written).
            Value::String(s) => DocId::parse(&s)?,
            Value::Uuid(u) => DocId::Uuid(u),
            other => other.decode::<DocId>()?,
        };
    }
    db.collections().definition_shared(collection)?.schema.adapt_serde_values(&mut doc);
    Ok(doc)
}

/// Decodes a document into `T`, with its id offered as the `_id` field: as
/// its text, which a `DocId` field and a `String` field both read (a text id
/// that itself reads as a UUID is offered as `{TEXT_ID_TOKEN: …}`, which a
/// `DocId` field reads as that text id and a `String` field as the text).
pub(crate) fn from_document<T: DeserializeOwned>(doc: &Document) -> Result<T> {
    let mut with_id = doc.clone();
    let id = match &doc.id {
        DocId::Text(s) if DocId::canonical_uuid(s).is_some() => {
            Value::Object([(aurora_core::TEXT_ID_TOKEN.to_string(), Value::String(s.to_string()))].into())
        }
        other => Value::String(other.to_string()),
    };
    with_id.fields.insert(ID_FIELD.to_string(), id);
    Ok(with_id.decode()?)
}

/// A collection read and written as the serde type `T` (see the module
/// docs for the `_id` convention). Cheap to clone; made by
/// [`Aurora::collection`].
pub struct Collection<T> {
    db: Aurora,
    name: Arc<str>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Collection<T> {
    fn clone(&self) -> Self {
        Self { db: self.db.clone(), name: Arc::clone(&self.name), _type: PhantomData }
    }
}

impl<T> std::fmt::Debug for Collection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection").field("name", &self.name).field("type", &std::any::type_name::<T>()).finish()
    }
}

impl Aurora {
    /// The collection `name` as the serde type `T` (the collection must
    /// exist; nothing is checked until the first call).
    pub fn collection<T>(&self, name: &str) -> Collection<T> {
        Collection { db: self.clone(), name: Arc::from(name), _type: PhantomData }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Collection<T> {
    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn document(&self, value: &T) -> Result<Document> {
        to_document(self.db.database(), &self.name, value)
    }

    /// Inserts `value` (its `_id`, or a new id); returns the id.
    ///
    /// # Errors
    /// [`Error::DocumentExists`] if its `_id` is taken, the schema and
    /// uniqueness errors of [`Aurora::insert_into`], `Error::Core` if `T`
    /// does not convert exactly.
    pub async fn insert(&self, value: &T) -> Result<DocId> {
        self.db.insert_into(&self.name, self.document(value)?).await
    }

    /// Inserts every value in one transaction (all or none); returns their ids.
    pub async fn insert_many(&self, values: &[T]) -> Result<Vec<DocId>> {
        let docs = values.iter().map(|v| self.document(v)).collect::<Result<Vec<_>>>()?;
        self.db.insert_many(&self.name, docs).await
    }

    /// Inserts or replaces `value` under its `_id` (a new id if it has
    /// none); returns the id.
    pub async fn upsert(&self, value: &T) -> Result<DocId> {
        let doc = self.document(value)?;
        let id = doc.id.clone();
        self.db.upsert(&self.name, doc).await?;
        Ok(id)
    }

    /// Replaces the document `value`'s `_id` names.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is none (a `T` without `_id` always
    /// gets a new id, so it is never found).
    pub async fn replace(&self, value: &T) -> Result<()> {
        self.db.replace_document(&self.name, self.document(value)?).await
    }

    /// The document `id` as a `T`, if present.
    pub async fn get(&self, id: &DocId) -> Result<Option<T>> {
        match self.db.get_document(&self.name, id).await? {
            Some(d) => Ok(Some(from_document(&d)?)),
            None => Ok(None),
        }
    }

    /// Merges `patch` into the document `id` and returns the result as a `T`.
    ///
    /// # Errors
    /// [`Error::NotFound`], the schema errors.
    pub async fn update(&self, id: &DocId, patch: Document) -> Result<T> {
        from_document(&self.db.update_document(&self.name, id, patch).await?)
    }

    /// Deletes the document `id`; returns whether it existed.
    pub async fn delete(&self, id: &DocId) -> Result<bool> {
        self.db.delete_document(&self.name, id).await
    }

    /// A query over the collection whose results are `T`s.
    pub fn query(&self) -> TypedQuery<T> {
        TypedQuery { inner: self.db.query(&self.name), _type: PhantomData }
    }
}

/// A query whose results decode into `T` ([`Collection::query`]); the same
/// builder as [`QueryBuilder`], with typed results.
pub struct TypedQuery<T> {
    inner: QueryBuilder,
    _type: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Send + 'static> TypedQuery<T> {
    /// Adds a filter (ANDed with earlier ones).
    pub fn filter(self, build: impl FnOnce(F) -> Filter) -> Self {
        Self { inner: self.inner.filter(build), _type: PhantomData }
    }

    /// Adds a prebuilt filter (for example one read with
    /// [`Filter::from_json`]).
    pub fn where_filter(self, filter: Filter) -> Self {
        Self { inner: self.inner.where_filter(filter), _type: PhantomData }
    }

    /// Orders by a field (call again for ties).
    pub fn order_by(self, field: &str, order: Order) -> Self {
        Self { inner: self.inner.order_by(field, order), _type: PhantomData }
    }

    /// At most `n` results.
    pub fn limit(self, n: usize) -> Self {
        Self { inner: self.inner.limit(n), _type: PhantomData }
    }

    /// Skips the first `n` results.
    pub fn offset(self, n: usize) -> Self {
        Self { inner: self.inner.offset(n), _type: PhantomData }
    }

    /// Starts after a keyset cursor from [`TypedPage::next_cursor`].
    pub fn after(self, cursor: Cursor) -> Self {
        Self { inner: self.inner.after(cursor), _type: PhantomData }
    }

    /// The results, decoded.
    pub async fn collect(self) -> Result<Vec<T>> {
        self.inner.collect().await?.iter().map(from_document).collect()
    }

    /// The first result, decoded.
    pub async fn first(self) -> Result<Option<T>> {
        self.inner.first().await?.as_ref().map(from_document).transpose()
    }

    /// How many documents match.
    pub async fn count(self) -> Result<u64> {
        self.inner.count().await
    }

    /// Whether any document matches.
    pub async fn exists(self) -> Result<bool> {
        self.inner.exists().await
    }

    /// The ids of the matches.
    pub async fn ids(self) -> Result<Vec<DocId>> {
        self.inner.ids().await
    }

    /// One page (keyset pagination: pass `next_cursor` to `after`).
    pub async fn page(self) -> Result<TypedPage<T>> {
        let page = self.inner.page().await?;
        Ok(TypedPage {
            items: page.items.iter().map(from_document).collect::<Result<_>>()?,
            next_cursor: page.next_cursor,
        })
    }

    /// Deletes every match in one transaction; returns how many.
    pub async fn delete(self) -> Result<u64> {
        self.inner.delete().await
    }

    /// Merges `patch` into every match in one transaction; returns how many.
    pub async fn update(self, patch: Document) -> Result<u64> {
        self.inner.update(patch).await
    }

    /// A live query over the matches, with typed results and updates.
    pub async fn watch(self) -> Result<TypedWatcher<T>> {
        Ok(TypedWatcher { inner: self.inner.watch().await?, _type: PhantomData })
    }
}

/// A page of typed results.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedPage<T> {
    /// The results of this page.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

/// One change to a typed live query's ordered results (the typed form of
/// [`QueryUpdate`]; indexes as there).
#[derive(Debug, Clone, PartialEq)]
pub enum TypedUpdate<T> {
    /// `value` joined the results at `new_index`.
    Added {
        /// The new member.
        value: T,
        /// Where it was inserted.
        new_index: usize,
    },
    /// The document `id` left the results from `old_index`.
    Removed {
        /// Its id.
        id: DocId,
        /// Where it was.
        old_index: usize,
    },
    /// A member changed, moved, or both.
    Modified {
        /// Its new value.
        value: T,
        /// Where it was.
        old_index: usize,
        /// Where it is now.
        new_index: usize,
    },
}

impl<T: Clone> TypedUpdate<T> {
    /// Applies the update to a list kept in the live query's order (as
    /// [`QueryUpdate::apply_to`] does for documents); an index out of range
    /// (a list not kept from this query) leaves the list unchanged.
    pub fn apply_to(&self, list: &mut Vec<T>) {
        match self {
            TypedUpdate::Added { value, new_index } if *new_index <= list.len() => {
                list.insert(*new_index, value.clone())
            }
            TypedUpdate::Removed { old_index, .. } if *old_index < list.len() => {
                list.remove(*old_index);
            }
            TypedUpdate::Modified { value, old_index, new_index } if *old_index < list.len() => {
                list.remove(*old_index);
                list.insert((*new_index).min(list.len()), value.clone());
            }
            _ => {}
        }
    }
}

/// `+{new_index} {value}`, `-{old_index} {id}`, `~{old_index}→{new_index}
/// {value}` — one line for a log or a terminal UI.
///
/// ```
/// use aurora::{DocId, TypedUpdate};
/// assert_eq!(TypedUpdate::Added { value: "hi", new_index: 0 }.to_string(), "+0 hi");
/// assert_eq!(TypedUpdate::Modified { value: "hey", old_index: 2, new_index: 0 }.to_string(), "~2→0 hey");
/// let gone: TypedUpdate<&str> = TypedUpdate::Removed { id: DocId::text("m1")?, old_index: 3 };
/// assert_eq!(gone.to_string(), "-3 m1");
/// # Ok::<(), aurora::CoreError>(())
/// ```
impl<T: std::fmt::Display> std::fmt::Display for TypedUpdate<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypedUpdate::Added { value, new_index } => write!(f, "+{new_index} {value}"),
            TypedUpdate::Removed { id, old_index } => write!(f, "-{old_index} {id}"),
            TypedUpdate::Modified { value, old_index, new_index } => write!(f, "~{old_index}→{new_index} {value}"),
        }
    }
}

/// A live query with typed results: a `futures::Stream` of
/// `Result<TypedUpdate<T>>` ([`Watcher`] underneath).
pub struct TypedWatcher<T> {
    inner: Watcher,
    _type: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> TypedWatcher<T> {
    /// The current results in the query's order, decoded.
    pub fn results(&self) -> Result<Vec<T>> {
        self.inner.results().map(from_document).collect()
    }

    /// The next update if one is ready now, without waiting: `Ok(None)`
    /// when the results are current. A commit is delivered to live queries
    /// before the write that made it returns, so after an `insert().await`
    /// its update (if the query's results change) is ready here.
    ///
    /// # Errors
    /// [`Error::Closed`] once the database is closed; a query error from a
    /// re-run; `Error::Core` if a document does not decode as `T`.
    pub fn try_recv(&mut self) -> Result<Option<TypedUpdate<T>>> {
        match self.inner.try_recv() {
            None => Ok(None),
            Some(update) => Self::typed(update?).map(Some),
        }
    }

    /// The untyped live query.
    pub fn inner(&mut self) -> &mut Watcher {
        &mut self.inner
    }

    fn typed(update: QueryUpdate) -> Result<TypedUpdate<T>> {
        Ok(match update {
            QueryUpdate::Added { document, new_index } => {
                TypedUpdate::Added { value: from_document(&document)?, new_index }
            }
            QueryUpdate::Removed { document, old_index } => TypedUpdate::Removed { id: document.id, old_index },
            QueryUpdate::Modified { new, old_index, new_index, .. } => {
                TypedUpdate::Modified { value: from_document(&new)?, old_index, new_index }
            }
        })
    }
}

impl<T: DeserializeOwned> futures_core::Stream for TypedWatcher<T> {
    type Item = Result<TypedUpdate<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx).map(|item| {
            item.map(|update| match update {
                Ok(u) => Self::typed(u),
                Err(e) => Err(Error::from(e)),
            })
        })
    }
}

/// Typed writes and reads inside a transaction, with the `_id` convention
/// of [`Collection`]:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> aurora::Result<()> {
/// use aurora::{Aurora, TypedTransaction};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Order { total: i64 }
/// let db = Aurora::temporary().await?;
/// db.ensure_collection("orders", Vec::<(&str, aurora::FieldDefinition)>::new()).await?;
/// let id = db.transaction(|tx| tx.insert_typed("orders", &Order { total: 40 })).await?;
/// let total = db.transaction(move |tx| Ok(tx.get_typed::<Order>("orders", &id)?.map(|o| o.total))).await?;
/// assert_eq!(total, Some(40));
/// # Ok(()) }
/// ```
pub trait TypedTransaction {
    /// Inserts `value` (its `_id`, or a new id); returns the id.
    fn insert_typed<T: Serialize + ?Sized>(&mut self, collection: &str, value: &T) -> Result<DocId>;
    /// Inserts or replaces `value` under its `_id`; returns the id.
    fn upsert_typed<T: Serialize + ?Sized>(&mut self, collection: &str, value: &T) -> Result<DocId>;
    /// Replaces the document `value`'s `_id` names ([`Error::NotFound`] if none).
    fn replace_typed<T: Serialize + ?Sized>(&mut self, collection: &str, value: &T) -> Result<()>;
    /// The document `id` as this transaction sees it, decoded.
    fn get_typed<T: DeserializeOwned>(&mut self, collection: &str, id: &DocId) -> Result<Option<T>>;
}

impl TypedTransaction for aurora_txn::Transaction {
    fn insert_typed<T: Serialize + ?Sized>(&mut self, collection: &str, value: &T) -> Result<DocId> {
        let doc = to_document(self.database(), collection, value)?;
        Ok(self.insert(collection, doc)?)
    }

    fn upsert_typed<T: Serialize + ?Sized>(&mut self, collection: &str, value: &T) -> Result<DocId> {
        let doc = to_document(self.database(), collection, value)?;
        let id = doc.id.clone();
        self.upsert(collection, doc)?;
        Ok(id)
    }

    fn replace_typed<T: Serialize + ?Sized>(&mut self, collection: &str, value: &T) -> Result<()> {
        let doc = to_document(self.database(), collection, value)?;
        Ok(self.replace(collection, doc)?)
    }

    fn get_typed<T: DeserializeOwned>(&mut self, collection: &str, id: &DocId) -> Result<Option<T>> {
        self.get(collection, id)?.as_ref().map(from_document).transpose()
    }
}
