//! `aurora import` and `aurora export` against the real binary: the exact
//! round trip with hostile values, both input forms, and imports that must
//! write nothing or say exactly how far they got.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use aurora::{Aurora, DocId, Document, FieldDefinition, FieldType, Fields, Timestamp, Value};
use cli_support::{aurora, rt, s, write_lines};
use serde_json::json;
use std::path::Path;

/// A value written so that every float shows its bits and every type its
/// name: two values print the same only if they are the same, bit for bit.
fn exact(v: &Value) -> String {
    match v {
        Value::Float(f) => format!("F{:016x}", f.to_bits()),
        Value::Int(i) => format!("I{i}"),
        Value::Array(items) => format!("[{}]", items.iter().map(exact).collect::<Vec<_>>().join(",")),
        Value::Object(fields) => {
            format!("{{{}}}", fields.iter().map(|(k, v)| format!("{k:?}:{}", exact(v))).collect::<Vec<_>>().join(","))
        }
        other => format!("{other:?}"),
    }
}

fn exact_doc(d: &Document) -> String {
    format!("{:?} {}", d.id, exact(&Value::Object(d.fields.clone())))
}

/// Documents with the values a round trip can get wrong.
fn hostile() -> Vec<Document> {
    let floats = [
        0.1,
        -0.0,
        0.0,
        1.0,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        -1.5e-300,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        9007199254740993.0,
        std::f64::consts::PI,
    ];
    let mut out = Vec::new();
    for (i, f) in floats.into_iter().enumerate() {
        let mut fields = Fields::new();
        fields.insert("f".into(), Value::Float(f));
        fields.insert("i".into(), Value::Int(i as i64));
        out.push(Document { id: DocId::text(&format!("float-{i:02}")).unwrap(), fields });
    }
    let mut fields = Fields::new();
    fields.insert("max".into(), Value::Int(i64::MAX));
    fields.insert("min".into(), Value::Int(i64::MIN));
    fields.insert("big_float".into(), Value::Float(1e20));
    fields.insert("bytes".into(), Value::Bytes(vec![0, 255, 10, 13, b'"', 0x80]));
    fields.insert("empty_bytes".into(), Value::Bytes(Vec::new()));
    fields.insert("epoch".into(), Value::Timestamp(Timestamp::from_micros(0)));
    fields.insert("before_1970".into(), Value::Timestamp(Timestamp::from_micros(-123_456_789_012_345)));
    fields.insert("year_20000".into(), Value::Timestamp(Timestamp::from_micros(568_971_849_600_000_001)));
    fields.insert("uuid".into(), Value::Uuid(uuid::Uuid::from_u128(0x0190a6b2_0000_7000_8000_0000000000ff)));
    fields.insert("text".into(), Value::String("line\nbreak \"quoted\" \u{0} nul, ünïcødé, 🦀".into()));
    fields.insert("$dollar".into(), Value::String("an ordinary field whose name starts with $".into()));
    let mut looks_like_marker = Fields::new();
    looks_like_marker.insert("$uuid".into(), Value::String("just a field".into()));
    fields.insert("marker_lookalike".into(), Value::Object(looks_like_marker));
    let mut nested = Value::Array(vec![Value::Null, Value::Bool(true), Value::Float(-0.0)]);
    for depth in 0..20 {
        let mut o = Fields::new();
        o.insert(format!("level{depth}"), nested);
        o.insert("n".into(), Value::Int(depth));
        nested = Value::Object(o);
    }
    fields.insert("nested".into(), nested);
    out.push(Document { id: DocId::text("hostile").unwrap(), fields });
    // Ids: a UUID id, and a text id spelled like a UUID.
    out.push(Document { id: DocId::Uuid(uuid::Uuid::from_u128(42)), fields: Fields::new() });
    out.push(Document { id: DocId::text("0190a6b2-0000-7000-8000-000000000001").unwrap(), fields: Fields::new() });
    out
}

