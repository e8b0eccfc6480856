//! Schema evolution on a live collection: [`Collections::alter_schema`]
//! replaces a collection's schema while writers keep writing, with a
//! declared policy ([`Existing`]) for the documents already stored.
//!
//! A change that can refuse or must build something goes through three
//! catalog writes, each one atomic commit:
//!
//! 1. **publish**: the definition gets a [`PendingChange`] (the new schema,
//!    and the indexes it adds or turns unique, as `Building`). The
//!    definition's revision moves, so every writer that planned with the old
//!    definition fails its condition and plans again (the invariant online
//!    index builds rely on, ARCHITECTURE.md): from here on every write is
//!    checked against the old *and* the new schema and maintains the new
//!    indexes.
//! 2. **check**: every stored document is read (after the publication, so
//!    none written before it is missed), checked against the new schema and
//!    back-filled into the new indexes.
//! 3. **commit** (the new schema replaces the old, its indexes become
//!    ready) or **roll back** (the pending change and its indexes go).
//!
//! A crash between 1 and 3 leaves the pending change in the catalog;
//! [`Collections::open`] rolls it back. So after any crash the collection
//! has the old schema or the new one, never a mixture — and documents
//! written meanwhile fit both. A change that only loosens the schema of a
//! collection whose documents all fit it (a field removed, made nullable,
//! given a wider type) needs no check and is one catalog write.

use crate::catalog::{CollectionDef, IndexDef, IndexState, PendingChange};
use crate::collections::Collections;
use crate::compound;
use crate::error::{IndexError, Result};
use crate::keys;
use crate::schema::{Schema, UnknownFields};
use aurora_core::{DocId, FieldType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Most documents listed in [`SchemaChange::examples`].
pub const MAX_EXAMPLES: usize = 20;

/// The policy of a schema change for the documents already stored that do
/// not fit the new schema. Every policy checks every *new* document
/// (inserts) against the new schema; they differ in what happens to the
/// stored ones and to their later rewrites.
///
/// | policy | the change, if a stored document does not fit | a later write of such a document |
/// |---|---|---|
/// | `Validate` | refused ([`IndexError::SchemaChangeRefused`] naming the first document and field); nothing changes | — (none is left) |
/// | `Fail` | applied; such documents are counted and listed in the [`SchemaChange`], and stay readable | must fit the new schema, or it fails |
/// | `Skip` | applied; counted and listed likewise, stay readable | exempt: it may keep not fitting (other documents are checked) |
///
/// `Validate` is SQL's `ALTER TABLE … ADD CONSTRAINT` (checked at once);
/// `Fail` is PostgreSQL's `NOT VALID` constraint (and MongoDB's
/// `validationLevel: "strict"` after `collMod`): existing rows are not
/// refused, but every row written from now on is checked; `Skip` is
/// MongoDB's `validationLevel: "moderate"`: documents that did not fit are
/// left alone also when updated. After `Fail` or `Skip`, the collection is
/// not validated ([`CollectionDef::validated`]) until a later change — the
/// same schema again with `Validate` is SQL's `VALIDATE CONSTRAINT` — finds
/// every document fitting.
///
/// Unique constraints are the exception: a unique index cannot hold two
/// documents with one value, so a change that makes a field unique is
/// refused with [`IndexError::DuplicateValues`] under every policy when
/// stored documents share a value (PostgreSQL likewise has no `NOT VALID`
/// unique constraint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Existing {
    /// Check every stored document first; refuse the change if one does not
    /// fit. The default.
    #[default]
    Validate,
    /// Apply the change; documents that do not fit stay, are reported, and
    /// must fit when next written.
    Fail,
    /// Apply the change; documents that do not fit stay, are reported, and
    /// are exempt from the new schema when rewritten.
    Skip,
}

/// A stored document that does not fit a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonconforming {
    /// The document.
    pub id: DocId,
    /// The first field that does not fit (an undeclared one for a strict
    /// schema).
    pub field: String,
    /// What is wrong with it, e.g. `must be int, got string`.
    pub reason: String,
}

