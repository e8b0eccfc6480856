//! Opening a database for a command: the runtime, the checks that give a
//! clear message (missing folder, not a database, in use), and the
//! settings every command shares.

use anyhow::{bail, Context};
use aurora::{Aurora, AuroraConfig, Error};
use std::path::Path;
use std::time::Duration;

/// The hot (decoded document) cache of a command's database, in MiB.
const HOT_CACHE_MB: usize = 8;
/// The cold store's page cache of a command's database, in MiB.
const COLD_CACHE_MB: usize = 16;

/// The tokio runtime a command runs on: one thread (commands do one thing
/// at a time), plus tokio's blocking pool where Aurora sends long work.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

/// Whether `dir` holds an Aurora database: a write-ahead log folder with
/// a segment in it (`<20 digits>.log`; a database always keeps one, even
/// after a clean close) or beside a cold store (`cold/`, so a database
/// that lost its segments is checked as damaged, not as foreign). A
/// folder that merely has a `wal` subfolder is someone else's.
pub fn is_database(dir: &Path) -> bool {
    let wal = dir.join("wal");
    if !wal.is_dir() {
        return false;
    }
    let segment = |name: &str| {
        name.strip_suffix(".log").is_some_and(|stem| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
    };
    let has_segment = std::fs::read_dir(&wal)
        .map(|entries| entries.flatten().any(|e| e.file_name().to_str().is_some_and(segment)))
        .unwrap_or(false);
    has_segment || dir.join("cold").is_dir()
}

/// Fails with a clear message unless `dir` holds a database.
pub fn require_database(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        bail!("{}: no such directory (no database there)", dir.display());
    }
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    if !is_database(dir) {
        bail!("{}: not an Aurora database (no write-ahead log segment in `wal/`, no `cold/` store)", dir.display());
    }
    Ok(())
}

/// The message for a database another process holds open.
pub fn locked_message(dir: &Path) -> String {
    format!(
        "{} is in use by another process (a running `aurora serve` or an application holds its lock); \
         stop it first — one process opens a database at a time",
        dir.display()
    )
}

/// Opens the database in `dir` (which must exist unless `create`).
///
/// No background expiry pass runs (a command never deletes expired
/// documents behind the user's back; reads still hide them). The caches
/// are small: a command passes over its data once, so a cache would only
/// cost memory.
pub async fn open(dir: &Path, create: bool) -> anyhow::Result<Aurora> {
    if !create {
        require_database(dir)?;
    }
    let config = AuroraConfig {
        expiry_interval: Duration::ZERO,
        hot_cache_size_mb: HOT_CACHE_MB,
        cold_cache_capacity_mb: COLD_CACHE_MB,
        ..AuroraConfig::new(dir)
    };
    match Aurora::with_config(config).await {
        Ok(db) => Ok(db),
        Err(Error::Locked { .. }) => bail!(locked_message(dir)),
        Err(e) => Err(e).with_context(|| format!("opening the database in {}", dir.display())),
    }
}

/// Fails unless `collection` exists, listing the ones that do.
pub fn require_collection(db: &Aurora, dir: &Path, collection: &str) -> anyhow::Result<()> {
    let names = db.list_collections()?;
    if names.iter().any(|n| n == collection) {
        return Ok(());
    }
    let known = if names.is_empty() { "it has none".to_string() } else { format!("it has: {}", names.join(", ")) };
    bail!("no collection `{collection}` in {} ({known})", dir.display())
}
