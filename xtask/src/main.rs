//! Project automation, run as `cargo xtask <command>`:
//!
//! - `ci`: every check CI runs, in order, stopping at the first failure
//!   (fmt, clippy, tests, the runnable examples, docs, benchmark build).
//! - `bench [--quick]`: the comparison suite (`benches/benches/compare.rs`
//!   and the `footprint` example), then `docs/benchmarks.md` from its
//!   results; `--quick` finishes in minutes on 2 cores; `--all` runs every
//!   criterion benchmark of `benches/` instead (no report);
//!   `--report-only` rewrites the report from the last run's results
//!   (criterion's, and the examples' output saved under
//!   `target/criterion/`) without measuring.
//! - `plot FILE [OUT]`: the footprint plot (`OUT`, default
//!   `docs/footprint.svg`) from a saved output of the `footprint` example
//!   (its `SAMPLE` lines), for a footprint run made on its own
//!   (`cargo run --release -p aurora-benches --example footprint`).
//!
//! The tidy checks live in `tidy.rs` as ordinary tests, so `cargo test`
//! runs them too.

use std::process::{Command, ExitCode};

mod plot;
mod report;
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
    // The examples and benchmarks are built with the test step's profile and
    // features, so no dependency is compiled a second time (and the target
    // directory holds one build of each, not three).
    Step {
        name: "examples",
        args: &["build", "--quiet", "--profile", "test", "--workspace", "--all-features", "--examples"],
        env: &[],
    },
    Step {
        name: "doc",
        args: &["doc", "--workspace", "--all-features", "--no-deps"],
        env: &[("RUSTDOCFLAGS", "-D warnings")],
    },
    Step {
        name: "bench-build",
        args: &["build", "--profile", "test", "--workspace", "--all-features", "--benches"],
        env: &[],
    },
];

/// The runnable examples CI runs after the tests (each must finish well
/// within [`EXAMPLE_LIMIT`]), with their arguments.
const EXAMPLES: &[(&str, &[&str])] = &[
    ("quickstart", &["target/quickstart-data"]),
    ("chat_room", &[]),
    ("leaderboard", &[]),
    ("job_pipeline", &[]),
    ("either_backend", &[]),
];

/// Longest an example may run before CI calls it hung.
const EXAMPLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs each example binary (built by the `examples` step) with a deadline.
fn run_examples() -> bool {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"),
        std::path::PathBuf::from,
    );
    for (name, args) in EXAMPLES {
        eprintln!("==> xtask ci: example {name}");
        let started = std::time::Instant::now();
        let mut child = match Command::new(target.join("debug").join("examples").join(name)).args(*args).spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("example {name} could not start: {e}");
                return false;
            }
        };
        let ok = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.success(),
                Ok(None) if started.elapsed() > EXAMPLE_LIMIT => {
                    let _ = child.kill();
                    eprintln!("example {name} still running after {EXAMPLE_LIMIT:?}: killed");
                    break false;
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
                Err(_) => break false,
            }
        };
        eprintln!("==> example {name} {} in {:.0?}", if ok { "passed" } else { "FAILED" }, started.elapsed());
        if !ok {
            return false;
        }
    }
    true
}

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
        if step.name == "examples" && !run_examples() {
            eprintln!("xtask ci: an example failed");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("xtask ci: all steps passed");
    ExitCode::SUCCESS
}

fn criterion_args(quick: bool) -> Vec<&'static str> {
    if quick {
        vec!["--warm-up-time", "0.5", "--measurement-time", "1", "--sample-size", "10"]
    } else {
        vec!["--warm-up-time", "2", "--measurement-time", "5"]
    }
}

fn bench(quick: bool, all: bool) -> ExitCode {
    let mut args = vec!["bench", "-p", "aurora-benches"];
    args.extend(if all { ["--benches", "--"] } else { ["--bench", "compare"] });
    if !all {
        args.push("--");
    }
    args.extend(criterion_args(quick));
    if !run(&Step { name: "bench", args: Vec::leak(args), env: &[] }) {
        return ExitCode::FAILURE;
    }
    if all {
        return ExitCode::SUCCESS;
    }
    let docs = if quick { "100000" } else { "1000000" };
    eprintln!("==> xtask bench: footprint and event latency ({docs} documents per engine)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["run", "--quiet", "--release", "-p", "aurora-benches", "--example", "footprint", "--", "--docs", docs])
        .output();
    let mut footprint = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).to_string(),
        Ok(o) => {
            eprintln!("footprint failed: {}", String::from_utf8_lossy(&o.stderr));
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("footprint could not run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sizes: &[&str] = if quick { &["10000", "100000"] } else { &["10000", "100000", "1000000"] };
    for (i, docs) in sizes.iter().enumerate() {
        eprintln!("==> xtask bench: live queries at scale ({docs} messages)");
        let listeners = if i == 0 { "10000" } else { "0" };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["run", "--quiet", "--release", "-p", "aurora-benches", "--example", "live_query_scale", "--"])
            .args(["--docs", docs, "--listeners", listeners])
            .output();
        match out {
            Ok(o) if o.status.success() => footprint.push_str(&String::from_utf8_lossy(&o.stdout)),
            Ok(o) => {
                eprintln!("live_query_scale failed: {}", String::from_utf8_lossy(&o.stderr));
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("live_query_scale could not run: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(std::path::Path::new("."));
    let output = format!("{}{footprint}", report::run_line(quick));
    let saved = report::saved_output(root);
    if let Err(e) = std::fs::write(&saved, &output) {
        eprintln!("xtask bench: saving {} failed: {e}", saved.display());
    }
    write_report(root, &output)
}

/// `bench --report-only`: the report rewritten from the results of the
/// last run (criterion's and the saved output of the examples), without
/// measuring again — for a change to the report itself.
fn report_only() -> ExitCode {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(std::path::Path::new("."));
    let saved = report::saved_output(root);
    match std::fs::read_to_string(&saved) {
        Ok(output) => write_report(root, &output),
        Err(e) => {
            eprintln!(
                "xtask bench --report-only: reading {} failed ({e}): run `cargo xtask bench` first",
                saved.display()
            );
            ExitCode::FAILURE
        }
    }
}

fn write_report(root: &std::path::Path, output: &str) -> ExitCode {
    match report::write(root, output) {
        Ok(path) => {
            eprintln!("xtask bench: wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask bench: writing the report failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the footprint plot (`out`, default `docs/footprint.svg`) from a
/// saved `footprint` output.
fn plot_file(path: &str, out: Option<&str>) -> ExitCode {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(std::path::Path::new("."));
    let output = match std::fs::read_to_string(path) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask plot: reading {path} failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(svg) = plot::svg(&output) else {
        eprintln!("xtask plot: {path} holds no SAMPLE lines");
        return ExitCode::FAILURE;
    };
    let target = out.map_or_else(|| root.join("docs").join("footprint.svg"), std::path::PathBuf::from);
    match std::fs::write(&target, svg) {
        Ok(()) => {
            eprintln!("xtask plot: wrote {}", target.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask plot: writing {} failed: {e}", target.display());
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") if args.iter().any(|a| a == "--report-only") => report_only(),
        Some("bench") => bench(args.iter().any(|a| a == "--quick"), args.iter().any(|a| a == "--all")),
        Some("plot") if (2..=3).contains(&args.len()) => plot_file(&args[1], args.get(2).map(String::as_str)),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | bench [--quick] [--all] [--report-only] | plot FOOTPRINT_OUTPUT [SVG]>"
            );
            ExitCode::FAILURE
        }
    }
}
