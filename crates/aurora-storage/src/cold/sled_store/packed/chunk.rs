//! The encoding of a chunk of a packed tree: a sorted run of entries (key
//! suffix, version) in one sled value.
//!
//! `[1][entry]*`, each entry `[shared: LEB128][rest length: LEB128][rest]
//! [value length: LEB128][value]`: the key is the first `shared` bytes of
//! the previous entry's key followed by `rest` (index keys of one field
//! share most of their bytes), the value a [`Versioned`] as `values`
//! stores it. Keys are strictly ascending. A value that does not decode —
//! an unknown first byte, a length past the end, keys out of order — is
//! [`StorageError::Corrupt`] naming the chunk's key, never a panic.

use crate::cold::sled_store::values::{decode_versioned, encode_versioned_into, push_varint, read_varint};
use crate::cold::Versioned;
use crate::error::{printable_key, Result, StorageError};

/// First byte of a chunk in this encoding.
pub(crate) const CHUNK_V1: u8 = 1;

/// A value of an entry as it is merged: still encoded (from a stored
/// chunk) or a version to encode (from a write).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    /// A stored value, in the `values` encoding.
    Raw(&'a [u8]),
    /// A new version.
    New(&'a Versioned),
}

impl Val<'_> {
    /// Bytes the encoded value takes (an upper bound for a new one).
    pub(crate) fn len(&self) -> usize {
        match self {
            Val::Raw(r) => r.len(),
            Val::New(v) => 11 + v.value.as_ref().map_or(0, Vec::len),
        }
    }

    /// Whether this is a tombstone written at or before `horizon`.
    pub(crate) fn is_tombstone_by(&self, key: &[u8], horizon: u64) -> Result<bool> {
        let v = match self {
            Val::Raw(r) => decode_versioned(key, r)?,
            Val::New(v) => (*v).clone(),
        };
        Ok(v.value.is_none() && v.revision <= horizon)
    }
}

/// The entries of a decoded chunk: keys (owned: they are stored
/// prefix-compressed) and their encoded values (borrowed from the chunk).
pub(crate) type Entries<'a> = Vec<(Vec<u8>, Val<'a>)>;

