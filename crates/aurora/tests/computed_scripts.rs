//! JavaScript computed fields (`Expression::Custom`) through the database
//! handle, as a hostile user would write them (issue 14): every query fails
//! promptly with a typed error, state never leaks between evaluations,
//! collections or databases, the per-query budget holds, and a query with
//! scripts never holds a tokio worker. Bounds are generous for a loaded
//! 2-core machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::query_engine::{QueryError, ScriptError};
use aurora::{doc, Aurora, Error, Expression, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn script(code: &str, dependencies: &[&str]) -> Expression {
    Expression::Custom { code: code.into(), dependencies: dependencies.iter().map(|d| d.to_string()).collect() }
}

fn reason(e: Error) -> ScriptError {
    match e {
        Error::Query(QueryError::ComputedFailed { reason, .. }) => reason,
        other => panic!("not a computed-field failure: {other:?}"),
    }
}

async fn one_value(db: &Aurora, collection: &str, field: &str) -> Result<Value, Error> {
    let docs = db.query(collection).select([field]).collect().await?;
    Ok(docs.first().and_then(|d| d.get(field)).cloned().unwrap_or(Value::Null))
}

#[tokio::test]
async fn hostile_scripts_fail_promptly_with_typed_errors_and_the_database_goes_on() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("t", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    db.insert_into("t", doc! { "s": "a" }).await.unwrap();
    let cases = [
        ("regex", "return /^(a+)+$/.test(s.repeat(34) + '!');"),
        ("join", "return Array.prototype.join.call({ length: 2 ** 40 }, '');"),
        ("spin", "while (true) {}"),
    ];
    for (name, code) in cases {
        db.register_computed("t", name, script(code, &["s"])).await.unwrap();
        let started = Instant::now();
        let err = db.query("t").count().await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{name}: {:?}", started.elapsed());
        assert!(matches!(reason(err), ScriptError::TimeLimit(_)), "{name}");
        assert!(db.unregister_computed("t", name).await.unwrap());
    }
    db.register_computed("t", "hog", script("let a = []; while (true) a.push('x'.repeat(1000));", &[])).await.unwrap();
    let err = reason(db.query("t").count().await.unwrap_err());
    // QuickJS itself sometimes segfaults when it runs out of memory: then the
    // sandbox dies and the query gets `Crashed`, like any other engine crash.
    assert!(
        matches!(err, ScriptError::MemoryLimit(_) | ScriptError::TimeLimit(_) | ScriptError::Crashed(_)),
        "{err:?}"
    );
    db.unregister_computed("t", "hog").await.unwrap();
    // The database and later scripts are unaffected.
    db.insert_into("t", doc! { "s": "b" }).await.unwrap();
    db.register_computed("t", "up", script("return s.toUpperCase();", &["s"])).await.unwrap();
    let mut ups: Vec<Value> =
        db.query("t").collect().await.unwrap().iter().filter_map(|d| d.get("up").cloned()).collect();
    ups.sort();
    assert_eq!(ups, [Value::from("A"), Value::from("B")]);
}

#[tokio::test]
async fn a_body_that_closes_the_function_early_is_refused_at_registration() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("t", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    let err = db
        .register_computed("t", "x", script("return 1; }); globalThis.ran = 1; (function () {", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Query(QueryError::InvalidComputed { .. })), "{err:?}");
    let err = db.register_computed("t", "y", script("return 1;", &["a) { x(); }; (function ("])).await.unwrap_err();
    assert!(matches!(err, Error::Query(QueryError::InvalidComputed { .. })), "{err:?}");
}

#[tokio::test]
async fn no_state_leaks_between_documents_collections_or_databases() {
    let one = Aurora::temporary().await.unwrap();
    let two = Aurora::temporary().await.unwrap();
    for db in [&one, &two] {
        for c in ["counter", "poison", "probe"] {
            db.new_collection(c, Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
        }
        for _ in 0..3 {
            db.insert_into("counter", doc! { "x": 1 }).await.unwrap();
        }
        db.insert_into("poison", doc! { "x": 1 }).await.unwrap();
        db.insert_into("probe", doc! { "n": 1, "s": "abc" }).await.unwrap();
        db.register_computed(
            "counter",
            "n",
            script("globalThis.n = (globalThis.n || 0) + 1; return globalThis.n;", &[]),
        )
        .await
        .unwrap();
        db.register_computed(
            "probe",
            "v",
            script(
                "return Math.max(n, 0) + ':' + s.toUpperCase() + ':' + (typeof dirty === 'undefined' ? 'clean' : dirty);",
                &["n", "s"],
            ),
        )
        .await
        .unwrap();
    }
    one.register_computed(
        "poison",
        "p",
        script(
            "String.prototype.toUpperCase = () => 'pwned'; Math.max = () => 666; globalThis.dirty = 'yes'; return 0;",
            &[],
        ),
    )
    .await
    .unwrap();
    for _ in 0..2 {
        // Same documents, every time: 1, never 2.
        for db in [&one, &two] {
            let ns: Vec<Value> =
                db.query("counter").collect().await.unwrap().iter().filter_map(|d| d.get("n").cloned()).collect();
            assert_eq!(ns, [Value::Int(1), Value::Int(1), Value::Int(1)]);
        }
        assert_eq!(one_value(&one, "poison", "p").await.unwrap(), Value::Int(0));
        for db in [&one, &two] {
            assert_eq!(one_value(db, "probe", "v").await.unwrap(), Value::from("1:ABC:clean"));
        }
    }
}

#[tokio::test]
async fn the_time_limit_is_per_query_not_per_document() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("t", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    for i in 0..100 {
        db.insert_into("t", doc! { "i": i }).await.unwrap();
    }
    // 30 ms a document, under the 50 ms limit; 100 documents would be 3 s.
    let slow = "const t = Date.now(); while (Date.now() - t < 30) {} return i;";
    db.register_computed("t", "slow", script(slow, &["i"])).await.unwrap();
    let started = Instant::now();
    let err = reason(db.query("t").collect().await.unwrap_err());
    assert!(matches!(err, ScriptError::QueryBudget(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(2500), "stopped after {:?}", started.elapsed());
}

#[tokio::test(flavor = "current_thread")]
async fn a_query_with_scripts_never_holds_the_executor() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("t", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    for i in 0..15 {
        db.insert_into("t", doc! { "i": i }).await.unwrap();
    }
    let slow = "const t = Date.now(); while (Date.now() - t < 20) {} return i;";
    db.register_computed("t", "slow", script(slow, &["i"])).await.unwrap();
    // On a single-threaded runtime, a ticker only ticks if the query
    // yields the thread while scripts run.
    let ticks = Arc::new(AtomicU64::new(0));
    let t = Arc::clone(&ticks);
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            t.fetch_add(1, Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    let rows = db.query("t").collect().await.unwrap();
    let took = started.elapsed();
    ticker.abort();
    assert_eq!(rows.len(), 15);
    let ticks = ticks.load(Ordering::Relaxed);
    assert!(ticks >= 10, "the executor ticked {ticks} times during a {took:?} query");
}

#[tokio::test]
async fn script_limits_come_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = aurora::AuroraConfig::new(dir.path());
    config.script_limits.query_budget = Duration::from_millis(150);
    let db = Aurora::with_config(config.clone()).await.unwrap();
    db.new_collection("t", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    for i in 0..20 {
        db.insert_into("t", doc! { "i": i }).await.unwrap();
    }
    let slow = "const t = Date.now(); while (Date.now() - t < 30) {} return i;";
    db.register_computed("t", "slow", script(slow, &["i"])).await.unwrap();
    let err = reason(db.query("t").count().await.unwrap_err());
    assert_eq!(err, ScriptError::QueryBudget(Duration::from_millis(150)));
    db.close().await.unwrap();
    config.script_limits.time = Duration::ZERO;
    assert!(matches!(Aurora::with_config(config).await, Err(Error::InvalidConfig { .. })));
}
