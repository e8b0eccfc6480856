//! Aurora's collection layer: persisted schemas, validated writes, and
//! schema-aware secondary indexes.
//!
//! Only fields a schema marks `indexed` or `unique` pay for an index. Index
//! entries live in the same store as the documents and are written in the
//! **same atomic commit** (so after any crash they agree exactly), keyed by
//! an order-preserving encoding of [`Value`](aurora_core::Value)
//! ([`keycodec`]) so one ordered index serves equality, ranges, `in` and
//! string prefixes, and yields documents sorted by the field. A
//! [`compound`] index covers several fields in one ordered key.
//!
//! Unique constraints are compare-and-swap conditions on a per-value claim
//! key checked by the commit pipeline: of two concurrent writers of one
//! value exactly one commits; the other gets
//! [`IndexError::UniqueViolation`] and writes nothing.
//!
//! Architecture invariant: this crate knows documents, schemas and key
//! layouts; it does not know sled, the WAL, or any async runtime.

mod build;
mod catalog;
mod collections;
pub mod compound;
mod count;
mod error;
mod evolve;
mod id_key;
pub mod keycodec;
mod keys;
mod maintain;
mod purge;
mod schema;
mod verify;

pub use build::IndexBuild;
pub use catalog::{CollectionDef, IndexDef, IndexState, PendingChange};
pub use collections::{Collections, IndexConfig, IndexPlan, IndexScan, IndexStats};
pub use error::{IndexError, Result};
pub use evolve::{Existing, Nonconforming, SchemaChange, MAX_EXAMPLES};
pub use id_key::IdKey;
pub use schema::{Schema, UnknownFields};
pub use verify::{IndexCheck, IndexProblem, MAX_REPORTED_PROBLEMS};