fn make(dir: &Path, docs: Vec<Document>) {
    rt().block_on(async {
        let db = Aurora::open(dir).await.unwrap();
        db.new_collection("things", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
        db.insert_many("things", docs).await.unwrap();
        db.close().await.unwrap();
    });
    cli_support::settle(dir);
}

fn read_all(dir: &Path, collection: &str) -> Vec<String> {
    let out = rt().block_on(async {
        let db = Aurora::open(dir).await.unwrap();
        let docs = db.query(collection).collect().await.unwrap();
        db.close().await.unwrap();
        docs.iter().map(exact_doc).collect::<Vec<_>>()
    });
    cli_support::settle(dir);
    out
}

#[test]
fn export_then_import_into_a_fresh_database_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    make(&a, hostile());
    let first = aurora(&["export", s(&a), "things"]).ok();
    assert!(first.stderr.contains("exported 16 documents"), "{}", first.stderr);
    let file = tmp.path().join("things.ndjson");
    std::fs::write(&file, &first.stdout).unwrap();
    let run = aurora(&["import", s(&b), "things", s(&file), "--create"]).ok();
    assert!(run.stderr.contains("imported 16 documents"), "{}", run.stderr);
    // The same bytes out again, and the same values bit for bit.
    let second = aurora(&["export", s(&b), "things"]).ok();
    assert_eq!(first.stdout, second.stdout);
    let (before, after) = (read_all(&a, "things"), read_all(&b, "things"));
    assert_eq!(before.len(), 16);
    assert_eq!(before, after);
    let expected: Vec<String> = {
        let mut docs = hostile();
        docs.sort_by_key(|d| d.id.to_key_bytes());
        docs.iter().map(exact_doc).collect()
    };
    assert_eq!(before, expected, "the database holds what was written");
}

#[test]
fn export_to_a_file_writes_the_same_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    make(&a, hostile());
    let out = tmp.path().join("out.ndjson");
    aurora(&["export", s(&a), "things", "--output", s(&out)]).ok();
    let stdout = aurora(&["export", s(&a), "things"]).ok().stdout;
    assert_eq!(std::fs::read_to_string(&out).unwrap(), stdout);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2, "no partial file left beside it");
}

#[test]
fn a_json_array_imports_like_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    make(&a, hostile());
    let lines = aurora(&["export", s(&a), "things"]).ok().stdout;
    let array = format!("[\n{}\n]\n", lines.trim_end().replace('\n', ",\n"));
    let file = tmp.path().join("things.json");
    std::fs::write(&file, array).unwrap();
    aurora(&["import", s(&b), "things", s(&file), "--create", "--batch-size", "3"]).ok();
    assert_eq!(aurora(&["export", s(&b), "things"]).ok().stdout, lines);
}

#[test]
fn a_bad_line_is_named_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    make(&db, Vec::new());
    let file = tmp.path().join("in.ndjson");
    // Line 3 is not JSON; line 1 and 2 are fine; the batch size is 1, so a
    // streaming writer would have written two documents already.
    std::fs::write(&file, "{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3,}\n{\"a\": 4}\n").unwrap();
    let run = aurora(&["import", s(&db), "things", s(&file), "--batch-size", "1"]).code(1);
    assert!(run.stderr.contains("nothing was imported"), "{}", run.stderr);
    assert!(run.stderr.contains("line 3: not JSON: column 9"), "{}", run.stderr);
    assert!(read_all(&db, "things").is_empty());

    // Well-formed JSON, not a document in the plain-JSON form.
    std::fs::write(&file, "{\"a\": 1}\n\n{\"when\": {\"$date\": \"yesterday\"}}\n").unwrap();
    let run = aurora(&["import", s(&db), "things", s(&file)]).code(1);
    assert!(run.stderr.contains("line 3: not a document: at /when/$date"), "{}", run.stderr);
    std::fs::write(&file, "[1]\n").unwrap();
    let run = aurora(&["import", s(&db), "things", s(&file)]).code(1);
    assert!(run.stderr.contains("line 1: not a document: a document is a JSON object"), "{}", run.stderr);
    assert!(read_all(&db, "things").is_empty());

    // In a JSON array: the element, and for a syntax error its line and column.
    let file = tmp.path().join("in.json");
    std::fs::write(&file, "[{\"a\": 1},\n {\"a\": {\"$uuid\": 7}}]").unwrap();
    let run = aurora(&["import", s(&db), "things", s(&file)]).code(1);
    assert!(run.stderr.contains("element 2: not a document: at /a/$uuid"), "{}", run.stderr);
    std::fs::write(&file, "[{\"a\": 1},\n {\"a\" 2}]").unwrap();
    let run = aurora(&["import", s(&db), "things", s(&file)]).code(1);
    assert!(run.stderr.contains("element 2: not JSON: line 2, column 7"), "{}", run.stderr);
    assert!(read_all(&db, "things").is_empty());
}

