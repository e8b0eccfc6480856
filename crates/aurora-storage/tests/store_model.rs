//! Model test: random puts, deletes, conditional batches, syncs,
//! checkpoints, clean reopens and simulated process kills against a
//! `BTreeMap` model, in each durability mode, checking each mode's loss rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::{Batch, CommitOutcome, Durability, StorageError, Store};
use proptest::prelude::*;
use std::collections::BTreeMap;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Batch(Vec<(u8, Option<u8>)>),
    /// A put conditioned on the key's current revision (or on a stale one).
    Cas(u8, u8, bool),
    GetAt(u8, u8),
    Sync,
    Checkpoint,
    Reopen,
    Crash,
    /// Take a snapshot (at most three are kept; the oldest is dropped).
    Snapshot,
    /// Drop the oldest snapshot.
    DropSnapshot,
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k % 12]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        3 => any::<u8>().prop_map(Op::Delete),
        3 => prop::collection::vec((any::<u8>(), prop::option::of(any::<u8>())), 0..5).prop_map(Op::Batch),
        2 => (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(k, v, s)| Op::Cas(k, v, s)),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(k, r)| Op::GetAt(k, r)),
        1 => Just(Op::Sync),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
        2 => Just(Op::Crash),
        2 => Just(Op::Snapshot),
        1 => Just(Op::DropSnapshot),
    ]
}

struct Harness {
    mode: Durability,
    root: tempfile::TempDir,
    gen: usize,
    store: Option<Store>,
    /// `history[r]` is the state after revision `r`.
    history: Vec<Model>,
    /// Revisions at or below this must survive a kill in `Buffered` mode.
    floor: u64,
    /// Open snapshots; each must keep reading `history[its revision]`.
    snapshots: Vec<aurora_storage::Snapshot>,
}

impl Harness {
    fn new(mode: Durability) -> Self {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path().join("0"), common::config(mode)).unwrap();
        Self { mode, root, gen: 0, store: Some(store), history: vec![Model::new()], floor: 0, snapshots: Vec::new() }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    fn model(&self) -> &Model {
        self.history.last().unwrap()
    }

