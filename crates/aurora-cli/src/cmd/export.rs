//! `aurora export`.

use std::process::ExitCode;

/// Arguments of `aurora export`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `aurora export`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`aurora export` is being built")
}