/// What a schema change did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemaChange {
    /// The collection did not exist and was created with the schema
    /// ([`Collections::evolve_collection`]).
    pub created: bool,
    /// The definition changed (false: it already was exactly this, and
    /// every document was known to fit).
    pub changed: bool,
    /// Stored documents checked against the new schema (0 when the change
    /// only loosened a validated schema).
    pub checked: u64,
    /// Of those, the ones that do not fit (always 0 under
    /// [`Existing::Validate`], which refuses the change instead).
    pub nonconforming: u64,
    /// The first [`MAX_EXAMPLES`] of them, in id order.
    pub examples: Vec<Nonconforming>,
    /// Indexes built (field paths; compound indexes as `(a, b)`), or turned
    /// unique.
    pub indexes_built: Vec<String>,
    /// Indexes dropped, or no longer unique.
    pub indexes_dropped: Vec<String>,
}

/// What a change does to the indexes.
#[derive(Debug, Default)]
struct IndexChanges {
    /// New indexes: name → unique.
    added: BTreeMap<String, bool>,
    /// Ready non-unique indexes to make unique: name → old definition.
    made_unique: BTreeMap<String, IndexDef>,
    /// Unique indexes to make non-unique.
    made_plain: Vec<String>,
    /// Indexes the old schema declared and the new one does not.
    dropped: Vec<String>,
}

impl IndexChanges {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.made_unique.is_empty() && self.made_plain.is_empty() && self.dropped.is_empty()
    }

    /// The indexes to back-fill during the check: name → unique.
    fn to_build(&self) -> Vec<(String, bool)> {
        let made_unique = self.made_unique.keys().map(|n| (n.clone(), true));
        self.added.iter().map(|(n, u)| (n.clone(), *u)).chain(made_unique).collect()
    }
}

/// Values found twice while back-filling one unique index: encoded value →
/// (the value shown, the documents holding it).
type Duplicates = BTreeMap<Vec<u8>, (String, Vec<String>)>;

/// What the check of the stored documents found.
#[derive(Debug, Default)]
struct Checked {
    checked: u64,
    nonconforming: u64,
    examples: Vec<Nonconforming>,
}

impl Collections {
    /// Creates the collection with `schema` if it does not exist, or
    /// changes its schema to `schema` with [`Collections::alter_schema`] —
    /// the one call a program can make at every start, idempotent: the same
    /// schema again changes nothing (`changed == false`).
    ///
    /// # Errors
    /// Those of [`Collections::create_collection`] and
    /// [`Collections::alter_schema`].
    pub fn evolve_collection(&self, name: &str, schema: Schema, existing: Existing) -> Result<SchemaChange> {
        match self.create_collection(name, schema.clone()) {
            Ok(()) => Ok(SchemaChange { created: true, changed: true, ..SchemaChange::default() }),
            Err(IndexError::CollectionExists(_)) => self.alter_schema(name, schema, existing),
            Err(e) => Err(e),
        }
    }

