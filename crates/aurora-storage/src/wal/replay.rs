//! Reading the WAL back at open, under the recovery rules of
//! `docs/durability.md`:
//!
//! - only the bytes after the last intact record of the **newest** segment,
//!   with no intact record anywhere after them, are a torn tail (cut off);
//! - zeros from the end of the last intact record to the end of a file are
//!   not data but space written ahead of the log (a preallocated segment):
//!   the log ends there exactly as at a cut end (a torn record followed by
//!   zeros is a torn tail as above);
//! - every segment's first record is the revision in its name, revisions
//!   are contiguous inside a segment and across segments, and the oldest
//!   segment covers the revision after the cold store's checkpoint — so a
//!   missing, emptied or cut-short older segment, or a missing cold store,
//!   is a gap;
//! - any other damage, and any gap, refuses to open with
//!   [`StorageError::WalCorrupt`] naming the segment and offset — unless
//!   the caller chose [`WalRecovery::KeepValidPrefix`], which keeps the
//!   longest valid prefix, moves everything after it aside and reports it.

use super::frame::{read_frame, Frame, Record, HEADER_LEN};
use crate::batch::Revision;
use crate::config::WalRecovery;
use crate::error::{Result, StorageError};
use crate::format;
use std::path::{Path, PathBuf};

/// Where and why the valid data of a segment ends early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Byte offset of the first byte that is not part of an intact record.
    pub(crate) offset: u64,
    /// What was found there.
    pub(crate) reason: String,
}

/// What one segment held.
#[derive(Debug)]
pub(crate) struct SegmentScan {
    /// Intact records, in order, up to the first damage.
    pub(crate) records: Vec<Record>,
    /// Length of the intact prefix.
    pub(crate) valid_len: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub(crate) damage: Option<Damage>,
    /// Whether an intact record stands somewhere after the damage (so the
    /// damage is not a torn tail).
    pub(crate) intact_after: bool,
}

/// Decodes the record of a valid frame; `None` if it does not decode.
fn decode_record(payload: &[u8]) -> Option<Record> {
    format::decode::<Record>(b"wal", payload).ok()
}

/// Whether any offset from `from` on starts a frame whose header and
/// payload checksums hold, whose payload decodes as a record, and whose
/// revision is above `above` (the last intact revision before the damage:
/// a real record written after the damaged one). Random bytes pass both
/// checksums with a chance of 2^-64 per offset.
pub(crate) fn intact_record_after(data: &[u8], from: usize, above: Revision) -> bool {
    (from..data.len().saturating_sub(HEADER_LEN - 1)).any(|at| match read_frame(data, at) {
        Frame::Valid { payload, .. } => decode_record(payload).is_some_and(|r| r.revision > above),
        _ => false,
    })
}

/// Parses a segment's bytes: the intact records up to the first damage,
/// with the revisions checked to follow each other by exactly one.
pub(crate) fn scan_segment(data: &[u8]) -> SegmentScan {
    let mut records: Vec<Record> = Vec::new();
    let mut at = 0usize;
    // Where the search for intact records after the damage starts: past
    // the damaged record's extent when its header is trustworthy (a torn
    // record may carry a stored blob that happens to hold a WAL frame).
    let mut search_from = 0usize;
    let damage = loop {
        let reason = match read_frame(data, at) {
            Frame::End => break None,
            // Zeros from here to the end are space written ahead of the log
            // (a preallocated segment): the log ends here, as at a cut end.
            // A torn record before them is still a torn tail (below).
            Frame::Invalid(_) if data[at..].iter().all(|b| *b == 0) => break None,
            Frame::PastEnd => {
                search_from = data.len();
                "record extends past the end of the segment".to_string()
            }
            Frame::Invalid(reason) => {
                search_from = at + 1;
                reason.to_string()
            }
            Frame::BadPayload { next } => {
                search_from = next;
                "record checksum mismatch".to_string()
            }
            Frame::Valid { payload, next } => {
                search_from = next;
                match decode_record(payload) {
                    None => "record does not decode".to_string(),
                    Some(record) => match records.last().map(|r| r.revision) {
                        Some(prev) if record.revision != prev + 1 => {
                            format!("revision {} follows revision {prev}", record.revision)
                        }
                        _ => {
                            records.push(record);
                            at = next;
                            continue;
                        }
                    },
                }
            }
        };
        break Some(Damage { offset: at as u64, reason });
    };
    let above = records.last().map_or(0, |r| r.revision);
    let intact_after = damage.is_some() && intact_record_after(data, search_from, above);
    SegmentScan { records, valid_len: at as u64, damage, intact_after }
}

