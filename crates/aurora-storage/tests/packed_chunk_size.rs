//! The size of a packed index chunk (`sled_store/packed.rs`): appends past
//! a chunk's last entry (the fast path that does not decode the chunk) stop
//! at the chunk's byte limit as well as its entry limit. A chunk holding a
//! few large entries used to take up to 31 more appended ones, and grow to
//! about twice `CHUNK_BYTES` (8 KiB) — every later write into it rewrote
//! those bytes in sled's log.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use aurora_storage::{ColdStore, Versioned};
use common::cold::open_cold;

/// 8 KiB, as `packed::CHUNK_BYTES`.
const CHUNK_BYTES: usize = 8 << 10;

fn key(i: u32) -> Vec<u8> {
    [b"xa\0n\0".as_slice(), &i.to_be_bytes()].concat()
}

#[test]
fn appends_stop_at_the_chunks_byte_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_cold(dir.path());
    let write = |keys: std::ops::Range<u32>, bytes: usize, revision: u64| {
        let writes: Vec<(Vec<u8>, Versioned)> =
            keys.map(|i| (key(i), Versioned { revision, value: Some(vec![i as u8; bytes]) })).collect();
        s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
    };
    // A chunk of three large entries (the merge path: 3 x 2 600 bytes)...
    write(0..3, 2600, 1);
    // ...then appends of entries small enough for the fast path (200 bytes
    // each), in runs as a bulk load makes them.
    for (n, start) in (3..200).step_by(29).enumerate() {
        write(start..(start + 29).min(200), 200, 2 + n as u64);
    }
    s.flush().unwrap();
    drop(s);
    let db = aurora_testkit::raw_sled::open(dir.path());
    let tree = db.open_tree(b"pxa\0").unwrap();
    let sizes: Vec<usize> = tree.iter().map(|r| r.unwrap().1.len()).collect();
    assert!(sizes.len() > 1, "the entries span several chunks: {sizes:?}");
    // The limit, plus each entry's few bytes of framing (lengths, revision).
    let bound = CHUNK_BYTES + 32 * 8;
    assert!(sizes.iter().all(|&n| n <= bound), "a chunk past {bound} bytes: {sizes:?}");
}
