//! Issue 19, tracing: opening, recovery, commit groups, index builds,
//! queries (with their plan, rows examined and rows returned) and closing
//! are spans with structured fields, and no span or event carries a
//! document's or a filter's values. One test in this binary: it installs
//! the global subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, FieldDefinition, FieldType};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_and_every_query_are_spans_without_values() {
    let out = Captured::default();
    let writer = out.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .init();

    let dir = tempfile::tempdir().unwrap();
    let db = Aurora::with_config(AuroraConfig::new(dir.path())).await.unwrap();
    db.new_collection(
        "people",
        [("name", FieldDefinition::new(FieldType::String)), ("age", FieldDefinition::new(FieldType::Int).indexed())],
    )
    .await
    .unwrap();
    let docs = (0..300i64).map(|i| doc! { "name": format!("secret-name-{i}"), "age": i }).collect();
    db.insert_many("people", docs).await.unwrap();
    db.create_index("people", "name", false).await.unwrap();
    let found = db.query("people").filter(|f| f.gt("age", 290)).collect().await.unwrap();
    assert_eq!(found.len(), 9);
    let scanned = db.query("people").filter(|f| f.ends_with("name", "-29")).collect().await.unwrap();
    assert_eq!(scanned.len(), 1);
    assert_eq!(db.query("people").filter(|f| f.eq("age", 7)).count().await.unwrap(), 1);
    db.close().await.unwrap();
    drop(db);

    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let closes = |span: &str| text.lines().filter(|l| l.contains(&format!("{span}{{")) && l.contains("close")).count();
    for span in ["open", "recover", "commit_group", "index_build", "query", "close"] {
        assert!(closes(span) > 0, "no closed `{span}` span in:\n{text}");
    }
    let query_line = |needle: &str| text.lines().any(|l| l.contains("query{") && l.contains(needle));
    assert!(query_line("access=\"index(age)\"") || query_line("access=index(age)"), "{text}");
    assert!(query_line("examined=9") && query_line("returned=9"), "{text}");
    assert!(query_line("full_scan") && query_line("examined=300") && query_line("returned=1"), "{text}");
    assert!(query_line("index_only(age)"), "{text}");
    assert!(!text.contains("secret-name"), "a document or filter value reached the log:\n{text}");
}
