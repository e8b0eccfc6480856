//! The change feed: every committed transaction's changes, persisted in the
//! same atomic batch as the transaction under `"f" ++ sequence ++ part`
//! (the commit's revision and a part number, big-endian), so the feed
//! survives restarts and holds exactly the committed transactions, in
//! commit order. An entry is a small header naming each change (see
//! [`crate::feed_record`]): documents are not copied — an update's or
//! delete's old version is archived under `"v"`, a new version is read
//! from the store. An entry is split into parts of at most [`FEED_PART_BYTES`]:
//! the cold store (sled) rewrites a whole leaf — and spills large values
//! to blob files — on every append. Old entries are trimmed by count, age
//! and/or bytes, with the archives they own; the highest trimmed sequence
//! is kept under `"F"` so a reader asking for trimmed history gets
//! `FeedTruncated`.

use crate::database::Database;
use crate::error::{Result, TxnError};
use crate::feed_record::{self, Stored};
use crate::sink::{Change, Committed};
use aurora_core::Timestamp;
use aurora_storage::{prefix_successor, revision_key, revision_part_key, Batch, Revision};
use std::collections::VecDeque;
use std::ops::Bound;
use std::time::Duration;

/// Prefix of feed entries.
pub(crate) const FEED: &[u8] = b"f";
/// Largest part of a feed entry, in bytes: an entry (a header of about
/// 23 bytes per change) is stored in parts of at most this size, so a
/// large transaction never becomes one large value (sled 0.34 moves values
/// past 128 KiB to a file each). Chosen by measurement (issue 17, 1 000 000
/// small documents inserted in transactions of 1 000, `footprint` example,
/// load 5–11): the folder after a clean close was 365–411 MiB with 512-byte
/// parts, 364–940 MiB with 4 KiB parts (six runs), 1 315 MiB with 32 KiB
/// parts; a bare sled fed the same keys one transaction at a time
/// (documents, then the entry's parts at the end of the key space) showed
/// the same band: 340 MiB with 512 B or 1 KiB parts, 619–934 MiB with 2–8
/// KiB parts. Parts this small keep sled's leaves at the feed's end small,
/// which is what sled's consolidations rewrite.
pub const FEED_PART_BYTES: usize = 512;
/// Key of the highest trimmed sequence.
const FLOOR: &[u8] = b"F";

/// What the [`FeedIndex`] keeps of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IndexEntry {
    sequence: Revision,
    /// When it was committed, µs since the epoch.
    at: i64,
    /// The bytes it counts against a byte budget (the documents it
    /// delivers and its header).
    bytes: u64,
    /// Whether it changes a user collection (not only system collections
    /// such as `_jobs`): what counts against [`FeedRetention::entries`].
    user: bool,
    /// How it is deleted when trimmed (see [`Trim`]).
    trim: Trim,
}

/// What trimming an entry deletes, known when it is written (or loaded),
/// so that a trim reads only the entries that own archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Trim {
    /// Its parts `"f" ++ sequence ++ 0..n`, nothing else (it archives no
    /// version: inserts only): deleted without reading it.
    Parts(u32),
    /// Read it to learn what to delete: it owns archives (updates,
    /// deletes), or its keys are not numbered parts (an older form).
    Read,
}

/// What [`append`] tells the [`FeedIndex`] about an entry (its sequence
/// is set at commit).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Appended {
    /// When it was committed, µs since the epoch.
    at: i64,
    /// The bytes it counts against a byte budget.
    bytes: u64,
    /// Whether it changes a user collection.
    user: bool,
    /// How it is trimmed.
    trim: Trim,
}

/// Whether a collection is a system collection (`_jobs`, …).
fn is_system(collection: &str) -> bool {
    collection.starts_with('_')
}

/// Adds one transaction's feed entry to `batch`, in parts, with the
/// archives of the versions its updates and deletes replace; returns what
/// the [`FeedIndex`] records of it (its sequence is set at commit).
pub(crate) fn append(batch: &mut Batch, transaction_id: u64, changes: &[Change]) -> Result<Appended> {
    let at = Timestamp::now();
    let encoded = feed_record::encode(batch, transaction_id, at, changes)?;
    let mut parts = 0u32;
    for (part, chunk) in encoded.entry.chunks(FEED_PART_BYTES).enumerate() {
        parts = u32::try_from(part + 1).unwrap_or(u32::MAX);
        batch.put_at_revision_part(FEED.to_vec(), u32::try_from(part).unwrap_or(u32::MAX), chunk.to_vec());
    }
    let user = changes.iter().any(|c| !is_system(&c.collection));
    // What `feed_record::encode` archived (an old version), or what a
    // trim that reads the entry would delete (`Stored::archive_keys`).
    let archives = changes.iter().any(|c| c.old.is_some() || c.kind != crate::sink::ChangeKind::Insert);
    let trim = if archives || parts == 0 { Trim::Read } else { Trim::Parts(parts) };
    Ok(Appended { at: at.as_micros(), bytes: encoded.budget_bytes, user, trim })
}

