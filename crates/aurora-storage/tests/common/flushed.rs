//! The check after a cold store was killed mid-write: it holds what the
//! last flush held, or something written after it — nothing older, no key
//! lost — and its forward scans, reverse scans and point reads agree.
#![allow(dead_code, clippy::unwrap_used)]

use aurora_storage::cold::SledStore;
use aurora_storage::{ColdStore, Versioned};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// Checks `s`, reopened after a kill, against steps `1..=flushed` (all
/// flushed) and the `in_flight` steps after them (any of their versions
/// may have landed: apply is not atomic, and the WAL above replays what
/// comes after a checkpoint). `steps(n)` is step `n`'s run as applied; a
/// run's last version of a key is the one a packed tree keeps. `label`
/// names the round in failures. Returns the keys stored.
pub fn check_flushed_prefix(
    s: &SledStore,
    flushed: u64,
    in_flight: u64,
    steps: impl Fn(u64) -> Vec<(Vec<u8>, Versioned)>,
    label: &str,
) -> usize {
    let mut model: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for n in 1..=flushed {
        for (k, v) in steps(n) {
            model.insert(k, v.value);
        }
    }
    let mut later: BTreeMap<Vec<u8>, BTreeSet<Option<Vec<u8>>>> = BTreeMap::new();
    for n in flushed + 1..=flushed + in_flight {
        let latest: BTreeMap<Vec<u8>, Option<Vec<u8>>> = steps(n).into_iter().map(|(k, v)| (k, v.value)).collect();
        for (k, v) in latest {
            later.entry(k).or_default().insert(v);
        }
    }
    let stored: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
        s.scan(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap()).map(|(k, v)| (k, v.value)).collect();
    let mut reverse: Vec<(Vec<u8>, Option<Vec<u8>>)> =
        s.scan_rev(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap()).map(|(k, v)| (k, v.value)).collect();
    reverse.reverse();
    assert_eq!(reverse, stored.clone().into_iter().collect::<Vec<_>>(), "{label}: reverse scan");
    let keys: BTreeSet<&Vec<u8>> = model.keys().chain(stored.keys()).collect();
    for k in keys {
        let now = stored.get(k).cloned().flatten();
        let then = model.get(k).cloned().flatten();
        let allowed = now == then || later.get(k).is_some_and(|vs| vs.contains(&now));
        assert!(allowed, "{label}: key {k:?} holds {now:?}, flushed {then:?}, later {:?}", later.get(k));
        assert_eq!(s.get(k).unwrap().and_then(|v| v.value), now, "{label}: point read of {k:?}");
    }
    stored.len()
}
