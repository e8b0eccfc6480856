//! Aurora's change events.
//!
//! [`PubSub`] fans committed changes out to [`Listener`]s: one broadcast
//! channel per collection that has listeners, plus a global one, created on
//! the first listener and removed when the last one drops. Publishing never
//! blocks a writer; a listener that falls behind gets
//! [`RecvError::Lagged`] with the exact number of events it missed.
//! [`EventFilter`]s are data and run before delivery.
//!
//! Architecture invariant: this crate knows change events and channels; it
//! does not know storage, transactions or queries (the facade feeds it from
//! the transaction layer's change sink, in commit order).

mod event;
mod hub;
mod listener;

pub use event::{ChangeEvent, ChangeType, EventFilter};
pub use hub::{PubSub, DEFAULT_CAPACITY};
pub use listener::{Listener, RecvError};
