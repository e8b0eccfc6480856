//! `aurora export DIR COLLECTION`: every document of a collection as JSON
//! lines in the plain-JSON form (`docs/json.md`), in id order, read from
//! one snapshot and streamed (memory stays bounded).

use crate::database;
use crate::output::write_json_line;
use crate::progress::Progress;
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `aurora export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database directory.
    pub dir: PathBuf,
    /// The collection.
    pub collection: String,
    /// Write to this file instead of standard output (replaced only when
    /// the export is complete).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Runs `aurora export`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    database::runtime()?.block_on(async {
        let db = database::open(&args.dir, false).await?;
        let result = export(&db, &args);
        db.close().await?;
        let n = result?;
        eprintln!("exported {n} document{} from `{}`", if n == 1 { "" } else { "s" }, args.collection);
        Ok(ExitCode::SUCCESS)
    })
}

fn export(db: &aurora::Aurora, args: &Args) -> anyhow::Result<u64> {
    database::require_collection(db, &args.dir, &args.collection)?;
    match &args.output {
        None => write_all(db, &args.collection, &mut std::io::stdout().lock()),
        Some(path) => {
            // Written beside the target and renamed: an interrupted export
            // never leaves a file that looks complete.
            let partial = partial_path(path);
            let file = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let written = write_all(db, &args.collection, &mut out).and_then(|n| {
                out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&partial, path).with_context(|| format!("renaming to {}", path.display()))?;
                Ok(n)
            });
            if written.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            written
        }
    }
}

fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

fn write_all(db: &aurora::Aurora, collection: &str, out: &mut impl Write) -> anyhow::Result<u64> {
    let bar = Progress::new(None, "exporting documents");
    let mut n = 0u64;
    let mut out = std::io::BufWriter::new(out);
    for doc in db.query(collection).stream()? {
        write_json_line(&mut out, &doc?)?;
        n += 1;
        if n.is_multiple_of(1024) {
            bar.set(n);
        }
    }
    out.flush()?;
    bar.finish();
    Ok(n)
}
