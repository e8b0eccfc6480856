//! Reading an import file record by record, streamed: JSON lines (one
//! document per line, blank lines skipped) or one JSON array of documents
//! (its elements read one at a time, never the whole array at once).

use crate::output::json_error_message;
use serde::de::{Deserializer as _, Error as _, SeqAccess, Visitor};
use std::fmt;
use std::io::{BufRead, BufReader, Read};

/// Which form the file is in.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// One JSON document per line (`.ndjson`, `.jsonl`).
    Ndjson,
    /// One JSON array of documents (`.json`).
    Json,
}

impl InputFormat {
    /// The form a file name implies, if it does.
    pub fn from_name(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "ndjson" | "jsonl" => Some(Self::Ndjson),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Where a record is: a line of a JSON-lines file, an element of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// Line number, from 1.
    Line(u64),
    /// Element number, from 1.
    Element(u64),
}

impl Position {
    /// The record's number (line or element), from 1.
    pub fn number(self) -> u64 {
        match self {
            Position::Line(n) | Position::Element(n) => n,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Element(n) => write!(f, "element {n}"),
        }
    }
}

/// A record that cannot be imported, and where it is.
#[derive(Debug)]
pub struct BadRecord {
    /// Where.
    pub at: Position,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a record.
#[derive(Debug)]
pub enum Problem {
    /// Not JSON (column, when known, and the parser's message).
    NotJson(String),
    /// JSON, but not a document in the plain-JSON form.
    NotADocument(String),
    /// A document the collection's schema refuses.
    Schema(String),
    /// A document whose `_id` the collection already holds.
    Exists(String),
    /// The file cannot be read.
    Io(String),
    /// A line longer than [`MAX_LINE_BYTES`], or a document over the
    /// database's size limit.
    TooLarge(String),
}

/// The longest JSON-lines line read (32 MiB): twice the largest document
/// the database stores (16 MiB encoded), so every storable document fits
/// in its JSON form short of pathological escaping, while a huge line is
/// refused after reading this much, not held in memory whole.
pub const MAX_LINE_BYTES: u64 = 32 << 20;

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.at;
        match &self.problem {
            Problem::NotJson(m) => write!(f, "{at}: not JSON: {m}"),
            Problem::NotADocument(m) => write!(f, "{at}: not a document: {m}"),
            Problem::Schema(m) => write!(f, "{at}: refused by the schema: {m}"),
            Problem::Exists(id) => write!(f, "{at}: the collection already has a document with _id {id}"),
            Problem::Io(m) => write!(f, "{at}: reading the file: {m}"),
            Problem::TooLarge(m) => write!(f, "{at}: refused: {m}"),
        }
    }
}

impl std::error::Error for BadRecord {}

/// Calls `each` with every record of `input` in order, from record number
/// `start` on (earlier ones are skipped unread as documents); stops at the
/// first error, `each`'s or the file's.
pub fn for_each(
    input: impl Read,
    format: InputFormat,
    start: u64,
    mut each: impl FnMut(Position, serde_json::Value) -> Result<(), BadRecord>,
) -> Result<(), BadRecord> {
    match format {
        InputFormat::Ndjson => {
            let mut reader = BufReader::new(input);
            let mut raw = Vec::new();
            let mut n = 0u64;
            loop {
                raw.clear();
                n += 1;
                let at = Position::Line(n);
                match (&mut reader).take(MAX_LINE_BYTES + 1).read_until(b'\n', &mut raw) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(BadRecord { at, problem: Problem::Io(e.to_string()) }),
                }
                if raw.len() as u64 > MAX_LINE_BYTES {
                    let problem = Problem::TooLarge(format!(
                        "the line is longer than {} MiB (the limit of one record)",
                        MAX_LINE_BYTES >> 20
                    ));
                    return Err(BadRecord { at, problem });
                }
                let text = std::str::from_utf8(&raw)
                    .map_err(|e| BadRecord { at, problem: Problem::NotJson(format!("not UTF-8: {e}")) })?;
                // A UTF-8 byte-order mark (as some Windows tools write) is
                // not part of the first record.
                let line = if n == 1 { text.strip_prefix('\u{feff}').unwrap_or(text) } else { text };
                if n < start || line.trim().is_empty() {
                    continue;
                }
                let json = serde_json::from_str(line).map_err(|e| BadRecord {
                    at,
                    problem: if crate::output::nests_too_deep(&e) {
                        Problem::NotADocument(crate::output::too_deep_message())
                    } else {
                        Problem::NotJson(format!("column {}: {}", e.column(), json_error_message(&e)))
                    },
                })?;
                each(at, json)?;
            }
        }
        InputFormat::Json => {
            let mut failed: Option<BadRecord> = None;
            let mut n = 0u64;
            let parsed = {
                let mut visit = |json: serde_json::Value| -> bool {
                    n += 1;
                    if n < start {
                        return true;
                    }
                    match each(Position::Element(n), json) {
                        Ok(()) => true,
                        Err(e) => {
                            failed = Some(e);
                            false
                        }
                    }
                };
                let mut input = BufReader::new(input);
                // A UTF-8 byte-order mark before the array is not JSON.
                if input.fill_buf().is_ok_and(|b| b.starts_with(b"\xef\xbb\xbf")) {
                    input.consume(3);
                }
                let mut de = serde_json::Deserializer::from_reader(input);
                de.deserialize_seq(Elements(&mut visit)).and_then(|()| de.end())
            };
            if let Some(e) = failed {
                return Err(e);
            }
            parsed.map_err(|e| BadRecord {
                at: Position::Element(n + 1),
                problem: if crate::output::nests_too_deep(&e) {
                    Problem::NotADocument(crate::output::too_deep_message())
                } else {
                    Problem::NotJson(format!("line {}, column {}: {}", e.line(), e.column(), json_error_message(&e)))
                },
            })
        }
    }
}

/// Visits an array's elements one at a time.
struct Elements<'a, F>(&'a mut F);

impl<'de, F: FnMut(serde_json::Value) -> bool> Visitor<'de> for Elements<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of documents")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(json) = seq.next_element::<serde_json::Value>()? {
            if !(self.0)(json) {
                return Err(A::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}
