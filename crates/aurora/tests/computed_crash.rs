//! An engine crash while a query evaluates a JavaScript computed field
//! (simulated by sending `SIGSEGV` to the sandbox process running it) is a
//! typed error; the host process and the database keep working. Alone in its
//! test binary so the only running sandbox is this test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::query_engine::{QueryError, ScriptError};
use aurora::{doc, Aurora, Error, Expression, Value};
use std::time::{Duration, Instant};

/// Child processes of this process named `aurora-js-sandbox` that are running (state `R`).
fn running_sandboxes() -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{}/task", std::process::id())).into_iter().flatten().flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
            if cmd.starts_with("aurora-js-sandbox") && state == Some("R") {
                out.push(pid);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_crash_fails_the_query_and_the_database_goes_on() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("t", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    for i in 0..40 {
        db.insert_into("t", doc! { "i": i }).await.unwrap();
    }
    // 20 ms of work per document: the sandbox is running most of the time.
    let busy = "const t = Date.now(); while (Date.now() - t < 20) {} return i;";
    db.register_computed("t", "busy", Expression::Custom { code: busy.into(), dependencies: vec!["i".into()] })
        .await
        .unwrap();
    let crasher = std::thread::spawn(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(pid) = running_sandboxes().first() {
                return std::process::Command::new("kill").args(["-SEGV", &pid.to_string()]).status().is_ok();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    });
    let err = db.query("t").collect().await.unwrap_err();
    assert!(crasher.join().unwrap(), "found the running sandbox");
    match err {
        Error::Query(QueryError::ComputedFailed { reason: ScriptError::Crashed(how), .. }) => {
            assert!(how.contains("SIGSEGV"), "{how}")
        }
        other => panic!("{other:?}"),
    }
    // The host is alive, the database works, and scripts run again.
    db.insert_into("t", doc! { "i": 100 }).await.unwrap();
    db.unregister_computed("t", "busy").await.unwrap();
    db.register_computed(
        "t",
        "twice",
        Expression::Custom { code: "return i * 2;".into(), dependencies: vec!["i".into()] },
    )
    .await
    .unwrap();
    let n = db.query("t").filter(|f| f.eq("twice", Value::Int(200))).count().await.unwrap();
    assert_eq!(n, 1);
}
