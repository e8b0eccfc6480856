//! Every job attempt is a `job_attempt` span with the job's id, type and
//! attempt number (never its payload), and its events say how it ended:
//! retry scheduled, dead letter, failed permanently, completed; the
//! handler's own events carry the span. One test in this binary: it
//! installs the global subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_core::doc;
use aurora_workers::{Backoff, Job, JobError, JobStatus, WorkerConfig, Workers};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_attempts_are_spans_and_their_endings_are_events() {
    let out = Captured::default();
    let writer = out.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let dir = tempfile::tempdir().unwrap();
    let docs = aurora_storage::DocumentStore::open(dir.path(), Default::default(), Default::default()).unwrap();
    let db = aurora_txn::Database::without_sink(aurora_index::Collections::open(docs, Default::default()).unwrap());
    let config = WorkerConfig {
        backoff: Backoff { base: Duration::from_millis(10), factor: 1, max: Duration::from_millis(10), jitter: 0.0 },
        ..WorkerConfig::default()
    };
    let workers = Workers::new(db, config).unwrap();
    workers.register_handler("flaky", |_| async {
        tracing::info!("handler says hello");
        Err(JobError::retry("upstream is down"))
    });
    workers.register_handler("broken", |_| async { Err(JobError::permanent("bad input")) });
    workers.register_handler("fine", |_| async { Ok(()) });
    workers.start().unwrap();
    let wait = Duration::from_secs(10);
    let flaky = workers.enqueue(Job::new("flaky").max_retries(1).payload(doc! { "secret": "hunter2" })).await.unwrap();
    let broken = workers.enqueue(Job::new("broken")).await.unwrap();
    let fine = workers.enqueue(Job::new("fine")).await.unwrap();
    assert_eq!(workers.wait_for(&flaky, wait).await.unwrap(), Some(JobStatus::DeadLetter));
    assert_eq!(workers.wait_for(&broken, wait).await.unwrap(), Some(JobStatus::Failed));
    assert_eq!(workers.wait_for(&fine, wait).await.unwrap(), Some(JobStatus::Completed));
    workers.shutdown().await.unwrap();

    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let lines = |needle: &str| text.lines().filter(|l| l.contains(needle)).map(str::to_string).collect::<Vec<_>>();
    let retry = lines("retry scheduled");
    assert_eq!(retry.len(), 1, "{text}");
    assert!(
        retry[0].contains(&format!("job={flaky}"))
            && retry[0].contains("attempt=1")
            && retry[0].contains("upstream is down"),
        "{}",
        retry[0]
    );
    let dead = lines("dead letter");
    assert!(dead.len() == 1 && dead[0].contains("attempt=2") && dead[0].contains("job_type=flaky"), "{text}");
    assert!(lines("failed permanently").iter().any(|l| l.contains(&format!("job={broken}"))), "{text}");
    assert!(lines("job completed").iter().any(|l| l.contains(&format!("job={fine}"))), "{text}");
    let hello = lines("handler says hello");
    assert!(
        hello.len() == 2 && hello.iter().all(|l| l.contains("job_attempt") && l.contains("job_type=flaky")),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "no payload in any span or event");
}
