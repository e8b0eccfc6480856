//! `aurora serve`: a database over HTTP (JSON) and Server-Sent Events.
//!
//! Opens the database in `--data`, listens on `--listen`, and serves until
//! SIGTERM or Ctrl-C; then it ends the event streams (clients resume with
//! `Last-Event-ID`), lets open requests finish, and closes the database
//! cleanly. The first line on standard output is `aurora: listening on
//! http://ADDR` (with the real port when `--listen` asks for port 0); the
//! log goes to standard error.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `aurora serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database directory (created if absent). Its API keys are in
    /// `DIR/api-keys.json` (see `aurora keys`).
    #[arg(long, value_name = "DIR", default_value = "./aurora-data")]
    pub data: PathBuf,
    /// The address to listen on (port 0: any free port). Without API keys,
    /// only a loopback address is accepted.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    pub listen: String,
    /// Largest request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub max_body_bytes: usize,
    /// Longest a query may run, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub query_timeout_ms: u64,
    /// Most documents in one query response (a larger `limit` is lowered; follow `next_cursor`).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_results: usize,
    /// Event streams open at once.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_streams: usize,
    /// Events buffered per stream before a client that reads too slowly is cut off.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub stream_buffer: usize,
    /// How long a connection may take to send a request head, in
    /// milliseconds (also how long an idle keep-alive connection stays open).
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub header_timeout_ms: u64,
    /// Connections open at once; at the limit new ones wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Commits the change feed keeps: how far back a change stream can resume.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub feed_retention: usize,
    /// Durability of commits: strict (fsync each), balanced (survives a
    /// process crash) or buffered.
    #[arg(long, value_name = "MODE", default_value = "balanced")]
    pub durability: String,
    /// Log level: error, warn, info, debug or trace (debug logs every request).
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log: String,
}

/// Runs `aurora serve`.
#[cfg(feature = "server")]
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    use aurora::{Aurora, AuroraConfig, Durability};
    use aurora_server::keys::KeyFile;
    use aurora_server::{Limits, ServerConfig, Shutdown};
    use std::io::Write as _;

    let level: tracing::Level = args
        .log
        .parse()
        .map_err(|_| anyhow::anyhow!("--log {:?}: expected error, warn, info, debug or trace", args.log))?;
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level).with_target(false).init();
    let addr: std::net::SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("--listen {:?}: expected an address and port such as 127.0.0.1:7878", args.listen))?;
    let durability = match args.durability.as_str() {
        "strict" => Durability::Strict,
        "balanced" => Durability::Balanced,
        "buffered" => Durability::Buffered,
        other => anyhow::bail!("--durability {other:?}: expected strict, balanced or buffered"),
    };
    let key_file = KeyFile::in_dir(&args.data);
    let keys = key_file.load().context("reading the API keys")?;
    let loopback = addr.ip().is_loopback();
    if keys.is_empty() && !loopback {
        anyhow::bail!(
            "refusing to listen on {addr} without API keys: anyone who can reach it could read and change \
             everything. Create a key first (`aurora keys create --data {} --admin '*'`), or listen on a \
             loopback address such as 127.0.0.1",
            args.data.display()
        );
    }
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        query_timeout: std::time::Duration::from_millis(args.query_timeout_ms),
        max_results: args.max_results.max(1),
        max_streams: args.max_streams,
        stream_buffer: args.stream_buffer.max(1),
        header_read_timeout: std::time::Duration::from_millis(args.header_timeout_ms.max(1)),
        max_connections: args.max_connections.max(1),
        ..Limits::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let config =
            AuroraConfig { durability, change_feed_retention: args.feed_retention, ..AuroraConfig::new(&args.data) };
        let db = Aurora::with_config(config)
            .await
            .with_context(|| format!("opening the database in {}", args.data.display()))?;
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        if keys.is_empty() {
            tracing::warn!(
                "no API keys: serving WITHOUT authentication, on the loopback address {local} only \
                 (create one with `aurora keys create` to require keys)"
            );
        } else {
            tracing::info!(keys = keys.len(), "API keys required (from {})", key_file.path().display());
        }
        tracing::info!(data = %args.data.display(), "serving on http://{local}");
        let mut out = std::io::stdout();
        let _ = writeln!(out, "aurora: listening on http://{local}");
        let _ = out.flush();
        let server = ServerConfig {
            key_file: Some(key_file),
            allow_anonymous: loopback,
            limits,
            workers: None,
            shutdown: Shutdown::new(),
        };
        // The API under /v1 and the web console at /console.
        let app = aurora_server::router(db.clone(), server.clone()).merge(aurora_console::router());
        let _ = writeln!(out, "aurora: console at http://{local}/console");
        let _ = out.flush();
        let served = aurora_server::serve_router(listener, app, &server, stop_signal()).await;
        tracing::info!("shutting down: closing the database");
        let closed = db.close().await;
        served.context("serving")?;
        closed.context("closing the database")?;
        tracing::info!("database closed");
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGTERM or Ctrl-C (SIGINT).
#[cfg(feature = "server")]
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `aurora serve` (this build has no server).
#[cfg(not(feature = "server"))]
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this `aurora` was built without the `server` feature")
}
