//! What sled itself costs on disk for Aurora's bytes (issue 17's
//! accounting): a bare sled 0.34 stores the keys and values Aurora's cold
//! store holds after inserting N small user documents with the change feed
//! off (`0x01 "d" "users" 0x00 id-key` → `[1][revision: u64][live][document]`,
//! the layout before issue 17's compact values), inserted one by one in key
//! order with a flush every 20 000 writes (as Aurora's applier and its
//! checkpoint do), and prints the logical bytes (keys + values) and the
//! allocated bytes of the folder after a clean close:
//!
//! `LAYOUT <variant> <docs> <logical_bytes> <disk_bytes> <secs>`
//!
//! Variants (`--variant V`; all of the first four by default):
//! - `aurora`: Aurora's settings (no sled flusher, so no background segment
//!   cleaning);
//! - `flusher`: sled's flusher every 1 000 ms (it rolls the log and cleans
//!   segments), `default`: sled's defaults (flusher every 500 ms);
//! - `idkey`: the document id alone as the key (what the raw-sled peer of
//!   the benchmarks stores), `nohdr`: the document alone as the value,
//!   `bench`: both (the raw-sled peer's bytes);
//! - `segN`: Aurora's settings with sled segments of N KiB.
//!
//! `cargo run --release -p aurora-benches --example sled_layout -- --docs 1000000`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aurora_benches::{allocated_bytes, user};
use aurora_storage::{document_key, format};
use std::time::Instant;

fn run(variant: &str, docs: u64) {
    let dir = tempfile::tempdir().unwrap();
    let config = sled::Config::new().path(dir.path().join("cold")).cache_capacity(48 << 20);
    let config = match variant {
        "flusher" => config.flush_every_ms(Some(1000)),
        "default" => config,
        v => match v.strip_prefix("seg").and_then(|k| k.parse::<usize>().ok()) {
            Some(kib) => config.flush_every_ms(None).segment_size(kib << 10),
            None => config.flush_every_ms(None),
        },
    };
    let db = config.open().unwrap();
    let start = Instant::now();
    let mut logical = 0u64;
    for i in 0..docs {
        let doc = user(i);
        let mut key = vec![0x01];
        key.extend_from_slice(&document_key("users", &doc.id));
        if variant == "idkey" || variant == "bench" {
            key = doc.id.to_string().into_bytes();
        }
        let mut value = vec![format::FORMAT_VERSION];
        value.extend_from_slice(&(i + 2).to_be_bytes());
        value.push(1);
        if variant == "nohdr" || variant == "bench" {
            value.clear();
        }
        value.extend_from_slice(&format::encode(&doc).unwrap());
        logical += (key.len() + value.len()) as u64;
        db.insert(key, value).unwrap();
        if i % 20_000 == 19_999 {
            db.insert(b"\x00checkpoint", &(i + 2).to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
    drop(db);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let secs = start.elapsed().as_secs_f64();
    println!("LAYOUT {variant} {docs} {logical} {} {secs:.2}", allocated_bytes(dir.path()));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let docs: u64 = arg("--docs").and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    match arg("--variant") {
        Some(v) => run(&v, docs),
        None => ["aurora", "flusher", "idkey", "bench"].iter().for_each(|v| run(v, docs)),
    }
}
