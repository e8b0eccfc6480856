//! Hostile review of the range cache through the facade: the same random
//! work (upserts, deletes, index and compound index creates and drops,
//! collection drops, checkpoints into the cold store, reopens) on two
//! databases, one with the range cache on (`range_cache_mb` 32) and one
//! with it off (0); every query answer (indexed equality and ranges,
//! ordered ascending and descending with limits, keyset pages, counts,
//! full scans) must be the same.
//!
//! Sized by `AURORA_PROPTEST_CASES` (default 12).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, DocId, Document, FieldDefinition, FieldType, Hint, Order};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12)
}

const FIELDS: [&str; 2] = ["a", "b"];

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        id: u8,
        a: i64,
        b: u8,
    },
    Delete(u8),
    CreateIndex {
        field: u8,
        unique: bool,
    },
    DropIndex(u8),
    CreateCompound,
    DropCompound,
    /// Equality or `>=` on a field, ordered by a field, with a limit.
    Query {
        field: u8,
        eq: bool,
        value: i64,
        order: u8,
        desc: bool,
        limit: usize,
        scan: bool,
    },
    /// Keyset pages of `size`, ordered by a field.
    Pages {
        order: u8,
        desc: bool,
        size: usize,
    },
    Count {
        field: u8,
        value: i64,
    },
    Checkpoint,
    DropCollection,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0u8..24, 0i64..6, 0u8..4).prop_map(|(id, a, b)| Op::Upsert { id, a, b }),
        3 => (0u8..24).prop_map(Op::Delete),
        2 => (0u8..2, any::<bool>()).prop_map(|(field, unique)| Op::CreateIndex { field, unique }),
        1 => (0u8..2).prop_map(Op::DropIndex),
        1 => Just(Op::CreateCompound),
        1 => Just(Op::DropCompound),
        8 => (0u8..2, any::<bool>(), 0i64..6, 0u8..2, any::<bool>(), 1usize..8, any::<bool>())
            .prop_map(|(field, eq, value, order, desc, limit, scan)| Op::Query { field, eq, value, order, desc, limit, scan }),
        3 => (0u8..2, any::<bool>(), 1usize..5).prop_map(|(order, desc, size)| Op::Pages { order, desc, size }),
        2 => (0u8..2, 0i64..6).prop_map(|(field, value)| Op::Count { field, value }),
        4 => Just(Op::Checkpoint),
        1 => Just(Op::DropCollection),
        1 => Just(Op::Reopen),
    ]
}

async fn open(dir: &std::path::Path, mb: usize) -> Aurora {
    let config = AuroraConfig { range_cache_mb: mb, ..AuroraConfig::new(dir) };
    Aurora::with_config(config).await.unwrap()
}

async fn ensure_collection(db: &Aurora) {
    if !db.list_collections().unwrap().iter().any(|c| c == "c") {
        db.new_collection(
            "c",
            [("a", FieldDefinition::new(FieldType::Int)), ("b", FieldDefinition::new(FieldType::Int))],
        )
        .await
        .unwrap();
    }
}

/// What a query answer is compared by: ids and both fields, in order.
fn shape(docs: &[Document]) -> Vec<(String, Option<aurora::Value>, Option<aurora::Value>)> {
    docs.iter().map(|d| (d.id.to_string(), d.get("a").cloned(), d.get("b").cloned())).collect()
}

