//! What the black-box tests share: running the real `aurora` binary and
//! making databases to run it on.

#![allow(dead_code)] // each test file uses its own part

use std::path::Path;
use std::process::{Command, Output};

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics unless the run exited 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    /// Panics unless the run exited with `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        self
    }
}

/// Runs `aurora ARGS…` in `cwd`.
pub fn aurora_in(cwd: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_aurora"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the aurora binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `aurora ARGS…` with paths given in full.
pub fn aurora(args: &[&str]) -> Run {
    aurora_in(Path::new("."), args)
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// A runtime for the in-process parts of tests (making and inspecting databases).
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Writes `lines` as a JSON-lines file.
pub fn write_lines(path: &Path, lines: &[serde_json::Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).expect("write input file");
}

/// Every file under `dir` (relative path → bytes), the lock file aside.
pub fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "LOCK") {
                let rel = p.strip_prefix(dir).expect("under dir").to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).expect("read file"));
            }
        }
    }
    out
}

/// Waits (up to 10 s) until nothing holds `dir`'s lock. A database this
/// process just closed can stay locked for a moment: a child process that
/// another test thread is starting holds a copy of every descriptor between
/// its fork and its exec, the lock file's included.
pub fn settle(dir: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while aurora::storage::DirLock::acquire(dir).is_err() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Runs `aurora check DIR`, asserting it changed no file of the database.
pub fn check_unchanged(dir: &Path) -> Run {
    let before = files(dir);
    let run = aurora(&["check", s(dir)]);
    assert!(files(dir) == before, "checking changed the database: {run:#?}");
    run
}