    /// Replaces the schema of a live collection by `schema`, under the
    /// policy `existing` for the stored documents (see [`Existing`]);
    /// concurrent writers are never blocked. Fields may be added, removed
    /// or redeclared (type, `nullable`, `indexed`, `unique`), and
    /// [`Schema::strict`] turned on or off:
    ///
    /// - a field newly `indexed`/`unique` (or a compound index the schema
    ///   declares that does not exist) gets its index built online, ready
    ///   when this returns; a `unique` one over shared values refuses the
    ///   change ([`IndexError::DuplicateValues`]);
    /// - a field the old schema declared indexed and the new one does not
    ///   (removed, or no longer `indexed`/`unique`) loses its index.
    ///   Indexes made with [`Collections::create_index`] (not in the
    ///   schema) are left alone;
    /// - removing a field from the schema leaves the documents' values as
    ///   they are (a backfill is an update the application runs).
    ///
    /// During the change, writes are checked against the old and the new
    /// schema; a change that is refused (or cut short by a crash, rolled
    /// back at the next open) leaves the old definition exactly. Runs one
    /// at a time per database; reads the whole collection unless the
    /// change only loosens a schema every document is known to fit.
    ///
    /// # Errors
    /// [`IndexError::SchemaChangeRefused`] (under [`Existing::Validate`]:
    /// the first document, in id order, that does not fit, with the field);
    /// [`IndexError::DuplicateValues`]; [`IndexError::InvalidSchema`] for a
    /// malformed schema, or a change of `unique` on an index still
    /// building or on a compound index; [`IndexError::UnknownCollection`];
    /// storage errors. On every error the definition is left as it was.
    ///
    /// ```
    /// use aurora_core::{doc, FieldDefinition, FieldType};
    /// use aurora_index::{Collections, Existing, IndexConfig, IndexError, Schema};
    /// use aurora_storage::{DocumentStore, DocumentStoreConfig, StoreConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let docs = DocumentStore::open(dir.path(), StoreConfig::default(), DocumentStoreConfig::default())?;
    /// let db = Collections::open(docs, IndexConfig::default())?;
    /// db.create_collection("users", Schema::new().field("name", FieldDefinition::new(FieldType::String)))?;
    /// db.insert("users", doc! { "name": "Ada" })?;
    /// let v2 = Schema::new()
    ///     .field("name", FieldDefinition::new(FieldType::String).indexed())
    ///     .field("age", FieldDefinition::new(FieldType::Int));
    /// // Ada has no age: `Validate` refuses, naming her and the field.
    /// let err = db.alter_schema("users", v2.clone(), Existing::Validate).unwrap_err();
    /// assert!(matches!(err, IndexError::SchemaChangeRefused { ref field, .. } if field == "age"), "{err}");
    /// // `Fail` applies it and reports her; her next write must have an age.
    /// let change = db.alter_schema("users", v2, Existing::Fail)?;
    /// assert_eq!((change.checked, change.nonconforming), (1, 1));
    /// assert_eq!(change.indexes_built, ["name"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn alter_schema(&self, collection: &str, mut schema: Schema, existing: Existing) -> Result<SchemaChange> {
        schema.check(collection)?;
        let compounds = std::mem::take(&mut schema.compound_indexes);
        let _one_change_at_a_time = Arc::clone(&self.schema_changes);
        let _one_change_at_a_time = _one_change_at_a_time.lock();
        let current = self.definition_shared(collection)?;
        if current.pending.is_some() {
            // Left by a change whose roll-back failed (the store stopped
            // under it): finish that first.
            self.roll_back(collection)?;
        }
        let current = self.definition_shared(collection)?;
        let changes = index_changes(collection, &current, &schema, &compounds)?;
        let same = current.schema == schema && changes.is_empty() && current.existing == existing;
        if same && current.validated {
            return Ok(SchemaChange::default());
        }
        let needs_check = !current.validated
            || !changes.added.is_empty()
            || !changes.made_unique.is_empty()
            || !loosens(&current.schema, &schema);
        let mut report = SchemaChange {
            changed: true,
            indexes_built: changes.to_build().into_iter().map(|(n, _)| compound::display_name(&n)).collect(),
            indexes_dropped: changes
                .dropped
                .iter()
                .chain(&changes.made_plain)
                .map(|n| compound::display_name(n))
                .collect(),
            ..SchemaChange::default()
        };
        if !needs_check {
            self.commit_change(collection, &changes, |def| {
                def.schema = schema;
                def.existing = existing;
                Ok(())
            })?;
            return Ok(report);
        }
        self.publish(collection, &schema, existing, &changes)?;
        let checked = match self.check_stored(collection, &schema, existing, &changes) {
            Ok(checked) => checked,
            Err(e) => {
                if let Err(rollback) = self.roll_back(collection) {
                    tracing::warn!(collection, error = %rollback, "rolling back a refused schema change failed; the next open does it");
                }
                return Err(e);
            }
        };
        let validated = checked.nonconforming == 0;
        let finished = self.commit_change(collection, &changes, |def| {
            let pending = def.pending.take().ok_or_else(|| IndexError::InvalidSchema {
                collection: collection.into(),
                reason: "the schema change was rolled back while it ran".into(),
            })?;
            for (name, _) in changes.to_build() {
                match def.indexes.get_mut(&name) {
                    Some(index) => index.state = IndexState::Ready,
                    None => {
                        return Err(IndexError::BuildFailed {
                            collection: collection.into(),
                            field: compound::display_name(&name),
                            reason: "the index was dropped during the schema change".into(),
                        })
                    }
                }
            }
            def.schema = pending.schema;
            def.existing = existing;
            def.validated = validated;
            Ok(())
        });
        if let Err(e) = finished {
            if let Err(rollback) = self.roll_back(collection) {
                tracing::warn!(collection, error = %rollback, "rolling back a schema change failed; the next open does it");
            }
            return Err(e);
        }
        report.checked = checked.checked;
        report.nonconforming = checked.nonconforming;
        report.examples = checked.examples;
        Ok(report)
    }

    /// Step 1: the pending change, with its new indexes building.
    fn publish(&self, collection: &str, schema: &Schema, existing: Existing, changes: &IndexChanges) -> Result<()> {
        // Index decisions one at a time (as `create_index`/`drop_index`).
        let running = self.running_builds();
        let _decisions = running.lock();
        for name in changes.added.keys() {
            // Entries an interrupted drop left behind (see `start_index`).
            self.delete_prefixes(&[keys::entries_prefix(collection, name), keys::claims_prefix(collection, name)])?;
        }
        for name in changes.made_unique.keys() {
            self.delete_prefixes(&[keys::claims_prefix(collection, name)])?;
        }
        self.update_definition(collection, |def| {
            let mut previous_indexes = BTreeMap::new();
            for (name, unique) in &changes.added {
                if def.indexes.contains_key(name) {
                    return Err(changed_meanwhile(collection, name));
                }
                def.indexes.insert(name.clone(), IndexDef { unique: *unique, state: IndexState::Building });
                previous_indexes.insert(name.clone(), None);
            }
            for (name, old) in &changes.made_unique {
                if def.indexes.get(name) != Some(old) {
                    return Err(changed_meanwhile(collection, name));
                }
                def.indexes.insert(name.clone(), IndexDef { unique: true, state: IndexState::Building });
                previous_indexes.insert(name.clone(), Some(*old));
            }
            def.pending = Some(PendingChange { schema: schema.clone(), existing, previous_indexes });
            Ok(())
        })
    }

    /// Step 2: every stored document checked against `schema` and
    /// back-filled into the indexes the change builds.
    fn check_stored(
        &self,
        collection: &str,
        schema: &Schema,
        existing: Existing,
        changes: &IndexChanges,
    ) -> Result<Checked> {
        let _span = tracing::info_span!("schema_change", collection).entered();
        let to_build = changes.to_build();
        let mut duplicates: HashMap<String, Duplicates> = HashMap::new();
        let mut out = Checked::default();
        let ids: Vec<DocId> =
            self.documents().scan(collection)?.map(|d| d.map(|d| d.id)).collect::<std::result::Result<_, _>>()?;
        for id in ids {
            for (name, unique) in &to_build {
                if let Some((value, shown, holder)) = self.backfill_one(collection, name, *unique, &id)? {
                    let found = duplicates.entry(name.clone()).or_default();
                    found.entry(value).or_insert_with(|| (shown, vec![holder])).1.push(id.to_string());
                }
            }
            // The latest version: one written since the publication was
            // checked by its writer, so this sees what will be kept.
            let Some(doc) = self.documents().get(collection, &id)? else { continue };
            out.checked += 1;
            let Err(e) = schema.validate(collection, &doc) else { continue };
            let (field, reason) = field_and_reason(&e);
            if existing == Existing::Validate {
                return Err(IndexError::SchemaChangeRefused {
                    collection: collection.into(),
                    id: id.to_string(),
                    field,
                    reason,
                });
            }
            out.nonconforming += 1;
            if out.examples.len() < MAX_EXAMPLES {
                out.examples.push(Nonconforming { id, field, reason });
            }
        }
        if let Some((name, found)) = duplicates.into_iter().min_by(|a, b| a.0.cmp(&b.0)) {
            return Err(IndexError::DuplicateValues {
                collection: collection.into(),
                field: compound::display_name(&name),
                duplicates: found.into_values().take(MAX_EXAMPLES).collect(),
            });
        }
        Ok(out)
    }

    /// Writes the definition `finish` makes, with the change's index drops
    /// and unique removals, then deletes the entries and claims those leave.
    fn commit_change(
        &self,
        collection: &str,
        changes: &IndexChanges,
        finish: impl FnOnce(&mut CollectionDef) -> Result<()>,
    ) -> Result<()> {
        let running = self.running_builds();
        let _decisions = running.lock();
        self.update_definition(collection, |def| {
            finish(def)?;
            for name in &changes.dropped {
                def.indexes.remove(name);
            }
            for name in &changes.made_plain {
                if let Some(index) = def.indexes.get_mut(name) {
                    index.unique = false;
                }
            }
            Ok(())
        })?;
        for name in &changes.dropped {
            self.delete_prefixes(&[keys::entries_prefix(collection, name), keys::claims_prefix(collection, name)])?;
        }
        for name in &changes.made_plain {
            self.delete_prefixes(&[keys::claims_prefix(collection, name)])?;
        }
        for name in changes.to_build().into_iter().map(|(n, _)| n).chain(changes.dropped.iter().cloned()) {
            self.recount(collection, &name)?;
        }
        Ok(())
    }

    /// Undoes a pending change: the old schema stays, the indexes it added
    /// go and the ones it made unique are restored.
    pub(crate) fn roll_back(&self, collection: &str) -> Result<()> {
        let running = self.running_builds();
        let _decisions = running.lock();
        let previous = self.update_definition(collection, |def| {
            let Some(pending) = def.pending.take() else { return Ok(BTreeMap::new()) };
            for (name, old) in &pending.previous_indexes {
                // An index dropped meanwhile (`drop_index`) stays dropped:
                // its entries are gone.
                match (old, def.indexes.contains_key(name)) {
                    (Some(old), true) => def.indexes.insert(name.clone(), *old),
                    _ => def.indexes.remove(name),
                };
            }
            Ok(pending.previous_indexes)
        })?;
        for (name, old) in previous {
            let mut prefixes = vec![keys::claims_prefix(collection, &name)];
            if old.is_none() {
                prefixes.push(keys::entries_prefix(collection, &name));
            }
            self.delete_prefixes(&prefixes)?;
            self.recount(collection, &name)?;
        }
        Ok(())
    }

    /// Rolls back every schema change a crash interrupted (at open).
    pub(crate) fn roll_back_interrupted_changes(&self) -> Result<()> {
        for name in self.list_collections() {
            if self.definition_shared(&name)?.pending.is_some() {
                tracing::info!(collection = %name, "rolling back a schema change interrupted by a crash");
                self.roll_back(&name)?;
            }
        }
        Ok(())
    }
}

