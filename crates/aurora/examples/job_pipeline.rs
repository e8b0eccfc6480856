//! A job pipeline: orders are placed in transactions that also enqueue a
//! `charge` job (the outbox: no order without its job, no job without its
//! order); charging fails once and is retried with back-off; a charged
//! order enqueues `ship`, which enqueues `email`. A listener on `_jobs`
//! prints every job state change.
//!
//! Run with `cargo run --example job_pipeline` (an on-disk database in a
//! temporary folder, removed at the end).

use aurora::workers::{Backoff, JobError};
use aurora::{doc, Aurora, EnqueueExt, FieldDefinition, FieldType, Job, JobStatus, Priority, Value, WorkerConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = Aurora::temporary().await?;
    db.new_collection("orders", [("sku", FieldDefinition::new(FieldType::String))]).await?;
    let config = WorkerConfig {
        // Short waits so the retry shows up in seconds (the default is 5 s, 25 s, 125 s).
        backoff: Backoff { base: Duration::from_millis(300), factor: 2, ..Backoff::default() },
        ..WorkerConfig::with_concurrency(4)
    };
    let workers = db.workers(config).await?;

    let mut jobs = db.listen("_jobs");
    tokio::spawn(async move {
        while let Ok(e) = jobs.recv().await {
            if let Some(d) = &e.document {
                let s = |f: &str| d.get(f).and_then(Value::as_str).unwrap_or("").to_string();
                let err = s("last_error");
                let why = if err.is_empty() { String::new() } else { format!(" (last error: {err})") };
                println!("  [_jobs] {:<6} {:<9} {}{why}", s("type"), s("status"), e.id);
            }
        }
    });

    let card_declined_once = Arc::new(AtomicBool::new(false));
    let (w, flaky) = (workers.clone(), Arc::clone(&card_declined_once));
    workers.register_handler("charge", move |job| {
        let (w, flaky) = (w.clone(), Arc::clone(&flaky));
        async move {
            let order = job.field("order").cloned().unwrap_or(Value::Null);
            if !flaky.swap(true, Ordering::SeqCst) {
                return Err(JobError::retry("payment gateway timed out"));
            }
            w.enqueue(Job::new("ship").payload(doc! { "order": order })).await?;
            Ok(())
        }
    });
    let w = workers.clone();
    workers.register_handler("ship", move |job| {
        let w = w.clone();
        async move {
            let order = job.field("order").cloned().unwrap_or(Value::Null);
            w.enqueue(Job::new("email").priority(Priority::Low).payload(doc! { "order": order })).await?;
            Ok(())
        }
    });
    workers.register_handler("email", |_| async { Ok(()) });
    workers.start()?;

    for sku in ["book", "lamp"] {
        let mut tx = db.begin()?;
        let order = tx.insert("orders", doc! { "sku": sku })?;
        tx.enqueue(Job::new("charge").priority(Priority::High).payload(doc! { "order": order.to_string() }))?;
        tx.commit().await?;
        println!("placed order {order} for a {sku}, with its charge job, in one transaction");
    }
    let mut tx = db.begin()?;
    tx.insert("orders", doc! { "sku": "ghost" })?;
    let ghost = tx.enqueue(Job::new("charge"))?;
    tx.rollback();
    println!("rolled back an order: its job {ghost} was never enqueued");

    for _ in 0..500 {
        let counts = workers.counts().await?;
        if counts[&JobStatus::Completed] == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let counts = workers.counts().await?;
    println!("jobs by status: {counts:?}");
    assert_eq!(counts[&JobStatus::Completed], 6, "2 orders × charge, ship, email");
    assert_eq!(workers.job_status(&ghost).await?, None);
    db.close().await?;
    println!("closed (workers shut down first)");
    Ok(())
}
