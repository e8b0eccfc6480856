//! The `aurora` command line.
//!
//! One subcommand per module in [`cmd`]; each module holds its clap
//! arguments (`Args`) and its `run` function. `aurora --help` lists them.

mod cmd;
mod database;
mod output;
mod progress;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Aurora: an embedded, real-time document database — served over HTTP or
/// looked into from the command line.
#[derive(Parser, Debug)]
#[command(name = "aurora", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a database over HTTP (JSON) and Server-Sent Events.
    Serve(cmd::serve::Args),
    /// Print a database's collections, sizes and counters.
    Stats(cmd::stats::Args),
    /// Run a query given as plain-JSON filter against one collection.
    Query(cmd::query::Args),
    /// Import documents from JSON lines or a JSON array into a collection.
    Import(cmd::import::Args),
    /// Export a collection's documents as JSON lines.
    Export(cmd::export::Args),
    /// Write a consistent online backup of a database to a directory.
    Backup(cmd::backup::Args),
    /// Check a database (WAL, indexes against documents, change feed); the exit code is the verdict.
    Check(cmd::check::Args),
    /// Manage the server's API keys.
    Keys(cmd::keys::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Stats(args) => cmd::stats::run(args),
        Command::Query(args) => cmd::query::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Backup(args) => cmd::backup::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Keys(args) => cmd::keys::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aurora: {e:#}");
            ExitCode::FAILURE
        }
    }
}
