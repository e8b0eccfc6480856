//! The on-disk form of a packed index chunk (`aurora-storage`'s
//! `cold/sled_store/packed/chunk.rs`), written out a second time for tests
//! that read chunks from sled or forge damaged ones: a version byte `1`,
//! then per entry `[shared prefix length][rest length][rest][value
//! length][value]`, each length an unsigned LEB128 varint, the key being
//! the previous entry's first `shared` bytes followed by `rest`. Kept apart
//! from the library's decoder on purpose: a test that read chunks with the
//! code under test would agree with it by construction.

/// The version byte of the chunk form above.
pub const CHUNK_V1: u8 = 1;

/// Appends `n` as an unsigned LEB128 varint (7 bits a byte, low first).
pub fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// `n` as an unsigned LEB128 varint.
pub fn varint(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    write_varint(&mut out, n);
    out
}

/// Reads the varint at `*at` and moves `*at` past it.
///
/// # Panics
/// When `raw` ends inside the varint (test input is well formed).
pub fn read_varint(raw: &[u8], at: &mut usize) -> u64 {
    let (mut n, mut shift) = (0u64, 0);
    loop {
        let b = raw[*at];
        *at += 1;
        n |= u64::from(b & 0x7F) << shift;
        if b < 0x80 {
            return n;
        }
        shift += 7;
    }
}

/// The entries of a chunk: full keys and their stored values, in order.
///
/// # Panics
/// When the version byte is not [`CHUNK_V1`] or an entry runs past the end.
pub fn decode(raw: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    assert_eq!(raw.first(), Some(&CHUNK_V1), "chunk version");
    let length = |at: &mut usize| read_varint(raw, at) as usize;
    let (mut at, mut out, mut key) = (1usize, Vec::new(), Vec::<u8>::new());
    while at < raw.len() {
        let shared = length(&mut at);
        let rest = length(&mut at);
        key.truncate(shared);
        key.extend_from_slice(&raw[at..at + rest]);
        at += rest;
        let value = length(&mut at);
        out.push((key.clone(), raw[at..at + value].to_vec()));
        at += value;
    }
    out
}

/// A chunk of `entries` (keys ascending), each key sharing its prefix with
/// the one before.
pub fn encode(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![CHUNK_V1];
    let mut prev: &[u8] = &[];
    for (k, v) in entries {
        let shared = prev.iter().zip(k).take_while(|(a, b)| a == b).count();
        write_varint(&mut out, shared as u64);
        write_varint(&mut out, (k.len() - shared) as u64);
        out.extend_from_slice(&k[shared..]);
        write_varint(&mut out, v.len() as u64);
        out.extend_from_slice(v);
        prev = k;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_and_varints_round_trip() {
        let entries: Vec<(Vec<u8>, Vec<u8>)> =
            vec![(b"age\x001".to_vec(), vec![2, 5]), (b"age\x0012".to_vec(), vec![0; 300]), (b"b".to_vec(), vec![])];
        let raw = encode(&entries);
        assert_eq!(raw[..3], [CHUNK_V1, 0, 5], "version, no shared prefix, 5 bytes of key");
        assert_eq!(decode(&raw), entries);
        for n in [0, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let bytes = varint(n);
            let mut at = 0;
            assert_eq!((read_varint(&bytes, &mut at), at), (n, bytes.len()));
        }
    }
}
