//! [`Resident`]: key ranges of the cold store kept in memory, so scans of
//! them skip the backend's iterator.
//!
//! sled 0.34 pays about 2 400 instructions per entry stepping its iterator
//! forwards (a node search, the prefix-compressed key rebuilt into a fresh
//! allocation) and more backwards (the node searched again at every step);
//! an index read is mostly that. The layer above registers the key prefixes
//! worth holding ([`ResidentRanges::register`]: the index layer registers
//! each index it reads); the first scan inside a registered prefix copies
//! the prefix's latest versions (tombstones included) into a `BTreeMap`,
//! and from then on every write the cold store receives under it is
//! mirrored there, so the map always equals what the backend holds under
//! the prefix (but for tombstones a purge has just removed, see below). Scans inside it are served from the map, in chunks taken
//! under a read lock. Everything above — the memtable merge, snapshot
//! resolution against the history — is unchanged: this layer answers
//! exactly what the backend would.
//!
//! Memory is bounded by [`StoreConfig::range_cache_bytes`](crate::StoreConfig::range_cache_bytes):
//! each entry is charged its key, its value and [`ENTRY_OVERHEAD`]. A
//! prefix that does not fit when loaded, or outgrows the budget through
//! writes, is dropped and never loaded again while the store is open (its
//! scans go to the backend, as before); an iterator over it carries on
//! from the backend where the map left off.
//!
//! Ordering: loads and applies hold one gate, so a load reads a backend no
//! one is writing, and every apply after it mirrors its writes into the
//! loaded map (or, before it, is in what the load reads). A load holds the
//! applier back for as long as it reads the prefix (once per prefix; the
//! memtable absorbs commits meanwhile). Tombstone purges do not take the
//! gate: a purge removes tombstones at or below a revision that every
//! later write is above, so a load racing one can at worst keep a purged
//! tombstone — which reads as the absent key it stands for, and goes at
//! the next purge. Readers never take the gate.

use super::{ColdStore, ScanItem, ScanIter, Versioned};
use crate::batch::Revision;
use crate::error::Result;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

/// Bytes charged per resident entry beyond its key and value (the key's
/// `Vec` and its allocation, the version, the map's node share).
pub(crate) const ENTRY_OVERHEAD: usize = 128;

/// Entries copied out of the map by a scan's first lock; each later one
/// takes twice as many, up to [`MAX_CHUNK`] (a walk that stops after a
/// few entries copies few, a long read takes few locks).
const FIRST_CHUNK: usize = 8;
const MAX_CHUNK: usize = 64;

/// The registered prefixes and their maps, shared by the cold-store
/// wrapper and the engine (which registers prefixes for the layer above).
pub(crate) struct ResidentRanges {
    state: RwLock<Ranges>,
    /// Held by loads, applies and purges (see the module docs).
    gate: Mutex<()>,
    budget: usize,
}

#[derive(Default)]
struct Ranges {
    list: Vec<Range>,
    /// Bytes charged by every loaded map.
    used: usize,
}

struct Range {
    prefix: Vec<u8>,
    /// The first key past the prefix (`None`: no key is past it).
    end: Option<Vec<u8>>,
    state: State,
    entries: BTreeMap<Vec<u8>, Versioned>,
    bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Registered; loaded by the first scan inside it.
    Registered,
    /// Held in memory.
    Loaded,
    /// Did not fit the budget: never loaded again while open.
    TooBig,
}

fn charge(key: &[u8], v: &Versioned) -> usize {
    key.len() + v.value.as_ref().map_or(0, Vec::len) + ENTRY_OVERHEAD
}

impl Range {
    fn contains_key(&self, key: &[u8]) -> bool {
        key.starts_with(&self.prefix)
    }

    /// Whether every key of `start..end` lies under the prefix.
    fn covers(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
        let start_in = match start {
            Bound::Included(s) | Bound::Excluded(s) => s.starts_with(&self.prefix),
            Bound::Unbounded => false,
        };
        let end_in = match end {
            Bound::Included(e) => e.starts_with(&self.prefix),
            Bound::Excluded(e) => e.starts_with(&self.prefix) || self.end.as_deref() == Some(e),
            Bound::Unbounded => false,
        };
        start_in && end_in
    }
}

