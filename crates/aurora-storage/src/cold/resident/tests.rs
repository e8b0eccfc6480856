//! The resident ranges against the backend they mirror: a model test of
//! scans after random writes, deletes and purges (with room for everything,
//! and with a budget that drops the range midway), and the load / drop
//! life of one range.

use super::*;
use crate::cold::sled_store::SledStore;
use proptest::prelude::*;

/// One step of the model test.
#[derive(Debug, Clone)]
enum Op {
    /// Writes (key byte under `a` or `b`, a value or a tombstone), one revision.
    Apply(Vec<(bool, u8, Option<u8>)>),
    /// Purges tombstones up to this many revisions back.
    Purge(u64),
    /// Scans `lo..=hi` under a prefix, forwards or backwards, reading `take` items.
    Scan { under_a: bool, lo: u8, hi: u8, descending: bool, take: usize },
    /// A scan that starts, writes land, then it goes on.
    Interleaved { lo: u8, writes: Vec<(u8, Option<u8>)> },
}

fn key(under_a: bool, k: u8) -> Vec<u8> {
    vec![if under_a { b'a' } else { b'b' }, k]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec((any::<bool>(), 0u8..24, proptest::option::of(any::<u8>())), 1..12).prop_map(Op::Apply),
        1 => (0u64..5).prop_map(Op::Purge),
        4 => (any::<bool>(), 0u8..26, 0u8..26, any::<bool>(), 0usize..100)
            .prop_map(|(under_a, lo, hi, descending, take)| Op::Scan { under_a, lo, hi, descending, take }),
        1 => (0u8..24, proptest::collection::vec((0u8..24, proptest::option::of(any::<u8>())), 1..8))
            .prop_map(|(lo, writes)| Op::Interleaved { lo, writes }),
    ]
}

fn scan(store: &dyn ColdStore, start: Bound<&[u8]>, end: Bound<&[u8]>, descending: bool) -> ScanIter {
    if descending {
        store.scan_rev(start, end)
    } else {
        store.scan(start, end)
    }
}

