//! `aurora backup` against the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use cli_support::{aurora, s, write_lines};
use serde_json::json;

#[test]
fn a_backup_opens_as_the_same_database() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, copy) = (tmp.path().join("db"), tmp.path().join("copy"));
    let file = tmp.path().join("in.ndjson");
    write_lines(&file, &(0..3000).map(|i| json!({ "n": i })).collect::<Vec<_>>());
    aurora(&["import", s(&db), "things", s(&file), "--create"]).ok();
    let run = aurora(&["backup", s(&db), s(&copy)]).ok();
    assert!(run.stdout.contains("at revision 4"), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("-> {}", copy.display())), "{}", run.stdout);
    assert_eq!(aurora(&["export", s(&copy), "things"]).ok().stdout, aurora(&["export", s(&db), "things"]).ok().stdout);
    aurora(&["check", s(&copy)]).ok();
    // The same stats, the revision included.
    assert_eq!(aurora(&["stats", s(&copy), "--json"]).ok().stdout, aurora(&["stats", s(&db), "--json"]).ok().stdout);
}

#[test]
fn a_backup_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, copy) = (tmp.path().join("db"), tmp.path().join("copy"));
    let file = tmp.path().join("in.ndjson");
    write_lines(&file, &[json!({ "n": 1 })]);
    aurora(&["import", s(&db), "things", s(&file), "--create"]).ok();
    std::fs::create_dir(&copy).unwrap();
    std::fs::write(copy.join("precious"), "keep me").unwrap();
    let run = aurora(&["backup", s(&db), s(&copy)]).code(1);
    assert!(run.stderr.contains("not empty"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(copy.join("precious")).unwrap(), "keep me");
    let run = aurora(&["backup", s(&tmp.path().join("missing")), s(&tmp.path().join("copy2"))]).code(1);
    assert!(run.stderr.contains("no such directory"), "{}", run.stderr);
}
