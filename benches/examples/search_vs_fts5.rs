//! Full-text search next to SQLite FTS5 on the same deterministic corpus of
//! short chat messages: indexing throughput (through the database, with
//! the index following the change feed and caught up at the end — the
//! consistency guarantees included) and query latency p50/p99 for
//! single-term, two-term AND, phrase and fuzzy (edit distance 1) searches,
//! top 10 by score with the documents. Also the same inserts without a
//! search index, and the index alone: built over the stored collection.
//!
//! `cargo run --release -p aurora-benches --features search --example search_vs_fts5 [messages] [queries] [rounds]`
//! (defaults 100 000, 300 and 3). The engines index in turns, round after
//! round, and the best round of each is reported: on a shared machine the
//! load drifts within a run.
//!
//! `SEARCH_VS_FTS5_ONLY=search` runs only the indexed inserts through
//! Aurora, round after round, and no queries (to profile them).
//!
//! FTS5 has no fuzzy operator: its fuzzy query is the OR of the
//! vocabulary's words within one edit of the term, expanded in Rust before
//! timing (so FTS5's fuzzy time leaves out finding those words).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
use aurora::{doc, Aurora, AuroraConfig, SearchOptions};
use std::time::{Duration, Instant};

const BATCH: usize = 1000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// 3 000 pronounceable words.
fn vocabulary() -> Vec<String> {
    let (c, v) = (b"bcdfghklmnprstvz", b"aeiou");
    let mut rng = Rng(7);
    let mut out = std::collections::BTreeSet::new();
    while out.len() < 3000 {
        let syll = 2 + rng.next() % 2;
        let mut w = String::new();
        for _ in 0..syll {
            w.push(c[(rng.next() % c.len() as u64) as usize] as char);
            w.push(v[(rng.next() % v.len() as u64) as usize] as char);
        }
        out.insert(w);
    }
    out.into_iter().collect()
}

/// Zipf-like pick: low indexes are common.
fn pick(rng: &mut Rng, n: usize) -> usize {
    let r = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
    ((n as f64).powf(r) as usize).saturating_sub(1).min(n - 1)
}

