//! Model test: random inserts, replaces, deletes and reopens on a collection
//! with unique, plain, array and nested indexes, and compound ones (over a
//! nested field, and over an array indexed whole). After every step each index
//! equals one rebuilt from the documents, every lookup equals a naive scan,
//! and unique violations happen exactly when the model says so (and write
//! nothing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{doc, DocId, Document, Value};
use aurora_index::{IndexConfig, IndexError};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::Bound;

#[derive(Debug, Clone)]
enum Op {
    Put { id: u8, email: Option<u8>, age: Option<i64>, tags: Vec<u8>, city: Option<u8> },
    Delete(u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..8, prop::option::of(0u8..5), prop::option::of(0i64..6), prop::collection::vec(0u8..4, 0..3), prop::option::of(0u8..3))
            .prop_map(|(id, email, age, tags, city)| Op::Put { id, email, age, tags, city }),
        3 => (0u8..8).prop_map(Op::Delete),
        1 => Just(Op::Reopen),
    ]
}

fn make(id: u8, email: Option<u8>, age: Option<i64>, tags: &[u8], city: Option<u8>) -> Document {
    let mut d = doc! { "tags": tags.iter().map(|t| format!("t{t}")).collect::<Vec<_>>() };
    if let Some(e) = email {
        d.set("email", format!("u{e}@x.io"));
    }
    if let Some(a) = age {
        d.set("age", a);
    }
    if let Some(c) = city {
        d.set("address", aurora_core::value!({ "city": format!("c{c}") }));
    }
    d.id(DocId::text(&format!("doc{id}")).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common_cases(), ..ProptestConfig::default() })]

    #[test]
    fn indexes_match_a_rebuild_after_every_step(ops in prop::collection::vec(op(), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = common::open(dir.path(), IndexConfig::default());
        let schema = common::users_schema().compound_index(["age", "address.city"], false).compound_index(["tags", "age"], false);
        db.create_collection("users", schema).unwrap();
        let mut model: BTreeMap<u8, Document> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Put { id, email, age, tags, city } => {
                    let d = make(id, email, age, &tags, city);
                    let clash = email.is_some_and(|e| {
                        model.iter().any(|(other, od)| *other != id && od.get("email") == Some(&Value::from(format!("u{e}@x.io"))))
                    });
                    match db.put("users", d.clone()) {
                        Ok(_) => { prop_assert!(!clash, "put of doc{} should have violated uniqueness", id); model.insert(id, d); }
                        Err(IndexError::UniqueViolation { field, .. }) => { prop_assert!(clash); prop_assert_eq!(field, "email"); }
                        Err(e) => panic!("put: {e}"),
                    }
                }
                Op::Delete(id) => {
                    let existed = db.delete("users", &DocId::text(&format!("doc{id}")).unwrap()).unwrap();
                    prop_assert_eq!(existed, model.remove(&id).is_some());
                }
                Op::Reopen => {
                    db.documents().store().close().unwrap();
                    drop(db);
                    db = common::open(dir.path(), IndexConfig::default());
                }
            }
            let stored: BTreeMap<DocId, Document> = db.documents().scan("users").unwrap().map(|d| { let d = d.unwrap(); (d.id.clone(), d) }).collect();
            prop_assert_eq!(stored.len(), model.len());
            for d in model.values() {
                prop_assert_eq!(stored.get(&d.id), Some(d));
            }
            common::check_indexes(&db, "users");
            // Ranges agree with a naive filter too.
            let got: Vec<DocId> = db.range("users", "age", Bound::Included(&Value::Int(1)), Bound::Excluded(&Value::Float(3.5))).unwrap();
            let mut want: Vec<(i64, DocId)> = model.values().filter_map(|d| d.get("age").and_then(Value::as_i64).filter(|a| (1..=3).contains(a)).map(|a| (a, d.id.clone()))).collect();
            want.sort();
            prop_assert_eq!(got, want.into_iter().map(|(_, id)| id).collect::<Vec<_>>());
        }
    }
}

fn common_cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
}
