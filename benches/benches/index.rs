//! Index benchmarks, next to raw sled doing the equivalent in the same run:
//!
//! - `insert_indexed/{0,1,2}`: inserting a document into a collection with
//!   0, 1 or 2 indexed fields (`Balanced`), vs sled inserting the document
//!   plus one key per index entry;
//! - `lookup`: an equality lookup and a range lookup (returning ids) on an
//!   indexed field of 10 000 documents, vs a sled prefix/range scan over an
//!   equivalent hand-built index.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aurora_benches::user;
use aurora_core::{FieldDefinition, FieldType, Value};
use aurora_index::{Collections, IndexConfig, Schema};
use aurora_storage::{format, DocumentStore, DocumentStoreConfig, StoreConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::ops::Bound;

const DOCS: u64 = 10_000;

fn open(dir: &std::path::Path) -> Collections {
    let docs = DocumentStore::open(dir, StoreConfig::default(), DocumentStoreConfig::default()).unwrap();
    Collections::open(docs, IndexConfig::default()).unwrap()
}

fn schema(indexed: usize) -> Schema {
    let mut s = Schema::new();
    if indexed >= 1 {
        s = s.field("age", FieldDefinition::new(FieldType::Int).indexed());
    }
    if indexed >= 2 {
        s = s.field("email", FieldDefinition::new(FieldType::String).unique());
    }
    s
}

fn sled_index_key(field: &str, value: &Value, id: &[u8]) -> Vec<u8> {
    let mut k = format!("x{field}\0").into_bytes();
    k.extend_from_slice(&aurora_index::keycodec::encode(value));
    k.extend_from_slice(id);
    k
}

fn inserts(c: &mut Criterion) {
    let mut g = c.benchmark_group("insert_indexed");
    g.throughput(Throughput::Elements(1));
    for indexed in [0usize, 1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        db.create_collection("users", schema(indexed)).unwrap();
        let mut n = 0u64;
        g.bench_function(BenchmarkId::new("aurora", indexed), |b| {
            b.iter(|| {
                n += 1;
                db.insert("users", user(n)).unwrap()
            })
        });
        db.documents().store().close().unwrap();

        let sdir = tempfile::tempdir().unwrap();
        let sled_db = sled::Config::new().path(sdir.path()).open().unwrap();
        let mut n = 0u64;
        g.bench_function(BenchmarkId::new("sled", indexed), |b| {
            b.iter(|| {
                n += 1;
                let d = user(n);
                let id = d.id.to_key_bytes();
                sled_db.insert(aurora_storage::document_key("users", &d.id), format::encode(&d).unwrap()).unwrap();
                for field in ["age", "email"].iter().take(indexed) {
                    sled_db.insert(sled_index_key(field, d.get(field).unwrap(), &id), &[][..]).unwrap();
                }
            })
        });
    }
    g.finish();
}

fn lookups(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.create_collection("users", schema(1)).unwrap();
    let sdir = tempfile::tempdir().unwrap();
    let sled_db = sled::Config::new().path(sdir.path()).open().unwrap();
    for i in 0..DOCS {
        let d = user(i);
        sled_db.insert(sled_index_key("age", d.get("age").unwrap(), &d.id.to_key_bytes()), &[][..]).unwrap();
        db.insert("users", d).unwrap();
    }
    db.documents().store().checkpoint().unwrap();
    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(1));
    let mut age = 0i64;
    g.bench_function("eq/aurora", |b| {
        b.iter(|| {
            age = (age + 7) % 90;
            black_box(db.lookup("users", "age", &Value::Int(age)).unwrap())
        })
    });
    g.bench_function("eq/sled", |b| {
        b.iter(|| {
            age = (age + 7) % 90;
            let mut prefix = b"xage\0".to_vec();
            prefix.extend_from_slice(&aurora_index::keycodec::encode(&Value::Int(age)));
            black_box(sled_db.scan_prefix(&prefix).map(|kv| kv.unwrap().0).collect::<Vec<_>>())
        })
    });
    g.bench_function("range/aurora", |b| {
        b.iter(|| {
            age = (age + 7) % 80;
            let (lo, hi) = (Value::Int(age), Value::Int(age + 5));
            black_box(db.range("users", "age", Bound::Included(&lo), Bound::Excluded(&hi)).unwrap())
        })
    });
    g.bench_function("range/sled", |b| {
        b.iter(|| {
            age = (age + 7) % 80;
            let lo = sled_index_key("age", &Value::Int(age), &[]);
            let hi = sled_index_key("age", &Value::Int(age + 5), &[]);
            black_box(sled_db.range(lo..hi).map(|kv| kv.unwrap().0).collect::<Vec<_>>())
        })
    });
    g.finish();
}

criterion_group!(benches, inserts, lookups);
criterion_main!(benches);
