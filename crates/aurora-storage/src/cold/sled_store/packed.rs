//! Packed index trees: the index entries of a collection (`"x" ++
//! collection ++ 0x00`, see `routes`) stored as *chunks*, each sled item a
//! sorted run of consecutive entries (`chunk` has the encoding), so that a
//! bulk load writes one sled item per [`CHUNK_ENTRIES`] entries instead of
//! one per entry (sled 0.34's insert costs ~17 800 instructions whatever it
//! holds: its splits, page links and log reservations are per item).
//!
//! # Ownership
//! A chunk's sled key is its *lower bound*: the chunk stored under `K`
//! owns the keys from `K` up to the next chunk's sled key `N` (the first
//! chunk owns every key below `K` too). Entries a chunk holds outside the
//! interval it owns are *stale* and every read ignores them; every rewrite
//! of a chunk drops them. Writers keep two further facts: no chunk holds an
//! entry below its own sled key unless it is the first, and a chunk is
//! removed only once every entry it owns was purged.
//!
//! # Writes (one at a time: `writer`)
//! `apply`, WAL replay and restore (through `apply`) and the purges (the
//! maintenance thread) all rewrite chunks; they take the tree's writer
//! mutex, so a purge cannot drop an apply's entries by writing back a
//! chunk it read before them. Each write is a sequence of sled inserts
//! and removes, ordered so that a reader, or a crash, between any two of
//! them sees every key at its old or its new version:
//! - new entries past a chunk's last one (an ascending load, at the end
//!   of the tree or at the end of one indexed value's entries) are encoded
//!   after the chunk's bytes, which are not decoded (`try_append`); a
//!   merge anywhere else decodes the chunk's entries and encodes them
//!   again. A merge over the size limit is cut after the new entries when
//!   they landed in one place (the next ones then append), else evenly;
//! - the pieces of a split are written *right to
//!   left*: the new right chunks first, then the left one under its old
//!   key, truncated. In between, the left chunk's tail is stale (the new
//!   right chunk owns it). The other order would lose the moved entries
//!   in a crash, and they may be older than the checkpoint (WAL replay
//!   does not bring them back);
//! - a key below the first chunk: the merged first piece is written under
//!   that key, then the old first chunk's item is removed (unless a
//!   piece took its key);
//! - a chunk emptied by a purge: its predecessor is first rewritten
//!   without entries at or above the removed chunk's key (its stale tail
//!   would otherwise come back into ownership), then the chunk is removed.
//!
//! Crash safety rests on sled 0.34 recovering a *prefix* of the writes
//! made through it (checked in sled 0.34.7's source): every write is a
//! reservation in one log, given its LSN in order (`pagecache/logger.rs`,
//! `Log::reserve_inner`); recovery (`pagecache/iterator.rs`) replays the
//! log in LSN order and `LogIter::next` stops at the first corrupted
//! message ("found a tear") or at a batch whose last LSN is past what is
//! stable ("cutting recovery short due to torn batch"), the segments of
//! the unstable tail must link up contiguously above the largest
//! `max_stable_lsn` of their headers (`check_contiguity_in_unstable_tail`),
//! and `snapshot.rs` zeroes the torn segments after it. So a later write
//! (the truncation of a left chunk) never survives without an earlier one
//! (the new right chunk). `packed_index_crash.rs` kills a writer with
//! SIGKILL and fails with the opposite order.
//!
//! # Reads (no lock)
//! A read takes a chunk, then the next chunk's key, then checks that the
//! chunk it read is still the one stored (the same bytes): only then were
//! the chunk and its bound current together, and its entries below that
//! bound are the tree's. Otherwise a writer moved something meanwhile and
//! the step is read again. A scan walks the key space as a cursor over
//! the intervals it has emitted (`[L, N)` forwards, `[K, U)` backwards),
//! so a split racing it can neither hide nor repeat a key. A point read
//! takes the owner of the key (`range(..=k).next_back()`); finding the key
//! there is the answer, and not finding it is, unless a chunk at or below
//! the key appeared meanwhile (then it reads again).

