//! Conditions on watched keys (`Batch::require_watched_revision`, decided
//! from revisions the commit leader keeps in memory) decide exactly as a
//! read would: concurrent writers grouped into shared commits, each
//! conditioned on the revision of a `schema` key it read, while other
//! writers change, delete and re-create that key; across a reopen too.
//! Rounds: `AURORA_WATCHED_ROUNDS` (default 400 commits per writer).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::{Batch, Durability, Revision, Store};
use std::sync::{Arc, Mutex};

fn rounds() -> u64 {
    std::env::var("AURORA_WATCHED_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(400)
}

/// What the writers committed: data commits with the schema revision they
/// required, and the schema's writes (revision, live after it or not).
#[derive(Default)]
struct Log {
    data: Vec<(Revision, Revision)>,
    schema: Vec<(Revision, bool)>,
}

/// The schema's live revision just before `at` according to its writes
/// (`opened`: its revision when the store was opened, 0 if absent).
fn schema_before(log: &Log, at: Revision, opened: Revision) -> Revision {
    log.schema.iter().filter(|(r, _)| *r < at).max().map_or(opened, |&(r, live)| if live { r } else { 0 })
}

fn run(store: &Store, log: &Arc<Mutex<Log>>, opened: Revision) {
    let threads: Vec<_> = (0..6u64)
        .map(|t| {
            let (store, log) = (store.clone(), Arc::clone(log));
            std::thread::spawn(move || {
                for i in 0..rounds() {
                    let seen = store.get_versioned(b"schema").unwrap().map_or(0, |(r, _)| r);
                    let mut b = Batch::new();
                    b.require_watched_revision(b"schema".to_vec(), seen);
                    let schema_write = t == 0 && i % 7 == 3;
                    let delete = schema_write && i % 3 == 0;
                    match (schema_write, delete) {
                        (true, true) => b.delete(b"schema".to_vec()),
                        (true, false) => b.put(b"schema".to_vec(), i.to_be_bytes().to_vec()),
                        _ => b.put(format!("doc/{t}/{i}").into_bytes(), b"x".to_vec()),
                    };
                    if let Some(rev) = store.commit(b).unwrap().revision() {
                        let mut log = log.lock().unwrap();
                        if schema_write {
                            log.schema.push((rev, !delete));
                        } else {
                            log.data.push((rev, seen));
                        }
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|h| h.join().unwrap());
    let log = log.lock().unwrap();
    assert!(!log.data.is_empty() && !log.schema.is_empty());
    for &(rev, required) in &log.data {
        assert_eq!(schema_before(&log, rev, opened), required, "commit {rev} required the schema's live revision");
    }
}

#[test]
fn watched_conditions_decide_as_reads_under_concurrent_schema_changes_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), common::config(Durability::Strict)).unwrap();
    store.put(b"schema", b"v0").unwrap();
    let opened = store.get_versioned(b"schema").unwrap().unwrap().0;
    run(&store, &Arc::new(Mutex::new(Log::default())), opened);
    let metrics = store.metrics();
    assert!(metrics.watched_conditions > 0, "decided from memory");
    assert!(metrics.largest_commit_group > 1, "commits were grouped");
    // Refused: a stale revision, whichever way it is decided.
    let current = store.get_versioned(b"schema").unwrap().map_or(0, |(r, _)| r);
    let mut stale = Batch::new();
    stale.require_watched_revision(b"schema".to_vec(), current + 1).put(b"late".to_vec(), b"x".to_vec());
    assert!(store.commit(stale).unwrap().revision().is_none());
    store.close().unwrap();

    // After a reopen the key is read again once, then watched.
    let store = Store::open(dir.path(), common::config(Durability::Strict)).unwrap();
    let opened = store.get_versioned(b"schema").unwrap().map_or(0, |(r, _)| r);
    assert_eq!(opened, current);
    run(&store, &Arc::new(Mutex::new(Log::default())), opened);
    store.close().unwrap();
}
