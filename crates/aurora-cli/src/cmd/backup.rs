//! `aurora backup`.

use std::process::ExitCode;

/// Arguments of `aurora backup`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `aurora backup`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`aurora backup` is being built")
}
