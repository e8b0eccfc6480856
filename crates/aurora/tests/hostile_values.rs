//! Property test: hostile values pushed through the document entry points
//! (`insert_into`, `upsert`, transactions, `Document::from_serde` of
//! `serde_json` input) either round-trip exactly — byte for byte in the
//! stored encoding — or are refused with a typed error and nothing is
//! written; never a panic; and the database reopens afterwards with exactly
//! the accepted documents. Values: deep (past the nesting limit), wide,
//! NaN / ±infinity / −0.0, integer extremes, odd strings and field names
//! (NUL, control characters, long), odd text ids.
//! The same values go through filters (queries on an indexed and an
//! unindexed field, updates by filter) and listeners: each either answers
//! or is refused with a typed error, and a listener hears a write exactly
//! when the same filter as a query finds the written document.
//! Typed structs (`insert_typed` / `get_typed`) with integer extremes, every
//! `u64`, NaN / ±infinity / −0.0, odd strings and map keys round-trip
//! exactly (floats bit for bit) or, for a `u64` above `i64::MAX` or a
//! refused name, are refused with a typed error and nothing is written.
//! Cases: `AURORA_PROPTEST_CASES` (default 16).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{Aurora, DocId, Document, Error, EventFilter, Filter, Value};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(16)
}

fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("\0".to_string()),
        Just("a\u{1}b\nc".to_string()),
        Just("x".repeat(70_000)),
        Just("𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ñ".to_string()),
        "[a-z]{1,8}",
        ".{0,16}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1), any::<i64>()].prop_map(Value::Int),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(f64::MIN_POSITIVE),
            Just(f64::MAX),
            any::<f64>()
        ]
        .prop_map(Value::Float),
        odd_string().prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Value::Bytes),
        any::<u128>().prop_map(|u| Value::Uuid(uuid::Uuid::from_u128(u))),
        any::<i64>().prop_map(|t| Value::Timestamp(aurora::Timestamp::from_micros(t))),
    ]
}

/// A value nested `depth` levels around a scalar (arrays and objects).
fn deep(depth: usize, leaf: Value) -> Value {
    let mut v = leaf;
    for i in 0..depth {
        v = if i % 2 == 0 { Value::Array(vec![v]) } else { Value::Object([("k".to_string(), v)].into()) };
    }
    v
}

fn value() -> impl Strategy<Value = Value> {
    let tree = scalar().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(odd_string(), inner, 0..6).prop_map(Value::Object),
        ]
    });
    prop_oneof![
        8 => tree,
        1 => (90usize..110, scalar()).prop_map(|(d, leaf)| deep(d, leaf)),
        1 => (1_000usize..5_000, scalar()).prop_map(|(d, leaf)| deep(d, leaf)),
        1 => proptest::collection::vec(scalar(), 1_000..3_000).prop_map(Value::Array),
    ]
}

fn id() -> impl Strategy<Value = DocId> {
    prop_oneof![
        4 => Just(()).prop_map(|()| DocId::new()),
        // Odd texts that make valid ids (invalid ones cannot be built).
        1 => odd_string().prop_filter_map("a valid text id", |s| DocId::text(&s).ok()),
    ]
}

fn document() -> impl Strategy<Value = Document> {
    (id(), proptest::collection::btree_map(odd_string(), value(), 0..5))
        .prop_map(|(id, fields)| Document { id, fields })
}

/// Every refusal must be one of the typed input errors.
fn typed_refusal(e: &Error) -> bool {
    use aurora::storage::StorageError;
    matches!(
        e,
        Error::Core(_)
            | Error::Storage(StorageError::TooLarge { .. } | StorageError::InvalidName { .. })
            | Error::Index(_)
            | Error::UniqueViolation { .. }
            | Error::SchemaViolation { .. }
            | Error::DocumentExists { .. }
    )
}

