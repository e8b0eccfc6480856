//! Model test for schema evolution: random writes, deletes, schema changes
//! (fields added, removed, retyped, made required, nullable, indexed,
//! unique, strict) under each policy, and reopens, against a model that
//! knows only the documents, the schema, its policy and the rules written
//! in `Existing`'s documentation. After every step the database holds
//! exactly the model's documents and schema, every write and change
//! succeeds or fails exactly as the model says (with the error it names),
//! and every index equals one rebuilt from the documents.
//! Writers racing a change are covered by `schema_evolution.rs`
//! (`changes_racing_writers_keep_their_promises`) and the SIGKILL test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_core::{DocId, Document, FieldDefinition, FieldType, Value};
use aurora_index::{Existing, IndexConfig, IndexError, Schema};
use proptest::prelude::*;
use std::collections::BTreeMap;

const FIELDS: [&str; 2] = ["a", "b"];

#[derive(Debug, Clone)]
enum Op {
    Put { id: u8, values: [Option<Value>; 2] },
    Delete(u8),
    Alter { schema: Schema, existing: Existing },
    Reopen,
}

fn value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        3 => (0i64..3).prop_map(|i| Some(Value::Int(i))),
        2 => (0u8..3).prop_map(|i| Some(Value::from(format!("s{i}")))),
    ]
}

fn field_def() -> impl Strategy<Value = Option<FieldDefinition>> {
    let ty = prop_oneof![Just(FieldType::Int), Just(FieldType::String), Just(FieldType::Any)];
    prop::option::of((ty, any::<bool>(), 0u8..3)).prop_map(|d| {
        d.map(|(ty, nullable, index)| {
            let mut def = FieldDefinition::new(ty);
            def.nullable = nullable;
            match index {
                1 => def.indexed(),
                2 => def.unique(),
                _ => def,
            }
        })
    })
}

fn schema() -> impl Strategy<Value = Schema> {
    (field_def(), field_def(), prop::bool::weighted(0.2)).prop_map(|(a, b, strict)| {
        let mut s = Schema::new();
        for (name, def) in FIELDS.iter().zip([a, b]) {
            if let Some(def) = def {
                s = s.field(*name, def);
            }
        }
        if strict {
            s.strict()
        } else {
            s
        }
    })
}

fn policy() -> impl Strategy<Value = Existing> {
    prop_oneof![Just(Existing::Validate), Just(Existing::Fail), Just(Existing::Skip)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..6, value(), value()).prop_map(|(id, a, b)| Op::Put { id, values: [a, b] }),
        2 => (0u8..6).prop_map(Op::Delete),
        3 => (schema(), policy()).prop_map(|(schema, existing)| Op::Alter { schema, existing }),
        1 => Just(Op::Reopen),
    ]
}

fn make(id: u8, values: &[Option<Value>; 2]) -> Document {
    let mut d = Document::new();
    for (name, v) in FIELDS.iter().zip(values) {
        if let Some(v) = v {
            d.set(*name, v.clone());
        }
    }
    d.id(doc_id(id))
}

fn doc_id(id: u8) -> DocId {
    DocId::text(&format!("doc{id}")).unwrap()
}

/// The model: documents, schema, policy, and whether every document fits.
struct Model {
    docs: BTreeMap<u8, Document>,
    schema: Schema,
    existing: Existing,
    validated: bool,
}

impl Model {
    fn fits(schema: &Schema, d: &Document) -> bool {
        schema.validate("c", d).is_ok()
    }

    /// The write rule of `Existing`: fits, or (Skip) rewrites a document
    /// that did not fit.
    fn admits(&self, old: Option<&Document>, new: &Document) -> bool {
        Self::fits(&self.schema, new)
            || (self.existing == Existing::Skip && old.is_some_and(|o| !Self::fits(&self.schema, o)))
    }

    fn unique_fields(schema: &Schema) -> Vec<&str> {
        schema.fields.iter().filter(|(_, d)| d.unique).map(|(p, _)| p.as_str()).collect()
    }

