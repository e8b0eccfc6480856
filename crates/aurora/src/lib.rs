//! # Aurora
//!
//! An embedded, real-time document database for Rust applications: open a
//! folder and get persistent documents, a hot in-memory cache, schema-aware
//! indexes, queries, transactions, change events, live queries and a
//! durable job queue — in one process.
//!
//! Guides live in the repository's `docs/` folder (CRUD, indexes,
//! querying, computed fields, transactions, durability, change events, live
//! queries, workers, configuration, performance, benchmarks); runnable
//! examples in `examples/` (`quickstart`, `chat_room`, `leaderboard`,
//! `job_pipeline`).
//!
//! This crate is a thin facade: it re-exports the layer crates behind cargo
//! features, so you can depend on just what you need.
//!
//! ## Cargo features
//!
//! | feature   | default | brings |
//! |-----------|---------|--------|
//! | `db`      | yes     | [`Aurora`], the async database handle on tokio, with [`AuroraConfig`] and its presets, [`QueryBuilder`] and listeners; implies `query` and `pubsub` |
//! | `reactive` | via `db` | live queries: [`Watcher`], [`QueryUpdate`] (`aurora-reactive`) |
//! | `pubsub`  | via `db` | change events: [`Listener`], [`EventFilter`], lag reporting (`aurora-pubsub`) |
//! | `query`   | via `db` | [`query_engine`]: filters as data, the index-aware planner, ordering, keyset paging, aggregation (`aurora-query`); implies `txn` |
//! | `txn`     | via `query` | [`txn`]: transactions (snapshot reads, optimistic commits) and the ordered change sink (`aurora-txn`); implies `index` |
//! | `index`   | via `txn` | [`index`]: collections with persisted schemas, validation, and secondary (unique, range, array, nested) indexes (`aurora-index`); implies `storage` |
//! | `storage` | via `index` | [`storage`]: the WAL with group commit, durability modes, the cold store and the hot document cache (`aurora-storage`) |
//! | `workers` | yes     | [`workers`]: the durable job queue — [`Job`], [`Workers`], retries with back-off, priorities, schedules, the transactional outbox ([`EnqueueExt`]) (`aurora-workers`); with `db`, [`Aurora::workers`]; implies `txn` |
//! | `full`    | no      | every feature |
//!
//! The shared data model ([`Value`], [`Document`], [`DocId`], [`doc!`], the
//! schema types) is always available.
//!
//! ## Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> aurora::Result<()> {
//! use aurora::{doc, Aurora, FieldDefinition, FieldType, Value};
//!
//! let db = Aurora::temporary().await?; // or Aurora::open("my-data").await?
//! db.new_collection("accounts", [
//!     ("owner", FieldDefinition::new(FieldType::String).unique()),
//!     ("balance", FieldDefinition::new(FieldType::Int).indexed()),
//! ]).await?;
//! let a = db.insert_into("accounts", doc! { "owner": "ada", "balance": 100 }).await?;
//! let b = db.insert_into("accounts", doc! { "owner": "bob", "balance": 0 }).await?;
//!
//! // Move 30 atomically; retried automatically if a concurrent commit conflicts.
//! let (a, b2) = (a.clone(), b.clone());
//! db.transaction(move |tx| {
//!     let from = tx.get("accounts", &a)?.expect("exists");
//!     let to = tx.get("accounts", &b2)?.expect("exists");
//!     let (x, y) = (from.get("balance").and_then(Value::as_i64).unwrap_or(0), to.get("balance").and_then(Value::as_i64).unwrap_or(0));
//!     tx.update("accounts", &a, [("balance".to_string(), Value::Int(x - 30))].into())?;
//!     tx.update("accounts", &b2, [("balance".to_string(), Value::Int(y + 30))].into())?;
//!     Ok(())
//! }).await?;
//! assert_eq!(db.get_document("accounts", &b).await?.unwrap().get("balance"), Some(&Value::Int(30)));
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "db")]
mod config;
#[cfg(feature = "db")]
mod db;
#[cfg(feature = "db")]
mod error;
#[cfg(feature = "db")]
mod events;
#[cfg(feature = "db")]
mod evolve;
#[cfg(feature = "db")]
mod metrics;
#[cfg(feature = "db")]
mod query;
#[cfg(feature = "db")]
mod repair;
#[cfg(all(feature = "db", feature = "search"))]
mod search;
#[cfg(feature = "db")]
mod transaction;
#[cfg(feature = "db")]
mod ttl;
#[cfg(feature = "db")]
mod typed;

