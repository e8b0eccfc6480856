//! `aurora import DIR COLLECTION FILE`: documents from JSON lines or a
//! JSON array, in the plain-JSON form (`docs/json.md`; `_id` kept when
//! present, a new id otherwise).
//!
//! Two passes over the file, both streamed:
//!
//! 1. **Check**: every record is parsed, read as a document, validated
//!    against the collection's schema, and its `_id` (if any) looked up. The
//!    first bad record stops the import with its line (or array element)
//!    number, and **nothing is written**.
//! 2. **Write**: the records are inserted with `insert_many`, one atomic
//!    transaction per batch (`--batch-size`). A batch can still fail for
//!    what only a write finds (a unique value taken, a duplicate `_id`
//!    inside the file, a full disk): that batch writes nothing, the
//!    batches before it stay written, and the command says exactly which
//!    records were imported and how to resume (`--start-at`).

mod records;

use crate::database;
use crate::progress::Progress;
use anyhow::{bail, Context};
use aurora::{Aurora, Document};
use records::{BadRecord, InputFormat, Position, Problem};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `aurora import`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database directory.
    pub dir: PathBuf,
    /// The collection.
    pub collection: String,
    /// The file: `.ndjson`/`.jsonl` (one document per line) or `.json`
    /// (an array of documents).
    pub file: PathBuf,
    /// The file's form, when its name does not say.
    #[arg(long, value_enum)]
    pub format: Option<InputFormat>,
    /// Create the collection (schemaless) — and the database — if missing.
    #[arg(long)]
    pub create: bool,
    /// Documents per transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch_size: u64,
    /// Start at this record (line, or array element), skipping earlier
    /// ones: to resume an import that stopped part-way.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub start_at: u64,
}

/// Runs `aurora import`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let format = match args.format.or_else(|| InputFormat::from_name(&args.file)) {
        Some(f) => f,
        None => bail!("{}: say --format ndjson or --format json (the name does not tell)", args.file.display()),
    };
    let open = || std::fs::File::open(&args.file).with_context(|| format!("opening {}", args.file.display()));
    let size = open()?.metadata().map(|m| m.len()).unwrap_or(0);
    let rt = database::runtime()?;
    let db = rt.block_on(database::open(&args.dir, args.create))?;
    let result = import(&rt, &db, &args, format, size, &open);
    rt.block_on(db.close())?;
    result
}

fn import(
    rt: &tokio::runtime::Runtime,
    db: &Aurora,
    args: &Args,
    format: InputFormat,
    size: u64,
    open: &dyn Fn() -> anyhow::Result<std::fs::File>,
) -> anyhow::Result<ExitCode> {
    let c = args.collection.as_str();
    if args.create {
        rt.block_on(db.ensure_collection(c, Vec::<(&str, aurora::FieldDefinition)>::new())).or_else(|e| match e {
            // It exists with a schema: import into it as it is.
            aurora::Error::Index(aurora::index::IndexError::InvalidSchema { .. }) => Ok(false),
            e => Err(e),
        })?;
    }
    database::require_collection(db, &args.dir, c)?;
    let schema = db.database().collections().definition(c)?.schema;

    // Pass 1: check everything, write nothing.
    let bar = Progress::bytes(size, "checking");
    let counted = CountingReader { inner: open()?, read: 0, bar: bar.clone() };
    let mut total = 0u64;
    records::for_each(counted, format, args.start_at, |at, json| {
        let doc = to_document(at, &json)?;
        schema.validate(c, &doc).map_err(|e| BadRecord { at, problem: Problem::Schema(e.to_string()) })?;
        if json.get("_id").is_some() {
            let exists = db
                .database()
                .collections()
                .get(c, &doc.id)
                .map_err(|e| BadRecord { at, problem: Problem::Io(format!("looking up _id {}: {e}", doc.id)) })?;
            if exists.is_some() {
                return Err(BadRecord { at, problem: Problem::Exists(doc.id.to_string()) });
            }
        }
        // The size and nesting limits every write path applies, checked
        // here so that a refusal comes before anything is written.
        db.database()
            .collections()
            .documents()
            .admit(doc)
            .map_err(|e| BadRecord { at, problem: Problem::TooLarge(e.to_string()) })?;
        total += 1;
        Ok(())
    })
    .map_err(|e| anyhow::Error::new(e).context("nothing was imported"))?;
    bar.finish();

    // Pass 2: write in batches, one batch in memory at a time.
    let bar = Progress::new(Some(total), "importing");
    let mut batch: Vec<(Position, Document)> = Vec::new();
    let mut written = 0u64;
    let mut last_written: Option<Position> = None;
    let mut failure: Option<anyhow::Error> = None;
    let mut record = |result: anyhow::Result<Option<(u64, Position)>>, failure: &mut Option<anyhow::Error>| match result
    {
        Ok(Some((n, last))) => {
            written += n;
            last_written = Some(last);
        }
        Ok(None) => {}
        Err(e) => *failure = Some(e),
    };
    let read = records::for_each(open()?, format, args.start_at, |at, json| {
        batch.push((at, to_document(at, &json)?));
        if batch.len() as u64 == args.batch_size {
            record(write_batch(rt, db, c, std::mem::take(&mut batch), &bar), &mut failure);
            if failure.is_some() {
                return Err(BadRecord { at, problem: Problem::Io("stopped: a batch failed".into()) });
            }
        }
        Ok(())
    });
    if failure.is_none() {
        match read {
            Ok(()) => record(write_batch(rt, db, c, std::mem::take(&mut batch), &bar), &mut failure),
            Err(e) => failure = Some(anyhow::Error::new(e).context("the file changed during the import")),
        }
    }
    bar.finish();
    if let Some(e) = failure {
        let done = match last_written {
            Some(p) => format!(
                "{written} document{} imported, through {p}; resume with --start-at {}",
                if written == 1 { " was" } else { "s were" },
                p.number() + 1
            ),
            None => "nothing was imported".to_string(),
        };
        return Err(e.context(done));
    }
    eprintln!("imported {written} document{} into `{c}`", if written == 1 { "" } else { "s" });
    Ok(ExitCode::SUCCESS)
}

fn to_document(at: Position, json: &serde_json::Value) -> Result<Document, BadRecord> {
    Document::from_json(json).map_err(|e| BadRecord {
        at,
        problem: Problem::NotADocument(match e {
            aurora::CoreError::InvalidJson { at, reason } if !at.is_empty() => format!("at {at}: {reason}"),
            aurora::CoreError::InvalidJson { reason, .. } => reason,
            other => other.to_string(),
        }),
    })
}

/// Inserts one batch in one transaction; returns how many and the last
/// record's position (`None` for an empty batch).
fn write_batch(
    rt: &tokio::runtime::Runtime,
    db: &Aurora,
    collection: &str,
    batch: Vec<(Position, Document)>,
    bar: &Progress,
) -> anyhow::Result<Option<(u64, Position)>> {
    let (Some(&(first, _)), Some(&(last, _))) = (batch.first(), batch.last()) else {
        return Ok(None);
    };
    let n = batch.len() as u64;
    let docs: Vec<Document> = batch.into_iter().map(|(_, d)| d).collect();
    rt.block_on(db.insert_many(collection, docs))
        .with_context(|| format!("the batch of {first} to {last} was refused and not written"))?;
    bar.inc(n);
    Ok(Some((n, last)))
}

/// Counts bytes read, for the first pass's progress bar.
struct CountingReader<R> {
    inner: R,
    read: u64,
    bar: Progress,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        self.bar.set(self.read);
        Ok(n)
    }
}
