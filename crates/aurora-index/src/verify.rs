//! Checking a collection's indexes against its documents, read-only (for
//! `aurora check`): every entry and unique claim a document implies must
//! be stored, and every stored entry and claim must be implied by a
//! document.

use crate::catalog::IndexState;
use crate::collections::{split_entry, Collections};
use crate::compound;
use crate::error::Result;
use crate::keys;
use crate::maintain::{claims_uniqueness, index_values};
use aurora_core::DocId;
use aurora_storage::printable_key;

/// Problems kept per collection in [`IndexCheck::problems`]; the rest are
/// only counted.
pub const MAX_REPORTED_PROBLEMS: usize = 100;

/// One disagreement between a collection's documents and its indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexProblem {
    /// A document's value has no index entry: index reads miss the document.
    MissingEntry {
        /// The index (its field path, or compound name as [`compound::display_name`] shows it).
        index: String,
        /// The document.
        id: DocId,
        /// The entry's key, printable.
        key: String,
    },
    /// An index entry no document implies: index reads return a document
    /// that does not match, or one that does not exist.
    StrayEntry {
        /// The index.
        index: String,
        /// The entry's key, printable.
        key: String,
        /// Why it is stray.
        reason: String,
    },
    /// A document's unique value has no claim: a second document could take it.
    MissingClaim {
        /// The unique index.
        index: String,
        /// The document.
        id: DocId,
        /// The claim's key, printable.
        key: String,
    },
    /// A unique claim no document holds (the value cannot be written by
    /// anyone), or one naming another document.
    StrayClaim {
        /// The unique index.
        index: String,
        /// The claim's key, printable.
        key: String,
        /// Why it is stray.
        reason: String,
    },
}

impl std::fmt::Display for IndexProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexProblem::MissingEntry { index, id, key } => {
                write!(f, "index `{index}`: document {id} has no entry {key}")
            }
            IndexProblem::StrayEntry { index, key, reason } => {
                write!(f, "index `{index}`: stray entry {key}: {reason}")
            }
            IndexProblem::MissingClaim { index, id, key } => {
                write!(f, "unique index `{index}`: document {id} has no claim {key}")
            }
            IndexProblem::StrayClaim { index, key, reason } => {
                write!(f, "unique index `{index}`: stray claim {key}: {reason}")
            }
        }
    }
}

/// What [`Collections::verify_indexes`] found in one collection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexCheck {
    /// Documents read.
    pub documents: u64,
    /// Index entries read.
    pub entries: u64,
    /// Unique claims read.
    pub claims: u64,
    /// Indexes checked (ready ones).
    pub indexes_checked: usize,
    /// Indexes still being built (their entries are not complete yet, so
    /// they are not checked).
    pub building: Vec<String>,
    /// Problems found, the first [`MAX_REPORTED_PROBLEMS`].
    pub problems: Vec<IndexProblem>,
    /// All problems found (`problems.len()` or more).
    pub problem_count: u64,
}

impl IndexCheck {
    fn found(&mut self, problem: IndexProblem) {
        self.problem_count += 1;
        if self.problems.len() < MAX_REPORTED_PROBLEMS {
            self.problems.push(problem);
        }
    }
}