/// One step on one database; its observable answer as a string.
async fn step(db: &Aurora, op: &Op) -> String {
    let q = || db.query("c");
    match op {
        Op::Upsert { id, a, b } => {
            let d = doc! { "a": *a, "b": i64::from(*b) }.id(DocId::text(&format!("d{id:02}")).unwrap());
            format!("{:?}", db.upsert("c", d).await.is_ok())
        }
        Op::Delete(id) => {
            format!("{:?}", db.delete_document("c", &DocId::text(&format!("d{id:02}")).unwrap()).await.ok())
        }
        Op::CreateIndex { field, unique } => {
            format!("{:?}", db.create_index("c", FIELDS[usize::from(*field)], *unique).await.is_ok())
        }
        Op::DropIndex(field) => format!("{:?}", db.drop_index("c", FIELDS[usize::from(*field)]).await.is_ok()),
        Op::CreateCompound => format!("{:?}", db.create_compound_index("c", &["a", "b"], false).await.is_ok()),
        Op::DropCompound => format!("{:?}", db.drop_compound_index("c", &["a", "b"]).await.is_ok()),
        Op::Query { field, eq, value, order, desc, limit, scan } => {
            let f = FIELDS[usize::from(*field)];
            let v = *value;
            let mut query = q()
                .filter(move |b| if *eq { b.eq(f, v) } else { b.gte(f, v) })
                .order_by(FIELDS[usize::from(*order)], if *desc { Order::Desc } else { Order::Asc })
                .limit(*limit);
            if *scan {
                query = query.hint(Hint::Scan);
            }
            format!("{:?}", query.collect().await.map(|d| shape(&d)).map_err(|e| e.to_string()))
        }
        Op::Pages { order, desc, size } => {
            let mut out = Vec::new();
            let mut cursor = None;
            for _ in 0..40 {
                let mut query = q()
                    .order_by(FIELDS[usize::from(*order)], if *desc { Order::Desc } else { Order::Asc })
                    .limit(*size);
                if let Some(c) = cursor.take() {
                    query = query.after(c);
                }
                match query.page().await {
                    Ok(page) => {
                        out.push(shape(&page.items));
                        match page.next_cursor {
                            Some(c) => cursor = Some(c),
                            None => break,
                        }
                    }
                    Err(e) => {
                        out.push(vec![(e.to_string(), None, None)]);
                        break;
                    }
                }
            }
            format!("{out:?}")
        }
        Op::Count { field, value } => {
            let f = FIELDS[usize::from(*field)];
            let v = *value;
            format!("{:?}", q().filter(move |b| b.eq(f, v)).count().await.map_err(|e| e.to_string()))
        }
        Op::Checkpoint => {
            db.database().collections().documents().store().checkpoint().unwrap();
            String::new()
        }
        Op::DropCollection => {
            let dropped = db.drop_collection("c").await.is_ok();
            ensure_collection(db).await;
            format!("{dropped:?}")
        }
        Op::Reopen => String::new(),
    }
}

