//! sled itself under a database's cold store, for tests that read or
//! damage what Aurora's sled backend wrote (a key in the wrong tree, the
//! first layout, the count of trees).

use std::path::Path;
use std::time::{Duration, Instant};

/// Opens the sled database at `path` (a database folder's `cold/`) with no
/// background flusher, retrying for up to 5 s while a store dropped a
/// moment ago still holds sled's file lock (sled releases it from a
/// background thread).
///
/// # Panics
/// When sled still refuses after 5 s: this is a test helper.
pub fn open(path: &Path) -> sled::Db {
    let started = Instant::now();
    loop {
        match sled::Config::new().path(path).flush_every_ms(None).open() {
            Ok(db) => return db,
            Err(_) if started.elapsed() < Duration::from_secs(5) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("opening sled at {}: {e}", path.display()),
        }
    }
}
