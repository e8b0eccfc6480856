//! The server's load test, bounded and on loopback only:
//!
//! ```sh
//! cargo run --release -p aurora-cli --example load [-- --seconds 8 --subscribers 1000 --write-docs]
//! ```
//!
//! It starts a server (this program re-executed with `--serve DIR`: the
//! same `aurora_server::serve` as `aurora serve`, in a process of its own)
//! on a free 127.0.0.1 port in a temporary directory, then:
//!
//! 1. **inserts**: 100 clients, each on one keep-alive connection, insert
//!    small documents for `--seconds`;
//! 2. **queries**: 100 clients run an indexed query (10 results) for
//!    `--seconds`;
//! 3. **fan-out**: 1 000 SSE subscribers follow `/v1/changes?collection=ticks`;
//!    a writer commits 200 ticks (50 a second) and each tick's time from
//!    the request that commits it to its event at each subscriber is
//!    recorded — once on an idle server, once while the 100 inserting
//!    clients run.
//!
//! It prints requests/s, latencies, and commit → delivered-to-every-
//! subscriber p50/p99, and with `--write-docs` replaces the server section
//! of `docs/benchmarks.md`. Every loop is bounded in count and time, and a
//! watchdog ends the run after 5 minutes whatever happens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CLIENTS: usize = 100;
const TICKS: usize = 200;
const TICK_EVERY: Duration = Duration::from_millis(20);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        serve(args.get(1).expect("--serve DIR"));
        return;
    }
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let seconds: u64 = value("--seconds").and_then(|s| s.parse().ok()).unwrap_or(8);
    let subscribers: usize = value("--subscribers").and_then(|s| s.parse().ok()).unwrap_or(1000);
    let write_docs = args.iter().any(|a| a == "--write-docs");
    // A watchdog: the run stops by itself whatever happens.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(300));
        eprintln!("load: still running after 5 minutes; stopping");
        std::process::exit(2);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let report = runtime.block_on(drive(Duration::from_secs(seconds), subscribers));
    println!("{report}");
    if write_docs {
        write_section(&report);
    }
}

// ---- the server process ---------------------------------------------------

/// `--serve DIR`: a server on 127.0.0.1:0 until standard input closes.
fn serve(dir: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let db = aurora::Aurora::open(dir).await.expect("open");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("{}", listener.local_addr().expect("addr"));
        let stop = async {
            // The driver closes our standard input to stop us.
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = Vec::new();
                let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            })
            .await;
        };
        let config = aurora_server::ServerConfig {
            allow_anonymous: true,
            limits: aurora_server::Limits { max_streams: 8192, stream_buffer: 1024, ..Default::default() },
            ..Default::default()
        };
        aurora_server::serve(listener, db.clone(), config, stop).await.expect("serve");
        db.close().await.expect("close");
    });
}

// ---- a minimal HTTP/1.1 client --------------------------------------------

struct Conn {
    io: BufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Conn { io: BufReader::new(s) })
    }

    async fn head(&mut self) -> std::io::Result<(u16, Option<usize>)> {
        let mut line = String::new();
        self.io.read_line(&mut line).await?;
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = None;
        loop {
            line.clear();
            if self.io.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                return Ok((status, length));
            }
            if let Some((n, v)) = l.split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().ok();
                }
            }
        }
    }

    /// One request on the kept-alive connection; returns the status and body.
    async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.io.get_mut().write_all(&req).await?;
        let (status, length) = self.head().await?;
        let mut out = vec![0; length.unwrap_or(0)];
        self.io.read_exact(&mut out).await?;
        Ok((status, out))
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

// ---- the phases -----------------------------------------------------------