impl Collections {
    /// Reads every document of `collection` and checks every ready index
    /// against them, changing nothing: for each document, the entry of each value it
    /// contributes (each element of an array; one tuple for a compound
    /// index) and, for a unique index, the claim of that value naming the
    /// document; then for each stored entry and claim of the collection —
    /// including those of indexes the definition no longer has — a
    /// document that implies it. `progress` is called with the number of
    /// keys read so far, every 1 024 keys.
    ///
    /// Reads as it goes (documents and index keys in key order, one point
    /// read per expected key), so memory stays bounded; run it on a
    /// database nobody writes to meanwhile, or concurrent writes may be
    /// reported as problems.
    ///
    /// # Errors
    /// `UnknownCollection`; storage errors (a document that does not
    /// decode is `Storage(Corrupt)`, not a problem: it is not an index's
    /// fault).
    ///
    /// ```
    /// use aurora_core::{doc, FieldDefinition, FieldType};
    /// use aurora_index::{Collections, IndexConfig, Schema};
    /// use aurora_storage::{DocumentStore, DocumentStoreConfig, StoreConfig};
    /// let tmp = tempfile::tempdir().unwrap();
    /// let docs = DocumentStore::open(tmp.path(), StoreConfig::default(), DocumentStoreConfig::default()).unwrap();
    /// let c = Collections::open(docs, IndexConfig::default()).unwrap();
    /// c.create_collection("users", Schema::new().field("email", FieldDefinition::new(FieldType::String).unique())).unwrap();
    /// c.insert("users", doc! { "email": "ada@x.io" }).unwrap();
    /// let found = c.verify_indexes("users", |_| {}).unwrap();
    /// assert_eq!((found.documents, found.entries, found.claims, found.problem_count), (1, 1, 1, 0));
    /// ```
    pub fn verify_indexes(&self, collection: &str, mut progress: impl FnMut(u64)) -> Result<IndexCheck> {
        let def = self.definition_shared(collection)?;
        let store = self.documents().store();
        let mut out = IndexCheck::default();
        let ready: Vec<(&str, bool)> = def
            .indexes
            .iter()
            .filter(|(_, d)| d.state == IndexState::Ready)
            .map(|(name, d)| (name.as_str(), d.unique))
            .collect();
        out.indexes_checked = ready.len();
        out.building = def
            .indexes
            .iter()
            .filter(|(_, d)| d.state == IndexState::Building)
            .map(|(name, _)| compound::display_name(name))
            .collect();
        let mut read = 0u64;
        let mut tick = |read: &mut u64| {
            *read += 1;
            if read.is_multiple_of(1024) {
                progress(*read);
            }
        };
        // Documents → expected entries and claims (every document is read,
        // so one that does not decode is found even without indexes).
        {
            for doc in self.documents().scan(collection)? {
                let doc = doc?;
                out.documents += 1;
                tick(&mut read);
                let id_bytes = doc.id.to_key_bytes();
                for &(name, unique) in &ready {
                    for value in index_values(Some(&doc), name) {
                        let key = keys::entry_key(collection, name, &value, &doc.id);
                        if store.get(&key)?.is_none() {
                            out.found(IndexProblem::MissingEntry {
                                index: compound::display_name(name),
                                id: doc.id.clone(),
                                key: printable_key(&key),
                            });
                        }
                        if unique && claims_uniqueness(&value) {
                            let key = keys::claim_key(collection, name, &value);
                            if store.get(&key)?.as_deref() != Some(id_bytes.as_slice()) {
                                out.found(IndexProblem::MissingClaim {
                                    index: compound::display_name(name),
                                    id: doc.id.clone(),
                                    key: printable_key(&key),
                                });
                            }
                        }
                    }
                }
            }
        }
        // Stored entries and claims → the documents that imply them.
        let [entries, claims] = keys::collection_prefixes(collection);
        for (prefix, is_claim) in [(entries, false), (claims, true)] {
            for item in store.scan_prefix(&prefix)? {
                let (key, value) = item?;
                tick(&mut read);
                if is_claim {
                    out.claims += 1;
                } else {
                    out.entries += 1;
                }
                let rest = &key[prefix.len()..];
                let Some(end) = rest.iter().position(|&b| b == 0) else {
                    out.found(stray(is_claim, "?", &key, "no index name in the key".into()));
                    continue;
                };
                let name = String::from_utf8_lossy(&rest[..end]).into_owned();
                let shown = compound::display_name(&name);
                let index = match def.indexes.get(&name) {
                    None => {
                        out.found(stray(is_claim, &shown, &key, "the collection has no such index".into()));
                        continue;
                    }
                    Some(d) if d.state == IndexState::Building => continue,
                    Some(d) => d,
                };
                if is_claim && !index.unique {
                    out.found(stray(is_claim, &shown, &key, "the index is not unique".into()));
                    continue;
                }
                let base = &key[..prefix.len() + end + 1];
                let parts = compound::index_fields(&name).len();
                let (encoded, id) = if is_claim {
                    match DocId::from_key_bytes(&value) {
                        Ok(id) => (&key[base.len()..], id),
                        Err(e) => {
                            out.found(stray(is_claim, &shown, &key, format!("the claim names no valid id: {e}")));
                            continue;
                        }
                    }
                } else {
                    match split_entry(base, parts, &key) {
                        Ok(split) => split,
                        Err(e) => {
                            out.found(stray(is_claim, &shown, &key, e.to_string()));
                            continue;
                        }
                    }
                };
                let reason = match self.documents().get(collection, &id)? {
                    None => Some(format!("document {id} does not exist")),
                    Some(doc) if !index_values(Some(&doc), &name).contains(encoded) => {
                        Some(format!("document {id} does not hold this value"))
                    }
                    Some(_) => None,
                };
                if let Some(reason) = reason {
                    out.found(stray(is_claim, &shown, &key, reason));
                }
            }
        }
        progress(read);
        Ok(out)
    }
}

fn stray(is_claim: bool, index: &str, key: &[u8], reason: String) -> IndexProblem {
    let (index, key) = (index.to_string(), printable_key(key));
    if is_claim {
        IndexProblem::StrayClaim { index, key, reason }
    } else {
        IndexProblem::StrayEntry { index, key, reason }
    }
}
