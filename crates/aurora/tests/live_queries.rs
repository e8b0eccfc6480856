//! Live queries: the transition table (§5.4), a commit as one unit, results
//! in the query's order with positions, a top-N window that refills from
//! its buffer, writes that cannot matter costing nothing, and a model test:
//! random multi-document transactions from concurrent writers, with forced
//! lag, after which — commit by commit — every watcher's ordered results
//! equal the query run against a model of the collection at that commit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{
    doc, Aurora, AuroraConfig, DocId, Document, FieldDefinition, FieldType, Filter, Order, QueryBuilder, QueryUpdate,
    Value, Watcher, F,
};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_stream::StreamExt;

async fn players() -> Aurora {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("players", [("score", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
    db
}

fn score(d: &Document) -> i64 {
    d.get("score").and_then(Value::as_i64).unwrap()
}

fn scores(w: &Watcher) -> Vec<i64> {
    w.results().map(score).collect()
}

/// Receives every update that is ready now.
fn drain(w: &mut Watcher) -> Vec<QueryUpdate> {
    let mut out = Vec::new();
    while let Some(u) = w.try_recv() {
        out.push(u.unwrap());
    }
    out
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
    assert!(matches!(w.recv().await.unwrap(), QueryUpdate::Added { document, .. } if document.id == a));
    assert!(
        matches!(w.recv().await.unwrap(), QueryUpdate::Modified { old, new, .. } if score(&old) == 40 && score(&new) == 45)
    );
    assert!(matches!(w.recv().await.unwrap(), QueryUpdate::Removed { document, .. } if document.id == a));
    assert!(matches!(w.recv().await.unwrap(), QueryUpdate::Removed { document, .. } if document.id == keep));
    assert_eq!(w.results().count(), 0);
}

/// Issue 15, item 1: every change of a multi-document commit counts (the
/// watcher used to take the first event of a commit and skip the rest).
#[tokio::test]
async fn a_commit_of_several_documents_is_applied_whole() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("orders", [("total", FieldDefinition::new(FieldType::Int).indexed())]).await.unwrap();
    let mut big = db.query("orders").filter(|f| f.gte("total", 100)).watch().await.unwrap();
    let ids = db
        .insert_many("orders", vec![doc! { "total": 150 }, doc! { "total": 5 }, doc! { "total": 300 }])
        .await
        .unwrap();
    let added = drain(&mut big);
    assert_eq!(added.len(), 2, "{added:?}");
    assert!(added.iter().all(|u| matches!(u, QueryUpdate::Added { .. })));
    assert_eq!(big.results().count(), 2);
    assert_eq!(
        big.results().count(),
        db.query("orders").filter(|f| f.gte("total", 100)).count().await.unwrap() as usize
    );

    // One transaction moves a member out and deletes another.
    let mut tx = db.begin().unwrap();
    tx.update("orders", &ids[0], [("total".to_string(), Value::Int(1))].into()).unwrap();
    tx.delete("orders", &ids[2]).unwrap();
    tx.commit().await.unwrap();
    let removed = drain(&mut big);
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(removed.iter().all(|u| matches!(u, QueryUpdate::Removed { .. })));
    assert_eq!(big.results().count(), 0, "the result set is right after the commit");
}

/// Issue 15, item 2: results in the query's order (ties by id), updates
/// with positions that rebuild the list when applied in order, and a Stream.
#[tokio::test]
async fn results_and_updates_follow_the_query_order() {
    let db = players().await;
    let mut ids = BTreeMap::new();
    for s in [5, 9, 7, 1] {
        ids.insert(s, db.insert_into("players", doc! { "score": s }).await.unwrap());
    }
    let mut top3 = db.query("players").order_by("score", Order::Desc).limit(3).watch().await.unwrap();
    assert_eq!(scores(&top3), [9, 7, 5], "in the query's order, not id order");
    let mut mirror: Vec<Document> = top3.results().cloned().collect();

    db.insert_into("players", doc! { "score": 8 }).await.unwrap();
    let u = top3.next().await.unwrap().unwrap(); // the watcher is a Stream
    let mut updates = vec![u];
    updates.extend(drain(&mut top3));
    for u in &updates {
        u.apply_to(&mut mirror);
    }
    assert_eq!(mirror.iter().map(score).collect::<Vec<_>>(), [9, 8, 7]);
    assert!(updates.iter().any(|u| matches!(u, QueryUpdate::Added { new_index: 1, .. })), "{updates:?}");
    assert!(updates.iter().any(|u| matches!(u, QueryUpdate::Removed { old_index: 2, .. })
        || matches!(u, QueryUpdate::Removed { old_index: 3, .. })));

    // A member moves inside the window: one Modified with both positions.
    db.update_document("players", &ids[&7], doc! { "score": 10 }).await.unwrap();
    let moved = drain(&mut top3);
    assert!(matches!(moved.as_slice(), [QueryUpdate::Modified { old_index: 2, new_index: 0, .. }]), "{moved:?}");
    for u in &moved {
        u.apply_to(&mut mirror);
    }
    assert_eq!(mirror.iter().map(score).collect::<Vec<_>>(), [10, 9, 8]);
    assert_eq!(mirror, top3.results().cloned().collect::<Vec<_>>());

    // Ties are broken by id, as the query does.
    let t = db.query("players").order_by("score", Order::Asc).watch().await.unwrap();
    let fresh: Vec<DocId> = db.query("players").order_by("score", Order::Asc).ids().await.unwrap();
    assert_eq!(t.results().map(|d| d.id.clone()).collect::<Vec<_>>(), fresh);
}

#[tokio::test]
async fn a_top_n_window_refills_when_a_member_leaves() {
    let db = players().await;
    let mut ids = Vec::new();
    for s in [10, 20, 30, 40, 50] {
        ids.push(db.insert_into("players", doc! { "score": s }).await.unwrap());
    }
    let mut top3 = db.query("players").order_by("score", Order::Desc).limit(3).watch().await.unwrap();
    assert_eq!(scores(&top3), [50, 40, 30]);
    db.update_document("players", &ids[4], doc! { "score": 1 }).await.unwrap(); // the leader drops out
    let updates = drain(&mut top3);
    assert!(updates
        .iter()
        .any(|u| matches!(u, QueryUpdate::Removed { document, old_index: 0 } if document.id == ids[4])));
    assert!(
        updates.iter().any(|u| matches!(u, QueryUpdate::Added { document, new_index: 2 } if score(document) == 20)),
        "the next one enters: {updates:?}"
    );
    assert_eq!(scores(&top3), [40, 30, 20]);
    assert_eq!(top3.reloads(), 0, "refilled from the buffer kept past the window, without re-running the query");
}

/// Issue 15, item 3: members leaving a top-N window are replaced from the
/// buffer kept past it; the query is re-read (bounded) only when the buffer
/// runs out, and the results equal the query after every commit.
#[tokio::test]
async fn a_window_re_reads_only_when_its_buffer_runs_out() {
    let db = players().await;
    let mut ids = Vec::new();
    for s in 0..50 {
        ids.push(db.insert_into("players", doc! { "score": s }).await.unwrap());
    }
    let mut top3 = db.query("players").order_by("score", Order::Desc).limit(3).watch().await.unwrap();
    let mut mirror: Vec<Document> = top3.results().cloned().collect();
    for (n, id) in ids.iter().rev().take(20).enumerate() {
        db.delete_document("players", id).await.unwrap();
        for u in drain(&mut top3) {
            u.apply_to(&mut mirror);
        }
        let fresh = db.query("players").order_by("score", Order::Desc).limit(3).collect().await.unwrap();
        assert_eq!(top3.results().cloned().collect::<Vec<_>>(), fresh, "after delete {n}");
        assert_eq!(mirror, fresh);
    }
    // 3 shown + 8 buffered: 20 deletes need two bounded re-reads, not 20 re-runs.
    assert_eq!(top3.reloads(), 2);
}

/// Issue 15, item 3: a write that cannot affect a live query is dropped
/// before it reaches the watcher (no buffering, no lag, no re-run).
#[tokio::test]
async fn writes_that_cannot_matter_cost_a_watcher_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(AuroraConfig { event_buffer: 4, ..AuroraConfig::new(dir.path()) }).await.unwrap();
    db.new_collection(
        "messages",
        [
            ("room", FieldDefinition::new(FieldType::String).indexed()),
            ("seq", FieldDefinition::new(FieldType::Int).indexed()),
        ],
    )
    .await
    .unwrap();
    let mut room_a =
        db.query("messages").filter(|f| f.eq("room", "a")).order_by("seq", Order::Desc).limit(3).watch().await.unwrap();
    for i in 0..200 {
        db.insert_into("messages", doc! { "room": "b", "seq": i }).await.unwrap();
    }
    assert!(room_a.try_recv().is_none());
    assert_eq!(room_a.reloads(), 0, "200 writes to another room did not even fill a 4-event buffer");
    db.insert_into("messages", doc! { "room": "a", "seq": 1000 }).await.unwrap();
    assert!(matches!(drain(&mut room_a).as_slice(), [QueryUpdate::Added { new_index: 0, .. }]));
}

// ---- the model test -------------------------------------------------------

/// A query as the model runs it: over a map of the collection's documents.
struct ModelQuery {
    filter: Filter,
    order: Vec<(&'static str, Order)>,
    offset: usize,
    limit: Option<usize>,
    select: Option<Vec<&'static str>>,
}

impl ModelQuery {
    fn builder(&self, db: &Aurora) -> QueryBuilder {
        let mut q = db.query("msgs").where_filter(self.filter.clone());
        for (f, o) in &self.order {
            q = q.order_by(f, *o);
        }
        if self.offset > 0 {
            q = q.offset(self.offset);
        }
        if let Some(l) = self.limit {
            q = q.limit(l);
        }
        if let Some(s) = &self.select {
            q = q.select(s.iter().copied());
        }
        q
    }

    /// The expected results over `docs`: filter, sort (missing fields as
    /// null, then the id in the first sort field's direction), window, projection.
    fn run(&self, docs: &BTreeMap<DocId, Document>) -> Vec<Document> {
        let mut m: Vec<&Document> = docs.values().filter(|d| self.filter.matches(d)).collect();
        m.sort_by(|a, b| {
            for (f, o) in &self.order {
                let (x, y) = (a.get_path(f).unwrap_or(&Value::Null), b.get_path(f).unwrap_or(&Value::Null));
                let c = if *o == Order::Desc { y.cmp(x) } else { x.cmp(y) };
                if c.is_ne() {
                    return c;
                }
            }
            match self.order.first() {
                Some((_, Order::Desc)) => b.id.cmp(&a.id),
                _ => a.id.cmp(&b.id),
            }
        });
        m.into_iter()
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
            .map(|d| match &self.select {
                None => d.clone(),
                Some(fields) => {
                    let mut p = Document::with_id(d.id.clone());
                    for f in fields {
                        if let Some(v) = d.get(f) {
                            p.fields.insert((*f).to_string(), v.clone());
                        }
                    }
                    p
                }
            })
            .collect()
    }
}

fn model_queries() -> Vec<ModelQuery> {
    let q = |filter, order, offset, limit, select| ModelQuery { filter, order, offset, limit, select };
    vec![
        q(F.gte("n", 50), vec![("n", Order::Asc)], 0, None, None),
        q(F.eq("room", "a"), vec![("n", Order::Desc)], 0, Some(3), None),
        q(Filter::All, vec![("n", Order::Asc)], 2, Some(3), None),
        q(F.in_array("tags", "x") | F.lt("n", 20), vec![], 0, None, None),
        q(!F.eq("room", "b"), vec![("room", Order::Asc), ("n", Order::Desc)], 0, Some(4), Some(vec!["room"])),
        q(Filter::All, vec![("n", Order::Desc)], 0, Some(1), None),
    ]
}

/// One writer's transactions: each writes one to five documents (inserts,
/// updates moving documents in and out of filters and windows, deletes,
/// writes to another collection); some are rolled back; conflicts happen.
async fn writer(db: Aurora, seed: u64, transactions: u64) {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..transactions {
        let mut tx = db.begin().unwrap();
        for _ in 0..(next() % 5 + 1) {
            let r = next();
            let id = DocId::text(&format!("m{}", r % 30)).unwrap();
            let rooms = ["a", "b", "c"];
            match r % 10 {
                0 | 1 => {
                    tx.delete("msgs", &id).unwrap();
                }
                2 => {
                    tx.upsert("other", doc! { "n": (r % 100) as i64 }.id(id)).unwrap();
                }
                _ => {
                    let tags: Vec<Value> = if r % 3 == 0 { vec!["x".into(), "y".into()] } else { vec!["y".into()] };
                    let mut d = doc! { "n": ((r >> 8) % 100) as i64, "room": rooms[(r >> 16) as usize % 3] }.id(id);
                    d.fields.insert("tags".into(), Value::Array(tags));
                    tx.upsert("msgs", d).unwrap();
                }
            }
        }
        if next() % 9 == 0 {
            tx.rollback();
        } else {
            let _ = tx.commit().await; // a conflict's loser wrote nothing
        }
        if next() % 4 == 0 {
            tokio::task::yield_now().await;
        }
    }
}

/// What a watcher showed: its sequence and ordered results, after each update.
type Seen = Vec<(u64, Vec<Document>)>;

fn observe(w: &mut Watcher, mirror: &mut Vec<Document>, seen: &mut Seen) {
    while let Some(u) = w.try_recv() {
        let u = u.unwrap();
        u.apply_to(mirror);
        seen.push((w.sequence(), w.results().cloned().collect()));
        if w.pending() == 0 {
            let results: Vec<Document> = w.results().cloned().collect();
            assert_eq!(*mirror, results, "updates applied in order rebuild the results");
        }
    }
}

async fn model_run(seed: u64, writers: u64, transactions: u64, buffer: usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(AuroraConfig { event_buffer: buffer, ..AuroraConfig::new(dir.path()) }).await.unwrap();
    db.new_collection(
        "msgs",
        [("n", FieldDefinition::new(FieldType::Int).indexed()), ("room", FieldDefinition::new(FieldType::String))],
    )
    .await
    .unwrap();
    // The chat-shaped window (`room == "a"` by `n` desc) loads and refills
    // by walking this compound index.
    db.create_compound_index("msgs", &["room", "n"], false).await.unwrap();
    db.new_collection("other", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    writer(db.clone(), seed ^ 0x9e37_79b9, 6).await; // some data before watching
    let queries = model_queries();
    let mut watchers = Vec::new();
    for q in &queries {
        let w = q.builder(&db).watch().await.unwrap();
        let mirror: Vec<Document> = w.results().cloned().collect();
        let seen = vec![(w.sequence(), mirror.clone())];
        watchers.push((w, mirror, seen));
    }
    let mut commits = db.listen_all();
    let subscribed_at = db.feed_head().unwrap();
    let tasks: Vec<_> =
        (0..writers).map(|t| tokio::spawn(writer(db.clone(), seed.wrapping_add(t * 7919), transactions))).collect();
    // Follow while the writers run; pausing now and then forces lag when
    // the buffer is small.
    let mut round = 0u64;
    while !tasks.iter().all(|t| t.is_finished()) {
        round += 1;
        for (w, mirror, seen) in &mut watchers {
            observe(w, mirror, seen);
        }
        let pause = if (seed ^ round).is_multiple_of(3) { 3 } else { 0 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Commits are published before they return: everything is queued now.
    for (w, mirror, seen) in &mut watchers {
        observe(w, mirror, seen);
    }

    // The model: replay the feed (every committed transaction, in order).
    let log = db.database().changes_since(0).unwrap();
    let mut at_sequence: Vec<(u64, BTreeMap<DocId, Document>)> = Vec::new();
    let mut docs: BTreeMap<DocId, Document> = BTreeMap::new();
    at_sequence.push((0, docs.clone()));
    for commit in &log {
        for c in commit.changes.iter().filter(|c| c.collection == "msgs") {
            match &c.new {
                Some(d) => docs.insert(c.id.clone(), (**d).clone()),
                None => docs.remove(&c.id),
            };
        }
        at_sequence.push((commit.sequence, docs.clone()));
    }
    let state_at = |s: u64| &at_sequence[at_sequence.partition_point(|(q, _)| *q <= s) - 1].1;
    for ((w, _, seen), q) in watchers.iter().zip(&queries) {
        for (sequence, results) in seen {
            assert_eq!(results, &q.run(state_at(*sequence)), "{:?} at sequence {sequence}", q.filter);
        }
        let fresh = q.builder(&db).collect().await.unwrap();
        let results: Vec<Document> = w.results().cloned().collect();
        assert_eq!(results, fresh, "{:?} equals re-running the query at the end", q.filter);
        assert_eq!(results, q.run(&docs));
    }

    // Listeners get each commit whole, in commit order: exactly the feed.
    let mut heard = Vec::new();
    while let Some(c) = commits.try_recv_commit() {
        match c {
            Ok(c) => heard.push(c),
            Err(aurora::RecvError::Lagged(_)) => {
                heard.clear(); // a small buffer lags; only an unlagged log is comparable
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    if buffer >= 4096 {
        let expected: Vec<(u64, usize)> =
            log.iter().filter(|c| c.sequence > subscribed_at).map(|c| (c.sequence, c.changes.len())).collect();
        let got: Vec<(u64, usize)> = heard.iter().map(|c| (c.sequence, c.events.len())).collect();
        assert_eq!(got, expected);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: cases(), ..Default::default() })]

    /// Random multi-document transactions from concurrent writers, with
    /// event buffers small enough to lag: after every commit a watcher
    /// reports, its ordered results equal the query over a model of the
    /// collection at that commit (and at the end, re-running the query).
    #[test]
    fn watchers_equal_the_query_after_every_commit(
        seed in proptest::prelude::any::<u64>(),
        writers in 1u64..4,
        transactions in 5u64..40,
        buffer in proptest::prop_oneof![proptest::prelude::Just(3usize), proptest::prelude::Just(16), proptest::prelude::Just(4096)],
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(model_run(seed, writers, transactions, buffer));
    }
}

fn cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12)
}
