//! A checkpoint after applied writes hands the allocator's free memory back
//! to the OS (`allocator.rs`): memory freed between live allocations —
//! what sled's replaced pages and written I/O buffers leave behind — stops
//! counting as resident. One test in its own process: it reads the
//! process's resident size.
#![allow(clippy::unwrap_used)]

use aurora_storage::{Store, StoreConfig};

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib << 10
}

/// 64 MiB in 16 KiB blocks, each followed by a small allocation that stays:
/// once the blocks are dropped their pages are free inside the arena but
/// never at its top, so `free` alone keeps them resident.
fn fragment() -> Vec<Vec<u8>> {
    let mut pins = Vec::new();
    let mut blocks = Vec::new();
    for i in 0..4096 {
        blocks.push(vec![i as u8 | 1; 16 << 10]);
        pins.push(vec![1u8; 32]);
    }
    drop(blocks);
    pins
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_checkpoint_after_applied_writes_releases_the_allocators_free_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let pins = fragment();
    let before = resident_bytes();
    store.put(b"k".to_vec(), b"v".to_vec()).unwrap();
    store.checkpoint().unwrap();
    let after = resident_bytes();
    assert!(
        before.saturating_sub(after) >= 32 << 20,
        "resident {} MiB before the checkpoint, {} MiB after: the 64 MiB freed were not handed back",
        before >> 20,
        after >> 20
    );
    assert_eq!(pins.len(), 4096);
    store.close().unwrap();
}
