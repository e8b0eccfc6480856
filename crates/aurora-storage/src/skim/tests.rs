//! The reader against whole-document decoding: same values for every
//! path, and an error exactly where decoding fails.

use super::FieldReader;
use crate::error::StorageError;
use crate::format;
use aurora_core::{DocId, Document, Timestamp, Value, MAX_DECODE_DEPTH};
use proptest::prelude::*;

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), any::<i64>()].prop_map(Value::Int),
        prop_oneof![Just(f64::NAN), Just(-0.0), any::<f64>()].prop_map(Value::Float),
        ".{0,12}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
        any::<u128>().prop_map(|u| Value::Uuid(uuid::Uuid::from_u128(u))),
        any::<i64>().prop_map(|t| Value::Timestamp(Timestamp::from_micros(t))),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-d]{1,2}", Just(String::new()), Just("é".to_string())]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(name(), inner, 0..4).prop_map(Value::Object),
        ]
    })
}

fn document() -> impl Strategy<Value = Document> {
    let id = prop_oneof![
        any::<u128>().prop_map(|u| DocId::Uuid(uuid::Uuid::from_u128(u))),
        "[a-z0-9]{1,8}".prop_map(|s| DocId::text(&s).unwrap()),
    ];
    (id, proptest::collection::btree_map(name(), value(), 0..6)).prop_map(|(id, fields)| Document { id, fields })
}

/// Paths into a document: top-level names, nested names, array indexes.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![name(), (name(), name()).prop_map(|(a, b)| format!("{a}.{b}")), name().prop_map(|a| format!("{a}.0"))]
}

/// Whether the reader and the decoder agree on `stored`: both fail, or
/// both succeed and every path reads alike.
fn agrees(stored: &[u8], names: &[String], paths: &[String]) -> Result<(), TestCaseError> {
    let mut reader = FieldReader::new(names);
    let read = reader.read(b"k", stored);
    match format::decode::<Document>(b"k", stored) {
        Ok(doc) => {
            prop_assert!(read.is_ok(), "decodes but the reader says {:?}", read);
            for p in paths.iter().chain(names) {
                let head = p.split_once('.').map_or(p.as_str(), |(h, _)| h);
                let expected = if names.iter().any(|n| n == head) { doc.get_path(p) } else { None };
                prop_assert_eq!(
                    reader.get_path(p).map(format::encode).transpose().unwrap(),
                    expected.map(format::encode).transpose().unwrap(),
                    "path {}",
                    p
                );
            }
        }
        Err(e) => {
            prop_assert!(matches!(e, StorageError::Corrupt { .. } | StorageError::UnknownFormat { .. }), "{}", e);
            let got = read.expect_err("the decoder fails, so must the reader");
            prop_assert!(matches!(got, StorageError::Corrupt { .. } | StorageError::UnknownFormat { .. }), "{got}");
            for p in paths {
                prop_assert!(reader.get_path(p).is_none(), "nothing is left after an error");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn reads_what_decoding_reads(
        doc in document(),
        names in proptest::collection::vec(name(), 0..4),
        paths in proptest::collection::vec(path(), 0..6),
    ) {
        let mut names = names;
        names.extend(doc.fields.keys().take(2).cloned());
        agrees(&format::encode(&doc).unwrap(), &names, &paths)?;
    }

    #[test]
    fn damaged_documents_fail_where_decoding_fails(
        doc in document(),
        names in proptest::collection::vec(name(), 0..4),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut stored = format::encode(&doc).unwrap();
        for (at, byte) in edits {
            let i = at.index(stored.len());
            stored[i] = byte;
        }
        if truncate {
            stored.truncate(cut.index(stored.len() + 1));
        }
        agrees(&stored, &names, &["a".to_string(), "b.c".to_string()])?;
    }

    #[test]
    fn random_bytes_are_a_document_or_a_typed_error(
        body in proptest::collection::vec(any::<u8>(), 0..64),
        names in proptest::collection::vec(name(), 0..3),
    ) {
        let mut stored = vec![format::FORMAT_VERSION];
        stored.extend(body);
        agrees(&stored, &names, &["a".to_string()])?;
    }
}

#[test]
fn repeated_names_keep_the_last_value_as_decoding_does() {
    // id: text "x"; two fields both named "a".
    let mut stored = vec![format::FORMAT_VERSION, 1, 1, b'x', 2];
    stored.extend([1, b'a', 2, 2]); // a: Int(1)
    stored.extend([1, b'a', 4, 2, b'h', b'i']); // a: "hi"
    let decoded = format::decode::<Document>(b"k", &stored).unwrap();
    let mut reader = FieldReader::new(["a"]);
    reader.read(b"k", &stored).unwrap();
    assert_eq!(reader.get_path("a"), decoded.get("a"));
    assert_eq!(reader.get_path("a"), Some(&Value::from("hi")));
}

#[test]
fn nesting_past_the_decode_limit_is_corrupt_in_a_skipped_field_too() {
    let mut deep = Value::Null;
    for _ in 0..MAX_DECODE_DEPTH {
        deep = Value::Array(vec![deep]);
    }
    let mut doc = Document::with_id(DocId::text("x").unwrap());
    doc.set("deep", deep);
    let stored = format::encode(&doc).unwrap();
    assert!(matches!(format::decode::<Document>(b"k", &stored), Err(StorageError::Corrupt { .. })));
    for names in [&["deep"][..], &["other"][..], &[][..]] {
        let err = FieldReader::new(names).read(b"users/x", &stored).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { ref key, .. } if key.contains("users/x")), "{err}");
    }
    let mut unknown = stored.clone();
    unknown[0] = 99;
    let err = FieldReader::new(["deep"]).read(b"k", &unknown).unwrap_err();
    assert!(matches!(err, StorageError::UnknownFormat { version: 99, .. }), "{err}");
    assert!(matches!(FieldReader::new(["a"]).read(b"k", &[]), Err(StorageError::Corrupt { .. })));
}
