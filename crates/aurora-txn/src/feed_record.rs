//! The stored forms of a change-feed entry, and how a reader turns one back
//! into the commit's changes.
//!
//! Three forms exist, told apart by the entry's first byte; older forms are
//! still read (and trimmed) as they are — stores are not migrated:
//!
//! - **Full records** (byte [`FULL_RECORD`] = 1, written before issue 17):
//!   every change with its old and new document in full — a second copy of
//!   everything written.
//! - **Headers** (byte [`HEADER_RECORD`] = 2): per change only the
//!   collection, id, kind and a CRC-32 of the new document's stored bytes.
//! - **Compact headers** (byte [`COMPACT_HEADER_RECORD`] = 3, written now):
//!   the same facts, each run of changes to one collection under one copy
//!   of its name, the CRC in 4 fixed bytes (a varint of a random 32-bit
//!   value takes 5) — 7 bytes less per change of a bulk insert.
//!
//! In both header forms the documents are not copied:
//!   - an update's or delete's **old** document is archived by that commit
//!     under `"v" ++ document key ++ sequence` (the version it replaced,
//!     written in the same atomic batch), as
//!     `[ARCHIVE_WITH_REVISION][revision of that version: u64 BE][stored bytes]`
//!     (archives written before carry the stored bytes alone);
//!   - a change's **new** document is the version that the *next* feed
//!     change of the same document archived (the first archive of that key
//!     with a later sequence), or, when there is none, the document as
//!     stored now. Writes that bypass the feed keep a document's content
//!     (an index build rewrites it as it is), so that is the version the
//!     commit wrote; the CRC checks it. A mismatch on a version written
//!     *after* the entry's commit (its revision says so), or a document
//!     gone with no archive of its delete, means a commit the feed did not
//!     record replaced it — the feed was off — and the read that meets it
//!     fails with [`TxnError::HistoryNotKept`]; any other mismatch is
//!     damage, [`StorageError::Corrupt`].
//!
//! An entry is read at one storage snapshot, so a concurrent commit or trim
//! never shows a reader half of its work.

use crate::error::{Result, TxnError};
use crate::sink::{Change, ChangeKind};
use aurora_core::{DocId, Document, Timestamp};
use aurora_storage::{document_key, format, printable_key, revision_key, Batch, Revision, Snapshot, StorageError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

/// First byte of an entry stored as a full record (old and new documents).
pub(crate) const FULL_RECORD: u8 = format::FORMAT_VERSION;
/// First byte of an entry stored as a header (documents not copied).
pub(crate) const HEADER_RECORD: u8 = 2;
/// First byte of an entry stored as a compact header (written now).
pub(crate) const COMPACT_HEADER_RECORD: u8 = 3;
/// Prefix of archived old versions: `"v" ++ document key ++ sequence`.
pub(crate) const ARCHIVE: &[u8] = b"v";
/// First byte of an archive that records the revision of the version it
/// holds: `[ARCHIVE_WITH_REVISION][revision: u64 BE][stored document]`. An
/// archive written before it is the stored document alone (its first byte
/// is [`format::FORMAT_VERSION`]).
pub(crate) const ARCHIVE_WITH_REVISION: u8 = 2;

/// An archive's parts: the revision of the version it holds (`None` in an
/// archive written before revisions were recorded) and the stored document.
pub(crate) fn split_archive<'a>(key: &[u8], raw: &'a [u8]) -> Result<(Option<Revision>, &'a [u8])> {
    match raw.first() {
        Some(&ARCHIVE_WITH_REVISION) => {
            let revision = raw.get(1..9).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
            match (revision, raw.get(9..)) {
                (Some(revision), Some(doc)) => Ok((Some(revision), doc)),
                _ => Err(StorageError::Corrupt {
                    key: printable_key(key),
                    reason: "archive shorter than its header".into(),
                }
                .into()),
            }
        }
        _ => Ok((None, raw)),
    }
}

/// Decodes the document an archive holds.
pub(crate) fn archived_document(key: &[u8], raw: &[u8]) -> Result<Document> {
    let (_, doc) = split_archive(key, raw)?;
    Ok(format::decode(key, doc)?)
}

/// A full record as read back.
#[derive(Deserialize)]
pub(crate) struct Record {
    pub(crate) transaction_id: u64,
    pub(crate) at: Timestamp,
    pub(crate) changes: Vec<StoredChange>,
}

