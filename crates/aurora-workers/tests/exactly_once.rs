//! `JobContext::complete_in`: the job's completion commits with the
//! handler's own writes, so they happen exactly once — whatever the handler
//! returns afterwards — and a recurring job's next occurrence is scheduled
//! in that same commit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::doc;
use aurora_workers::{Job, JobError, JobStatus, WorkerConfig, Workers};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_completion_commits_with_the_handlers_writes_and_nothing_runs_twice() {
    let (_dir, db) = common::temp_db();
    db.collections().create_collection("ledger", Default::default()).unwrap();
    let workers = Workers::new(db.clone(), WorkerConfig::default()).unwrap();
    let store = db.clone();
    workers.register_handler("pay", move |job| {
        let db = store.clone();
        async move {
            let mut tx = db.begin()?;
            tx.insert("ledger", doc! { "job": job.id.to_string() })?;
            job.complete_in(&mut tx).map_err(JobError::retry)?;
            tx.commit()?;
            // Too late to fail: the job completed with the write.
            Err(JobError::retry("an error after the commit changes nothing"))
        }
    });
    workers.start().unwrap();
    let id = workers.enqueue(Job::new("pay").max_retries(3)).await.unwrap();
    assert_eq!(workers.wait_for(&id, Duration::from_secs(10)).await.unwrap(), Some(JobStatus::Completed));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let job = workers.job(&id).await.unwrap().unwrap();
    assert_eq!((job.status, job.attempts, job.failures), (JobStatus::Completed, 1, 0));
    assert_eq!(db.collections().documents().scan("ledger").unwrap().count(), 1, "the write happened once");
    workers.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_cannot_be_completed_in_a_transaction() {
    let (_dir, db) = common::temp_db();
    let workers = Workers::new(db.clone(), WorkerConfig::default()).unwrap();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<aurora_workers::JobContext>();
    let started_tx = std::sync::Mutex::new(Some(started_tx));
    workers.register_handler("slow", move |job| {
        if let Some(tx) = started_tx.lock().unwrap().take() {
            let _ = tx.send(job);
        }
        async { std::future::pending::<aurora_workers::JobResult>().await }
    });
    workers.start().unwrap();
    let id = workers.enqueue(Job::new("slow")).await.unwrap();
    let ctx = tokio::time::timeout(Duration::from_secs(10), started_rx).await.unwrap().unwrap();
    assert!(workers.cancel(&id).await.unwrap());
    let mut tx = db.begin().unwrap();
    assert!(ctx.complete_in(&mut tx).is_err(), "the attempt no longer holds the job");
    drop(tx);
    assert_eq!(workers.job_status(&id).await.unwrap(), Some(JobStatus::Cancelled));
    workers.shutdown().await.unwrap();
}
