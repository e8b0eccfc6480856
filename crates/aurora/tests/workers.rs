//! The job queue through the `Aurora` handle: transactional enqueue with
//! `db.begin()`, job state changes as change events, a live count of the
//! queue, and `close()` shutting the workers down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, EnqueueExt, FieldDefinition, FieldType, Job, JobStatus, Value, WorkerConfig};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_pipeline_on_an_on_disk_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    db.new_collection("orders", [("sku", FieldDefinition::new(FieldType::String).unique())]).await.unwrap();
    let workers = db.workers(WorkerConfig::default()).await.unwrap();
    let mut events = db.listen("_jobs");
    let db2 = db.clone();
    workers.register_handler("invoice", move |job| {
        let db = db2.clone();
        async move {
            let order = job.field("order").and_then(Value::as_str).unwrap_or_default().to_string();
            db.insert_into("invoices", doc! { "order": order }).await.map_err(aurora::workers::JobError::retry)?;
            Ok(())
        }
    });
    db.new_collection("invoices", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    workers.start().unwrap();

    // Rolled back: neither the order nor its job.
    let mut tx = db.begin().unwrap();
    tx.insert("orders", doc! { "sku": "a" }).unwrap();
    tx.enqueue(Job::new("invoice").payload(doc! { "order": "a" })).unwrap();
    tx.rollback();
    // Committed: both.
    let mut tx = db.begin().unwrap();
    tx.insert("orders", doc! { "sku": "b" }).unwrap();
    let job = tx.enqueue(Job::new("invoice").payload(doc! { "order": "b" })).unwrap();
    tx.commit().await.unwrap();

    assert_eq!(workers.wait_for(&job, Duration::from_secs(10)).await.unwrap(), Some(JobStatus::Completed));
    let invoices = db.query("invoices").collect().await.unwrap();
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0].get("order"), Some(&Value::from("b")));
    assert_eq!(workers.count(JobStatus::Completed).await.unwrap(), 1);

    // The queue is observable as change events: pending → running → completed.
    let mut statuses = Vec::new();
    while statuses.len() < 3 {
        let e = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
        statuses.push(e.document.unwrap().get("status").and_then(Value::as_str).unwrap().to_string());
    }
    assert_eq!(statuses, ["pending", "running", "completed"]);

    // close() shuts the workers down; the queue survives the reopen.
    let later = workers.enqueue(Job::new("invoice").delay(Duration::from_secs(3600))).await.unwrap();
    db.close().await.unwrap();
    assert!(workers.start().is_err(), "shut down by close");
    let db = Aurora::with_config(AuroraConfig::new(dir.path())).await.unwrap();
    let workers = db.workers(WorkerConfig::default()).await.unwrap();
    assert_eq!(workers.job_status(&job).await.unwrap(), Some(JobStatus::Completed));
    assert_eq!(workers.job_status(&later).await.unwrap(), Some(JobStatus::Scheduled));
    db.close().await.unwrap();
}
