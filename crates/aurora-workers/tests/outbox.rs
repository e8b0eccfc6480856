//! The transactional outbox (a job exists iff its transaction committed),
//! job changes on the change stream, and queue order as a property.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{doc, FieldDefinition, FieldType, Value};
use aurora_index::Schema;
use aurora_storage::Durability;
use aurora_txn::TxnError;
use aurora_workers::{EnqueueExt, Job, JobStatus, Priority, Workers, JOBS};
use common::*;
use parking_lot::Mutex;
use proptest::prelude::*;
use std::sync::Arc;

fn orders_schema() -> Schema {
    Schema::new().field("sku", FieldDefinition::new(FieldType::String).unique())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_exists_if_and_only_if_its_transaction_committed() {
    let (_dir, db) = temp_db();
    db.collections().create_collection("orders", orders_schema()).unwrap();
    let clock = clock();
    let w = Workers::new(db.clone(), config(&clock, 2)).unwrap();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let r = Arc::clone(&ran);
    w.register_handler("ship", move |job| {
        r.lock().push(job.field("order").cloned());
        async { Ok(()) }
    });
    w.start().unwrap();

    // Rolled back explicitly, dropped, and refused at commit: no job each time.
    let mut tx = db.begin().unwrap();
    tx.insert("orders", doc! { "sku": "a" }).unwrap();
    tx.enqueue(Job::new("ship").payload(doc! { "order": "a" })).unwrap();
    tx.rollback();
    {
        let mut tx = db.begin().unwrap();
        tx.enqueue(Job::new("ship").payload(doc! { "order": "dropped" })).unwrap();
    }
    db.transaction(|tx| tx.insert("orders", doc! { "sku": "dup" }).map(|_| ())).unwrap();
    let mut tx = db.begin().unwrap();
    tx.insert("orders", doc! { "sku": "dup" }).unwrap(); // unique violation at commit
    tx.enqueue(Job::new("ship").payload(doc! { "order": "dup" })).unwrap();
    assert!(matches!(tx.commit(), Err(TxnError::Index(_))));
    // A conflict loses the job too.
    let order = db.transaction(|tx| tx.insert("orders", doc! { "sku": "c" })).unwrap();
    let mut loser = db.begin().unwrap();
    loser.update("orders", &order, [("note".to_string(), Value::from("x"))].into()).unwrap();
    loser.enqueue(Job::new("ship").payload(doc! { "order": "conflict" })).unwrap();
    db.transaction(|tx| tx.update("orders", &order, [("note".to_string(), Value::from("y"))].into()).map(|_| ()))
        .unwrap();
    assert!(matches!(loser.commit(), Err(TxnError::Conflict { .. })));
    settle().await;
    assert!(ran.lock().is_empty());
    assert_eq!(w.counts().await.unwrap().values().sum::<u64>(), 0, "no job from any failed transaction");

    // Committed: the order and its job together.
    let job = db
        .transaction(|tx| {
            tx.insert("orders", doc! { "sku": "b" })?;
            tx.enqueue(Job::new("ship").payload(doc! { "order": "b" }))
        })
        .unwrap();
    eventually("the committed job ran", || async { w.job_status(&job).await.unwrap() == Some(JobStatus::Completed) })
        .await;
    assert_eq!(*ran.lock(), [Some(Value::from("b"))]);
    // An invalid job aborts the transaction with a typed error, writing nothing.
    let err = db
        .transaction(|tx| {
            tx.insert("orders", doc! { "sku": "z" })?;
            tx.enqueue(Job::new(""))
        })
        .unwrap_err();
    assert!(matches!(err, TxnError::Aborted(_)), "{err}");
    assert_eq!(db.collections().lookup("orders", "sku", &Value::from("z")).unwrap().len(), 0);
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_state_changes_are_committed_changes_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let db = open_db(dir.path(), Durability::Balanced, recorder.clone());
    db.collections().create_collection("orders", orders_schema()).unwrap();
    let clock = clock();
    let w = Workers::new(db.clone(), config(&clock, 1)).unwrap();
    w.register_handler("ship", |_| async { Ok(()) });
    w.start().unwrap();
    let id = db
        .transaction(|tx| {
            tx.insert("orders", doc! { "sku": "a" })?;
            tx.enqueue(Job::new("ship"))
        })
        .unwrap();
    eventually("done", || async { w.job_status(&id).await.unwrap() == Some(JobStatus::Completed) }).await;
    w.shutdown().await.unwrap();
    let log = recorder.0.lock().clone();
    let enqueue = log.iter().find(|c| c.changes.iter().any(|ch| ch.id == id)).unwrap();
    assert!(enqueue.changes.iter().any(|c| c.collection == "orders"), "the job was published with the order");
    let statuses: Vec<String> = log
        .iter()
        .flat_map(|c| c.changes.iter())
        .filter(|c| c.collection == JOBS && c.id == id)
        .map(|c| c.new.as_ref().unwrap().get("status").and_then(Value::as_str).unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["pending", "running", "completed"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(8)
    ))]

    /// With one worker, jobs run in priority order, FIFO within a priority,
    /// whatever mix of priorities and delays was enqueued.
    #[test]
    fn one_worker_runs_jobs_in_queue_order(jobs in prop::collection::vec((0u8..4, prop::bool::ANY), 1..24)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let (_dir, clock, w) = workers(1);
            let order = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::clone(&order);
            w.register_handler("t", move |job| {
                seen.lock().push(job.field("n").and_then(Value::as_i64).unwrap());
                async { Ok(()) }
            });
            let prio = |p: u8| [Priority::Low, Priority::Normal, Priority::High, Priority::Critical][p as usize];
            let mut now_jobs = Vec::new();
            let mut later_jobs = Vec::new();
            for (n, (p, later)) in jobs.iter().enumerate() {
                let mut job = Job::new("t").priority(prio(*p)).payload(doc! { "n": n as i64 });
                if *later {
                    job = job.delay(std::time::Duration::from_secs(60));
                    later_jobs.push((prio(*p), n as i64));
                } else {
                    now_jobs.push((prio(*p), n as i64));
                }
                w.enqueue(job).await.unwrap();
            }
            w.start().unwrap();
            eventually("due jobs ran", || async { order.lock().len() == now_jobs.len() }).await;
            clock.advance(std::time::Duration::from_secs(60));
            eventually("all ran", || async { order.lock().len() == jobs.len() }).await;
            w.shutdown().await.unwrap();
            let sorted = |mut v: Vec<(Priority, i64)>| {
                v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                v.into_iter().map(|e| e.1).collect::<Vec<_>>()
            };
            let mut expected = sorted(now_jobs);
            expected.extend(sorted(later_jobs));
            assert_eq!(*order.lock(), expected);
        });
    }
}