fn changed_meanwhile(collection: &str, index: &str) -> IndexError {
    IndexError::InvalidSchema {
        collection: collection.into(),
        reason: format!(
            "the index on `{}` changed while the schema change was being planned; try again",
            compound::display_name(index)
        ),
    }
}

/// The index side of replacing `current`'s schema by `schema` (plus the
/// compound indexes it declares).
fn index_changes(
    collection: &str,
    current: &CollectionDef,
    schema: &Schema,
    compounds: &[(Vec<String>, bool)],
) -> Result<IndexChanges> {
    let mut out = IndexChanges::default();
    let refuse = |name: &str, reason: &str| IndexError::InvalidSchema {
        collection: collection.into(),
        reason: format!("index on `{}`: {reason}", compound::display_name(name)),
    };
    for (path, def) in schema.indexed_fields() {
        match current.indexes.get(path) {
            None => {
                out.added.insert(path.to_string(), def.unique);
            }
            Some(index) if index.unique == def.unique => {}
            Some(index) if def.unique => {
                if index.state != IndexState::Ready {
                    return Err(refuse(path, "it is still building; wait for it before making it unique"));
                }
                out.made_unique.insert(path.to_string(), *index);
            }
            Some(_) => out.made_plain.push(path.to_string()),
        }
    }
    for (path, _) in current.schema.indexed_fields() {
        if !schema.fields.get(path).is_some_and(|d| d.is_indexed()) && current.indexes.contains_key(path) {
            out.dropped.push(path.to_string());
        }
    }
    for (fields, unique) in compounds {
        compound::check_fields(collection, fields)?;
        let name = compound::compound_name(fields);
        match current.indexes.get(&name) {
            None => {
                out.added.insert(name, *unique);
            }
            Some(index) if index.unique == *unique => {}
            Some(_) => return Err(refuse(&name, "it exists with another `unique`; drop it first to change that")),
        }
    }
    Ok(out)
}