fn run(ops: Vec<Op>, budget: usize) {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn ColdStore> = Arc::new(SledStore::open(dir.path(), 1 << 20).unwrap());
    let ranges = Arc::new(ResidentRanges::new(budget));
    ranges.register(b"a");
    let resident = Resident::new(Arc::clone(&inner), Arc::clone(&ranges));
    let revision = std::cell::Cell::new(0u64);
    let apply = |writes: Vec<(Vec<u8>, Option<u8>)>| {
        let revision = revision.get() + 1;
        let writes: Vec<(Vec<u8>, Versioned)> = writes
            .into_iter()
            .map(|(k, v)| (k, Versioned { revision, value: v.map(|b| vec![b; usize::from(b % 7)]) }))
            .collect();
        resident.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        revision
    };
    let apply = |writes| revision.set(apply(writes));
    for op in ops {
        match op {
            Op::Apply(writes) => {
                apply(writes.into_iter().map(|(a, k, v)| (key(a, k), v)).collect());
            }
            Op::Purge(back) => {
                let horizon = revision.get().saturating_sub(back);
                resident.purge_tombstones(horizon).unwrap();
            }
            Op::Scan { under_a, lo, hi, descending, take } => {
                let (lo, hi) = (key(under_a, lo), key(under_a, hi));
                let got: Vec<_> =
                    scan(&resident, Bound::Included(&lo), Bound::Excluded(&hi), descending).take(take).collect();
                let want: Vec<_> =
                    scan(inner.as_ref(), Bound::Included(&lo), Bound::Excluded(&hi), descending).take(take).collect();
                assert_eq!(format!("{got:?}"), format!("{want:?}"), "{lo:?}..{hi:?} descending {descending}");
                // The whole prefix, as an index read bounds it.
                let all: Vec<_> = scan(&resident, Bound::Included(b"a"), Bound::Excluded(b"b"), descending).collect();
                let want: Vec<_> =
                    scan(inner.as_ref(), Bound::Included(b"a"), Bound::Excluded(b"b"), descending).collect();
                assert_eq!(format!("{all:?}"), format!("{want:?}"));
            }
            Op::Interleaved { lo, writes } => {
                // Writes landing while a resident scan is under way: the
                // scan sees each key once, in order, as the backend would
                // have given it at some point (a lazy scan is not
                // point-in-time; the snapshot layer above resolves that).
                let start = key(true, lo);
                let mut it = resident.scan(Bound::Included(&start), Bound::Excluded(b"b"));
                let first = it.next().map(|r| r.unwrap().0);
                apply(writes.into_iter().map(|(k, v)| (key(true, k), v)).collect());
                let rest: Vec<Vec<u8>> = it.map(|r| r.unwrap().0).collect();
                let keys: Vec<Vec<u8>> = first.into_iter().chain(rest).collect();
                assert!(keys.windows(2).all(|w| w[0] < w[1]), "in order, each once: {keys:?}");
                assert!(keys.iter().all(|k| k.as_slice() >= start.as_slice() && k.starts_with(b"a")));
            }
        }
        assert!(ranges.used_bytes() <= budget, "within the budget");
    }
    // Whatever happened, a final full read agrees.
    for descending in [false, true] {
        let got: Vec<_> = scan(&resident, Bound::Included(b"a"), Bound::Excluded(b"b"), descending).collect();
        let want: Vec<_> = scan(inner.as_ref(), Bound::Included(b"a"), Bound::Excluded(b"b"), descending).collect();
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Scans through the resident layer equal the backend's, whatever the
    /// writes, deletes and purges between them: with room for everything,
    /// and with a budget so small the range is dropped along the way (then
    /// scans, including one under way, carry on from the backend).
    #[test]
    fn resident_scans_equal_the_backend(ops in proptest::collection::vec(op(), 1..40), tight in any::<bool>()) {
        run(ops, if tight { 6 * (ENTRY_OVERHEAD + 8) } else { 1 << 20 });
    }
}

#[test]
fn a_range_is_loaded_by_its_first_scan_and_dropped_when_it_outgrows_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn ColdStore> = Arc::new(SledStore::open(dir.path(), 1 << 20).unwrap());
    let ranges = Arc::new(ResidentRanges::new(10 * (ENTRY_OVERHEAD + 2)));
    let resident = Resident::new(Arc::clone(&inner), Arc::clone(&ranges));
    let put = |k: u8, rev: u64| {
        let v = Versioned { revision: rev, value: Some(Vec::new()) };
        resident.apply(&mut std::iter::once((&[b'x', k][..], &v))).unwrap();
    };
    for k in 0..5 {
        put(k, 1);
    }
    ranges.register(b"x");
    ranges.register(b"xy"); // inside a registered prefix: nothing
    assert_eq!(ranges.used_bytes(), 0, "registered, not loaded");
    assert_eq!(resident.scan(Bound::Included(b"x"), Bound::Excluded(b"y")).count(), 5);
    assert_eq!(ranges.used_bytes(), 5 * (ENTRY_OVERHEAD + 2), "loaded by the first scan");
    // A scan outside the prefix goes to the backend and loads nothing.
    assert_eq!(resident.scan(Bound::Unbounded, Bound::Unbounded).count(), 5);
    let mut under_way = resident.scan_rev(Bound::Included(b"x"), Bound::Excluded(b"y"));
    assert_eq!(under_way.next().unwrap().unwrap().0, vec![b'x', 4]);
    for k in 5..12 {
        put(k, 2);
    }
    assert_eq!(ranges.used_bytes(), 0, "outgrew the budget: dropped");
    let rest: Vec<u8> = under_way.map(|r| r.unwrap().0[1]).collect();
    assert_eq!(rest, vec![3, 2, 1, 0], "the scan under way finishes, in order");
    assert_eq!(resident.scan(Bound::Included(b"x"), Bound::Excluded(b"y")).count(), 12);
    assert_eq!(ranges.used_bytes(), 0, "too big: not loaded again");
}
