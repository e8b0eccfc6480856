//! What sled itself costs on disk for Aurora's bytes (issue 17's
//! accounting): a bare sled 0.34 stores the keys and values Aurora's cold
//! store holds after inserting N small user documents, inserted one by one
//! in key order with a flush every 20 000 writes (as Aurora's applier and
//! its checkpoint do), and prints the logical bytes (keys + values) and the
//! allocated bytes of the folder after a clean close:
//!
//! `LAYOUT <variant> <docs> <logical_bytes> <disk_bytes> <secs> <rss_bytes>`
//!
//! (`rss_bytes`: the process's resident memory before the close; run one
//! variant per process to compare it.)
//!
//! Variants (`--variant V`; all of the first four by default). The first
//! ones store the layout before issue 17's compact values
//! (`0x01 "d" "users" 0x00 id-key` → `[1][revision: u64][live][document]`):
//! - `aurora`: Aurora's settings (no sled flusher, so no background segment
//!   cleaning);
//! - `flusher`: sled's flusher every 1 000 ms (it rolls the log and cleans
//!   segments), `default`: sled's defaults (flusher every 500 ms);
//! - `idkey`: the document id alone as the key (what the raw-sled peer of
//!   the benchmarks stores), `nohdr`: the document alone as the value,
//!   `bench`: both (the raw-sled peer's bytes);
//! - `segN`: Aurora's settings with sled segments of N KiB.
//!
//! The candidate layouts of the key space (compact values
//! `[2][revision: LEB128][document]`; with `--feed`, each transaction of
//! 1 000 documents also appends its change-feed entry, ~23 bytes a
//! document in 512-byte parts keyed `"f" ++ sequence ++ part`, after its
//! documents, as Aurora's applier does):
//! - `current`: every key in sled's default tree under `0x01` (the layout
//!   of the third session);
//! - `trees`: a sled tree per key-space prefix — the documents of `users`
//!   in the tree `"d" "users" 0x00` keyed by the id key alone, the feed in
//!   the tree `"f"` keyed by sequence and part, the checkpoint in the
//!   default tree;
//! - `colnum`: the default tree only, with a one-byte collection number in
//!   place of the name (`0x01 "d" 0x01 id-key`).
//!
//! With `--index`, each document also gets an entry in an index on `age`
//! (`(age: u64 BE, id key)` → an empty compact value; in the tree
//! `"xusers\0age\0"` for `trees`), appended at the end of its value's run:
//! ~220 keys per run in each memtable.
//!
//! The writes of each 20 000 documents are held as one memtable and applied
//! at its checkpoint sorted by tree and key, each tree's run in key order,
//! or with `--order fill` in the applier's order
//! (`aurora_storage::cold::fill_order`: sled leaves end full). The line
//! then ends with `insert_secs=` (wall clock of the inserts) and
//! `cpu_secs=` (the process's CPU time); callgrind's
//! `--toggle-collect='*apply_memtable*'` counts the inserts alone.
//!
//! `--tree-cost N` instead measures what a sled tree costs: N trees of 10
//! documents each, then the folder and the resident memory after a reopen:
//! `TREES <n> <disk_bytes> <rss_after_reopen_bytes> <reopen_secs>`.
//!
//! `cargo run --release -p aurora-benches --example sled_layout -- --docs 1000000`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aurora_benches::{allocated_bytes, user};
use aurora_storage::{document_key, format};
use std::time::Instant;

/// Changes of one transaction in the feed: ~23 bytes a document.
const FEED_BYTES_PER_DOC: usize = 23;
const FEED_PART: usize = 512;
const TXN_DOCS: u64 = 1_000;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn compact_value(revision: u64, body: &[u8]) -> Vec<u8> {
    let mut out = vec![2u8];
    let mut n = revision;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(body);
    out
}

/// The order of one memtable's inserts into each tree.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Key order.
    Ascending,
    /// `aurora_storage::cold::fill_order` (the applier's order).
    Fill,
}

/// The process's user + system CPU time so far, in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime and stime
    // are the 14th and 15th of the line, in clock ticks (100 a second).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Inserts one memtable's writes, sorted by tree and key, each tree's run
/// in `order`. The insert loop of the measurement
/// (`--toggle-collect='*apply_memtable*'`).
#[inline(never)]
fn apply_memtable(trees: &[sled::Tree; 3], pending: &mut Vec<(usize, Vec<u8>, Vec<u8>)>, order: Order) {
    pending.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut rest = &pending[..];
    while let Some((tree, _, _)) = rest.first() {
        let run_len = rest.iter().take_while(|(t, _, _)| t == tree).count();
        let (run, tail) = rest.split_at(run_len);
        let mut put = |i: usize| {
            trees[*tree].insert(&run[i].1[..], &run[i].2[..]).unwrap();
        };
        match order {
            Order::Ascending => (0..run.len()).for_each(&mut put),
            Order::Fill => aurora_storage::cold::fill_order::fill_order(run.len()).for_each(&mut put),
        }
        rest = tail;
    }
    pending.clear();
}

