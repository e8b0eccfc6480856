//! `aurora check`.

use std::process::ExitCode;

/// Arguments of `aurora check`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `aurora check`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`aurora check` is being built")
}
