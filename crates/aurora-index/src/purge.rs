//! [`Collections::purge_document`]: removing a document whose stored body
//! cannot be decoded (a damaged file), with its index entries and unique
//! claims, without reading the body.
//!
//! An ordinary delete reads the old version to know which index entries to
//! remove; a damaged body cannot tell. The purge finds them from the other
//! side: it walks every index of the collection and removes the entries and
//! claims that name the document's id. That costs a scan of each index —
//! a repair tool, not a write path.

use crate::collections::Collections;
use crate::compound;
use crate::error::{IndexError, Result};
use crate::keycodec;
use crate::keys;
use aurora_core::DocId;
use aurora_storage::{document_key, CommitOutcome, DocumentWrites};

impl Collections {
    /// Removes the document `id` of `collection` and every index entry and
    /// unique claim that names it, without decoding the stored document.
    /// Returns whether it existed. Raises no change event (the caller's
    /// layer decides; nobody could ever have read the document).
    ///
    /// Meant for a document that cannot be decoded; works on any document.
    ///
    /// # Errors
    /// [`IndexError::UnknownCollection`]; [`IndexError::Contention`] if the
    /// document or the collection's definition changed while the purge was
    /// planned (try again); storage errors, including
    /// `StorageError::Corrupt` for an index key that cannot be parsed.
    pub fn purge_document(&self, collection: &str, id: &DocId) -> Result<bool> {
        id.validate().map_err(aurora_storage::StorageError::from)?;
        let (def, def_revision) = self.def_versioned(collection)?;
        let store = self.documents().store();
        let doc_key = document_key(collection, id);
        let Some((revision, _)) = store.get_versioned(&doc_key)? else { return Ok(false) };
        let id_bytes = id.to_key_bytes();
        let mut writes = DocumentWrites::new();
        writes.delete(collection, id)?;
        let batch = writes.batch_mut();
        batch.require_revision(doc_key, revision);
        batch.require_revision(keys::catalog_key(collection), def_revision);
        for name in def.indexes.keys() {
            let values = if compound::is_compound(name) { compound::index_fields(name).len() } else { 1 };
            let prefix = keys::entries_prefix(collection, name);
            for entry in store.scan_prefix(&prefix)? {
                let (key, _) = entry?;
                if entry_id(&key, prefix.len(), values)? == id_bytes.as_slice() {
                    batch.delete(key);
                }
            }
            for claim in store.scan_prefix(&keys::claims_prefix(collection, name))? {
                let (key, owner) = claim?;
                if owner == id_bytes {
                    batch.delete(key);
                }
            }
        }
        match self.documents().commit(writes)? {
            CommitOutcome::Committed(_) => {
                for name in def.indexes.keys() {
                    self.recount(collection, name)?;
                }
                Ok(true)
            }
            CommitOutcome::ConditionFailed { .. } => {
                Err(IndexError::Contention { collection: collection.into(), id: id.to_string(), attempts: 1 })
            }
        }
    }
}

/// The id bytes of an index entry key: what follows the prefix and the
/// `values` encoded values.
fn entry_id(key: &[u8], prefix: usize, values: usize) -> Result<&[u8]> {
    let mut rest = &key[prefix..];
    for _ in 0..values {
        let n = keycodec::encoded_len(rest).ok_or_else(|| aurora_storage::StorageError::Corrupt {
            key: aurora_storage::printable_key(key),
            reason: "an index entry whose value cannot be parsed".into(),
        })?;
        rest = &rest[n..];
    }
    Ok(rest)
}