/// What recovery found and did, for [`Store::recovery_report`](crate::Store::recovery_report).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The cold store's checkpoint revision at open.
    pub checkpoint: Revision,
    /// Records replayed from the WAL (those after the checkpoint).
    pub replayed: usize,
    /// Bytes cut from the newest segment as a torn tail (records never
    /// acknowledged in `Strict`, inside the loss window otherwise).
    pub torn_tail_bytes: u64,
    /// What [`WalRecovery::KeepValidPrefix`] dropped; `None` when nothing was.
    pub salvaged: Option<Salvaged>,
}

/// What a salvaging open dropped: everything after the last revision it kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salvaged {
    /// The last revision kept.
    pub kept_through: Revision,
    /// The highest revision seen in the dropped bytes (or `kept_through`):
    /// the store reopens at this revision, so no dropped revision is ever
    /// given to a new write.
    pub highest_dropped: Revision,
    /// The segment where valid data ended.
    pub segment: PathBuf,
    /// The byte offset in it.
    pub offset: u64,
    /// Why it ended there.
    pub reason: String,
    /// Bytes of WAL moved aside (not replayed).
    pub dropped_bytes: u64,
    /// Where the dropped bytes were moved: files named `*.log.dropped` in
    /// a folder of their own per salvage, `wal/dropped-<microseconds>/`,
    /// kept for inspection.
    pub moved_to: Vec<PathBuf>,
}

/// The outcome of reading the WAL at open.
pub(crate) struct Replay {
    /// Records after the checkpoint, in revision order, contiguous.
    pub(crate) records: Vec<Record>,
    /// What was found and done.
    pub(crate) report: RecoveryReport,
}

/// A refusal: where valid data ended and why.
struct Stop {
    segment: usize,
    offset: u64,
    reason: String,
}

