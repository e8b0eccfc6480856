//! Aurora's query engine.
//!
//! A [`Query`] names a collection, a [`Filter`] (an expression tree — data,
//! not a closure — so the planner can read it and it can travel over the
//! network later), an ordering, offset/limit or a keyset [`Cursor`], and a
//! projection. It runs against an [`aurora_txn::Transaction`]: one snapshot,
//! plus the transaction's own writes.
//!
//! The planner ([`Access`]) uses a ready index for equality, `in`,
//! ranges, string prefixes and array membership, reads a compound index for
//! an equality prefix plus a range and walks it in the order of its
//! remaining fields (stopping early), intersects two index reads when that
//! is cheaper, walks an index in order for `order_by` + `limit` (stopping
//! early), and otherwise scans. Index reads only produce
//! candidates: the whole filter is applied to every candidate, so a plan
//! choice can change speed, never results. [`Query::explain`] reports the
//! plan with estimated and examined rows.
//!
//! Architecture invariant: no I/O of its own and no async runtime; it reads
//! through the transaction and the index layer.

mod aggregate;
pub mod computed;
mod error;
mod hint;
mod interrupt;
mod matcher;
mod plan;
mod query;
mod scan;
mod validate;

pub use aggregate::{Aggregate, AggregateValue, Group};
pub use aurora_core::filter::{Filter, F};
pub use computed::{ComputedFields, Expression, ScriptLimits, Scripts};
pub use error::{QueryError, Result, ScriptError};
pub use hint::Hint;
pub use interrupt::{CancelToken, CHECK_EVERY};
pub use plan::{Access, Plan};
pub use query::{Cursor, Order, Page, Query, SortKey};
