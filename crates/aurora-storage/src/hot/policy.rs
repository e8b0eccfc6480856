//! Eviction policies and how a sampled entry is scored.

use super::Entry;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Which sampled entry the hot cache evicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EvictionPolicy {
    /// Least recently used.
    Lru,
    /// Least frequently used (counts halve each time an entry is sampled
    /// and survives, so old popularity fades).
    Lfu,
    /// Expired entries first, then least frequently used, then least
    /// recently used.
    #[default]
    Hybrid,
}

/// Lower scores are evicted first.
pub(crate) type Score = (u8, u32, u64);

impl EvictionPolicy {
    pub(crate) fn score<V>(self, e: &Entry<V>, now: Instant) -> Score {
        let last = e.last_access.load(Ordering::Relaxed);
        let hits = e.hits.load(Ordering::Relaxed);
        match self {
            EvictionPolicy::Lru => (0, 0, last),
            EvictionPolicy::Lfu => (0, hits, last),
            EvictionPolicy::Hybrid => (u8::from(!e.expired(Some(now))), hits, last),
        }
    }
}

/// Ages a sampled survivor's access count.
pub(crate) fn decay<V>(e: &Entry<V>) {
    let hits = e.hits.load(Ordering::Relaxed);
    e.hits.store(hits / 2 + 1, Ordering::Relaxed);
}
