//! How the sled backend stores a [`Versioned`]: `[2][revision: LEB128][bytes]`
//! (live) or `[3][revision: LEB128]` (a tombstone): 4 bytes of header for
//! a revision below 2²¹, where the first layout,
//! `[1][revision: u64 BE][kind: 0 tombstone | 1 live][bytes]`, took 10 —
//! sled 0.34 writes every value several times over (each insert, then its
//! leaf at each consolidation and split), so header bytes cost disk
//! several times. Values in the first layout are still read.

use crate::cold::Versioned;
use crate::error::{printable_key, Result, StorageError};
use crate::format::FORMAT_VERSION;

/// Header length of the first layout (`[1][revision: u64 BE][kind]`).
const FIRST_HEADER: usize = 1 + 8 + 1;
/// First byte of a live value in the compact layout.
const COMPACT_LIVE: u8 = 2;
/// First byte of a tombstone in the compact layout.
const COMPACT_TOMBSTONE: u8 = 3;

/// Appends `n` as LEB128 (7 bits a byte, low first; at most 10 bytes).
pub(crate) fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a LEB128 `u64` from the front of `raw`: the value and its length.
pub(crate) fn read_varint(raw: &[u8]) -> Option<(u64, usize)> {
    let mut n: u64 = 0;
    for (i, &b) in raw.iter().enumerate().take(10) {
        let bits = u64::from(b & 0x7F);
        if i == 9 && b > 1 {
            return None; // past 64 bits
        }
        n |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

pub(crate) fn encode_versioned(v: &Versioned) -> Vec<u8> {
    let body = v.value.as_deref().unwrap_or(&[]);
    let mut out = Vec::with_capacity(1 + 10 + body.len());
    encode_versioned_into(&mut out, v);
    out
}

/// Appends `v` encoded as [`encode_versioned`] does.
pub(crate) fn encode_versioned_into(out: &mut Vec<u8>, v: &Versioned) {
    out.push(if v.value.is_some() { COMPACT_LIVE } else { COMPACT_TOMBSTONE });
    push_varint(out, v.revision);
    out.extend_from_slice(v.value.as_deref().unwrap_or(&[]));
}

pub(crate) fn decode_versioned(key: &[u8], raw: &[u8]) -> Result<Versioned> {
    let corrupt = |reason: &str| StorageError::Corrupt { key: printable_key(key), reason: reason.into() };
    match raw.first() {
        None => return Err(corrupt("stored value shorter than its header")),
        Some(&kind @ (COMPACT_LIVE | COMPACT_TOMBSTONE)) => {
            let (revision, len) = read_varint(&raw[1..]).ok_or_else(|| corrupt("revision does not decode"))?;
            let body = &raw[1 + len..];
            return match kind {
                COMPACT_LIVE => Ok(Versioned { revision, value: Some(body.to_vec()) }),
                _ if body.is_empty() => Ok(Versioned { revision, value: None }),
                _ => Err(corrupt("tombstone with a body")),
            };
        }
        Some(&FORMAT_VERSION) => {}
        Some(&version) => {
            return Err(StorageError::UnknownFormat { key: printable_key(key), version, supported: COMPACT_TOMBSTONE })
        }
    }
    if raw.len() < FIRST_HEADER {
        return Err(corrupt("stored value shorter than its header"));
    }
    let mut rev = [0u8; 8];
    rev.copy_from_slice(&raw[1..9]);
    let value = match raw[9] {
        0 => None,
        1 => Some(raw[FIRST_HEADER..].to_vec()),
        _ => return Err(corrupt("unknown value kind")),
    };
    Ok(Versioned { revision: u64::from_be_bytes(rev), value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_round_trip_and_corruption() {
        for v in [
            Versioned { revision: 7, value: Some(b"abc".to_vec()) },
            Versioned { revision: u64::MAX, value: None },
            Versioned { revision: 1, value: Some(vec![]) },
        ] {
            assert_eq!(decode_versioned(b"k", &encode_versioned(&v)).unwrap(), v);
        }
        let mut raw = encode_versioned(&Versioned { revision: 1, value: Some(vec![1]) });
        raw[0] = 42;
        assert!(matches!(decode_versioned(b"k", &raw), Err(StorageError::UnknownFormat { version: 42, .. })));
        assert!(matches!(decode_versioned(b"k", &[COMPACT_LIVE, 0x80]), Err(StorageError::Corrupt { .. })));
        assert!(matches!(decode_versioned(b"k", &[COMPACT_TOMBSTONE, 1, 7]), Err(StorageError::Corrupt { .. })));
        assert!(matches!(decode_versioned(b"k", &[]), Err(StorageError::Corrupt { .. })));
        let past_64_bits = [COMPACT_LIVE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02];
        assert!(matches!(decode_versioned(b"k", &past_64_bits), Err(StorageError::Corrupt { .. })));
    }

    /// The first layout: `[1][revision: u64 BE][kind][bytes]`.
    fn first_layout(v: &Versioned) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        out.extend_from_slice(&v.revision.to_be_bytes());
        out.push(u8::from(v.value.is_some()));
        out.extend_from_slice(v.value.as_deref().unwrap_or(&[]));
        out
    }

    #[test]
    fn values_in_the_first_layout_are_still_read() {
        for v in [Versioned { revision: 7, value: Some(b"abc".to_vec()) }, Versioned { revision: 9, value: None }] {
            assert_eq!(decode_versioned(b"k", &first_layout(&v)).unwrap(), v);
        }
        assert!(matches!(
            decode_versioned(b"k", &first_layout(&Versioned { revision: 1, value: None })[..4]),
            Err(StorageError::Corrupt { .. })
        ));
    }

    #[test]
    fn the_compact_header_takes_4_bytes_up_to_revision_2_pow_21() {
        for (revision, header) in [(1u64, 2usize), (127, 2), (128, 3), (2_000_000, 4), (u64::MAX, 11)] {
            let v = Versioned { revision, value: Some(vec![7; 100]) };
            let raw = encode_versioned(&v);
            assert_eq!(raw.len(), header + 100, "revision {revision}");
            assert_eq!(decode_versioned(b"k", &raw).unwrap(), v);
        }
        assert!(encode_versioned(&Versioned { revision: 1_000_000, value: Some(vec![]) }).len() < FIRST_HEADER - 5);
    }
}
