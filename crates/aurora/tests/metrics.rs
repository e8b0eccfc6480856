//! `db.metrics()`: the write path's counters move with the work done
//! (commits, fsyncs under `Strict`, commit groups), lag shows in the event
//! counters, jobs are counted by status, and the Prometheus rendering is
//! well-formed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, Durability, Job, JobStatus, WorkerConfig};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_work_and_render_as_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuroraConfig { durability: Durability::Strict, event_buffer: 4, ..AuroraConfig::new(dir.path()) };
    let db = Aurora::with_config(config).await.unwrap();
    db.new_collection("t", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    let before = db.metrics().await.unwrap();
    let _slow = db.listen("t"); // never read: it lags
    for i in 0..20 {
        db.insert_into("t", doc! { "n": i }).await.unwrap();
    }
    let id = db.insert_into("t", doc! { "n": -1 }).await.unwrap();
    db.get_document("t", &id).await.unwrap();
    let after = db.metrics().await.unwrap();
    assert_eq!(after.store.commits - before.store.commits, 21);
    assert!(after.store.fsyncs - before.store.fsyncs >= 1 && after.store.fsyncs - before.store.fsyncs <= 21);
    assert!(after.store.commit_groups > before.store.commit_groups);
    assert!(after.store.synced_revision >= after.store.revision, "Strict: everything acknowledged is synced");
    assert!(after.store.wal_bytes > before.store.wal_bytes);
    assert_eq!(after.feed_head, after.store.revision);
    assert_eq!(after.events.listeners, 1);
    assert_eq!(after.events.events_dropped, 21 - 4, "the listener kept its last 4 events");
    assert_eq!(after.events.max_listener_lag, 4, "the slowest listener holds its whole buffer");
    assert_eq!(after.events.live_queries, 0);
    let live = db.query("t").filter(|f| f.gt("n", 10)).watch().await.unwrap();
    let watching = db.metrics().await.unwrap();
    assert_eq!((watching.events.live_queries, watching.events.listeners), (1, 2));
    drop(live);
    assert_eq!(db.metrics().await.unwrap().events.live_queries, 0);
    assert!(after.cache.hits + after.cache.misses > before.cache.hits + before.cache.misses);

    let workers = db.workers(WorkerConfig::default()).await.unwrap();
    workers.register_handler("ok", |_| async { Ok(()) });
    workers.start().unwrap();
    let job = workers.enqueue(Job::new("ok")).await.unwrap();
    assert_eq!(workers.wait_for(&job, Duration::from_secs(10)).await.unwrap(), Some(JobStatus::Completed));
    let m = db.metrics().await.unwrap();
    assert_eq!(m.jobs.get("completed"), Some(&1));
    assert_eq!(m.jobs_by_queue.get("default").and_then(|q| q.get("completed")), Some(&1));
    assert!(m.job_latency.started == 1 && m.job_latency.finished == 1, "{:?}", m.job_latency);
    assert!(m.job_latency.run_total >= m.job_latency.run_max && m.job_latency.wait_total >= m.job_latency.wait_max);
    assert!(m.queue_lag.is_empty(), "nothing waits: {:?}", m.queue_lag);

    let text = m.to_prometheus();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(comment.starts_with("HELP aurora_") || comment.starts_with("TYPE aurora_"), "{line}");
            continue;
        }
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(name.starts_with("aurora_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let bare = name.split('{').next().unwrap();
        assert!(bare.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{line}");
        assert!(text.contains(&format!("# TYPE {bare} ")), "every sample has a TYPE line: {line}");
    }
    assert!(text.contains("aurora_jobs{status=\"completed\"} 1"), "{text}");
    assert!(text.contains("aurora_events_dropped_total 17"), "{text}");
    assert!(text.contains("aurora_queue_jobs{queue=\"default\",status=\"completed\"} 1"), "{text}");
    assert!(text.contains("aurora_job_attempts_started_total 1"), "{text}");
    assert!(text.contains("aurora_live_queries 0") && text.contains("aurora_listener_max_lag_events 4"), "{text}");
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_queue_shows_its_depth_and_lag_by_name() {
    let db = Aurora::temporary().await.unwrap();
    let workers = db.workers(WorkerConfig::default()).await.unwrap();
    workers.register_handler("mail", |_| async { Ok(()) });
    workers.pause_queue("outbox");
    workers.start().unwrap();
    for _ in 0..3 {
        workers.enqueue(Job::new("mail").queue("outbox")).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let m = db.metrics().await.unwrap();
    assert_eq!(m.jobs_by_queue.get("outbox").and_then(|q| q.get("pending")), Some(&3), "{:?}", m.jobs_by_queue);
    let lag = m.queue_lag.get("outbox").copied().unwrap_or_default();
    assert!(lag >= Duration::from_millis(30), "the oldest waits since its enqueue: {lag:?}");
    assert_eq!(m.job_latency.started, 0, "a paused queue starts nothing");
    let text = m.to_prometheus();
    assert!(text.contains("aurora_queue_jobs{queue=\"outbox\",status=\"pending\"} 3"), "{text}");
    assert!(text.contains("aurora_queue_lag_seconds{queue=\"outbox\"} 0."), "{text}");
    workers.resume_queue("outbox");
    db.close().await.unwrap();
}
