//! Model test: random documents, updates (whole documents and atomic
//! operators) and deletes, and random filters,
//! orderings, offsets and limits. The engine's result must equal a naive
//! evaluation over all documents — on a collection with indexes (so the
//! planner picks index reads, intersections and index-ordered walks) and on
//! one without (full scans) — and a query inside a transaction must see the
//! transaction's own writes. Every hint gives the same result (or, if the
//! query cannot use it, a typed error). Keyset paging (`page` + `after`) with any
//! projection walks every match exactly once, in the naive order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_core::{doc, DocId, Document, FieldDefinition, FieldType, Update, Value};
use aurora_index::{Collections, IndexConfig, Schema};
use aurora_query::{Filter, Hint, Order, Query, QueryError};
use aurora_storage::{DocumentStore, DocumentStoreConfig, StoreConfig};
use aurora_txn::{Database, Isolation};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn schema(indexed: bool) -> Schema {
    let def = |t: FieldType, nullable: bool| {
        let d = FieldDefinition::new(t);
        let d = if indexed { d.indexed() } else { d };
        if nullable {
            d.nullable()
        } else {
            d
        }
    };
    Schema::new()
        .field("n", def(FieldType::Int, false))
        .field("x", def(FieldType::Float, true))
        .field("s", def(FieldType::String, true))
        .field("tags", def(FieldType::Array, true))
}

fn make(i: u8, n: i64, x: Option<i8>, s: Option<u8>, tags: Vec<u8>) -> Document {
    let mut d = doc! { "n": n };
    if let Some(x) = x {
        d.set("x", f64::from(x) / 2.0);
    }
    if let Some(s) = s {
        d.set("s", ["apple", "apricot", "banana", "Äpfel", "日本", ""][s as usize % 6]);
    }
    if !tags.is_empty() {
        d.set("tags", tags.iter().map(|t| i64::from(*t % 4)).collect::<Vec<_>>());
    }
    d.id(DocId::text(&format!("d{i:02}")).unwrap())
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![(-3i64..8).prop_map(Value::Int), (-6i8..16).prop_map(|x| Value::Float(f64::from(x) / 2.0)),]
}

fn leaf() -> impl Strategy<Value = Filter> {
    let field = prop_oneof![Just("n"), Just("x")];
    prop_oneof![
        (field.clone(), value()).prop_map(|(f, v)| Filter::Eq(f.into(), v)),
        (field.clone(), value()).prop_map(|(f, v)| Filter::Ne(f.into(), v)),
        (field.clone(), value()).prop_map(|(f, v)| Filter::Gt(f.into(), v)),
        (field.clone(), value()).prop_map(|(f, v)| Filter::Lte(f.into(), v)),
        (field.clone(), value(), value()).prop_map(|(f, a, b)| Filter::Between(f.into(), a, b)),
        (field.clone(), prop::collection::vec(value(), 0..3)).prop_map(|(f, vs)| Filter::In(f.into(), vs)),
        // Long enough to be matched through a hash set.
        (field, prop::collection::vec(value(), 9..14)).prop_map(|(f, vs)| Filter::In(f.into(), vs)),
        prop_oneof![Just("ap"), Just("Ä"), Just(""), Just("na")].prop_map(|p| Filter::StartsWith("s".into(), p.into())),
        prop_oneof![Just("apple"), Just("banana"), Just("")].prop_map(|v| Filter::Eq("s".into(), v.into())),
        prop_oneof![Just("apricot"), Just("日本")].prop_map(|v| Filter::Gte("s".into(), v.into())),
        prop_oneof![Just("an"), Just("本")].prop_map(|p| Filter::Contains("s".into(), p.into())),
        (0i64..4).prop_map(|t| Filter::InArray("tags".into(), Value::Int(t))),
        Just(Filter::IsNull("x".into())),
        Just(Filter::HasField("s".into())),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    // Half conjunctions of leaves (what the planner serves from indexes),
    // half arbitrary trees.
    prop_oneof![prop::collection::vec(leaf(), 1..4).prop_map(Filter::And), nested()]
}

fn nested() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 1..3).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, i64, Option<i8>, Option<u8>, Vec<u8>),
    Delete(u8),
    /// Update operators on an existing document (skipped if it is absent).
    Bump(u8, i64, u8),
}

