//! Shared helpers for the job-queue tests: an on-disk database in a temp
//! dir, a manual clock, a change recorder, and polling with a real-time cap.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aurora_core::Timestamp;
use aurora_index::Collections;
use aurora_storage::{DocumentStore, Durability, StoreConfig};
use aurora_txn::{ChangeSink, Committed, Database, NoSink};
use aurora_workers::{ManualClock, WorkerConfig, Workers};
use parking_lot::Mutex;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Opens (or reopens) a database in `dir`.
pub fn open_db(dir: &Path, durability: Durability, sink: Arc<dyn ChangeSink>) -> Database {
    let config = StoreConfig { durability, ..StoreConfig::default() };
    let docs = DocumentStore::open(dir, config, Default::default()).expect("open store");
    Database::new(Collections::open(docs, Default::default()).expect("open collections"), sink)
}

/// A fresh database with no sink.
pub fn temp_db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), Durability::Balanced, Arc::new(NoSink));
    (dir, db)
}

/// A clock standing at t = 1_000 s.
pub fn clock() -> ManualClock {
    ManualClock::at(Timestamp::from_micros(1_000_000_000))
}

/// Worker settings on `clock` with `concurrency`.
pub fn config(clock: &ManualClock, concurrency: usize) -> WorkerConfig {
    WorkerConfig { shutdown_timeout: Duration::from_millis(200), ..WorkerConfig::with_concurrency(concurrency) }
        .clock(Arc::new(clock.clone()))
}

/// Workers on a fresh database with a manual clock.
pub fn workers(concurrency: usize) -> (tempfile::TempDir, ManualClock, Workers) {
    let (dir, db) = temp_db();
    let clock = clock();
    let w = Workers::new(db, config(&clock, concurrency)).unwrap();
    (dir, clock, w)
}

/// Polls `check` until it holds, for at most 10 s of real time.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Lets spawned tasks run for a moment of real time (to show that
/// something does *not* happen).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

/// Records every committed change.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Committed>>);

impl ChangeSink for Recorder {
    fn publish(&self, c: Committed) {
        self.0.lock().push(c);
    }
}