/// How much history [`Database::trim_feed_to`] keeps: an entry goes when
/// any limit is exceeded (oldest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedRetention {
    /// Most entries kept that change a user collection (committed user
    /// transactions). Entries that change only system collections (the job
    /// queue's bookkeeping: three per job) do not count, so they never
    /// crowd out users' changes; the byte and age limits bound them.
    pub entries: usize,
    /// Entries older than this go.
    pub max_age: Option<Duration>,
    /// Most encoded bytes kept, counted as the documents the entries
    /// deliver (old and new) plus their headers — what a reader receives;
    /// one bulk transaction can be megabytes. On disk an entry costs its
    /// header and the old versions of its updates and deletes.
    pub max_bytes: Option<u64>,
}

/// The sequence and time (µs) of every retained feed entry, in order, kept
/// in memory so that trimming decides from it instead of reading the whole
/// feed. Loaded from the store on first use; commits made meanwhile are
/// remembered and merged in.
#[derive(Debug, Default)]
pub(crate) struct FeedIndex {
    /// `None` until loaded.
    entries: Option<VecDeque<IndexEntry>>,
    /// Entries committed while not yet loaded.
    pending: Vec<IndexEntry>,
    /// Encoded bytes of `entries`.
    bytes: u64,
}

impl FeedIndex {
    /// Records a committed entry (called in commit order).
    pub(crate) fn appended(&mut self, sequence: Revision, Appended { at, bytes, user, trim }: Appended) {
        let entry = IndexEntry { sequence, at, bytes, user, trim };
        match &mut self.entries {
            Some(entries) if entries.back().is_none_or(|b| b.sequence < sequence) => {
                entries.push_back(entry);
                self.bytes += bytes;
            }
            Some(_) => {}
            None => self.pending.push(entry),
        }
    }

    /// Installs what a load read from the store, merged with what was
    /// committed meanwhile.
    fn install(&mut self, mut loaded: Vec<IndexEntry>) {
        if self.entries.is_some() {
            return;
        }
        loaded.append(&mut self.pending);
        loaded.sort_unstable();
        loaded.dedup_by_key(|e| e.sequence);
        self.bytes = loaded.iter().map(|e| e.bytes).sum();
        self.entries = Some(loaded.into());
    }

    /// The newest of the oldest entries `retention` drops (at `now`).
    fn doomed(&self, retention: &FeedRetention, now: Timestamp) -> Option<Revision> {
        let entries = self.entries.as_ref()?;
        let cutoff = retention.max_age.map(|age| now.saturating_sub(age).as_micros());
        // Keep the newest `entries` user entries (and the system-only ones
        // among and after them): drop the prefix up to the one before.
        let mut n = match retention.entries {
            0 => entries.len(),
            keep => entries.iter().enumerate().rev().filter(|(_, e)| e.user).nth(keep).map_or(0, |(i, _)| i + 1),
        };
        let mut left: u64 = entries.iter().skip(n).map(|e| e.bytes).sum();
        while let Some(e) = entries.get(n) {
            let too_old = cutoff.is_some_and(|c| e.at < c);
            let too_big = retention.max_bytes.is_some_and(|max| left > max);
            if !(too_old || too_big) {
                break;
            }
            left -= e.bytes;
            n += 1;
        }
        n.checked_sub(1).map(|last| entries[last].sequence)
    }

    /// The entries up to `sequence`, oldest first.
    fn up_to(&self, sequence: Revision) -> Vec<IndexEntry> {
        let entries = self.entries.iter().flatten();
        entries.take_while(|e| e.sequence <= sequence).copied().collect()
    }

    /// Forgets entries up to `sequence` (trimmed).
    fn trimmed(&mut self, sequence: Revision) {
        if let Some(entries) = self.entries.as_mut() {
            while let Some(e) = entries.front().filter(|e| e.sequence <= sequence).copied() {
                entries.pop_front();
                self.bytes -= e.bytes;
            }
        }
    }
}

