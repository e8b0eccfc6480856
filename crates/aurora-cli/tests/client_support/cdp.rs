//! A small Chrome DevTools Protocol client over `--remote-debugging-pipe`
//! (messages are JSON separated by NUL bytes on file descriptors 3 and 4,
//! which a shell maps to the child's stdin and stdout): headless Chromium
//! driven with no WebSocket library and no browser-automation crate.

use serde_json::{json, Value as Json};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A Chromium binary: `AURORA_CHROMIUM`, else the first of the usual names on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AURORA_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The browser to test with, or `None` after a loud skip notice for
/// `test` (a failure instead when `AURORA_REQUIRE_BROWSER=1`).
pub fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let found = find_chromium();
    if found.is_none() {
        assert!(
            std::env::var("AURORA_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "AURORA_REQUIRE_BROWSER=1 but no Chromium was found"
        );
        eprintln!("\n========================================================================");
        eprintln!("SKIPPED {test}: no Chromium on PATH (apt-get install chromium, or set");
        eprintln!("AURORA_CHROMIUM). The web console was NOT tested in a browser.");
        eprintln!("========================================================================\n");
    }
    found
}

/// A headless browser with one page attached.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<Json>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium and opens a blank page of `width` × `height`.
    pub fn start(chromium: &Path, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("a profile directory");
        let script = format!(
            "exec \"$0\" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
             --no-default-browser-check --hide-scrollbars --user-data-dir='{}' --remote-debugging-pipe about:blank \
             3<&0 4>&1 0</dev/null 1>/dev/null 2>/dev/null",
            profile.path().display()
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut msg = Vec::new();
            while reader.read_until(0, &mut msg).map(|n| n > 0).unwrap_or(false) {
                if msg.last() == Some(&0) {
                    msg.pop();
                }
                if let Ok(j) = serde_json::from_slice::<Json>(&msg) {
                    if tx.send(j).is_err() {
                        return;
                    }
                }
                msg.clear();
            }
        });
        let mut b = Browser { child, stdin, rx, next_id: 0, session: String::new(), _profile: profile };
        let target = b.call_browser("Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().expect("a target id").to_string();
        let attached = b.call_browser("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }));
        b.session = attached["sessionId"].as_str().expect("a session").to_string();
        b.call("Page.enable", json!({}));
        b.call("Runtime.enable", json!({}));
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        );
        b
    }

    fn send(&mut self, method: &str, params: Json, session: bool) -> Json {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if session {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("serializable");
        bytes.push(0);
        self.stdin.write_all(&bytes).expect("chromium reads commands");
        self.stdin.flush().expect("flushed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self.rx.recv_timeout(left).unwrap_or_else(|_| panic!("no answer to {method}"));
            if reply["id"] == json!(id) {
                assert!(reply.get("error").is_none(), "{method} failed: {}", reply["error"]);
                return reply["result"].clone();
            }
        }
    }

    fn call_browser(&mut self, method: &str, params: Json) -> Json {
        self.send(method, params, false)
    }

    /// A command to the page's session; its result.
    pub fn call(&mut self, method: &str, params: Json) -> Json {
        self.send(method, params, true)
    }

    /// Runs `script` in every document this page loads, before the page's
    /// own scripts (to install watchers).
    pub fn on_new_document(&mut self, script: &str) {
        self.call("Page.addScriptToEvaluateOnNewDocument", json!({ "source": script }));
    }

    /// Loads `url` and waits until the document is complete.
    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for("document.readyState === 'complete'", Duration::from_secs(20));
    }

    /// Evaluates `expression` in the page (promises awaited); its value.
    pub fn eval(&mut self, expression: &str) -> Json {
        let r = self
            .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }));
        assert!(r.get("exceptionDetails").is_none(), "`{expression}` threw: {}", r["exceptionDetails"]);
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is true; how long it took.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.eval(expression) == json!(true) {
                return start.elapsed();
            }
            assert!(start.elapsed() < timeout, "waited {timeout:?} for `{expression}`");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        use base64::Engine as _;
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().expect("data")).expect("base64");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(path, png).expect("screenshot written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