/// One change of a [`Record`].
#[derive(Deserialize)]
pub(crate) struct StoredChange {
    pub(crate) collection: String,
    pub(crate) id: DocId,
    pub(crate) kind: ChangeKind,
    pub(crate) old: Option<Document>,
    pub(crate) new: Option<Document>,
}

/// An entry stored as a header.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) transaction_id: u64,
    pub(crate) at: Timestamp,
    /// Encoded bytes of the documents the entry delivers (old and new) plus
    /// the header itself: what counts against a byte budget.
    pub(crate) bytes: u64,
    pub(crate) changes: Vec<HeaderChange>,
}

/// One change of a [`Header`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HeaderChange {
    pub(crate) collection: String,
    pub(crate) id: DocId,
    pub(crate) kind: ChangeKind,
    /// CRC-32 of the new document's stored bytes (0 for a delete).
    pub(crate) new_crc: u32,
}

/// An entry as written now: [`Header`]'s facts, consecutive changes to one
/// collection grouped under its name.
#[derive(Debug, Serialize, Deserialize)]
struct CompactHeader {
    transaction_id: u64,
    at: Timestamp,
    bytes: u64,
    runs: Vec<Run>,
}

/// Consecutive changes of a [`CompactHeader`] to one collection.
#[derive(Debug, Serialize, Deserialize)]
struct Run {
    collection: String,
    changes: Vec<CompactChange>,
}

/// One change of a [`Run`].
#[derive(Debug, Serialize, Deserialize)]
struct CompactChange {
    id: DocId,
    kind: ChangeKind,
    /// CRC-32 (big-endian) of the new document's stored bytes (0 for a delete).
    new_crc: [u8; 4],
}

impl CompactHeader {
    fn into_header(self) -> Header {
        let changes = self
            .runs
            .into_iter()
            .flat_map(|run| {
                let collection = run.collection;
                run.changes.into_iter().map(move |c| HeaderChange {
                    collection: collection.clone(),
                    id: c.id,
                    kind: c.kind,
                    new_crc: u32::from_be_bytes(c.new_crc),
                })
            })
            .collect();
        Header { transaction_id: self.transaction_id, at: self.at, bytes: self.bytes, changes }
    }
}

/// A stored entry in any form (both header forms read as [`Header`]).
pub(crate) enum Stored {
    /// Written before issue 17.
    Full(Record),
    /// Written now.
    Header(Header),
}

impl Stored {
    /// When the entry was committed.
    pub(crate) fn at(&self) -> Timestamp {
        match self {
            Stored::Full(r) => r.at,
            Stored::Header(h) => h.at,
        }
    }

    /// The collections the entry changes, one per change.
    pub(crate) fn collections(&self) -> Vec<&str> {
        match self {
            Stored::Full(r) => r.changes.iter().map(|c| c.collection.as_str()).collect(),
            Stored::Header(h) => h.changes.iter().map(|c| c.collection.as_str()).collect(),
        }
    }

    /// The bytes that count against a byte budget (`encoded` = the stored
    /// entry's length).
    pub(crate) fn budget_bytes(&self, encoded: usize) -> u64 {
        match self {
            Stored::Full(_) => encoded as u64,
            Stored::Header(h) => h.bytes,
        }
    }

    /// The archive keys this entry owns (deleted with it).
    pub(crate) fn archive_keys(&self, sequence: Revision) -> Vec<Vec<u8>> {
        match self {
            Stored::Full(_) => Vec::new(),
            Stored::Header(h) => h
                .changes
                .iter()
                .filter(|c| c.kind != ChangeKind::Insert)
                .map(|c| archive_key(&document_key(&c.collection, &c.id), sequence))
                .collect(),
        }
    }
}

/// `"v" ++ document key`: the prefix of a document's archived versions.
fn archive_prefix(doc_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(ARCHIVE.len() + doc_key.len() + 8);
    k.extend_from_slice(ARCHIVE);
    k.extend_from_slice(doc_key);
    k
}

/// The key of the version of `doc_key` that commit `sequence` replaced.
pub(crate) fn archive_key(doc_key: &[u8], sequence: Revision) -> Vec<u8> {
    revision_key(&archive_prefix(doc_key), sequence)
}

