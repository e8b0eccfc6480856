//! Checking the change feed, read-only (for `aurora check`): every entry
//! whole and decodable, inside the retained window, each change coherent
//! (with its archived old version), no archive left without its entry, and
//! the last change the feed records for a document equal to the document
//! as stored.

use crate::database::Database;
use crate::error::Result;
use crate::feed::{sequence_of, FEED};
use crate::feed_record::{self, archive_key, Stored, ARCHIVE};
use crate::sink::ChangeKind;
use aurora_core::{DocId, Document};
use aurora_storage::{document_key, format, printable_key, Revision};
use std::collections::{HashMap, HashSet};

/// Problems kept in [`FeedCheck::problems`]; the rest are only counted.
pub const MAX_REPORTED_FEED_PROBLEMS: usize = 100;

/// What [`Database::verify_feed`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedCheck {
    /// Entries (committed transactions) read.
    pub entries: u64,
    /// Changes in them.
    pub changes: u64,
    /// The highest trimmed sequence ([`Database::feed_floor`]).
    pub floor: Revision,
    /// The newest commit's sequence ([`Database::feed_head`]).
    pub head: Revision,
    /// Documents whose last recorded change was compared with the stored document.
    pub documents_compared: u64,
    /// What is wrong, the first [`MAX_REPORTED_FEED_PROBLEMS`], each naming
    /// the entry's sequence (and key) or the document.
    pub problems: Vec<String>,
    /// All problems found.
    pub problem_count: u64,
}

impl FeedCheck {
    fn found(&mut self, problem: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_REPORTED_FEED_PROBLEMS {
            self.problems.push(problem);
        }
    }
}

/// The last change of one document the feed holds: its sequence and the
/// CRC-32 of the new version's encoding (`None`: deleted).
type Last = (Revision, Option<u32>);

fn digest(doc: &Document) -> Result<u32> {
    Ok(feed_record::crc(&format::encode(doc)?))
}