    /// Whether another document holds `new`'s value of a unique field.
    fn collides(&self, id: u8, new: &Document) -> bool {
        Self::unique_fields(&self.schema).into_iter().any(|f| match new.get(f) {
            None | Some(Value::Null) => false,
            Some(v) => self.docs.iter().any(|(other, d)| *other != id && d.get(f) == Some(v)),
        })
    }

    /// Whether stored documents share a value of a field `schema` makes unique.
    fn duplicates_for(&self, schema: &Schema) -> bool {
        Self::unique_fields(schema).into_iter().any(|f| {
            let mut seen = std::collections::BTreeSet::new();
            self.docs.values().filter_map(|d| d.get(f)).filter(|v| **v != Value::Null).any(|v| !seen.insert(v.clone()))
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn schema_changes_and_writes_follow_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = common::open(dir.path(), IndexConfig::default());
        db.create_collection("c", Schema::new()).unwrap();
        let mut model = Model { docs: BTreeMap::new(), schema: Schema::new(), existing: Existing::Validate, validated: true };
        for op in ops {
            match op {
                Op::Put { id, values } => {
                    let new = make(id, &values);
                    let old = model.docs.get(&id);
                    let got = db.put("c", new.clone());
                    if !model.admits(old, &new) {
                        prop_assert!(matches!(got, Err(IndexError::WrongType { .. } | IndexError::MissingField { .. } | IndexError::UnknownField { .. })), "{got:?}");
                    } else if model.collides(id, &new) {
                        prop_assert!(matches!(got, Err(IndexError::UniqueViolation { .. })), "{got:?}");
                    } else {
                        prop_assert!(got.is_ok(), "{got:?}");
                        model.docs.insert(id, new);
                    }
                }
                Op::Delete(id) => {
                    prop_assert_eq!(db.delete("c", &doc_id(id)).unwrap(), model.docs.remove(&id).is_some());
                }
                Op::Alter { schema, existing } => {
                    let nonconforming: Vec<u8> =
                        model.docs.iter().filter(|(_, d)| !Model::fits(&schema, d)).map(|(id, _)| *id).collect();
                    let got = db.alter_schema("c", schema.clone(), existing);
                    if existing == Existing::Validate && !nonconforming.is_empty() {
                        let first = doc_id(nonconforming[0]).to_string();
                        prop_assert!(matches!(&got, Err(IndexError::SchemaChangeRefused { id, .. }) if *id == first), "{got:?}");
                    } else if model.duplicates_for(&schema) {
                        prop_assert!(matches!(got, Err(IndexError::DuplicateValues { .. })), "{got:?}");
                    } else {
                        let change = got.unwrap();
                        prop_assert_eq!(change.nonconforming, nonconforming.len() as u64);
                        let unchanged = model.schema == schema && model.existing == existing && model.validated;
                        prop_assert_eq!(change.changed, !unchanged);
                        model.schema = schema;
                        model.existing = existing;
                        model.validated = nonconforming.is_empty();
                    }
                }
                Op::Reopen => {
                    db.documents().store().close().unwrap();
                    drop(db);
                    db = common::open(dir.path(), IndexConfig::default());
                }
            }
            let def = db.definition("c").unwrap();
            prop_assert_eq!(&def.schema, &model.schema);
            prop_assert_eq!((def.existing, def.validated, def.pending.is_none()), (model.existing, model.validated, true));
            let indexes: Vec<(&str, bool)> = def.indexes.iter().map(|(n, d)| (n.as_str(), d.unique)).collect();
            let declared: Vec<(&str, bool)> = model.schema.indexed_fields().map(|(p, d)| (p, d.unique)).collect();
            prop_assert_eq!(indexes, declared);
            let stored: Vec<Document> = db.documents().scan("c").unwrap().map(Result::unwrap).collect();
            prop_assert_eq!(stored, model.docs.values().cloned().collect::<Vec<_>>());
            common::check_indexes(&db, "c");
        }
    }
}

fn cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
}
