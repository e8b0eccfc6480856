//! Change-event figures: latency from the start of a commit to delivery at
//! every listener (p50/p99) with 1, 10 and 100 listeners; live-query update
//! latency; and writer throughput with 0 vs 100 attached listeners that never
//! read (a slow consumer must not slow writers).
//!
//! `cargo run --release -p aurora-benches --example event_latency`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, FieldDefinition, FieldType};
use std::time::{Duration, Instant};

fn pct(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

async fn open() -> (tempfile::TempDir, Aurora) {
    let dir = tempfile::tempdir().unwrap();
    let db =
        Aurora::with_config(AuroraConfig { event_buffer: 1 << 16, ..AuroraConfig::new(dir.path()) }).await.unwrap();
    db.new_collection("e", [("n", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
    (dir, db)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    for listeners in [1usize, 10, 100] {
        let (_d, db) = open().await;
        let mut ls: Vec<_> = (0..listeners).map(|_| db.listen("e")).collect();
        let mut lat = Vec::new();
        for i in 0..2000 {
            let t = Instant::now();
            db.insert_into("e", doc! { "n": i }).await.unwrap();
            for l in &mut ls {
                l.recv().await.unwrap();
            }
            lat.push(t.elapsed());
        }
        println!("commit → all {listeners} listeners: p50 {:?} p99 {:?}", pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    }

    let (_d, db) = open().await;
    let mut w = db.query("e").filter(|f| f.gte("n", 0)).watch().await.unwrap();
    let mut lat = Vec::new();
    for i in 0..2000 {
        let t = Instant::now();
        db.insert_into("e", doc! { "n": i }).await.unwrap();
        w.recv().await.unwrap();
        lat.push(t.elapsed());
    }
    println!("commit → live-query update: p50 {:?} p99 {:?}", pct(&mut lat, 0.5), pct(&mut lat, 0.99));

    for idle in [0usize, 100] {
        let (_d, db) = open().await;
        let _idle: Vec<_> = (0..idle).map(|_| db.listen("e")).collect();
        let n = 20_000;
        let t = Instant::now();
        for i in 0..n {
            db.insert_into("e", doc! { "n": i }).await.unwrap();
        }
        println!("writer with {idle} idle listeners: {:.0} commits/s", f64::from(n) / t.elapsed().as_secs_f64());
    }
}
