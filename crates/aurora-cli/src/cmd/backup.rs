//! `aurora backup DIR DEST`: a consistent copy of the database, as of its
//! newest commit, that opens as an ordinary database.

use crate::database;
use crate::progress::Progress;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `aurora backup`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database directory.
    pub dir: PathBuf,
    /// Where the copy goes: a directory that does not exist or is empty.
    /// It never holds a partial copy (the copy is written next to it and
    /// renamed when complete).
    pub dest: PathBuf,
}

/// Runs `aurora backup` (on `Aurora::backup_to_with_progress`).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    database::runtime()?.block_on(async {
        let db = database::open(&args.dir, false).await?;
        let bar = Progress::new(None, "copying entries");
        let ticks = bar.clone();
        let result = db.backup_to_with_progress(&args.dest, move |p| ticks.set(p.entries)).await;
        bar.finish();
        db.close().await?;
        let report = result?;
        println!(
            "backed up {} at revision {}: {} entries, {} bytes, in {:.1?} -> {}",
            args.dir.display(),
            report.revision,
            report.entries,
            report.bytes,
            report.elapsed,
            args.dest.display()
        );
        Ok(ExitCode::SUCCESS)
    })
}
