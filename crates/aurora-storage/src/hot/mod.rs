//! The hot cache: a concurrent in-memory map with byte-size accounting,
//! optional per-entry TTLs, access tracking, and sampled eviction.
//!
//! Eviction samples a handful of random entries and evicts the worst by the
//! [`EvictionPolicy`], as Redis does: O(1) amortized per insert, never a
//! sort of the whole cache. Entries carry the revision that produced them
//! and an insert never replaces a newer revision, so racing writers cannot
//! leave an older value cached.

mod policy;
mod stats;

pub use policy::EvictionPolicy;
pub use stats::CacheStats;

use dashmap::mapref::entry::Entry as MapEntry;
use dashmap::DashMap;
use foldhash::fast::RandomState;
use parking_lot::Mutex;
use stats::Counters;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes charged per entry on top of its key and value: its share of the
/// map's table at the table's largest, the shared key's block and its ring
/// slots, so that what the cache holds stays within its capacity.
///
/// The table is the big part. A slot is the key's pointer and the
/// entry (72 bytes for a pointer-sized value) plus one control byte,
/// and a cache that evicts leaves tombstones that make hashbrown grow the
/// table instead of rehashing it in place while it holds more than 7/32 of
/// its buckets: a full cache's table settles at up to 32/7 buckets per
/// entry, 334 bytes. The key's block (two counts, allocator header and
/// rounding) adds up to 40 bytes beyond the key, the ring up to two 16-byte
/// slots. Measured after 1 000 000 inserts into a 32 MiB cache (30 093
/// documents held): the table alone was 9.6 MB, 318 bytes per entry (136
/// were charged for everything before).
pub const ENTRY_OVERHEAD: usize = 408;
/// Live entries compared per eviction.
const SAMPLES: usize = 5;
/// Random probes per eviction before giving up on finding `SAMPLES` live entries.
const PROBES: usize = 24;

pub(crate) struct Entry<V> {
    value: V,
    charge: usize,
    revision: u64,
    last_access: AtomicU64,
    hits: AtomicU32,
    expires_at: Option<Instant>,
}

impl<V> Entry<V> {
    fn expired(&self, now: Option<Instant>) -> bool {
        match (self.expires_at, now) {
            (Some(at), Some(now)) => now >= at,
            (Some(at), None) => Instant::now() >= at,
            (None, _) => false,
        }
    }
}

/// A concurrent cache of `V` keyed by bytes, bounded in bytes.
///
/// ```
/// use aurora_storage::{EvictionPolicy, HotCache};
/// let cache: HotCache<String> = HotCache::new(1 << 20, EvictionPolicy::Hybrid);
/// cache.insert(b"k", "v".to_string(), 1, 1, None);
/// assert_eq!(cache.get(b"k").as_deref(), Some("v"));
/// assert!(!cache.insert(b"k", "older".to_string(), 1, 0, None), "older revisions never replace newer");
/// assert_eq!(cache.stats().hits, 1);
/// ```
pub struct HotCache<V> {
    map: DashMap<Arc<[u8]>, Entry<V>, RandomState>,
    /// Keys for random sampling; may hold stale keys, cleaned lazily.
    ring: Mutex<Vec<Arc<[u8]>>>,
    capacity: usize,
    used: AtomicUsize,
    clock: AtomicU64,
    policy: EvictionPolicy,
    counters: Counters,
}

impl<V: Clone> HotCache<V> {
    /// A cache holding at most `capacity_bytes` (values' declared sizes plus
    /// keys plus [`ENTRY_OVERHEAD`] each).
    pub fn new(capacity_bytes: usize, policy: EvictionPolicy) -> Self {
        Self {
            map: DashMap::with_hasher(RandomState::default()),
            ring: Mutex::new(Vec::new()),
            capacity: capacity_bytes,
            used: AtomicUsize::new(0),
            clock: AtomicU64::new(1),
            policy,
            counters: Counters::default(),
        }
    }

    /// The cached value of `key`, counting a hit or a miss. Expired entries
    /// are misses (and are removed).
    pub fn get(&self, key: &[u8]) -> Option<V> {
        self.get_versioned(key).map(|(v, _)| v)
    }

    /// Like [`HotCache::get`], with the revision the value was cached at.
    pub fn get_versioned(&self, key: &[u8]) -> Option<(V, u64)> {
        let found = self.peek_versioned(key);
        self.counters.record_lookup(found.is_some());
        found
    }

    /// Like [`HotCache::get`] but without counting the lookup.
    pub fn peek(&self, key: &[u8]) -> Option<V> {
        self.peek_versioned(key).map(|(v, _)| v)
    }

    /// Like [`HotCache::get_versioned`] but without counting the lookup.
    pub fn peek_versioned(&self, key: &[u8]) -> Option<(V, u64)> {
        let entry = self.map.get(key)?;
        if entry.expired(None) {
            drop(entry);
            self.remove_expired(key);
            return None;
        }
        entry.last_access.store(self.clock.load(Ordering::Relaxed), Ordering::Relaxed);
        // A racy increment (no locked RMW on the hot path): a lost count
        // only blurs an eviction estimate.
        let hits = entry.hits.load(Ordering::Relaxed);
        entry.hits.store(hits.saturating_add(1), Ordering::Relaxed);
        Some((entry.value.clone(), entry.revision))
    }