fn run(variant: &str, docs: u64, feed: bool, index: bool, order: Order) {
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
    let candidate = matches!(variant, "current" | "trees" | "colnum");
    let (docs_tree, feed_tree, index_tree) = if variant == "trees" {
        (db.open_tree(b"dusers\0").unwrap(), db.open_tree(b"f").unwrap(), db.open_tree(b"xusers\0age\0").unwrap())
    } else {
        ((*db).clone(), (*db).clone(), (*db).clone())
    };
    let trees = [docs_tree.clone(), feed_tree.clone(), index_tree.clone()];
    let start = Instant::now();
    let mut insert_secs = 0.0;
    let mut logical = 0u64;
    let mut revision = 1u64;
    // The writes of one memtable: (tree, key, value), applied at each
    // checkpoint in `order` per tree, as Aurora's applier does.
    let mut pending: Vec<(usize, Vec<u8>, Vec<u8>)> = Vec::new();
    for i in 0..docs {
        let doc = user(i);
        revision += 1;
        let full = document_key("users", &doc.id);
        let key = match variant {
            "idkey" | "bench" => doc.id.to_string().into_bytes(),
            "trees" => full[b"dusers\0".len()..].to_vec(),
            "colnum" => [&[0x01, b'd', 0x01][..], &full[b"dusers\0".len()..]].concat(),
            _ => [&[0x01][..], &full].concat(),
        };
        if index {
            // An index entry on `age`: (value, id), appended at the end of
            // its value's run.
            let mut entry = if variant == "trees" { vec![] } else { b"\x01xusers\0age\0".to_vec() };
            entry.extend_from_slice(&(i % 90).to_be_bytes());
            entry.extend_from_slice(&key);
            let value = compact_value(revision, &[]);
            logical += (entry.len() + value.len()) as u64;
            pending.push((2, entry, value));
        }
        let body = format::encode(&doc).unwrap();
        let value = if candidate {
            compact_value(revision, &body)
        } else if variant == "nohdr" || variant == "bench" {
            body
        } else {
            let mut value = vec![format::FORMAT_VERSION];
            value.extend_from_slice(&revision.to_be_bytes());
            value.push(1);
            value.extend_from_slice(&body);
            value
        };
        logical += (key.len() + value.len()) as u64;
        pending.push((0, key, value));
        if feed && i % TXN_DOCS == TXN_DOCS - 1 {
            let entry = vec![0xA5u8; FEED_BYTES_PER_DOC * TXN_DOCS as usize];
            for (part, chunk) in entry.chunks(FEED_PART).enumerate() {
                let mut key = if variant == "trees" { vec![] } else { vec![0x01, b'f'] };
                key.extend_from_slice(&revision.to_be_bytes());
                key.extend_from_slice(&(part as u32).to_be_bytes());
                let value = compact_value(revision, chunk);
                logical += (key.len() + value.len()) as u64;
                pending.push((1, key, value));
            }
        }
        if i % 20_000 == 19_999 || i + 1 == docs {
            let t = Instant::now();
            apply_memtable(&trees, &mut pending, order);
            insert_secs += t.elapsed().as_secs_f64();
            db.insert(b"\x00checkpoint", &revision.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
    let rss = rss_bytes();
    drop((docs_tree, feed_tree, index_tree, trees));
    drop(db);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let secs = start.elapsed().as_secs_f64();
    let mut name = variant.to_string();
    if feed {
        name.push_str("+feed");
    }
    if index {
        name.push_str("+index");
    }
    if order == Order::Fill {
        name.push_str("+fill");
    }
    println!(
        "LAYOUT {name} {docs} {logical} {} {secs:.2} {rss} insert_secs={insert_secs:.2} cpu_secs={:.2}",
        allocated_bytes(dir.path()),
        cpu_secs()
    );
}

fn tree_cost(trees: u64) {
    let dir = tempfile::tempdir().unwrap();
    let config = sled::Config::new().path(dir.path().join("cold")).cache_capacity(48 << 20).flush_every_ms(None);
    {
        let db = config.open().unwrap();
        for t in 0..trees {
            let tree = db.open_tree(format!("dcollection-{t}\0")).unwrap();
            for i in 0..10 {
                let doc = user(i);
                tree.insert(doc.id.to_string(), compact_value(i + 2, &format::encode(&doc).unwrap())).unwrap();
            }
        }
        db.flush().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = rss_bytes();
    let start = Instant::now();
    let db = config.open().unwrap();
    let reopen = start.elapsed().as_secs_f64();
    assert_eq!(db.tree_names().len() as u64, trees + 1);
    let rss = rss_bytes().saturating_sub(before);
    drop(db);
    std::thread::sleep(std::time::Duration::from_millis(200));
    println!("TREES {trees} {} {rss} {reopen:.4}", allocated_bytes(dir.path()));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let docs: u64 = arg("--docs").and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let feed = args.iter().any(|a| a == "--feed");
    let index = args.iter().any(|a| a == "--index");
    let order = match arg("--order").as_deref() {
        Some("fill") => Order::Fill,
        _ => Order::Ascending,
    };
    if let Some(n) = arg("--tree-cost").and_then(|v| v.parse().ok()) {
        return tree_cost(n);
    }
    match arg("--variant") {
        Some(v) => run(&v, docs, feed, index, order),
        None => ["aurora", "flusher", "idkey", "bench"].iter().for_each(|v| run(v, docs, feed, index, order)),
    }
}
