//! Hostile review of the search language and the index: every hostile
//! search string is a typed error with a position (or a bounded search),
//! never a panic; words the analyser drops (stop words, punctuation) do
//! not turn a search into "match nothing"; prefix and fuzzy forms agree
//! with the words as written whatever the stemmer does; negation works
//! inside `OR`; huge windows are bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_core::{doc, DocId, Document};
use aurora_search::{
    parse, DocChange, Language, SearchDefinition, SearchError, SearchExpr, SearchIndex, SearchOptions,
};
use std::collections::BTreeSet;

fn open(dir: &std::path::Path, options: &SearchOptions, fields: &[&str]) -> SearchIndex {
    SearchIndex::open(dir, SearchDefinition::new("m", fields.iter().copied(), options).unwrap()).unwrap()
}

fn put(index: &mut SearchIndex, id: &str, doc: Document) {
    let id = DocId::text(id).unwrap();
    index.apply([DocChange::Update { id: &id, before: None, after: &doc }]).unwrap();
}

fn found(index: &SearchIndex, q: &str) -> BTreeSet<String> {
    index.search(&parse(q).unwrap(), None, 100, 0).unwrap().into_iter().map(|h| h.id.to_string()).collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn parse_error_at(q: &str) -> usize {
    match parse(q) {
        Err(SearchError::Parse { position, .. }) => position,
        other => panic!("`{q}`: expected a parse error, got {other:?}"),
    }
}

#[test]
fn operators_without_operands_are_errors_with_positions() {
    assert_eq!(parse_error_at("AND"), 0);
    assert_eq!(parse_error_at("OR"), 0);
    assert_eq!(parse_error_at("AND OR NOT"), 0);
    assert_eq!(parse_error_at("a AND OR b"), 6);
    assert_eq!(parse_error_at("a OR OR b"), 5);
    assert_eq!(parse_error_at("NOT"), 3);
    assert_eq!(parse_error_at("-"), 1);
    assert_eq!(parse_error_at("a -"), 3);
    assert_eq!(parse_error_at("( )"), 2);
    assert_eq!(parse_error_at(")"), 0);
    assert_eq!(parse_error_at("\"\""), 0);
    assert_eq!(parse_error_at("*"), 0);
    assert_eq!(parse_error_at("~"), 0);
    assert_eq!(parse_error_at("~3"), 0);
    assert_eq!(parse_error_at(""), 0);
    assert_eq!(parse_error_at("\t\n "), 3);
}

#[test]
fn suffixes_must_end_the_word() {
    // `a~10` is not "a~1 AND 0", nor `foo*bar` "foo* AND bar".
    assert_eq!(parse_error_at("a~10"), 3);
    assert_eq!(parse_error_at("a~3"), 2);
    assert_eq!(parse_error_at("a~0"), 2);
    assert_eq!(parse_error_at("foo*bar"), 4);
    assert_eq!(parse_error_at("foo~1bar"), 5);
    assert_eq!(parse_error_at("foo**"), 4);
    assert_eq!(parse_error_at("foo*~"), 4);
    // Still fine before a closing parenthesis, a quote or a space.
    assert!(parse("(foo* OR bar~2)").is_ok());
    assert!(parse("foo~ \"a b\"").is_ok());
}

#[test]
fn unbalanced_quotes_and_parentheses_point_at_the_opener() {
    assert_eq!(parse_error_at("a \"b c"), 2);
    assert_eq!(parse_error_at("a (b (c)"), 2);
    assert_eq!(parse_error_at("a b)"), 3);
    assert_eq!(parse_error_at("é (ü"), 3, "byte positions");
}

#[test]
fn huge_and_deep_searches_are_bounded_errors() {
    let deep = format!("{}a{}", "(".repeat(2000), ")".repeat(2000));
    assert!(matches!(parse(&deep), Err(SearchError::Parse { .. })));
    assert!(matches!(parse(&"-".repeat(4000)), Err(SearchError::Parse { .. })));
    assert!(matches!(parse(&"NOT ".repeat(1000)), Err(SearchError::Parse { .. })));
    let many = "w ".repeat(100_000);
    assert!(matches!(parse(&many), Err(SearchError::QueryTooLong { .. })));
    let within = "w ".repeat(1000);
    assert!(matches!(parse(&within), Err(SearchError::TooManyTerms { .. })));
    // A word made of many analysed tokens counts each of them.
    let dashed = vec!["x"; 500].join("-");
    assert!(matches!(parse(&dashed), Err(SearchError::TooManyTerms { .. })));
    assert!(matches!(parse(&format!("\"{dashed}\"")), Err(SearchError::TooManyTerms { .. })));
    assert!(matches!(parse(&format!("{dashed}*")), Err(SearchError::TooManyTerms { .. })));
}

#[test]
fn long_and_odd_words_search_without_blowing_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path(), &SearchOptions::default(), &["body"]);
    put(&mut index, "a", doc! { "body": "plain words" });
    index.commit(1).unwrap();
    // A 4 000-byte word: longer than any indexed word, matches nothing,
    // and its fuzzy form builds no automaton over it.
    let long = "ж".repeat(2000);
    assert_eq!(found(&index, &long), set(&[]));
    assert_eq!(found(&index, &format!("{long}~2")), set(&[]));
    assert_eq!(found(&index, &format!("{long}*")), set(&[]));
    let distinct: String = ('一'..).take(1300).collect();
    assert_eq!(found(&index, &format!("{distinct}~2")), set(&[]));
    // Control characters, escapes and lone symbols.
    assert_eq!(found(&index, "\u{0}\u{1b} plain"), set(&["a"]));
    assert_eq!(found(&index, "\\ plain"), set(&["a"]));
    assert_eq!(found(&index, "plain \u{1b}[31m"), set(&[]), "`31m` is a word");
}

