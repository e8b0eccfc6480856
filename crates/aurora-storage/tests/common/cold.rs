//! Opening a bare cold store (`SledStore`) in tests, and the value
//! encoding of the per-entry layouts that tests write directly.
#![allow(dead_code, clippy::unwrap_used)]

use aurora_storage::cold::SledStore;
use aurora_storage::{StorageError, Versioned};
use std::path::Path;
use std::time::{Duration, Instant};

/// Opens the cold store at `path` with a 1 MiB cache, retrying sled's
/// errors (`Backend`: its lock, still held for a moment by a store just
/// dropped or a child just killed) for up to 5 s.
pub fn try_open_cold(path: &Path) -> Result<SledStore, StorageError> {
    let started = Instant::now();
    loop {
        match SledStore::open(path, 1 << 20) {
            Err(StorageError::Backend { .. }) if started.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// [`try_open_cold`], which must succeed.
pub fn open_cold(path: &Path) -> SledStore {
    try_open_cold(path).unwrap_or_else(|e| panic!("opening the cold store at {}: {e}", path.display()))
}

/// A version in the compact value encoding of the per-entry layouts:
/// `[2 live | 3 tombstone][revision LEB128][bytes]`.
pub fn compact_value(v: &Versioned) -> Vec<u8> {
    let mut out = vec![if v.value.is_some() { 2 } else { 3 }];
    aurora_testkit::packed_chunk::write_varint(&mut out, v.revision);
    out.extend_from_slice(v.value.as_deref().unwrap_or(&[]));
    out
}
