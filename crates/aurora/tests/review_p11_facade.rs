//! Hostile review (p11), at the facade: an indexed `Int` field holding
//! values around zero and the extremes (-1 is `7F FF … FF` in the index,
//! the shape the vendored sled's reverse-iteration fix is about), many
//! documents, descending sorted queries and range queries across zero
//! compared with a plain scan, updates moving values across zero, close and
//! reopen; a live query under concurrent writers moving values across zero;
//! and a resumed listener (`listen_from`) read per event and per commit.
//!
//! Size: `AURORA_PROPTEST_CASES` (default 64) scales documents and writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, DocId, Document, FieldDefinition, FieldType, Order, Value};
use std::collections::BTreeMap;
use std::time::Duration;

fn scale() -> u64 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64).max(1)
}

const SPECIAL: [i64; 12] =
    [i64::MIN, i64::MIN + 1, -65536, -256, -2, -1, 0, 1, 255, 0xFFFF_FFFF, i64::MAX - 1, i64::MAX];

fn value(rng: &mut fastrand::Rng) -> i64 {
    match rng.u64(..5) {
        0 => SPECIAL[rng.u64(..SPECIAL.len() as u64) as usize],
        1 | 2 => -(rng.u64(..40) as i64) - 1,
        3 => rng.u64(..40) as i64,
        _ => (rng.u64(..) as i64) >> rng.u64(..63),
    }
}

fn n_of(d: &Document) -> i64 {
    d.get("n").and_then(Value::as_i64).unwrap()
}

