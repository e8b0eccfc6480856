//! Aurora's full-text search: a [tantivy](https://docs.rs/tantivy) index per
//! collection, derived from committed changes.
//!
//! - [`SearchDefinition`]: which fields, which language, which boosts.
//! - [`parse`]: the search language (terms, `"phrases"`, `prefix*`,
//!   `fuzzy~1`/`~2`, `AND`/`OR`/`-`/`NOT`, parentheses), bounded, with
//!   [`SearchError::Parse`] carrying the byte position of a mistake.
//! - [`SearchIndex`]: apply a commit's changes ([`DocChange`]),
//!   [`SearchIndex::commit`] with the commit's sequence (stored in
//!   tantivy's commit payload, so a reopened index knows where to resume),
//!   search with BM25 scores and highlights.
//!
//! The database side (following the change feed, read-your-writes,
//! rebuilding when the feed was trimmed) is the `aurora` facade's `search`
//! feature; see `docs/search.md`.
//!
//! ```
//! use aurora_core::{doc, DocId};
//! use aurora_search::{parse, DocChange, SearchDefinition, SearchIndex, SearchOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let def = SearchDefinition::new("messages", ["body"], &SearchOptions::default()).unwrap();
//! let mut index = SearchIndex::open(dir.path(), def).unwrap();
//! let id = DocId::new();
//! let message = doc! { "body": "The quick brown fox" };
//! assert!(index.is_new());
//! index.apply([DocChange::Insert(&id, &message)]).unwrap();
//! index.commit(7).unwrap();
//! let hits = index.search(&parse("quick brwn~1").unwrap(), None, 10, 0).unwrap();
//! assert_eq!(hits.len(), 1);
//! assert_eq!(hits[0].id, id);
//! assert_eq!(index.applied(), 7);
//! ```

mod analysis;
mod definition;
mod error;
mod highlight;
mod index;
mod parse;
mod query;
mod tokenizer;

pub use analysis::MAX_WORD_BYTES;
pub use definition::{Language, SearchDefinition, SearchField, SearchOptions, DEFINITION_FILE, MAX_SEARCH_FIELDS};
pub use error::{Result, SearchError};
pub use highlight::Highlight;
pub use index::{field_text, DocChange, Hit, SearchIndex};
pub use parse::{parse, SearchExpr, MAX_QUERY_BYTES, MAX_QUERY_DEPTH, MAX_QUERY_TERMS};
