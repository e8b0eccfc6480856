//! Where a `Strict` write waits for its fsync: on the caller's own thread
//! when that thread does nothing but wait for it (a multi-thread runtime's
//! `block_on`: no hand-off to the blocking pool and back), and never on a
//! thread that runs tasks (a runtime worker, or a current-thread runtime's
//! `block_on`, whose other tasks would stall). The commit's change sink
//! runs on the thread that committed (the commit leader — a lone writer
//! leads its own commit), so it tells which thread that was. A writer
//! killed with SIGKILL while committing that way loses no acknowledged
//! write (rounds: `AURORA_CRASH_ROUNDS`, default 4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, ChangeSink, Committed, Durability, FieldDefinition};
use aurora_testkit::crash::{jitter, CrashTest};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

/// The thread each commit ran on, by sequence.
#[derive(Default)]
struct Threads(Mutex<Vec<(u64, ThreadId)>>);

impl ChangeSink for Threads {
    fn publish(&self, committed: Committed) {
        self.0.lock().unwrap().push((committed.sequence, std::thread::current().id()));
    }
}

impl Threads {
    fn of(&self, sequence: u64) -> ThreadId {
        self.0.lock().unwrap().iter().find(|(s, _)| *s == sequence).map(|(_, t)| *t).expect("commit published")
    }
}

async fn open(dir: &std::path::Path, threads: Arc<Threads>) -> Aurora {
    let config = AuroraConfig { durability: Durability::Strict, ..AuroraConfig::new(dir) };
    let db = Aurora::with_sink(config, threads).await.unwrap();
    db.new_collection("t", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    db
}

#[test]
fn a_strict_write_from_a_multi_thread_block_on_commits_on_the_callers_thread() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let threads = Arc::new(Threads::default());
    let db = rt.block_on(open(dir.path(), Arc::clone(&threads)));
    let me = std::thread::current().id();
    for (i, write) in ["insert_into", "transaction", "insert_many", "tx.commit"].into_iter().enumerate() {
        rt.block_on(async {
            match write {
                "insert_into" => drop(db.insert_into("t", doc! { "n": i as i64 }).await.unwrap()),
                "transaction" => db
                    .transaction(move |tx| tx.insert("t", doc! { "n": i as i64 }).map(drop).map_err(Into::into))
                    .await
                    .unwrap(),
                "insert_many" => drop(db.insert_many("t", vec![doc! { "n": i as i64 }]).await.unwrap()),
                _ => {
                    let mut tx = db.begin().unwrap();
                    tx.insert("t", doc! { "n": i as i64 }).unwrap();
                    assert_eq!(tx.commit().await.unwrap().writes, 1);
                }
            }
        });
        let sequence = db.database().feed_head();
        if write == "insert_many" {
            // A batch always takes the blocking pool: on the caller's thread
            // it would hold up whatever else its `block_on` polls.
            assert_ne!(threads.of(sequence), me, "{write}: committed on the blocking pool");
        } else {
            assert_eq!(threads.of(sequence), me, "{write}: committed on the thread that waited for it");
        }
    }
    rt.block_on(db.close()).unwrap();
}

#[test]
fn a_strict_write_from_a_task_waits_off_the_runtime_workers() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let threads = Arc::new(Threads::default());
    let db = rt.block_on(open(dir.path(), Arc::clone(&threads)));
    let task = {
        let db = db.clone();
        rt.spawn(async move {
            let worker = std::thread::current().id();
            db.insert_into("t", doc! { "n": 1 }).await.unwrap();
            (worker, db.database().feed_head())
        })
    };
    let (worker, sequence) = rt.block_on(task).unwrap();
    let committer = threads.of(sequence);
    assert_ne!(committer, worker, "not on the worker that ran the task");
    assert_ne!(committer, std::thread::current().id());
    rt.block_on(db.close()).unwrap();
}

#[test]
fn a_strict_write_on_a_current_thread_runtime_waits_off_its_thread() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let threads = Arc::new(Threads::default());
    let db = rt.block_on(open(dir.path(), Arc::clone(&threads)));
    rt.block_on(db.insert_into("t", doc! { "n": 1 })).unwrap();
    let sequence = db.database().feed_head();
    assert_ne!(threads.of(sequence), std::thread::current().id(), "the runtime's only thread keeps running its tasks");
    rt.block_on(db.close()).unwrap();
}

const CRASH: CrashTest = CrashTest::new("crash_child_entry", "AURORA_STRICT_THREAD_CRASH_DIR");

fn strict_config(dir: &std::path::Path) -> AuroraConfig {
    AuroraConfig { durability: Durability::Strict, ..AuroraConfig::new(dir) }
}

#[test]
fn crash_child_entry() {
    let Some(dir) = CRASH.child_dir() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let db = rt.block_on(Aurora::with_config(strict_config(&dir))).unwrap();
    if !db.list_collections().unwrap().contains(&"t".to_string()) {
        rt.block_on(db.new_collection("t", Vec::<(&str, FieldDefinition)>::new())).unwrap();
    }
    println!("ready");
    // Two writers on their own threads, as `writers_strict_*` drive it:
    // each commit on the thread that waits for it, sometimes grouped.
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (db, handle) = (db.clone(), rt.handle().clone());
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let id = handle.block_on(db.insert_into("t", doc! { "w": w, "i": i as i64 })).unwrap();
                    println!("{id}");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
}

#[test]
fn strict_writes_committed_on_the_callers_thread_survive_sigkill() {
    if CRASH.is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged = Vec::new();
    for round in 0..CRASH.rounds(4) {
        let lines = CRASH.spawn(dir.path()).kill_after(Duration::from_millis(100) + jitter(300));
        acknowledged.extend(lines);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let db = rt.block_on(Aurora::with_config(strict_config(dir.path()))).unwrap();
        assert!(!acknowledged.is_empty() || round > 0, "the writer acknowledged writes");
        for line in &acknowledged {
            let id = aurora::DocId::parse(line).unwrap_or_else(|e| panic!("an id, not {line:?}: {e}"));
            assert!(rt.block_on(db.get_document("t", &id)).unwrap().is_some(), "round {round}: acknowledged {id} lost");
        }
        rt.block_on(db.close()).unwrap();
    }
    assert!(!acknowledged.is_empty(), "the writers acknowledged writes");
}
