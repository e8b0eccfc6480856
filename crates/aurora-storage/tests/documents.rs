//! The document layer: hot → cold → promote reads, cache coherence under
//! concurrent writers, and typed errors for corrupt stored documents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{doc, DocId, Document, Value};
use aurora_storage::{DocumentStore, DocumentStoreConfig, Durability, EvictionPolicy, StorageError, Store};
use std::sync::Arc;

fn open(dir: &std::path::Path, cache_mb: usize) -> DocumentStore {
    let cfg = DocumentStoreConfig { hot_cache_size_mb: cache_mb, ..DocumentStoreConfig::default() };
    DocumentStore::open(dir, common::config(Durability::Balanced), cfg).unwrap()
}

#[test]
fn reads_promote_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let docs = open(dir.path(), 16);
    let d = doc! { "name": "Ada", "n": 1 };
    docs.put("people", &d).unwrap();
    assert_eq!(docs.get("people", &d.id).unwrap().as_deref(), Some(&d));
    assert_eq!(docs.cache_stats().hits, 1, "written documents are cached");
    drop(docs);

    let docs = open(dir.path(), 16);
    assert_eq!(docs.get("people", &d.id).unwrap().as_deref(), Some(&d));
    assert_eq!(docs.cache_stats().misses, 1);
    assert_eq!(docs.get("people", &d.id).unwrap().as_deref(), Some(&d));
    assert_eq!(docs.cache_stats().hits, 1, "promoted on the first read");
    let missing = DocId::new();
    assert!(docs.get("people", &missing).unwrap().is_none());
    assert!(docs.get("people", &missing).unwrap().is_none());
    assert_eq!(docs.cache_stats().hits, 2, "absence is cached too");
    docs.delete("people", &d.id).unwrap();
    assert!(docs.get("people", &d.id).unwrap().is_none());
    assert_eq!(docs.scan("people").unwrap().count(), 0);
}

#[test]
fn corrupt_or_future_documents_are_typed_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let docs = open(dir.path(), 16);
    let id = DocId::text("broken").unwrap();
    let key = aurora_storage::document_key("things", &id);
    docs.store().put(key.clone(), vec![aurora_storage::format::FORMAT_VERSION, 0xFF, 0xFF]).unwrap();
    // Written behind the cache's back, so drop what the write path knows.
    let fresh = DocumentStore::new(docs.store().clone(), DocumentStoreConfig::default());
    let err = fresh.get("things", &id).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("broken"), "{err}");

    docs.store().put(key, vec![200, 1, 2]).unwrap();
    let fresh = DocumentStore::new(docs.store().clone(), DocumentStoreConfig::default());
    let err = fresh.get("things", &id).unwrap_err();
    assert!(matches!(err, StorageError::UnknownFormat { version: 200, .. }), "{err}");
}

#[test]
fn bad_collection_names_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let docs = open(dir.path(), 16);
    for bad in ["", "a\0b", &"x".repeat(200)] {
        let err = docs.put(bad, &Document::new()).unwrap_err();
        assert!(matches!(err, StorageError::InvalidName { .. }), "{err}");
    }
    assert_eq!(docs.store().revision(), 0);
}

#[test]
fn cache_never_serves_stale_versions_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    // A tiny cache forces constant eviction and promotion.
    let cfg = DocumentStoreConfig { hot_cache_size_mb: 1, eviction_policy: EvictionPolicy::Lru, cache_ttl: None };
    let store = Store::open(dir.path(), common::config(Durability::Balanced)).unwrap();
    let docs = Arc::new(DocumentStore::new(store, cfg));
    let ids: Arc<Vec<DocId>> = Arc::new((0..64).map(|i| DocId::text(&format!("d{i}")).unwrap()).collect());
    let padding = "p".repeat(24_000);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (docs, ids, padding) = (docs.clone(), ids.clone(), padding.clone());
            std::thread::spawn(move || {
                for round in 0..40i64 {
                    for (i, id) in ids.iter().enumerate() {
                        if i % 4 == w {
                            let d = doc! { "round": round, "pad": padding.as_str() }.id(id.clone());
                            docs.put("c", &d).unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (docs, ids) = (docs.clone(), ids.clone());
            std::thread::spawn(move || {
                let mut last = vec![-1i64; ids.len()];
                for _ in 0..20 {
                    for (i, id) in ids.iter().enumerate() {
                        if let Some(d) = docs.get("c", id).unwrap() {
                            let round = d.get("round").and_then(Value::as_i64).unwrap();
                            assert!(round >= last[i], "doc {i} went back from round {} to {round}", last[i]);
                            last[i] = round;
                        }
                    }
                }
            })
        })
        .collect();
    for t in writers.into_iter().chain(readers) {
        t.join().unwrap();
    }
    for id in ids.iter() {
        let d = docs.get("c", id).unwrap().unwrap();
        assert_eq!(d.get("round"), Some(&Value::Int(39)), "final read of {id}");
    }
    assert!(docs.cache_stats().evictions > 0, "the test exercised eviction");
}