/// The operators of [`Op::Bump`]: move `n`, push one tag and pull another,
/// and unset `x` or set `s` if absent.
fn bump(by: i64, tag: u8) -> Update {
    let u = Update::new()
        .increment("n", by)
        .push("tags", i64::from(tag % 4))
        .pull("tags", i64::from(tag.wrapping_add(1) % 4));
    if tag.is_multiple_of(2) {
        u.unset("x")
    } else {
        u.set_if_absent("s", "banana")
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..24, -3i64..8, prop::option::of(-6i8..16), prop::option::of(0u8..6), prop::collection::vec(any::<u8>(), 0..3))
            .prop_map(|(i, n, x, s, t)| Op::Put(i, n, x, s, t)),
        1 => (0u8..24).prop_map(Op::Delete),
        1 => (0u8..24, -2i64..3, any::<u8>()).prop_map(|(i, by, tag)| Op::Bump(i, by, tag)),
    ]
}

fn naive(docs: &BTreeMap<DocId, Document>, q: &QuerySpec) -> Vec<DocId> {
    let mut m: Vec<&Document> = docs.values().filter(|d| q.filter.matches(d)).collect();
    m.sort_by(|a, b| {
        let mut o = std::cmp::Ordering::Equal;
        for (f, dir) in &q.order {
            let c = a.get_path(f).unwrap_or(&Value::Null).cmp(b.get_path(f).unwrap_or(&Value::Null));
            o = if *dir == Order::Desc { c.reverse() } else { c };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        let c = a.id.cmp(&b.id);
        if q.order.first().is_some_and(|(_, d)| *d == Order::Desc) { c.reverse() } else { c }.then(o)
    });
    m.into_iter().skip(q.offset).take(q.limit.unwrap_or(usize::MAX)).map(|d| d.id.clone()).collect()
}

#[derive(Debug, Clone)]
struct QuerySpec {
    filter: Filter,
    order: Vec<(String, Order)>,
    offset: usize,
    limit: Option<usize>,
}

fn spec() -> impl Strategy<Value = QuerySpec> {
    prop_oneof![3 => random_spec(), 1 => compound_spec()]
}

/// Queries shaped for the compound indexes `(n, x)`, `(s, n)`, `(x, s, n)`
/// and `(tags, n)`: an equality on leading fields, maybe a range on the
/// next, ordered by the rest (or not quite), with an offset and a limit.
fn compound_spec() -> impl Strategy<Value = QuerySpec> {
    let dir = || prop_oneof![Just(Order::Asc), Just(Order::Desc)];
    let s_value = prop_oneof![Just("apple"), Just("banana"), Just("")];
    let shape = prop_oneof![
        (-3i64..8, prop::option::of(value()), dir()).prop_map(|(n, lo, d)| {
            let mut f = vec![Filter::Eq("n".into(), Value::Int(n))];
            f.extend(lo.map(|v| Filter::Gte("x".into(), v)));
            (f, vec![("x", d)])
        }),
        (s_value, prop::option::of(value()), dir()).prop_map(|(s, hi, d)| {
            let mut f = vec![Filter::Eq("s".into(), s.into())];
            f.extend(hi.map(|v| Filter::Lt("n".into(), v)));
            (f, vec![("n", d)])
        }),
        (value(), dir(), dir()).prop_map(|(x, d1, d2)| (vec![Filter::Eq("x".into(), x)], vec![("s", d1), ("n", d2)])),
        (dir(), leaf()).prop_map(|(d, extra)| (vec![extra], vec![("n", d), ("x", d)])),
        (0i64..4, dir())
            .prop_map(|(t, d)| (vec![Filter::Eq("tags".into(), Value::Array(vec![Value::Int(t)]))], vec![("n", d)])),
    ];
    (shape, 0usize..3, prop::option::of(0usize..5)).prop_map(|((filter, order), offset, limit)| QuerySpec {
        filter: Filter::And(filter),
        order: order.into_iter().map(|(f, o)| (f.to_string(), o)).collect(),
        offset,
        limit,
    })
}

fn random_spec() -> impl Strategy<Value = QuerySpec> {
    let order = prop::collection::vec(
        (prop_oneof![Just("n"), Just("x"), Just("s")], prop_oneof![Just(Order::Asc), Just(Order::Desc)]),
        0..3,
    );
    (filter(), order, 0usize..4, prop::option::of(0usize..6)).prop_map(|(filter, order, offset, limit)| QuerySpec {
        filter,
        order: order.into_iter().map(|(f, o)| (f.to_string(), o)).collect(),
        offset,
        limit,
    })
}

/// Every hint worth trying on the test collections.
fn hints() -> Vec<Hint> {
    vec![
        Hint::Scan,
        Hint::index("n"),
        Hint::index("x"),
        Hint::index("s"),
        Hint::compound(["n", "x"]),
        Hint::compound(["s", "n"]),
        Hint::compound(["x", "s", "n"]),
    ]
}

/// Projections: none of the sort fields, some, or none at all.
fn select() -> impl Strategy<Value = Vec<&'static str>> {
    prop_oneof![
        Just(vec![]),
        Just(vec!["tags"]),
        Just(vec!["s"]),
        Just(vec!["n", "x"]),
        Just(vec!["n", "x", "s", "tags"])
    ]
}

