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
/// Whether `serde_json` refused a text for nesting deeper than it parses
/// (128 levels; documents and filters may nest 100): input too deep, not
/// input that is not JSON. (`serde_json` has no public error code for it;
/// its message is checked by the tests of `aurora import` and `aurora query`.)
pub fn nests_too_deep(e: &serde_json::Error) -> bool {
    e.to_string().starts_with("recursion limit exceeded")
}

/// What `aurora` says of input nested past the limit.
pub fn too_deep_message() -> String {
    format!("nests deeper than {} levels, the limit", aurora::MAX_NESTING_DEPTH)
}

pub fn json_error_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
