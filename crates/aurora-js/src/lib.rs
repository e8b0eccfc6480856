//! Aurora's JavaScript sandbox for computed fields (`Expression::Custom`).
//!
//! Scripts run in **sandbox processes**, never in the host process and never
//! on the calling thread: a sandbox is this same program re-executed with a
//! marker in its environment, which an ELF `.init_array` hook in this crate
//! sees before the program's `main` runs; it then serves requests over its
//! stdin/stdout and exits when the host closes the pipe. Each request gets a
//! fresh QuickJS runtime and context (nothing a script leaves behind is seen
//! by another), with a metering allocator and an interrupt handler that
//! counts CPU time; the host waits for the reply with a wall-clock deadline
//! (`poll(2)`) and kills the process (`SIGKILL`) when it is late, so a script
//! stuck in native code (a backtracking regex, a `join` over 2⁴⁰ elements)
//! is still stopped. An engine crash ends only the
//! sandbox: the host reports [`Failure::Crashed`] and starts another.
//!
//! A [`Session`] is the evaluations of one query: it holds one sandbox while
//! the query runs and charges each evaluation's wall-clock time against
//! [`Limits::query_budget`].
//!
//! ```
//! use aurora_js::{Limits, Session};
//! let mut s = Session::new(Limits::default());
//! let params = vec!["age".to_string()];
//! let v = s.evaluate(&params, "if (age < 18) return 'minor'; return 'adult';", vec![12.into()]);
//! assert_eq!(v, Ok("minor".into()));
//! ```
//!
//! Platform: Linux (ELF constructors, `/proc/self/exe`, `prctl`); elsewhere
//! every call fails with [`Failure::Unavailable`].
//!
//! Architecture invariant: knows `aurora-core`'s `Value` and nothing else of
//! Aurora; no async runtime.

mod child;
mod pool;
mod protocol;

pub use pool::{Session, KILL_GRACE};
use std::time::Duration;

/// Memory one evaluation's runtime may allocate (its allocator's limit).
pub const MEMORY_LIMIT: usize = 16 << 20;
/// CPU time one evaluation may use (the host's wall-clock limit is this
/// plus [`KILL_GRACE`]).
pub const TIME_LIMIT: Duration = Duration::from_millis(50);
/// Script time one query may spend across all its documents.
pub const QUERY_BUDGET: Duration = Duration::from_secs(1);
/// Largest result of one evaluation, encoded, in bytes.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// The limits a [`Session`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// CPU time per evaluation ([`TIME_LIMIT`]); the host kills a sandbox
    /// that has not answered after this + [`KILL_GRACE`] of wall-clock time.
    pub time: Duration,
    /// Wall-clock time per session, across evaluations ([`QUERY_BUDGET`]).
    pub query_budget: Duration,
    /// Bytes a runtime may allocate ([`MEMORY_LIMIT`]).
    pub memory: usize,
    /// Bytes of one encoded result ([`OUTPUT_LIMIT`]).
    pub output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { time: TIME_LIMIT, query_budget: QUERY_BUDGET, memory: MEMORY_LIMIT, output: OUTPUT_LIMIT }
    }
}

/// Why an evaluation failed. Messages are bounded (1 KiB).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The code is not one function body (a syntax error, or it closes the
    /// function early).
    Syntax(String),
    /// The script threw (the exception's name and message).
    Threw(String),
    /// The evaluation ran past its time limit (CPU time in the engine, or
    /// the host's wall-clock deadline).
    TimeLimit(Duration),
    /// The session's time budget is spent.
    QueryBudget(Duration),
    /// The runtime ran out of its memory limit.
    MemoryLimit(usize),
    /// The result is larger than the output limit.
    OutputTooLarge(usize),
    /// The result cannot be a document value (a function, a symbol, nested
    /// more than 32 deep, a getter that threw).
    Unrepresentable(String),
    /// The sandbox process died or misbehaved (a crash of the engine).
    Crashed(String),
    /// No sandbox process could be started.
    Unavailable(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Syntax(m) => write!(f, "not a function body: {m}"),
            Failure::Threw(m) => write!(f, "the script threw {m}"),
            Failure::TimeLimit(t) => write!(f, "the script ran past its time limit of {} ms", t.as_millis()),
            Failure::QueryBudget(t) => write!(f, "the query spent its script budget of {} ms", t.as_millis()),
            Failure::MemoryLimit(n) => write!(f, "the script ran out of its memory limit of {n} bytes"),
            Failure::OutputTooLarge(n) => write!(f, "the script's result is larger than {n} bytes"),
            Failure::Unrepresentable(m) => write!(f, "the script's result cannot be stored: {m}"),
            Failure::Crashed(m) => write!(f, "the script engine crashed: {m}"),
            Failure::Unavailable(m) => write!(f, "no script sandbox: {m}"),
        }
    }
}

impl std::error::Error for Failure {}

/// Checks that `body` compiles as the body of a function of `params`, in a
/// sandbox (nothing is called).
pub fn check(params: &[String], body: &str) -> Result<(), Failure> {
    Session::new(Limits::default()).check(params, body)
}

/// Parameter names for dependency paths: `.` becomes `_`
/// (`address.city` → `address_city`); `None` if a name is not a plain
/// JavaScript identifier.
pub fn parameter_names(dependencies: &[String]) -> Option<Vec<String>> {
    dependencies
        .iter()
        .map(|d| {
            let p = d.replace('.', "_");
            let mut chars = p.chars();
            let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$');
            (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')).then_some(p)
        })
        .collect()
}
