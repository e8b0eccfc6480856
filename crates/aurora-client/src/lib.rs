//! # aurora-client
//!
//! An async client for an Aurora server (`aurora serve`, crate
//! `aurora-server`): collections, typed collections, documents, the same
//! query builder as the embedded handle (sent as the plain-JSON filter of
//! `aurora::json`), write batches with revision conditions, change streams
//! and live queries as [`futures_core::Stream`]s that reconnect by
//! themselves and resume after the last event (no gap, no duplicate), and
//! jobs. Failures are the [`aurora::Error`] variants the embedded handle
//! returns for the same failure.
//!
//! The [`Store`] trait is implemented by both [`Client`] and the embedded
//! [`aurora::Aurora`]: an application written against `impl Store` moves
//! from an embedded database to a shared server by changing how it opens
//! it. The guide is `docs/client.md`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> aurora::Result<()> {
//! use aurora::{doc, Aurora, Order};
//! use aurora_client::{Query, Store};
//!
//! /// Application code: runs on the embedded handle or on a `Client`.
//! async fn top_scores(db: &impl Store) -> aurora::Result<Vec<i64>> {
//!     db.create_collection("scores", aurora::index::Schema::new()).await?;
//!     for n in [3, 9, 5] {
//!         db.insert("scores", doc! { "points": n }).await?;
//!     }
//!     let q = Query::new().order_by("points", Order::Desc).limit(2);
//!     let top = db.find("scores", &q).await?;
//!     Ok(top.iter().filter_map(|d| d.get("points").and_then(|v| v.as_i64())).collect())
//! }
//!
//! let db = Aurora::temporary().await?;
//! assert_eq!(top_scores(&db).await?, vec![9, 5]);
//! // Against a server: top_scores(&aurora_client::Client::connect("http://127.0.0.1:7878", None).await?)
//! # Ok(()) }
//! ```

mod batch;
mod client;
mod error;
mod http;
mod jobs;
mod query;
mod schema;
mod store;
mod streams;
mod typed;

pub use batch::{BatchResult, WriteBatch};
pub use client::{Client, CollectionInfo, RemoteQuery};
pub use http::ClientOptions;
pub use jobs::{JobSummary, NewJob};
pub use query::{Page, Query};
pub use store::{EventStream, LiveEvent, Store};
pub use streams::{ChangeStream, LiveQuery};
pub use typed::TypedCollection;

/// The guide, `docs/client.md` (its examples run as doc tests, against a
/// server started in the test's process).
#[doc = include_str!("../../../docs/client.md")]
pub struct ClientGuide;
