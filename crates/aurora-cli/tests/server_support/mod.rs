//! Shared by the `server_*` tests: the real `aurora` binary started on a
//! free loopback port in a temporary directory, and a small HTTP/1.1
//! client on `std::net` (requests, and Server-Sent Event streams read
//! incrementally).
//!
//! Why a hand-written client: it adds nothing to compile (an HTTP client
//! crate would pull in its own stack), the tests run blocking on plain
//! threads, and a test can stop reading a socket at an exact point — the
//! slow-consumer test needs exactly that — or send any bytes it likes.

#![allow(dead_code)]

use serde_json::Value as Json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `aurora serve`.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The database directory.
    pub data: PathBuf,
    /// Where its standard error goes.
    pub log: PathBuf,
}

/// The `aurora` binary.
pub fn aurora() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aurora"))
}

impl Server {
    /// Starts `aurora serve --data DATA --listen 127.0.0.1:0 EXTRA…` and
    /// waits for its "listening" line.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Self::try_start(data, extra).unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// Like [`Server::start`], returning the failure (exit status and log).
    pub fn try_start(data: &Path, extra: &[&str]) -> Result<Server, String> {
        let log = data.with_extension(format!("log-{}", std::process::id() as u64 * 1000 + next_id()));
        let err = std::fs::File::create(&log).expect("log file");
        let mut child = aurora()
            .args(["serve", "--data"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("spawn aurora serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let addr = line.rsplit("http://").next().unwrap_or_default().trim().to_string();
                Ok(Server { child, addr, data: data.to_path_buf(), log })
            }
            Err(_) => {
                let status = child.wait().ok();
                Err(format!("exit {status:?}; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default()))
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client without a key.
    pub fn client(&self) -> Client {
        Client { addr: self.addr.clone(), token: None }
    }

    /// A client with a bearer token.
    pub fn client_with(&self, token: &str) -> Client {
        Client { addr: self.addr.clone(), token: Some(token.to_string()) }
    }

    /// SIGKILL: no shutdown at all.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (at most `within`) for the exit; returns whether it exited successfully.
    pub fn terminate(mut self, within: Duration) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            if started.elapsed() > within {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn next_id() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Runs `aurora keys ARGS… --data DATA`; returns stdout (the token for `create`).
pub fn keys(data: &Path, args: &[&str]) -> String {
    let out =
        aurora().arg("keys").args(&args[..1]).arg("--data").arg(data).args(&args[1..]).output().expect("aurora keys");
    assert!(out.status.success(), "aurora keys {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("not JSON ({e}), status {}: {}", self.status, String::from_utf8_lossy(&self.body))
        })
    }

    /// A header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error code of an error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_string()
    }
}

/// A blocking HTTP/1.1 client (one connection per request).
#[derive(Clone)]
pub struct Client {
    pub addr: String,
    pub token: Option<String>,
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

fn write_request(
    s: &mut TcpStream,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    // The server may answer (413) and close before reading a large body.
    let _ = s.write_all(&bytes);
}

/// Reads a status line and headers.
fn read_head(r: &mut BufReader<TcpStream>) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

/// Reads one chunk of a chunked body (empty at the end).
fn read_chunk(r: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    if line.is_empty() {
        return Ok(Vec::new());
    }
    let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad chunk size {line:?}")))?;
    let mut chunk = vec![0; size];
    r.read_exact(&mut chunk)?;
    let mut crlf = [0; 2];
    r.read_exact(&mut crlf)?;
    Ok(chunk)
}

impl Client {
    /// A request; `body` is sent as JSON text.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Response {
        self.request_with(method, path, body.map(str::as_bytes), &[])
    }

    /// A request with extra headers and raw body bytes.
    pub fn request_with(&self, method: &str, path: &str, body: Option<&[u8]>, headers: &[(&str, &str)]) -> Response {
        let mut s = connect(&self.addr);
        write_request(&mut s, method, path, self.token.as_deref(), headers, body);
        let mut r = BufReader::new(s);
        let (status, headers) = read_head(&mut r).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let header = |n: &str| headers.iter().find(|(h, _)| h.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        let mut body = Vec::new();
        if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
            body.resize(len, 0);
            r.read_exact(&mut body).expect("body");
        } else if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            loop {
                let chunk = read_chunk(&mut r).expect("chunk");
                if chunk.is_empty() {
                    break;
                }
                body.extend(chunk);
            }
        } else {
            let _ = r.read_to_end(&mut body);
        }
        Response { status, headers, body }
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, None)
    }

    /// Sends `bytes` as they are on a fresh connection (anything, HTTP or
    /// not) and reads one response with a `content-length` body.
    pub fn raw(&self, bytes: &[u8]) -> Response {
        let mut s = connect(&self.addr);
        // The server may answer and close before reading everything.
        let _ = s.write_all(bytes);
        let mut r = BufReader::new(s);
        let (status, headers) = read_head(&mut r).unwrap_or_else(|e| panic!("raw request: {e}"));
        let len = headers
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        r.read_exact(&mut body).expect("body");
        Response { status, headers, body }
    }

    pub fn post(&self, path: &str, body: &Json) -> Response {
        self.request("POST", path, Some(&body.to_string()))
    }

    /// POST, expecting `status`; returns the JSON body.
    pub fn post_ok(&self, path: &str, body: &Json, status: u16) -> Json {
        let r = self.post(path, body);
        assert_eq!(r.status, status, "POST {path} {body}: {}", r.text());
        r.json()
    }

    /// Opens an event stream (`GET path`); `Err` with the response if the
    /// status is not 200.
    pub fn events(&self, path: &str, headers: &[(&str, &str)]) -> Result<EventStream, Response> {
        let mut s = connect(&self.addr);
        let mut all = vec![("Accept", "text/event-stream")];
        all.extend_from_slice(headers);
        write_request(&mut s, "GET", path, self.token.as_deref(), &all, None);
        let mut r = BufReader::new(s);
        let (status, headers) = read_head(&mut r).expect("stream head");
        if status != 200 {
            let mut body = Vec::new();
            let _ = r.read_to_end(&mut body);
            return Err(Response { status, headers, body });
        }
        let raw = r.buffer().to_vec();
        let mut stream = EventStream { socket: r.into_inner(), raw, pending: String::new(), ended: false };
        stream.decode();
        Ok(stream)
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("event data not JSON ({e}): {}", self.data))
    }

    /// The id as a sequence number.
    pub fn seq(&self) -> u64 {
        self.id
            .as_deref()
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("event without a numeric id: {self:?}"))
    }
}

/// An open event stream, read as the test asks. The chunked body is
/// decoded from a byte buffer, so a read that times out loses nothing.
pub struct EventStream {
    socket: TcpStream,
    /// Bytes received and not yet decoded from the chunked framing.
    raw: Vec<u8>,
    /// Decoded event text not yet split into events.
    pending: String,
    ended: bool,
}

impl EventStream {
    /// The socket (to stop reading, or to shut it down).
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Moves every complete chunk from `raw` to `pending`.
    fn decode(&mut self) {
        loop {
            let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else { return };
            let size_text = String::from_utf8_lossy(&self.raw[..eol]).to_string();
            let Ok(size) = usize::from_str_radix(size_text.trim().split(';').next().unwrap_or(""), 16) else {
                self.ended = true;
                return;
            };
            if size == 0 {
                self.ended = true;
                return;
            }
            let need = eol + 2 + size + 2;
            if self.raw.len() < need {
                return;
            }
            let chunk: Vec<u8> = self.raw.drain(..need).skip(eol + 2).take(size).collect();
            self.pending.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event (comments skipped), or `None` when the stream ends
    /// or nothing comes within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut e = Event { event: "message".into(), id: None, data: String::new() };
                let mut any = false;
                for line in block.lines() {
                    if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    let (field, value) =
                        line.split_once(':').map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
                    any = true;
                    match field {
                        "event" => e.event = value.to_string(),
                        "id" => e.id = Some(value.to_string()),
                        "data" => {
                            if !e.data.is_empty() {
                                e.data.push('\n');
                            }
                            e.data.push_str(value);
                        }
                        _ => {}
                    }
                }
                if any {
                    return Some(e);
                }
                continue;
            }
            if self.ended {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.socket.set_read_timeout(Some(left)).expect("timeout");
            let mut buf = [0u8; 16384];
            match self.socket.read(&mut buf) {
                Ok(0) => self.ended = true,
                Ok(n) => {
                    self.raw.extend_from_slice(&buf[..n]);
                    self.decode();
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return None
                }
                Err(_) => self.ended = true,
            }
        }
    }

    /// The next event, or panics after `timeout`.
    pub fn expect(&mut self, timeout: Duration) -> Event {
        self.next(timeout).expect("an event within the timeout")
    }
}

/// Polls `f` until it returns `Some` (or panics after `timeout`).
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(started.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temporary directory with a `db` path inside.
pub fn temp() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("db");
    (tmp, data)
}