impl ResidentRanges {
    pub(crate) fn new(budget: usize) -> Self {
        Self { state: RwLock::new(Ranges::default()), gate: Mutex::new(()), budget }
    }

    /// Registers `prefix`: scans inside it are served from memory once the
    /// first one has loaded it, while it fits the budget. Registering again
    /// (or a prefix inside a registered one) does nothing.
    pub(crate) fn register(&self, prefix: &[u8]) {
        if self.budget == 0 || self.state.read().list.iter().any(|r| prefix.starts_with(&r.prefix)) {
            return;
        }
        let mut state = self.state.write();
        if state.list.iter().any(|r| prefix.starts_with(&r.prefix)) {
            return;
        }
        // A registered prefix inside the new one gives way to it.
        let inner: Vec<usize> =
            state.list.iter().enumerate().filter(|(_, r)| r.prefix.starts_with(prefix)).map(|(i, _)| i).collect();
        for i in inner.into_iter().rev() {
            let gone = state.list.swap_remove(i);
            state.used -= gone.bytes;
        }
        state.list.push(Range {
            prefix: prefix.to_vec(),
            end: crate::store::prefix_successor(prefix),
            state: State::Registered,
            entries: BTreeMap::new(),
            bytes: 0,
        });
    }

    /// Bytes charged by the resident entries.
    pub(crate) fn used_bytes(&self) -> usize {
        self.state.read().used
    }

