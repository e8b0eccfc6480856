//! `aurora keys`.

use std::process::ExitCode;

/// Arguments of `aurora keys`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `aurora keys`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`aurora keys` is being built")
}
