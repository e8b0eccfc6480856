//! Versioned encodings: every stored value and every WAL record starts with
//! a format-version byte, because postcard is not self-describing.

use crate::error::{printable_key, Result, StorageError};
use serde::{de::DeserializeOwned, Serialize};

/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// Scratch buffers kept for [`encode`] up to this capacity; a larger one
/// (a large document) is released after use.
const SCRATCH_KEPT: usize = 64 << 10;

thread_local! {
    /// Per-thread scratch buffer [`encode`] writes into, so an encoding
    /// grows no vector step by step (postcard writes a value in many small
    /// pieces): the result is one allocation of the exact size.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encodes `value` as `[FORMAT_VERSION] ++ postcard(value)`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    with_scratch(|buf| encode_into(value, buf))
}

/// Runs `write` on an empty buffer — this thread's scratch buffer when it
/// is free — and returns what it wrote as one exact allocation.
fn with_scratch(write: impl Fn(&mut Vec<u8>) -> Result<()>) -> Result<Vec<u8>> {
    let scratch = SCRATCH.try_with(|cell| {
        // Re-entered (a value whose serialization encodes another): the
        // scratch buffer is in use, so that one writes into its own.
        let Ok(mut buf) = cell.try_borrow_mut() else { return None };
        buf.clear();
        let written = write(&mut buf).map(|()| buf.as_slice().to_vec());
        if buf.capacity() > SCRATCH_KEPT {
            *buf = Vec::new();
        }
        Some(written)
    });
    match scratch {
        Ok(Some(written)) => written,
        _ => {
            let mut out = Vec::new();
            write(&mut out)?;
            Ok(out)
        }
    }
}

/// [`encode`], refused as [`StorageError::TooLarge`] naming `what` when the
/// encoding would pass `limit` bytes: the encoding stops at the first write
/// past it (`size` = the bytes counted then, a lower bound), so an
/// oversized value costs at most `limit` bytes of buffer — the check of
/// [`check_encoded_len`] and the encoding in one pass.
pub fn encode_within<T: Serialize + ?Sized>(value: &T, limit: usize, what: &'static str) -> Result<Vec<u8>> {
    struct Bounded<'a> {
        out: &'a mut Vec<u8>,
        limit: usize,
        over: Option<usize>,
    }
    impl std::io::Write for Bounded<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.out.len() + buf.len() > self.limit {
                self.over = Some(self.out.len() + buf.len());
                return Err(std::io::Error::other("over the limit"));
            }
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    with_scratch(|buf| {
        buf.push(FORMAT_VERSION);
        if buf.len() > limit {
            return Err(StorageError::TooLarge { what, size: buf.len(), limit });
        }
        let mut bounded = Bounded { out: buf, limit, over: None };
        let encoded = postcard::to_io(value, &mut bounded).map(drop);
        if let Some(size) = bounded.over {
            return Err(StorageError::TooLarge { what, size, limit });
        }
        encoded.map_err(|e| StorageError::Corrupt { key: "<encoding>".into(), reason: format!("cannot encode: {e}") })
    })
}

/// Appends [`encode`]`(value)` to `out` (for a caller that frames or
/// concatenates encodings in a buffer of its own). On an error `out` may
/// hold part of the encoding after its original length.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    out.push(FORMAT_VERSION);
    postcard::to_io(value, out)
        .map_err(|e| StorageError::Corrupt { key: "<encoding>".into(), reason: format!("cannot encode: {e}") })?;
    Ok(())
}