impl Database {
    /// Reads the whole retained change feed and checks it, changing
    /// nothing:
    ///
    /// - each entry's parts are numbered 0, 1, … with none missing, and
    ///   the joined entry decodes;
    /// - its sequence is above the trimmed floor and at most the head;
    /// - each change is coherent (an insert has a new document and no old
    ///   one, a delete the reverse, an update both; the documents carry the
    ///   change's id) — for entries stored as headers, each update's and
    ///   delete's archived old version is present and decodes;
    /// - every archived old version belongs to a retained entry;
    /// - for each document of an existing collection, the feed's last
    ///   change equals the stored document (deleted ↔ absent). Every
    ///   transaction writes its feed entry in its own commit, so a
    ///   difference means a lost or altered entry or document — unless the
    ///   database was written with the feed turned off
    ///   (`change_feed_retention = 0`), which the report cannot tell.
    ///
    /// `progress` is called with the entries read so far, every 256.
    /// Memory: one entry at a time, plus a hash and sequence per document
    /// changed in the retained feed.
    ///
    /// # Errors
    /// Storage errors reading the feed or the documents (a feed entry that
    /// does not decode is a problem, not an error).
    ///
    /// ```
    /// use aurora_core::doc;
    /// use aurora_index::{Collections, IndexConfig, Schema};
    /// use aurora_storage::{DocumentStore, DocumentStoreConfig, StoreConfig};
    /// use aurora_txn::{Database, Isolation, NoSink};
    /// use std::sync::Arc;
    /// let tmp = tempfile::tempdir().unwrap();
    /// let docs = DocumentStore::open(tmp.path(), StoreConfig::default(), DocumentStoreConfig::default()).unwrap();
    /// let collections = Collections::open(docs, IndexConfig::default()).unwrap();
    /// let db = Database::with_options(collections, Arc::new(NoSink), Isolation::Snapshot, true);
    /// db.collections().create_collection("t", Schema::new()).unwrap();
    /// db.transaction(|tx| tx.insert("t", doc! { "n": 1 })).unwrap();
    /// let found = db.verify_feed(|_| {}).unwrap();
    /// assert_eq!((found.entries, found.changes, found.documents_compared, found.problem_count), (1, 1, 1, 0));
    /// ```
    pub fn verify_feed(&self, mut progress: impl FnMut(u64)) -> Result<FeedCheck> {
        let store = self.collections().documents().store();
        let mut out = FeedCheck { floor: self.feed_floor()?, head: self.feed_head(), ..FeedCheck::default() };
        let mut last: HashMap<(String, DocId), Last> = HashMap::new();
        // The entry being joined: sequence, first key, next part, bytes.
        let mut current: Option<(Revision, Vec<u8>, u32, Vec<u8>)> = None;
        // The archived old versions the entries name.
        let mut archives: HashSet<Vec<u8>> = HashSet::new();
        let mut finish = |entry: Option<(Revision, Vec<u8>, u32, Vec<u8>)>,
                          out: &mut FeedCheck,
                          last: &mut HashMap<(String, DocId), Last>|
         -> Result<()> {
            let Some((sequence, key, _, bytes)) = entry else { return Ok(()) };
            out.entries += 1;
            if out.entries.is_multiple_of(256) {
                progress(out.entries);
            }
            if sequence <= out.floor {
                out.found(format!("entry {sequence} is at or below the trimmed floor {}", out.floor));
            }
            if sequence > out.head {
                out.found(format!("entry {sequence} is beyond the newest commit {}", out.head));
            }
            let stored = match feed_record::decode(&key, &bytes) {
                Ok(r) => r,
                Err(e) => {
                    out.found(format!("entry {sequence} does not decode: {e}"));
                    return Ok(());
                }
            };
            match stored {
                Stored::Full(record) => {
                    for c in record.changes {
                        out.changes += 1;
                        let coherent = match c.kind {
                            ChangeKind::Insert => c.old.is_none() && c.new.is_some(),
                            ChangeKind::Update => c.old.is_some() && c.new.is_some(),
                            ChangeKind::Delete => c.old.is_some() && c.new.is_none(),
                        };
                        let ids_match = [&c.old, &c.new].into_iter().flatten().all(|d| d.id == c.id);
                        if !coherent || !ids_match {
                            out.found(format!(
                                "entry {sequence}: the {:?} of {}/{} does not hold the documents it should",
                                c.kind, c.collection, c.id
                            ));
                        }
                        let after = c.new.as_ref().map(digest).transpose()?;
                        last.insert((c.collection, c.id), (sequence, after));
                    }
                }
                Stored::Header(header) => {
                    for c in header.changes {
                        out.changes += 1;
                        if c.kind != ChangeKind::Insert {
                            let archive = archive_key(&document_key(&c.collection, &c.id), sequence);
                            let held = match store.get(&archive)? {
                                Some(raw) => feed_record::archived_document(&archive, &raw).is_ok_and(|d| d.id == c.id),
                                None => false,
                            };
                            if !held {
                                out.found(format!(
                                    "entry {sequence}: the {:?} of {}/{} does not hold the documents it should \
                                     (its old version is missing or damaged)",
                                    c.kind, c.collection, c.id
                                ));
                            }
                            archives.insert(archive);
                        }
                        let after = (c.kind != ChangeKind::Delete).then_some(c.new_crc);
                        last.insert((c.collection, c.id), (sequence, after));
                    }
                }
            }
            Ok(())
        };
        for item in store.scan_prefix(FEED)? {
            let (key, value) = item?;
            let Some(sequence) = sequence_of(&key) else {
                out.found(format!("key {} is not a feed key", printable_key(&key)));
                continue;
            };
            let part = match key.len() - FEED.len() {
                8 => 0,
                12 => key[FEED.len() + 8..].try_into().map_or(0, u32::from_be_bytes),
                _ => {
                    out.found(format!("key {} is not a feed key", printable_key(&key)));
                    continue;
                }
            };
            match &mut current {
                Some((seq, _, next, bytes)) if *seq == sequence => {
                    if part != *next {
                        out.found(format!("entry {sequence}: part {next} is missing (found part {part})"));
                    }
                    *next = part + 1;
                    bytes.extend_from_slice(&value);
                }
                _ => {
                    if part != 0 {
                        out.found(format!("entry {sequence}: part 0 is missing (found part {part})"));
                    }
                    let done = current.replace((sequence, key, part + 1, value));
                    finish(done, &mut out, &mut last)?;
                }
            }
        }
        finish(current.take(), &mut out, &mut last)?;
        for item in store.scan_prefix(ARCHIVE)? {
            let (key, _) = item?;
            if !archives.contains(&key) {
                out.found(format!("archived version {} belongs to no retained feed entry", printable_key(&key)));
            }
        }
        let collections = self.collections();
        let existing = collections.list_collections();
        let mut compared: Vec<_> = last.into_iter().filter(|((c, _), _)| existing.binary_search(c).is_ok()).collect();
        compared.sort_by_key(|(_, (sequence, _))| *sequence);
        for ((collection, id), (sequence, after)) in compared {
            out.documents_compared += 1;
            let stored = collections.documents().get(&collection, &id)?;
            let stored = stored.as_deref().map(digest).transpose()?;
            if stored != after {
                let says = if after.is_some() { "a version" } else { "a delete" };
                let is = if stored.is_some() { "a different version is stored" } else { "no document is stored" };
                out.found(format!(
                    "{collection}/{id}: the feed's last change (entry {sequence}) records {says}, but {is}"
                ));
            }
        }
        Ok(out)
    }
}
