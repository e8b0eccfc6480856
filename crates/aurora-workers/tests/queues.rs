//! Named queues: their own concurrency limit, pause and resume, and
//! statistics (depth, age of the oldest waiting job, counts, throughput)
//! by queue and job type.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_workers::{Job, JobStatus, WorkerConfig, WorkerError, Workers};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_limits_its_own_concurrency_and_can_be_paused() {
    let (_dir, db) = common::temp_db();
    let workers = Workers::new(db, WorkerConfig { concurrency: 8, ..WorkerConfig::default() }).unwrap();
    let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, m) = (now.clone(), max.clone());
    workers.register_handler("send", move |_| {
        let (n, m) = (n.clone(), m.clone());
        async move {
            let running = n.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(running, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            n.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    });
    workers.configure_queue("emails", Some(1));
    workers.start().unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(workers.enqueue(Job::new("send").queue("emails")).await.unwrap());
    }
    for id in &ids {
        assert_eq!(workers.wait_for(id, WAIT).await.unwrap(), Some(JobStatus::Completed));
    }
    assert_eq!(max.load(Ordering::SeqCst), 1, "the emails queue ran one job at a time");

    // Paused: jobs wait (and the stats say so); the default queue runs on.
    workers.pause_queue("emails");
    assert!(workers.is_paused("emails"));
    let held = workers.enqueue(Job::new("send").queue("emails")).await.unwrap();
    let other = workers.enqueue(Job::new("send")).await.unwrap();
    assert_eq!(workers.wait_for(&other, WAIT).await.unwrap(), Some(JobStatus::Completed));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(workers.job_status(&held).await.unwrap(), Some(JobStatus::Pending), "a paused queue starts nothing");
    let stats = workers.queue_stats().await.unwrap();
    let emails = stats.iter().find(|s| s.queue == "emails" && s.job_type == "send").unwrap();
    assert_eq!(emails.depth(), 1);
    assert_eq!(emails.counts.get(&JobStatus::Completed), Some(&5));
    assert_eq!(emails.completed_last_minute, 5);
    assert!(emails.oldest_pending_age.is_some_and(|a| a >= Duration::from_millis(100)), "{emails:?}");
    let default = stats.iter().find(|s| s.queue == aurora_workers::DEFAULT_QUEUE).unwrap();
    assert_eq!((default.depth(), default.oldest_pending_age), (0, None));

    workers.resume_queue("emails");
    assert_eq!(workers.wait_for(&held, WAIT).await.unwrap(), Some(JobStatus::Completed));
    assert_eq!(workers.job(&held).await.unwrap().unwrap().queue, "emails");
    workers.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_names_follow_rules() {
    let (_dir, db) = common::temp_db();
    let workers = Workers::new(db, WorkerConfig::default()).unwrap();
    for bad in ["", "a\nb", &"q".repeat(200)] {
        let r = workers.enqueue(Job::new("x").queue(bad)).await;
        assert!(matches!(r, Err(WorkerError::InvalidJob { .. })), "{bad:?}: {r:?}");
    }
}