    fn remove_expired(&self, key: &[u8]) {
        if let Some((_, e)) = self.map.remove_if(key, |_, e| e.expired(None)) {
            self.used.fetch_sub(e.charge, Ordering::Relaxed);
            self.counters.expirations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Caches `value` (of `size` bytes) for `key` as produced by `revision`,
    /// unless a newer revision is cached. Returns whether it was stored.
    /// A value too large for the cache is not stored, and an older cached
    /// value of the key is dropped so that it cannot be served stale.
    pub fn insert(&self, key: &[u8], value: V, size: usize, revision: u64, ttl: Option<Duration>) -> bool {
        let charge = size + key.len() + ENTRY_OVERHEAD;
        if charge > self.capacity {
            self.remove_up_to(key, revision);
            return false;
        }
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            value,
            charge,
            revision,
            last_access: AtomicU64::new(tick),
            hits: AtomicU32::new(1),
            expires_at: ttl.map(|t| Instant::now() + t),
        };
        let new_key = match self.map.entry(Arc::from(key)) {
            MapEntry::Occupied(mut o) => {
                if o.get().revision > revision {
                    return false;
                }
                let old = o.insert(entry);
                self.used.fetch_add(charge, Ordering::Relaxed);
                self.used.fetch_sub(old.charge, Ordering::Relaxed);
                None
            }
            MapEntry::Vacant(v) => {
                let key = Arc::clone(v.key());
                // Charged while the shard lock is held (`v`): once the
                // entry is visible, a remover may subtract its charge at
                // once, and `used` must already hold it or it wraps.
                self.used.fetch_add(charge, Ordering::Relaxed);
                v.insert(entry);
                Some(key)
            }
        };
        self.counters.inserts.fetch_add(1, Ordering::Relaxed);
        if let Some(k) = new_key {
            let mut ring = self.ring.lock();
            ring.push(k);
            if ring.len() > 2 * self.map.len() + 1024 {
                ring.retain(|k| self.map.get(&**k).is_some_and(|e| Arc::ptr_eq(e.key(), k)));
            }
        }
        while self.used.load(Ordering::Relaxed) > self.capacity {
            if !self.evict_one() {
                break;
            }
        }
        true
    }

    /// Removes `key` if its cached revision is at most `revision`.
    pub fn remove_up_to(&self, key: &[u8], revision: u64) {
        if let Some((_, e)) = self.map.remove_if(key, |_, e| e.revision <= revision) {
            self.used.fetch_sub(e.charge, Ordering::Relaxed);
        }
    }

    /// Removes `key` whatever its revision.
    pub fn remove(&self, key: &[u8]) {
        if let Some((_, e)) = self.map.remove(key) {
            self.used.fetch_sub(e.charge, Ordering::Relaxed);
        }
    }

    /// Evicts one entry chosen by sampling; `false` if the cache is empty.
    fn evict_one(&self) -> bool {
        let mut ring = self.ring.lock();
        let now = Instant::now();
        let mut candidates: Vec<(usize, Arc<[u8]>, policy::Score)> = Vec::with_capacity(SAMPLES);
        let mut probes = 0;
        // Stale slots found on the way are removed, so the extra probes
        // needed while no live candidate is found are paid for by inserts.
        while !ring.is_empty() && candidates.len() < SAMPLES && (probes < PROBES || candidates.is_empty()) {
            probes += 1;
            let i = fastrand::usize(..ring.len());
            let live = self
                .map
                .get(&*ring[i])
                .filter(|e| Arc::ptr_eq(e.key(), &ring[i]))
                .map(|e| self.policy.score(e.value(), now));
            match live {
                None => {
                    ring.swap_remove(i);
                    // A later candidate may have sat at the moved index.
                    candidates.retain(|c| c.0 != ring.len());
                }
                Some(score) if !candidates.iter().any(|c| c.0 == i) => {
                    candidates.push((i, Arc::clone(&ring[i]), score))
                }
                Some(_) => {}
            }
        }
        let Some(pos) = (0..candidates.len()).min_by_key(|&j| candidates[j].2) else {
            return false;
        };
        let (idx, victim, _) = candidates.swap_remove(pos);
        for (_, key, _) in &candidates {
            if let Some(e) = self.map.get(&**key) {
                policy::decay(e.value());
            }
        }
        if let Some((_, e)) = self.map.remove_if(&*victim, |k, _| Arc::ptr_eq(k, &victim)) {
            self.used.fetch_sub(e.charge, Ordering::Relaxed);
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
        if idx < ring.len() && Arc::ptr_eq(&ring[idx], &victim) {
            ring.swap_remove(idx);
        }
        true
    }

    /// Removes every expired entry; returns how many.
    pub fn purge_expired(&self) -> usize {
        let now = Some(Instant::now());
        let mut removed = 0;
        self.map.retain(|_, e| {
            let keep = !e.expired(now);
            if !keep {
                self.used.fetch_sub(e.charge, Ordering::Relaxed);
                removed += 1;
            }
            keep
        });
        self.counters.expirations.fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.map.retain(|_, e| {
            self.used.fetch_sub(e.charge, Ordering::Relaxed);
            false
        });
        self.ring.lock().clear();
    }

    /// Entries currently cached (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Counters and sizes.
    pub fn stats(&self) -> CacheStats {
        self.counters.snapshot(self.map.len(), self.used.load(Ordering::Relaxed), self.capacity)
    }
}

impl<V> std::fmt::Debug for HotCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotCache")
            .field("entries", &self.map.len())
            .field("bytes", &self.used.load(Ordering::Relaxed))
            .field("capacity", &self.capacity)
            .field("policy", &self.policy)
            .finish()
    }
}

#[cfg(test)]
mod tests;