/// The sequence of a feed key (`"f" ++ sequence`, or with a part number after it).
pub(crate) fn sequence_of(key: &[u8]) -> Option<Revision> {
    key.get(FEED.len()..FEED.len() + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
}

fn decode_floor(raw: Option<Vec<u8>>) -> Revision {
    raw.and_then(|r| r.as_slice().try_into().ok()).map_or(0, u64::from_be_bytes)
}

/// The highest trimmed sequence as `snapshot` sees it.
fn floor_at(snapshot: &aurora_storage::Snapshot) -> Result<Revision> {
    Ok(decode_floor(snapshot.get(FLOOR)?))
}

/// One feed entry with its parts joined.
struct Entry {
    sequence: Revision,
    /// The keys of its parts (to delete it).
    keys: Vec<Vec<u8>>,
    /// The encoded record.
    bytes: Vec<u8>,
}

/// Feed entries in key order, their parts joined.
fn joined(items: impl Iterator<Item = aurora_storage::Result<(Vec<u8>, Vec<u8>)>>) -> Result<Vec<Entry>> {
    let mut out: Vec<Entry> = Vec::new();
    for item in items {
        let (key, value) = item?;
        let Some(sequence) = sequence_of(&key) else { continue };
        match out.last_mut() {
            Some(e) if e.sequence == sequence => {
                e.keys.push(key);
                e.bytes.extend_from_slice(&value);
            }
            _ => out.push(Entry { sequence, keys: vec![key], bytes: value }),
        }
    }
    Ok(out)
}

impl Database {
    /// The highest sequence trimmed from the feed (0 if nothing was).
    pub fn feed_floor(&self) -> Result<Revision> {
        let raw = self.collections().documents().store().get(FLOOR)?;
        Ok(decode_floor(raw))
    }

    /// The current position of the feed: the sequence of the newest
    /// commit. Reading or listening from it yields exactly the commits made
    /// after this call.
    pub fn feed_head(&self) -> Revision {
        self.collections().documents().store().revision()
    }

    /// Every retained committed transaction with a sequence after `after`,
    /// in commit order. Asking for trimmed history is
    /// [`TxnError::FeedTruncated`]: re-read the current state instead; a
    /// position beyond [`Database::feed_head`] is [`TxnError::FeedAhead`].
    pub fn changes_since(&self, after: Revision) -> Result<Vec<Committed>> {
        self.changes_in(after, None)
    }

    /// Like [`Database::changes_since`], only the commits with a sequence
    /// up to `through` (inclusive): a bounded read, for a consumer that
    /// pages through a long history (a network stream catching up) instead
    /// of holding it all at once. Same errors as `changes_since`.
    pub fn changes_between(&self, after: Revision, through: Revision) -> Result<Vec<Committed>> {
        self.changes_in(after, Some(through))
    }

    fn changes_in(&self, after: Revision, through: Option<Revision>) -> Result<Vec<Committed>> {
        let head = self.feed_head();
        if after > head {
            return Err(TxnError::FeedAhead { requested: after, head });
        }
        let docs = self.collections().documents();
        // One snapshot for the floor, the entries and the documents they
        // name: a commit or a trim running meanwhile is seen whole or not
        // at all.
        let snapshot = docs.store().snapshot()?;
        let floor = floor_at(&snapshot)?;
        if after < floor {
            return Err(TxnError::FeedTruncated { requested: after, oldest: floor });
        }
        if through.is_some_and(|t| t <= after) {
            return Ok(Vec::new());
        }
        let start = revision_key(FEED, after.saturating_add(1));
        let end = match through.and_then(|t| t.checked_add(1)) {
            Some(next) => Some(revision_key(FEED, next)),
            None => prefix_successor(FEED),
        };
        let mut out = Vec::new();
        let items = snapshot
            .iter(Bound::Included(&start), end.as_deref().map_or(Bound::Unbounded, Bound::Excluded))?
            .map(|item| item.map(|(k, _, v)| (k, v)));
        for Entry { sequence, keys, bytes } in joined(items)? {
            let stored = feed_record::decode(&keys[0], &bytes)?;
            let transaction_id = match &stored {
                Stored::Full(r) => r.transaction_id,
                Stored::Header(h) => h.transaction_id,
            };
            let changes = feed_record::changes_of(stored, sequence, &snapshot, docs)?;
            out.push(Committed { sequence, transaction_id, changes });
        }
        Ok(out)
    }

    /// Loads the feed index from the store if it is not loaded yet.
    fn load_feed_index(&self) -> Result<()> {
        if self.inner.feed_index.lock().entries.is_some() {
            return Ok(());
        }
        let store = self.collections().documents().store();
        let mut loaded = Vec::new();
        for e in joined(store.scan_prefix(FEED)?)? {
            let stored = feed_record::decode(&e.keys[0], &e.bytes)?;
            let user = stored.collections().iter().any(|c| !is_system(c));
            let numbered = e
                .keys
                .iter()
                .enumerate()
                .all(|(i, k)| u32::try_from(i).is_ok_and(|part| *k == revision_part_key(FEED, e.sequence, part)));
            let trim = match u32::try_from(e.keys.len()) {
                Ok(parts) if numbered && stored.archive_keys(e.sequence).is_empty() => Trim::Parts(parts),
                _ => Trim::Read,
            };
            loaded.push(IndexEntry {
                sequence: e.sequence,
                at: stored.at().as_micros(),
                bytes: stored.budget_bytes(e.bytes.len()),
                user,
                trim,
            });
        }
        self.inner.feed_index.lock().install(loaded);
        Ok(())
    }

    /// Drops feed entries beyond the newest `keep` or older than `max_age`;
    /// returns how many were dropped. See [`Database::trim_feed_to`].
    pub fn trim_feed(&self, keep: usize, max_age: Option<Duration>) -> Result<usize> {
        self.trim_feed_to(&FeedRetention { entries: keep, max_age, max_bytes: None })
    }

    /// Drops the oldest feed entries until `retention` holds; returns how
    /// many were dropped. Decides from an in-memory index (loaded from the
    /// store once, then told of every commit in commit order, so it knows
    /// every entry) and reads only the entries that own archives: an entry
    /// of inserts only is its numbered parts, deleted unread.
    pub fn trim_feed_to(&self, retention: &FeedRetention) -> Result<usize> {
        let _one_at_a_time = self.inner.feed_trim.lock();
        self.load_feed_index()?;
        let (last_doomed, doomed) = {
            let index = self.inner.feed_index.lock();
            let Some(last) = index.doomed(retention, Timestamp::now()) else { return Ok(0) };
            (last, index.up_to(last))
        };
        let _span = tracing::debug_span!("feed_trim", up_to = last_doomed).entered();
        let store = self.collections().documents().store();
        for chunk in doomed.chunks(1000) {
            let mut batch = Batch::new();
            for e in chunk {
                match e.trim {
                    Trim::Parts(parts) => {
                        for part in 0..parts {
                            batch.delete(revision_part_key(FEED, e.sequence, part));
                        }
                    }
                    Trim::Read => self.trim_read(e.sequence, &mut batch)?,
                }
            }
            // The floor moves with each batch, so a crash between batches
            // never claims entries that are still present were trimmed.
            let floor = chunk.last().map_or(0, |e| e.sequence);
            batch.put(FLOOR.to_vec(), floor.to_be_bytes().to_vec());
            store.commit(batch)?.into_result()?;
        }
        self.inner.feed_index.lock().trimmed(last_doomed);
        tracing::debug!(commits = doomed.len(), floor = last_doomed, "trimmed the change feed");
        Ok(doomed.len())
    }

    /// Adds to `batch` the deletes of entry `sequence` as stored — its keys
    /// and the archived versions it owns (nothing older than the floor
    /// needs them). An entry that does not decode cannot name its
    /// archives: it goes, and they stay behind (`verify_feed` reports
    /// them).
    fn trim_read(&self, sequence: Revision, batch: &mut Batch) -> Result<()> {
        let store = self.collections().documents().store();
        let (start, end) = (revision_key(FEED, sequence), revision_key(FEED, sequence.saturating_add(1)));
        for e in joined(store.range(Bound::Included(&start), Bound::Excluded(&end))?)? {
            for key in &e.keys {
                batch.delete(key.clone());
            }
            match feed_record::decode(&e.keys[0], &e.bytes) {
                Ok(stored) => {
                    for key in stored.archive_keys(e.sequence) {
                        batch.delete(key);
                    }
                }
                Err(err) => {
                    tracing::warn!(entry = e.sequence, error = %err, "trimming a feed entry that does not decode")
                }
            }
        }
        Ok(())
    }
}
