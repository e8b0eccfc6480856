//! `aurora serve`.

use std::process::ExitCode;

/// Arguments of `aurora serve`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `aurora serve`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`aurora serve` is being built")
}