    /// The prefix of the range covering `start..end` and its state.
    fn covering(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Option<(Vec<u8>, State)> {
        let state = self.state.read();
        state.list.iter().find(|r| r.covers(start, end)).map(|r| (r.prefix.clone(), r.state))
    }

    /// Loads the registered range `prefix` from `backend`; whether it is
    /// now loaded. A load that fails or does not fit leaves it unloaded
    /// (a failure is retried by the next scan; too big is final).
    fn load(&self, prefix: &[u8], backend: &dyn ColdStore) -> bool {
        let _gate = self.gate.lock();
        let (end, room) = {
            let state = self.state.read();
            match state.list.iter().find(|r| r.prefix == prefix) {
                Some(r) if r.state == State::Registered => (r.end.clone(), self.budget.saturating_sub(state.used)),
                Some(r) => return r.state == State::Loaded,
                None => return false,
            }
        };
        let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut entries = BTreeMap::new();
        let mut bytes = 0usize;
        let mut fits = true;
        for item in backend.scan(Bound::Included(prefix), end) {
            let Ok((key, v)) = item else {
                // Left to the backend's own scan, which reports it in order.
                return false;
            };
            bytes += charge(&key, &v);
            if bytes > room {
                fits = false;
                break;
            }
            entries.insert(key, v);
        }
        let mut state = self.state.write();
        let Some(i) = state.list.iter().position(|r| r.prefix == prefix) else { return false };
        if !fits {
            state.list[i].state = State::TooBig;
            tracing::debug!(prefix = %crate::printable_key(prefix), budget = self.budget, "range too big to keep resident");
            return false;
        }
        state.used += bytes;
        let range = &mut state.list[i];
        range.entries = entries;
        range.bytes = bytes;
        range.state = State::Loaded;
        true
    }

    /// Mirrors writes the backend has just taken (under the gate).
    fn mirror(&self, writes: Vec<(Vec<u8>, Versioned)>) {
        if writes.is_empty() {
            return;
        }
        let budget = self.budget;
        let mut state = self.state.write();
        let Ranges { list, used } = &mut *state;
        for (key, v) in writes {
            let Some(range) = list.iter_mut().find(|r| r.state == State::Loaded && r.contains_key(&key)) else {
                continue;
            };
            let added = charge(&key, &v);
            if let Some(old) = range.entries.get(&key) {
                let freed = charge(&key, old);
                range.bytes -= freed;
                *used -= freed;
            }
            range.bytes += added;
            *used += added;
            range.entries.insert(key, v);
            if *used > budget {
                *used -= range.bytes;
                range.bytes = 0;
                range.entries = BTreeMap::new();
                range.state = State::TooBig;
                tracing::debug!(prefix = %crate::printable_key(&range.prefix), budget, "resident range outgrew the budget");
            }
        }
    }

    /// The prefixes whose maps are loaded (under the gate: none loads meanwhile).
    fn loaded_prefixes(&self) -> Vec<Vec<u8>> {
        self.state.read().list.iter().filter(|r| r.state == State::Loaded).map(|r| r.prefix.clone()).collect()
    }

    /// Drops tombstones written at or before `horizon` from the maps, as
    /// the backend's purge just did (a key rewritten since holds a newer
    /// version, which stays).
    /// [`ResidentRanges::purge`] for the named keys only (what the backend
    /// purged through [`ColdStore::purge_tombstones_of`]): a targeted purge
    /// costs what was deleted here too.
    fn purge_keys(&self, keys: &[&[u8]], horizon: Revision) {
        let mut state = self.state.write();
        let Ranges { list, used } = &mut *state;
        for range in list.iter_mut().filter(|r| r.state == State::Loaded) {
            for key in keys.iter().filter(|k| k.starts_with(&range.prefix)) {
                let purgeable = range.entries.get(*key).is_some_and(|v| v.value.is_none() && v.revision <= horizon);
                if let Some((k, v)) = purgeable.then(|| range.entries.remove_entry(*key)).flatten() {
                    let charged = charge(&k, &v);
                    range.bytes -= charged;
                    *used -= charged;
                }
            }
        }
    }

    fn purge(&self, horizon: Revision) {
        let mut state = self.state.write();
        let Ranges { list, used } = &mut *state;
        for range in list.iter_mut().filter(|r| r.state == State::Loaded) {
            let before = range.bytes;
            range.entries.retain(|key, v| {
                let keep = v.value.is_some() || v.revision > horizon;
                if !keep {
                    range.bytes -= charge(key, v);
                }
                keep
            });
            *used -= before - range.bytes;
        }
    }

    /// Appends to `out` up to `n` entries of the loaded range `prefix`
    /// within `from..to` (from the top when `descending`) and returns how
    /// many, or `None` if the range is no longer loaded. (Appending to the
    /// scan's own buffer: no allocation per chunk.)
    fn chunk(
        &self,
        prefix: &[u8],
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        descending: bool,
        n: usize,
        out: &mut VecDeque<(Vec<u8>, Versioned)>,
    ) -> Option<usize> {
        let state = self.state.read();
        let range = state.list.iter().find(|r| r.prefix == prefix && r.state == State::Loaded)?;
        if bounds_empty(from, to) {
            return Some(0);
        }
        let items = range.entries.range::<[u8], _>((from, to));
        let clone = |(k, v): (&Vec<u8>, &Versioned)| (k.clone(), v.clone());
        let before = out.len();
        if descending {
            out.extend(items.rev().take(n).map(clone));
        } else {
            out.extend(items.take(n).map(clone));
        }
        Some(out.len() - before)
    }
}

/// Whether a range is empty or inverted (`BTreeMap::range` panics on those).
fn bounds_empty(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e)) | (Bound::Excluded(s), Bound::Included(e)) => {
            s >= e
        }
        _ => false,
    }
}

/// The cold store with registered ranges kept resident (see the module
/// docs); everything else passes through to `inner`.
pub(crate) struct Resident {
    inner: Arc<dyn ColdStore>,
    ranges: Arc<ResidentRanges>,
}

impl Resident {
    pub(crate) fn new(inner: Arc<dyn ColdStore>, ranges: Arc<ResidentRanges>) -> Self {
        Self { inner, ranges }
    }

    fn scan_in(&self, start: Bound<&[u8]>, end: Bound<&[u8]>, descending: bool) -> ScanIter {
        let backend = |s, e| if descending { self.inner.scan_rev(s, e) } else { self.inner.scan(s, e) };
        let Some((prefix, state)) = self.ranges.covering(start, end) else { return backend(start, end) };
        let loaded = match state {
            State::Loaded => true,
            State::Registered => self.ranges.load(&prefix, self.inner.as_ref()),
            State::TooBig => false,
        };
        if !loaded {
            return backend(start, end);
        }
        Box::new(ResidentIter {
            ranges: Arc::clone(&self.ranges),
            inner: Arc::clone(&self.inner),
            prefix,
            low: start.map(<[u8]>::to_vec),
            high: end.map(<[u8]>::to_vec),
            descending,
            chunk: FIRST_CHUNK,
            buffer: VecDeque::new(),
            exhausted: false,
            fallback: None,
        })
    }
}

