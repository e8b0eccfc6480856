//! Testing a filter on stored bytes gives the answer testing the decoded
//! document gives, for every filter shape, nested paths included.

use crate::matcher::Matcher;
use aurora_core::filter::Filter;
use aurora_core::{DocId, Document, Value};
use aurora_storage::format;
use aurora_storage::skim::FieldReader;
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![Just("a".to_string()), Just("b".to_string()), Just("c".to_string()), Just("0".to_string())]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..4).prop_map(Value::Int),
        (-6i8..8).prop_map(|x| Value::Float(f64::from(x) / 2.0)),
        prop_oneof![Just("ab"), Just("ba"), Just(""), Just("abc")].prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(name(), inner, 0..3).prop_map(Value::Object),
        ]
    })
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        name(),
        (name(), name()).prop_map(|(a, b)| format!("{a}.{b}")),
        (name(), name(), name()).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        Just(String::new()),
        Just("a.".to_string()),
    ]
}

fn leaf() -> impl Strategy<Value = Filter> {
    prop_oneof![
        Just(Filter::All),
        (path(), value()).prop_map(|(f, v)| Filter::Eq(f, v)),
        (path(), value()).prop_map(|(f, v)| Filter::Ne(f, v)),
        (path(), value()).prop_map(|(f, v)| Filter::Gt(f, v)),
        (path(), value()).prop_map(|(f, v)| Filter::Gte(f, v)),
        (path(), value()).prop_map(|(f, v)| Filter::Lt(f, v)),
        (path(), value()).prop_map(|(f, v)| Filter::Lte(f, v)),
        (path(), scalar(), scalar()).prop_map(|(f, a, b)| Filter::Between(f, a, b)),
        (path(), proptest::collection::vec(scalar(), 0..12)).prop_map(|(f, vs)| Filter::In(f, vs)),
        (path(), "[ab]{0,2}").prop_map(|(f, s)| Filter::Contains(f, s)),
        (path(), "[ab]{0,2}").prop_map(|(f, s)| Filter::StartsWith(f, s)),
        (path(), "[ab]{0,2}").prop_map(|(f, s)| Filter::EndsWith(f, s)),
        (path(), scalar()).prop_map(|(f, v)| Filter::InArray(f, v)),
        path().prop_map(Filter::HasField),
        path().prop_map(Filter::IsNull),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Filter::And),
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

fn document() -> impl Strategy<Value = Document> {
    proptest::collection::btree_map(name(), value(), 0..4)
        .prop_map(|fields| Document { id: DocId::text("d").unwrap(), fields })
}

/// The reader [`FilteredScan`](super::FilteredScan) makes for `filter`.
fn reader_for(filter: &Filter) -> FieldReader {
    FieldReader::new(super::heads(filter))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn stored_bytes_match_like_the_decoded_document(doc in document(), filter in filter()) {
        let stored = format::encode(&doc).unwrap();
        let mut reader = reader_for(&filter);
        reader.read(b"k", &stored).unwrap();
        let matcher = Matcher::new(&filter);
        let expected = filter.matches(&doc);
        prop_assert_eq!(matcher.matches_by(&|p: &str| reader.get_path(p)), expected);
        prop_assert_eq!(matcher.matches(&doc), expected);
    }
}