fn corpus(n: usize, vocab: &[String]) -> Vec<String> {
    let mut rng = Rng(42);
    (0..n)
        .map(|_| {
            let len = 6 + rng.next() % 10;
            (0..len).map(|_| vocab[pick(&mut rng, vocab.len())].as_str()).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    // Damerau (optimal string alignment) distance ≤ 1.
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[n][m] <= 1
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[(v.len() * 99 / 100).min(v.len() - 1)])
}

struct Queries {
    single: Vec<String>,
    and: Vec<String>,
    phrase: Vec<String>,
    /// (Aurora form, FTS5 form)
    fuzzy: Vec<(String, String)>,
}

fn queries(n: usize, vocab: &[String], messages: &[String]) -> Queries {
    let mut rng = Rng(99);
    let mid = |rng: &mut Rng| vocab[50 + (rng.next() % 500) as usize].clone();
    let single = (0..n).map(|_| mid(&mut rng)).collect();
    let and = (0..n).map(|_| format!("{} {}", mid(&mut rng), mid(&mut rng))).collect();
    let phrase = (0..n)
        .map(|_| {
            let m: Vec<&str> = messages[(rng.next() % messages.len() as u64) as usize].split(' ').collect();
            let i = (rng.next() % (m.len() as u64 - 1)) as usize;
            format!("\"{} {}\"", m[i], m[i + 1])
        })
        .collect();
    let fuzzy = (0..n)
        .map(|_| {
            let w = mid(&mut rng);
            // One substitution in the middle: a typo.
            let mut typo: Vec<u8> = w.clone().into_bytes();
            let at = typo.len() / 2;
            typo[at] = if typo[at] == b'x' { b'y' } else { b'x' };
            let typo = String::from_utf8(typo).unwrap();
            let variants: Vec<&str> = vocab.iter().filter(|v| within_one_edit(v, &typo)).map(String::as_str).collect();
            (format!("{typo}~1"), variants.join(" OR "))
        })
        .collect();
    Queries { single, and, phrase, fuzzy }
}

/// Inserts the messages into a new FTS5 table; returns the connection
/// (with its folder) and the time taken.
fn fts5_index(messages: &[String]) -> (rusqlite::Connection, tempfile::TempDir, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let sql = rusqlite::Connection::open(dir.path().join("fts.db")).unwrap();
    sql.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE VIRTUAL TABLE m USING fts5(room UNINDEXED, body);",
    )
    .unwrap();
    let start = Instant::now();
    for chunk in messages.chunks(BATCH) {
        let tx = sql.unchecked_transaction().unwrap();
        {
            let mut ins = tx.prepare_cached("INSERT INTO m(room, body) VALUES (?1, ?2)").unwrap();
            for (i, body) in chunk.iter().enumerate() {
                ins.execute(rusqlite::params![format!("r{}", i % 10), body]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let t = start.elapsed();
    (sql, dir, t)
}

/// What one indexing run through Aurora measured.
#[derive(Default)]
struct Indexed {
    /// Inserts, and (with a search index) the final catch-up.
    total: Duration,
    /// The final `search_caught_up` alone.
    catch_up: Duration,
    /// Commits the index read back from the change feed (instead of
    /// taking them from its listener).
    feed_commits: u64,
    /// tantivy segments after the catch-up.
    segments: u64,
}

/// Inserts the messages into a new Aurora database, with or without a
/// search index on `body` (then caught up before the clock stops);
/// returns the closed database's folder and what was measured.
fn aurora_index(rt: &tokio::runtime::Runtime, messages: &[String], search: bool) -> (tempfile::TempDir, Indexed) {
    let dir = tempfile::tempdir().unwrap();
    let measured = rt.block_on(async {
        let db = Aurora::with_config(AuroraConfig::new(dir.path())).await.unwrap();
        db.new_collection("m", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
        if search {
            db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
        }
        let start = Instant::now();
        for chunk in messages.chunks(BATCH) {
            let docs = chunk
                .iter()
                .enumerate()
                .map(|(i, b)| doc! { "room": format!("r{}", i % 10), "body": b.as_str() })
                .collect();
            db.insert_many("m", docs).await.unwrap();
        }
        let mut measured = Indexed::default();
        if search {
            let caught = Instant::now();
            db.search_caught_up("m").await.unwrap();
            measured.catch_up = caught.elapsed();
            let status = db.search_index_status("m").unwrap();
            assert_eq!(status.documents, messages.len() as u64);
            measured.feed_commits = status.feed_commits;
            measured.segments = status.segments;
        }
        measured.total = start.elapsed();
        db.close().await.unwrap();
        measured
    });
    (dir, measured)
}

/// Builds a search index over the collection stored in `dir`.
fn aurora_build(rt: &tokio::runtime::Runtime, dir: &std::path::Path, n: usize) -> Duration {
    rt.block_on(async {
        let db = Aurora::with_config(AuroraConfig::new(dir)).await.unwrap();
        let start = Instant::now();
        db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
        let t = start.elapsed();
        assert_eq!(db.search_index_status("m").unwrap().documents, n as u64);
        db.drop_search_index("m").await.unwrap();
        db.close().await.unwrap();
        t
    })
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let nq: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(300);
    let rounds: usize = std::env::args().nth(3).and_then(|a| a.parse().ok()).unwrap_or(3).max(1);
    let vocab = vocabulary();
    let messages = corpus(n, &vocab);
    let qs = queries(nq, &vocab, &messages);
    let bytes: usize = messages.iter().map(String::len).sum();
    println!("{n} messages, {:.1} MB of text, {} queries per kind, {rounds} indexing rounds", bytes as f64 / 1e6, nq);

    // Indexing, the engines taking turns round after round (on a shared
    // machine the load drifts): the best round of each is reported.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if std::env::var("SEARCH_VS_FTS5_ONLY").is_ok_and(|v| v == "search") {
        // Profiling: only the indexed inserts through Aurora, no queries
        // (`valgrind --tool=callgrind` on this run counts its instructions).
        for round in 0..rounds {
            let (_dir, m) = aurora_index(&rt, &messages, true);
            println!(
                "  round {round}: aurora with search index {:.2} s (final catch-up {:.3} s, {} of {} commits read back from the feed, {} segments)",
                m.total.as_secs_f64(),
                m.catch_up.as_secs_f64(),
                m.feed_commits,
                n.div_ceil(BATCH),
                m.segments
            );
        }
        return;
    }
    let mut times: [Vec<Duration>; 4] = Default::default();
    let mut kept = None;
    for round in 0..rounds {
        let (sql, sql_dir, fts) = fts5_index(&messages);
        let (plain_dir, plain) = aurora_index(&rt, &messages, false);
        let build = aurora_build(&rt, plain_dir.path(), n);
        drop(plain_dir);
        let (search_dir, m) = aurora_index(&rt, &messages, true);
        println!(
            "  round {round}: fts5 {:.2} s, aurora with search index {:.2} s (final catch-up {:.3} s, {} of {} commits read back from the feed, {} segments), without {:.2} s, index built over the collection {:.2} s",
            fts.as_secs_f64(),
            m.total.as_secs_f64(),
            m.catch_up.as_secs_f64(),
            m.feed_commits,
            n.div_ceil(BATCH),
            m.segments,
            plain.total.as_secs_f64(),
            build.as_secs_f64()
        );
        for (i, t) in [fts, m.total, plain.total, build].into_iter().enumerate() {
            times[i].push(t);
        }
        kept = Some((sql, sql_dir, search_dir));
    }
    let Some((sql, _sql_dir, adir)) = kept else { return };
    let fts_query = |q: &str| -> Duration {
        let t = Instant::now();
        let mut stmt = sql
            .prepare_cached("SELECT rowid, room, body, rank FROM m WHERE m MATCH ?1 ORDER BY rank LIMIT 10")
            .unwrap();
        let rows: Vec<(i64, String, String, f64)> = stmt
            .query_map([q], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        std::hint::black_box(rows);
        t.elapsed()
    };

    let (a_single, a_and, a_phrase, a_fuzzy, fuzzy_hits) = rt.block_on(async {
        let db = Aurora::with_config(AuroraConfig::new(adir.path())).await.unwrap();
        assert_eq!(db.search_index_status("m").unwrap().documents, n as u64);
        let run = |q: String| {
            let db = db.clone();
            async move {
                let t = Instant::now();
                let r = db.search("m", &q).limit(10).run().await.unwrap();
                (t.elapsed(), r.hits.len())
            }
        };
        let mut lat = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        let mut fuzzy_hits = 0;
        for q in &qs.single {
            lat[0].push(run(q.clone()).await.0);
        }
        for q in &qs.and {
            lat[1].push(run(q.clone()).await.0);
        }
        for q in &qs.phrase {
            lat[2].push(run(q.clone()).await.0);
        }
        for (q, _) in &qs.fuzzy {
            let (t, hits) = run(q.clone()).await;
            fuzzy_hits += hits;
            lat[3].push(t);
        }
        db.close().await.unwrap();
        let [a, b, c, d] = lat;
        (a, b, c, d, fuzzy_hits)
    });
    let f_single: Vec<_> = qs.single.iter().map(|q| fts_query(q)).collect();
    let f_and: Vec<_> = qs.and.iter().map(|q| fts_query(q)).collect();
    let f_phrase: Vec<_> = qs.phrase.iter().map(|q| fts_query(q)).collect();
    let f_fuzzy: Vec<_> = qs.fuzzy.iter().filter(|(_, f)| !f.is_empty()).map(|(_, f)| fts_query(f)).collect();

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let best = |v: &[Duration]| v.iter().copied().min().unwrap_or_default();
    let [fts, search, plain, build] = times.map(|v| best(&v));
    println!();
    println!("indexing ({BATCH} messages per transaction), best of {rounds} rounds");
    println!(
        "  aurora (commit + feed + search index caught up): {:>9.0} msg/s ({:.2} s) = {:.2}x fts5",
        rate(search),
        search.as_secs_f64(),
        fts.as_secs_f64() / search.as_secs_f64()
    );
    println!(
        "  aurora without a search index (the same inserts): {:>9.0} msg/s ({:.2} s) = {:.2}x fts5",
        rate(plain),
        plain.as_secs_f64(),
        fts.as_secs_f64() / plain.as_secs_f64()
    );
    println!(
        "  aurora index built over the stored collection:   {:>9.0} msg/s ({:.2} s) = {:.2}x fts5",
        rate(build),
        build.as_secs_f64(),
        fts.as_secs_f64() / build.as_secs_f64()
    );
    println!("  sqlite fts5 (WAL, synchronous=NORMAL):          {:>9.0} msg/s ({:.2} s)", rate(fts), fts.as_secs_f64());
    println!();
    println!("query latency, top 10 with documents: p50 / p99 (µs)");
    for (name, a, f) in [
        ("single term", a_single, f_single),
        ("two-term AND", a_and, f_and),
        ("phrase", a_phrase, f_phrase),
        ("fuzzy ~1", a_fuzzy, f_fuzzy),
    ] {
        let (ap50, ap99) = percentiles(a);
        let (fp50, fp99) = percentiles(f);
        println!(
            "  {name:<13} aurora {:>8.0} / {:>8.0}   fts5 {:>8.0} / {:>8.0}",
            ap50.as_secs_f64() * 1e6,
            ap99.as_secs_f64() * 1e6,
            fp50.as_secs_f64() * 1e6,
            fp99.as_secs_f64() * 1e6
        );
    }
    println!("  (fuzzy: {fuzzy_hits} aurora hits over {nq} queries)");
}
