//! Databases in the first sled layout (every key in the default tree), for
//! the tests of the move into trees on a nearly full disk.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Bytes of the files under `dir`, recursively.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| if e.path().is_dir() { dir_bytes(&e.path()) } else { e.metadata().map_or(0, |m| m.len()) })
                .sum()
        })
        .unwrap_or(0)
}

/// A first-layout database (every key in sled's default tree, values
/// `[1][revision u64 BE][1][bytes]`), an empty WAL after its checkpoint.
pub fn write_first_layout(db: &Path, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let cold = db.join("cold");
    let sled = sled::Config::new().path(&cold).flush_every_ms(None).open().unwrap();
    for (k, v) in model {
        let mut value = vec![1u8];
        value.extend_from_slice(&1u64.to_be_bytes());
        value.push(1);
        value.extend_from_slice(v);
        sled.insert([&[1u8][..], k].concat(), value).unwrap();
    }
    sled.insert(b"\x00checkpoint", &1u64.to_be_bytes()).unwrap();
    sled.flush().unwrap();
    drop(sled);
    std::fs::create_dir_all(db.join("wal")).unwrap();
    std::fs::write(db.join("wal").join(format!("{:020}.log", 2)), b"").unwrap();
    std::thread::sleep(Duration::from_millis(200));
}