fn build(q: &QuerySpec, collection: &str) -> Query {
    let mut query = Query::new(collection).where_filter(q.filter.clone()).offset(q.offset);
    for (f, o) in &q.order {
        query = query.order_by(f, *o);
    }
    if let Some(l) = q.limit {
        query = query.limit(l);
    }
    query
}

/// Applies `ops` to an indexed, a plain and a compound-indexed collection
/// and to the model.
fn populate(ops: &[Op]) -> (tempfile::TempDir, Database, BTreeMap<DocId, Document>) {
    let dir = tempfile::tempdir().unwrap();
    let docs = DocumentStore::open(dir.path(), StoreConfig::default(), DocumentStoreConfig::default()).unwrap();
    let collections = Collections::open(docs, IndexConfig::default()).unwrap();
    collections.create_collection("indexed", schema(true)).unwrap();
    collections.create_collection("plain", schema(false)).unwrap();
    // Compound indexes only: two declared in the schema, two built online
    // once the documents are in (below).
    let declared = schema(false).compound_index(["n", "x"], false).compound_index(["tags", "n"], false);
    collections.create_collection("compound", declared).unwrap();
    let db = Database::without_sink(collections);
    let mut model: BTreeMap<DocId, Document> = BTreeMap::new();
    for op in ops {
        db.transaction(|tx| {
            match op {
                Op::Put(i, n, x, s, t) => {
                    let d = make(*i, *n, *x, *s, t.clone());
                    tx.upsert("indexed", d.clone())?;
                    tx.upsert("plain", d.clone())?;
                    tx.upsert("compound", d)?;
                }
                Op::Delete(i) => {
                    let id = DocId::text(&format!("d{i:02}")).unwrap();
                    tx.delete("indexed", &id)?;
                    tx.delete("plain", &id)?;
                    tx.delete("compound", &id)?;
                }
                Op::Bump(i, by, tag) => {
                    let id = DocId::text(&format!("d{i:02}")).unwrap();
                    if model.contains_key(&id) {
                        for c in COLLECTIONS {
                            tx.update_with(c, &id, &bump(*by, *tag))?;
                        }
                    }
                }
            }
            Ok(())
        })
        .unwrap();
        match op {
            Op::Put(i, n, x, s, t) => {
                let d = make(*i, *n, *x, *s, t.clone());
                model.insert(d.id.clone(), d);
            }
            Op::Delete(i) => {
                model.remove(&DocId::text(&format!("d{i:02}")).unwrap());
            }
            Op::Bump(i, by, tag) => {
                if let Some(d) = model.get_mut(&DocId::text(&format!("d{i:02}")).unwrap()) {
                    bump(*by, *tag).apply(d).unwrap();
                }
            }
        }
    }
    for fields in [&["s", "n"][..], &["x", "s", "n"][..]] {
        db.collections().create_compound_index("compound", fields, false).unwrap().wait().unwrap();
    }
    (dir, db, model)
}

