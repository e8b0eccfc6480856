//! [`FilteredScan`]: a collection's documents at a snapshot that match a
//! filter, found by testing the filter on each stored document's bytes —
//! decoding only the top-level fields the filter reads
//! ([`FieldReader`]) — and decoding (or sharing from the hot cache) only
//! the documents that match.
//!
//! The answer is the one testing every decoded document gives: a filter
//! reads nothing but the paths it names ([`Filter::fields`]), and those
//! fields come out of the same decoder. A damaged document is a typed
//! error, as decoding it would be (a filter that reads no field, such as
//! `All`, reads nothing of a document before deciding).

use crate::error::{QueryError, Result};
use crate::interrupt::{Stop, Ticker};
use crate::matcher::Matcher;
use aurora_core::filter::Filter;
use aurora_core::{DocId, Document};
use aurora_storage::skim::FieldReader;
use aurora_storage::{collection_prefix, format, DocumentStore, SnapshotIter};
use aurora_txn::Transaction;
use std::sync::Arc;

/// The matching documents of one collection at the transaction's
/// snapshot, in id order, lazily (without the transaction's own writes:
/// callers check [`Transaction::written_ids`] first). Owns what it reads,
/// so it may outlive the transaction.
pub(crate) struct FilteredScan {
    entries: SnapshotIter,
    documents: DocumentStore,
    reader: FieldReader,
    matcher: Matcher,
    examined: u64,
    ticker: Ticker,
    /// Where the id starts in a key, when the filter reads `_id`.
    id_at: Option<usize>,
}

impl FilteredScan {
    /// Starts a scan of `collection` (already checked to exist) for the
    /// documents `filter` matches; `matcher` is the filter prepared. The
    /// scan ends with an error once `stop` says so (it is checked while
    /// documents that do not match are skipped, too).
    pub(crate) fn new(
        tx: &Transaction,
        collection: &str,
        filter: &Filter,
        matcher: Matcher,
        stop: &Stop,
    ) -> Result<Self> {
        let documents = tx.database().collections().documents().clone();
        let prefix = collection_prefix(collection);
        // A collection that is scanned is worth keeping in memory (within
        // the store's range cache): its scans then skip the cold store's
        // iterator.
        documents.store().keep_resident(&prefix);
        Ok(Self {
            entries: tx.snapshot().iter_prefix(&prefix)?,
            documents,
            reader: FieldReader::new(heads(filter).filter(|h| *h != aurora_core::json::ID_FIELD)),
            matcher,
            examined: 0,
            ticker: stop.ticker(),
            id_at: filter.reads_id().then(|| collection_prefix(collection).len()),
        })
    }

    /// Documents read so far (matching or not).
    pub(crate) fn examined(&self) -> u64 {
        self.examined
    }
}

/// The top-level fields `filter` reads: the first part of each path.
pub(crate) fn heads(filter: &Filter) -> impl Iterator<Item = &str> {
    filter.fields().into_iter().map(|path| path.split_once('.').map_or(path, |(head, _)| head))
}

impl Iterator for FilteredScan {
    type Item = Result<Arc<Document>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (key, revision, stored) = match self.entries.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e.into())),
            };
            self.examined += 1;
            if let Err(e) = self.ticker.tick() {
                return Some(Err(e));
            }
            // A filter that reads no field (`All`) needs nothing read.
            if !self.reader.names().is_empty() {
                if let Err(e) = self.reader.read(&key, &stored) {
                    return Some(Err(e.into()));
                }
            }
            let reader = &self.reader;
            let matched = match self.id_at {
                // The id comes from the key (a filter on `_id`).
                Some(at) => {
                    let id = match key.get(at..).map(DocId::from_key_bytes) {
                        Some(Ok(id)) => id.to_value(),
                        Some(Err(e)) => return Some(Err(QueryError::Core(e))),
                        None => {
                            return Some(Err(QueryError::Core(aurora_core::CoreError::InvalidDocId {
                                id: String::new(),
                                reason: "a document key without an id",
                            })))
                        }
                    };
                    self.matcher.matches_by(&|path: &str| {
                        if path == aurora_core::json::ID_FIELD {
                            Some(&id)
                        } else {
                            reader.get_path(path)
                        }
                    })
                }
                None => self.matcher.matches_by(&|path: &str| reader.get_path(path)),
            };
            if !matched {
                continue;
            }
            // The hot cache's copy when it holds this version: no decoding.
            return Some(match self.documents.cached_at(&key, revision) {
                Some(doc) => Ok(doc),
                None => format::decode::<Document>(&key, &stored).map(Arc::new).map_err(Into::into),
            });
        }
    }
}

#[cfg(test)]
mod tests;
