//! Footprint and event latency, for the comparison report:
//!
//! - `footprint --docs N` runs each engine in a child process of its own
//!   (so resident memory is that engine's alone), inserting N small
//!   documents in transactions of 1 000, and prints one line per engine:
//!   `FOOTPRINT <engine> <docs> <rss_bytes> <peak_rss_bytes> <disk_bytes> <insert_secs>`
//!   (RSS read from `/proc/self/status` after the inserts, disk = allocated
//!   bytes of the engine's folder after a clean close), and [`SAMPLES`]
//!   lines along the load for the report's plot:
//!   `SAMPLE <engine> <docs so far> <rss_bytes> <disk_bytes>` (disk while
//!   open: what the folder holds at that moment);
//!   After the close, one line per file of the folder larger than 64 KiB:
//!   `FILE <engine> <path in the folder> <allocated_bytes>` (what stays
//!   after a clean close);
//! - then, per engine in a child process, the time to reopen a closed
//!   database of [`REOPEN_DOCS`] documents (the `age` index for the engines
//!   that have indexes), as the median of three opens:
//!   `REOPEN <engine> <docs> <open_secs>`;
//! - then Aurora's commit → change-event latency with 1 and 100 listeners:
//!   `EVENTS <listeners> <p50_us> <p99_us>`.
//!
//! `--engine aurora` with `AURORA_BENCH_FEED_RETENTION=0` in the
//! environment measures Aurora with its change feed off (what the feed
//! costs on disk); with `AURORA_BENCH_COLD_CACHE_MB=N`, with a cold (sled)
//! cache of N MiB instead of the default 64 (resident memory against disk).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../engines/mod.rs"]
mod engines;

use aurora_benches::{allocated_bytes, user};
use engines::aurora::AuroraEngine;
use engines::redb::RedbEngine;
use engines::sled::SledEngine;
use engines::sqlite::SqliteEngine;
use engines::{Engine, Indexes, Mode};
use std::path::Path;
use std::time::{Duration, Instant};

const ENGINES: [&str; 4] = ["aurora", "sled", "redb", "sqlite"];

/// Documents in the database that the reopen measurement opens.
const REOPEN_DOCS: u64 = 20_000;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Prints a `FILE` line for each file under `dir` larger than 64 KiB.
fn list_files(engine: &str, root: &Path, dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            list_files(engine, root, &entry.path());
        } else if meta.blocks() * 512 > 64 << 10 {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap_or(&path);
            println!("FILE {engine} {} {}", rel.display(), meta.blocks() * 512);
        }
    }
}

/// Samples of resident memory and disk taken along a load.
const SAMPLES: u64 = 40;

fn fill<E: Engine>(engine: &str, dir: &Path, docs: u64) -> (u64, u64, f64) {
    let start = Instant::now();
    let mut e = E::open(dir, Mode::Normal, Indexes::None);
    let every = (docs / SAMPLES).max(1000);
    let mut i = 0;
    while i < docs {
        let batch: Vec<_> = (i..(i + 1000).min(docs)).map(user).collect();
        e.insert_many(batch);
        i += 1000;
        if i / every != (i - 1000) / every || i >= docs {
            let rss = status_kib("VmRSS:") * 1024;
            println!("SAMPLE {engine} {} {rss} {}", i.min(docs), allocated_bytes(dir));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let (rss, peak) = (status_kib("VmRSS:") * 1024, status_kib("VmHWM:") * 1024);
    e.close();
    (rss, peak, secs)
}

/// Fills a database of `docs` documents with the `age` index, closes it,
/// and returns the median time of three opens (each closed again).
fn reopen_secs<E: Engine>(dir: &Path, docs: u64) -> f64 {
    let mut e = E::open(dir, Mode::Normal, Indexes::Age);
    let mut i = 0;
    while i < docs {
        let batch: Vec<_> = (i..(i + 1000).min(docs)).map(user).collect();
        e.insert_many(batch);
        i += 1000;
    }
    e.close();
    let mut times: Vec<f64> = (0..3)
        .map(|_| {
            let start = Instant::now();
            let e = E::open(dir, Mode::Normal, Indexes::Age);
            let secs = start.elapsed().as_secs_f64();
            e.close();
            secs
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[1]
}

fn reopen_child(engine: &str, docs: u64) {
    let dir = tempfile::tempdir().unwrap();
    let secs = match engine {
        "aurora" => reopen_secs::<AuroraEngine>(dir.path(), docs),
        "sled" => reopen_secs::<SledEngine>(dir.path(), docs),
        "redb" => reopen_secs::<RedbEngine>(dir.path(), docs),
        _ => reopen_secs::<SqliteEngine>(dir.path(), docs),
    };
    println!("REOPEN {engine} {docs} {secs:.6}");
}

fn child(engine: &str, docs: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (rss, peak, secs) = match engine {
        "aurora" => fill::<AuroraEngine>(engine, dir.path(), docs),
        "sled" => fill::<SledEngine>(engine, dir.path(), docs),
        "redb" => fill::<RedbEngine>(engine, dir.path(), docs),
        _ => fill::<SqliteEngine>(engine, dir.path(), docs),
    };
    // Let background work (sled's flusher, Aurora's checkpoint) settle.
    std::thread::sleep(Duration::from_millis(200));
    let disk = allocated_bytes(dir.path());
    println!("FOOTPRINT {engine} {docs} {rss} {peak} {disk} {secs:.2}");
    list_files(engine, dir.path(), dir.path());
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn events() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        for listeners in [1usize, 100] {
            let db = aurora::Aurora::temporary().await.unwrap();
            db.new_collection("e", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
            let mut ls: Vec<_> = (0..listeners).map(|_| db.listen("e")).collect();
            let mut samples = Vec::new();
            for i in 0..2000i64 {
                let start = Instant::now();
                db.insert_into("e", aurora::doc! { "n": i }).await.unwrap();
                for l in &mut ls {
                    l.recv().await.unwrap();
                }
                samples.push(start.elapsed());
            }
            samples.sort();
            println!("EVENTS {listeners} {:.1} {:.1}", percentile(&samples, 0.5), percentile(&samples, 0.99));
            db.close().await.unwrap();
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let docs: u64 = arg("--docs").and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    if let Some(engine) = arg("--reopen-engine") {
        reopen_child(&engine, REOPEN_DOCS);
        return;
    }
    if let Some(engine) = arg("--engine") {
        child(&engine, docs);
        return;
    }
    for engine in ENGINES {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--engine", engine, "--docs", &docs.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    for engine in ENGINES {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--reopen-engine", engine])
            .output()
            .unwrap();
        assert!(out.status.success(), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    events();
}
