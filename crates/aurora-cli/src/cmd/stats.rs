//! `aurora stats`.

use std::process::ExitCode;

/// Arguments of `aurora stats`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `aurora stats`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`aurora stats` is being built")
}