#[test]
fn schema_refusals_and_existing_ids_are_found_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    rt().block_on(async {
        let db = Aurora::open(&db).await.unwrap();
        db.new_collection("users", [("age", FieldDefinition::new(FieldType::Int))]).await.unwrap();
        let mut d = aurora::doc! { "age": 1 };
        d.id = DocId::text("taken").unwrap();
        db.insert_into("users", d).await.unwrap();
        db.close().await.unwrap();
    });
    cli_support::settle(&db);
    let file = tmp.path().join("in.ndjson");
    write_lines(&file, &[json!({"age": 2}), json!({"age": "old"})]);
    let run = aurora(&["import", s(&db), "users", s(&file)]).code(1);
    assert!(run.stderr.contains("line 2: refused by the schema"), "{}", run.stderr);
    write_lines(&file, &[json!({"age": 2}), json!({"_id": "taken", "age": 3})]);
    let run = aurora(&["import", s(&db), "users", s(&file)]).code(1);
    assert!(run.stderr.contains("line 2: the collection already has a document with _id taken"), "{}", run.stderr);
    assert_eq!(read_all(&db, "users").len(), 1);
    // Without --create, an unknown collection is an error.
    let run = aurora(&["import", s(&db), "nope", s(&file)]).code(1);
    assert!(run.stderr.contains("no collection `nope`"), "{}", run.stderr);
}

#[test]
fn a_batch_refused_at_write_time_is_reported_with_how_far_the_import_got_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    rt().block_on(async {
        let db = Aurora::open(&db).await.unwrap();
        db.new_collection("users", [("email", FieldDefinition::new(FieldType::String).unique())]).await.unwrap();
        db.close().await.unwrap();
    });
    cli_support::settle(&db);
    let file = tmp.path().join("in.ndjson");
    // Line 6 repeats line 1's unique email: only a write finds that.
    let emails = ["a", "b", "c", "d", "e", "a", "g"];
    write_lines(&file, &emails.iter().map(|e| json!({ "email": e })).collect::<Vec<_>>());
    let run = aurora(&["import", s(&db), "users", s(&file), "--batch-size", "2"]).code(1);
    assert!(run.stderr.contains("4 documents were imported, through line 4"), "{}", run.stderr);
    assert!(run.stderr.contains("resume with --start-at 5"), "{}", run.stderr);
    assert!(run.stderr.contains("the batch of line 5 to line 6 was refused and not written"), "{}", run.stderr);
    assert!(run.stderr.contains("unique"), "{}", run.stderr);
    assert_eq!(read_all(&db, "users").len(), 4, "the batches before the failure, none of the failed one");
    // Fixed, and resumed where it stopped.
    let fixed: Vec<_> = ["a", "b", "c", "d", "e", "f", "g"].iter().map(|e| json!({ "email": e })).collect();
    write_lines(&file, &fixed);
    let run = aurora(&["import", s(&db), "users", s(&file), "--start-at", "5"]).ok();
    assert!(run.stderr.contains("imported 3 documents"), "{}", run.stderr);
    assert_eq!(read_all(&db, "users").len(), 7);
}

#[test]
fn an_import_larger_than_a_batch_is_written_in_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let n: usize = std::env::var("AURORA_CLI_IMPORT_DOCS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let file = tmp.path().join("in.ndjson");
    write_lines(&file, &(0..n).map(|i| json!({ "n": i, "pad": "x".repeat(100) })).collect::<Vec<_>>());
    let run = aurora(&["import", s(&db), "big", s(&file), "--create", "--batch-size", "700"]).ok();
    assert!(run.stderr.contains(&format!("imported {n} documents")), "{}", run.stderr);
    let stats = aurora(&["stats", s(&db), "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&stats.stdout).unwrap();
    assert_eq!(json["collections"][0]["documents"], n as u64);
    // One transaction per batch (plus the collection's creation): each is
    // one commit, so the revision counts them.
    assert_eq!(json["revision"], 1 + n.div_ceil(700) as u64);
}

#[test]
fn an_unknown_file_form_asks_for_format() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("in.txt");
    std::fs::write(&file, "{}\n").unwrap();
    let run = aurora(&["import", s(&tmp.path().join("db")), "c", s(&file), "--create"]).code(1);
    assert!(run.stderr.contains("--format"), "{}", run.stderr);
    aurora(&["import", s(&tmp.path().join("db")), "c", s(&file), "--create", "--format", "ndjson"]).ok();
}
