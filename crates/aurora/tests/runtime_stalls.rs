//! No async call does long work on the calling tokio worker: on a
//! current-thread runtime (the strictest case: one worker for everything)
//! a 1 ms ticker keeps ticking while a 20 000-document `insert_many`, a
//! full-scan `count`, an unindexed query, an aggregate, a live query's
//! initial load, a bulk update and a bulk delete run.
//!
//! The bound is 20 ms above the noise floor: the ticker's worst gap while
//! a blocking thread only burns CPU for 300 ms (what each call below does on
//! the blocking pool). On a quiet machine the floor is ~1 ms; on a loaded
//! one the scheduler alone delays the ticker by 10–20 ms, which is not a
//! stall of Aurora's making. Work done inline on the worker shows up far
//! above it (a live query's inline initial load stalled it 158 ms).
//! Size by `AURORA_STALL_DOCS` (default 20 000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aggregate, Aurora, Document};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest the ticker may go without running, above the noise floor.
const BOUND: Duration = Duration::from_millis(20);

fn docs() -> usize {
    std::env::var("AURORA_STALL_DOCS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000)
}

#[test]
fn a_current_thread_runtime_keeps_ticking_through_heavy_calls() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let db = Aurora::temporary().await.unwrap();
        db.new_collection("t", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
        let n = docs();
        let batch: Vec<Document> =
            (0..n).map(|i| doc! { "n": i as i64, "group": (i % 7) as i64, "text": "x".repeat(50) }).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let longest = Arc::new(AtomicU64::new(0));
        let ticker = {
            let (stop, longest) = (stop.clone(), longest.clone());
            tokio::spawn(async move {
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    let gap = last.elapsed();
                    longest.fetch_max(gap.as_micros() as u64, Ordering::Relaxed);
                    last = Instant::now();
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        tokio::task::spawn_blocking(|| {
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed() < Duration::from_millis(300) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await; // the ticker records the gap first
        let floor = Duration::from_micros(longest.swap(0, Ordering::Relaxed));
        let mut worst = Vec::new();
        let mut step = |what: &'static str, longest: &AtomicU64| {
            worst.push((what, Duration::from_micros(longest.swap(0, Ordering::Relaxed))));
        };
        db.insert_many("t", batch).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await; // the ticker records the gap first
        step("insert_many", &longest);
        assert_eq!(db.query("t").count().await.unwrap(), n as u64);
        tokio::time::sleep(Duration::from_millis(3)).await; // the ticker records the gap first
        step("count (full scan)", &longest);
        let found = db.query("t").filter(|f| f.gte("n", (n / 2) as i64)).collect().await.unwrap();
        assert_eq!(found.len(), n - n / 2);
        // Freeing 10 000 documents is the caller's work, not the call's.
        tokio::task::spawn_blocking(move || drop(found)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await; // the ticker records the gap first
        step("collect (unindexed filter)", &longest);
        assert_eq!(db.query("t").aggregate(Some("group"), &[Aggregate::Count]).await.unwrap().len(), 7);
        tokio::time::sleep(Duration::from_millis(3)).await; // the ticker records the gap first
        step("aggregate", &longest);
        let live = db.query("t").filter(|f| f.gte("n", (n / 2) as i64)).watch().await.unwrap();
        assert_eq!(live.results().len(), n - n / 2);
        tokio::task::spawn_blocking(move || drop(live)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await; // the ticker records the gap first
        step("watch (initial load of a live query)", &longest);
        assert_eq!(
            db.query("t").filter(|f| f.lt("n", 5_000)).update(doc! { "seen": true }).await.unwrap(),
            5_000.min(n as u64)
        );
        tokio::time::sleep(Duration::from_millis(3)).await; // the ticker records the gap first
        step("query update", &longest);
        assert!(db.query("t").filter(|f| f.lt("n", 5_000)).delete().await.unwrap() > 0);
        tokio::time::sleep(Duration::from_millis(3)).await; // the ticker records the gap first
        step("query delete", &longest);
        stop.store(true, Ordering::Relaxed);
        ticker.await.unwrap();
        for (what, gap) in &worst {
            assert!(
                *gap <= BOUND + floor,
                "{what} stalled the runtime for {gap:?} (bound {BOUND:?} above the noise floor {floor:?}); all: {worst:?}"
            );
        }
        db.close().await.unwrap();
    });
}
