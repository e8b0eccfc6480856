//! [`WriteBatch`]: writes committed all or nothing by `POST
//! /v1/transactions`, each with an optional revision condition.

use crate::client::update_json;
use aurora::{DocId, Document, Result, Update};
use serde_json::{json, Value as Json};

/// Writes to commit together, all or nothing ([`Client::commit`](crate::Client::commit)).
/// A condition (`if_revision`) makes the whole batch fail with nothing
/// written when the document is not at that revision (0: absent).
///
/// ```
/// use aurora::{doc, DocId, Update};
/// use aurora_client::WriteBatch;
/// let id = DocId::parse("ada").expect("a valid id");
/// let batch = WriteBatch::new()
///     .insert("accounts", doc! { "balance": 30 }.id(DocId::parse("bob").expect("a valid id")))
///     .update_if("accounts", &id, Update::new().increment("balance", -30), 4);
/// assert_eq!(batch.len(), 2);
/// assert_eq!(batch.to_json().expect("expressible")["writes"][1]["if_revision"], 4);
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a batch does nothing until it is committed"]
pub struct WriteBatch {
    pub(crate) writes: Vec<Write>,
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Write {
    pub(crate) collection: String,
    pub(crate) op: Op,
    pub(crate) if_revision: Option<u64>,
}

/// What a write does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Insert(Document),
    Upsert(Document),
    Replace(Document),
    Update(DocId, Update),
    Delete(DocId),
    Check(DocId),
}

impl Write {
    /// The document the write is about.
    pub(crate) fn id(&self) -> &DocId {
        match &self.op {
            Op::Insert(d) | Op::Upsert(d) | Op::Replace(d) => &d.id,
            Op::Update(id, _) | Op::Delete(id) | Op::Check(id) => id,
        }
    }

    fn to_json(&self) -> Result<Json> {
        let mut m = serde_json::Map::new();
        let (op, doc, id, update) = match &self.op {
            Op::Insert(d) => ("insert", Some(d), None, None),
            Op::Upsert(d) => ("upsert", Some(d), None, None),
            Op::Replace(d) => ("replace", Some(d), None, None),
            Op::Update(id, u) => ("update", None, Some(id), Some(u)),
            Op::Delete(id) => ("delete", None, Some(id), None),
            Op::Check(id) => ("check", None, Some(id), None),
        };
        m.insert("op".into(), json!(op));
        m.insert("collection".into(), json!(self.collection));
        if let Some(d) = doc {
            // The core's rules first (the embedded handle's error), and no
            // walk of a value nested past the limit.
            d.validate()?;
            m.insert("document".into(), d.to_json());
        }
        if let Some(id) = id {
            m.insert("id".into(), id.to_json());
        }
        if let Some(u) = update {
            m.insert("update".into(), update_json(u)?);
        }
        if let Some(r) = self.if_revision {
            m.insert("if_revision".into(), json!(r));
        }
        Ok(Json::Object(m))
    }
}

/// What a committed batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResult {
    /// The commit's sequence (its position in the change feed).
    pub sequence: u64,
    /// One result per write (`{"_id"}`, plus `document` for an update and
    /// `deleted` for a delete).
    pub results: Vec<Json>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    fn push(mut self, collection: &str, op: Op, if_revision: Option<u64>) -> Self {
        self.writes.push(Write { collection: collection.to_string(), op, if_revision });
        self
    }

    /// Inserts a document (its id must be free).
    pub fn insert(self, collection: &str, doc: Document) -> Self {
        self.push(collection, Op::Insert(doc), None)
    }

    /// Inserts or replaces a document.
    pub fn upsert(self, collection: &str, doc: Document) -> Self {
        self.push(collection, Op::Upsert(doc), None)
    }

    /// Replaces an existing document.
    pub fn replace(self, collection: &str, doc: Document) -> Self {
        self.push(collection, Op::Replace(doc), None)
    }

    /// Replaces a document if it is at `revision`.
    pub fn replace_if(self, collection: &str, doc: Document, revision: u64) -> Self {
        self.push(collection, Op::Replace(doc), Some(revision))
    }

    /// Updates a document.
    pub fn update(self, collection: &str, id: &DocId, update: impl Into<Update>) -> Self {
        self.push(collection, Op::Update(id.clone(), update.into()), None)
    }

    /// Updates a document if it is at `revision`.
    pub fn update_if(self, collection: &str, id: &DocId, update: impl Into<Update>, revision: u64) -> Self {
        self.push(collection, Op::Update(id.clone(), update.into()), Some(revision))
    }

    /// Deletes a document.
    pub fn delete(self, collection: &str, id: &DocId) -> Self {
        self.push(collection, Op::Delete(id.clone()), None)
    }

    /// Deletes a document if it is at `revision`.
    pub fn delete_if(self, collection: &str, id: &DocId, revision: u64) -> Self {
        self.push(collection, Op::Delete(id.clone()), Some(revision))
    }

    /// Writes nothing, but fails the batch unless the document is at
    /// `revision` (0: absent).
    pub fn check(self, collection: &str, id: &DocId, revision: u64) -> Self {
        self.push(collection, Op::Check(id.clone()), Some(revision))
    }

    /// Drops the batch without deep recursion (after a refusal).
    pub(crate) fn dispose(self) {
        for w in self.writes {
            match w.op {
                Op::Insert(d) | Op::Upsert(d) | Op::Replace(d) => aurora::dispose_document(d),
                Op::Update(_, u) => aurora::dispose_update(u),
                Op::Delete(_) | Op::Check(_) => {}
            }
        }
    }

    /// The request body: `{"writes": [...]}` (an error for an update
    /// operator the server's form cannot express, and the core's error for
    /// a document or update value that breaks its rules: a field name with
    /// a `.`, nesting past the limit).
    pub fn to_json(&self) -> Result<Json> {
        Ok(json!({ "writes": self.writes.iter().map(Write::to_json).collect::<Result<Vec<_>>>()? }))
    }
}
