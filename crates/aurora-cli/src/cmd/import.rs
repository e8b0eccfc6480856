//! `aurora import`.

use std::process::ExitCode;

/// Arguments of `aurora import`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `aurora import`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`aurora import` is being built")
}
