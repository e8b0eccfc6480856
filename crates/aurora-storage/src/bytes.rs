//! `#[serde(with = "crate::bytes")]` for `Vec<u8>` fields: encoded as one
//! byte string instead of a sequence of `u8`s.
//!
//! In postcard both forms are a varint length followed by the bytes, so
//! records written either way read back either way; the byte string is
//! written with one copy instead of one serializer call per byte (the WAL
//! encodes every key and value of every commit).

use serde::de::{Error, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// Writes `bytes` as a byte string.
pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Reads a byte string (or, from a format that writes bytes as a
/// sequence, a sequence of `u8`).
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_byte_buf(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        // The hint comes from the input: bounded so a damaged length cannot
        // reserve more than the bytes that follow could fill.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::Op;

    /// `Op` as it was derived before: keys and values as sequences of `u8`.
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    enum SeqOp {
        Put { key: Vec<u8>, value: Vec<u8> },
        Delete { key: Vec<u8> },
        PutAtRevision { prefix: Vec<u8>, value: Vec<u8> },
        PutAtRevisionPart { prefix: Vec<u8>, part: u32, value: Vec<u8> },
    }

    #[test]
    fn byte_strings_encode_exactly_as_the_sequences_written_before() {
        let long: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        let ops = vec![
            Op::Put { key: b"dusers\x00\x02u1".to_vec(), value: long.clone() },
            Op::Delete { key: Vec::new() },
            Op::PutAtRevision { prefix: b"v".to_vec(), value: vec![0, 1, 2] },
            Op::PutAtRevisionPart { prefix: b"f".to_vec(), part: 7, value: long.clone() },
        ];
        let old = vec![
            SeqOp::Put { key: b"dusers\x00\x02u1".to_vec(), value: long.clone() },
            SeqOp::Delete { key: Vec::new() },
            SeqOp::PutAtRevision { prefix: b"v".to_vec(), value: vec![0, 1, 2] },
            SeqOp::PutAtRevisionPart { prefix: b"f".to_vec(), part: 7, value: long },
        ];
        let new_bytes = postcard::to_allocvec(&ops).unwrap();
        let old_bytes = postcard::to_allocvec(&old).unwrap();
        assert_eq!(new_bytes, old_bytes, "the WAL's bytes are unchanged");
        let read_old: Vec<Op> = postcard::from_bytes(&old_bytes).unwrap();
        assert_eq!(read_old, ops, "records written before read back");
        let read_new: Vec<SeqOp> = postcard::from_bytes(&new_bytes).unwrap();
        assert_eq!(read_new, old, "and the other way round");
    }
}
