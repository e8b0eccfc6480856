//! # aurora-server
//!
//! Aurora's network face: an [`Aurora`] database served as JSON over HTTP
//! (versioned under `/v1`) and Server-Sent Events, on axum and tokio —
//! what `aurora serve` runs, and what an application with its own axum
//! app mounts with [`router`]. The guide, with every endpoint, the error
//! codes and the security model, is `docs/server.md`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use aurora::Aurora;
//! use aurora_server::{router, serve_router, ServerConfig};
//!
//! let db = Aurora::temporary().await?;
//! // A server for this machine only: no keys, requests need none.
//! let config = ServerConfig { allow_anonymous: true, ..ServerConfig::default() };
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my application" }))
//!     .merge(router(db.clone(), config.clone())); // the database under /v1
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let addr = listener.local_addr()?;
//! // Until the signal (here: never), with the connection limits of `config`.
//! let server = tokio::spawn(async move { serve_router(listener, app, &config, std::future::pending()).await });
//! # use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! # let mut s = tokio::net::TcpStream::connect(addr).await?;
//! # s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
//! # let mut out = String::new();
//! # s.read_to_string(&mut out).await?;
//! # assert!(out.starts_with("HTTP/1.1 200") && out.contains("\"status\":\"ok\""), "{out}");
//! # server.abort();
//! db.close().await?;
//! # Ok(()) }
//! ```
//!
//! The server keeps nothing of its own but the API keys (a file next to
//! the database, see [`keys`]); everything else is the database's, so a
//! restart resumes change streams where they were (their positions are
//! the persistent change feed's sequences).
//!
//! `aurora-server` depends on the `aurora` facade (for the `Aurora`
//! handle), so the facade cannot re-export it; depend on both.

mod auth;
mod conn;
mod error;
mod extract;
mod json;
pub mod keys;
mod routes;
mod streams;

pub use error::{ApiError, ERROR_CODES};

/// The server guide (`docs/server.md`); its Rust example is compiled and
/// run as a doc test (its `curl` examples are run against the binary by
/// `aurora-cli`'s `server_docs` test).
#[doc = include_str!("../../../docs/server.md")]
#[cfg(doctest)]
pub struct ServerGuide;
pub use streams::STREAM_ERROR_CODES;

use aurora::Aurora;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tracing::Instrument as _;

/// The limits a server enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, in bytes (default 4 MiB): `payload_too_large` beyond.
    pub max_body_bytes: usize,
    /// Longest a query may run before the request is answered
    /// `query_timeout` (default 10 s).
    pub query_timeout: Duration,
    /// Queries running at once (default 64); more wait (within their time limit).
    pub max_concurrent_queries: usize,
    /// Most documents one query response carries (default 1 000): a larger
    /// `limit` is lowered to it, and `next_cursor` leads to the rest. Also
    /// the window of a live query without a `limit`, and the most jobs one
    /// list returns.
    pub max_results: usize,
    /// Event streams (change streams and live queries) open at once
    /// (default 4 096): `too_many_streams` beyond.
    pub max_streams: usize,
    /// Events buffered per stream for a client that reads slower than they
    /// come (default 256); a live stream whose buffer is full is cut off
    /// with a resumable position.
    pub stream_buffer: usize,
    /// Most writes in one transaction request (default 1 000).
    pub max_transaction_writes: usize,
    /// How long a connection may take to send a complete request head
    /// (default 30 s, hyper's usual): a slower one — a client that opened a
    /// connection and sends its headers a byte at a time, or never finishes
    /// them — is closed. The same bound applies to an idle keep-alive
    /// connection waiting for its next request. Applied by [`serve`] and
    /// [`serve_router`] (not by a server the application runs itself).
    pub header_read_timeout: Duration,
    /// Connections open at once (default 10 000): at the limit the server
    /// stops accepting until one closes (keep it below the process's file
    /// descriptor limit, `ulimit -n`). Applied by [`serve`] and
    /// [`serve_router`].
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 << 20,
            query_timeout: Duration::from_secs(10),
            max_concurrent_queries: 64,
            max_results: 1000,
            max_streams: 4096,
            stream_buffer: 256,
            max_transaction_writes: 1000,
            header_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