/// Decodes a stored entry (its parts joined); `key` names it in errors.
pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Stored> {
    match bytes.first() {
        Some(&FULL_RECORD) => Ok(Stored::Full(format::decode(key, bytes)?)),
        Some(&HEADER_RECORD) => {
            let mut body = bytes.to_vec();
            body[0] = FULL_RECORD;
            Ok(Stored::Header(format::decode(key, &body)?))
        }
        Some(&COMPACT_HEADER_RECORD) => {
            let mut body = bytes.to_vec();
            body[0] = FULL_RECORD;
            Ok(Stored::Header(format::decode::<CompactHeader>(key, &body)?.into_header()))
        }
        Some(&version) => {
            Err(StorageError::UnknownFormat { key: printable_key(key), version, supported: COMPACT_HEADER_RECORD }
                .into())
        }
        None => Err(StorageError::Corrupt { key: printable_key(key), reason: "empty feed entry".into() }.into()),
    }
}

/// CRC-32 of a stored document's bytes.
pub(crate) fn crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// What [`encode`] produced: the entry and the bytes it counts against a budget.
pub(crate) struct Encoded {
    pub(crate) entry: Vec<u8>,
    pub(crate) budget_bytes: u64,
}

/// Encodes one transaction's entry as a header, and adds to `batch` the
/// archives of the old versions its updates and deletes replace. The new
/// documents' stored bytes are taken from `batch`'s puts, the replaced
/// versions' revisions from its conditions (a commit requires each written
/// document to be at the revision it read).
pub(crate) fn encode(batch: &mut Batch, transaction_id: u64, at: Timestamp, changes: &[Change]) -> Result<Encoded> {
    // The documents' stored bytes by key, sorted for a binary search (a
    // bulk insert's puts come nearly in key order, so the sort is nearly a
    // scan; a hash map of them cost ~400 instructions more per document).
    let mut puts: Vec<(&[u8], &[u8])> = batch
        .ops()
        .iter()
        .filter_map(|op| match op {
            aurora_storage::Op::Put { key, value } if key.first() == Some(&b'd') => {
                Some((key.as_slice(), value.as_slice()))
            }
            _ => None,
        })
        .collect();
    // Stable, so that of two puts of one key the later one is found, as
    // the batch applies them.
    puts.sort_by(|a, b| a.0.cmp(b.0));
    let stored_bytes = |key: &[u8]| {
        let after = puts.partition_point(|p| p.0 <= key);
        after.checked_sub(1).map(|i| puts[i]).filter(|p| p.0 == key).map(|p| p.1)
    };
    // The revisions replaced versions had: only updates and deletes need them.
    let read_at: HashMap<&[u8], Revision> = match changes.iter().any(|c| c.old.is_some()) {
        true => batch.conditions().iter().map(|c| (c.key.as_slice(), c.revision)).collect(),
        false => HashMap::new(),
    };
    let mut bytes = 0u64;
    let mut runs: Vec<Run> = Vec::new();
    let mut archives = Vec::new();
    for c in changes {
        let doc_key = document_key(&c.collection, &c.id);
        let new_crc = match &c.new {
            Some(doc) => match stored_bytes(doc_key.as_slice()) {
                Some(stored) => {
                    bytes += stored.len() as u64;
                    crc(stored)
                }
                None => {
                    let stored = format::encode(&**doc)?;
                    bytes += stored.len() as u64;
                    crc(&stored)
                }
            },
            None => 0,
        };
        if let Some(old) = &c.old {
            let stored = format::encode(&**old)?;
            bytes += stored.len() as u64;
            let archive = match read_at.get(doc_key.as_slice()) {
                Some(revision) => {
                    let mut a = Vec::with_capacity(9 + stored.len());
                    a.push(ARCHIVE_WITH_REVISION);
                    a.extend_from_slice(&revision.to_be_bytes());
                    a.extend_from_slice(&stored);
                    a
                }
                None => stored,
            };
            archives.push((archive_prefix(&doc_key), archive));
        }
        let change = CompactChange { id: c.id.clone(), kind: c.kind, new_crc: new_crc.to_be_bytes() };
        match runs.last_mut() {
            Some(run) if run.collection == c.collection => run.changes.push(change),
            _ => runs.push(Run { collection: c.collection.clone(), changes: vec![change] }),
        }
    }
    let (entry, budget_bytes) = encode_entry(transaction_id, at, bytes, &runs)?;
    for (prefix, stored) in archives {
        batch.put_at_revision(prefix, stored);
    }
    Ok(Encoded { budget_bytes, entry })
}

