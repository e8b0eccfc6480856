//! Online backup figures: the throughput of `db.backup_to` (MB of keys and
//! values copied per second) on a database of `--mb` megabytes (default
//! 256; the 1 GB run is `--mb 1024`) while one writer commits, and
//! that writer's throughput during the backup against without one.
//!
//! `cargo run --release -p aurora-benches --example backup_throughput -- --mb 256`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, FieldDefinition, FieldType};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Inserts for `run`, returning commits per second.
async fn write_for(db: &Aurora, run: Duration, base: i64) -> f64 {
    let started = Instant::now();
    let mut n = 0i64;
    while started.elapsed() < run {
        db.insert_into("w", doc! { "n": base + n }).await.unwrap();
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mb = arg("--mb", 256);
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::open(dir.path().join("db")).await.unwrap();
    db.new_collection("bulk", [("k", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
    db.new_collection("w", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    let body = "b".repeat(1000);
    let docs = mb * 1000;
    let t = Instant::now();
    for chunk in 0..docs / 1000 {
        let batch = (0..1000).map(|i| doc! { "k": (chunk * 1000 + i) as i64, "body": body.clone() }).collect();
        db.insert_many("bulk", batch).await.unwrap();
    }
    println!("loaded {docs} documents (~{mb} MB of values) in {:.1?}", t.elapsed());

    let alone = write_for(&db, Duration::from_secs(3), 0).await;
    let stop = Arc::new(AtomicBool::new(false));
    let during = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, during) = (db.clone(), stop.clone(), during.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                db.insert_into("w", doc! { "n": 10_000_000 + n as i64 }).await.unwrap();
                n += 1;
            }
            during.store((n as f64 / started.elapsed().as_secs_f64()) as u64, Ordering::Relaxed);
        })
    };
    let report = db.backup_to(dir.path().join("backup")).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let with_backup = during.load(Ordering::Relaxed) as f64;
    let mbps = report.bytes as f64 / (1 << 20) as f64 / report.elapsed.as_secs_f64();
    println!(
        "backup: {} entries, {:.0} MB in {:.2?} = {mbps:.0} MB/s (consistent at revision {})",
        report.entries,
        report.bytes as f64 / (1 << 20) as f64,
        report.elapsed,
        report.revision
    );
    println!(
        "writer: {alone:.0} commits/s alone, {with_backup:.0} commits/s during the backup ({:.2}×)",
        with_backup / alone
    );
    let copy = Aurora::open(dir.path().join("backup")).await.unwrap();
    assert_eq!(copy.feed_head().unwrap(), report.revision);
    copy.close().await.unwrap();
    db.close().await.unwrap();
}