const COLLECTIONS: [&str; 3] = ["indexed", "plain", "compound"];

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn engine_equals_naive_evaluation(ops in prop::collection::vec(op(), 1..40), queries in prop::collection::vec(spec(), 1..8)) {
        let (_dir, db, model) = populate(&ops);
        for q in &queries {
            let want = naive(&model, q);
            // Queries run in Serializable transactions (reads recorded) and
            // in Snapshot ones (every embedded query's: nothing recorded).
            for (collection, isolation) in COLLECTIONS.into_iter().flat_map(|c| [(c, Isolation::Serializable), (c, Isolation::Snapshot)]) {
                let mut tx = db.begin_with(isolation).unwrap();
                let (got, plan) = build(q, collection).run(&mut tx).unwrap();
                let got: Vec<DocId> = got.into_iter().map(|d| d.id).collect();
                prop_assert_eq!(&got, &want, "{} with plan {:?} for {:?}", collection, plan.access, q);
                // count / exists / ids (from an index alone where it can).
                let all = naive(&model, &QuerySpec { offset: 0, limit: None, ..q.clone() });
                prop_assert_eq!(build(q, collection).count(&mut tx).unwrap(), all.len() as u64, "count {:?}", q);
                prop_assert_eq!(build(q, collection).exists(&mut tx).unwrap(), all.len() > q.offset, "exists {:?}", q);
                prop_assert_eq!(&build(q, collection).ids(&mut tx).unwrap(), &want, "ids {:?}", q);
                let shared: Vec<DocId> = build(q, collection).collect_shared(&mut tx).unwrap().iter().map(|d| d.id.clone()).collect();
                prop_assert_eq!(&shared, &want, "collect_shared {:?}", q);
                // Hints change the plan, never the result; a hint the query
                // cannot use is a typed error.
                for hint in hints() {
                    match build(q, collection).hint(hint.clone()).run(&mut tx) {
                        Ok((got, plan)) => {
                            let got: Vec<DocId> = got.into_iter().map(|d| d.id).collect();
                            prop_assert_eq!(&got, &want, "{} hinted {:?}, plan {:?}, for {:?}", collection, hint, plan.access, q);
                            if hint == Hint::Scan {
                                prop_assert_eq!(plan.access, aurora_query::Access::FullScan);
                            }
                        }
                        Err(QueryError::UnusableHint { .. }) => prop_assert!(hint != Hint::Scan),
                        Err(e) => panic!("{collection} hinted {hint:?}: {e}"),
                    }
                }
                if q.order.is_empty() {
                    // Streaming yields the same documents (in id order) lazily.
                    let streamed: Vec<DocId> = build(q, collection).stream(&mut tx).unwrap().map(|d| d.unwrap().id).collect();
                    prop_assert_eq!(&streamed, &want, "stream of {} for {:?}", collection, q);
                }
            }
            // Inside a transaction, the query sees the transaction's own writes.
            let mut tx = db.begin().unwrap();
            let extra = make(99, 5, Some(3), Some(0), vec![1]);
            tx.upsert("indexed", extra.clone()).unwrap();
            let victim = model.keys().next().cloned();
            if let Some(v) = &victim { tx.delete("indexed", v).unwrap(); }
            let mut overlay = model.clone();
            overlay.insert(extra.id.clone(), extra);
            if let Some(v) = &victim { overlay.remove(v); }
            let got: Vec<DocId> = build(q, "indexed").ids(&mut tx).unwrap();
            prop_assert_eq!(got, naive(&overlay, q), "own writes, {:?}", q);
        }
    }

    /// Keyset paging through every match, page by page, with a projection
    /// that may drop the sort fields, any order (several fields, asc/desc,
    /// ties broken by id, nulls and missing fields), yields exactly the
    /// naive order: nothing lost, nothing repeated.
    #[test]
    fn keyset_pages_equal_naive_order(
        ops in prop::collection::vec(op(), 1..40),
        pages in prop::collection::vec((spec(), 1usize..5, select()), 1..6),
    ) {
        let (_dir, db, model) = populate(&ops);
        for (q, page_size, select) in &pages {
            let q = QuerySpec { offset: 0, limit: None, ..q.clone() };
            let want = naive(&model, &q);
            for collection in COLLECTIONS {
                let mut got: Vec<DocId> = Vec::new();
                let mut cursor = None;
                loop {
                    let mut query = build(&q, collection).limit(*page_size).select(select.iter().copied());
                    if let Some(c) = cursor.take() {
                        query = query.after(c);
                    }
                    let mut tx = db.begin().unwrap();
                    let page = query.page(&mut tx).unwrap();
                    prop_assert!(page.items.len() <= *page_size);
                    for d in &page.items {
                        prop_assert!(d.fields.keys().all(|k| select.contains(&k.as_str())), "projected: {:?}", d);
                    }
                    got.extend(page.items.into_iter().map(|d| d.id));
                    prop_assert!(got.len() <= want.len(), "{} pages ran past the {} matches: {:?} for {:?}", collection, want.len(), got, q);
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                prop_assert_eq!(&got, &want, "{} paged by {} with select {:?} for {:?}", collection, page_size, select, q);
            }
        }
    }
}

fn cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32)
}