/// Bytes of `value` as a postcard varint (LEB128: 7 bits a byte).
fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// The compact header of `runs` whose `bytes` counts the documents
/// (`documents`) and the entry itself, encoded once: postcard writes a
/// struct as its fields in order, so the entry is
/// `[COMPACT_HEADER_RECORD] ++ (transaction_id, at) ++ varint(bytes) ++ runs`,
/// and its length is known before `bytes` is written. Returns the entry and
/// its `bytes`.
fn encode_entry(transaction_id: u64, at: Timestamp, documents: u64, runs: &[Run]) -> Result<(Vec<u8>, u64)> {
    let tail = format::encode(runs)?;
    let mut entry = Vec::with_capacity(32 + tail.len());
    format::encode_into(&(transaction_id, at), &mut entry)?;
    // The entry without its `bytes` field (the tail's version byte dropped).
    let fixed = (entry.len() + tail.len() - 1) as u64;
    let mut width = varint_len(documents + fixed + 1);
    // The field's own width is part of the length it counts; a wider
    // total can need one more byte, once.
    while varint_len(documents + fixed + width as u64) != width {
        width = varint_len(documents + fixed + width as u64);
    }
    let total = documents + fixed + width as u64;
    // postcard's varint: 7 bits a byte, least significant first, the high
    // bit set on every byte but the last.
    let mut rest = total;
    while rest >= 0x80 {
        entry.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    entry.push(rest as u8);
    entry.extend_from_slice(&tail[1..]);
    entry[0] = COMPACT_HEADER_RECORD;
    Ok((entry, total))
}

/// A stored entry's changes with their documents, read at `snapshot`.
/// `docs` lends decoded documents from the hot cache.
pub(crate) fn changes_of(
    stored: Stored,
    sequence: Revision,
    snapshot: &Snapshot,
    docs: &aurora_storage::DocumentStore,
) -> Result<Vec<Change>> {
    match stored {
        Stored::Full(record) => Ok(record
            .changes
            .into_iter()
            .map(|c| Change {
                collection: c.collection,
                id: c.id,
                kind: c.kind,
                old: c.old.map(Arc::new),
                new: c.new.map(Arc::new),
            })
            .collect()),
        Stored::Header(header) => header
            .changes
            .into_iter()
            .map(|c| {
                let doc_key = document_key(&c.collection, &c.id);
                let old = match c.kind {
                    ChangeKind::Insert => None,
                    _ => Some(archived(snapshot, &doc_key, sequence, &c)?),
                };
                let new = match c.kind {
                    ChangeKind::Delete => None,
                    _ => Some(version_after(snapshot, docs, &doc_key, sequence, &c)?),
                };
                Ok(Change { collection: c.collection, id: c.id, kind: c.kind, old, new })
            })
            .collect(),
    }
}

/// The version an entry wrote was replaced by a commit the feed did not record.
fn not_kept(sequence: Revision, c: &HeaderChange) -> TxnError {
    TxnError::HistoryNotKept { sequence, collection: c.collection.clone(), id: c.id.to_string() }
}

fn lost(doc_key: &[u8], sequence: Revision, c: &HeaderChange, what: &str) -> TxnError {
    StorageError::Corrupt {
        key: printable_key(doc_key),
        reason: format!("feed entry {sequence}: the {what} of {}/{} is missing or damaged", c.collection, c.id),
    }
    .into()
}

/// The version of a document that commit `sequence` replaced.
fn archived(snapshot: &Snapshot, doc_key: &[u8], sequence: Revision, c: &HeaderChange) -> Result<Arc<Document>> {
    let key = archive_key(doc_key, sequence);
    let raw = snapshot.get(&key)?.ok_or_else(|| lost(doc_key, sequence, c, "old version"))?;
    let doc = archived_document(&key, &raw)?;
    if doc.id != c.id {
        return Err(lost(doc_key, sequence, c, "old version"));
    }
    Ok(Arc::new(doc))
}

/// The version of a document that commit `sequence` wrote: the one the next
/// feed change of it archived, else the stored one; checked by its CRC. A
/// version that does not match and was written after `sequence`, or no
/// version at all, is [`TxnError::HistoryNotKept`] (replaced while the
/// feed was off); any other mismatch is `Corrupt`.
fn version_after(
    snapshot: &Snapshot,
    docs: &aurora_storage::DocumentStore,
    doc_key: &[u8],
    sequence: Revision,
    c: &HeaderChange,
) -> Result<Arc<Document>> {
    // The stored version, when this commit wrote it, is the one: a later
    // feed change of the document would have rewritten it (at its own,
    // higher revision) in the commit that archived it. That spares the
    // archive range read below for every document not changed since — a
    // third of a feed read's instructions (callgrind, inserts).
    // (key, the version's revision if known, its bytes, whether it is the
    // stored document — which the hot cache may hold decoded).
    let (key, rev, raw, stored) = match snapshot.get_versioned(doc_key)? {
        Some((rev, raw)) if rev == sequence => (doc_key.to_vec(), Some(rev), raw, true),
        stored_now => {
            let prefix = archive_prefix(doc_key);
            let start = revision_key(&prefix, sequence.saturating_add(1));
            let end = revision_key(&prefix, Revision::MAX);
            let mut later = snapshot.iter(Bound::Included(&start), Bound::Included(&end))?;
            // Keys of another document whose key extends this one sort
            // inside the range too; an archive of this document is
            // exactly prefix + 8 bytes.
            let archived = later.find_map(|item| match item {
                Ok((key, _, raw)) if key.len() == prefix.len() + 8 => Some(Ok((key, raw))),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            });
            match (archived, stored_now) {
                (Some(found), _) => {
                    let (key, raw) = found?;
                    let (rev, doc) = split_archive(&key, &raw)?;
                    let doc = doc.to_vec();
                    (key, rev, doc, false)
                }
                (None, Some((rev, raw))) => (doc_key.to_vec(), Some(rev), raw, true),
                // Deleted, and the delete archived nothing: the feed did not record it.
                (None, None) => return Err(not_kept(sequence, c)),
            }
        }
    };
    if crc(&raw) != c.new_crc {
        return Err(match rev {
            Some(rev) if rev > sequence => not_kept(sequence, c),
            _ => lost(doc_key, sequence, c, "new version"),
        });
    }
    if let Some(doc) = rev.filter(|_| stored).and_then(|rev| docs.cached_at(&key, rev)) {
        return Ok(doc);
    }
    Ok(Arc::new(format::decode::<Document>(&key, &raw)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(n: usize) -> Vec<Run> {
        let change = |i: usize| CompactChange {
            id: DocId::text(&format!("u{i:010}")).unwrap_or_default(),
            kind: ChangeKind::Insert,
            new_crc: (i as u32).to_be_bytes(),
        };
        vec![Run { collection: "users".into(), changes: (0..n).map(change).collect() }]
    }

    #[test]
    fn an_entry_encoded_once_is_the_compact_header_counting_its_own_length() {
        let at = Timestamp::from_micros(1_700_000_000_000_000);
        // Document bytes around each varint width change (127/128,
        // 16 383/16 384), and entries of several lengths.
        for documents in [0u64, 1, 100, 120, 127, 128, 16_300, 16_383, 16_384, 2_097_100, u64::from(u32::MAX)] {
            for n in [0, 1, 3, 100] {
                let (entry, bytes) = encode_entry(42, at, documents, &runs(n)).unwrap();
                assert_eq!(bytes, documents + entry.len() as u64, "the budget counts the entry exactly");
                let whole = CompactHeader { transaction_id: 42, at, bytes, runs: runs(n) };
                let mut expected = format::encode(&whole).unwrap();
                expected[0] = COMPACT_HEADER_RECORD;
                assert_eq!(entry, expected, "byte for byte the struct's encoding ({documents}, {n})");
                let Stored::Header(h) = decode(b"f", &entry).unwrap() else { panic!("a header") };
                assert_eq!((h.transaction_id, h.bytes, h.changes.len()), (42, bytes, n));
            }
        }
    }

    #[test]
    fn varint_lengths_match_postcard() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, 1 << 35, u64::MAX] {
            assert_eq!(varint_len(v), format::encode(&v).unwrap().len() - 1, "{v}");
        }
    }
}