/// Whether every document `old` accepts, `new` accepts too — so a change
/// from `old` to `new` needs no look at the stored documents.
/// Conservative: `false` whenever unsure.
pub(crate) fn loosens(old: &Schema, new: &Schema) -> bool {
    let fields = new.fields.iter().all(|(path, n)| match old.fields.get(path) {
        // Undeclared before: any value may be there.
        None => n.nullable && n.field_type == FieldType::Any,
        Some(o) => {
            let nullable = n.nullable || !o.nullable;
            let wider = n.field_type == FieldType::Any
                || n.field_type == o.field_type
                || (n.field_type == FieldType::Float && o.field_type == FieldType::Int);
            nullable && wider
        }
    });
    let unknown = match (old.unknown_fields, new.unknown_fields) {
        (_, UnknownFields::Allow) => true,
        (UnknownFields::Allow, UnknownFields::Reject) => false,
        (UnknownFields::Reject, UnknownFields::Reject) => old.fields.keys().all(|p| {
            let top = p.split('.').next().unwrap_or(p);
            new.fields.keys().any(|q| q == top || q.strip_prefix(top).is_some_and(|rest| rest.starts_with('.')))
        }),
    };
    fields && unknown
}

/// The field a validation error names, and what is wrong with it.
fn field_and_reason(e: &IndexError) -> (String, String) {
    match e {
        IndexError::WrongType { field, expected, actual, .. } => {
            (field.clone(), format!("must be {expected}, got {actual}"))
        }
        IndexError::MissingField { field, actual, .. } => {
            (field.clone(), format!("is required (not nullable), got {actual}"))
        }
        IndexError::UnknownField { field, .. } => (field.clone(), "is not in the schema (strict)".into()),
        other => (String::new(), other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_core::FieldDefinition;

    fn f(t: FieldType) -> FieldDefinition {
        FieldDefinition::new(t)
    }

    #[test]
    fn loosening_is_recognised_and_tightening_is_not() {
        let old = Schema::new().field("a", f(FieldType::Int)).field("b", f(FieldType::String));
        assert!(loosens(&old, &Schema::new().field("a", f(FieldType::Int))), "a field removed");
        assert!(loosens(&old, &old.clone().field("a", f(FieldType::Float))), "int widened to float");
        assert!(loosens(&old, &old.clone().field("b", f(FieldType::String).nullable())), "made nullable");
        assert!(loosens(&old, &old.clone().field("c", f(FieldType::Any).nullable())), "optional, any type");
        assert!(!loosens(&old, &old.clone().field("c", f(FieldType::Int).nullable())), "an undeclared c may be text");
        assert!(!loosens(&old, &old.clone().field("a", f(FieldType::String))), "type changed");
        assert!(!loosens(&old.clone().field("a", f(FieldType::Int).nullable()), &old), "made required");
        assert!(!loosens(&old, &old.clone().strict()), "made strict");
        assert!(loosens(&old.clone().strict(), &old), "strictness lifted");
        assert!(!loosens(&old.clone().strict(), &Schema::new().field("a", f(FieldType::Int)).strict()), "b undeclared");
    }
}
