//! Test support shared by Aurora's crates; a dev-dependency only, never
//! published; its one dependency is sled (for [`raw_sled`]).
//!
//! - [`crash`]: the SIGKILL crash-test harness — a test binary re-runs one
//!   of its own tests as a child process that writes to a folder, kills it
//!   with `SIGKILL` at a random moment once it is working, and lets the
//!   parent reopen the folder and check what survived.
//! - [`image`]: crash images — a database folder copied while open, as a
//!   killed process would leave it.
//! - [`tmpfs`]: a small filesystem of its own for full-disk tests.
//! - [`raw_sled`]: sled itself under a cold store, to read or damage it.
//! - [`packed_chunk`]: the on-disk form of a packed index chunk, to read
//!   chunks from sled or forge damaged ones.

pub mod crash;
pub mod image;
pub mod packed_chunk;
pub mod raw_sled;
pub mod tmpfs;
