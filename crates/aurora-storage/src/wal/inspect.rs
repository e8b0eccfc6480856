//! A read-only look at a closed store's write-ahead log, for `aurora
//! check`: the rules of [`replay`](super::replay) applied without cutting,
//! moving or replaying anything.

use super::replay::scan_segment;
use crate::batch::Revision;
use crate::error::{Result, StorageError};
use crate::lock::DirLock;
use std::path::PathBuf;

/// Damage [`DirLock::inspect_wal`] found: opening the store would refuse
/// with [`StorageError::WalCorrupt`] naming this place (or, asked to
/// salvage, drop everything from here on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalDamage {
    /// The segment file.
    pub segment: PathBuf,
    /// Byte offset of the first byte that is not part of an intact record
    /// (0 for a segment out of the chain).
    pub offset: u64,
    /// What is wrong there.
    pub reason: String,
}

/// The bytes after the last intact record of the newest segment, with no
/// intact record after them: what a process stopped mid-write leaves.
/// Not damage: the next open cuts them (they were never acknowledged in
/// `Strict`, and are inside the loss window of the other modes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The newest segment.
    pub segment: PathBuf,
    /// Where the intact records end.
    pub offset: u64,
    /// Bytes after them.
    pub bytes: u64,
}

/// What a read-only inspection of a write-ahead log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalInspection {
    /// Segment files.
    pub segments: usize,
    /// Bytes in them.
    pub bytes: u64,
    /// Intact records read (up to the first damage of each segment).
    pub records: u64,
    /// The lowest and highest revision among them.
    pub revisions: Option<(Revision, Revision)>,
    /// A torn tail of the newest segment, if any (not damage).
    pub torn_tail: Option<TornTail>,
    /// Damage, in segment order: empty when the log is sound. At most one
    /// per segment (a segment's scan stops at its first damage).
    pub damage: Vec<WalDamage>,
}

impl WalInspection {
    /// Whether the log holds records or a torn tail: the store was not
    /// closed cleanly (a clean close leaves one empty segment), so the next
    /// open has recovery to do.
    pub fn needs_recovery(&self) -> bool {
        self.records > 0 || self.torn_tail.is_some()
    }
}