#[test]
fn windows_are_bounded_by_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path(), &SearchOptions::default(), &["body"]);
    put(&mut index, "a", doc! { "body": "one" });
    put(&mut index, "b", doc! { "body": "one two" });
    index.commit(1).unwrap();
    let q = parse("one").unwrap();
    assert_eq!(index.search(&q, None, usize::MAX, 0).unwrap().len(), 2);
    assert_eq!(index.search(&q, None, usize::MAX, usize::MAX).unwrap().len(), 0);
    assert_eq!(index.search(&q, None, 1 << 40, 1).unwrap().len(), 1);
    assert_eq!(index.search(&q, None, 0, 0).unwrap().len(), 0);
}

#[test]
fn unknown_fields_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path(), &SearchOptions::default(), &["body"]);
    let q = parse("x").unwrap();
    for field in ["title", "", "body.x", "BODY"] {
        assert!(
            matches!(index.search(&q, Some(field), 10, 0), Err(SearchError::UnknownField { .. })),
            "field `{field}`"
        );
    }
}

#[test]
fn negation_inside_or() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path(), &SearchOptions::default(), &["body"]);
    put(&mut index, "a", doc! { "body": "red apple" });
    put(&mut index, "b", doc! { "body": "green apple" });
    put(&mut index, "c", doc! { "body": "red car" });
    put(&mut index, "d", doc! { "body": "blue car" });
    index.commit(1).unwrap();
    assert_eq!(found(&index, "green OR -red"), set(&["b", "d"]));
    assert_eq!(found(&index, "-red OR -car"), set(&["a", "b", "d"]));
    assert_eq!(found(&index, "(NOT red) OR apple"), set(&["a", "b", "d"]));
    assert_eq!(found(&index, "car (-red OR blue)"), set(&["d"]));
    assert_eq!(found(&index, "apple AND (red OR -car)"), set(&["a", "b"]));
    assert_eq!(found(&index, "-(red OR blue)"), set(&["b"]));
    assert_eq!(found(&index, "- -red"), set(&["a", "c"]), "double negation");
}

