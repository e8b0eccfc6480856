//! The change feed: every committed transaction's changes, persisted in the
//! same atomic batch as the transaction under `"f" ++ sequence` (the
//! commit's revision, big-endian), so the feed survives restarts and holds
//! exactly the committed transactions, in commit order. Old entries are
//! trimmed by count and/or age; the highest trimmed sequence is kept under
//! `"F"` so a reader asking for trimmed history gets `FeedTruncated`.

use crate::database::Database;
use crate::error::{Result, TxnError};
use crate::sink::{Change, ChangeKind, Committed};
use aurora_core::{DocId, Document, Timestamp};
use aurora_storage::{format, prefix_successor, revision_key, Batch, Revision};
use serde::{Deserialize, Serialize};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

/// Prefix of feed entries.
pub(crate) const FEED: &[u8] = b"f";
/// Key of the highest trimmed sequence.
const FLOOR: &[u8] = b"F";

#[derive(Serialize)]
struct RecordRef<'a> {
    transaction_id: u64,
    at: Timestamp,
    changes: Vec<ChangeRef<'a>>,
}

#[derive(Serialize)]
struct ChangeRef<'a> {
    collection: &'a str,
    id: &'a DocId,
    kind: ChangeKind,
    old: Option<&'a Document>,
    new: Option<&'a Document>,
}

#[derive(Deserialize)]
struct Record {
    transaction_id: u64,
    at: Timestamp,
    changes: Vec<StoredChange>,
}

#[derive(Deserialize)]
struct StoredChange {
    collection: String,
    id: DocId,
    kind: ChangeKind,
    old: Option<Document>,
    new: Option<Document>,
}

/// The encoded feed entry of one transaction.
pub(crate) fn encode(transaction_id: u64, changes: &[Change]) -> Result<Vec<u8>> {
    let record = RecordRef {
        transaction_id,
        at: Timestamp::now(),
        changes: changes
            .iter()
            .map(|c| ChangeRef {
                collection: &c.collection,
                id: &c.id,
                kind: c.kind,
                old: c.old.as_deref(),
                new: c.new.as_deref(),
            })
            .collect(),
    };
    Ok(format::encode(&record)?)
}

fn sequence_of(key: &[u8]) -> Option<Revision> {
    key.get(FEED.len()..).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
}

impl Database {
    /// The highest sequence trimmed from the feed (0 if nothing was).
    pub fn feed_floor(&self) -> Result<Revision> {
        let raw = self.collections().documents().store().get(FLOOR)?;
        Ok(raw.and_then(|r| r.as_slice().try_into().ok()).map_or(0, u64::from_be_bytes))
    }

    /// Every retained committed transaction with a sequence after `after`,
    /// in commit order. Asking for trimmed history is
    /// [`TxnError::FeedTruncated`]: re-read the current state instead.
    pub fn changes_since(&self, after: Revision) -> Result<Vec<Committed>> {
        let floor = self.feed_floor()?;
        if after < floor {
            return Err(TxnError::FeedTruncated { requested: after, oldest: floor });
        }
        let start = revision_key(FEED, after.saturating_add(1));
        let end = prefix_successor(FEED);
        let store = self.collections().documents().store();
        let mut out = Vec::new();
        for item in store.range(Bound::Included(&start), end.as_deref().map_or(Bound::Unbounded, Bound::Excluded))? {
            let (key, value) = item?;
            let Some(sequence) = sequence_of(&key) else { continue };
            let record: Record = format::decode(&key, &value)?;
            out.push(Committed {
                sequence,
                transaction_id: record.transaction_id,
                changes: record
                    .changes
                    .into_iter()
                    .map(|c| Change {
                        collection: c.collection,
                        id: c.id,
                        kind: c.kind,
                        old: c.old.map(Arc::new),
                        new: c.new.map(Arc::new),
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Drops feed entries beyond the newest `keep` or older than `max_age`;
    /// returns how many were dropped.
    pub fn trim_feed(&self, keep: usize, max_age: Option<Duration>) -> Result<usize> {
        let store = self.collections().documents().store();
        let entries: Vec<(Vec<u8>, Vec<u8>)> = store.scan_prefix(FEED)?.collect::<Result<_, _>>()?;
        let excess = entries.len().saturating_sub(keep);
        let cutoff =
            max_age.map(|age| Timestamp::now().as_micros() - i64::try_from(age.as_micros()).unwrap_or(i64::MAX));
        let mut doomed = 0;
        for (i, (key, value)) in entries.iter().enumerate() {
            let too_old = match cutoff {
                Some(c) => format::decode::<Record>(key, value)?.at.as_micros() < c,
                None => false,
            };
            if i < excess || too_old {
                doomed = i + 1;
            } else {
                break;
            }
        }
        if doomed == 0 {
            return Ok(0);
        }
        for chunk in entries[..doomed].chunks(1000) {
            let mut batch = Batch::new();
            for (key, _) in chunk {
                batch.delete(key.clone());
            }
            // The floor moves with each batch, so a crash between batches
            // never claims entries that are still present were trimmed.
            let floor = chunk.last().and_then(|(k, _)| sequence_of(k)).unwrap_or(0);
            batch.put(FLOOR.to_vec(), floor.to_be_bytes().to_vec());
            store.commit(batch)?.into_result()?;
        }
        Ok(doomed)
    }
}
