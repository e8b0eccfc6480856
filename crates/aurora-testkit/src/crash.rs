//! The SIGKILL crash-test harness.
//!
//! A crash test is two `#[test]` functions in one test binary:
//!
//! - the **child entry** returns at once unless [`CrashTest::child_dir`]
//!   finds its environment variable; then it opens the folder, prints a
//!   line ending in `ready` once it is writing, and writes until killed;
//! - the **parent** runs [`CrashTest::rounds`] rounds of
//!   [`CrashTest::spawn`] → [`Child::kill_after`] on one folder, reopening
//!   and checking it after each kill.
//!
//! The child is the test binary itself (`std::env::current_exe`) running
//! only the entry test (`--exact`), so no extra binary is built. A real
//! `SIGKILL` (`std::process::Child::kill` on Unix) gives the process no
//! chance to flush, close or unwind: what survives is what the database
//! made durable.
//!
//! ```no_run
//! use aurora_testkit::crash::{jitter, CrashTest};
//! use std::time::Duration;
//!
//! const CRASH: CrashTest = CrashTest::new("child_entry", "MY_CRASH_DIR");
//!
//! // #[test]
//! fn child_entry() {
//!     let Some(dir) = CRASH.child_dir() else { return };
//!     // … open `dir` …
//!     println!("ready");
//!     loop { /* write, and print each acknowledged write */ }
//! }
//!
//! // #[test]
//! fn survives_sigkill() {
//!     if CRASH.is_child() {
//!         return;
//!     }
//!     let dir = std::env::temp_dir().join("example");
//!     for _ in 0..CRASH.rounds(4) {
//!         let acknowledged = CRASH.spawn(&dir).kill_after(Duration::from_millis(50) + jitter(400));
//!         // … reopen `dir`; every acknowledged write is there …
//!     }
//! }
//! ```

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;

/// The environment variable that sets how many kill rounds each crash
/// test runs (a CI machine may want fewer, a soak run many more).
pub const ROUNDS_VAR: &str = "AURORA_CRASH_ROUNDS";

/// How long [`CrashTest::spawn`] waits for the child's `ready` line: a
/// loaded CI machine can take many seconds to start a test binary.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One crash test: the name of its child-entry test and the environment
/// variable that hands the child its folder (and tells the other tests of
/// the binary, also run by the child's harness, to return at once).
#[derive(Debug, Clone, Copy)]
pub struct CrashTest {
    entry: &'static str,
    dir_var: &'static str,
}

impl CrashTest {
    /// A crash test whose child runs the test function named `entry` with
    /// the folder in the environment variable `dir_var`.
    pub const fn new(entry: &'static str, dir_var: &'static str) -> Self {
        Self { entry, dir_var }
    }

    /// In the child: the folder to write to; `None` in the parent.
    pub fn child_dir(&self) -> Option<PathBuf> {
        std::env::var_os(self.dir_var).map(PathBuf::from)
    }

    /// Whether this process is the child of this crash test.
    pub fn is_child(&self) -> bool {
        std::env::var_os(self.dir_var).is_some()
    }

    /// The number of rounds: `AURORA_CRASH_ROUNDS` if set to a number,
    /// else `default`.
    pub fn rounds(&self, default: u32) -> u32 {
        std::env::var(ROUNDS_VAR).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    /// Starts the child on `dir` and returns once it has printed a line
    /// ending in `ready`.
    ///
    /// # Panics
    /// If the test binary cannot be started, or the child exits or stays
    /// silent for [`READY_TIMEOUT`] without printing `ready` (a test
    /// failure: the kill would otherwise land before any work).
    pub fn spawn(&self, dir: &Path) -> Child {
        self.spawn_with(dir, &[])
    }

    /// [`CrashTest::spawn`] with extra environment variables for the child.
    ///
    /// # Panics
    /// As [`CrashTest::spawn`].
    pub fn spawn_with(&self, dir: &Path, env: &[(&str, &str)]) -> Child {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut command = Command::new(exe);
        command
            .args([self.entry, "--exact", "--nocapture", "--test-threads=1"])
            .env(self.dir_var, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut process = command.spawn().expect("starting the crash child");
        let stdout = process.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.ends_with("ready") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                } else if ready.is_none() {
                    lines.push(line);
                }
            }
            lines
        });
        let child = Child { process, reader: Some(reader) };
        wait_ready(&ready_rx, self.entry);
        child
    }
}

fn wait_ready(ready: &Receiver<()>, entry: &str) {
    assert!(ready.recv_timeout(READY_TIMEOUT).is_ok(), "the crash child `{entry}` never printed `ready`");
}

/// A running crash child (killed when dropped, so a failing parent leaves
/// no writer behind).
#[derive(Debug)]
pub struct Child {
    process: std::process::Child,
    reader: Option<JoinHandle<Vec<String>>>,
}

impl Child {
    /// Lets the child work for `after`, kills it with `SIGKILL`, reaps it
    /// and returns the lines it printed after `ready` (its
    /// acknowledgements: a line printed after a write returned is a write
    /// the database acknowledged).
    ///
    /// # Panics
    /// If the kill or the wait fails.
    pub fn kill_after(mut self, after: Duration) -> Vec<String> {
        std::thread::sleep(after);
        self.process.kill().expect("SIGKILL the crash child");
        self.process.wait().expect("reap the crash child");
        self.reader.take().map(|r| r.join().unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

/// A random duration below `max_ms` milliseconds (from the clock's
/// nanoseconds: no dependency, different in every round), to vary where
/// the kill lands.
pub fn jitter(max_ms: u64) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    Duration::from_millis(u64::from(nanos) % max_ms.max(1))
}
