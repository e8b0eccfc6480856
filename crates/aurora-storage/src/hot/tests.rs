//! Tests of the hot cache.

use super::*;

fn cache(cap_entries: usize, policy: EvictionPolicy) -> HotCache<u64> {
    // Eviction samples entries at random (`fastrand`'s thread-local
    // generator, on the thread that inserts): seeded, the policy tests are
    // exact instead of failing a few runs in a hundred (sampling 5 of 50
    // entries half of them expired finds none expired 3–14 % of the time).
    fastrand::seed(0x5eed);
    // Keys are 8 bytes, values declared as 0 bytes.
    HotCache::new(cap_entries * (8 + ENTRY_OVERHEAD), policy)
}

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

#[test]
fn stays_within_capacity_and_counts() {
    let c = cache(100, EvictionPolicy::Lru);
    for i in 0..1000 {
        assert!(c.insert(&key(i), i, 0, 1, None));
        assert!(c.stats().bytes <= c.stats().capacity);
    }
    let s = c.stats();
    assert_eq!(s.entries, 100);
    assert_eq!(s.evictions, 900);
    assert_eq!(s.inserts, 1000);
    assert_eq!(s.bytes, 100 * (8 + ENTRY_OVERHEAD));
}

#[test]
fn lru_keeps_recently_read_entries() {
    let c = cache(100, EvictionPolicy::Lru);
    for i in 0..100 {
        c.insert(&key(i), i, 0, 1, None);
    }
    // Insert new keys while reading keys 0..10 each round: they stay hot.
    for i in 100..400 {
        for hot in 0..10 {
            assert_eq!(c.get(&key(hot)), Some(hot), "hot key {hot} evicted at {i}");
        }
        c.insert(&key(i), i, 0, 1, None);
    }
}

#[test]
fn lfu_keeps_frequently_read_entries() {
    let c = cache(100, EvictionPolicy::Lfu);
    for i in 0..100 {
        c.insert(&key(i), i, 0, 1, None);
    }
    for _ in 0..50 {
        for hot in 0..10 {
            c.get(&key(hot));
        }
    }
    for i in 100..200 {
        c.insert(&key(i), i, 0, 1, None);
    }
    let kept = (0..10).filter(|h| c.peek(&key(*h)).is_some()).count();
    assert!(kept >= 9, "only {kept} of 10 popular keys survived");
}

#[test]
fn hybrid_evicts_expired_first() {
    let c = cache(50, EvictionPolicy::Hybrid);
    for i in 0..25 {
        c.insert(&key(i), i, 0, 1, Some(Duration::from_millis(1)));
    }
    for i in 25..50 {
        c.insert(&key(i), i, 0, 1, None);
    }
    std::thread::sleep(Duration::from_millis(5));
    for i in 50..60 {
        c.insert(&key(i), i, 0, 1, None);
    }
    let unexpired_kept = (25..60).filter(|i| c.peek(&key(*i)).is_some()).count();
    assert!(unexpired_kept >= 33, "expired entries should go first, kept {unexpired_kept} of 35");
}

#[test]
fn ttl_expires_on_read_and_purge() {
    let c = cache(10, EvictionPolicy::Hybrid);
    c.insert(b"a", 1, 0, 1, Some(Duration::from_millis(1)));
    c.insert(b"b", 2, 0, 1, Some(Duration::from_millis(1)));
    c.insert(b"c", 3, 0, 1, None);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(c.get(b"a"), None);
    assert_eq!(c.purge_expired(), 1);
    assert_eq!(c.get(b"c"), Some(3));
    let s = c.stats();
    assert_eq!((s.entries, s.expirations, s.hits, s.misses), (1, 2, 1, 1));
}

#[test]
fn revisions_never_go_backwards() {
    let c = cache(10, EvictionPolicy::Lru);
    assert!(c.insert(b"k", 5, 0, 5, None));
    assert!(!c.insert(b"k", 4, 0, 4, None));
    assert_eq!(c.get(b"k"), Some(5));
    assert!(c.insert(b"k", 6, 0, 6, None));
    c.remove_up_to(b"k", 5);
    assert_eq!(c.get(b"k"), Some(6));
    // A value too big to cache drops the older cached one.
    assert!(!c.insert(b"k", 7, 1 << 20, 7, None));
    assert_eq!(c.get(b"k"), None);
}

#[test]
fn concurrent_use_keeps_accounting_exact() {
    let c = Arc::new(cache(200, EvictionPolicy::Hybrid));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for i in 0..5000u64 {
                    let k = key((i * 7 + t) % 1000);
                    if i % 3 == 0 {
                        c.remove(&k);
                    } else {
                        c.insert(&k, i, 0, i, None);
                        c.get(&k);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = c.stats();
    assert!(s.bytes <= s.capacity, "{s:?}");
    assert_eq!(s.bytes, s.entries * (8 + ENTRY_OVERHEAD), "{s:?}");
}

#[test]
fn the_entry_charge_covers_the_table_at_its_largest() {
    // A slot of the map for a pointer-sized value (the document cache's
    // `Option<Arc<Document>>`) and its control byte, at 32/7 buckets per
    // entry (hashbrown under eviction churn); the key block's counts,
    // allocator header and rounding; two ring slots.
    let slot = std::mem::size_of::<(Arc<[u8]>, Entry<Option<Arc<u64>>>)>() + 1;
    let table = slot * 32 / 7;
    let key_block = 2 * std::mem::size_of::<usize>() + 8 + 15;
    let ring = 2 * std::mem::size_of::<Arc<[u8]>>();
    assert!(
        ENTRY_OVERHEAD >= table + key_block + ring,
        "{ENTRY_OVERHEAD} charged per entry, {table} + {key_block} + {ring} held at most"
    );
}
