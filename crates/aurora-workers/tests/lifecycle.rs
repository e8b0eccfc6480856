//! Job lifecycle under a controllable clock: priority and FIFO order,
//! scheduling, retry back-off timing, dead letters, permanent failures,
//! panics, timeouts, cancel, retry, concurrency limits, shutdown.
//! No test sleeps for a back-off or a timeout: the clock is advanced.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{doc, Timestamp, Value};
use aurora_workers::{HandlerOptions, Job, JobError, JobStatus, Priority, WorkerError, Workers};
use common::*;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

async fn status(w: &Workers, id: &aurora_workers::JobId) -> JobStatus {
    w.job_status(id).await.unwrap().expect("job exists")
}

async fn wait_status(w: &Workers, id: &aurora_workers::JobId, want: JobStatus) {
    eventually(&format!("job reaches {want}"), || async { status(w, id).await == want }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_first_then_fifo() {
    let (_dir, _clock, w) = workers(1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&order);
    w.register_handler("task", move |job| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().push(job.field("n").and_then(Value::as_i64).unwrap());
            Ok(())
        }
    });
    let priorities = [
        Priority::Low,
        Priority::Normal,
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Critical,
        Priority::Low,
        Priority::High,
    ];
    let mut expected: Vec<(Priority, i64)> = Vec::new();
    for (n, p) in priorities.iter().enumerate() {
        w.enqueue(Job::new("task").priority(*p).payload(doc! { "n": n as i64 })).await.unwrap();
        expected.push((*p, n as i64));
    }
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    w.start().unwrap();
    eventually("all ran", || async { order.lock().len() == priorities.len() }).await;
    assert_eq!(*order.lock(), expected.iter().map(|e| e.1).collect::<Vec<_>>());
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_jobs_wait_for_their_time() {
    let (_dir, clock, w) = workers(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    w.register_handler("later", move |_| {
        let r = Arc::clone(&r);
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    w.start().unwrap();
    let at = clock_now(&w).saturating_add(secs(3600));
    let a = w.enqueue(Job::new("later").delay(secs(60))).await.unwrap();
    let b = w.enqueue(Job::new("later").run_at(at)).await.unwrap();
    assert_eq!(status(&w, &a).await, JobStatus::Scheduled);
    clock.advance(secs(59));
    settle().await;
    assert_eq!(ran.load(Ordering::SeqCst), 0, "not before its time");
    assert_eq!(w.count(JobStatus::Scheduled).await.unwrap(), 2);
    clock.advance(secs(1));
    wait_status(&w, &a, JobStatus::Completed).await;
    assert_eq!(status(&w, &b).await, JobStatus::Scheduled);
    clock.advance(secs(3600));
    wait_status(&w, &b, JobStatus::Completed).await;
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    w.shutdown().await.unwrap();
}

fn clock_now(w: &Workers) -> Timestamp {
    w.now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_5_25_125_seconds_then_dead_letter() {
    let (_dir, clock, w) = workers(1);
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let (seen, c) = (Arc::clone(&attempts), clock.clone());
    w.register_handler("flaky", move |job| {
        use aurora_workers::Clock;
        seen.lock().push((job.attempt, c.now()));
        async move { Err(JobError::retry(format!("attempt {} failed", job.attempt))) }
    });
    w.start().unwrap();
    let t0 = w.now();
    let id = w.enqueue(Job::new("flaky")).await.unwrap(); // max_retries 3 by default
    let n = || attempts.lock().len();
    eventually("first attempt", || async { n() == 1 }).await;
    for (wait, expect_attempts) in [(5, 2), (25, 3), (125, 4)] {
        wait_status(&w, &id, JobStatus::Scheduled).await;
        clock.advance(secs(wait) - Duration::from_millis(1));
        settle().await;
        assert_eq!(n(), expect_attempts - 1, "attempt {expect_attempts} must wait the full {wait} s");
        clock.advance(Duration::from_millis(1));
        eventually("next attempt", || async { n() == expect_attempts }).await;
    }
    wait_status(&w, &id, JobStatus::DeadLetter).await;
    let times: Vec<i64> = attempts.lock().iter().map(|(_, t)| (t.as_micros() - t0.as_micros()) / 1_000_000).collect();
    assert_eq!(times, [0, 5, 30, 155]);
    let info = w.job(&id).await.unwrap().unwrap();
    assert_eq!((info.attempts, info.failures), (4, 4));
    assert_eq!(info.last_error.as_deref(), Some("attempt 4 failed"));
    assert!(info.finished_at.is_some());
    clock.advance(secs(100_000));
    settle().await;
    assert_eq!(n(), 4, "a dead-lettered job does not run again");
    // An operator can give it another chance.
    assert!(w.retry(&id).await.unwrap());
    eventually("retried", || async { n() == 5 }).await;
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_fail_at_once_and_panics_are_failed_attempts() {
    let (_dir, _clock, w) = workers(2);
    w.register_handler("bad_input", |_| async { Err(JobError::permanent("no such user")) });
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    w.register_handler("panicky", move |_| {
        let first = c.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                panic!("boom");
            }
            Ok(())
        }
    });
    w.start().unwrap();
    let bad = w.enqueue(Job::new("bad_input").max_retries(5)).await.unwrap();
    let panics = w.enqueue(Job::new("panicky").max_retries(1)).await.unwrap();
    wait_status(&w, &bad, JobStatus::Failed).await;
    let info = w.job(&bad).await.unwrap().unwrap();
    assert_eq!((info.attempts, info.last_error.as_deref()), (1, Some("no such user")));
    // The panic is a failed attempt (retry scheduled), and the worker lives on.
    wait_status(&w, &panics, JobStatus::Scheduled).await;
    let info = w.job(&panics).await.unwrap().unwrap();
    assert!(info.last_error.as_deref().unwrap().contains("panicked: boom"), "{info:?}");
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_handler_times_out_by_the_clock() {
    let (_dir, clock, w) = workers(1);
    w.register_handler("hang", |_| async {
        std::future::pending::<()>().await;
        Ok(())
    });
    w.register_handler("quick", |_| async { Ok(()) });
    w.start().unwrap();
    let hung = w.enqueue(Job::new("hang").timeout(secs(10)).max_retries(0)).await.unwrap();
    wait_status(&w, &hung, JobStatus::Running).await;
    let quick = w.enqueue(Job::new("quick")).await.unwrap();
    settle().await;
    assert_eq!(status(&w, &quick).await, JobStatus::Pending, "the only slot is held by the hung job");
    clock.advance(secs(9));
    settle().await;
    assert_eq!(status(&w, &hung).await, JobStatus::Running);
    clock.advance(secs(1));
    wait_status(&w, &hung, JobStatus::DeadLetter).await;
    assert!(w.job(&hung).await.unwrap().unwrap().last_error.unwrap().contains("timed out"));
    wait_status(&w, &quick, JobStatus::Completed).await;
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_waiting_and_running_jobs() {
    let (_dir, clock, w) = workers(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    w.register_handler("slow", move |_| {
        r.fetch_add(1, Ordering::SeqCst);
        async {
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    w.start().unwrap();
    let waiting = w.enqueue(Job::new("slow").delay(secs(10))).await.unwrap();
    let running = w.enqueue(Job::new("slow")).await.unwrap();
    wait_status(&w, &running, JobStatus::Running).await;
    assert!(w.cancel(&waiting).await.unwrap());
    assert!(w.cancel(&running).await.unwrap());
    assert!(!w.cancel(&running).await.unwrap(), "already finished");
    clock.advance(secs(3600));
    settle().await;
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the cancelled scheduled job never ran");
    assert_eq!(status(&w, &waiting).await, JobStatus::Cancelled);
    assert_eq!(status(&w, &running).await, JobStatus::Cancelled);
    // The running job's slot was freed.
    let next = w.enqueue(Job::new("slow")).await.unwrap();
    wait_status(&w, &next, JobStatus::Running).await;
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_and_per_type_concurrency_limits_hold() {
    let (_dir, _clock, w) = workers(3);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let gauges = Arc::new(Mutex::new((0usize, 0usize, 0usize, 0usize))); // total, max total, image, max image
    for (job_type, limit) in [("image", Some(1)), ("email", None)] {
        let (gate, gauges) = (Arc::clone(&gate), Arc::clone(&gauges));
        w.register_handler_with(job_type, HandlerOptions { concurrency: limit }, move |job| {
            let (gate, gauges) = (Arc::clone(&gate), Arc::clone(&gauges));
            async move {
                {
                    let mut g = gauges.lock();
                    g.0 += 1;
                    g.1 = g.1.max(g.0);
                    if job.job_type == "image" {
                        g.2 += 1;
                        g.3 = g.3.max(g.2);
                    }
                }
                gate.acquire().await.expect("open").forget();
                let mut g = gauges.lock();
                g.0 -= 1;
                if job.job_type == "image" {
                    g.2 -= 1;
                }
                Ok(())
            }
        });
    }
    let mut ids = Vec::new();
    for i in 0..12 {
        let t = if i % 2 == 0 { "image" } else { "email" };
        ids.push(w.enqueue(Job::new(t)).await.unwrap());
    }
    w.start().unwrap();
    eventually("three running", || async { gauges.lock().0 == 3 }).await;
    settle().await;
    assert_eq!(w.count(JobStatus::Running).await.unwrap(), 3);
    for _ in 0..12 {
        gate.add_permits(1);
        tokio::task::yield_now().await;
    }
    for id in &ids {
        wait_status(&w, id, JobStatus::Completed).await;
    }
    let g = *gauges.lock();
    assert_eq!(g.1, 3, "global limit reached, never exceeded");
    assert_eq!(g.3, 1, "per-type limit never exceeded");
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_without_a_handler_wait_for_one() {
    let (_dir, _clock, w) = workers(2);
    w.start().unwrap();
    let id = w.enqueue(Job::new("report")).await.unwrap();
    settle().await;
    assert_eq!(status(&w, &id).await, JobStatus::Pending);
    w.register_handler("report", |_| async { Ok(()) });
    wait_status(&w, &id, JobStatus::Completed).await;
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_then_interrupts_and_a_restart_runs_the_rest() {
    let (dir, db) = temp_db();
    let clock = clock();
    let w = Workers::new(db.clone(), config(&clock, 2)).unwrap();
    let release = Arc::new(tokio::sync::Notify::new());
    let rel = Arc::clone(&release);
    w.register_handler("quick", |_| async { Ok(()) });
    w.register_handler("stuck", move |_| {
        let rel = Arc::clone(&rel);
        async move {
            rel.notified().await;
            Ok(())
        }
    });
    let stuck = w.enqueue(Job::new("stuck")).await.unwrap();
    w.start().unwrap();
    wait_status(&w, &stuck, JobStatus::Running).await;
    let later = w.enqueue(Job::new("quick").delay(secs(60))).await.unwrap();
    w.shutdown().await.unwrap(); // 200 ms deadline (common::config)
    let info = w.job(&stuck).await.unwrap().unwrap();
    assert_eq!(info.status, JobStatus::Pending, "interrupted at the deadline: pending again");
    assert_eq!((info.interruptions, info.failures), (1, 0));
    assert!(matches!(w.start(), Err(WorkerError::State(_))), "a shut-down instance does not restart");
    drop(w);

    let w = Workers::new(db, config(&clock, 2)).unwrap();
    w.register_handler("quick", |_| async { Ok(()) });
    w.register_handler("stuck", |_| async { Ok(()) });
    w.start().unwrap();
    wait_status(&w, &stuck, JobStatus::Completed).await;
    assert_eq!(status(&w, &later).await, JobStatus::Scheduled);
    clock.advance(secs(60));
    wait_status(&w, &later, JobStatus::Completed).await;
    w.shutdown().await.unwrap();
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_left_running_by_a_dropped_instance_are_recovered() {
    let (_dir, db) = temp_db();
    let clock = clock();
    let w = Workers::new(db.clone(), config(&clock, 1)).unwrap();
    w.register_handler("work", |_| async {
        std::future::pending::<()>().await;
        Ok(())
    });
    w.start().unwrap();
    let id = w.enqueue(Job::new("work")).await.unwrap();
    wait_status(&w, &id, JobStatus::Running).await;
    drop(w); // no shutdown: like a crash, the job stays `running` in storage
    let w2 = Workers::new(db, config(&clock, 1)).unwrap();
    assert_eq!(status(&w2, &id).await, JobStatus::Running);
    w2.register_handler("work", |_| async { Ok(()) });
    w2.start().unwrap();
    wait_status(&w2, &id, JobStatus::Completed).await;
    let info = w2.job(&id).await.unwrap().unwrap();
    assert_eq!((info.attempts, info.interruptions), (2, 1));
    w2.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_keys_deduplicate_while_live() {
    let (_dir, _clock, w) = workers(2);
    let a = w.enqueue(Job::new("sync").unique_key("user:1")).await.unwrap();
    let b = w.enqueue(Job::new("sync").unique_key("user:1")).await.unwrap();
    assert_eq!(a, b);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move { w.enqueue(Job::new("sync").unique_key("user:2")).await.unwrap() }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "racing enqueues of one key agree on one job");
    assert_eq!(w.count(JobStatus::Pending).await.unwrap(), 2);
    w.register_handler("sync", |_| async { Ok(()) });
    w.start().unwrap();
    wait_status(&w, &a, JobStatus::Completed).await;
    let c = w.enqueue(Job::new("sync").unique_key("user:1")).await.unwrap();
    assert_ne!(a, c, "the key is free once the job finished");
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurring_jobs_run_every_interval_until_cancelled() {
    let (_dir, clock, w) = workers(1);
    let runs = Arc::new(Mutex::new(Vec::new()));
    let (seen, c) = (Arc::clone(&runs), clock.clone());
    w.register_handler("tick", move |_| {
        use aurora_workers::Clock;
        seen.lock().push(c.now());
        async { Ok(()) }
    });
    let t0 = w.now();
    let first = w.recurring("ticker", Job::new("tick"), secs(10)).await.unwrap();
    assert_eq!(w.recurring("ticker", Job::new("tick"), secs(10)).await.unwrap(), first, "registered once");
    w.start().unwrap();
    eventually("first run", || async { runs.lock().len() == 1 }).await;
    for n in 2..=3 {
        eventually("next occurrence scheduled", || async { w.count(JobStatus::Scheduled).await.unwrap() == 1 }).await;
        clock.advance(secs(10));
        eventually("next run", || async { runs.lock().len() == n }).await;
    }
    let offsets: Vec<i64> = runs.lock().iter().map(|t| (t.as_micros() - t0.as_micros()) / 1_000_000).collect();
    assert_eq!(offsets, [0, 10, 20]);
    eventually("scheduled again", || async { w.count(JobStatus::Scheduled).await.unwrap() == 1 }).await;
    let pending = w.list(JobStatus::Scheduled, 10).await.unwrap();
    assert!(w.cancel(&pending[0].id).await.unwrap());
    clock.advance(secs(100));
    settle().await;
    assert_eq!(runs.lock().len(), 3, "cancelling the pending occurrence ends the series");
    assert_eq!(w.count(JobStatus::Completed).await.unwrap(), 3);
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_jobs_are_purged_after_retention() {
    let (_dir, db) = temp_db();
    let clock = clock();
    let mut cfg = config(&clock, 2);
    cfg.completed_retention = Some(secs(3600));
    cfg.cleanup_interval = secs(60);
    let w = Workers::new(db, cfg).unwrap();
    w.register_handler("ok", |_| async { Ok(()) });
    w.register_handler("dead", |_| async { Err(JobError::permanent("no")) });
    w.start().unwrap();
    let done = w.enqueue(Job::new("ok")).await.unwrap();
    let failed = w.enqueue(Job::new("dead")).await.unwrap();
    wait_status(&w, &done, JobStatus::Completed).await;
    wait_status(&w, &failed, JobStatus::Failed).await;
    clock.advance(secs(3000));
    settle().await;
    assert!(w.job(&done).await.unwrap().is_some(), "kept within retention");
    clock.advance(secs(700));
    eventually("purged", || async { w.job(&done).await.unwrap().is_none() }).await;
    assert!(w.job(&failed).await.unwrap().is_some(), "failed jobs are kept for inspection");
    assert_eq!(w.purge(&[JobStatus::Failed], w.now()).await.unwrap(), 1);
    assert!(w.job(&failed).await.unwrap().is_none());
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_writes_nothing() {
    let (_dir, _clock, w) = workers(1);
    for job in [
        Job::new(""),
        Job::new("x".repeat(200)),
        Job::new("x").max_retries(5000),
        Job::new("x").timeout(Duration::ZERO),
        Job::new("x").unique_key(""),
    ] {
        assert!(matches!(w.enqueue(job).await, Err(WorkerError::InvalidJob { .. })));
    }
    assert!(matches!(w.enqueue_many(vec![Job::new("ok"), Job::new("")]).await, Err(WorkerError::InvalidJob { .. })));
    assert_eq!(w.counts().await.unwrap().values().sum::<u64>(), 0, "nothing was written");
    let (_d, db) = temp_db();
    let err = Workers::new(db, aurora_workers::WorkerConfig::with_concurrency(0)).unwrap_err();
    assert!(matches!(err, WorkerError::InvalidConfig { setting: "concurrency", .. }), "{err}");
    assert!(w.start().is_ok() && matches!(w.start(), Err(WorkerError::State(_))));
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_panicking_before_its_future_is_a_failed_attempt_and_frees_its_slot() {
    let (_dir, _clock, w) = workers(1);
    w.register_handler("eager_panic", |job| {
        let _must_exist = job.field("missing").expect("field present"); // panics while building the future
        async { Ok(()) }
    });
    w.register_handler("ok", |_| async { Ok(()) });
    w.start().unwrap();
    let bad = w.enqueue(Job::new("eager_panic").max_retries(0)).await.unwrap();
    wait_status(&w, &bad, JobStatus::DeadLetter).await;
    assert!(w.job(&bad).await.unwrap().unwrap().last_error.unwrap().contains("panicked"));
    let next = w.enqueue(Job::new("ok")).await.unwrap();
    wait_status(&w, &next, JobStatus::Completed).await; // the only slot was given back
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_occurrence_does_not_shift_the_recurring_schedule() {
    let (_dir, clock, w) = workers(1);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    w.register_handler("report", move |_| {
        let first = c.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                Err(JobError::retry("flaky"))
            } else {
                Ok(())
            }
        }
    });
    let t0 = w.now();
    w.recurring("daily", Job::new("report"), secs(60)).await.unwrap();
    w.start().unwrap();
    eventually("first attempt failed", || async { calls.load(Ordering::SeqCst) == 1 }).await;
    clock.advance(secs(5)); // the retry, 5 s later
    eventually("retry ran", || async { calls.load(Ordering::SeqCst) == 2 }).await;
    eventually("next occurrence", || async { w.count(JobStatus::Scheduled).await.unwrap() == 1 }).await;
    let next = w.list(JobStatus::Scheduled, 1).await.unwrap().remove(0);
    assert_eq!(
        next.run_at.unwrap().as_micros() - t0.as_micros(),
        60_000_000,
        "planned from the occurrence, not the retry"
    );
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_job_record_does_not_block_the_queue() {
    let (_dir, db) = temp_db();
    let clock = clock();
    let w = Workers::new(db.clone(), config(&clock, 1)).unwrap();
    w.register_handler("t", |_| async { Ok(()) });
    let bad = w.enqueue(Job::new("t").priority(Priority::Critical)).await.unwrap();
    db.transaction(|tx| tx.update(aurora_workers::JOBS, &bad, [("attempts".to_string(), Value::Int(-1))].into()))
        .unwrap();
    let good = w.enqueue(Job::new("t")).await.unwrap();
    w.start().unwrap();
    wait_status(&w, &good, JobStatus::Completed).await;
    assert!(w.list(JobStatus::Pending, 10).await.unwrap().is_empty(), "the damaged record is skipped, not listed");
    w.shutdown().await.unwrap();
}
