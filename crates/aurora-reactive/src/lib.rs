//! Aurora's live queries.
//!
//! A [`Watcher`] holds a query's results, in the query's order, and keeps
//! them current from the committed changes that follow the snapshot it
//! started from. It subscribes to the collection's changes *before*
//! running the query at snapshot `S`, then ignores commits up to `S`, so
//! no commit between the snapshot and the subscription is missed or
//! doubled.
//!
//! A commit is the unit: the watcher receives each commit's changes of
//! its collection together ([`aurora_pubsub::Listener::recv_commit`]),
//! applies all of them, and only then reports the updates that lead from
//! the results before the commit to the results after it — so after every
//! commit, [`Watcher::results`] equals re-running the query at
//! [`Watcher::sequence`]. Each [`QueryUpdate`] carries the document's old
//! and new position (`old_index`/`new_index`, to be applied in order).
//!
//! Maintenance is incremental. The hub drops changes that cannot affect
//! the query before they are buffered ([`Watcher::listener_filter`]). The
//! results are kept as a sorted list with each document's sort key, so a
//! change costs a binary search and one move. A windowed query
//! (`limit`/`offset`/cursor) keeps a buffer of matches past its window,
//! so a member that leaves is replaced from memory; only when the buffer
//! runs out does it re-read, bounded by the window and the buffer. If the
//! watcher's event buffer overflows, it re-runs the query and reports the
//! difference, so it never silently misses a change.
//!
//! Work happens only when the watcher is polled ([`Watcher::recv`], or as
//! a `futures_core::Stream`): a dropped watcher leaves nothing running.

mod watcher;

pub use watcher::{QueryUpdate, WatchError, Watcher};
