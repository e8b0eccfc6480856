//! Shared types of the Aurora embedded database.
//!
//! This crate sits at the bottom of the workspace: every other Aurora crate
//! depends on it and it depends on no other Aurora crate. It holds the data
//! model only — no I/O, no runtime, no storage:
//!
//! - [`Value`]: a dynamically typed value with a total order that compares
//!   integers and floats numerically (what indexes and `order_by` need);
//! - [`Document`] and [`DocId`]: a document is an id plus named fields;
//! - [`doc!`] and [`value!`]: literal syntax for documents and values;
//! - [`FieldType`] and [`FieldDefinition`]: the schema vocabulary;
//! - [`Timestamp`]: a UTC instant in microseconds;
//! - [`Filter`]: a predicate over documents as data (the language of queries
//!   and of change-event listeners alike).
//!
//! ```
//! use aurora_core::{doc, Value};
//!
//! let user = doc! { "name": "Alice", "age": 30, "tags": ["admin", "ops"] };
//! assert_eq!(user.get("age"), Some(&Value::Int(30)));
//! assert_eq!(user.get_path("tags.1"), Some(&Value::from("ops")));
//! ```

mod doc_id;
mod document;
mod error;
pub mod filter;
pub mod json;
mod macros;
pub mod names;
mod nesting;
mod schema;
mod serde_bridge;
mod timestamp;
mod update;
mod value;
mod value_convert;
mod value_order;
mod value_render;

pub use doc_id::{DocId, TextId, MAX_TEXT_ID_LEN};
pub use document::Document;
pub use error::CoreError;
pub use filter::{Filter, F};
pub use nesting::{
    dispose, dispose_all, dispose_document, dispose_update, validate_fields, DecodeLevel, MAX_DECODE_DEPTH,
    MAX_NESTING_DEPTH,
};
pub use schema::{FieldDefinition, FieldType};
pub use serde_bridge::{BridgeError, TEXT_ID_TOKEN};
pub use timestamp::Timestamp;
pub use update::{Update, UpdateError, UpdateOp};
pub use value::Value;

/// Ordered map of field names to values: the body of a [`Document`] and of
/// [`Value::Object`].
pub type Fields = std::collections::BTreeMap<String, Value>;