/// Reads all segments of `dir` in order and returns the records after
/// `checkpoint`, applying the module's rules.
pub(crate) fn replay(dir: &Path, checkpoint: Revision, mode: WalRecovery) -> Result<Replay> {
    let segments = super::list_segments(dir)?;
    let mut report = RecoveryReport { checkpoint, ..RecoveryReport::default() };
    if segments.is_empty() {
        if checkpoint > 0 {
            return Err(StorageError::WalCorrupt {
                segment: dir.to_path_buf(),
                offset: 0,
                reason: format!(
                    "no WAL segment, but the cold store is checkpointed at revision {checkpoint}: segments are missing"
                ),
            });
        }
        return Ok(Replay { records: Vec::new(), report });
    }
    // Segments wholly at or below the checkpoint (a crash inside a
    // checkpoint's deletions leaves them) hold nothing to replay: the chain
    // starts at the last segment that begins at or before checkpoint + 1.
    let start = segments.iter().rposition(|(first, _)| *first <= checkpoint + 1).unwrap_or(0);
    let segments = &segments[start..];
    let mut out = Vec::new();
    // The revision the next record must carry (once the chain has started).
    let mut next_expected = segments[0].0;
    let mut stop: Option<Stop> = None;
    if segments[0].0 > checkpoint + 1 {
        stop = Some(Stop {
            segment: 0,
            offset: 0,
            reason: format!(
                "the oldest segment starts at revision {} but the cold store is checkpointed at revision {checkpoint}: \
                 an older segment or the cold store is missing",
                segments[0].0
            ),
        });
    }
    let count = segments.len();
    let mut datas = Vec::with_capacity(count);
    for (i, (first, path)) in segments.iter().enumerate() {
        let data = std::fs::read(path).map_err(|e| StorageError::io(format!("reading {}", path.display()), e))?;
        if stop.is_some() {
            datas.push(data);
            continue;
        }
        let newest = i + 1 == count;
        let scan = scan_segment(&data);
        let chain_break = match scan.records.first() {
            Some(r) if r.revision != *first => {
                Some(format!("the segment is named for revision {first} but starts at revision {}", r.revision))
            }
            _ if *first != next_expected => {
                Some(format!("revision {next_expected} is missing: the next segment starts at revision {first}"))
            }
            None if !newest && scan.damage.is_none() => Some("an older segment holds no record".to_string()),
            _ => None,
        };
        if let Some(reason) = chain_break {
            stop = Some(Stop { segment: i, offset: 0, reason });
            datas.push(data);
            continue;
        }
        if let Some(last) = scan.records.last() {
            next_expected = last.revision + 1;
        }
        out.extend(scan.records.into_iter().filter(|r| r.revision > checkpoint));
        if let Some(damage) = scan.damage {
            if newest && !scan.intact_after {
                truncate_tail(path, scan.valid_len, data.len() as u64, &damage.reason)?;
                report.torn_tail_bytes = data.len() as u64 - scan.valid_len;
            } else {
                let where_ =
                    if newest { "with intact records after it" } else { "in a segment that is not the newest" };
                stop = Some(Stop { segment: i, offset: damage.offset, reason: format!("{} {where_}", damage.reason) });
            }
        }
        datas.push(data);
    }
    if let Some(Stop { segment, offset, reason }) = stop {
        let path = &segments[segment].1;
        if mode == WalRecovery::Refuse {
            return Err(StorageError::WalCorrupt { segment: path.clone(), offset, reason });
        }
        let kept_through = out.last().map_or(checkpoint, |r: &Record| r.revision);
        // Revisions the dropped bytes held are never reused: a change-feed
        // cursor or a revision condition naming one must not match a later,
        // different write. The store reopens above the highest of them.
        let highest_dropped = segments[segment..]
            .iter()
            .zip(&datas[segment..])
            .enumerate()
            .filter_map(|(i, ((first, _), data))| {
                let from = if i == 0 { offset as usize } else { 0 };
                let named = if i == 0 { None } else { Some(first.saturating_sub(1)) };
                highest_intact_revision(data, from).max(named)
            })
            .max()
            .unwrap_or(kept_through)
            .max(kept_through);
        let moved = set_aside(dir, &segments[segment..], &datas[segment..], offset)?;
        let dropped_bytes = datas[segment..].iter().map(|d| d.len() as u64).sum::<u64>() - offset;
        tracing::warn!(segment = %path.display(), offset, kept_through, highest_dropped, dropped_bytes, %reason, "salvaged the WAL's valid prefix");
        report.salvaged = Some(Salvaged {
            kept_through,
            highest_dropped,
            segment: path.clone(),
            offset,
            reason,
            dropped_bytes,
            moved_to: moved,
        });
    }
    report.replayed = out.len();
    Ok(Replay { records: out, report })
}

/// The highest revision of any intact record at or after `from`.
fn highest_intact_revision(data: &[u8], from: usize) -> Option<Revision> {
    (from..data.len().saturating_sub(HEADER_LEN - 1))
        .filter_map(|at| match read_frame(data, at) {
            Frame::Valid { payload, .. } => decode_record(payload).map(|r| r.revision),
            _ => None,
        })
        .max()
}

/// Moves the data after `offset` of the first segment, and every later
/// segment, into `*.log.dropped` files in a new folder
/// `dir/dropped-<microseconds>/`; cuts the first segment at `offset`.
fn set_aside(dir: &Path, segments: &[(Revision, PathBuf)], datas: &[Vec<u8>], offset: u64) -> Result<Vec<PathBuf>> {
    let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let mut folder = dir.join(format!("dropped-{micros}"));
    let mut n = 0;
    while folder.exists() {
        n += 1;
        folder = dir.join(format!("dropped-{micros}-{n}"));
    }
    std::fs::create_dir(&folder).map_err(|e| StorageError::io(format!("creating {}", folder.display()), e))?;
    let mut moved = Vec::new();
    for (i, ((_, path), data)) in segments.iter().zip(datas).enumerate() {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let aside = folder.join(format!("{name}.dropped"));
        let keep = if i == 0 { offset } else { 0 };
        let io = |what: &str, e| StorageError::io(format!("{what} {}", path.display()), e);
        std::fs::write(&aside, &data[keep as usize..]).map_err(|e| io("setting aside the tail of", e))?;
        std::fs::File::open(&aside).and_then(|f| f.sync_all()).map_err(|e| io("syncing the set-aside tail of", e))?;
        if keep == 0 {
            std::fs::remove_file(path).map_err(|e| io("removing", e))?;
        } else {
            let f = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| io("opening", e))?;
            f.set_len(keep).and_then(|()| f.sync_all()).map_err(|e| io("cutting", e))?;
        }
        moved.push(aside);
    }
    super::sync_dir(&folder)?;
    super::sync_dir(dir)?;
    Ok(moved)
}

