//! Aurora's transactions.
//!
//! A [`Transaction`] reads one storage snapshot (plus its own writes),
//! buffers its writes, and commits them — documents, index entries, unique
//! claims and their conditions — as **one atomic batch** through the
//! storage commit pipeline. Conflicts are detected optimistically with
//! compare-and-swap conditions on the revisions the transaction saw: first
//! committer wins, the loser gets [`TxnError::Conflict`] and writes nothing.
//! Each commit's changes go to a [`ChangeSink`] in commit order, exactly
//! once, and only if it committed.
//!
//! Architecture invariant: this crate knows documents, collections and
//! revisions; it does not know sled, the WAL or any async runtime.

mod bulk;
mod database;
mod error;
mod feed;
mod feed_check;
mod feed_record;
mod sink;
mod submit;
mod transaction;

pub use database::{Database, Observation, MAX_TRANSACTION_ATTEMPTS};
pub use error::{Result, TxnError};
pub use feed::{FeedRetention, FEED_PART_BYTES};
pub use feed_check::{FeedCheck, MAX_REPORTED_FEED_PROBLEMS};
pub use sink::{Change, ChangeKind, ChangeSink, CommitObserver, Committed, NoSink};
pub use transaction::{CommitInfo, Isolation, SnapshotDocuments, Transaction};