/// Encodes `entries` (ascending, distinct keys) as a chunk.
pub(crate) fn encode(entries: &[(Vec<u8>, Val<'_>)]) -> Vec<u8> {
    let bytes: usize = entries.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    let mut out = Vec::with_capacity(1 + bytes);
    out.push(CHUNK_V1);
    append(&mut out, &[], entries.iter().map(|(k, v)| (k.as_slice(), *v)));
    out
}

/// Appends `entries` (ascending, distinct keys, all above `prev`) to the
/// chunk `out` whose last key is `prev` (empty for a new chunk).
pub(crate) fn append<'k>(out: &mut Vec<u8>, prev: &[u8], entries: impl Iterator<Item = (&'k [u8], Val<'k>)>) {
    let mut prev_buf: Vec<u8> = prev.to_vec();
    for (key, value) in entries {
        let shared = prev_buf.iter().zip(key.iter()).take_while(|(a, b)| a == b).count();
        push_varint(out, shared as u64);
        push_varint(out, (key.len() - shared) as u64);
        out.extend_from_slice(&key[shared..]);
        match value {
            Val::Raw(r) => {
                push_varint(out, r.len() as u64);
                out.extend_from_slice(r);
            }
            Val::New(v) => {
                let mut encoded = Vec::with_capacity(value.len());
                encode_versioned_into(&mut encoded, v);
                push_varint(out, encoded.len() as u64);
                out.extend_from_slice(&encoded);
            }
        }
        prev_buf.clear();
        prev_buf.extend_from_slice(key);
    }
}

/// A walk over the entries of an encoded chunk, in key order; the first
/// error ends it.
pub(crate) struct Decoder<'a, 'k> {
    raw: &'a [u8],
    at: usize,
    key: Vec<u8>,
    /// The chunk's sled key, for errors.
    chunk_key: &'k [u8],
    started: bool,
    failed: bool,
}

impl<'a, 'k> Decoder<'a, 'k> {
    /// Starts decoding `raw`, the value stored under the sled key
    /// `chunk_key` (named in errors, with the tree's prefix by the caller).
    pub(crate) fn new(chunk_key: &'k [u8], raw: &'a [u8]) -> Result<Self> {
        match raw.first() {
            Some(&CHUNK_V1) => Ok(Self { raw, at: 1, key: Vec::new(), chunk_key, started: false, failed: false }),
            Some(&version) => {
                Err(StorageError::UnknownFormat { key: printable_key(chunk_key), version, supported: CHUNK_V1 })
            }
            None => Err(corrupt(chunk_key, "an empty chunk")),
        }
    }

    fn varint(&mut self) -> Result<usize> {
        let rest = self.raw.get(self.at..).unwrap_or_default();
        let (n, len) = read_varint(rest).ok_or_else(|| corrupt(self.chunk_key, "a length does not decode"))?;
        self.at += len;
        usize::try_from(n).map_err(|_| corrupt(self.chunk_key, "a length past the chunk"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.raw.len());
        let end = end.ok_or_else(|| corrupt(self.chunk_key, "an entry runs past the end of the chunk"))?;
        let raw: &'a [u8] = self.raw;
        let bytes = raw.get(self.at..end).ok_or_else(|| corrupt(self.chunk_key, "an entry past the chunk"))?;
        self.at = end;
        Ok(bytes)
    }

    /// The key of the last entry read (empty before the first).
    pub(crate) fn last_key(&self) -> &[u8] {
        &self.key
    }

    /// The next entry: its key (valid until the next call) and its encoded
    /// value.
    pub(crate) fn next_entry(&mut self) -> Option<Result<(&[u8], &'a [u8])>> {
        if self.failed || self.at >= self.raw.len() {
            return None;
        }
        let step = self.step();
        if step.is_err() {
            self.failed = true;
        }
        Some(step.map(|value| (self.key.as_slice(), value)))
    }

    fn step(&mut self) -> Result<&'a [u8]> {
        let shared = self.varint()?;
        let rest_len = self.varint()?;
        if shared > self.key.len() || (!self.started && shared > 0) {
            return Err(corrupt(self.chunk_key, "a key shares more bytes than the previous one has"));
        }
        let rest = self.take(rest_len)?;
        // The first `shared` bytes are the previous key's: the new key is
        // above it when its rest is above the previous key's rest.
        if self.started && rest <= self.key.get(shared..).unwrap_or_default() {
            return Err(corrupt(self.chunk_key, "keys out of order"));
        }
        self.key.truncate(shared);
        self.key.extend_from_slice(rest);
        self.started = true;
        let value_len = self.varint()?;
        self.take(value_len)
    }
}

fn corrupt(chunk_key: &[u8], reason: &str) -> StorageError {
    StorageError::Corrupt { key: printable_key(chunk_key), reason: format!("packed index chunk: {reason}") }
}

/// Every entry of the chunk `raw` (stored under `chunk_key`).
pub(crate) fn decode<'a>(chunk_key: &[u8], raw: &'a [u8]) -> Result<Entries<'a>> {
    let mut d = Decoder::new(chunk_key, raw)?;
    let mut out = Vec::new();
    while let Some(entry) = d.next_entry() {
        let (k, v) = entry?;
        out.push((k.to_vec(), Val::Raw(v)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn live(revision: u64, v: &[u8]) -> Versioned {
        Versioned { revision, value: Some(v.to_vec()) }
    }

    #[test]
    fn a_chunk_round_trips_and_shares_key_prefixes() {
        let versions = [live(1, b"a"), Versioned { revision: 2, value: None }, live(300, b"")];
        let entries: Vec<(Vec<u8>, Val<'_>)> = vec![
            (b"age\0\x10id0001".to_vec(), Val::New(&versions[0])),
            (b"age\0\x10id0002".to_vec(), Val::New(&versions[1])),
            (b"age\0\x11id0003".to_vec(), Val::New(&versions[2])),
        ];
        let raw = encode(&entries);
        assert!(
            raw.len() < 45, // 54 without sharing
            "shared prefixes are not stored again: {} bytes",
            raw.len()
        );
        let decoded = decode(b"k", &raw).unwrap();
        assert_eq!(decoded.len(), 3);
        for ((k, v), (ek, ev)) in decoded.iter().zip(entries.iter().zip(versions.iter()).map(|((k, _), v)| (k, v))) {
            assert_eq!(k, ek);
            let Val::Raw(r) = v else { panic!("decoded values are raw") };
            assert_eq!(&decode_versioned(k, r).unwrap(), ev);
        }
        assert_eq!(encode(&decoded), raw, "a raw value is copied as it is");
        assert!(decode(b"k", &[CHUNK_V1]).unwrap().is_empty());
    }

    #[test]
    fn damaged_chunks_are_typed_errors() {
        assert!(matches!(decode(b"k", &[]), Err(StorageError::Corrupt { .. })));
        assert!(matches!(decode(b"k", &[9, 0]), Err(StorageError::UnknownFormat { version: 9, .. })));
        // Shares bytes with no previous key.
        assert!(matches!(decode(b"k", &[CHUNK_V1, 1, 0, 0]), Err(StorageError::Corrupt { .. })));
        // A key longer than the chunk.
        assert!(matches!(decode(b"k", &[CHUNK_V1, 0, 50, 1]), Err(StorageError::Corrupt { .. })));
        // Keys out of order: "b" then "a".
        let v = [2u8, 1];
        let raw = [&[CHUNK_V1, 0, 1, b'b', 2][..], &v, &[0, 1, b'a', 2], &v].concat();
        let err = decode(b"k", &raw).unwrap_err();
        assert!(matches!(&err, StorageError::Corrupt { reason, .. } if reason.contains("order")), "{err}");
    }

    fn cases() -> u32 {
        std::env::var("AURORA_PACKED_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// Arbitrary bytes never panic the decoder: a chunk decodes or is
        /// a typed error.
        #[test]
        fn arbitrary_bytes_decode_or_fail_typed(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut raw = raw;
            if let Some(first) = raw.first_mut() {
                if *first % 2 == 0 { *first = CHUNK_V1; }
            }
            match decode(b"k", &raw) {
                Ok(entries) => {
                    for w in entries.windows(2) {
                        prop_assert!(w[0].0 < w[1].0);
                    }
                }
                Err(StorageError::Corrupt { .. } | StorageError::UnknownFormat { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
    }
}
