//! How commands print documents: JSON lines in the plain-JSON form
//! (`docs/json.md`, exact both ways), or a table for people.

mod table;

pub use table::Table;

use aurora::Document;
use std::io::Write;

/// Writes `doc` as one line of plain JSON (its fields and `_id`).
pub fn write_json_line(out: &mut impl Write, doc: &Document) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, &doc.to_json())?;
    out.write_all(b"\n")?;
    Ok(())
}

/// A value as a table cell: a string as it is, anything else as compact
/// plain JSON.
pub fn cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// serde_json's message without its trailing " at line L column C" (the
/// caller says where, in its own terms).
pub fn json_error_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
