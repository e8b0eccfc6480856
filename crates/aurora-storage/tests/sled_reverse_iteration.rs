//! sled's reverse iteration across a node boundary whose left side holds
//! keys with long runs of 0xFF bytes (vendor/sled/AURORA-PATCH.md).
//!
//! Integer index values are stored big-endian with the sign bit flipped,
//! so -1 is `7F FF FF FF FF FF FF FF` and 0 is `80 00 …`. When sled splits
//! a node between the last negative and the first non-negative value, the
//! new node's low bound is the short separator `… 80`; stepping left of it
//! used to seek `… 7F FF FF FF FF`, which sorts below the negative values
//! near zero, and when those fill more than one node `next_back` looped
//! until it panicked ("fucked up tree traversal"). The packed index trees
//! find a key's chunk with such a step, so one of these trees made every
//! write to it fail, and the write-ahead log's replay at every open.
//!
//! This builds that shape with plain sled (the insertion orders below
//! produce the boundary; the test checks that they did) and compares every
//! reverse read with a model.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};

/// An index-entry-like key: a field prefix, the value as sortable
/// big-endian bytes, a 4-byte sequence number.
fn key(value: i64, seq: u32) -> Vec<u8> {
    let mut k = b"k\x001".to_vec();
    k.extend_from_slice(&((value as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Inserts `positives` non-negative values, then negatives (1, then 60
/// more), with values of 1000 bytes so that a node holds a few keys.
fn build(positives: i64, first_negatives: i64) -> (sled::Db, sled::Tree, BTreeMap<Vec<u8>, Vec<u8>>) {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let tree = db.open_tree("x").unwrap();
    let mut model = BTreeMap::new();
    let values = (0..positives).chain((0..first_negatives + 60).map(|i| -i - 1));
    for (seq, v) in values.enumerate() {
        let (k, val) = (key(v, seq as u32), vec![(seq % 251) as u8; 1000]);
        tree.insert(&k, val.clone()).unwrap();
        model.insert(k, val);
    }
    (db, tree, model)
}

#[test]
fn reverse_reads_across_a_boundary_below_long_ff_runs_match_a_model() {
    let mut boundaries = 0;
    for positives in 1..20 {
        for first_negatives in 1..6 {
            let (_db, tree, model) = build(positives, first_negatives);
            // sled's Debug output lists each node's bounds.
            if format!("{tree:?}").contains("lo: [107, 0, 49, 128]") {
                boundaries += 1;
            }
            let reverse: Vec<Vec<u8>> = tree.iter().rev().map(|r| r.unwrap().0.to_vec()).collect();
            let expected: Vec<Vec<u8>> = model.keys().rev().cloned().collect();
            assert_eq!(reverse, expected, "{positives} positives: a whole reverse scan");
            // A step left from every key, from just past it, and from the
            // separator itself.
            let mut probes: Vec<Vec<u8>> = model.keys().cloned().collect();
            probes.extend(model.keys().map(|k| [k.as_slice(), &[0]].concat()));
            probes.push(b"k\x001\x80".to_vec());
            for p in &probes {
                let below = tree.range::<&[u8], _>(..p.as_slice()).next_back().map(|r| r.unwrap().0.to_vec());
                assert_eq!(
                    below,
                    model.range::<[u8], _>((Unbounded, Excluded(p.as_slice()))).next_back().map(|(k, _)| k.clone())
                );
                let at_or_below = tree.range::<&[u8], _>(..=p.as_slice()).next_back().map(|r| r.unwrap().0.to_vec());
                assert_eq!(
                    at_or_below,
                    model.range::<[u8], _>((Unbounded, Included(p.as_slice()))).next_back().map(|(k, _)| k.clone())
                );
                assert_eq!(tree.get_lt(p).unwrap().map(|(k, _)| k.to_vec()), below);
            }
        }
    }
    // Without the boundary the test would prove nothing.
    assert!(boundaries > 0, "no insertion order produced a node starting at the separator 80");
}