impl DirLock {
    /// Reads every segment of the store's WAL (`<dir>/wal`) and checks it
    /// under the recovery rules of `docs/durability.md` — frames and
    /// checksums, each segment starting at the revision in its name,
    /// revisions contiguous within and across segments, only the newest
    /// segment allowed a torn tail — without changing a byte. (The one rule
    /// it cannot check alone is that the oldest segment follows the cold
    /// store's checkpoint: opening checks that.)
    ///
    /// Memory: one segment at a time (at most `wal_segment_bytes`).
    ///
    /// # Errors
    /// [`StorageError::Io`] when the log cannot be listed or read (a
    /// missing `wal` folder is reported as damage, not an error).
    ///
    /// ```
    /// use aurora_storage::{Batch, DirLock, Store, StoreConfig};
    /// let tmp = tempfile::tempdir().unwrap();
    /// let store = Store::open(tmp.path(), StoreConfig::default()).unwrap();
    /// let mut b = Batch::new();
    /// b.put(b"k".to_vec(), b"v".to_vec());
    /// store.commit(b).unwrap();
    /// store.close().unwrap();
    /// drop(store);
    /// let lock = DirLock::acquire(tmp.path()).unwrap();
    /// let found = lock.inspect_wal().unwrap();
    /// assert!(found.damage.is_empty() && !found.needs_recovery(), "{found:?}");
    /// ```
    pub fn inspect_wal(&self) -> Result<WalInspection> {
        let dir = self.dir().join("wal");
        let mut out = WalInspection::default();
        if !dir.is_dir() {
            out.damage.push(WalDamage { segment: dir, offset: 0, reason: "the WAL folder is missing".into() });
            return Ok(out);
        }
        let segments = super::list_segments(&dir)?;
        out.segments = segments.len();
        let mut next_expected: Option<Revision> = None;
        for (i, (first, path)) in segments.iter().enumerate() {
            let data = std::fs::read(path).map_err(|e| StorageError::io(format!("reading {}", path.display()), e))?;
            out.bytes += data.len() as u64;
            let newest = i + 1 == segments.len();
            let scan = scan_segment(&data);
            let damage = |offset: u64, reason: String| WalDamage { segment: path.clone(), offset, reason };
            let chain_break = match (scan.records.first(), next_expected) {
                (Some(r), _) if r.revision != *first => {
                    Some(format!("the segment is named for revision {first} but starts at revision {}", r.revision))
                }
                (_, Some(expected)) if *first != expected => {
                    Some(format!("revision {expected} is missing: the next segment starts at revision {first}"))
                }
                (None, _) if !newest && scan.damage.is_none() => Some("an older segment holds no record".into()),
                _ => None,
            };
            if let Some(reason) = chain_break {
                out.damage.push(damage(0, reason));
            }
            out.records += scan.records.len() as u64;
            if let (Some(lo), Some(hi)) = (scan.records.first(), scan.records.last()) {
                let (a, b) = out.revisions.unwrap_or((lo.revision, hi.revision));
                out.revisions = Some((a.min(lo.revision), b.max(hi.revision)));
                next_expected = Some(hi.revision + 1);
            } else if next_expected.is_none() {
                next_expected = Some(*first);
            }
            if let Some(d) = scan.damage {
                if newest && !scan.intact_after {
                    out.torn_tail = Some(TornTail {
                        segment: path.clone(),
                        offset: scan.valid_len,
                        bytes: data.len() as u64 - scan.valid_len,
                    });
                } else {
                    let where_ =
                        if newest { "with intact records after it" } else { "in a segment that is not the newest" };
                    out.damage.push(damage(d.offset, format!("{} {where_}", d.reason)));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{write_frame, RecordRef};
    use super::super::segment_path;
    use super::*;

    fn record(rev: Revision) -> Vec<u8> {
        let payload = crate::format::encode(&RecordRef { revision: rev, ops: &[] }).unwrap();
        let mut out = Vec::new();
        write_frame(&mut out, &payload);
        out
    }

    /// A store folder whose WAL holds `segments` (first revision, bytes).
    fn folder(segments: &[(Revision, Vec<u8>)]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("wal")).unwrap();
        for (first, bytes) in segments {
            std::fs::write(segment_path(&tmp.path().join("wal"), *first), bytes).unwrap();
        }
        tmp
    }

    fn inspect(tmp: &tempfile::TempDir) -> WalInspection {
        DirLock::acquire(tmp.path()).unwrap().inspect_wal().unwrap()
    }

    #[test]
    fn a_sound_log_is_counted_and_needs_recovery_only_with_records() {
        let tmp = folder(&[(5, [record(5), record(6)].concat()), (7, record(7))]);
        let found = inspect(&tmp);
        assert_eq!((found.segments, found.records, found.revisions), (2, 3, Some((5, 7))));
        assert!(found.damage.is_empty() && found.torn_tail.is_none() && found.needs_recovery());
        let clean = folder(&[(8, Vec::new())]);
        assert!(!inspect(&clean).needs_recovery());
    }

    #[test]
    fn a_torn_tail_is_reported_apart_and_left_in_place() {
        let bytes = [record(5), record(6)[..7].to_vec()].concat();
        let tmp = folder(&[(5, bytes.clone())]);
        let found = inspect(&tmp);
        assert!(found.damage.is_empty(), "{found:?}");
        let tail = found.torn_tail.expect("torn tail");
        assert_eq!((tail.offset, tail.bytes), (record(5).len() as u64, 7));
        assert_eq!(std::fs::read(segment_path(&tmp.path().join("wal"), 5)).unwrap(), bytes, "nothing cut");
    }

    #[test]
    fn damage_with_intact_records_after_it_is_reported_at_its_offset() {
        let mut bytes = [record(5), record(6), record(7)].concat();
        let at = record(5).len();
        bytes[at + 14] ^= 0xFF;
        let tmp = folder(&[(5, bytes)]);
        let found = inspect(&tmp);
        assert_eq!(found.damage.len(), 1, "{found:?}");
        assert_eq!(found.damage[0].offset, at as u64);
        assert!(found.damage[0].reason.contains("intact records after it"), "{found:?}");
        assert!(found.torn_tail.is_none());
    }

    #[test]
    fn a_gap_between_segments_and_a_misnamed_segment_are_damage() {
        let gap = folder(&[(5, record(5)), (7, record(7))]);
        let found = inspect(&gap);
        assert!(found.damage[0].reason.contains("revision 6 is missing"), "{found:?}");
        let misnamed = folder(&[(5, record(6))]);
        assert!(inspect(&misnamed).damage[0].reason.contains("named for revision 5"));
        let no_wal = tempfile::tempdir().unwrap();
        assert!(inspect(&no_wal).damage[0].reason.contains("missing"));
    }

    #[test]
    fn inspecting_needs_the_lock() {
        let tmp = folder(&[(1, Vec::new())]);
        let _held = DirLock::acquire(tmp.path()).unwrap();
        assert!(matches!(DirLock::acquire(tmp.path()), Err(StorageError::Locked { .. })));
    }
}