/// Stops a server from anywhere in the application: ends its open event
/// streams (a stream never ends by itself, so a server waiting for its
/// connections to close would wait forever) and its accept loop — the
/// same as its stop signal. Cloneable; every clone triggers the same.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A handle not triggered yet.
    pub fn new() -> Self {
        Self { tx: Arc::new(watch::channel(false).0) }
    }

    /// Stops every server using this handle as if its stop signal had
    /// completed: its event streams end (clients reconnect with
    /// `Last-Event-ID` and lose nothing), it accepts no more connections,
    /// and [`serve`]/[`serve_router`] return once open requests finish
    /// (within [`SHUTDOWN_GRACE`]).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Waits until [`Shutdown::trigger`] is called.
    pub async fn triggered(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|t| *t).await;
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }
}

/// How a server is set up.
#[derive(Clone, Default)]
pub struct ServerConfig {
    /// The API keys: a key file written by `aurora keys` (re-read when it
    /// changes). `None`: no keys.
    pub key_file: Option<keys::KeyFile>,
    /// While no key exists, serve requests that carry none (with every
    /// right). Only for a server that nobody else can reach: `aurora serve`
    /// sets it when it listens on a loopback address and refuses any other
    /// address without keys. With keys, every request (but `/v1/health`)
    /// needs one.
    pub allow_anonymous: bool,
    /// The limits.
    pub limits: Limits,
    /// The job queue the `/v1/jobs` endpoints use — the application's own,
    /// if it runs job handlers. `None`: one is opened on the database at the
    /// first job request (without handlers: jobs wait for a process that
    /// has them).
    pub workers: Option<aurora::Workers>,
    /// Stops the server (like its stop signal); keep a clone to trigger it.
    pub shutdown: Shutdown,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("key_file", &self.key_file)
            .field("allow_anonymous", &self.allow_anonymous)
            .field("limits", &self.limits)
            .field("workers", &self.workers.is_some())
            .finish()
    }
}

/// Counters of the server itself (beside the database's metrics).
#[derive(Default)]
pub(crate) struct Stats {
    /// Responses by status class (1xx..5xx at 0..4).
    responses: [AtomicU64; 5],
    pub(crate) open_streams: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
}

impl Stats {
    fn count(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn write_prometheus(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP aurora_http_responses_total HTTP responses, by status class.");
        let _ = writeln!(out, "# TYPE aurora_http_responses_total counter");
        for (i, n) in self.responses.iter().enumerate() {
            let _ = writeln!(out, "aurora_http_responses_total{{class=\"{}xx\"}} {}", i + 1, n.load(Ordering::Relaxed));
        }
        let _ = writeln!(out, "# HELP aurora_http_open_streams Event streams open.");
        let _ = writeln!(out, "# TYPE aurora_http_open_streams gauge");
        let _ = writeln!(out, "aurora_http_open_streams {}", self.open_streams.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP aurora_http_slow_consumers_total Streams cut off because the client read too slowly."
        );
        let _ = writeln!(out, "# TYPE aurora_http_slow_consumers_total counter");
        let _ = writeln!(out, "aurora_http_slow_consumers_total {}", self.slow_consumers.load(Ordering::Relaxed));
    }
}

/// What every handler shares.
pub(crate) struct App {
    pub(crate) db: Aurora,
    pub(crate) keys: auth::KeyRing,
    pub(crate) allow_anonymous: bool,
    pub(crate) limits: Limits,
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) queries: Semaphore,
    workers_given: Option<aurora::Workers>,
    workers: tokio::sync::OnceCell<aurora::Workers>,
    pub(crate) shutdown: Shutdown,
    pub(crate) stats: Stats,
    pub(crate) shared_events: streams::SharedEvents,
}

impl App {
    /// The job queue (opened at the first use when none was given).
    pub(crate) async fn workers(&self) -> Result<aurora::Workers, ApiError> {
        let w = self
            .workers
            .get_or_try_init(|| async {
                match &self.workers_given {
                    Some(w) => Ok(w.clone()),
                    None => self.db.workers(aurora::WorkerConfig::default()).await,
                }
            })
            .await?;
        Ok(w.clone())
    }
}

/// One tracing span per request (`request{method, path, status}`, the
/// path as routed: `/v1/collections/{c}/documents/{id}`), and the response
/// counters.
async fn trace(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let path = req.extensions().get::<MatchedPath>().map_or("(no route)", MatchedPath::as_str).to_owned();
    let span = tracing::info_span!("request", method = %req.method(), path = %path, status = tracing::field::Empty);
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("status", status);
    app.stats.count(status);
    tracing::debug!(parent: &span, status, elapsed_us = started.elapsed().as_micros() as u64, "answered");
    response
}

