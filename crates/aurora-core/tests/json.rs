//! The plain-JSON form round-trips exactly: every value (floats bit for
//! bit, through JSON text), document and filter; canonical JSON text reads
//! back to the same text; malformed input is a typed error naming where.
//! Cases: `AURORA_PROPTEST_CASES` (default 256).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_core::{CoreError, DocId, Document, Filter, Timestamp, Value};
use proptest::prelude::*;
use serde_json::json;

fn cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        Just("$float".to_string()),
        Just("$uuid".to_string()),
        Just("$date".to_string()),
        Just("$bytes".to_string()),
        Just("$literal".to_string()),
        Just("$gt".to_string()),
        Just("$text".to_string()),
        Just("a/b~c".to_string()),
        ".{0,6}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), any::<i64>()].prop_map(Value::Int),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(1.0),
            Just(f64::MIN_POSITIVE),
            any::<f64>()
        ]
        .prop_map(Value::Float),
        ".{0,12}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
        any::<u128>().prop_map(|u| Value::Uuid(uuid::Uuid::from_u128(u))),
        any::<i64>().prop_map(|t| Value::Timestamp(Timestamp::from_micros(t))),
        (-62_135_596_800_000_000i64..253_402_300_799_999_999).prop_map(|t| Value::Timestamp(Timestamp::from_micros(t))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..4).prop_map(Value::Object),
        ]
    })
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z]{1,5}", "[a-z]{1,3}\\.[a-z]{1,3}", Just("$odd".to_string()), Just("$and".to_string())]
}

fn filter() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![
        Just(Filter::All),
        (field(), value()).prop_map(|(f, v)| Filter::Eq(f, v)),
        (field(), value()).prop_map(|(f, v)| Filter::Ne(f, v)),
        (field(), value()).prop_map(|(f, v)| Filter::Gt(f, v)),
        (field(), value()).prop_map(|(f, v)| Filter::Lte(f, v)),
        (field(), value(), value()).prop_map(|(f, a, b)| Filter::Between(f, a, b)),
        (field(), proptest::collection::vec(value(), 0..4)).prop_map(|(f, vs)| Filter::In(f, vs)),
        (field(), ".{0,6}").prop_map(|(f, s)| Filter::Contains(f, s)),
        (field(), ".{0,6}").prop_map(|(f, s)| Filter::StartsWith(f, s)),
        (field(), value()).prop_map(|(f, v)| Filter::InArray(f, v)),
        field().prop_map(Filter::HasField),
        field().prop_map(Filter::IsNull),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Filter::And),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// Exact equality: the serialized form (floats bit for bit).
fn bytes<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).unwrap()
}

/// Through JSON *text*, as a client would send it.
fn through_text(j: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&serde_json::to_string(j).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn values_round_trip_exactly_through_json_text(v in value()) {
        let text = through_text(&v.to_json());
        let back = Value::from_json(&text).unwrap();
        prop_assert_eq!(bytes(&back), bytes(&v), "{} -> {}", v.render(200), text);
        prop_assert_eq!(back.to_json(), text, "canonical JSON reads back to the same JSON");
    }

    #[test]
    fn documents_round_trip_exactly(
        fields in proptest::collection::btree_map("[a-z]{1,6}", value(), 0..5),
        text_id in proptest::option::of("[a-z0-9-]{1,40}"),
    ) {
        let id = match text_id { Some(t) => DocId::text(&t).unwrap(), None => DocId::new() };
        let d = Document { id, fields };
        let back = Document::from_json(&through_text(&d.to_json())).unwrap();
        prop_assert_eq!(bytes(&back), bytes(&d));
    }

    #[test]
    fn filters_round_trip_exactly(f in filter()) {
        let text = through_text(&f.to_json());
        let back = Filter::from_json(&text).unwrap();
        prop_assert_eq!(bytes(&back), bytes(&f), "{}", text);
    }

    #[test]
    fn arbitrary_json_reads_or_is_refused_without_panicking(text in "\\PC{0,120}") {
        if let Ok(j) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Ok(v) = Value::from_json(&j) {
                prop_assert_eq!(bytes(&Value::from_json(&through_text(&v.to_json())).unwrap()), bytes(&v));
            }
            let _ = Filter::from_json(&j);
            let _ = Document::from_json(&j);
        }
    }
}

