//! `aurora query`.

use std::process::ExitCode;

/// Arguments of `aurora query`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `aurora query`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`aurora query` is being built")
}
