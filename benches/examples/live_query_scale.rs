//! Live queries at scale (issue 15): a `messages` collection of `--docs`
//! documents in 1 000 rooms; `--watchers` live queries "the last 20
//! messages of room R" (one per room); `--writes` inserts at a fixed
//! `--rate` per second into random rooms. Reports the latency from the
//! start of a commit to the live-query update (p50/p99/max, measured in the
//! watcher's task), the process CPU time per write (user + system, all
//! threads: commit, publish, watchers), and how often a watcher re-ran its
//! query. Then 10 000 filtered listeners (`room == R`, 10 per room) on the
//! change hub: the cost of publishing one commit.
//!
//! `cargo run --release -p aurora-benches --example live_query_scale -- --docs 100000`
//!
//! Output lines (parsed by `cargo xtask bench`):
//! `LIVE <docs> <watchers> <writes> <p50_us> <p99_us> <max_us> <cpu_us_per_write> <reloads>` and
//! `PUBLISH <listeners> <mean_us> <p99_us>`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aurora::{
    doc, Aurora, AuroraConfig, ChangeEvent, ChangeType, DocId, EventFilter, FieldDefinition, FieldType, Order,
    QueryUpdate, Value,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

const ROOMS: usize = 1000;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Process CPU time (user + system) in microseconds, from `/proc/self/stat`.
fn cpu_micros() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the name); 100 ticks/s.
    (ticks(11) + ticks(12)) * 10_000
}

fn pct(v: &mut [u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

fn room(r: usize) -> String {
    format!("r{r:04}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let docs = arg("--docs", 100_000);
    let watchers = arg("--watchers", 1000).min(ROOMS);
    let writes = arg("--writes", 3000);
    let rate = arg("--rate", 1000).max(1);
    let listeners = arg("--listeners", 10_000);

    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(AuroraConfig::new(dir.path())).await.unwrap();
    db.new_collection(
        "messages",
        [
            ("room", FieldDefinition::new(FieldType::String).indexed()),
            ("seq", FieldDefinition::new(FieldType::Int).indexed()),
        ],
    )
    .await
    .unwrap();
    let loading = Instant::now();
    for start in (0..docs).step_by(10_000) {
        let batch =
            (start..(start + 10_000).min(docs)).map(|i| doc! { "room": room(i % ROOMS), "seq": i as i64 }).collect();
        db.insert_many("messages", batch).await.unwrap();
    }
    eprintln!("loaded {docs} messages in {:.1?}", loading.elapsed());
    // Apply the load to the cold store now, so the write phase measures
    // the writes and not the load's background work.
    db.database().collections().documents().store().checkpoint().unwrap();

    let base = Instant::now();
    let samples = Arc::new(parking_lot::Mutex::new(Vec::<u64>::with_capacity(writes)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let starting = Instant::now();
    for r in 0..watchers {
        let mut w = db
            .query("messages")
            .filter(|f| f.eq("room", room(r)))
            .order_by("seq", Order::Desc)
            .limit(20)
            .watch()
            .await
            .unwrap();
        assert_eq!(w.results().count(), 20.min(docs / ROOMS + usize::from(r < docs % ROOMS)));
        let (samples, mut stopped) = (Arc::clone(&samples), stopped.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    u = w.next() => match u {
                        Some(Ok(QueryUpdate::Added { document, .. })) => {
                            if let Some(sent) = document.get("sent").and_then(Value::as_i64) {
                                let now = base.elapsed().as_micros() as i64;
                                samples.lock().push((now - sent).max(0) as u64);
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            w.reloads()
        }));
    }
    eprintln!("started {watchers} live queries in {:.1?}", starting.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let cpu_before = cpu_micros();
    let writing = Instant::now();
    for k in 0..writes {
        interval.tick().await;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let r = (x % watchers.max(1) as u64) as usize;
        let sent = base.elapsed().as_micros() as i64;
        db.insert_into("messages", doc! { "room": room(r), "seq": (docs + k) as i64, "sent": sent }).await.unwrap();
    }
    // Let the last updates arrive.
    let deadline = Instant::now() + Duration::from_secs(5);
    while watchers > 0 && samples.lock().len() < writes && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu = cpu_micros().saturating_sub(cpu_before);
    let wall = writing.elapsed();
    stop.send(true).unwrap();
    let mut reloads = 0;
    for t in tasks {
        reloads += t.await.unwrap();
    }
    let mut lat = samples.lock().clone();
    let received = lat.len();
    let (p50, p99, max) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99), lat.last().copied().unwrap_or(0));
    eprintln!(
        "{writes} writes at {rate}/s in {wall:.1?}: {received} updates; commit → update p50 {p50} µs, p99 {p99} µs, max {max} µs; \
         CPU {:.1} µs/write; {reloads} re-runs",
        cpu as f64 / writes as f64
    );
    println!("LIVE {docs} {watchers} {writes} {p50} {p99} {max} {:.1} {reloads}", cpu as f64 / writes as f64);
    db.close().await.unwrap();

    if listeners == 0 {
        return;
    }
    // The change hub alone: 10 000 filtered listeners, one commit at a time.
    let hub_db = Aurora::temporary().await.unwrap();
    let hub = hub_db.pubsub();
    let _listeners: Vec<_> = (0..listeners)
        .map(|i| hub.listen("messages", EventFilter::field_equals("room", room(i % ROOMS))).expect("a shallow filter"))
        .collect();
    let mut times = Vec::with_capacity(10_000);
    for k in 0..10_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let event = ChangeEvent {
            collection: "messages".into(),
            change_type: ChangeType::Insert,
            id: DocId::new(),
            document: Some(Arc::new(doc! { "room": room((x % ROOMS as u64) as usize), "seq": k as i64 })),
            old_document: None,
            sequence: k + 1,
            transaction_id: k + 1,
            cause: Default::default(),
        };
        let t = Instant::now();
        hub.publish(vec![event]);
        times.push(t.elapsed().as_nanos() as u64);
    }
    let mean = times.iter().sum::<u64>() as f64 / times.len() as f64 / 1000.0;
    let p99 = pct(&mut times, 0.99) as f64 / 1000.0;
    eprintln!("publish one commit to {listeners} filtered listeners: mean {mean:.1} µs, p99 {p99:.1} µs");
    println!("PUBLISH {listeners} {mean:.1} {p99:.1}");
}
