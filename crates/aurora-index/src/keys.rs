//! Storage key layouts of collections and indexes.
//!
//! - catalog entry: `"c" ++ collection`
//! - index entry: `"x" ++ collection ++ 0x00 ++ field ++ 0x00 ++ enc(value) ++ id key bytes`
//!   (empty value; `enc` is self-delimiting, see [`crate::keycodec`])
//! - unique claim: `"u" ++ collection ++ 0x00 ++ field ++ 0x00 ++ enc(value)` → id key bytes
//!
//! Documents themselves live under `aurora_storage::document_key`.

use aurora_core::DocId;

pub(crate) const CATALOG: u8 = b'c';
const ENTRY: u8 = b'x';
const CLAIM: u8 = b'u';

pub(crate) fn catalog_key(collection: &str) -> Vec<u8> {
    let mut k = vec![CATALOG];
    k.extend_from_slice(collection.as_bytes());
    k
}

fn field_prefix(tag: u8, collection: &str, field: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(collection.len() + field.len() + 32);
    k.push(tag);
    k.extend_from_slice(collection.as_bytes());
    k.push(0);
    k.extend_from_slice(field.as_bytes());
    k.push(0);
    k
}

/// Prefix of every entry of one index.
pub(crate) fn entries_prefix(collection: &str, field: &str) -> Vec<u8> {
    field_prefix(ENTRY, collection, field)
}

/// Prefix of every unique claim of one index.
pub(crate) fn claims_prefix(collection: &str, field: &str) -> Vec<u8> {
    field_prefix(CLAIM, collection, field)
}

/// Prefix of every index entry or claim of a collection (for dropping it).
pub(crate) fn collection_prefixes(collection: &str) -> [Vec<u8>; 2] {
    let mk = |tag| {
        let mut k = vec![tag];
        k.extend_from_slice(collection.as_bytes());
        k.push(0);
        k
    };
    [mk(ENTRY), mk(CLAIM)]
}

pub(crate) fn entry_key(collection: &str, field: &str, encoded: &[u8], id: &DocId) -> Vec<u8> {
    let mut k = entries_prefix(collection, field);
    k.extend_from_slice(encoded);
    k.extend_from_slice(&id.to_key_bytes());
    k
}

pub(crate) fn claim_key(collection: &str, field: &str, encoded: &[u8]) -> Vec<u8> {
    let mut k = claims_prefix(collection, field);
    k.extend_from_slice(encoded);
    k
}
