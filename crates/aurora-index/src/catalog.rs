//! The catalog: each collection's persisted definition (schema plus the
//! state of every index), loaded at open and kept in memory.

use crate::compound;
use crate::error::{IndexError, Result};
use crate::keys;
use crate::schema::Schema;
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
        Self { schema, indexes }
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

/// Reads every persisted collection definition.
/// Every persisted definition with the revision that wrote it.
pub(crate) fn load(store: &Store) -> Result<BTreeMap<String, (CollectionDef, Revision)>> {
    let mut out = BTreeMap::new();
    let keys: Vec<Vec<u8>> =
        store.scan_prefix(&[keys::CATALOG])?.map(|item| item.map(|(k, _)| k)).collect::<std::result::Result<_, _>>()?;
    for key in keys {
        let Some((revision, value)) = store.get_versioned(&key)? else { continue };
        let name = String::from_utf8_lossy(&key[1..]).into_owned();
        let def: CollectionDef = format::decode(&key, &value)?;
        out.insert(name, (def, revision));
    }
    Ok(out)
}

pub(crate) fn encode(def: &CollectionDef) -> Result<Vec<u8>> {
    format::encode(def).map_err(IndexError::from)
}