#[cfg(feature = "pubsub")]
#[doc(inline)]
pub use aurora_pubsub::{ChangeCause, ChangeEvent, ChangeType, CommitEvents, EventFilter, Listener, RecvError};
#[cfg(feature = "query")]
#[doc(inline)]
pub use aurora_query::{
    Access, Aggregate, CancelToken, Cursor, Expression, Filter, Group, Hint, Order, Page, Plan, ScriptError,
    ScriptLimits, SortKey, F,
};
#[cfg(feature = "reactive")]
#[doc(inline)]
pub use aurora_reactive::{QueryUpdate, WatchError, Watcher};
#[cfg(feature = "search")]
#[doc(inline)]
pub use aurora_search::{
    Highlight, Language, SearchError, SearchExpr, SearchOptions, MAX_QUERY_BYTES, MAX_QUERY_DEPTH, MAX_QUERY_TERMS,
    MAX_WORD_BYTES,
};
#[cfg(feature = "db")]
#[cfg_attr(docsrs, doc(cfg(feature = "db")))]
pub use config::AuroraConfig;
#[cfg(feature = "db")]
#[cfg_attr(docsrs, doc(cfg(feature = "db")))]
pub use db::{Aurora, CollectionStats};
#[cfg(feature = "db")]
#[cfg_attr(docsrs, doc(cfg(feature = "db")))]
pub use error::{Error, Result};
#[cfg(feature = "db")]
#[cfg_attr(docsrs, doc(cfg(feature = "db")))]
pub use events::FeedScope;
#[cfg(feature = "db")]
#[cfg_attr(docsrs, doc(cfg(feature = "db")))]
pub use metrics::Metrics;
#[cfg(feature = "db")]
#[cfg_attr(docsrs, doc(cfg(feature = "db")))]
pub use query::QueryBuilder;
#[cfg(all(feature = "db", feature = "search"))]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
pub use search::{
    LiveSearch, SearchBuilder, SearchHit, SearchIndexStatus, SearchPlan, SearchResults, DEFAULT_SEARCH_LIMIT,
    MAX_SEARCH_CANDIDATES, SEARCH_EVENT_BUFFER, SEARCH_FOLDER, SEARCH_PUBLISH_INTERVAL,
};
#[cfg(feature = "db")]
#[cfg_attr(docsrs, doc(cfg(feature = "db")))]
pub use transaction::Transaction;
#[cfg(feature = "db")]
#[cfg_attr(docsrs, doc(cfg(feature = "db")))]
pub use ttl::{ExpiryClock, ManualTime, SystemTime, TimeSource, Ttl};
#[cfg(feature = "db")]
#[cfg_attr(docsrs, doc(cfg(feature = "db")))]
pub use typed::{Collection, TypedPage, TypedQuery, TypedTransaction, TypedUpdate, TypedWatcher};

#[cfg(feature = "index")]
#[doc(inline)]
pub use aurora_index::{Existing, Nonconforming, Schema, SchemaChange};
#[cfg(feature = "storage")]
#[doc(inline)]
pub use aurora_storage::{
    BackupProgress, BackupReport, Durability, EvictionPolicy, RecoveryReport, StoreMetricsSnapshot, WalRecovery,
};
#[cfg(feature = "txn")]
#[doc(inline)]
pub use aurora_txn::{ChangeKind, ChangeSink, CommitInfo, Committed, Isolation};

#[cfg(feature = "workers")]
#[doc(inline)]
pub use aurora_workers::{EnqueueExt, Job, JobId, JobStatus, Priority, WorkerConfig, Workers};

#[doc(inline)]
pub use aurora_core::{
    dispose, dispose_all, dispose_document, dispose_update, doc, json, value, CoreError, DocId, Document,
    FieldDefinition, FieldType, Fields, Timestamp, Update, UpdateError, UpdateOp, Value, MAX_NESTING_DEPTH,
};

/// The storage engine (`aurora-storage`): WAL, durability modes, cold store, hot cache.
#[cfg(feature = "storage")]
#[cfg_attr(docsrs, doc(cfg(feature = "storage")))]
pub mod storage {
    #[doc(inline)]
    pub use aurora_storage::*;
}

/// Collections, schemas and secondary indexes (`aurora-index`).
#[cfg(feature = "index")]
#[cfg_attr(docsrs, doc(cfg(feature = "index")))]
pub mod index {
    #[doc(inline)]
    pub use aurora_index::*;
}

/// The query engine (`aurora-query`).
#[cfg(feature = "query")]
#[cfg_attr(docsrs, doc(cfg(feature = "query")))]
pub mod query_engine {
    #[doc(inline)]
    pub use aurora_query::*;
}

/// Transactions and the change sink (`aurora-txn`).
#[cfg(feature = "txn")]
#[cfg_attr(docsrs, doc(cfg(feature = "txn")))]
pub mod txn {
    #[doc(inline)]
    pub use aurora_txn::*;
}

/// The durable job queue (`aurora-workers`).
#[cfg(feature = "workers")]
#[cfg_attr(docsrs, doc(cfg(feature = "workers")))]
pub mod workers {
    #[doc(inline)]
    pub use aurora_workers::*;
}

/// The README's examples, compiled as doc tests so they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The guides of `docs/`, readable here and on docs.rs (each example in
/// them is compiled and run as a doc test).
#[cfg(feature = "db")]
pub mod guides;
