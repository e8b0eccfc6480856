//! [`FieldReader`]: a stored document's chosen top-level fields, read from
//! its encoded bytes without decoding the rest — what a scan needs to test
//! a filter before paying for the whole document.
//!
//! A stored document is `[FORMAT_VERSION] ++ postcard(Document)` (see
//! [`format`](crate::format)): the id (a `DocId` enum: variant `0` = UUID as
//! 16 length-prefixed bytes, `1` = text as a length-prefixed string), then
//! the field map (a varint count, then name/value pairs). A `Value` is a
//! varint variant index then its payload, in declaration order: `Null`,
//! `Bool` (one byte, 0 or 1), `Int` (zigzag varint), `Float` (8 bytes LE),
//! `String` (varint length + UTF-8), `Uuid` (varint 16 + 16 bytes), `Bytes`
//! (varint length + bytes), `Timestamp` (zigzag varint), `Array` (varint
//! count + values), `Object` (varint count + name/value pairs). Lengths and
//! counts are varint `u64`, variant indexes varint `u32`.
//!
//! The fields asked for are decoded by the same decoder as whole documents
//! (so they come out exactly as [`format::decode`](crate::format::decode)
//! would give them); the others are skipped, checked as strictly as the
//! decoder checks them (variant indexes, booleans, varints, UTF-8, UUID
//! lengths, text-id rules, nesting up to
//! [`MAX_DECODE_DEPTH`]), so a damaged
//! document is a [`StorageError::Corrupt`] here whenever decoding it
//! would be one.

use crate::error::{printable_key, Result, StorageError};
use crate::format::FORMAT_VERSION;
use aurora_core::{Value, MAX_DECODE_DEPTH, MAX_TEXT_ID_LEN};

/// Reads chosen top-level fields of stored documents, one document at a
/// time, reusing its slots (no allocation per document beyond the values
/// read).
///
/// ```
/// use aurora_core::{doc, Value};
/// use aurora_storage::format;
/// use aurora_storage::skim::FieldReader;
/// let stored = format::encode(&doc! { "name": "Ada", "age": 36, "tags": ["x"] })?;
/// let mut reader = FieldReader::new(["name", "missing"]);
/// reader.read(b"users/1", &stored)?;
/// assert_eq!(reader.get_path("name"), Some(&Value::from("Ada")));
/// assert_eq!(reader.get_path("missing"), None);
/// assert_eq!(reader.get_path("age"), None, "not asked for");
/// # Ok::<(), aurora_storage::StorageError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct FieldReader {
    /// The wanted names, sorted, without duplicates.
    names: Vec<String>,
    /// The last document's value of each wanted name (`None`: absent).
    values: Vec<Option<Value>>,
}

impl FieldReader {
    /// A reader of the top-level fields `names` (duplicates are fine).
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Self {
        let mut names: Vec<String> = names.into_iter().map(|s| s.as_ref().to_owned()).collect();
        names.sort_unstable();
        names.dedup();
        let values = vec![None; names.len()];
        Self { names, values }
    }

    /// The wanted names, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Reads the wanted fields of one stored document (`stored` as
    /// [`format::encode`](crate::format::encode) wrote it; `key` names it
    /// in errors), replacing what the previous document left.
    ///
    /// # Errors
    /// [`StorageError::UnknownFormat`] for another format version,
    /// [`StorageError::Corrupt`] for bytes that are not a whole document
    /// (on error the slots are empty).
    pub fn read(&mut self, key: &[u8], stored: &[u8]) -> Result<()> {
        self.values.iter_mut().for_each(|v| *v = None);
        let result = self.read_body(key, stored);
        if result.is_err() {
            self.values.iter_mut().for_each(|v| *v = None);
        }
        result
    }

    fn read_body(&mut self, key: &[u8], stored: &[u8]) -> Result<()> {
        let corrupt = |reason: &str| StorageError::Corrupt { key: printable_key(key), reason: reason.into() };
        let (&version, body) = stored.split_first().ok_or_else(|| corrupt("empty value"))?;
        if version != FORMAT_VERSION {
            return Err(StorageError::UnknownFormat { key: printable_key(key), version, supported: FORMAT_VERSION });
        }
        let mut r = Cursor { bytes: body };
        r.doc_id().map_err(corrupt)?;
        let count = r.varint_u64().map_err(corrupt)?;
        for _ in 0..count {
            let name = r.str_bytes().map_err(corrupt)?;
            match self.position(name) {
                Some(i) => {
                    let (value, rest) = postcard::take_from_bytes::<Value>(r.bytes)
                        .map_err(|e| StorageError::Corrupt { key: printable_key(key), reason: e.to_string() })?;
                    r.bytes = rest;
                    // A repeated name keeps its last value, as decoding does.
                    self.values[i] = Some(value);
                }
                None => r.skip_value(1).map_err(corrupt)?,
            }
        }
        Ok(())
    }

