//! `aurora check DIR`: is the database sound? The write-ahead log, every
//! index against the documents, and the change feed. The exit code is the
//! verdict: 0 healthy, 1 problems found, 2 could not check.
//!
//! Nothing is repaired or written:
//!
//! 1. Under the database's lock, the WAL is read in place and checked
//!    against the recovery rules (`docs/durability.md`) without cutting a
//!    torn tail or moving anything. Damage ends the check there (verdict
//!    1): opening would refuse, and salvaging is a decision for a person
//!    (`AuroraConfig::wal_recovery`).
//! 2. The database is copied, still under the lock, to a scratch folder,
//!    and the copy is opened (recovered, if it was not closed cleanly)
//!    and checked: opening writes — the storage layer records its
//!    checkpoint in the cold store at every open — so the database itself
//!    is never opened. The copy is opened at the storage, index and
//!    transaction layers only (no expiry, no feed trimming, no search
//!    indexes, no job queue) and removed at the end.
//! 3. Every stored key and value read once, in key order (damage no
//!    collection's check reaches: a value that does not decode, a key in
//!    the wrong sled tree).
//! 4. Each collection's indexes against its documents
//!    (`Collections::verify_indexes`), then the change feed
//!    (`Database::verify_feed`).

mod copy;

use crate::database;
use crate::progress::Progress;
use aurora::index::{Collections, IndexConfig, IndexError};
use aurora::storage::{DirLock, DocumentStore, DocumentStoreConfig, StorageError, StoreConfig};
use aurora::txn::{Database, NoSink, TxnError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The exit code of a healthy database.
pub const HEALTHY: u8 = 0;
/// The exit code when problems were found.
pub const PROBLEMS: u8 = 1;
/// The exit code when the check could not be done.
pub const COULD_NOT_CHECK: u8 = 2;

/// Arguments of `aurora check`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0 healthy, 1 problems found, 2 could not check \
    (no database, in use by another process, unreadable).")]
pub struct Args {
    /// The database directory (not in use by another process).
    pub dir: PathBuf,
    /// Where the working copy goes (default: the system's temporary
    /// folder); it needs room for a copy of the database.
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

/// Why the check stopped before a verdict, or the damage that ended it.
enum Stop {
    /// Damage: verdict 1.
    Damage(String),
    /// Could not check: verdict 2.
    Cannot(String),
}

/// Runs `aurora check`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut report = Report::default();
    let code = match check(&args.dir, args.scratch.as_deref(), &mut report) {
        Ok(()) if report.problems == 0 => {
            println!("verdict: healthy");
            HEALTHY
        }
        Ok(()) => {
            println!("verdict: {} problem{} found", report.problems, plural(report.problems));
            PROBLEMS
        }
        Err(Stop::Damage(what)) => {
            report.problem(&what);
            println!("verdict: {} problem{} found", report.problems, plural(report.problems));
            PROBLEMS
        }
        Err(Stop::Cannot(why)) => {
            eprintln!("aurora: cannot check: {why}");
            println!("verdict: could not check");
            COULD_NOT_CHECK
        }
    };
    Ok(ExitCode::from(code))
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The printed findings and the problem count.
#[derive(Default)]
struct Report {
    problems: u64,
}

impl Report {
    fn ok(&self, what: &str) {
        println!("ok       {what}");
    }

    fn note(&self, what: &str) {
        println!("note     {what}");
    }

    fn problem(&mut self, what: &str) {
        self.problems += 1;
        println!("PROBLEM  {what}");
    }

    /// Counts `total` problems of which `shown` were printed.
    fn more(&mut self, total: u64, shown: usize) {
        let rest = total - shown as u64;
        if rest > 0 {
            self.problems += rest;
            println!("PROBLEM  … and {rest} more of the same kind");
        }
    }
}

fn check(dir: &Path, scratch: Option<&Path>, report: &mut Report) -> Result<(), Stop> {
    database::require_database(dir).map_err(|e| Stop::Cannot(e.to_string()))?;
    let lock = DirLock::acquire(dir).map_err(|e| match e {
        StorageError::Locked { .. } => Stop::Cannot(database::locked_message(dir)),
        e => Stop::Cannot(e.to_string()),
    })?;
    let wal = lock.inspect_wal().map_err(|e| Stop::Cannot(format!("reading the WAL: {e}")))?;
    let revisions = wal.revisions.map_or(String::new(), |(a, b)| format!(", revisions {a}–{b}"));
    let summary =
        format!("WAL: {} segment(s), {} bytes, {} record(s){revisions}", wal.segments, wal.bytes, wal.records);
    if wal.damage.is_empty() {
        report.ok(&summary);
    } else {
        report.note(&summary);
        for d in &wal.damage {
            report.problem(&format!("WAL segment {} at byte {}: {}", d.segment.display(), d.offset, d.reason));
        }
        report.note("indexes and change feed not checked: opening would refuse this WAL");
        return Ok(());
    }
    if let Some(t) = &wal.torn_tail {
        report.note(&format!(
            "WAL: a torn tail of {} bytes at byte {} of {} (writes cut short by a stop; the next open drops them)",
            t.bytes,
            t.offset,
            t.segment.display()
        ));
    }
    // Opening writes (the storage layer records its checkpoint in the cold
    // store, recovery replays and cuts): the copy is opened, never `dir`.
    let scratch = match scratch {
        Some(parent) => tempfile::Builder::new().prefix("aurora-check-").tempdir_in(parent),
        None => tempfile::Builder::new().prefix("aurora-check-").tempdir(),
    }
    .map_err(|e| Stop::Cannot(format!("creating a scratch folder: {e}")))?;
    let bytes = copy::copy_tree(dir, scratch.path()).map_err(|e| Stop::Cannot(format!("{e:#}")))?;
    if wal.needs_recovery() {
        report.note("not closed cleanly: its WAL has commits to replay (recovery runs on the copy)");
    }
    report.note(&format!("checking a copy ({bytes} bytes); the database itself is never opened"));
    let target = scratch.path().to_path_buf();
    drop(lock);
    let db = open(&target)?;
    let result = check_open(&db, report);
    let closed = db.collections().documents().store().close();
    result?;
    closed.map_err(|e| Stop::Cannot(format!("closing: {e}")))
}

/// Opens the storage, index and transaction layers (nothing above), with
/// small caches: the check reads everything once.
fn open(dir: &Path) -> Result<Database, Stop> {
    let docs =
        DocumentStore::open(dir, StoreConfig::default(), DocumentStoreConfig::default()).map_err(|e| match e {
            StorageError::Locked { .. } => Stop::Cannot(database::locked_message(dir)),
            e if storage_damage(&e) => Stop::Damage(format!("opening: {e}")),
            e => Stop::Cannot(format!("opening: {e}")),
        })?;
    let collections = Collections::open(docs, IndexConfig::default()).map_err(|e| match e {
        IndexError::Storage(s) if storage_damage(&s) => Stop::Damage(format!("reading the catalog: {s}")),
        e => Stop::Cannot(format!("reading the catalog: {e}")),
    })?;
    Ok(Database::with_options(collections, Arc::new(NoSink), aurora::Isolation::Snapshot, false))
}

fn storage_damage(e: &StorageError) -> bool {
    matches!(e, StorageError::Corrupt { .. } | StorageError::WalCorrupt { .. })
}

/// An error met while checking: damage it reveals is a problem, anything
/// else means the check could not finish.
fn classify(what: &str, e: TxnError) -> Stop {
    let damage = match &e {
        TxnError::Storage(s) | TxnError::Index(IndexError::Storage(s)) => storage_damage(s),
        _ => false,
    };
    if damage {
        Stop::Damage(format!("{what}: {e}"))
    } else {
        Stop::Cannot(format!("{what}: {e}"))
    }
}

/// Reads every stored key and value once, in key order: what no
/// collection's check reaches — a value that does not decode, a key stored
/// in the wrong sled tree (point reads look only in a key's own tree;
/// ARCHITECTURE.md, "The layout in sled") — stops the scan and is a
/// problem; the other checks still run.
fn check_store(db: &Database, report: &mut Report) -> Result<(), Stop> {
    let store = db.collections().documents().store();
    let bar = Progress::new(None, "reading every stored key (keys read)");
    let mut keys = 0u64;
    let mut bytes = 0u64;
    let scan = store.scan_prefix(b"").map_err(|e| Stop::Cannot(format!("scanning the store: {e}")))?;
    let mut damage = None;
    for item in scan {
        match item {
            Ok((k, v)) => {
                keys += 1;
                bytes += (k.len() + v.len()) as u64;
                if keys.is_multiple_of(4096) {
                    bar.set(keys);
                }
            }
            Err(e) if storage_damage(&e) => {
                damage = Some(e);
                break;
            }
            Err(e) => return Err(Stop::Cannot(format!("scanning the store: {e}"))),
        }
    }
    bar.finish();
    match damage {
        None => report.ok(&format!("store: {keys} keys, {bytes} bytes of keys and values, every one readable")),
        Some(e) => report.problem(&format!("store: after {keys} readable keys: {e}")),
    }
    Ok(())
}

fn check_open(db: &Database, report: &mut Report) -> Result<(), Stop> {
    check_store(db, report)?;
    let collections = db.collections();
    for name in collections.list_collections() {
        let bar = Progress::new(None, &format!("checking the indexes of `{name}` (keys read)"));
        let found = collections.verify_indexes(&name, |n| bar.set(n));
        bar.finish();
        let found = found.map_err(|e| classify(&format!("collection `{name}`"), TxnError::Index(e)))?;
        let summary = format!(
            "collection `{name}`: {} documents, {} index(es), {} entries, {} unique claims",
            found.documents, found.indexes_checked, found.entries, found.claims
        );
        if found.problem_count == 0 {
            report.ok(&summary);
        } else {
            report.note(&summary);
        }
        for b in &found.building {
            report.note(&format!("collection `{name}`: index `{b}` is still being built (not checked)"));
        }
        for p in &found.problems {
            report.problem(&format!("collection `{name}`: {p}"));
        }
        report.more(found.problem_count, found.problems.len());
    }
    let bar = Progress::new(None, "checking the change feed (entries)");
    let feed = db.verify_feed(|n| bar.set(n));
    bar.finish();
    let feed = feed.map_err(|e| classify("the change feed", e))?;
    let summary = format!(
        "change feed: {} entries, {} changes (sequences {}–{}); last change of {} documents matches",
        feed.entries,
        feed.changes,
        feed.floor + 1,
        feed.head,
        feed.documents_compared
    );
    if feed.problem_count == 0 {
        report.ok(&summary);
    } else {
        report.note(&summary.replace("; last change of", "; last change compared for"));
    }
    for p in &feed.problems {
        report.problem(&format!("change feed: {p}"));
    }
    report.more(feed.problem_count, feed.problems.len());
    Ok(())
}