    fn commit(&mut self, batch: Batch) {
        let mut next = self.model().clone();
        let outcome = self.store().commit(batch.clone()).unwrap();
        match outcome {
            CommitOutcome::Committed(rev) => {
                for op in batch.ops() {
                    match op.value() {
                        Some(v) => next.insert(op.key().to_vec(), v.to_vec()),
                        None => next.remove(op.key()),
                    };
                }
                self.history.push(next);
                assert_eq!(rev as usize, self.history.len() - 1, "revisions are dense");
            }
            CommitOutcome::ConditionFailed { .. } => {}
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Put(k, v) => {
                let rev = self.store().put(key(k), vec![v]).unwrap();
                let mut next = self.model().clone();
                next.insert(key(k), vec![v]);
                self.history.push(next);
                assert_eq!(rev as usize, self.history.len() - 1);
            }
            Op::Delete(k) => {
                let mut b = Batch::new();
                b.delete(key(k));
                self.commit(b);
            }
            Op::Batch(ops) => {
                let mut b = Batch::new();
                for (k, v) in ops {
                    match v {
                        Some(v) => b.put(key(k), vec![v]),
                        None => b.delete(key(k)),
                    };
                }
                self.commit(b);
            }
            Op::Cas(k, v, stale) => {
                let current = self.store().get_versioned(&key(k)).unwrap().map_or(0, |(r, _)| r);
                let expected = if stale { current + 1 } else { current };
                let mut b = Batch::new();
                b.require_revision(key(k), expected).put(key(k), vec![v]);
                let before = self.history.len();
                self.commit(b);
                assert_eq!(self.history.len() > before, !stale, "CAS with stale={stale}");
            }
            Op::GetAt(k, r) => {
                let rev = u64::from(r) % (self.history.len() as u64 + 2);
                let current = self.history.len() as u64 - 1;
                match self.store().get_at(&key(k), rev) {
                    Ok(v) => assert_eq!(v.as_ref(), self.history[rev as usize].get(&key(k)), "get_at({k}, {rev})"),
                    Err(StorageError::FutureRevision { .. }) => assert!(rev > current),
                    Err(StorageError::Compacted { .. }) => assert!(rev <= current),
                    Err(e) => panic!("get_at: {e}"),
                }
            }
            Op::Sync => {
                let durable = self.store().sync().unwrap();
                assert_eq!(durable, self.store().revision());
                self.floor = durable;
            }
            Op::Checkpoint => self.store().checkpoint().unwrap(),
            Op::Snapshot => {
                let snap = self.store().snapshot().unwrap();
                assert_eq!(snap.revision() as usize, self.history.len() - 1);
                self.snapshots.push(snap);
                if self.snapshots.len() > 3 {
                    self.snapshots.remove(0);
                }
            }
            Op::DropSnapshot => {
                if !self.snapshots.is_empty() {
                    self.snapshots.remove(0);
                }
            }
            Op::Reopen => {
                self.snapshots.clear();
                self.store.take().unwrap().close().unwrap();
                self.store = Some(Store::open(self.dir(), common::config(self.mode)).unwrap());
                self.floor = self.history.len() as u64 - 1;
                self.check_exact();
            }
            Op::Crash => {
                self.snapshots.clear();
                let from = self.dir();
                self.gen += 1;
                common::copy_dir(&from, &self.dir());
                // The original is closed normally; the copy is what a kill left.
                self.store.take().unwrap().close().unwrap();
                let store = Store::open(self.dir(), common::config(self.mode)).unwrap();
                let rev = store.revision();
                self.store = Some(store);
                match self.mode {
                    Durability::Strict | Durability::Balanced => self.check_exact(),
                    Durability::Buffered => {
                        assert!(
                            rev >= self.floor,
                            "lost revision {} at or below the durable floor {}",
                            rev,
                            self.floor
                        );
                        assert!((rev as usize) < self.history.len());
                        self.history.truncate(rev as usize + 1);
                        self.check_exact();
                        self.floor = rev;
                    }
                }
            }
        }
    }

    fn dir(&self) -> std::path::PathBuf {
        self.root.path().join(self.gen.to_string())
    }

    /// Every open snapshot still reads exactly the state at its revision.
    fn check_snapshots(&self) {
        for snap in &self.snapshots {
            let want = &self.history[snap.revision() as usize];
            let got: Model = snap.scan_prefix(b"").unwrap().into_iter().collect();
            assert_eq!(&got, want, "snapshot at revision {}", snap.revision());
            for k in 0..12u8 {
                assert_eq!(snap.get(&key(k)).unwrap().as_ref(), want.get(&key(k)), "snapshot get k{k}");
            }
        }
    }

    fn check_exact(&self) {
        let got: Model = common::dump(self.store()).into_iter().collect();
        assert_eq!(&got, self.model(), "store differs from model at revision {}", self.store().revision());
        assert_eq!(self.store().revision() as usize, self.history.len() - 1);
    }
}

fn run(mode: Durability, ops: Vec<Op>) {
    let mut h = Harness::new(mode);
    for op in ops {
        h.apply(op);
        let got: Model = common::dump(h.store()).into_iter().collect();
        assert_eq!(&got, h.model());
        h.check_snapshots();
    }
    h.apply(Op::Crash);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(24), ..ProptestConfig::default() })]

    #[test]
    fn strict_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        run(Durability::Strict, ops);
    }

    #[test]
    fn balanced_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        run(Durability::Balanced, ops);
    }

    #[test]
    fn buffered_recovers_a_prefix(ops in prop::collection::vec(op(), 1..40)) {
        run(Durability::Buffered, ops);
    }
}