/// Checks that [`encode`]`(value)` would be at most `limit` bytes, without
/// allocating or copying: the encoding runs into a counter of the slices it
/// would write and stops at the first one that passes the limit. Returns the
/// encoded length, or
/// [`StorageError::TooLarge`] naming `what` (with `size` = the bytes counted
/// before stopping, a lower bound).
pub fn check_encoded_len<T: Serialize + ?Sized>(value: &T, limit: usize, what: &'static str) -> Result<usize> {
    struct Counter {
        n: usize,
        limit: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.n += buf.len();
            if self.n > self.limit {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { n: 1, limit };
    let encoded = postcard::to_io(value, &mut counter).map(drop);
    if counter.n > limit {
        return Err(StorageError::TooLarge { what, size: counter.n, limit });
    }
    encoded.map_err(|e| StorageError::Corrupt { key: "<encoding>".into(), reason: format!("cannot encode: {e}") })?;
    Ok(counter.n)
}

/// Decodes [`encode`]'s output; `key` names the value in errors.
pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| StorageError::Corrupt { key: printable_key(key), reason: "empty value".into() })?;
    if version != FORMAT_VERSION {
        return Err(StorageError::UnknownFormat { key: printable_key(key), version, supported: FORMAT_VERSION });
    }
    postcard::from_bytes(body).map_err(|e| StorageError::Corrupt { key: printable_key(key), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_core::doc;

    #[test]
    fn round_trip_and_typed_errors() {
        let d = doc! { "a": 1 };
        let bytes = encode(&d).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        let back: aurora_core::Document = decode(b"k", &bytes).unwrap();
        assert_eq!(back, d);

        let mut future = bytes.clone();
        future[0] = 99;
        let err = decode::<aurora_core::Document>(b"users/1", &future).unwrap_err();
        assert!(matches!(err, StorageError::UnknownFormat { version: 99, .. }), "{err}");
        assert!(err.to_string().contains("users/1"));

        let err = decode::<aurora_core::Document>(b"k\x01", &bytes[..3]).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("k\\x01"));
        assert!(matches!(decode::<u8>(b"k", &[]), Err(StorageError::Corrupt { .. })));
    }

    #[test]
    fn encodings_through_the_scratch_buffer_are_exact_whatever_came_before() {
        let big = doc! { "a": "x".repeat(SCRATCH_KEPT * 2) };
        let small = doc! { "b": 1 };
        let direct = |d: &aurora_core::Document| {
            let mut out = Vec::new();
            encode_into(d, &mut out).unwrap();
            out
        };
        for d in [&small, &big, &small, &small] {
            let bytes = encode(d).unwrap();
            assert_eq!(bytes, direct(d));
            assert_eq!(bytes.capacity(), bytes.len(), "one allocation of the exact size");
            assert_eq!(&decode::<aurora_core::Document>(b"k", &bytes).unwrap(), d);
        }
        let mut framed = vec![9, 9];
        encode_into(&small, &mut framed).unwrap();
        assert_eq!(&framed[..2], &[9, 9]);
        assert_eq!(&framed[2..], encode(&small).unwrap().as_slice(), "appended after what was there");
    }

    #[test]
    fn an_encoding_within_a_limit_is_the_encoding_and_refused_past_it() {
        let d = doc! { "a": "x".repeat(1000) };
        let bytes = encode(&d).unwrap();
        assert_eq!(encode_within(&d, bytes.len(), "document").unwrap(), bytes);
        let err = encode_within(&d, bytes.len() - 1, "document").unwrap_err();
        assert!(
            matches!(err, StorageError::TooLarge { what: "document", limit, .. } if limit == bytes.len() - 1),
            "{err}"
        );
        assert!(matches!(encode_within(&d, 0, "document"), Err(StorageError::TooLarge { size: 1, .. })));
        assert_eq!(encode(&d).unwrap(), bytes, "the scratch buffer is clean after a refusal");
    }

    #[test]
    fn encoded_len_is_exact_below_the_limit_and_stops_above_it() {
        let d = doc! { "a": "x".repeat(1000) };
        let len = encode(&d).unwrap().len();
        assert_eq!(check_encoded_len(&d, len, "value").unwrap(), len);
        let err = check_encoded_len(&d, len - 1, "value").unwrap_err();
        assert!(matches!(err, StorageError::TooLarge { what: "value", limit, .. } if limit == len - 1), "{err}");
    }
}
