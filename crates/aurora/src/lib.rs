//! # Aurora
//!
//! An embedded, real-time document database for Rust applications: open a
//! folder and get persistent documents, a hot in-memory cache, and (as the
//! project grows) schema-aware indexes, queries, transactions, change
//! events, live queries and a durable job queue — in one process.
//!
//! This crate is a thin facade: it re-exports the layer crates behind cargo
//! features, so you can depend on just what you need.
//!
//! ## Cargo features
//!
//! | feature   | default | brings |
//! |-----------|---------|--------|
//! | `storage` | yes     | [`storage`]: the WAL with group commit, durability modes, the cold store and the hot document cache (`aurora-storage`) |
//! | `index`   | yes     | [`index`]: collections with persisted schemas, validation, and secondary (unique, range, array, nested) indexes (`aurora-index`) |
//! | `full`    | no      | every feature |
//!
//! The shared data model ([`Value`], [`Document`], [`DocId`], [`doc!`], the
//! schema types) is always available.
//!
//! ## Example
//!
//! ```
//! use aurora::doc;
//! use aurora::storage::{Durability, DocumentStore, DocumentStoreConfig, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let config = StoreConfig { durability: Durability::Strict, ..StoreConfig::default() };
//! let docs = DocumentStore::open(dir.path(), config, DocumentStoreConfig::default())?;
//! let alice = doc! { "name": "Alice", "tags": ["admin"] };
//! docs.put("users", &alice)?;
//! assert_eq!(docs.get("users", &alice.id)?.as_deref(), Some(&alice));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use aurora_core::{doc, value, CoreError, DocId, Document, FieldDefinition, FieldType, Fields, Timestamp, Value};

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

/// The README's examples, compiled as doc tests so they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(all(doctest, feature = "storage"))]
mod guides;
