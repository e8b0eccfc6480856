//! `aurora query` and `aurora stats` against the real binary: output
//! forms, flags, and every way the arguments can be wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use aurora::{doc, Aurora, FieldDefinition, FieldType};
use cli_support::{aurora, rt, s};
use std::path::Path;

/// A database with a `people` collection (an index on `age`) of three documents.
fn people(dir: &Path) {
    rt().block_on(async {
        let db = Aurora::open(dir).await.expect("open");
        db.new_collection("people", [("age", FieldDefinition::new(FieldType::Int).indexed())]).await.expect("create");
        for (id, name, age) in [("ada", "Ada", 36), ("alan", "Alan", 41), ("grace", "Grace", 85)] {
            let mut d = doc! { "name": name, "age": age };
            d.id = aurora::DocId::text(id).expect("id");
            db.insert_into("people", d).await.expect("insert");
        }
        db.close().await.expect("close");
    });
    cli_support::settle(dir);
}

#[test]
fn query_prints_a_table_in_the_asked_order_with_limit_and_select() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    people(&db);
    let run = aurora(&["query", s(&db), "people", r#"{"age": {"$gte": 40}}"#, "--order", "age:desc"]).ok();
    assert_eq!(run.stdout, "_id    age  name\n-----  ---  -----\ngrace  85   Grace\nalan   41   Alan\n(2 documents)\n");
    let run =
        aurora(&["query", s(&db), "people", "--order", "name", "--limit", "1", "--offset", "1", "--select", "name"])
            .ok();
    assert_eq!(run.stdout, "_id   name\n----  ----\nalan  Alan\n(1 document)\n");
}

#[test]
fn query_json_lines_are_plain_json_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    people(&db);
    let run = aurora(&["query", s(&db), "people", r#"{"name": {"$startsWith": "A"}}"#, "--format", "json"]).ok();
    let lines: Vec<serde_json::Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines,
        vec![
            serde_json::json!({"_id": "ada", "name": "Ada", "age": 36}),
            serde_json::json!({"_id": "alan", "name": "Alan", "age": 41}),
        ]
    );
}

#[test]
fn explain_names_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    people(&db);
    let run = aurora(&["query", s(&db), "people", r#"{"age": 41}"#, "--explain"]).ok();
    assert!(run.stdout.contains("age"), "{}", run.stdout);
    assert!(run.stdout.contains("examined_rows: 1"), "{}", run.stdout);
}

#[test]
fn a_filter_that_is_not_json_is_refused_with_its_position() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    people(&db);
    let run = aurora(&["query", s(&db), "people", r#"{"age": {"$gt": }}"#]).code(1);
    assert!(run.stderr.contains("not JSON (line 1, column 17)"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn a_filter_in_the_wrong_form_is_refused_with_its_json_pointer() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    people(&db);
    let run = aurora(&["query", s(&db), "people", r#"{"age": {"$gtx": 1}}"#]).code(1);
    assert!(run.stderr.contains("invalid filter at /age/$gtx"), "{}", run.stderr);
    let run = aurora(&["query", s(&db), "people", "[1]"]).code(1);
    assert!(run.stderr.contains("invalid filter at the top level"), "{}", run.stderr);
    let run = aurora(&["query", s(&db), "people", "--order", "age:sideways"]).code(1);
    assert!(run.stderr.contains("neither `asc` nor `desc`"), "{}", run.stderr);
}

#[test]
fn an_unknown_collection_names_the_ones_there_are() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    people(&db);
    let run = aurora(&["query", s(&db), "persons"]).code(1);
    assert!(run.stderr.contains("no collection `persons`") && run.stderr.contains("it has: people"), "{}", run.stderr);
    let run = aurora(&["export", s(&db), "persons"]).code(1);
    assert!(run.stderr.contains("no collection `persons`"), "{}", run.stderr);
}

#[test]
fn a_missing_or_foreign_directory_is_refused_and_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nothing-here");
    for cmd in [vec!["query", s(&missing), "people"], vec!["stats", s(&missing)], vec!["export", s(&missing), "people"]]
    {
        let run = aurora(&cmd).code(1);
        assert!(run.stderr.contains("no such directory"), "{cmd:?}: {}", run.stderr);
    }
    assert!(!missing.exists(), "a read command must not create a database");
    let run = aurora(&["stats", s(tmp.path())]).code(1);
    assert!(run.stderr.contains("not an Aurora database"), "{}", run.stderr);
}

#[test]
fn a_database_in_use_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    people(&dir);
    let rt = rt();
    // Held open, as a running server holds it.
    let db = rt.block_on(Aurora::open(&dir)).expect("open");
    for cmd in [
        vec!["query", s(&dir), "people"],
        vec!["stats", s(&dir)],
        vec!["export", s(&dir), "people"],
        vec!["backup", s(&dir), s(&tmp.path().join("copy"))],
    ] {
        let run = aurora(&cmd).code(1);
        assert!(run.stderr.contains("is in use by another process"), "{cmd:?}: {}", run.stderr);
    }
    let run = aurora(&["check", s(&dir)]).code(2);
    assert!(run.stderr.contains("is in use by another process"), "{}", run.stderr);
    rt.block_on(db.close()).expect("close");
    cli_support::settle(&dir);
    aurora(&["query", s(&dir), "people"]).ok();
}

#[test]
fn stats_lists_collections_with_counts_and_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    people(&db);
    let run = aurora(&["stats", s(&db)]).ok();
    assert!(run.stdout.contains("people      3"), "{}", run.stdout);
    assert!(run.stdout.contains("age (3 entries)"), "{}", run.stdout);
    let run = aurora(&["stats", s(&db), "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["collections"][0]["name"], "people");
    assert_eq!(json["collections"][0]["documents"], 3);
    assert_eq!(json["collections"][0]["indexes"][0]["entries"], 3);
    assert_eq!(json["revision"], 4, "a collection and three inserts");
}

#[test]
fn every_command_has_help() {
    for cmd in ["stats", "query", "import", "export", "backup", "check"] {
        let run = aurora(&[cmd, "--help"]).ok();
        assert!(run.stdout.contains("Usage: aurora"), "{cmd}: {}", run.stdout);
        assert!(run.stdout.contains("<DIR>"), "{cmd}: {}", run.stdout);
    }
    let run = aurora(&["--help"]).ok();
    for cmd in ["stats", "query", "import", "export", "backup", "check"] {
        assert!(run.stdout.contains(cmd), "{}", run.stdout);
    }
}