/// The API as an axum router (state applied), for `db`: every endpoint
/// under `/v1`, with authentication, limits, JSON errors and a tracing span
/// per request. Merge it into an application's router, or serve it with
/// [`serve`].
///
/// # Panics
/// If the key file exists but cannot be read or parsed (check it first
/// with [`keys::KeyFile::load`]; `aurora serve` does).
pub fn router(db: Aurora, config: ServerConfig) -> Router {
    let keys = match auth::KeyRing::open(config.key_file.clone(), config.allow_anonymous) {
        Ok(k) => k,
        Err(e) => panic!("aurora-server: {e}"),
    };
    let limits = config.limits.clone();
    let app = Arc::new(App {
        db,
        keys,
        allow_anonymous: config.allow_anonymous,
        streams: Arc::new(Semaphore::new(limits.max_streams)),
        queries: Semaphore::new(limits.max_concurrent_queries.max(1)),
        limits: limits.clone(),
        workers_given: config.workers,
        workers: tokio::sync::OnceCell::new(),
        shutdown: config.shutdown,
        stats: Stats::default(),
        shared_events: streams::SharedEvents::default(),
    });
    let protected = Router::new()
        .route("/v1/metrics", get(routes::metrics))
        .route("/v1/collections", get(routes::list_collections).post(routes::create_collection))
        .route("/v1/collections/{c}", get(routes::collection_stats).delete(routes::drop_collection))
        .route("/v1/collections/{c}/indexes", get(routes::list_indexes).post(routes::create_index))
        .route("/v1/collections/{c}/indexes/{name}", delete(routes::drop_index))
        .route("/v1/collections/{c}/documents", post(routes::insert))
        .route(
            "/v1/collections/{c}/documents/{id}",
            get(routes::get_document)
                .put(routes::replace_document)
                .patch(routes::patch_document)
                .delete(routes::delete_document),
        )
        .route("/v1/collections/{c}/query", post(routes::query))
        .route("/v1/collections/{c}/live", get(streams::live))
        .route("/v1/changes", get(streams::changes))
        .route("/v1/transactions", post(routes::transaction))
        .route("/v1/jobs", get(routes::list_jobs).post(routes::enqueue))
        .route("/v1/jobs/{id}", get(routes::get_job))
        .route("/v1/jobs/{id}/cancel", post(routes::cancel_job))
        .route("/v1/jobs/{id}/retry", post(routes::retry_job))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&app), auth::authenticate));
    protected
        .route("/v1/health", get(routes::health))
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(Arc::clone(&app), trace))
        .with_state(app)
}

/// How long [`serve`] waits, after the shutdown signal, for connections
/// to finish before it returns anyway (a client that stopped reading keeps
/// its connection open).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves the API on `listener` until `signal` completes (or
/// [`ServerConfig::shutdown`] is triggered); then ends the
/// event streams, stops accepting, and waits up to [`SHUTDOWN_GRACE`] for
/// open requests. Close the database afterwards.
///
/// Each connection speaks HTTP/1.1 with keep-alive and `TCP_NODELAY`
/// (events go out at once), must send each request head within
/// [`Limits::header_read_timeout`] (the same bound closes an idle
/// keep-alive connection), and counts against [`Limits::max_connections`].
/// A request hyper cannot parse (a malformed request line or header, a
/// head or target too large) is answered with the API's JSON error like
/// any other (`bad_request`, `headers_too_large`, `uri_too_long`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    db: Aurora,
    config: ServerConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (shutdown, limits) = (config.shutdown.clone(), config.limits.clone());
    conn::serve(listener, router(db, config), shutdown, &limits, signal).await
}

/// Like [`serve`], for an application's own router that includes
/// [`router`]'s routes (merged with others, such as the web console's):
/// `config` must be the [`ServerConfig`] the API router was built with —
/// its [`ServerConfig::shutdown`] ends the API's event streams when
/// `signal` completes, and its connection limits
/// ([`Limits::header_read_timeout`], [`Limits::max_connections`]) apply.
///
/// Prefer this to `axum::serve`, which sets no deadline on request heads:
/// a client that never finishes its headers would hold its connection for
/// ever.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    config: &ServerConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    conn::serve(listener, app, config.shutdown.clone(), &config.limits, signal).await
}
