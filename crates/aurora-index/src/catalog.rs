//! The catalog: each collection's persisted definition (schema plus the
//! state of every index), loaded at open and kept in memory.

use crate::compound;
use crate::error::{IndexError, Result};
use crate::evolve::Existing;
use crate::keys;
use crate::schema::Schema;
use aurora_core::Document;
use aurora_storage::{format, Revision, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether the planner may use an index yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexState {
    /// Maintained by every write, and being back-filled from existing
    /// documents; not yet complete, so not to be used for reads.
    Building,
    /// Complete and usable.
    Ready,
}

/// One secondary index of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    /// Values must be unique across the collection.
    pub unique: bool,
    /// Building or ready.
    pub state: IndexState,
}

/// A collection's persisted definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionDef {
    /// The schema documents are validated against.
    pub schema: Schema,
    /// Indexes by field path (compound indexes by their name, see
    /// [`crate::compound`]).
    pub indexes: BTreeMap<String, IndexDef>,
    /// The policy the schema was last changed with, which says how writes
    /// treat a stored document that does not fit it (see [`Existing`]).
    pub existing: Existing,
    /// Every stored document is known to fit the schema: true for a
    /// collection created with it, or after a change that checked every
    /// document and found none that does not fit. False after a
    /// [`Existing::Skip`] or [`Existing::Fail`] change that left documents
    /// behind; the next change then checks every document again.
    pub validated: bool,
    /// A schema change in progress ([`Collections::alter_schema`](crate::Collections::alter_schema)):
    /// writes are checked against this schema too, until the change is
    /// committed (it becomes `schema`) or rolled back (also at open, after
    /// a crash).
    pub pending: Option<PendingChange>,
}

/// A schema change between its publication and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    /// The schema being introduced.
    pub schema: Schema,
    /// The policy it was asked with.
    pub existing: Existing,
    /// The indexes the change added (`None`) or turned unique (the old
    /// definition), restored as they were if it is rolled back.
    pub previous_indexes: BTreeMap<String, Option<IndexDef>>,
}

/// The definition as written before schema evolution existed (same
/// encoding, without the trailing fields), still read.
#[derive(Deserialize)]
struct LegacyDef {
    schema: Schema,
    indexes: BTreeMap<String, IndexDef>,
}

impl CollectionDef {
    /// A definition for a new, empty collection: an index (ready at once)
    /// for every field the schema marks `indexed` or `unique`.
    /// Compound indexes the schema declares ([`Schema::compound_index`])
    /// are created ready too.
    pub fn new(mut schema: Schema) -> Self {
        let mut indexes: BTreeMap<String, IndexDef> = schema
            .indexed_fields()
            .map(|(path, def)| (path.to_string(), IndexDef { unique: def.unique, state: IndexState::Ready }))
            .collect();
        for (fields, unique) in std::mem::take(&mut schema.compound_indexes) {
            indexes.insert(compound::compound_name(&fields), IndexDef { unique, state: IndexState::Ready });
        }
        Self { schema, indexes, existing: Existing::Validate, validated: true, pending: None }
    }

    /// Checks a write of `new` (replacing `old`, if any) against the
    /// schema, and against a pending change's schema too. Under
    /// [`Existing::Skip`], a document whose stored version does not fit a
    /// schema is exempt from that schema: it may be rewritten as it is.
    pub fn check_write(&self, collection: &str, old: Option<&Document>, new: &Document) -> Result<()> {
        check_against(&self.schema, self.existing, collection, old, new)?;
        match &self.pending {
            Some(p) => check_against(&p.schema, p.existing, collection, old, new),
            None => Ok(()),
        }
    }

    /// Every ready compound index: its field paths (in index order) and
    /// catalog name.
    pub fn ready_compound_indexes(&self) -> impl Iterator<Item = (Vec<&str>, &str)> {
        self.indexes
            .iter()
            .filter(|(name, d)| d.state == IndexState::Ready && compound::is_compound(name))
            .map(|(name, _)| (compound::index_fields(name), name.as_str()))
    }

    /// The index on `field`, if it is ready for reads.
    pub fn ready_index(&self, field: &str) -> Option<&IndexDef> {
        self.indexes.get(field).filter(|d| d.state == IndexState::Ready)
    }
}

/// A write checked against one schema under one policy.
fn check_against(
    schema: &Schema,
    existing: Existing,
    collection: &str,
    old: Option<&Document>,
    new: &Document,
) -> Result<()> {
    match schema.validate(collection, new) {
        Err(_) if existing == Existing::Skip && old.is_some_and(|o| schema.validate(collection, o).is_err()) => Ok(()),
        outcome => outcome,
    }
}

/// Every persisted definition with the revision that wrote it.
pub(crate) fn load(store: &Store) -> Result<BTreeMap<String, (CollectionDef, Revision)>> {
    let mut out = BTreeMap::new();
    let keys: Vec<Vec<u8>> =
        store.scan_prefix(&[keys::CATALOG])?.map(|item| item.map(|(k, _)| k)).collect::<std::result::Result<_, _>>()?;
    for key in keys {
        let Some((revision, value)) = store.get_versioned(&key)? else { continue };
        let name = String::from_utf8_lossy(&key[1..]).into_owned();
        let def = decode(&key, &value)?;
        out.insert(name, (def, revision));
    }
    Ok(out)
}

/// Decodes a definition, also in the form written before schema evolution.
fn decode(key: &[u8], value: &[u8]) -> Result<CollectionDef> {
    match format::decode::<CollectionDef>(key, value) {
        Ok(def) => Ok(def),
        Err(e) => match format::decode::<LegacyDef>(key, value) {
            Ok(LegacyDef { schema, indexes }) => {
                Ok(CollectionDef { schema, indexes, existing: Existing::Validate, validated: true, pending: None })
            }
            Err(_) => Err(e.into()),
        },
    }
}

pub(crate) fn encode(def: &CollectionDef) -> Result<Vec<u8>> {
    format::encode(def).map_err(IndexError::from)
}