#[test]
fn stop_words_and_punctuation_do_not_empty_a_search() {
    let dir = tempfile::tempdir().unwrap();
    let options = SearchOptions { stop_words: true, ..SearchOptions::english() };
    let mut index = open(dir.path(), &options, &["body"]);
    put(&mut index, "a", doc! { "body": "The quick fox of the hills" });
    put(&mut index, "b", doc! { "body": "slow fox" });
    index.commit(1).unwrap();
    assert_eq!(found(&index, "the quick"), set(&["a"]), "a stop word is ignored, not required");
    assert_eq!(found(&index, "quick !!!"), set(&["a"]), "punctuation is ignored");
    assert_eq!(found(&index, "fox -the"), set(&["a", "b"]), "a negated stop word excludes nothing");
    assert_eq!(found(&index, "the OR slow"), set(&["b"]));
    assert_eq!(found(&index, "the"), set(&[]), "only stop words: nothing");
    // A phrase keeps the gap a stop word left.
    assert_eq!(found(&index, "\"fox of the hills\""), set(&["a"]));
    assert_eq!(found(&index, "\"fox hills\""), set(&[]));
}

#[test]
fn prefix_and_fuzzy_agree_with_the_words_as_written_when_stemming() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path(), &SearchOptions::default().language(Language::English), &["body"]);
    put(&mut index, "a", doc! { "body": "Running happily" });
    put(&mut index, "b", doc! { "body": "the runner" });
    put(&mut index, "c", doc! { "body": "universities" });
    index.commit(1).unwrap();
    // The stems are "run", "happili", "runner", "univers": a prefix or a
    // fuzzy word of the written form must still find them.
    assert_eq!(found(&index, "runn*"), set(&["a", "b"]));
    assert_eq!(found(&index, "happil*"), set(&["a"]));
    assert_eq!(found(&index, "happily*"), set(&["a"]));
    assert_eq!(found(&index, "universit*"), set(&["c"]));
    assert_eq!(found(&index, "runnign~1"), set(&["a"]), "a transposition of the written word");
    assert_eq!(found(&index, "happyly~1"), set(&["a"]));
    assert_eq!(found(&index, "universitie~1"), set(&["c"]));
    // Plain words are still stemmed.
    assert_eq!(found(&index, "runs"), set(&["a"]));
    // Hyphenated prefixes are a phrase ending in a prefix.
    put(&mut index, "d", doc! { "body": "e-mail delivered" });
    index.commit(2).unwrap();
    assert_eq!(found(&index, "e-ma*"), set(&["d"]));
}

#[test]
fn array_elements_are_separate_values_for_phrases() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path(), &SearchOptions::default(), &["tags"]);
    put(&mut index, "a", doc! { "tags": ["big red", "dog house"] });
    put(&mut index, "b", doc! { "tags": ["red dog"] });
    index.commit(1).unwrap();
    assert_eq!(found(&index, "\"red dog\""), set(&["b"]), "no phrase across two elements");
    assert_eq!(found(&index, "red dog"), set(&["a", "b"]));
}

#[test]
fn odd_documents_index_what_is_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path(), &SearchOptions::default(), &["body", "meta.title"]);
    let mut deep = aurora_core::Value::from("buried");
    for _ in 0..100 {
        deep = aurora_core::Value::Array(vec![deep]);
    }
    put(&mut index, "deep", doc! { "body": deep.clone(), "meta": { "title": "nested title" } });
    put(&mut index, "num", doc! { "body": 12, "meta": 5 });
    put(&mut index, "mixed", doc! { "body": ["word", 3, null, true, ["inner"]] });
    let huge = "lorem ipsum ".repeat(200_000);
    put(&mut index, "huge", doc! { "body": huge.as_str() });
    index.commit(1).unwrap();
    assert_eq!(found(&index, "nested"), set(&["deep"]));
    assert_eq!(found(&index, "buried"), set(&[]), "nested arrays are not text");
    assert_eq!(found(&index, "word"), set(&["mixed"]));
    assert_eq!(found(&index, "ipsum"), set(&["huge"]));
    assert_eq!(found(&index, "12"), set(&[]), "numbers are not text");
    assert_eq!(index.len(), 4);
}

#[test]
fn display_round_trips_through_parse() {
    for q in ["a b", "a OR b -c", "\"a b\" c* d~2", "(a OR b) (c OR -d)", "-(a b)"] {
        let e = parse(q).unwrap();
        assert_eq!(parse(&e.to_string()).unwrap(), e, "`{q}` shown as `{e}`");
    }
    assert!(matches!(parse("x").unwrap(), SearchExpr::Term(_)));
}