/// `CLIENTS` clients running `body` in a loop until `stop`; returns
/// (requests, latencies in µs).
async fn hammer<F, Fut>(addr: &str, stop: Arc<AtomicBool>, body: F) -> (u64, Vec<f64>)
where
    F: Fn(Conn, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = (Conn, bool)> + Send,
{
    let mut tasks = Vec::new();
    for client in 0..CLIENTS as u64 {
        let (addr, stop, body) = (addr.to_string(), Arc::clone(&stop), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await.expect("connect");
            let mut lat = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && i < 1_000_000 {
                let t = Instant::now();
                let (c, ok) = body(conn, client * 1_000_000 + i).await;
                conn = c;
                assert!(ok, "a request failed");
                lat.push(t.elapsed().as_secs_f64() * 1e6);
                i += 1;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    (all.len() as u64, sorted(all))
}

async fn insert(mut c: Conn, n: u64) -> (Conn, bool) {
    let body = format!("{{\"k\": {}, \"name\": \"user {n}\", \"score\": {}}}", n % 1000, n % 97);
    let ok = matches!(c.request("POST", "/v1/collections/items/documents", body.as_bytes()).await, Ok((201, _)));
    (c, ok)
}

async fn query(mut c: Conn, n: u64) -> (Conn, bool) {
    let body = format!("{{\"filter\": {{\"k\": {}}}, \"limit\": 10}}", n % 1000);
    let ok = matches!(c.request("POST", "/v1/collections/items/query", body.as_bytes()).await, Ok((200, _)));
    (c, ok)
}

/// One subscriber: reads the stream and records when each commit arrived.
async fn subscribe(addr: String, ready: Arc<AtomicU64>, start: Instant) -> HashMap<u64, f64> {
    let mut c = Conn::open(&addr).await.expect("connect");
    let req = "GET /v1/changes?collection=ticks HTTP/1.1\r\nHost: load\r\nAccept: text/event-stream\r\n\r\n";
    c.io.get_mut().write_all(req.as_bytes()).await.expect("subscribe");
    let (status, _) = c.head().await.expect("head");
    assert_eq!(status, 200);
    let mut seen = HashMap::new();
    let mut line = String::new();
    loop {
        line.clear();
        match tokio::time::timeout(Duration::from_secs(20), c.io.read_line(&mut line)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return seen,
            Ok(Ok(_)) => {}
        }
        if line.starts_with("event: ready") {
            ready.fetch_add(1, Ordering::Relaxed);
        } else if let Some(id) = line.strip_prefix("id: ") {
            if let Ok(seq) = id.trim().parse::<u64>() {
                seen.insert(seq, start.elapsed().as_secs_f64() * 1e6);
                if seen.len() >= TICKS {
                    return seen;
                }
            }
        }
    }
}

/// Fan-out: `subscribers` streams, `TICKS` commits; per tick, the time
/// until every subscriber had it, and per delivery the time to it (µs).
async fn fan_out(addr: &str, subscribers: usize, with_writers: bool) -> (Vec<f64>, Vec<f64>, u64) {
    let start = Instant::now();
    let ready = Arc::new(AtomicU64::new(0));
    let mut subs = Vec::new();
    for _ in 0..subscribers {
        subs.push(tokio::spawn(subscribe(addr.to_string(), Arc::clone(&ready), start)));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready.load(Ordering::Relaxed) < subscribers as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let load = with_writers.then(|| {
        let (addr, stop) = (addr.to_string(), Arc::clone(&stop));
        tokio::spawn(async move { hammer(&addr, stop, insert).await })
    });
    let mut writer = Conn::open(addr).await.expect("connect");
    let mut sent: HashMap<u64, f64> = HashMap::new();
    let mut tick = tokio::time::interval(TICK_EVERY);
    for i in 0..TICKS {
        tick.tick().await;
        let t0 = start.elapsed().as_secs_f64() * 1e6;
        let body = format!(
            "{{\"writes\": [{{\"op\": \"insert\", \"collection\": \"ticks\", \"document\": {{\"tick\": {i}}}}}]}}"
        );
        let (status, out) = writer.request("POST", "/v1/transactions", body.as_bytes()).await.expect("tick");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        sent.insert(v["sequence"].as_u64().expect("sequence"), t0);
    }
    let mut per_delivery = Vec::new();
    let mut all_of_tick: HashMap<u64, f64> = HashMap::new();
    let mut missing = 0u64;
    for s in subs {
        let seen = s.await.expect("subscriber");
        for (seq, t0) in &sent {
            match seen.get(seq) {
                Some(t) => {
                    per_delivery.push(t - t0);
                    let e = all_of_tick.entry(*seq).or_insert(0.0);
                    *e = e.max(t - t0);
                }
                None => missing += 1,
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(l) = load {
        let _ = l.await;
    }
    (sorted(all_of_tick.into_values().collect()), sorted(per_delivery), missing)
}

async fn drive(seconds: Duration, subscribers: usize) -> String {
    let tmp = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("exe");
    let mut child = std::process::Command::new(exe)
        .arg("--serve")
        .arg(tmp.path().join("db"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("server");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line)
        .expect("address");
    let addr = line.trim().to_string();
    eprintln!("load: server on {addr}");
    let mut c = Conn::open(&addr).await.expect("connect");
    let schema = br#"{"name": "items", "schema": {"fields": {"k": {"type": "int", "indexed": true}}}}"#;
    assert_eq!(c.request("POST", "/v1/collections", schema).await.expect("create").0, 201);
    assert_eq!(c.request("POST", "/v1/collections", br#"{"name": "ticks"}"#).await.expect("create").0, 201);

    let mut out = String::new();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load_before: String = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");

    eprintln!("load: inserts, {CLIENTS} clients, {seconds:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let timer = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            tokio::time::sleep(seconds).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let t = Instant::now();
    let (n, lat) = hammer(&addr, stop, insert).await;
    let _ = timer.await;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    out.push_str(&format!(
        "| insert (one document per request) | {rate:.0} /s | {:.2} ms | {:.2} ms |\n",
        percentile(&lat, 0.5) / 1e3,
        percentile(&lat, 0.99) / 1e3
    ));
    eprintln!("load: {n} inserts, {rate:.0}/s");

    eprintln!("load: queries, {CLIENTS} clients, {seconds:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let timer = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            tokio::time::sleep(seconds).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let t = Instant::now();
    let (nq, lat) = hammer(&addr, stop, query).await;
    let _ = timer.await;
    let qrate = nq as f64 / t.elapsed().as_secs_f64();
    out.push_str(&format!(
        "| query (indexed `k == v`, 10 results, over {n} documents) | {qrate:.0} /s | {:.2} ms | {:.2} ms |\n",
        percentile(&lat, 0.5) / 1e3,
        percentile(&lat, 0.99) / 1e3
    ));
    eprintln!("load: {nq} queries, {qrate:.0}/s");

    let mut fan = String::new();
    for with_writers in [false, true] {
        eprintln!("load: fan-out to {subscribers} subscribers (inserting clients: {with_writers})");
        let (every, each, missing) = fan_out(&addr, subscribers, with_writers).await;
        fan.push_str(&format!(
            "| {subscribers} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {missing} |\n",
            if with_writers { "100 clients inserting" } else { "idle" },
            percentile(&every, 0.5) / 1e3,
            percentile(&every, 0.99) / 1e3,
            percentile(&each, 0.5) / 1e3,
            percentile(&each, 0.99) / 1e3,
        ));
    }
    drop(child.stdin.take());
    let _ = child.wait();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load_after: String = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    format!(
        "load average before / after (1/5/15 min): {load_before} / {load_after}\n\n\
         | workload | requests/s | p50 | p99 |\n|---|---:|---:|---:|\n{out}\n\
         | subscribers | meanwhile | every subscriber p50 | every subscriber p99 | each delivery p50 | each delivery p99 | missed |\n\
         |---:|---|---:|---:|---:|---:|---:|\n{fan}"
    )
}

// ---- the report -----------------------------------------------------------

const START: &str = "<!-- server-load:start -->";
const END: &str = "<!-- server-load:end -->";

fn write_section(report: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let machine = format!(
        "{} cores, rustc release build, commit `{}`",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    );
    let section = format!(
        "{START}\n## The network server (HTTP + SSE)\n\n\
         `cargo run --release -p aurora-cli --example load -- --write-docs` (loopback only, bounded): a server \
         process (`aurora_server::serve`, `Balanced` durability) and a client process on the same {machine}; \
         clients and server share the machine's cores. Inserts: 100 clients, one keep-alive connection each, \
         small documents into a collection with one index. Queries: 100 clients. Fan-out: 1 000 SSE \
         subscribers to one collection's change stream, 200 commits at 50/s; latency from the request that \
         commits a tick to its event at a subscriber (\"every subscriber\": until the last of them has it).\n\n\
         {report}\n{END}\n"
    );
    let new = match (old.find(START), old.find(END)) {
        (Some(s), Some(e)) => format!("{}{section}{}", &old[..s], &old[e + END.len()..].trim_start_matches('\n')),
        _ => format!("{}\n{section}", old.trim_end()),
    };
    std::fs::write(&path, new).expect("write docs/benchmarks.md");
    eprintln!("load: wrote {}", path.display());
}
