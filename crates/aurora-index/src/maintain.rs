//! Index maintenance: the index entries and unique claims a document
//! implies, and the writes that turn one document version into another.

use crate::catalog::CollectionDef;
use crate::compound;
use crate::error::Result;
use crate::keycodec;
use crate::keys;
use aurora_core::{DocId, Document, Value};
use aurora_storage::{Batch, Store};
use std::collections::BTreeSet;

/// The encoded values `doc` contributes to the index named `field`: the
/// value itself, or each element of an array (deduplicated); nothing when
/// the field is absent. A compound index (see [`crate::compound`]) gets
/// exactly one value whenever the document exists: the concatenated
/// encodings of its fields, missing ones as `null`, arrays whole.
pub(crate) fn index_values(doc: Option<&Document>, field: &str) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::new();
    if compound::is_compound(field) {
        if let Some(doc) = doc {
            let mut tuple = Vec::new();
            for part in compound::index_fields(field) {
                keycodec::encode_into(doc.get_path(part).unwrap_or(&Value::Null), &mut tuple);
            }
            out.insert(tuple);
        }
        return out;
    }
    match doc.and_then(|d| d.get_path(field)) {
        None => {}
        Some(Value::Array(items)) => out.extend(items.iter().map(keycodec::encode)),
        Some(v) => {
            out.insert(keycodec::encode(v));
        }
    }
    out
}

/// `NULL` never claims uniqueness (as in SQL), so many documents may lack a
/// value of a unique field; a compound value claims it only when none of
/// its parts is `null`.
pub(crate) fn claims_uniqueness(encoded: &[u8]) -> bool {
    let null = keycodec::encode(&Value::Null);
    let mut rest = encoded;
    while !rest.is_empty() {
        let n = keycodec::encoded_len(rest).unwrap_or(rest.len());
        if rest[..n] == null[..] {
            return false;
        }
        rest = &rest[n..];
    }
    true
}

/// A unique claim a write makes, to turn a failed condition into an error.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub(crate) key: Vec<u8>,
    pub(crate) field: String,
    pub(crate) value: String,
}

/// What a write does to the indexes.
#[derive(Debug, Default)]
pub(crate) struct IndexDelta {
    pub(crate) claims: Vec<Claim>,
    /// Unique claims of a building index that the old version's values
    /// may hold: released only if this document holds them (see
    /// [`release_claims`]).
    pub(crate) releases: Vec<Vec<u8>>,
    /// Net entries added per field.
    pub(crate) entry_deltas: Vec<(String, isize)>,
}

/// Adds to `batch` the index writes that turn `old` into `new` (either may
/// be absent) for every index of the collection, ready or building.
pub(crate) fn plan(
    collection: &str,
    def: &CollectionDef,
    id: &DocId,
    old: Option<&Document>,
    new: Option<&Document>,
    batch: &mut Batch,
) -> IndexDelta {
    let mut delta = IndexDelta::default();
    for (field, index) in &def.indexes {
        let before = index_values(old, field);
        let after = index_values(new, field);
        let mut net = 0isize;
        for gone in before.difference(&after) {
            batch.delete(keys::entry_key(collection, field, gone, id));
            if index.unique && claims_uniqueness(gone) {
                let claim = keys::claim_key(collection, field, gone);
                match index.state {
                    // Every value of a complete unique index is claimed by
                    // its document.
                    crate::catalog::IndexState::Ready => {
                        batch.delete(claim);
                    }
                    // A document the back-fill has not reached holds no
                    // claim; another one may hold this value's.
                    crate::catalog::IndexState::Building => delta.releases.push(claim),
                }
            }
            net -= 1;
        }
        for added in after.difference(&before) {
            batch.put(keys::entry_key(collection, field, added, id), Vec::new());
            if index.unique && claims_uniqueness(added) {
                let key = keys::claim_key(collection, field, added);
                batch.require_absent(key.clone()).put(key.clone(), id.to_key_bytes());
                let value = new.map_or_else(String::new, |d| shown_value(d, field, added));
                delta.claims.push(Claim { key, field: compound::display_name(field), value });
            }
            net += 1;
        }
        if net != 0 {
            delta.entry_deltas.push((field.clone(), net));
        }
    }
    delta
}

/// Deletes each claim of `delta.releases` that document `id` holds,
/// conditioned on it being unchanged (a failed condition: plan again);
/// claims held by another document stay.
pub(crate) fn release_claims(store: &Store, id: &DocId, delta: &IndexDelta, batch: &mut Batch) -> Result<()> {
    let holder = id.to_key_bytes();
    for claim in &delta.releases {
        if let Some((revision, held_by)) = store.get_versioned(claim)? {
            if held_by == holder {
                batch.require_revision(claim.clone(), revision).delete(claim.clone());
            }
        }
    }
    Ok(())
}

/// The value (or array element) of `field` whose encoding is `encoded`,
/// as shown in errors; a compound index's values as a tuple.
pub(crate) fn shown_value(doc: &Document, field: &str, encoded: &[u8]) -> String {
    if compound::is_compound(field) {
        let parts: Vec<String> = compound::index_fields(field)
            .into_iter()
            .map(|f| render(doc.get_path(f).unwrap_or(&Value::Null)))
            .collect();
        return format!("({})", parts.join(", "));
    }
    let found = match doc.get_path(field) {
        Some(Value::Array(items)) => items.iter().find(|v| keycodec::encode(v) == encoded),
        v => v,
    };
    found.map_or_else(String::new, render)
}

/// A value as shown in error messages (JSON-like, cut at 100 characters).
pub(crate) fn render(v: &Value) -> String {
    v.render(100)
}
