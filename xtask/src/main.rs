//! Project automation, run as `cargo xtask <command>`:
//!
//! - `ci`: every check CI runs, in order, stopping at the first failure.
//! - `bench [--quick]`: the criterion benchmarks of `benches/`.
//!
//! The tidy checks live in `tidy.rs` as ordinary tests, so `cargo test`
//! runs them too.

use std::process::{Command, ExitCode};

#[cfg(test)]
mod tidy;

/// One step of `cargo xtask ci`.
struct Step {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

const CI_STEPS: &[Step] = &[
    Step { name: "fmt", args: &["fmt", "--all", "--check"], env: &[] },
    Step {
        name: "clippy",
        args: &["clippy", "--workspace", "--all-targets", "--all-features", "--", "-D", "warnings"],
        env: &[],
    },
    Step { name: "test", args: &["test", "--workspace", "--all-features"], env: &[] },
    Step {
        name: "doc",
        args: &["doc", "--workspace", "--all-features", "--no-deps"],
        env: &[("RUSTDOCFLAGS", "-D warnings")],
    },
    Step { name: "bench-build", args: &["bench", "--workspace", "--no-run"], env: &[] },
];

fn run(step: &Step) -> bool {
    eprintln!("==> xtask ci: {} (cargo {})", step.name, step.args.join(" "));
    let started = std::time::Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo).args(step.args).envs(step.env.iter().copied()).status();
    let ok = matches!(status, Ok(s) if s.success());
    eprintln!("==> {} {} in {:.0?}", step.name, if ok { "passed" } else { "FAILED" }, started.elapsed());
    ok
}

fn ci() -> ExitCode {
    for step in CI_STEPS {
        if !run(step) {
            eprintln!("xtask ci: step `{}` failed", step.name);
            return ExitCode::FAILURE;
        }
    }
    eprintln!("xtask ci: all steps passed");
    ExitCode::SUCCESS
}

fn bench(quick: bool) -> ExitCode {
    let mut args = vec!["bench", "-p", "aurora-benches", "--benches", "--"];
    if quick {
        args.extend(["--warm-up-time", "1", "--measurement-time", "2", "--sample-size", "10"]);
    }
    let step = Step { name: "bench", args: Vec::leak(args), env: &[] };
    if run(&step) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(args.iter().any(|a| a == "--quick")),
        _ => {
            eprintln!("usage: cargo xtask <ci | bench [--quick]>");
            ExitCode::FAILURE
        }
    }
}