fn truncate_tail(path: &Path, valid: u64, total: u64, reason: &str) -> Result<()> {
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
    use super::super::segment_path;
    use super::*;
    use crate::batch::Op;

    fn record(rev: Revision) -> Vec<u8> {
        let ops = [Op::Put { key: format!("k{rev}").into_bytes(), value: vec![rev as u8; 10] }];
        let payload = format::encode(&RecordRef { revision: rev, ops: &ops }).unwrap();
        let mut out = Vec::new();
        write_frame(&mut out, &payload);
        out
    }

    fn segment(revs: std::ops::RangeInclusive<Revision>) -> Vec<u8> {
        revs.flat_map(record).collect()
    }

    fn revs(records: &[Record]) -> Vec<Revision> {
        records.iter().map(|r| r.revision).collect()
    }

    fn write_segments(dir: &Path, segs: &[std::ops::RangeInclusive<Revision>]) -> Vec<PathBuf> {
        segs.iter()
            .map(|r| {
                let p = segment_path(dir, *r.start());
                std::fs::write(&p, segment(r.clone())).unwrap();
                p
            })
            .collect()
    }

    fn refused(dir: &Path, checkpoint: Revision) -> (PathBuf, u64, String) {
        match replay(dir, checkpoint, WalRecovery::Refuse) {
            Err(StorageError::WalCorrupt { segment, offset, reason }) => (segment, offset, reason),
            Err(e) => panic!("expected WalCorrupt, got {e}"),
            Ok(r) => panic!("expected WalCorrupt, replayed {:?}", revs(&r.records)),
        }
    }

    #[test]
    fn torn_tail_is_cut_at_every_length() {
        let full = segment(1..=3);
        let two = record(1).len() + record(2).len();
        for cut in two..full.len() {
            let scan = scan_segment(&full[..cut]);
            assert_eq!(revs(&scan.records), vec![1, 2], "cut at {cut}");
            assert_eq!(scan.valid_len, two as u64);
            assert_eq!(scan.damage.is_some(), cut > two);
            assert!(!scan.intact_after);
        }
    }

    #[test]
    fn flipped_bit_in_last_record_is_a_torn_tail() {
        let mut data = segment(1..=3);
        let last = data.len() - 3;
        data[last] ^= 0x04;
        let scan = scan_segment(&data);
        assert_eq!(revs(&scan.records), vec![1, 2]);
        assert!(scan.damage.is_some() && !scan.intact_after);
    }

    /// Every kind of damage with an intact record after it: a payload bit,
    /// a length bit, a header-checksum bit, a zeroed 4 KiB page, two
    /// adjacent damaged payloads.
    #[test]
    fn damage_before_an_intact_record_is_never_a_torn_tail() {
        let rec = record(2).len();
        let at2 = record(1).len();
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let base = segment(1..=400);
        let mut payload = base.clone();
        payload[at2 + HEADER_LEN + 2] ^= 0x04;
        cases.push(("payload bit", payload));
        let mut len = base.clone();
        len[at2] ^= 0x01;
        cases.push(("length bit", len));
        let mut len_high = base.clone();
        len_high[at2 + 3] ^= 0x80;
        cases.push(("high length bit", len_high));
        let mut header_crc = base.clone();
        header_crc[at2 + 5] ^= 0x10;
        cases.push(("header checksum bit", header_crc));
        let mut zeroed = base.clone();
        zeroed[4096..8192].fill(0);
        cases.push(("zeroed page", zeroed));
        let mut two = base.clone();
        two[at2 + HEADER_LEN + 1] ^= 0x01;
        two[at2 + rec + HEADER_LEN + 1] ^= 0x01;
        cases.push(("two adjacent payloads", two));
        for (name, data) in cases {
            let scan = scan_segment(&data);
            assert!(scan.damage.is_some(), "{name}");
            assert!(scan.intact_after, "{name}: damage must not pass as a torn tail");
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(segment_path(dir.path(), 1), &data).unwrap();
            let (_, offset, reason) = refused(dir.path(), 0);
            assert_eq!(offset, scan.valid_len, "{name}: {reason}");
            assert_eq!(std::fs::read(segment_path(dir.path(), 1)).unwrap(), data, "{name}: nothing cut");
        }
    }

    #[test]
    fn replay_truncates_newest_and_rejects_older_damage() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(segment_path(dir.path(), 1), segment(1..=2)).unwrap();
        let mut newest = segment(3..=4);
        newest.extend_from_slice(&[7, 7, 7]);
        let newest_path = segment_path(dir.path(), 3);
        std::fs::write(&newest_path, &newest).unwrap();
        let got = replay(dir.path(), 1, WalRecovery::Refuse).unwrap();
        assert_eq!(revs(&got.records), vec![2, 3, 4]);
        assert_eq!(got.report.torn_tail_bytes, 3);
        assert_eq!(std::fs::metadata(&newest_path).unwrap().len(), newest.len() as u64 - 3);

        let mut old = segment(1..=2);
        old.truncate(old.len() - 1);
        std::fs::write(segment_path(dir.path(), 1), old).unwrap();
        refused(dir.path(), 0);
    }

    #[test]
    fn gaps_are_refused() {
        // An older segment emptied.
        let dir = tempfile::tempdir().unwrap();
        let paths = write_segments(dir.path(), &[1..=10, 11..=20, 21..=30]);
        std::fs::write(&paths[1], b"").unwrap();
        assert_eq!(refused(dir.path(), 0).0, paths[1]);
        // An older segment cut at a record boundary.
        write_segments(dir.path(), &[11..=15]);
        let (seg, _, reason) = refused(dir.path(), 0);
        assert_eq!(seg, paths[2], "{reason}");
        // A middle segment deleted.
        std::fs::remove_file(&paths[1]).unwrap();
        let (seg, _, reason) = refused(dir.path(), 0);
        assert!(seg == paths[2] && reason.contains("revision 11 is missing"), "{reason}");
        // The oldest segment deleted (or the cold store behind the log).
        let dir = tempfile::tempdir().unwrap();
        let paths = write_segments(dir.path(), &[1..=10, 11..=20]);
        std::fs::remove_file(&paths[0]).unwrap();
        assert!(refused(dir.path(), 5).2.contains("missing"));
        // A checkpointed store with no segment at all.
        std::fs::remove_file(&paths[1]).unwrap();
        refused(dir.path(), 5);
        assert!(replay(dir.path(), 0, WalRecovery::Refuse).unwrap().records.is_empty());
        // A segment whose first record is not its name.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(segment_path(dir.path(), 1), segment(2..=5)).unwrap();
        refused(dir.path(), 0);
    }

    #[test]
    fn salvage_keeps_the_longest_valid_prefix_and_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_segments(dir.path(), &[1..=10, 11..=20, 21..=30]);
        let mut middle = segment(11..=20);
        let at = record(11).len() * 3;
        middle[at + 1] ^= 0xFF;
        std::fs::write(&paths[1], &middle).unwrap();
        refused(dir.path(), 0);
        let got = replay(dir.path(), 4, WalRecovery::KeepValidPrefix).unwrap();
        assert_eq!(revs(&got.records), (5..=13).collect::<Vec<_>>());
        let s = got.report.salvaged.expect("a salvage report");
        assert_eq!((s.kept_through, s.segment.clone(), s.offset), (13, paths[1].clone(), at as u64));
        assert_eq!(s.dropped_bytes, (middle.len() - at + segment(21..=30).len()) as u64);
        assert_eq!(s.moved_to.len(), 2);
        assert!(!paths[2].exists());
        assert_eq!(std::fs::read(&s.moved_to[1]).unwrap(), segment(21..=30));
        // The salvaged WAL now opens under the strict rules.
        assert_eq!(revs(&replay(dir.path(), 4, WalRecovery::Refuse).unwrap().records).len(), 9);
    }
}
