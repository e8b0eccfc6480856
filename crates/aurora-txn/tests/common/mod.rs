//! Helpers shared by the transaction tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aurora_core::{doc, DocId, FieldDefinition, FieldType, Value};
use aurora_index::{Collections, IndexConfig, Schema};
use aurora_storage::{DocumentStore, DocumentStoreConfig, Durability, StoreConfig};
use aurora_txn::{ChangeSink, Committed, Database};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A sink that keeps everything it is given.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Committed>>);

impl ChangeSink for Recorder {
    fn publish(&self, committed: Committed) {
        self.0.lock().push(committed);
    }
}

pub fn open(dir: &Path, durability: Durability) -> (Database, Arc<Recorder>) {
    let store = StoreConfig {
        durability,
        cold_cache_capacity_mb: 8,
        checkpoint_interval: Duration::from_secs(3600),
        ..StoreConfig::default()
    };
    let docs =
        DocumentStore::open(dir, store, DocumentStoreConfig { hot_cache_size_mb: 4, ..Default::default() }).unwrap();
    let collections = Collections::open(docs, IndexConfig::default()).unwrap();
    let recorder = Arc::new(Recorder::default());
    (Database::new(collections, recorder.clone()), recorder)
}

pub const ACCOUNTS: i64 = 10;
pub const START: i64 = 100;

pub fn account(i: i64) -> DocId {
    DocId::text(&format!("acct{i}")).unwrap()
}

/// Creates `accounts` (balance: int, owner: unique string) with ACCOUNTS x START.
pub fn setup_bank(db: &Database) {
    if !db.collections().list_collections().is_empty() {
        return;
    }
    db.collections()
        .create_collection(
            "accounts",
            Schema::new()
                .field("balance", FieldDefinition::new(FieldType::Int).indexed())
                .field("owner", FieldDefinition::new(FieldType::String).unique()),
        )
        .unwrap();
    db.transaction(|tx| {
        for i in 0..ACCOUNTS {
            tx.insert("accounts", doc! { "balance": START, "owner": format!("owner{i}") }.id(account(i)))?;
        }
        Ok(())
    })
    .unwrap();
}

pub fn balance(d: &aurora_core::Document) -> i64 {
    d.get("balance").and_then(Value::as_i64).unwrap()
}

/// Moves up to `amount` from `from` to `to` in one transaction (retried on conflict).
pub fn transfer(db: &Database, from: i64, to: i64, amount: i64) -> aurora_txn::Result<()> {
    db.transaction(|tx| {
        let a = tx.get("accounts", &account(from))?.unwrap();
        let b = tx.get("accounts", &account(to))?.unwrap();
        let moved = amount.min(balance(&a));
        tx.update("accounts", &account(from), [("balance".to_string(), Value::Int(balance(&a) - moved))].into())?;
        tx.update("accounts", &account(to), [("balance".to_string(), Value::Int(balance(&b) + moved))].into())?;
        Ok(())
    })
}

/// The total of all balances in one snapshot.
pub fn total(db: &Database) -> i64 {
    let mut tx = db.begin().unwrap();
    tx.scan("accounts").unwrap().iter().map(balance).sum()
}