/// Every query shape against the model (id → n): descending and ascending
/// order, ranges across zero, limits.
async fn check(db: &Aurora, model: &BTreeMap<DocId, i64>, what: &str) {
    // Plain scan: every document, no index.
    let all = db.query("c").collect().await.unwrap();
    let scanned: BTreeMap<DocId, i64> = all.iter().map(|d| (d.id.clone(), n_of(d))).collect();
    assert_eq!(&scanned, model, "{what}: plain scan");
    let mut desc: Vec<(i64, DocId)> = model.iter().map(|(id, n)| (*n, id.clone())).collect();
    desc.sort();
    desc.reverse();
    let got: Vec<i64> = db.query("c").order_by("n", Order::Desc).collect().await.unwrap().iter().map(n_of).collect();
    assert_eq!(got, desc.iter().map(|(n, _)| *n).collect::<Vec<_>>(), "{what}: order_by n desc");
    let got: Vec<i64> =
        db.query("c").order_by("n", Order::Desc).limit(7).collect().await.unwrap().iter().map(n_of).collect();
    assert_eq!(got, desc.iter().take(7).map(|(n, _)| *n).collect::<Vec<_>>(), "{what}: desc limit 7");
    let got: Vec<i64> = db.query("c").order_by("n", Order::Asc).collect().await.unwrap().iter().map(n_of).collect();
    let mut asc: Vec<i64> = desc.iter().map(|(n, _)| *n).collect();
    asc.reverse();
    assert_eq!(got, asc, "{what}: order_by n asc");
    for (lo, hi) in
        [(-1i64, 0i64), (-5, 5), (-2, 1), (i64::MIN, -1), (-1, i64::MAX), (0, 0xFFFF_FFFF), (-65536, 255), (-1, -1)]
    {
        let want: Vec<i64> = desc.iter().map(|(n, _)| *n).filter(|n| *n >= lo && *n <= hi).collect();
        let got: Vec<i64> = db
            .query("c")
            .filter(|f| f.gte("n", lo) & f.lte("n", hi))
            .order_by("n", Order::Desc)
            .collect()
            .await
            .unwrap()
            .iter()
            .map(n_of)
            .collect();
        assert_eq!(got, want, "{what}: {lo} <= n <= {hi}, desc");
        let strict = db.query("c").filter(|f| f.gt("n", lo) & f.lt("n", hi)).count().await.unwrap();
        assert_eq!(strict as usize, want.iter().filter(|n| **n > lo && **n < hi).count(), "{what}: {lo} < n < {hi}");
        let below =
            db.query("c").filter(|f| f.lt("n", hi)).order_by("n", Order::Desc).limit(3).collect().await.unwrap();
        let want_below: Vec<i64> = desc.iter().map(|(n, _)| *n).filter(|n| *n < hi).take(3).collect();
        assert_eq!(below.iter().map(n_of).collect::<Vec<_>>(), want_below, "{what}: n < {hi} desc limit 3");
    }
    for v in SPECIAL {
        let want = model.values().filter(|n| **n == v).count();
        assert_eq!(db.query("c").filter(|f| f.eq("n", v)).count().await.unwrap() as usize, want, "{what}: n == {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_int_index_around_zero_answers_like_a_plain_scan_across_updates_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(2026);
    let mut model: BTreeMap<DocId, i64> = BTreeMap::new();
    {
        let db = Aurora::open(dir.path()).await.unwrap();
        db.new_collection("c", [("n", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
        // Negatives near zero first in a batch, then others one by one.
        let docs: Vec<Document> = (0..(50 + scale() * 6)).map(|i| doc! { "n": -(i as i64 % 60) - 1 }).collect();
        for (id, d) in db.insert_many("c", docs.clone()).await.unwrap().into_iter().zip(&docs) {
            model.insert(id, n_of(d));
        }
        for _ in 0..(scale() * 4) {
            let n = value(&mut rng);
            model.insert(db.insert_into("c", doc! { "n": n }).await.unwrap(), n);
        }
        check(&db, &model, "after inserts").await;
        // Move values across zero, both ways.
        let ids: Vec<DocId> = model.keys().cloned().collect();
        for id in ids.iter().filter(|_| rng.u64(..2) == 0) {
            let n = !model[id]; // -x - 1: -1 ↔ 0, -5 ↔ 4, MIN ↔ MAX
            db.update_document("c", id, doc! { "n": n }).await.unwrap();
            model.insert(id.clone(), n);
        }
        check(&db, &model, "after updates across zero").await;
        db.close().await.unwrap();
    }
    let db = Aurora::open(dir.path()).await.unwrap();
    check(&db, &model, "reopened").await;
    // Delete most of them (the index trees shrink), update the rest.
    let ids: Vec<DocId> = model.keys().cloned().collect();
    for id in &ids {
        if rng.u64(..4) != 0 {
            assert!(db.delete_document("c", id).await.unwrap());
            model.remove(id);
        } else {
            let n = value(&mut rng);
            db.update_document("c", id, doc! { "n": n }).await.unwrap();
            model.insert(id.clone(), n);
        }
    }
    check(&db, &model, "after deletes").await;
    db.close().await.unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    check(&db, &model, "reopened again").await;
    db.close().await.unwrap();
}

/// A live query (range across zero, descending, top 10) while two writers
/// move values across zero: once quiet, its results equal the query's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_query_across_zero_stays_correct_under_concurrent_writers() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("c", [("n", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..100i64 {
        ids.push(db.insert_into("c", doc! { "n": (i % 21) - 10 }).await.unwrap());
    }
    let query =
        |db: &Aurora| db.query("c").filter(|f| f.gte("n", -3) & f.lte("n", 2)).order_by("n", Order::Desc).limit(10);
    let mut top = query(&db).watch().await.unwrap();
    let mut whole = db.query("c").filter(|f| f.lt("n", 0)).order_by("n", Order::Desc).watch().await.unwrap();
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (db, ids) = (db.clone(), ids.clone());
            tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(t + 40);
                for _ in 0..(scale() * 5) {
                    let id = &ids[rng.u64(..ids.len() as u64) as usize];
                    let n = rng.u64(..9) as i64 - 5;
                    db.update_document("c", id, doc! { "n": n }).await.unwrap();
                }
            })
        })
        .collect();
    let mut updates = 0;
    let drain = |w: &mut aurora::Watcher| {
        let mut k = 0;
        while let Some(u) = w.try_recv() {
            u.unwrap();
            k += 1;
        }
        k
    };
    for w in writers {
        while !w.is_finished() {
            updates += drain(&mut top) + drain(&mut whole);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        w.await.unwrap();
    }
    // Quiet: drain until nothing more arrives for a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let k = drain(&mut top) + drain(&mut whole);
        updates += k;
        let want: Vec<DocId> = query(&db).ids().await.unwrap();
        let got: Vec<DocId> = top.results().map(|d| d.id.clone()).collect();
        let want_whole: Vec<DocId> =
            db.query("c").filter(|f| f.lt("n", 0)).order_by("n", Order::Desc).ids().await.unwrap();
        let got_whole: Vec<DocId> = whole.results().map(|d| d.id.clone()).collect();
        if k == 0 && got == want && got_whole == want_whole {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "live results never matched: {got:?} vs {want:?}");
    }
    assert!(updates > 0);
}

/// FINDING (facade reproduction of review_p11_hub's
/// `a_backlog_commit_read_by_events_is_not_delivered_again_empty`): a
/// listener from `listen_from` that reads a replayed commit's last event
/// with `recv` and then calls `recv_commit` gets that commit again, empty
/// (aurora-pubsub listener.rs `poll_next_commit` returns the exhausted
/// backlog front).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_from_read_per_event_then_per_commit_never_yields_an_empty_commit() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("c", [("n", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
    let start = db.feed_head().unwrap();
    db.insert_into("c", doc! { "n": -1 }).await.unwrap();
    db.insert_into("c", doc! { "n": 0 }).await.unwrap();
    let mut l = db.listen_from(start).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), l.recv()).await.unwrap().unwrap();
    assert_eq!(first.document.as_ref().and_then(|d| d.get("n")).cloned(), Some(Value::Int(-1)));
    let next = tokio::time::timeout(Duration::from_secs(5), l.recv_commit()).await.unwrap().unwrap();
    assert!(!next.events.is_empty(), "commit {} delivered a second time, empty", next.sequence);
    assert_eq!(next.events[0].document.as_ref().and_then(|d| d.get("n")).cloned(), Some(Value::Int(0)));
}
