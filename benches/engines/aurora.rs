//! Aurora through its public async handle (`Aurora`), driven from a
//! current-thread tokio runtime the way a synchronous caller would. Point
//! reads call the synchronous core `get_document` wraps (the same code,
//! without a `block_on` per read, which would cost more than the read).

use super::{Chat, Engine, Indexes, Mode};
use aurora::{Aurora, AuroraConfig, DocId, Document, Durability, FieldDefinition, FieldType, Value};
use std::path::Path;

/// Aurora with a collection `users`.
pub struct AuroraEngine {
    pub rt: tokio::runtime::Runtime,
    pub db: Aurora,
    /// Read past the hot cache (a cache miss every time: memtable, cold
    /// store, decode), for the cold-read workload.
    pub bypass_cache: bool,
}

impl AuroraEngine {
    /// Opens with an explicit configuration (e.g. the hot cache off).
    pub fn with_config(config: AuroraConfig, indexes: Indexes) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let db = rt.block_on(Aurora::with_config(config)).expect("open aurora");
        if !db.list_collections().expect("list").iter().any(|c| c == "users") {
            let int = FieldDefinition::new(FieldType::Int).indexed();
            let email = FieldDefinition::new(FieldType::String).unique();
            let fields: Vec<(&str, FieldDefinition)> = match indexes {
                Indexes::None => vec![],
                Indexes::Age => vec![("age", int)],
                Indexes::AgeAndEmail => vec![("age", int), ("email", email)],
            };
            rt.block_on(db.new_collection("users", fields)).expect("collection");
        }
        Self { rt, db, bypass_cache: false }
    }

    pub fn config(dir: &Path, mode: Mode) -> AuroraConfig {
        let durability = if mode == Mode::Strict { Durability::Strict } else { Durability::Balanced };
        // The per-index entry cap (100 000 by default, as the seed) would stop
        // the bulk-insert workload; the peers have no such guard.
        let base = AuroraConfig::new(dir);
        // `AURORA_BENCH_FEED_RETENTION=0` measures Aurora without its change
        // feed (the footprint example's `--aurora-feed-retention`).
        let change_feed_retention = std::env::var("AURORA_BENCH_FEED_RETENTION")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(base.change_feed_retention);
        // `AURORA_BENCH_COLD_CACHE_MB=N` measures another cold (sled) cache
        // size (the footprint's resident memory against its disk).
        let cold_cache_capacity_mb = std::env::var("AURORA_BENCH_COLD_CACHE_MB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(base.cold_cache_capacity_mb);
        AuroraConfig { durability, change_feed_retention, cold_cache_capacity_mb, ..base }
    }
}

impl Engine for AuroraEngine {
    fn name(_: Mode) -> String {
        "aurora".into()
    }

    fn open(dir: &Path, mode: Mode, indexes: Indexes) -> Self {
        Self::with_config(Self::config(dir, mode), indexes)
    }

    fn insert(&mut self, doc: Document) {
        self.rt.block_on(self.db.insert_into("users", doc)).expect("insert");
    }

    fn insert_many(&mut self, docs: Vec<Document>) {
        self.rt.block_on(self.db.insert_many("users", docs)).expect("insert_many");
    }

    fn get(&mut self, id: &DocId) -> bool {
        let collections = self.db.database().collections();
        if self.bypass_cache {
            let key = aurora::storage::document_key("users", id);
            let raw = collections.documents().store().get(&key).expect("get");
            return raw.map(|r| aurora::storage::format::decode::<Document>(&key, &r).expect("decode")).is_some();
        }
        collections.get("users", id).expect("get").is_some()
    }

    fn find_by_age(&mut self, age: i64) -> usize {
        // The shared copies (`Arc<Document>`), as the trait allows.
        self.rt.block_on(self.db.query("users").filter(|f| f.eq("age", age)).collect_shared()).expect("query").len()
    }

    fn scan_name_ends_with_7(&mut self) -> usize {
        let q = self.db.query("users").filter(|f| f.ends_with("name", "7"));
        self.rt.block_on(q.collect_shared()).expect("scan").len()
    }

    fn transfer(&mut self, a: &DocId, b: &DocId, new: &Document) {
        let (a, b, new) = (a.clone(), b.clone(), new.clone());
        self.rt
            .block_on(self.db.transaction(move |tx| {
                let x = tx.get("users", &a)?.expect("a");
                let y = tx.get("users", &b)?.expect("b");
                let age = |d: &Document| d.get("age").and_then(Value::as_i64).unwrap_or(0);
                tx.update("users", &a, [("age".to_string(), Value::Int(age(&x) - 1))].into())?;
                tx.update("users", &b, [("age".to_string(), Value::Int(age(&y) + 1))].into())?;
                tx.insert("users", new.clone())?;
                Ok(())
            }))
            .expect("transfer");
    }

    fn close(self) {
        self.rt.block_on(self.db.close()).expect("close");
    }
}

impl Chat for AuroraEngine {
    fn open_chat(dir: &Path) -> Self {
        let e = Self::with_config(Self::config(dir, Mode::Normal), Indexes::None);
        let schema = aurora::index::Schema::new()
            .field("room", FieldDefinition::new(FieldType::String))
            .field("at", FieldDefinition::new(FieldType::Int))
            .compound_index(["room", "at"], false);
        e.rt.block_on(e.db.new_collection_with_schema("messages", schema)).expect("messages");
        e
    }

    fn insert_messages(&mut self, msgs: Vec<Document>) {
        self.rt.block_on(self.db.insert_many("messages", msgs)).expect("insert_many");
    }

    fn last_20(&mut self, room: &str) -> Vec<i64> {
        let q = self.db.query("messages").filter(|f| f.eq("room", room)).order_by("at", aurora::Order::Desc).limit(20);
        // The shared copies (`Arc<Document>`), as the trait allows.
        let docs = self.rt.block_on(q.collect_shared()).expect("query");
        docs.iter().map(|d| d.get("at").and_then(Value::as_i64).unwrap_or(-1)).collect()
    }
}