pub(crate) mod chunk;
mod cursor;

use crate::cold::sled_store::values::decode_versioned;
use crate::cold::{ScanIter, Versioned};
use crate::error::{printable_key, Result, StorageError};
use chunk::{Decoder, Val};
use parking_lot::Mutex;
use sled::IVec;
use std::ops::Bound;
use std::sync::Arc;

/// Most entries in a chunk. Measured (docs/footprint.md, "Packed index
/// trees"): 32, 64 and 128 cost the applier of `write_path bulk100` the
/// same (22 500 / 22 800 / 23 500 instructions per document) and leave the
/// same disk after a million documents, and `read_profile` the same per
/// query, all within noise; a smaller chunk costs less to rewrite for an
/// insert in its middle and to search for a point read.
pub(crate) const CHUNK_ENTRIES: usize = 32;
/// Most encoded bytes a chunk is filled to before it is split (a soft
/// limit: a split never makes a chunk of less than one entry). Entries of
/// more than `CHUNK_BYTES / CHUNK_ENTRIES` bytes take the merge path,
/// which cuts by bytes.
pub(crate) const CHUNK_BYTES: usize = 8 << 10;
/// Lock-free attempts of a read before it reads under the writer mutex.
const READ_ATTEMPTS: usize = 64;

/// One packed index tree.
pub(crate) struct PackedTree {
    /// The sled tree (named `routes::packed_name(prefix)`).
    pub(crate) tree: sled::Tree,
    /// The key prefix of its entries (`"x" ++ collection ++ 0x00`).
    prefix: Vec<u8>,
    /// Serializes the writers (see the module docs).
    writer: Mutex<()>,
}

/// A chunk: its sled key and value.
type Chunk = (IVec, IVec);

fn backend(what: &'static str) -> impl Fn(sled::Error) -> StorageError {
    move |e| StorageError::backend(what, e)
}

impl PackedTree {
    /// The packed tree `tree` holding the entries of `prefix`.
    pub(crate) fn new(prefix: Vec<u8>, tree: sled::Tree) -> Self {
        Self { tree, prefix, writer: Mutex::new(()) }
    }

    /// The full key of the suffix `k` (for errors and scans).
    fn full(&self, k: &[u8]) -> Vec<u8> {
        [&self.prefix[..], k].concat()
    }

    /// The chunk that owns `k`: the last one at or below it, else the
    /// first.
    fn owner(&self, k: &[u8]) -> Result<Option<Chunk>> {
        match self.tree.range::<&[u8], _>(..=k).next_back().transpose().map_err(backend("reading a chunk"))? {
            Some(c) => Ok(Some(c)),
            None => self.tree.first().map_err(backend("reading a chunk")),
        }
    }

    /// The sled key of the chunk after the one at `k`.
    fn next_key(&self, k: &[u8]) -> Result<Option<IVec>> {
        let mut keys = self.tree.range::<&[u8], _>((Bound::Excluded(k), Bound::Unbounded)).keys();
        keys.next().transpose().map_err(backend("reading a chunk key"))
    }

    /// Whether a chunk before the one at `k` exists.
    fn has_predecessor(&self, k: &[u8]) -> Result<bool> {
        let mut keys = self.tree.range::<&[u8], _>(..k).keys();
        keys.next_back().transpose().map(|p| p.is_some()).map_err(backend("reading a chunk key"))
    }

    /// Whether the chunk at `k` still holds `raw`.
    fn unchanged(&self, k: &[u8], raw: &IVec) -> Result<bool> {
        Ok(self.tree.get(k).map_err(backend("reading a chunk"))?.as_ref() == Some(raw))
    }

