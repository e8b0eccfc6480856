//! A real `aurora serve` process on a loopback port, for the client and
//! console tests: started on a data directory, killed (SIGKILL) and
//! started again on the same address.
#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `aurora` binary cargo built for these tests.
pub const AURORA: &str = env!("CARGO_BIN_EXE_aurora");

/// A running server.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its data directory.
    pub data: PathBuf,
}

impl Server {
    /// Starts `aurora serve` on `data`, on any free port.
    pub fn start(data: &Path) -> Server {
        Self::start_on(data, "127.0.0.1:0")
    }

    /// Starts `aurora serve` on `data` listening on `listen` (retried for a
    /// few seconds while the port is still held by a killed server).
    pub fn start_on(data: &Path, listen: &str) -> Server {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new(AURORA)
                .args(["serve", "--data"])
                .arg(data)
                .args(["--listen", listen, "--log", "warn"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("the aurora binary starts");
            let stdout = child.stdout.take().expect("stdout piped");
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).unwrap_or(0);
            if read > 0 {
                if let Some(addr) = line.trim().strip_prefix("aurora: listening on http://") {
                    return Server { child, addr: addr.to_string(), data: data.to_path_buf() };
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "aurora serve did not start on {listen}: {line:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the process (SIGKILL: no clean shutdown) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts it again on the same address and data.
    pub fn restart(&mut self) {
        self.kill();
        let again = Server::start_on(&self.data, &self.addr.clone());
        *self = again;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Creates an API key with `rights` (e.g. `["--admin", "*"]`) on `data`; its token.
pub fn create_key(data: &Path, rights: &[&str]) -> String {
    let out = Command::new(AURORA)
        .args(["keys", "create", "--data"])
        .arg(data)
        .args(rights)
        .output()
        .expect("aurora keys create runs");
    assert!(out.status.success(), "aurora keys create failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub mod cdp;
