//! Aurora's change events.
//!
//! [`PubSub`] fans committed changes out to [`Listener`]s, grouped by
//! collection (plus a global group), a group existing while it has
//! listeners. A commit is the unit of delivery: each listener gets the
//! commit's events that pass its [`EventFilter`] as one [`CommitEvents`]
//! (or one at a time), in commit order. Filters — the query language,
//! [`aurora_core::Filter`], plus change-kind and field-changed conditions —
//! run when a commit is published, before anything is buffered, so a
//! listener's buffer holds only events it will receive. Publishing never
//! blocks a writer; a listener that falls behind loses its oldest whole
//! commits and gets [`RecvError::Lagged`] with the exact number of events
//! (that passed its filter) it missed.
//!
//! Architecture invariant: this crate knows change events and channels; it
//! does not know storage, transactions or queries (the facade feeds it from
//! the transaction layer's change sink, in commit order).

mod event;
mod hub;
mod listener;
mod pending;
mod queue;

pub use event::{ChangeCause, ChangeEvent, ChangeType, CommitEvents, EventFilter};
pub use hub::{HubStats, PubSub, DEFAULT_CAPACITY};
pub use listener::{Listener, RecvError};