fn encoding(d: &Document) -> Vec<u8> {
    aurora::storage::format::encode(d).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn hostile_documents_round_trip_or_are_refused_and_the_database_reopens(
        docs in proptest::collection::vec((document(), 0u8..3), 1..6)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            let db = Aurora::open(dir.path()).await.unwrap();
            db.new_collection("h", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
            let mut accepted: Vec<(DocId, Vec<u8>)> = Vec::new();
            for (doc, path) in docs {
                let expected = (doc.validate().is_ok()).then(|| (doc.id.clone(), encoding_if_small(&doc)));
                let before = db.database().collections().documents().store().revision();
                let outcome = match path {
                    0 => db.insert_into("h", doc).await.map(drop),
                    1 => db.upsert("h", doc).await,
                    _ => {
                        let mut tx = db.begin().unwrap();
                        match tx.insert("h", doc) {
                            Ok(_) => tx.commit().await.map(drop),
                            Err(e) => Err(Error::from(e)),
                        }
                    }
                };
                match outcome {
                    Ok(()) => {
                        let (id, bytes) = expected.expect("an invalid document was accepted");
                        let stored = db.get_document("h", &id).await.unwrap().expect("stored");
                        if let Some(bytes) = &bytes {
                            prop_assert_eq!(&encoding(&stored), bytes, "round trip is exact");
                        }
                        accepted.retain(|(a, _)| *a != id);
                        accepted.push((id, encoding(&stored)));
                    }
                    Err(e) => {
                        prop_assert!(typed_refusal(&e), "untyped refusal: {}", e);
                        prop_assert_eq!(db.database().collections().documents().store().revision(), before, "a refusal wrote nothing: {}", e);
                    }
                }
            }
            db.close().await.unwrap();
            let db = Aurora::open(dir.path()).await.unwrap();
            for (id, bytes) in &accepted {
                let stored = db.get_document("h", id).await.unwrap().expect("still there after reopen");
                prop_assert_eq!(&encoding(&stored), bytes);
            }
            prop_assert_eq!(db.query("h").count().await.unwrap(), accepted.len() as u64);
            db.close().await.unwrap();
            Ok(())
        })?;
    }

    #[test]
    fn hostile_values_in_filters_and_listeners_answer_or_are_refused_and_agree(
        probes in proptest::collection::vec((prop_oneof![Just("k".to_string()), Just("free".to_string()), odd_string()], value()), 1..6)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            let db = Aurora::open(dir.path()).await.unwrap();
            db.new_collection("h", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
            db.create_index("h", "k", false).await.unwrap();
            for (field, value) in probes {
                let filter = Filter::Eq(field.clone(), value.clone());
                let listener = db.listen_filtered("h", EventFilter::Matches(filter.clone()));
                let mut listener = match listener {
                    Ok(l) => Some(l),
                    Err(e) => {
                        prop_assert!(typed_refusal(&e), "untyped listener refusal: {}", e);
                        None
                    }
                };
                let doc = Document { id: DocId::new(), fields: [(field.clone(), value.clone())].into() };
                let written = db.insert_into("h", doc).await;
                if let Err(e) = &written {
                    prop_assert!(typed_refusal(e), "untyped insert refusal: {}", e);
                }
                let f = filter.clone();
                let found = match db.query("h").filter(move |_| f).collect().await {
                    Ok(docs) => Some(docs.iter().map(|d| d.id.clone()).collect::<Vec<_>>()),
                    Err(e) => {
                        prop_assert!(typed_refusal(&e), "untyped query refusal: {}", e);
                        None
                    }
                };
                // Updates by the same filter: answer or typed refusal.
                let f = filter.clone();
                if let Err(e) = db.query("h").filter(move |_| f).update(aurora::doc! { "touched": true }).await {
                    prop_assert!(typed_refusal(&e), "untyped update refusal: {}", e);
                }
                if let (Ok(id), Some(found), Some(listener)) = (&written, &found, listener.as_mut()) {
                    let heard = listener.try_recv_commit();
                    let heard_insert = matches!(&heard, Some(Ok(c)) if c.events.iter().any(|e| e.id == *id && e.change_type == aurora::ChangeType::Insert));
                    prop_assert_eq!(heard_insert, found.contains(id),
                        "listener and query disagree on {:?} = {}", field, value.render(200));
                }
            }
            db.close().await.unwrap();
            let db = Aurora::open(dir.path()).await.unwrap();
            db.query("h").count().await.unwrap();
            db.close().await.unwrap();
            Ok(())
        })?;
    }

    #[test]
    fn hostile_typed_structs_round_trip_exactly_or_are_refused(
        structs in proptest::collection::vec(hostile_struct(), 1..6)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            let db = Aurora::open(dir.path()).await.unwrap();
            db.new_collection("t", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
            for h in structs {
                let before = db.database().collections().documents().store().revision();
                let plain_keys = h.scores.keys().all(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase()));
                match db.insert_typed("t", &h).await {
                    Ok(id) => {
                        prop_assert!(h.count <= i64::MAX as u64, "a u64 above i64::MAX was accepted");
                        let back: Hostile = db.get_typed("t", &id).await.unwrap().expect("stored");
                        prop_assert!(same(&back, &h), "round trip changed {:?} into {:?}", h, back);
                    }
                    Err(e) => {
                        prop_assert!(matches!(e, Error::Core(_)), "untyped refusal: {}", e);
                        prop_assert!(h.count > i64::MAX as u64 || !plain_keys, "refused a valid struct: {}", e);
                        prop_assert_eq!(db.database().collections().documents().store().revision(), before);
                    }
                }
            }
            db.close().await.unwrap();
            Ok(())
        })?;
    }

    #[test]
    fn json_input_converts_exactly_or_is_refused(json in "\\PC{0,200}") {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) {
            match Document::from_serde(&v) {
                Ok(d) => {
                    let back: serde_json::Value = d.decode().unwrap();
                    prop_assert_eq!(back, v);
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}

/// The expected stored encoding, when the document is small enough to be
/// accepted at all (larger ones may be refused as too large).
fn encoding_if_small(d: &Document) -> Option<Vec<u8>> {
    let bytes = encoding(d);
    (bytes.len() < 16 << 20).then_some(bytes)
}

/// A struct with every kind of field serde can hand Aurora.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
struct Hostile {
    small: i64,
    count: u64,
    ratio: f64,
    maybe: Option<f64>,
    text: String,
    tags: Vec<String>,
    scores: std::collections::BTreeMap<String, f64>,
    at: aurora::Timestamp,
    owner: uuid::Uuid,
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(-0.0), Just(f64::MAX), any::<f64>()]
}

fn hostile_struct() -> impl Strategy<Value = Hostile> {
    (
        prop_oneof![Just(i64::MIN), Just(i64::MAX), any::<i64>()],
        prop_oneof![Just(u64::MAX), Just(i64::MAX as u64), Just(i64::MAX as u64 + 1), any::<u64>(), 0u64..1_000],
        float(),
        proptest::option::of(float()),
        odd_string(),
        proptest::collection::vec(odd_string(), 0..4),
        proptest::collection::btree_map(prop_oneof![3 => "[a-z]{1,8}", 1 => odd_string()], float(), 0..4),
        any::<i64>(),
        any::<u128>(),
    )
        .prop_map(|(small, count, ratio, maybe, text, tags, scores, at, owner)| Hostile {
            small,
            count,
            ratio,
            maybe,
            text,
            tags,
            scores,
            at: aurora::Timestamp::from_micros(at),
            owner: uuid::Uuid::from_u128(owner),
        })
}

/// Equality with floats compared bit for bit (NaN equals itself, −0.0 is
/// not 0.0).
fn same(a: &Hostile, b: &Hostile) -> bool {
    let bits = |m: &std::collections::BTreeMap<String, f64>| {
        m.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect::<Vec<_>>()
    };
    a.small == b.small
        && a.count == b.count
        && a.ratio.to_bits() == b.ratio.to_bits()
        && a.maybe.map(f64::to_bits) == b.maybe.map(f64::to_bits)
        && a.text == b.text
        && a.tags == b.tags
        && bits(&a.scores) == bits(&b.scores)
        && a.at == b.at
        && a.owner == b.owner
}
