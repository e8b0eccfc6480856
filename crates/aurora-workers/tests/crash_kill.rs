//! Crash test: a child process enqueues jobs (printing each id once the
//! enqueue is acknowledged) and runs them with 4 workers; each execution
//! first records itself durably. The child is killed with SIGKILL at a
//! random moment, several rounds over one database. Then the parent runs
//! the queue to the end and checks: every acknowledged job completed, none
//! was lost, and duplicate executions are bounded by the jobs that were
//! running at the kills (each such job is counted as an interruption).
//!
//! Rounds: `AURORA_CRASH_ROUNDS` (default 4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{doc, Value};
use aurora_index::Schema;
use aurora_storage::Durability;
use aurora_testkit::crash::{jitter, CrashTest};
use aurora_txn::{Database, NoSink};
use aurora_workers::{Job, JobStatus, WorkerConfig, Workers};
use common::open_db;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CRASH: CrashTest =
    CrashTest::new("killed_workers_lose_no_job_and_duplicate_only_interrupted_ones", "AURORA_WORKER_CRASH_DIR");
const CONCURRENCY: usize = 4;

fn worker_config() -> WorkerConfig {
    WorkerConfig { max_interruptions: 1000, ..WorkerConfig::with_concurrency(CONCURRENCY) }
}

/// The handler: record this execution durably, then "work" briefly.
fn register(w: &Workers, db: &Database) {
    let db = db.clone();
    w.register_handler("work", move |job| {
        let db = db.clone();
        async move {
            let id = job.id.to_string();
            tokio::task::spawn_blocking(move || {
                db.transaction(|tx| tx.insert("executions", doc! { "job": id.clone() }).map(|_| ()))
            })
            .await
            .expect("join")
            .expect("record execution");
            tokio::time::sleep(Duration::from_millis(fastrand::u64(1..4))).await;
            Ok(())
        }
    });
}

fn child_main(dir: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let db = open_db(dir, Durability::Strict, Arc::new(NoSink));
        let w = Workers::new(db.clone(), worker_config()).unwrap();
        register(&w, &db);
        w.start().unwrap();
        println!("ready");
        loop {
            let id = w.enqueue(Job::new("work")).await.unwrap();
            println!("enq {id}");
            tokio::time::sleep(Duration::from_micros(fastrand::u64(200..1500))).await;
        }
    });
}

#[test]
fn killed_workers_lose_no_job_and_duplicate_only_interrupted_ones() {
    if let Some(dir) = CRASH.child_dir() {
        child_main(&dir);
        return;
    }
    let rounds = CRASH.rounds(4);
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open_db(dir.path(), Durability::Strict, Arc::new(NoSink));
        db.collections().create_collection("executions", Schema::new()).unwrap();
    }
    let mut acknowledged = BTreeSet::new();
    for round in 0..rounds {
        // The kill lands at a random moment after the child is working (a
        // loaded CI machine may take a while to start it).
        let lines = CRASH.spawn(dir.path()).kill_after(Duration::from_millis(50) + jitter(300));
        // Each line `enq <id>` is an acknowledged enqueue.
        let ids: Vec<String> = lines.iter().filter_map(|l| l.strip_prefix("enq ")).map(str::to_string).collect();
        assert!(!ids.is_empty(), "the child acknowledged no enqueue in round {round}");
        acknowledged.extend(ids);
    }

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let db = open_db(dir.path(), Durability::Strict, Arc::new(NoSink));
        let w = Workers::new(db.clone(), worker_config()).unwrap();
        register(&w, &db);
        w.start().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let open = w.count(JobStatus::Pending).await.unwrap() + w.count(JobStatus::Running).await.unwrap();
            if open == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{open} jobs never finished");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        w.shutdown().await.unwrap();

        let mut executions: BTreeMap<String, u32> = BTreeMap::new();
        for doc in db.collections().documents().scan("executions").unwrap() {
            let doc = doc.unwrap();
            *executions.entry(doc.get("job").and_then(Value::as_str).unwrap().to_string()).or_default() += 1;
        }
        let mut interruptions = 0;
        for id in &acknowledged {
            let job = w.job(&id.parse().unwrap()).await.unwrap().unwrap_or_else(|| panic!("acknowledged job {id} lost"));
            assert_eq!(job.status, JobStatus::Completed, "job {id}: {job:?}");
            assert!(executions.get(id).copied().unwrap_or(0) >= 1, "job {id} completed without running");
            interruptions += job.interruptions;
        }
        let all_interruptions: u32 = w.list(JobStatus::Completed, usize::MAX).await.unwrap().iter().map(|j| j.interruptions).sum();
        let duplicates: u32 = executions.values().map(|n| n - 1).sum();
        eprintln!(
            "{rounds} kills: {} acknowledged jobs, {} executions, {duplicates} duplicates, {all_interruptions} interrupted attempts",
            acknowledged.len(),
            executions.values().sum::<u32>()
        );
        assert!(interruptions <= all_interruptions);
        assert!(all_interruptions <= rounds * CONCURRENCY as u32, "at most the running jobs are interrupted per kill");
        assert!(duplicates <= all_interruptions, "a job runs twice only if a kill interrupted it");
    });
}
