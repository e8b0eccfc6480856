//! Query benchmarks next to SQLite (rusqlite, bundled, WAL; same documents
//! as columns, same indexes) in the same run:
//!
//! - `indexed_eq`: equality on an indexed field (≈10 matches);
//! - `indexed_range_limit`: a range on an indexed field, ordered, limit 10;
//! - `full_scan/{10000,100000}`: a predicate on an unindexed field over the
//!   whole collection (≈1% matches);
//! - `aggregate`: count and average grouped by a field;
//! - `computed`: a filter on two computed fields (a concatenation and a
//!   JavaScript expression) over 10 000 documents, vs the same SQL expressions.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aurora_core::{doc, DocId, FieldDefinition, FieldType};
use aurora_index::{Collections, IndexConfig, Schema};
use aurora_query::{Aggregate, ComputedFields, Expression, Filter, Order, Query, F};
use aurora_storage::{DocumentStore, DocumentStoreConfig, StoreConfig};
use aurora_txn::Database;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rusqlite::{params, Connection};
use std::hint::black_box;

fn setup(n: u64) -> (tempfile::TempDir, Database, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let docs =
        DocumentStore::open(dir.path().join("aurora"), StoreConfig::default(), DocumentStoreConfig::default()).unwrap();
    let collections = Collections::open(docs, IndexConfig::default()).unwrap();
    collections
        .create_collection(
            "items",
            Schema::new()
                .field("cat", FieldDefinition::new(FieldType::Int).indexed())
                .field("price", FieldDefinition::new(FieldType::Int).indexed())
                .field("score", FieldDefinition::new(FieldType::Int)),
        )
        .unwrap();
    let db = Database::without_sink(collections);
    let conn = Connection::open(dir.path().join("q.sqlite")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(
        "CREATE TABLE items (id TEXT PRIMARY KEY, cat INTEGER, price INTEGER, score INTEGER, name TEXT);
         CREATE INDEX items_cat ON items(cat); CREATE INDEX items_price ON items(price);",
    )
    .unwrap();
    let item = |i: u64| (i % (n / 10).max(1), (i * 7919) % 100_000, i % 100);
    for chunk in (0..n).collect::<Vec<_>>().chunks(2000) {
        db.transaction(|tx| {
            for &i in chunk {
                let (cat, price, score) = item(i);
                let d = doc! { "cat": cat as i64, "price": price as i64, "score": score as i64, "name": format!("item {i}") };
                tx.upsert("items", d.id(DocId::text(&format!("i{i:07}")).unwrap()))?;
            }
            Ok(())
        })
        .unwrap();
        let t = conn.unchecked_transaction().unwrap();
        for &i in chunk {
            let (cat, price, score) = item(i);
            t.execute(
                "INSERT INTO items VALUES (?1, ?2, ?3, ?4, ?5)",
                params![format!("i{i:07}"), cat, price, score, format!("item {i}")],
            )
            .unwrap();
        }
        t.commit().unwrap();
    }
    db.collections().documents().store().checkpoint().unwrap();
    (dir, db, conn)
}

fn run(db: &Database, q: &Query) -> usize {
    let mut tx = db.begin().unwrap();
    q.collect(&mut tx).unwrap().len()
}

fn queries(c: &mut Criterion) {
    let (_dir, db, conn) = setup(10_000);
    let mut g = c.benchmark_group("query");
    g.throughput(Throughput::Elements(1));
    let mut k = 0i64;
    g.bench_function("indexed_eq/aurora", |b| {
        b.iter(|| {
            k = (k + 7) % 1000;
            black_box(run(&db, &Query::new("items").filter(|f| f.eq("cat", k))))
        })
    });
    let mut stmt = conn.prepare("SELECT id, cat, price, score, name FROM items WHERE cat = ?1").unwrap();
    g.bench_function("indexed_eq/sqlite", |b| {
        b.iter(|| {
            k = (k + 7) % 1000;
            black_box(stmt.query_map(params![k], |r| r.get::<_, String>(0)).unwrap().count())
        })
    });
    g.bench_function("indexed_range_limit/aurora", |b| {
        b.iter(|| {
            k = (k + 7) % 90_000;
            let q = Query::new("items")
                .filter(|f| f.gte("price", k) & f.lt("price", k + 5000))
                .order_by("price", Order::Asc)
                .limit(10);
            black_box(run(&db, &q))
        })
    });
    let mut stmt = conn
        .prepare(
            "SELECT id, cat, price, score, name FROM items WHERE price >= ?1 AND price < ?2 ORDER BY price LIMIT 10",
        )
        .unwrap();
    g.bench_function("indexed_range_limit/sqlite", |b| {
        b.iter(|| {
            k = (k + 7) % 90_000;
            black_box(stmt.query_map(params![k, k + 5000], |r| r.get::<_, String>(0)).unwrap().count())
        })
    });
    g.bench_function("aggregate/aurora", |b| {
        b.iter(|| {
            let mut tx = db.begin().unwrap();
            let q = Query::new("items").filter(|f| f.lt("score", 10));
            black_box(
                q.aggregate(&mut tx, Some("score"), &[Aggregate::Count, Aggregate::Avg("price".into())]).unwrap().len(),
            )
        })
    });
    let mut stmt =
        conn.prepare("SELECT score, COUNT(*), AVG(price) FROM items WHERE score < 10 GROUP BY score").unwrap();
    g.bench_function("aggregate/sqlite", |b| {
        b.iter(|| black_box(stmt.query_map([], |r| r.get::<_, i64>(1)).unwrap().count()))
    });
    g.finish();

    let mut g = c.benchmark_group("computed");
    g.sample_size(10);
    let computed = ComputedFields::default();
    let store = db.collections().documents().store().clone();
    computed
        .register(
            &store,
            "items",
            "label",
            Expression::Concat { fields: vec!["name".into(), "cat".into()], separator: "/".into() },
        )
        .unwrap();
    computed
        .register(
            &store,
            "items",
            "band",
            Expression::Custom {
                code: "if (score < 50) return 'low'; return 'high';".into(),
                dependencies: vec!["score".into()],
            },
        )
        .unwrap();
    // 10 000 sandboxed evaluations take longer than the default 1 s budget.
    let limits = aurora_query::ScriptLimits { query_budget: std::time::Duration::from_secs(60), ..Default::default() };
    let with_computed = |f: Filter| {
        Query::new("items").where_filter(f).with_computed(computed.for_collection("items")).with_script_limits(limits)
    };
    g.bench_function("concat_and_js_over_10000/aurora", |b| {
        b.iter(|| black_box(run(&db, &with_computed(F.eq("band", "low") & F.starts_with("label", "item 1")))))
    });
    let mut stmt = conn
        .prepare(
            "SELECT id, name || '/' || cat AS label, CASE WHEN score < 50 THEN 'low' ELSE 'high' END AS band FROM items
             WHERE band = 'low' AND label LIKE 'item 1%'",
        )
        .unwrap();
    g.bench_function("concat_and_js_over_10000/sqlite", |b| {
        b.iter(|| black_box(stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().count()))
    });
    g.finish();

    let mut g = c.benchmark_group("full_scan");
    g.sample_size(10);
    full_scan(&mut g, 10_000, &db, &conn);
    let (_big_dir, big_db, big_conn) = setup(100_000);
    full_scan(&mut g, 100_000, &big_db, &big_conn);
    g.finish();
}

/// A predicate on an unindexed field (~1% of documents match).
fn full_scan(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: u64,
    db: &Database,
    conn: &Connection,
) {
    g.bench_function(BenchmarkId::new("aurora", n), |b| {
        b.iter(|| black_box(run(db, &Query::new("items").filter(|f| f.eq("score", 42)))))
    });
    let mut stmt = conn.prepare("SELECT id, cat, price, score, name FROM items WHERE score = 42").unwrap();
    g.bench_function(BenchmarkId::new("sqlite", n), |b| {
        b.iter(|| black_box(stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().count()))
    });
}

criterion_group!(benches, queries);
criterion_main!(benches);
