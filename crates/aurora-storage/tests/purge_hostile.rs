//! Hostile review of the targeted tombstone purge
//! (`ColdStore::purge_tombstones_of`): after the first purge since open,
//! every tombstone older than the horizon must still go at some purge, and
//! no tombstone a pinned snapshot needs may go.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_storage::cold::{ColdStore, SledStore};
use aurora_storage::{Batch, CommitOutcome, Store, StoreConfig};
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn open(dir: &std::path::Path) -> (Store, Arc<SledStore>) {
    let slot: Arc<Mutex<Option<Arc<SledStore>>>> = Arc::default();
    let keep = Arc::clone(&slot);
    let config = StoreConfig {
        tombstone_purge_threshold: 2,
        checkpoint_interval: Duration::from_secs(3600),
        ..StoreConfig::default()
    };
    let store = Store::open_with_backend(dir, config, &mut move |path, cache| {
        let sled = Arc::new(SledStore::open(path, cache)?);
        *keep.lock().unwrap() = Some(Arc::clone(&sled));
        // Sled, shared with the test so it can look at the cold store.
        Ok(sled as Arc<dyn ColdStore>)
    })
    .unwrap();
    let sled = slot.lock().unwrap().clone().unwrap();
    (store, sled)
}

fn tombstones(cold: &SledStore) -> Vec<Vec<u8>> {
    cold.scan(Bound::Unbounded, Bound::Unbounded)
        .map(Result::unwrap)
        .filter(|(_, v)| v.value.is_none())
        .map(|(k, _)| k)
        .collect()
}

fn delete(store: &Store, key: &[u8]) {
    let mut b = Batch::new();
    b.delete(key.to_vec());
    assert!(matches!(store.commit(b).unwrap(), CommitOutcome::Committed(_)));
}

/// Writes k1..k4, deletes k1 and k2 while a snapshot pins them through
/// the first purge since open (a full scan, held back: both stay), then
/// drops the snapshot and deletes k3 and k4 with a checkpoint after.
fn pin_then_delete_four(store: &Store, cold: &SledStore) {
    let mut b = Batch::new();
    for k in [b"k1", b"k2", b"k3", b"k4"] {
        b.put(k.to_vec(), b"v".to_vec());
    }
    assert!(matches!(store.commit(b).unwrap(), CommitOutcome::Committed(_)));
    store.checkpoint().unwrap();
    let snapshot = store.snapshot().unwrap();
    delete(store, b"k1");
    delete(store, b"k2");
    // The first purge since open: a full scan, held back by the snapshot.
    store.checkpoint().unwrap();
    assert_eq!(tombstones(cold), [b"k1".to_vec(), b"k2".to_vec()], "the snapshot still needs them");
    assert_eq!(snapshot.get(b"k1").unwrap().as_deref(), Some(&b"v"[..]), "the snapshot reads the old value");
    drop(snapshot);
    delete(store, b"k3");
    delete(store, b"k4");
    store.checkpoint().unwrap();
    assert!(store.get(b"k1").unwrap().is_none() && store.get(b"k4").unwrap().is_none());
}

#[test]
fn a_pinned_snapshot_keeps_the_tombstones_it_needs_and_later_ones_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cold) = open(dir.path());
    pin_then_delete_four(&store, &cold);
    let left = tombstones(&cold);
    assert!(!left.contains(&b"k3".to_vec()) && !left.contains(&b"k4".to_vec()), "targeted purge: {left:?}");
    store.close().unwrap();
    drop(store);
    drop(cold);
    // The first purge after a reopen scans: nothing is left.
    let (store, cold) = open(dir.path());
    delete(&store, b"k5");
    delete(&store, b"k6");
    store.checkpoint().unwrap();
    assert_eq!(tombstones(&cold), Vec::<Vec<u8>>::new());
    assert!(store.get(b"k2").unwrap().is_none());
}

#[test]
fn tombstones_held_back_by_the_first_purge_are_purged_by_a_later_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cold) = open(dir.path());
    pin_then_delete_four(&store, &cold);
    // k3 and k4 are purged by the targeted purge; k1 and k2 were applied
    // before the first purge started the list and were above its horizon.
    // More purges, with nothing pinned: k1 and k2 stay anyway.
    for round in 0..3 {
        delete(&store, format!("x{round}a").as_bytes());
        delete(&store, format!("x{round}b").as_bytes());
        store.checkpoint().unwrap();
    }
    assert_eq!(tombstones(&cold), Vec::<Vec<u8>>::new(), "every tombstone below the horizon is purged");
}
