//! Versioned encodings: every stored value and every WAL record starts with
//! a format-version byte, because postcard is not self-describing.

use crate::error::{printable_key, Result, StorageError};
use serde::{de::DeserializeOwned, Serialize};

/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// Encodes `value` as `[FORMAT_VERSION] ++ postcard(value)`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = vec![FORMAT_VERSION];
    postcard::to_io(value, &mut out)
        .map_err(|e| StorageError::Corrupt { key: "<encoding>".into(), reason: format!("cannot encode: {e}") })?;
    Ok(out)
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
    fn encoded_len_is_exact_below_the_limit_and_stops_above_it() {
        let d = doc! { "a": "x".repeat(1000) };
        let len = encode(&d).unwrap().len();
        assert_eq!(check_encoded_len(&d, len, "value").unwrap(), len);
        let err = check_encoded_len(&d, len - 1, "value").unwrap_err();
        assert!(matches!(err, StorageError::TooLarge { what: "value", limit, .. } if limit == len - 1), "{err}");
    }
}