#[test]
fn plain_json_means_what_it_says() {
    let v = Value::from_json(&json!({"n": 1, "x": 1.0, "z": -0.0, "s": "hi", "l": [null, true]})).unwrap();
    assert_eq!(v.get_path("n"), Some(&Value::Int(1)));
    assert!(matches!(v.get_path("x"), Some(Value::Float(f)) if *f == 1.0));
    assert!(matches!(v.get_path("z"), Some(Value::Float(f)) if f.is_sign_negative()));
    assert_eq!(v.get_path("l.1"), Some(&Value::Bool(true)));
    // Types JSON lacks, and their literal escape.
    let u = uuid::Uuid::now_v7();
    let v = Value::from_json(&json!({
        "u": {"$uuid": u.to_string()}, "b": {"$bytes": "AAH/"}, "nan": {"$float": "NaN"},
        "t": {"$date": "2024-01-02T03:04:05Z"}, "lit": {"$literal": {"$uuid": "not one"}}, "other": {"$gt": 1},
    }))
    .unwrap();
    assert_eq!(v.get_path("u"), Some(&Value::Uuid(u)));
    assert_eq!(v.get_path("b"), Some(&Value::Bytes(vec![0, 1, 255])));
    assert!(matches!(v.get_path("nan"), Some(Value::Float(f)) if f.is_nan()));
    assert_eq!(v.get_path("t"), Some(&Value::Timestamp(Timestamp::parse_rfc3339("2024-01-02T03:04:05Z").unwrap())));
    assert_eq!(v.get_path("lit.$uuid"), Some(&Value::from("not one")));
    assert_eq!(v.get_path("other.$gt"), Some(&Value::Int(1)), "other $ keys are field names");
}

#[test]
fn malformed_json_is_a_typed_error_that_says_where() {
    let cases = [
        (json!({"a": [1, {"$uuid": 5}]}), "/a/1/$uuid"),
        (json!({"a": 18446744073709551615u64}), "/a"),
        (json!({"a": {"$float": "nan"}}), "/a/$float"),
        (json!({"a": {"$bytes": "***"}}), "/a/$bytes"),
        (json!({"a": {"$date": "yesterday"}}), "/a/$date"),
    ];
    for (input, at) in cases {
        match Value::from_json(&input) {
            Err(CoreError::InvalidJson { at: got, .. }) => assert_eq!(got, at, "{input}"),
            other => panic!("{input}: {other:?}"),
        }
    }
    for bad in [
        json!({"age": {"$gtt": 1}}),
        json!({"$xor": []}),
        json!([1]),
        json!({"a": {"$in": 3}}),
        json!({"a": {"$between": [1]}}),
    ] {
        assert!(matches!(Filter::from_json(&bad), Err(CoreError::InvalidJson { .. })), "{bad}");
    }
    assert!(matches!(Filter::from_json(&json!({"a\u{0}b": 1})), Err(CoreError::InvalidName { .. })));
    // Deep input stops at the depth bound, never the stack.
    let mut deep = json!(1);
    for _ in 0..5_000 {
        deep = json!([deep]);
    }
    assert!(matches!(Value::from_json(&deep), Err(CoreError::TooDeep { .. })));
    let doc = json!({"x": deep});
    assert!(matches!(Document::from_json(&doc), Err(CoreError::TooDeep { field, .. }) if field == "x"));
    let mut deep = json!({});
    for _ in 0..5_000 {
        deep = json!({"$not": deep});
    }
    assert!(matches!(Filter::from_json(&deep), Err(CoreError::FilterTooDeep { .. })));
    // Documents: the id under `_id`, a UUID-looking text id escaped.
    let text = DocId::text(&uuid::Uuid::now_v7().to_string()).unwrap();
    let d = Document::with_id(text.clone());
    assert_eq!(Document::from_json(&d.to_json()).unwrap().id, text);
    assert!(matches!(Document::from_json(&json!({"_id": ""})), Err(CoreError::InvalidDocId { .. })));
    let mut with_id_field = Document::new();
    with_id_field.fields.insert("_id".into(), Value::Int(1));
    assert!(matches!(with_id_field.validate(), Err(CoreError::InvalidName { .. })), "`_id` is reserved");
}
