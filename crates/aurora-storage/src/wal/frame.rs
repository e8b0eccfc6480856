//! WAL record framing: `[len: u32 LE][crc32(len): u32 LE][crc32(payload): u32 LE][payload]`.
//!
//! The header has its own checksum so that a damaged length is detected
//! before it is trusted; the payload checksum then covers the record.

use crate::batch::{Op, Revision};
use serde::{Deserialize, Serialize};

/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 12;

/// A record as written (borrowing the batch's operations).
#[derive(Serialize)]
pub(crate) struct RecordRef<'a> {
    pub(crate) revision: Revision,
    pub(crate) ops: &'a [Op],
}

/// A record as read back.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) revision: Revision,
    pub(crate) ops: Vec<Op>,
}

/// Frames the payload `out[start + HEADER_LEN..]`, written after
/// `HEADER_LEN` placeholder bytes at `start`: fills in the header, so that
/// `out[start..]` is what [`write_frame`] of that payload writes.
pub(crate) fn seal_frame(out: &mut [u8], start: usize) {
    let (head, payload) = out[start..].split_at_mut(HEADER_LEN);
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX).to_le_bytes();
    head[..4].copy_from_slice(&len);
    head[4..8].copy_from_slice(&crc32fast::hash(&len).to_le_bytes());
    head[8..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
}

/// Appends a framed payload to `out` (the tests' way to write frames;
/// the log itself frames in place with [`seal_frame`]).
#[cfg(test)]
pub(crate) fn write_frame(out: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What was found at one offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A whole, checksummed payload and the offset just past it.
    Valid { payload: &'a [u8], next: usize },
    /// The header is valid but the payload checksum fails; `next` is where
    /// the following frame would start.
    BadPayload { next: usize },
    /// The header is valid but declares more bytes than the segment holds:
    /// a record torn by a partial write (its extent reaches the end, so
    /// nothing after it is to be searched).
    PastEnd,
    /// Not a frame: the end of valid data (torn, zeroed or damaged header).
    Invalid(&'static str),
    /// Exactly at the end of the data.
    End,
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&data[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Reads the frame starting at `at`.
pub(crate) fn read_frame(data: &[u8], at: usize) -> Frame<'_> {
    let rest = data.len() - at;
    if rest == 0 {
        return Frame::End;
    }
    if rest < HEADER_LEN {
        return Frame::Invalid("truncated record header");
    }
    if crc32fast::hash(&data[at..at + 4]) != u32_at(data, at + 4) {
        return Frame::Invalid("record header checksum mismatch");
    }
    let len = u32_at(data, at) as usize;
    let start = at + HEADER_LEN;
    if len > data.len() - start {
        return Frame::PastEnd;
    }
    let payload = &data[start..start + len];
    if crc32fast::hash(payload) != u32_at(data, at + 8) {
        return Frame::BadPayload { next: start + len };
    }
    Frame::Valid { payload, next: start + len }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_sealed_in_place_is_the_written_frame() {
        for payload in [&b""[..], b"x", &[7u8; 300]] {
            let mut written = vec![1, 2, 3];
            write_frame(&mut written, payload);
            let mut sealed = vec![1, 2, 3];
            sealed.extend_from_slice(&[0xAA; HEADER_LEN]);
            sealed.extend_from_slice(payload);
            seal_frame(&mut sealed, 3);
            assert_eq!(sealed, written);
        }
    }

    #[test]
    fn frames_round_trip_and_detect_damage() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello");
        write_frame(&mut buf, b"");
        let Frame::Valid { payload, next } = read_frame(&buf, 0) else { panic!("first frame") };
        assert_eq!(payload, b"hello");
        assert!(matches!(read_frame(&buf, next), Frame::Valid { payload: b"", .. }));
        assert_eq!(read_frame(&buf, buf.len()), Frame::End);

        let mut torn = buf.clone();
        torn.truncate(HEADER_LEN + 2);
        assert!(matches!(read_frame(&torn, 0), Frame::PastEnd));

        let mut flipped = buf.clone();
        flipped[HEADER_LEN + 1] ^= 0x10;
        assert!(matches!(read_frame(&flipped, 0), Frame::BadPayload { next } if next == HEADER_LEN + 5));

        let mut bad_len = buf.clone();
        bad_len[0] ^= 0x01;
        assert!(matches!(read_frame(&bad_len, 0), Frame::Invalid(_)));

        assert!(matches!(read_frame(&[0u8; 20], 0), Frame::Invalid(_)));
    }
}