    fn position(&self, name: &[u8]) -> Option<usize> {
        match self.names.as_slice() {
            [] => None,
            [only] => (only.as_bytes() == name).then_some(0),
            names => names.binary_search_by(|n| n.as_bytes().cmp(name)).ok(),
        }
    }

    /// The value at a dotted path (`"address.city"`, `"tags.0"`) in the
    /// last document read, exactly as
    /// [`Document::get_path`](aurora_core::Document::get_path) finds it;
    /// `None` when absent or when its top-level field was not asked for.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        let (head, rest) = path.split_once('.').unwrap_or((path, ""));
        self.values[self.position(head.as_bytes())?].as_ref()?.get_path(rest)
    }
}

/// The unread part of an encoding. Every step fails with a reason instead
/// of reading past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> std::result::Result<u8, &'static str> {
        let (&b, rest) = self.bytes.split_first().ok_or("unexpected end of a stored document")?;
        self.bytes = rest;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> std::result::Result<&'a [u8], &'static str> {
        let n = usize::try_from(n).map_err(|_| "length out of range")?;
        if n > self.bytes.len() {
            return Err("unexpected end of a stored document");
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// A varint of at most `max_bytes` bytes whose last byte is at most
    /// `last_max` when it is the `max_bytes`-th (postcard's rule).
    fn varint(&mut self, max_bytes: u32, last_max: u8) -> std::result::Result<u64, &'static str> {
        let mut out = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_bytes - 1 && b > last_max {
                    return Err("bad varint");
                }
                return Ok(out);
            }
        }
        Err("bad varint")
    }

    fn varint_u64(&mut self) -> std::result::Result<u64, &'static str> {
        self.varint(10, 0x01)
    }

    fn varint_u32(&mut self) -> std::result::Result<u64, &'static str> {
        self.varint(5, 0x0f)
    }

    /// A length-prefixed string's bytes, checked to be UTF-8 (ASCII, the
    /// common case, without the general decoder: a scan checks every
    /// string of every document it skims).
    fn str_bytes(&mut self) -> std::result::Result<&'a [u8], &'static str> {
        let len = self.varint_u64()?;
        let bytes = self.take(len)?;
        if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
            Ok(bytes)
        } else {
            Err("invalid UTF-8")
        }
    }

    fn uuid(&mut self) -> std::result::Result<(), &'static str> {
        match self.varint_u64()? {
            16 => self.take(16).map(drop),
            _ => Err("a UUID is not 16 bytes"),
        }
    }

    /// A document id, checked as decoding checks it.
    fn doc_id(&mut self) -> std::result::Result<(), &'static str> {
        match self.varint_u32()? {
            0 => self.uuid(),
            1 => {
                let text = self.str_bytes()?;
                if text.is_empty() || text.len() > MAX_TEXT_ID_LEN || text.contains(&0) {
                    return Err("invalid text id");
                }
                Ok(())
            }
            _ => Err("unknown document id kind"),
        }
    }

    /// Skips one `Value` at nesting level `level` (1 for a field's value).
    fn skip_value(&mut self, level: usize) -> std::result::Result<(), &'static str> {
        if level > MAX_DECODE_DEPTH {
            return Err("value nested too deep");
        }
        match self.varint_u32()? {
            0 => Ok(()),
            1 => match self.byte()? {
                0 | 1 => Ok(()),
                _ => Err("bad bool"),
            },
            2 | 7 => self.varint_u64().map(drop),
            3 => self.take(8).map(drop),
            4 => self.str_bytes().map(drop),
            5 => self.uuid(),
            6 => {
                let len = self.varint_u64()?;
                self.take(len).map(drop)
            }
            8 => {
                for _ in 0..self.varint_u64()? {
                    self.skip_value(level + 1)?;
                }
                Ok(())
            }
            9 => {
                for _ in 0..self.varint_u64()? {
                    self.str_bytes()?;
                    self.skip_value(level + 1)?;
                }
                Ok(())
            }
            _ => Err("unknown value kind"),
        }
    }
}

#[cfg(test)]
mod tests;