    /// The latest version of the suffix `k`.
    pub(crate) fn get(&self, k: &[u8]) -> Result<Option<Versioned>> {
        for _ in 0..READ_ATTEMPTS {
            if let Some(found) = self.try_get(k)? {
                return Ok(found);
            }
        }
        let _writes = self.writer.lock();
        Ok(self.try_get(k)?.flatten())
    }

    /// One attempt of [`PackedTree::get`]: `None` when a writer moved the
    /// key's chunk meanwhile.
    fn try_get(&self, k: &[u8]) -> Result<Option<Option<Versioned>>> {
        let Some((ck, raw)) = self.owner(k)? else { return Ok(Some(None)) };
        let key = self.full(&ck);
        let mut d = Decoder::new(&key, &raw)?;
        while let Some(entry) = d.next_entry() {
            let (ek, ev) = entry?;
            match ek.cmp(k) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Ok(Some(Some(decode_versioned(&self.full(k), ev)?))),
                std::cmp::Ordering::Greater => break,
            }
        }
        // Not in its owner: absent, unless a chunk at or below `k` after the
        // owner appeared (a split moved `k` there).
        let next = self.next_key(&ck)?;
        Ok(if next.is_some_and(|n| n.as_ref() <= k) { None } else { Some(None) })
    }

    /// The decoded entries of `raw` (at `ck`) that it owns below `next`.
    fn owned<'a>(&self, ck: &[u8], raw: &'a [u8], next: Option<&[u8]>) -> Result<chunk::Entries<'a>> {
        let key = self.full(ck);
        let mut entries = chunk::decode(&key, raw)?;
        if let Some(n) = next {
            entries.retain(|(k, _)| k.as_slice() < n);
        }
        if entries.first().is_some_and(|(k, _)| k.as_slice() < ck) && self.has_predecessor(ck)? {
            entries.retain(|(k, _)| k.as_slice() >= ck);
        }
        Ok(entries)
    }

    /// Writes a sorted run of `(suffix, version)`; `ascending` says whether
    /// its keys are strictly ascending (else later versions of a key
    /// replace earlier ones, in the order given).
    pub(crate) fn apply(&self, run: &[(&[u8], &Versioned)], ascending: bool) -> Result<()> {
        let sorted: Vec<(&[u8], &Versioned)>;
        let run = if ascending {
            run
        } else {
            let latest: std::collections::BTreeMap<&[u8], &Versioned> = run.iter().copied().collect();
            sorted = latest.into_iter().collect();
            &sorted[..]
        };
        let _writes = self.writer.lock();
        let mut i = 0;
        while let Some(&(k, _)) = run.get(i) {
            let owner = self.owner(k)?;
            let next = match &owner {
                Some((ck, _)) => self.next_key(ck)?,
                None => None,
            };
            let rest = run.get(i..).unwrap_or_default();
            let j = i + rest.partition_point(|(k, _)| next.as_ref().is_none_or(|n| *k < n.as_ref()));
            let group = run.get(i..j).unwrap_or_default();
            if let Some((ck, raw)) = &owner {
                match self.try_append(ck, raw, next.as_deref(), group) {
                    Ok(true) => {
                        i = j;
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) if is_damage(&e) => {
                        self.write_beside_damaged(ck, group, &e)?;
                        i = j;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let old = match &owner {
                Some((ck, raw)) => match self.owned(ck, raw, next.as_deref()) {
                    Ok(old) => old,
                    Err(e) if is_damage(&e) => {
                        self.write_beside_damaged(ck, group, &e)?;
                        i = j;
                        continue;
                    }
                    Err(e) => return Err(e),
                },
                None => Vec::new(),
            };
            // Where a split cuts: after the group when it lands in one
            // place among the old entries (no old entry between its first
            // and last key), so that the next appends there find a chunk
            // that ends with them (`try_append`); else evenly.
            let cut = match (group.first(), group.last()) {
                (Some(&(lo, _)), Some(&(hi, _)))
                    if !old.iter().any(|(k, _)| k.as_slice() > lo && k.as_slice() < hi) =>
                {
                    Some(
                        old.iter().filter(|(k, _)| k.as_slice() <= hi).count() + group.len()
                            - old.iter().filter(|(k, _)| k.as_slice() >= lo && k.as_slice() <= hi).count(),
                    )
                }
                _ => None,
            };
            let merged = merge(old, group);
            self.write_pieces(owner.as_ref().map(|(ck, _)| ck.as_ref()), merged, cut)?;
            i = j;
        }
        Ok(())
    }

    /// Writes `group` beside the chunk at `ck`, which owns it but does not
    /// decode (`damage`): into chunks of its own, each under its first key,
    /// cut at `ck` so that a piece below the damaged chunk owns nothing of
    /// it. The damaged chunk keeps the keys below the group's first one at
    /// or above `ck`, whose reads go on reporting the damage; its entries
    /// from there on are hidden by the new chunk (and all of it replaced
    /// when the group's first key is `ck` itself). A write — an
    /// acknowledged commit the WAL replays at every open — must not fail
    /// on old damage, or the store is poisoned and never opens again; what
    /// the damage hides is logged, and `aurora check` reports the index
    /// entries it lost.
    fn write_beside_damaged(&self, ck: &[u8], group: &[(&[u8], &Versioned)], damage: &StorageError) -> Result<()> {
        tracing::error!(
            chunk = %printable_key(&self.full(ck)),
            error = %damage,
            "an index chunk does not decode: the writes into its range go into chunks beside it; its entries above them are hidden (run `aurora check`, then rebuild the index)"
        );
        let at = group.partition_point(|(k, _)| *k < ck);
        let (below, rest) = group.split_at(at);
        for part in [below, rest] {
            let entries: chunk::Entries<'_> = part.iter().map(|(k, v)| (k.to_vec(), Val::New(v))).collect();
            self.write_pieces(None, entries, None)?;
        }
        Ok(())
    }

    /// The append path of [`PackedTree::apply`]: when every key of
    /// `group` is above every entry of the chunk `(ck, raw)` (whose next
    /// chunk is at `next`) and the chunk holds only entries it owns, the
    /// group's entries are encoded after the chunk's bytes (no decoding of
    /// its values, no re-encoding), the chunk topped up to the limit and
    /// the rest written as new full chunks (right to left, as a split).
    /// Returns whether it applied the group.
    fn try_append(&self, ck: &[u8], raw: &IVec, next: Option<&[u8]>, group: &[(&[u8], &Versioned)]) -> Result<bool> {
        let Some(&(first_new, _)) = group.first() else { return Ok(true) };
        // Entries this large are cut by bytes (`split`): the slow path.
        if group.iter().any(|(k, v)| k.len() + Val::New(v).len() > CHUNK_BYTES / CHUNK_ENTRIES) {
            return Ok(false);
        }
        let key = self.full(ck);
        let mut d = Decoder::new(&key, raw)?;
        let mut count = 0;
        let mut lowest_ok = true;
        while let Some(entry) = d.next_entry() {
            let (k, _) = entry?;
            if count == 0 {
                lowest_ok = k >= ck;
            }
            count += 1;
        }
        let last = d.last_key();
        let owned_only = lowest_ok && next.is_none_or(|n| last < n);
        if count == 0 || !owned_only || first_new <= last {
            return Ok(false);
        }
        // Top the chunk up — within its entry and its byte limit, counted
        // as `fill` counts them, so that a chunk of a few large entries
        // does not take 31 more — then full chunks of the rest.
        let mut bytes = raw.len();
        let room = group
            .iter()
            .take(CHUNK_ENTRIES.saturating_sub(count))
            .take_while(|(k, v)| {
                bytes += k.len() + Val::New(v).len();
                bytes <= CHUNK_BYTES
            })
            .count();
        let (top, rest) = group.split_at(room);
        let mut pieces: Vec<(&[u8], Vec<u8>)> = Vec::new();
        for piece in rest.chunks(CHUNK_ENTRIES) {
            let Some(&(start, _)) = piece.first() else { continue };
            let mut out = Vec::with_capacity(piece.len() * 24);
            out.push(chunk::CHUNK_V1);
            chunk::append(&mut out, &[], piece.iter().map(|&(k, v)| (k, Val::New(v))));
            pieces.push((start, out));
        }
        for (start, bytes) in pieces.into_iter().rev() {
            self.tree.insert(start, bytes).map_err(backend("writing an index chunk"))?;
        }
        if !top.is_empty() {
            let mut out = Vec::with_capacity(raw.len() + top.len() * 24);
            out.extend_from_slice(raw);
            chunk::append(&mut out, last, top.iter().map(|&(k, v)| (k, Val::New(v))));
            self.tree.insert(ck, out).map_err(backend("writing an index chunk"))?;
        }
        Ok(true)
    }

    /// Replaces the chunk at `old_key` (`None`: the tree is empty) with
    /// `merged`, split into chunks within the limits (module docs: right
    /// to left).
    fn write_pieces(&self, old_key: Option<&[u8]>, merged: chunk::Entries<'_>, cut: Option<usize>) -> Result<()> {
        let Some(lowest) = merged.first().map(|(k, _)| k.clone()) else { return Ok(()) };
        let pieces = split(&merged, cut);
        let first_key: Vec<u8> = match old_key {
            Some(ok) if ok <= lowest.as_slice() => ok.to_vec(),
            _ => lowest,
        };
        let keys: Vec<&[u8]> = pieces
            .iter()
            .enumerate()
            .map(|(n, p)| if n == 0 { first_key.as_slice() } else { p.first().map_or(&[][..], |(k, _)| k.as_slice()) })
            .collect();
        for (piece, key) in pieces.iter().zip(keys.iter()).rev() {
            self.tree.insert(*key, chunk::encode(piece)).map_err(backend("writing an index chunk"))?;
        }
        if let Some(ok) = old_key {
            if !keys.contains(&ok) {
                self.tree.remove(ok).map_err(backend("removing an index chunk"))?;
            }
        }
        Ok(())
    }

    /// Removes the tombstones at or below `horizon` among the suffixes
    /// `keys` (any order); returns how many.
    pub(crate) fn purge_keys(&self, keys: &mut Vec<Vec<u8>>, horizon: u64) -> Result<usize> {
        keys.sort();
        keys.dedup();
        let _writes = self.writer.lock();
        let mut removed = 0;
        let mut i = 0;
        while let Some(k) = keys.get(i) {
            let Some((ck, raw)) = self.owner(k)? else { break };
            let next = self.next_key(&ck)?;
            let rest = keys.get(i..).unwrap_or_default();
            let j = i + rest.partition_point(|k| next.as_ref().is_none_or(|n| k.as_slice() < n.as_ref()));
            let named = keys.get(i..j).unwrap_or_default();
            removed += self.purge_chunk(&ck, &raw, next.as_deref(), horizon, |k| {
                named.binary_search_by(|n| n.as_slice().cmp(k)).is_ok()
            })?;
            i = j;
        }
        Ok(removed)
    }

    /// Removes every tombstone at or below `horizon`; returns how many.
    /// Holds the writer mutex one chunk at a time.
    pub(crate) fn purge_all(&self, horizon: u64) -> Result<usize> {
        let mut removed = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let _writes = self.writer.lock();
            let item = match &after {
                None => self.tree.first(),
                Some(a) => self.tree.range::<&[u8], _>((Bound::Excluded(&a[..]), Bound::Unbounded)).next().transpose(),
            };
            let Some((ck, raw)) = item.map_err(backend("reading a chunk"))? else { return Ok(removed) };
            let next = self.next_key(&ck)?;
            removed += self.purge_chunk(&ck, &raw, next.as_deref(), horizon, |_| true)?;
            after = Some(ck.to_vec());
        }
    }

    /// Rewrites the chunk `(ck, raw)` (whose next chunk is at `next`)
    /// without the purgeable tombstones of the keys `named` accepts and
    /// without its stale entries; removes it when nothing is left (its
    /// predecessor first trimmed). The caller holds the writer mutex.
    fn purge_chunk(
        &self,
        ck: &[u8],
        raw: &IVec,
        next: Option<&[u8]>,
        horizon: u64,
        named: impl Fn(&[u8]) -> bool,
    ) -> Result<usize> {
        let total = chunk::decode(&self.full(ck), raw)?.len();
        let mut kept = self.owned(ck, raw, next)?;
        let owned = kept.len();
        let mut err = None;
        kept.retain(|(k, v)| {
            if !named(k) {
                return true;
            }
            match v.is_tombstone_by(&self.full(k), horizon) {
                Ok(purge) => !purge,
                Err(e) => {
                    err = Some(e);
                    true
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        let removed = owned - kept.len();
        if kept.len() == total {
            return Ok(0);
        }
        if kept.is_empty() {
            self.remove_chunk(ck)?;
        } else {
            self.tree.insert(ck, chunk::encode(&kept)).map_err(backend("writing an index chunk"))?;
        }
        Ok(removed)
    }

    /// Removes the chunk at `ck`, first trimming its predecessor of the
    /// entries at or above `ck`. The caller holds the writer mutex.
    fn remove_chunk(&self, ck: &[u8]) -> Result<()> {
        let pred = self.tree.range::<&[u8], _>(..ck).next_back().transpose().map_err(backend("reading a chunk"))?;
        if let Some((pk, praw)) = pred {
            let pkey = self.full(&pk);
            let entries = chunk::decode(&pkey, &praw)?;
            if entries.last().is_some_and(|(k, _)| k.as_slice() >= ck) {
                let trimmed: Vec<_> = entries.into_iter().filter(|(k, _)| k.as_slice() < ck).collect();
                self.tree.insert(&pk, chunk::encode(&trimmed)).map_err(backend("writing an index chunk"))?;
            }
        }
        self.tree.remove(ck).map_err(backend("removing an index chunk"))?;
        Ok(())
    }

    /// A lazy scan of the suffixes in `lo..hi`, keys given back with the
    /// prefix.
    pub(crate) fn scan(self: &Arc<Self>, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>, reverse: bool) -> ScanIter {
        Box::new(cursor::Cursor::new(Arc::clone(self), lo, hi, reverse))
    }

    /// Writes `entries` (ascending suffixes, the whole content of a
    /// per-entry tree being packed) into this empty tree, in full chunks
    /// (within [`CHUNK_ENTRIES`] and [`CHUNK_BYTES`]). Values are copied as
    /// stored, not decoded: a damaged one stays the damage of its one key,
    /// reported by the reads of that key as before the move, instead of
    /// refusing the move — and with it every open.
    pub(crate) fn load(&self, entries: &mut dyn Iterator<Item = Result<(IVec, IVec)>>) -> Result<u64> {
        let _writes = self.writer.lock();
        let mut batch: Vec<(IVec, IVec)> = Vec::with_capacity(CHUNK_ENTRIES);
        let mut batch_bytes = 0;
        let mut loaded = 0;
        let flush = |batch: &mut Vec<(IVec, IVec)>| -> Result<()> {
            let Some(first) = batch.first().map(|(k, _)| k.clone()) else { return Ok(()) };
            let entries: Vec<(Vec<u8>, Val<'_>)> = batch.iter().map(|(k, v)| (k.to_vec(), Val::Raw(v))).collect();
            self.tree.insert(first, chunk::encode(&entries)).map_err(backend("writing an index chunk"))?;
            batch.clear();
            Ok(())
        };
        for item in entries {
            let (k, v) = item?;
            let bytes = k.len() + v.len();
            if !batch.is_empty() && batch_bytes + bytes > CHUNK_BYTES {
                flush(&mut batch)?;
                batch_bytes = 0;
            }
            batch.push((k, v));
            batch_bytes += bytes;
            loaded += 1;
            if batch.len() == CHUNK_ENTRIES {
                flush(&mut batch)?;
                batch_bytes = 0;
            }
        }
        flush(&mut batch)?;
        Ok(loaded)
    }

    /// The prefix of the tree's keys.
    pub(crate) fn prefix(&self) -> &[u8] {
        &self.prefix
    }
}

/// Whether `e` is a chunk that does not decode (as opposed to sled
/// failing).
fn is_damage(e: &StorageError) -> bool {
    matches!(e, StorageError::Corrupt { .. } | StorageError::UnknownFormat { .. })
}

/// `old` (a chunk's owned entries) with `run` merged in, the run's
/// versions replacing the old ones.
fn merge<'a>(old: chunk::Entries<'a>, run: &[(&[u8], &'a Versioned)]) -> chunk::Entries<'a> {
    let mut out = Vec::with_capacity(old.len() + run.len());
    let mut old = old.into_iter().peekable();
    for &(k, v) in run {
        while let Some(o) = old.next_if(|(ok, _)| ok.as_slice() < k) {
            out.push(o);
        }
        old.next_if(|(ok, _)| ok.as_slice() == k);
        out.push((k.to_vec(), Val::New(v)));
    }
    out.extend(old);
    out
}

/// `merged` cut into chunks within [`CHUNK_ENTRIES`] and [`CHUNK_BYTES`].
/// When the new entries landed in one place (`cut`: the index just past
/// them), the old entries after them become a chunk of their own and those
/// up to the cut fill full chunks, the remainder last: an ascending load,
/// at the end of the tree or inside it (an index on a field whose values
/// repeat: each value's entries grow at their own place), leaves full
/// chunks behind and its next entries find a chunk that ends where they
/// go. Else pieces of equal size (inserts all over: room in each for more).
fn split<'m, 'a>(merged: &'m [(Vec<u8>, Val<'a>)], cut: Option<usize>) -> Vec<&'m [(Vec<u8>, Val<'a>)]> {
    let bytes: usize = merged.iter().map(|(k, v)| k.len() + v.len()).sum();
    let pieces = merged.len().div_ceil(CHUNK_ENTRIES).max(bytes.div_ceil(CHUNK_BYTES)).max(1);
    if pieces == 1 {
        return vec![merged];
    }
    if let Some(c) = cut.filter(|&c| c > 0 && c <= merged.len()) {
        let (left, right) = merged.split_at(c);
        let mut out = fill(left);
        if !right.is_empty() {
            out.extend(split(right, None));
        }
        return out;
    }
    let per = merged.len().div_ceil(pieces).max(1);
    merged.chunks(per).collect()
}

/// `entries` in full chunks (by [`CHUNK_ENTRIES`], and by
/// [`CHUNK_BYTES`] for large entries), the remainder last.
fn fill<'m, 'a>(entries: &'m [(Vec<u8>, Val<'a>)]) -> Vec<&'m [(Vec<u8>, Val<'a>)]> {
    let mut out = Vec::new();
    let mut rest = entries;
    while !rest.is_empty() {
        let mut take = 0;
        let mut size = 0;
        for (k, v) in rest.iter().take(CHUNK_ENTRIES) {
            size += k.len() + v.len();
            if take > 0 && size > CHUNK_BYTES {
                break;
            }
            take += 1;
        }
        let (piece, tail) = rest.split_at(take);
        out.push(piece);
        rest = tail;
    }
    out
}
