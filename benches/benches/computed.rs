//! The cost of evaluating a JavaScript computed field (`Expression::Custom`),
//! per document over 10 000 documents, two ways:
//!
//! - `in_process_quickjs`: what Aurora did before issue 14 — one QuickJS
//!   runtime and context per thread, the function compiled once and cached,
//!   called on the calling thread (no isolation, no reset);
//! - `sandbox`: what it does now — an `aurora_js::Session` (one sandbox
//!   process per query, a fresh runtime and context per evaluation, the
//!   function-body check, a round trip over pipes);
//! - `query_10000`: a whole query reading 10 000 documents with that field
//!   through the query engine (sandboxed).
//!
//! The script is the study's example: `if (age < 18) return 'minor'; return 'adult';`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aurora_core::{doc, Value};
use aurora_index::{Collections, IndexConfig, Schema};
use aurora_query::{ComputedFields, Expression, Query, F};
use aurora_storage::{DocumentStore, DocumentStoreConfig, StoreConfig};
use aurora_txn::Database;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rquickjs::{Context, Function, Runtime};
use std::hint::black_box;
use std::time::Duration;

const DOCS: u64 = 10_000;
const BODY: &str = "if (age < 18) return 'minor'; return 'adult';";

/// The pre-issue-14 evaluator: one runtime, one context, one compiled
/// function, reused for every document.
fn in_process(ages: &[i64]) -> usize {
    thread_local! {
        static ENGINE: (Runtime, Context) = {
            let rt = Runtime::new().unwrap();
            rt.set_memory_limit(16 << 20);
            let ctx = Context::full(&rt).unwrap();
            ctx.with(|c| c.globals().set("__f", c.eval::<Function<'_>, _>(format!("(function(age) {{ {BODY} \n}})")).unwrap()).unwrap());
            (rt, ctx)
        };
    }
    ENGINE.with(|(_, ctx)| {
        ctx.with(|c| {
            let f: Function<'_> = c.globals().get("__f").unwrap();
            ages.iter().filter(|&&a| f.call::<_, String>((a as f64,)).unwrap() == "minor").count()
        })
    })
}

fn sandboxed(ages: &[i64]) -> usize {
    // Generous limits: this measures cost, not how a loaded machine schedules.
    let limits = aurora_js::Limits {
        time: Duration::from_secs(1),
        query_budget: Duration::from_secs(3600),
        ..Default::default()
    };
    let mut s = aurora_js::Session::new(limits);
    let params = vec!["age".to_string()];
    ages.iter().filter(|&&a| s.evaluate(&params, BODY, vec![Value::Int(a)]).unwrap() == Value::from("minor")).count()
}

fn evaluation(c: &mut Criterion) {
    let ages: Vec<i64> = (0..DOCS as i64).map(|i| i % 90).collect();
    assert_eq!(in_process(&ages), sandboxed(&ages));
    let mut g = c.benchmark_group("computed_js");
    g.sample_size(10).measurement_time(Duration::from_secs(10)).throughput(Throughput::Elements(DOCS));
    g.bench_function("in_process_quickjs/10000", |b| b.iter(|| black_box(in_process(&ages))));
    g.bench_function("sandbox/10000", |b| b.iter(|| black_box(sandboxed(&ages))));

    let dir = tempfile::tempdir().unwrap();
    let docs = DocumentStore::open(dir.path(), StoreConfig::default(), DocumentStoreConfig::default()).unwrap();
    let collections = Collections::open(docs, IndexConfig::default()).unwrap();
    collections.create_collection("users", Schema::new()).unwrap();
    let db = Database::without_sink(collections);
    db.transaction(|tx| {
        for &a in &ages {
            tx.insert("users", doc! { "age": a })?;
        }
        Ok(())
    })
    .unwrap();
    let computed = ComputedFields::default();
    let store = db.collections().documents().store().clone();
    let category = Expression::Custom { code: BODY.into(), dependencies: vec!["age".into()] };
    computed.register(&store, "users", "category", category).unwrap();
    let limits = aurora_query::ScriptLimits {
        time: Duration::from_secs(1),
        query_budget: Duration::from_secs(3600),
        ..Default::default()
    };
    let query = Query::new("users")
        .where_filter(F.eq("category", "minor"))
        .with_computed(computed.for_collection("users"))
        .with_script_limits(limits);
    g.bench_function("query_10000/sandbox", |b| {
        b.iter(|| {
            let mut tx = db.begin().unwrap();
            black_box(query.count(&mut tx).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, evaluation);
criterion_main!(benches);