fn run(ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (on_dir, off_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut on = open(on_dir.path(), 32).await;
        let mut off = open(off_dir.path(), 0).await;
        ensure_collection(&on).await;
        ensure_collection(&off).await;
        for (i, op) in ops.iter().enumerate() {
            if let Op::Reopen = op {
                on.close().await.unwrap();
                off.close().await.unwrap();
                drop((on, off));
                on = open(on_dir.path(), 32).await;
                off = open(off_dir.path(), 0).await;
                continue;
            }
            let (a, b) = (step(&on, op).await, step(&off, op).await);
            assert_eq!(a, b, "step {i} {op:?}: range cache on vs off");
        }
        // Every document, through a full scan and every index order.
        for op in [
            Op::Pages { order: 0, desc: false, size: 100 },
            Op::Pages { order: 1, desc: true, size: 100 },
            Op::Query { field: 0, eq: false, value: 0, order: 0, desc: true, limit: 100, scan: false },
        ] {
            assert_eq!(step(&on, &op).await, step(&off, &op).await, "final {op:?}");
        }
        on.close().await.unwrap();
        off.close().await.unwrap();
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn queries_answer_the_same_with_the_range_cache_on_and_off(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}

/// A dropped and re-created index, and a dropped and re-created
/// collection, read after their entries reached the cold store, answer
/// from what exists now, not from the old entries kept in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_and_recreates_answer_from_what_exists_now() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), 32).await;
    ensure_collection(&db).await;
    db.create_index("c", "a", false).await.unwrap();
    let store = db.database().collections().documents().store().clone();
    for i in 0..50i64 {
        db.upsert("c", doc! { "a": i % 5, "b": i }.id(DocId::text(&format!("d{i:02}")).unwrap())).await.unwrap();
    }
    store.checkpoint().unwrap();
    assert_eq!(db.query("c").filter(|f| f.eq("a", 3)).count().await.unwrap(), 10);
    assert_eq!(db.query("c").count().await.unwrap(), 50);
    assert!(store.resident_bytes() > 0, "the index and the collection were loaded");
    db.drop_index("c", "a").await.unwrap();
    store.checkpoint().unwrap();
    for i in 0..50i64 {
        db.upsert("c", doc! { "a": i % 7, "b": i }.id(DocId::text(&format!("d{i:02}")).unwrap())).await.unwrap();
    }
    db.create_index("c", "a", false).await.unwrap();
    store.checkpoint().unwrap();
    let ids = db.query("c").filter(|f| f.eq("a", 3)).ids().await.unwrap();
    assert_eq!(ids.len(), 7, "{ids:?}");
    let desc = db.query("c").order_by("a", Order::Desc).limit(5).collect().await.unwrap();
    assert!(desc.iter().all(|d| d.get("a") == Some(&aurora::Value::Int(6))), "{:?}", shape(&desc));
    db.drop_collection("c").await.unwrap();
    store.checkpoint().unwrap();
    ensure_collection(&db).await;
    assert_eq!(db.query("c").count().await.unwrap(), 0);
    db.create_index("c", "a", false).await.unwrap();
    assert_eq!(db.query("c").filter(|f| f.eq("a", 3)).count().await.unwrap(), 0);
    db.upsert("c", doc! { "a": 3, "b": 1 }.id(DocId::text("x").unwrap())).await.unwrap();
    store.checkpoint().unwrap();
    assert_eq!(db.query("c").filter(|f| f.eq("a", 3)).count().await.unwrap(), 1);
    assert_eq!(db.query("c").count().await.unwrap(), 1);
    db.close().await.unwrap();
}

/// Writers swap the indexed value of two documents (and delete and
/// re-insert a document with its value) in transactions, so every value's
/// count stays the same in every snapshot; readers count each value through
/// the index, read the top of a descending index walk and scan in full,
/// while checkpoints apply the work to the cold store (and the cache)
/// underneath them. Sized by `AURORA_RANGE_CACHE_ROUNDS` (default 600).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn index_reads_stay_consistent_while_writers_and_checkpoints_race_them() {
    const DOCS: i64 = 60;
    const VALUES: i64 = 6;
    let rounds: usize = std::env::var("AURORA_RANGE_CACHE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), 32).await;
    ensure_collection(&db).await;
    db.create_index("c", "a", false).await.unwrap();
    for i in 0..DOCS {
        db.upsert("c", doc! { "a": i % VALUES, "b": i }.id(DocId::text(&format!("d{i:02}")).unwrap())).await.unwrap();
    }
    let store = db.database().collections().documents().store().clone();
    store.checkpoint().unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let db = db.clone();
        writers.push(tokio::spawn(async move {
            let mut seed = 0x2545_f491_4f6c_dd1du64 ^ (w + 1);
            for r in 0..rounds {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let (x, y) = (seed % DOCS as u64, (seed >> 12) % DOCS as u64);
                let (x, y) = (DocId::text(&format!("d{x:02}")).unwrap(), DocId::text(&format!("d{y:02}")).unwrap());
                let reinsert = r.is_multiple_of(5);
                db.transaction(move |tx| {
                    let dx = tx.get("c", &x)?.expect("every document exists");
                    let dy = tx.get("c", &y)?.expect("every document exists");
                    let (ax, ay) = (dx.get("a").cloned().unwrap(), dy.get("a").cloned().unwrap());
                    if reinsert {
                        tx.delete("c", &x)?;
                        tx.insert("c", doc! { "a": ax.clone(), "b": 0 }.id(x.clone()))?;
                    } else {
                        tx.update("c", &x, [("a".to_string(), ay)].into())?;
                        tx.update("c", &y, [("a".to_string(), ax)].into())?;
                    }
                    Ok(())
                })
                .await
                .unwrap();
            }
        }));
    }
    let checkpoints = {
        let (store, done) = (store.clone(), done.clone());
        tokio::task::spawn_blocking(move || {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                store.checkpoint().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (db, done) = (db.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                for v in 0..VALUES {
                    let n = db.query("c").filter(|f| f.eq("a", v)).count().await.unwrap();
                    assert_eq!(n, (DOCS / VALUES) as u64, "count of a = {v}");
                    let ids = db.query("c").filter(|f| f.eq("a", v)).ids().await.unwrap();
                    assert_eq!(ids.len() as i64, DOCS / VALUES, "ids of a = {v}");
                }
                let top = db.query("c").order_by("a", Order::Desc).limit(15).collect().await.unwrap();
                let top: Vec<_> = top.iter().map(|d| d.get("a").cloned().unwrap()).collect();
                let want: Vec<_> =
                    (0..15).map(|i| aurora::Value::Int(if i < 10 { VALUES - 1 } else { VALUES - 2 })).collect();
                assert_eq!(top, want, "descending walk of the index");
                assert_eq!(db.query("c").count().await.unwrap(), DOCS as u64, "full scan");
                reads += 1;
            }
            reads
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    checkpoints.await.unwrap();
    for r in readers {
        assert!(r.await.unwrap() > 0, "each reader read");
    }
    db.close().await.unwrap();
}

/// Documents near the 1 MiB budget: the collection is loaded while it
/// fits, outgrows the budget through an update, and every answer stays
/// the same as with the cache off; the charged bytes never pass the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_documents_near_the_budget_answer_the_same_and_keep_the_bound() {
    let (on_dir, off_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (on, off) = (open(on_dir.path(), 1).await, open(off_dir.path(), 0).await);
    let budget = 1usize << 20;
    for db in [&on, &off] {
        ensure_collection(db).await;
        db.create_index("c", "a", false).await.unwrap();
    }
    let store = on.database().collections().documents().store().clone();
    let check = || async {
        for (field, v) in [("a", 1i64), ("a", 2)] {
            let got = shape(&on.query("c").filter(|f| f.eq(field, v)).collect().await.unwrap());
            let want = shape(&off.query("c").filter(|f| f.eq(field, v)).collect().await.unwrap());
            assert_eq!(got, want);
        }
        let got = shape(&on.query("c").order_by("a", Order::Desc).collect().await.unwrap());
        assert_eq!(got, shape(&off.query("c").order_by("a", Order::Desc).collect().await.unwrap()));
        assert_eq!(on.query("c").count().await.unwrap(), off.query("c").count().await.unwrap());
        assert!(store.resident_bytes() <= budget, "{} over {budget}", store.resident_bytes());
    };
    for i in 0..3i64 {
        for db in [&on, &off] {
            let d = doc! { "a": i, "b": i, "pad": "x".repeat(300_000) }.id(DocId::text(&format!("h{i}")).unwrap());
            db.upsert("c", d).await.unwrap();
        }
        store.checkpoint().unwrap();
        check().await;
    }
    assert!(store.resident_bytes() > 0, "the collection fit and was loaded");
    // Outgrows the budget through one update; then shrinks again.
    for pad in [900_000usize, 10] {
        for db in [&on, &off] {
            let d = doc! { "a": 2, "b": 2, "pad": "y".repeat(pad) }.id(DocId::text("h2").unwrap());
            db.upsert("c", d).await.unwrap();
        }
        store.checkpoint().unwrap();
        check().await;
    }
    on.close().await.unwrap();
    off.close().await.unwrap();
}

/// `range_cache_mb = 0` keeps nothing resident, whatever is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_range_cache_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), 0).await;
    ensure_collection(&db).await;
    db.create_index("c", "a", false).await.unwrap();
    for i in 0..20i64 {
        db.upsert("c", doc! { "a": i % 3, "b": i }.id(DocId::text(&format!("z{i:02}")).unwrap())).await.unwrap();
    }
    let store = db.database().collections().documents().store().clone();
    store.checkpoint().unwrap();
    assert_eq!(db.query("c").filter(|f| f.eq("a", 1)).count().await.unwrap(), 7);
    assert_eq!(db.query("c").order_by("a", Order::Desc).limit(3).collect().await.unwrap().len(), 3);
    assert_eq!(db.query("c").count().await.unwrap(), 20);
    assert_eq!(store.resident_bytes(), 0);
    db.close().await.unwrap();
}
