//! Reading the WAL back at open: every intact record after the cold store's
//! applied revision is replayed; a torn or damaged tail of the newest segment
//! is cut off; damage anywhere else is an error.

use super::frame::{read_frame, Frame, Record};
use crate::batch::Revision;
use crate::error::{Result, StorageError};
use crate::format;
use std::path::{Path, PathBuf};

/// What one segment held.
#[derive(Debug)]
pub(crate) struct SegmentScan {
    /// Intact records, in order.
    pub(crate) records: Vec<Record>,
    /// Length of the intact prefix.
    pub(crate) valid_len: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub(crate) torn: Option<&'static str>,
}

/// Parses a segment's bytes. `path` names it in errors.
pub(crate) fn scan_segment(path: &Path, data: &[u8]) -> Result<SegmentScan> {
    let mut records = Vec::new();
    let mut at = 0usize;
    let corrupt = |offset: usize, reason: String| StorageError::WalCorrupt {
        segment: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    let torn = loop {
        match read_frame(data, at) {
            Frame::End => break None,
            Frame::Invalid(reason) => break Some(reason),
            Frame::BadPayload { next } => {
                // A damaged record followed by an intact one is not a torn
                // tail: truncating would drop acknowledged records.
                if matches!(read_frame(data, next), Frame::Valid { .. }) {
                    return Err(corrupt(at, "record checksum mismatch before intact records".into()));
                }
                break Some("record checksum mismatch");
            }
            Frame::Valid { payload, next } => {
                let record: Record = format::decode(format!("wal@{at}").as_bytes(), payload)?;
                if let Some(prev) = records.last().map(|r: &Record| r.revision) {
                    if record.revision <= prev {
                        return Err(corrupt(at, format!("revision {} after {prev}", record.revision)));
                    }
                }
                records.push(record);
                at = next;
            }
        }
    };
    Ok(SegmentScan { records, valid_len: at as u64, torn })
}

/// Reads all segments of `dir` in order and returns the records after
/// `after`. A torn tail of the newest segment is truncated on disk (and
/// logged); damage in an older segment is [`StorageError::WalCorrupt`].
pub(crate) fn replay(dir: &Path, after: Revision) -> Result<Vec<Record>> {
    let segments = super::list_segments(dir)?;
    let mut out = Vec::new();
    let count = segments.len();
    for (i, (_, path)) in segments.into_iter().enumerate() {
        let data = std::fs::read(&path).map_err(|e| StorageError::io(format!("reading {}", path.display()), e))?;
        let scan = scan_segment(&path, &data)?;
        if let Some(reason) = scan.torn {
            if i + 1 != count {
                return Err(StorageError::WalCorrupt {
                    segment: path,
                    offset: scan.valid_len,
                    reason: format!("{reason} in a segment that is not the newest"),
                });
            }
            truncate_tail(&path, scan.valid_len, data.len() as u64, reason)?;
        }
        if let (Some(prev), Some(first)) = (out.last().map(|r: &Record| r.revision), scan.records.first()) {
            if first.revision <= prev {
                return Err(StorageError::WalCorrupt {
                    segment: path,
                    offset: 0,
                    reason: format!("segment starts at revision {} after {prev}", first.revision),
                });
            }
        }
        out.extend(scan.records.into_iter().filter(|r| r.revision > after));
    }
    Ok(out)
}

fn truncate_tail(path: &PathBuf, valid: u64, total: u64, reason: &str) -> Result<()> {
    tracing::warn!(segment = %path.display(), valid, discarded = total - valid, reason, "discarding torn WAL tail");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io(format!("opening {} to cut its torn tail", path.display()), e))?;
    f.set_len(valid)
        .and_then(|()| f.sync_all())
        .map_err(|e| StorageError::io(format!("cutting the torn tail of {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::super::frame::{write_frame, RecordRef, HEADER_LEN};
    use super::*;
    use crate::batch::Op;

    fn record(rev: Revision) -> Vec<u8> {
        let ops = [Op::Put { key: format!("k{rev}").into_bytes(), value: vec![rev as u8; 10] }];
        let payload = format::encode(&RecordRef { revision: rev, ops: &ops }).unwrap();
        let mut out = Vec::new();
        write_frame(&mut out, &payload);
        out
    }

    fn segment(revs: &[Revision]) -> Vec<u8> {
        revs.iter().flat_map(|r| record(*r)).collect()
    }

    fn revs(scan: &SegmentScan) -> Vec<Revision> {
        scan.records.iter().map(|r| r.revision).collect()
    }

    #[test]
    fn torn_tail_is_cut_at_every_length() {
        let full = segment(&[1, 2, 3]);
        let two = record(1).len() + record(2).len();
        for cut in two..full.len() {
            let scan = scan_segment(Path::new("s"), &full[..cut]).unwrap();
            assert_eq!(revs(&scan), vec![1, 2], "cut at {cut}");
            assert_eq!(scan.valid_len, two as u64);
            assert_eq!(scan.torn.is_some(), cut > two);
        }
    }

    #[test]
    fn flipped_bit_in_last_record_is_a_torn_tail() {
        let mut data = segment(&[1, 2, 3]);
        let last = data.len() - 3;
        data[last] ^= 0x04;
        let scan = scan_segment(Path::new("s"), &data).unwrap();
        assert_eq!(revs(&scan), vec![1, 2]);
        assert!(scan.torn.is_some());
    }

    #[test]
    fn flipped_bit_before_intact_records_is_an_error() {
        let mut data = segment(&[1, 2, 3]);
        data[HEADER_LEN + 2] ^= 0x04;
        let err = scan_segment(Path::new("seg"), &data).unwrap_err();
        assert!(matches!(err, StorageError::WalCorrupt { offset: 0, .. }), "{err}");
    }

    #[test]
    fn replay_truncates_newest_and_rejects_older_damage() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(super::super::segment_path(dir.path(), 1), segment(&[1, 2])).unwrap();
        let mut newest = segment(&[3, 4]);
        newest.extend_from_slice(&[7, 7, 7]);
        let newest_path = super::super::segment_path(dir.path(), 3);
        std::fs::write(&newest_path, &newest).unwrap();
        let got: Vec<_> = replay(dir.path(), 1).unwrap().into_iter().map(|r| r.revision).collect();
        assert_eq!(got, vec![2, 3, 4]);
        assert_eq!(std::fs::metadata(&newest_path).unwrap().len(), newest.len() as u64 - 3);

        let mut old = segment(&[1, 2]);
        old.truncate(old.len() - 1);
        std::fs::write(super::super::segment_path(dir.path(), 1), old).unwrap();
        assert!(matches!(replay(dir.path(), 0), Err(StorageError::WalCorrupt { .. })));
    }
}
