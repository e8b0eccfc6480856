//! Live queries: the transition table (§5.4), a top-N window that refills,
//! and convergence: after random concurrent transactions (some rolled back),
//! a watcher's state equals re-running the query.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, DocId, FieldDefinition, FieldType, Order, QueryUpdate, Value, Watcher};
use std::collections::BTreeMap;
use std::time::Duration;

async fn players() -> Aurora {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("players", [("score", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
    db
}

fn score(d: &aurora::Document) -> i64 {
    d.get("score").and_then(Value::as_i64).unwrap()
}

#[tokio::test]
async fn transitions_follow_the_table() {
    let db = players().await;
    let keep = db.insert_into("players", doc! { "score": 50 }).await.unwrap();
    let mut w = db.query("players").filter(|f| f.gt("score", 30)).watch().await.unwrap();
    assert_eq!(w.results().count(), 1, "starts from the current result set");
    let a = db.insert_into("players", doc! { "score": 40 }).await.unwrap();
    db.insert_into("players", doc! { "score": 10 }).await.unwrap(); // never matches: nothing
    db.update_document("players", &a, doc! { "score": 45 }).await.unwrap();
    db.update_document("players", &a, doc! { "score": 5 }).await.unwrap();
    db.delete_document("players", &keep).await.unwrap();
    assert!(matches!(w.recv().await.unwrap(), QueryUpdate::Added(d) if d.id == a));
    assert!(
        matches!(w.recv().await.unwrap(), QueryUpdate::Modified { old, new } if score(&old) == 40 && score(&new) == 45)
    );
    assert!(matches!(w.recv().await.unwrap(), QueryUpdate::Removed(d) if d.id == a));
    assert!(matches!(w.recv().await.unwrap(), QueryUpdate::Removed(d) if d.id == keep));
    assert_eq!(w.results().count(), 0);
}

#[tokio::test]
async fn a_top_n_window_refills_when_a_member_leaves() {
    let db = players().await;
    let mut ids = Vec::new();
    for s in [10, 20, 30, 40, 50] {
        ids.push(db.insert_into("players", doc! { "score": s }).await.unwrap());
    }
    let mut top3 = db.query("players").order_by("score", Order::Desc).limit(3).watch().await.unwrap();
    let scores = |w: &Watcher| {
        let mut s: Vec<i64> = w.results().map(score).collect();
        s.sort();
        s
    };
    assert_eq!(scores(&top3), [30, 40, 50]);
    db.update_document("players", &ids[4], doc! { "score": 1 }).await.unwrap(); // the leader drops out
    let mut updates = vec![top3.recv().await.unwrap()];
    while updates.len() < 2 {
        updates.push(top3.recv().await.unwrap());
    }
    assert!(updates.iter().any(|u| matches!(u, QueryUpdate::Removed(d) if d.id == ids[4])));
    assert!(updates.iter().any(|u| matches!(u, QueryUpdate::Added(d) if score(d) == 20)), "the next one enters");
    assert_eq!(scores(&top3), [20, 30, 40]);
}

async fn converge(seed: u64, threads: u64, ops: u64) {
    let db = players().await;
    let queries = [
        db.query("players").filter(|f| f.gte("score", 50)),
        db.query("players").filter(|f| f.lt("score", 20) | f.eq("team", "red")),
        db.query("players").order_by("score", Order::Asc).limit(4),
    ];
    let mut watchers = Vec::new();
    for q in &queries {
        watchers.push(q.clone().watch().await.unwrap());
    }
    let start = db.database().collections().documents().store().revision();
    let mut listener = db.listen_all();
    let writers: Vec<_> = (0..threads)
        .map(|t| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut x = seed ^ (t * 7919 + 1);
                for i in 0..ops {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let id = DocId::text(&format!("p{}", x % 12)).unwrap();
                    let mut tx = db.begin().unwrap();
                    let team = if x.is_multiple_of(3) { "red" } else { "blue" };
                    if x.is_multiple_of(5) {
                        tx.delete("players", &id).unwrap();
                    } else {
                        tx.upsert("players", doc! { "score": (x % 100) as i64, "team": team }.id(id)).unwrap();
                    }
                    if i % 7 == 3 {
                        tx.rollback(); // rolled-back work must change nothing
                    } else {
                        let _ = tx.commit().await; // conflicts are fine: the loser wrote nothing
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let final_rev = db.database().collections().documents().store().revision();
    // The listener's log is exactly the committed changes, in commit order.
    let committed = db.changes_since(start).await.unwrap();
    let mut heard = Vec::new();
    while heard.len() < committed.len() {
        heard.push(listener.recv().await.unwrap());
    }
    assert!(listener.try_recv().is_none(), "nothing beyond the committed changes");
    let key =
        |e: &aurora::ChangeEvent| (e.sequence, e.collection.clone(), e.id.clone(), e.change_type, e.document.clone());
    assert_eq!(heard.iter().map(key).collect::<Vec<_>>(), committed.iter().map(key).collect::<Vec<_>>());
    for (w, q) in watchers.iter_mut().zip(&queries) {
        while w.sequence() < final_rev {
            if tokio::time::timeout(Duration::from_millis(300), w.recv()).await.is_err() {
                break;
            }
        }
        let state: BTreeMap<DocId, aurora::Document> = w.results().map(|d| (d.id.clone(), d.clone())).collect();
        let fresh: BTreeMap<DocId, aurora::Document> =
            q.clone().collect().await.unwrap().into_iter().map(|d| (d.id.clone(), d)).collect();
        assert_eq!(state, fresh, "watcher state equals re-running {:?}", q.as_query().filter_expr());
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: cases(), ..Default::default() })]

    /// Random committed and rolled-back transactions from several writers
    /// while a listener and three watchers run: the listener's log equals the
    /// committed changes in commit order, and every watcher converges to its
    /// query re-run at the end.
    #[test]
    fn listeners_and_watchers_follow_random_concurrent_transactions(seed in proptest::prelude::any::<u64>(), threads in 1u64..4, ops in 10u64..60) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(converge(seed, threads, ops));
    }
}

fn cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(8)
}
