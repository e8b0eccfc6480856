//! Helpers shared by the index integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aurora_core::{DocId, FieldDefinition, FieldType, Value};
use aurora_index::{Collections, IndexConfig, Schema};
use aurora_storage::{DocumentStore, DocumentStoreConfig, Durability, StoreConfig};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

pub fn open(dir: &Path, config: IndexConfig) -> Collections {
    let store = StoreConfig {
        durability: Durability::Balanced,
        cold_cache_capacity_mb: 8,
        checkpoint_interval: Duration::from_secs(3600),
        ..StoreConfig::default()
    };
    let docs =
        DocumentStore::open(dir, store, DocumentStoreConfig { hot_cache_size_mb: 4, ..Default::default() }).unwrap();
    Collections::open(docs, config).unwrap()
}

/// `users`: unique `email`, indexed `age`, indexed array `tags`, indexed nested `address.city`.
pub fn users_schema() -> Schema {
    Schema::new()
        .field("email", FieldDefinition::new(FieldType::String).unique().nullable())
        .field("age", FieldDefinition::new(FieldType::Int).indexed().nullable())
        .field("tags", FieldDefinition::new(FieldType::Array).indexed().nullable())
        .field("address.city", FieldDefinition::new(FieldType::String).indexed().nullable())
}

/// The naive answer: ids whose `field` equals `value` or, for arrays, contains it.
pub fn naive(db: &Collections, collection: &str, field: &str, value: &Value) -> BTreeSet<DocId> {
    db.documents()
        .scan(collection)
        .unwrap()
        .map(Result::unwrap)
        .filter(|d| match d.get_path(field) {
            Some(Value::Array(items)) => items.contains(value),
            Some(v) => v == value,
            None => false,
        })
        .map(|d| d.id)
        .collect()
}

/// Checks every index of `collection` against a rebuild from the documents:
/// each lookup of every value present equals the naive scan, and the entry
/// count equals the number of (document, distinct value) pairs.
pub fn check_indexes(db: &Collections, collection: &str) {
    let def = db.definition(collection).unwrap();
    let docs: Vec<_> = db.documents().scan(collection).unwrap().map(Result::unwrap).collect();
    for field in def.indexes.keys() {
        if aurora_index::compound::is_compound(field) {
            check_compound(db, collection, field, &docs);
            continue;
        }
        let mut values = BTreeSet::new();
        let mut expected_entries = 0u64;
        for d in &docs {
            let vals: BTreeSet<Value> = match d.get_path(field) {
                Some(Value::Array(items)) => items.iter().cloned().collect(),
                Some(v) => [v.clone()].into(),
                None => BTreeSet::new(),
            };
            expected_entries += vals.len() as u64;
            values.extend(vals);
        }
        for v in &values {
            let got: BTreeSet<DocId> = db.lookup(collection, field, v).unwrap().into_iter().collect();
            assert_eq!(got, naive(db, collection, field, v), "lookup {field} = {v:?}");
        }
        let stats = db.index_stats(collection).unwrap().into_iter().find(|s| &s.field == field).unwrap();
        assert_eq!(stats.entries, expected_entries, "entries of {field}");
        assert_eq!(stats.distinct_values, values.len() as u64, "distinct values of {field}");
    }
}

/// Checks a compound index against its documents: one entry per document,
/// and a read of every full tuple present (missing fields as `null`,
/// arrays whole) finds exactly the documents holding it.
fn check_compound(db: &Collections, collection: &str, name: &str, docs: &[aurora_core::Document]) {
    let fields = aurora_index::compound::index_fields(name);
    let tuple = |d: &aurora_core::Document| -> Vec<Value> {
        fields.iter().map(|f| d.get_path(f).cloned().unwrap_or(Value::Null)).collect()
    };
    let tuples: BTreeSet<Vec<Value>> = docs.iter().map(tuple).collect();
    for t in &tuples {
        let scan = aurora_index::IndexScan::Tuple {
            equal: t.clone(),
            low: std::ops::Bound::Unbounded,
            high: std::ops::Bound::Unbounded,
        };
        let got: BTreeSet<DocId> = db.scan_index(None, collection, name, &scan).unwrap().into_iter().collect();
        let want: BTreeSet<DocId> = docs.iter().filter(|d| &tuple(d) == t).map(|d| d.id.clone()).collect();
        assert_eq!(got, want, "compound {name:?} = {t:?}");
    }
    let stats = db.index_stats(collection).unwrap().into_iter().find(|s| s.field == name).unwrap();
    assert_eq!(stats.entries, docs.len() as u64, "one entry per document in {name:?}");
    assert_eq!(stats.distinct_values, tuples.len() as u64, "distinct tuples of {name:?}");
}

/// Writes a collection definition straight into the catalog (to make the
/// state a crash leaves); only read back after a reopen.
pub fn write_definition(db: &Collections, collection: &str, def: &aurora_index::CollectionDef) {
    write_raw_definition(db, collection, aurora_storage::format::encode(def).unwrap());
}

/// Writes encoded bytes as a collection's catalog entry (`"c" ++ name`).
pub fn write_raw_definition(db: &Collections, collection: &str, bytes: Vec<u8>) {
    let mut key = vec![b'c'];
    key.extend_from_slice(collection.as_bytes());
    let mut batch = aurora_storage::Batch::new();
    batch.put(key, bytes);
    db.documents().store().commit(batch).unwrap().into_result().unwrap();
}

/// Checks that no two documents hold the same non-null value of `field`.
pub fn check_unique(db: &Collections, collection: &str, field: &str) {
    let mut seen = std::collections::BTreeMap::new();
    for d in db.documents().scan(collection).unwrap().map(Result::unwrap) {
        match d.get_path(field) {
            None | Some(Value::Null) => {}
            Some(v) => {
                if let Some(other) = seen.insert(v.clone(), d.id.clone()) {
                    panic!("{field} = {v:?} is held by {other} and {}", d.id);
                }
            }
        }
    }
}
