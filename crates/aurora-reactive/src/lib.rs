//! Aurora's live queries.
//!
//! A [`Watcher`] holds a query's result set and keeps it current from the
//! change events that follow the snapshot it started from. It subscribes to
//! events *before* running the query at snapshot `S`, then ignores events up
//! to `S`, so no change between the snapshot and the subscription is missed
//! or doubled. Each later change of the collection becomes
//! [`QueryUpdate::Added`], [`QueryUpdate::Removed`] or
//! [`QueryUpdate::Modified`] by the transition table of the study (§5.4).
//! Queries with `limit` (a top-N window) are re-run on each change and
//! diffed, so when a member leaves the next one from the database enters.
//! If the event stream lags, the watcher re-runs the query and emits the
//! difference, so its state always converges to the query's result.
//!
//! Work happens only inside [`Watcher::recv`]: a dropped watcher leaves
//! nothing running.

mod watcher;

pub use watcher::{QueryUpdate, WatchError, Watcher};
