//! Online index management: `create_index` on a populated collection and
//! `drop_index`.
//!
//! A new index is first persisted as [`IndexState::Building`]: from then on
//! every write maintains it. A background thread back-fills the existing
//! documents, each with a compare-and-swap on the document's revision and a
//! rewrite of the document (so a writer that still planned against the old
//! definition fails its own compare-and-swap and retries with the new one).
//! When the back-fill completes the index becomes [`IndexState::Ready`] and
//! visible to reads. A unique build that meets duplicate values removes the
//! index again and fails with [`IndexError::DuplicateValues`] listing them.

use crate::catalog::{IndexDef, IndexState};
use crate::collections::Collections;
use crate::error::{IndexError, Result};
use crate::keys;
use crate::maintain::{index_values, render};
use aurora_core::{DocId, Document};
use aurora_storage::{CommitOutcome, DocumentWrites};
use std::collections::BTreeMap;
use std::thread::JoinHandle;

/// Most duplicate values listed in [`IndexError::DuplicateValues`].
const MAX_LISTED: usize = 20;

/// A running index build; [`IndexBuild::wait`] joins it.
#[derive(Debug)]
pub struct IndexBuild {
    thread: JoinHandle<Result<()>>,
}

impl IndexBuild {
    /// Waits for the build to finish and returns its outcome.
    pub fn wait(self) -> Result<()> {
        self.thread.join().unwrap_or_else(|_| {
            Err(IndexError::InvalidSchema { collection: String::new(), reason: "index build thread panicked".into() })
        })
    }

    /// Whether the build has finished.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

impl Collections {
    /// Starts building an index on `field`. Writes are not blocked; the
    /// index is used for reads only once complete. Creating an index that
    /// exists is a no-op that finishes at once.
    pub fn create_index(&self, collection: &str, field: &str, unique: bool) -> Result<IndexBuild> {
        let mut def = self.definition(collection)?;
        if field.is_empty() || field.split('.').any(str::is_empty) || field.contains('\0') {
            return Err(IndexError::InvalidSchema {
                collection: collection.into(),
                reason: format!("cannot index field path {field:?}"),
            });
        }
        if def.indexes.contains_key(field) {
            return Ok(IndexBuild { thread: std::thread::spawn(|| Ok(())) });
        }
        def.indexes.insert(field.to_string(), IndexDef { unique, state: IndexState::Building });
        self.save_definition(collection, def)?;
        let (this, collection, field) = (self.clone(), collection.to_string(), field.to_string());
        let thread = std::thread::Builder::new()
            .name(format!("aurora-index-build-{collection}.{field}"))
            .spawn(move || this.backfill(&collection, &field, unique))
            .map_err(|e| {
                IndexError::Storage(aurora_storage::StorageError::Io {
                    context: "starting an index build".into(),
                    source: e,
                })
            })?;
        Ok(IndexBuild { thread })
    }

    fn backfill(&self, collection: &str, field: &str, unique: bool) -> Result<()> {
        let _span = tracing::info_span!("index_build", collection, field).entered();
        let mut duplicates: BTreeMap<Vec<u8>, (String, Vec<String>)> = BTreeMap::new();
        let ids: Vec<DocId> = self.documents().scan(collection)?.map(|d| d.map(|d| d.id)).collect::<Result<_, _>>()?;
        for id in ids {
            if let Some(dup) = self.backfill_one(collection, field, unique, &id)? {
                let entry = duplicates.entry(dup.0).or_insert_with(|| (dup.1, vec![dup.2]));
                entry.1.push(id.to_string());
            }
        }
        if !duplicates.is_empty() {
            self.drop_index(collection, field)?;
            return Err(IndexError::DuplicateValues {
                collection: collection.into(),
                field: field.into(),
                duplicates: duplicates.into_values().take(MAX_LISTED).collect(),
            });
        }
        let mut def = self.definition(collection)?;
        if let Some(index) = def.indexes.get_mut(field) {
            index.state = IndexState::Ready;
        }
        self.save_definition(collection, def)?;
        self.recount(collection, field)?;
        tracing::info!("index ready");
        Ok(())
    }

    /// Indexes one document; returns `(encoded value, rendered value,
    /// holder id)` if a unique value is already claimed by another document.
    fn backfill_one(
        &self,
        collection: &str,
        field: &str,
        unique: bool,
        id: &DocId,
    ) -> Result<Option<(Vec<u8>, String, String)>> {
        loop {
            let (rev, Some(doc)) = self.documents().get_versioned(collection, id)? else { return Ok(None) };
            let mut writes = DocumentWrites::new();
            writes.put(collection, &doc)?;
            let doc_key = aurora_storage::document_key(collection, id);
            let batch = writes.batch_mut();
            batch.require_revision(doc_key.clone(), rev);
            let mut claims = Vec::new();
            for value in index_values(Some(&doc), field) {
                batch.put(keys::entry_key(collection, field, &value, id), Vec::new());
                if unique && value != crate::keycodec::encode(&aurora_core::Value::Null) {
                    let claim = keys::claim_key(collection, field, &value);
                    match self.documents().store().get(&claim)? {
                        Some(holder) if holder == id.to_key_bytes() => {}
                        Some(holder) => return Ok(Some(duplicate(&doc, field, value, &holder))),
                        None => {
                            batch.require_absent(claim.clone()).put(claim.clone(), id.to_key_bytes());
                            claims.push((claim, value));
                        }
                    }
                }
            }
            match self.documents().commit(writes)? {
                CommitOutcome::Committed(_) => return Ok(None),
                CommitOutcome::ConditionFailed { key, .. } if key == doc_key => continue,
                CommitOutcome::ConditionFailed { key, .. } => {
                    if let Some((_, value)) = claims.into_iter().find(|(c, _)| *c == key) {
                        let holder = self.documents().store().get(&key)?.unwrap_or_default();
                        return Ok(Some(duplicate(&doc, field, value, &holder)));
                    }
                    continue;
                }
            }
        }
    }

    /// Removes an index: its definition (and the schema's `indexed`/`unique`
    /// marks on the field), entries and unique claims.
    pub fn drop_index(&self, collection: &str, field: &str) -> Result<()> {
        let mut def = self.definition(collection)?;
        if def.indexes.remove(field).is_none() {
            return Err(IndexError::NoIndex { collection: collection.into(), field: field.into() });
        }
        if let Some(f) = def.schema.fields.get_mut(field) {
            f.indexed = false;
            f.unique = false;
        }
        self.save_definition(collection, def)?;
        self.delete_prefixes(&[keys::entries_prefix(collection, field), keys::claims_prefix(collection, field)])?;
        self.recount(collection, field)
    }
}

fn duplicate(doc: &Document, field: &str, value: Vec<u8>, holder: &[u8]) -> (Vec<u8>, String, String) {
    let shown = match doc.get_path(field) {
        Some(aurora_core::Value::Array(items)) => {
            items.iter().find(|v| crate::keycodec::encode(v) == value).map(render).unwrap_or_default()
        }
        Some(v) => render(v),
        None => String::new(),
    };
    let holder = DocId::from_key_bytes(holder).map_or_else(|_| "?".into(), |h| h.to_string());
    (value, shown, holder)
}