impl ColdStore for Resident {
    fn get(&self, key: &[u8]) -> Result<Option<Versioned>> {
        self.inner.get(key)
    }

    fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter {
        self.scan_in(start, end, false)
    }

    fn scan_rev(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter {
        self.scan_in(start, end, true)
    }

    fn apply(&self, writes: &mut dyn Iterator<Item = (&[u8], &Versioned)>) -> Result<()> {
        let _gate = self.ranges.gate.lock();
        let loaded = self.ranges.loaded_prefixes();
        if loaded.is_empty() {
            return self.inner.apply(writes);
        }
        let mut mirrored = Vec::new();
        let result = {
            let mut watched = writes.inspect(|(k, v)| {
                if loaded.iter().any(|p| k.starts_with(p)) {
                    mirrored.push((k.to_vec(), (*v).clone()));
                }
            });
            self.inner.apply(&mut watched)
        };
        // Mirrored even after a failure: what the backend took before it
        // failed is in it (later writes fail the store anyway).
        self.ranges.mirror(mirrored);
        result
    }

    fn set_checkpoint(&self, revision: Revision) -> Result<()> {
        self.inner.set_checkpoint(revision)
    }

    fn checkpoint(&self) -> Result<Revision> {
        self.inner.checkpoint()
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn purge_tombstones(&self, horizon: Revision) -> Result<usize> {
        let removed = self.inner.purge_tombstones(horizon);
        self.ranges.purge(horizon);
        removed
    }

    fn purge_tombstones_of(&self, keys: &mut dyn Iterator<Item = &[u8]>, horizon: Revision) -> Result<usize> {
        let keys: Vec<&[u8]> = keys.collect();
        let removed = self.inner.purge_tombstones_of(&mut keys.iter().copied(), horizon);
        self.ranges.purge_keys(&keys, horizon);
        removed
    }

    fn disk_bytes(&self) -> Result<u64> {
        self.inner.disk_bytes()
    }
}

/// A scan served from a resident map, chunk by chunk; from the backend
/// where the map left off if the range is dropped meanwhile.
struct ResidentIter {
    ranges: Arc<ResidentRanges>,
    inner: Arc<dyn ColdStore>,
    prefix: Vec<u8>,
    /// What is left to read: `low..high` (the side already read moves).
    low: Bound<Vec<u8>>,
    high: Bound<Vec<u8>>,
    descending: bool,
    /// Entries the next lock copies out.
    chunk: usize,
    buffer: VecDeque<(Vec<u8>, Versioned)>,
    exhausted: bool,
    fallback: Option<ScanIter>,
}

impl Iterator for ResidentIter {
    type Item = ScanItem;

    fn next(&mut self) -> Option<ScanItem> {
        if let Some(f) = &mut self.fallback {
            return f.next();
        }
        if self.buffer.is_empty() && !self.exhausted {
            let (low, high) = (bound_ref(&self.low), bound_ref(&self.high));
            match self.ranges.chunk(&self.prefix, low, high, self.descending, self.chunk, &mut self.buffer) {
                Some(taken) => {
                    self.exhausted = taken < self.chunk;
                    self.chunk = (self.chunk * 2).min(MAX_CHUNK);
                    if let Some((last, _)) = self.buffer.back() {
                        if self.descending {
                            self.high = Bound::Excluded(last.clone());
                        } else {
                            self.low = Bound::Excluded(last.clone());
                        }
                    }
                }
                None => {
                    let (low, high) = (bound_ref(&self.low), bound_ref(&self.high));
                    let mut rest =
                        if self.descending { self.inner.scan_rev(low, high) } else { self.inner.scan(low, high) };
                    let next = rest.next();
                    self.fallback = Some(rest);
                    return next;
                }
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}

fn bound_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

#[cfg(test)]
mod tests;
