//! [`SledStore`]: the [`ColdStore`] on sled 0.34.
//!
//! Layout in sled's default tree: user keys are stored under the prefix
//! `0x01`; the checkpoint revision under the meta key `0x00 "checkpoint"`.
//! Writes are plain inserts: sled 0.34's atomic batches seal an I/O buffer
//! each (a `pwrite` + `sync_file_range` per batch), which is what made its
//! flushes take seconds; atomicity comes from Aurora's WAL instead.
//! Values are `[2][revision: LEB128][bytes]` (live) or `[3][revision: LEB128]`
//! (a tombstone): 4 bytes of header for a revision below 2²¹, where the
//! first layout, `[1][revision: u64 BE][kind: 0 tombstone | 1 live][bytes]`,
//! took 10 — sled 0.34 writes every value several times over (each insert,
//! then its leaf at each consolidation and split), so header bytes cost
//! disk several times. Values in the first layout are still read.
//!
//! sled's own periodic flush is disabled: durability comes from Aurora's
//! WAL, and [`ColdStore::flush`] is called at checkpoints.

use super::{ColdStore, ScanIter, Versioned};
use crate::batch::Revision;
use crate::error::{printable_key, Result, StorageError};
use crate::format::FORMAT_VERSION;
use std::ops::Bound;
use std::path::Path;
use std::time::{Duration, Instant};

const DATA: u8 = 0x01;
const META_CHECKPOINT: &[u8] = b"\x00checkpoint";
/// Header length of the first layout (`[1][revision: u64 BE][kind]`).
const FIRST_HEADER: usize = 1 + 8 + 1;
/// First byte of a live value in the compact layout.
const COMPACT_LIVE: u8 = 2;
/// First byte of a tombstone in the compact layout.
const COMPACT_TOMBSTONE: u8 = 3;
/// How long opening waits for sled's own lock to be released.
const SLED_LOCK_WAIT: Duration = Duration::from_secs(5);

/// The sled-backed cold store (the default backend of
/// [`Store::open`](crate::Store::open)).
pub struct SledStore {
    db: sled::Db,
}

/// The share of the configured cold cache given to sled as its
/// `cache_capacity` (numerator, denominator): sled's cache then costs about
/// the configured size (it overshoots what it is given by a third to a
/// half); its per-page bookkeeping comes on top and grows with the data
/// (docs/configuration.md, "Memory"). A smaller share is no cure: with half
/// of it sled's file after a million inserts was 1.8× larger (it writes
/// pages it paged out again).
pub const SLED_CACHE_SHARE: (u64, u64) = (3, 4);

impl SledStore {
    /// Opens (or creates) a sled database at `path`.
    ///
    /// sled releases its own file lock from background threads a moment
    /// after the last handle drops. The caller holds Aurora's directory lock,
    /// so a held sled lock can only be our own previous instance winding
    /// down: opening retries for up to 5 s.
    ///
    /// `cache_bytes` is what sled's page cache may cost in resident
    /// memory. sled 0.34 undercounts what it caches (measured after a
    /// million small documents: 48 / 24 / 12 MiB of `cache_capacity` cost
    /// resident 217 / 180 / 166 MiB in all), so sled is given three
    /// quarters of it. Fails with
    /// [`StorageError::Backend`] when sled refuses the directory.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes / SLED_CACHE_SHARE.1 * SLED_CACHE_SHARE.0)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None);
        remove_partial_snapshots(path)?;
        let started = Instant::now();
        loop {
            match config.open() {
                Ok(db) => return Ok(Self { db }),
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && started.elapsed() < SLED_LOCK_WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(StorageError::backend(format!("opening sled at {}", path.display()), e)),
            }
        }
    }
}

/// Removes snapshots sled was still writing when its process died.
///
/// sled 0.34 writes a snapshot to `snap.<lsn>.generating` and renames it
/// when complete, but at open it reads the *last* `snap.*` file by name —
/// a partial `.generating` one after a kill during its snapshot write
/// (sled issue #1527) — and fails "Read corrupted data" for good. A
/// `.generating` file is never a finished snapshot, so it is safe to drop.
fn remove_partial_snapshots(path: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(path) else { return Ok(()) };
    let mut removed = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path())
                .map_err(|e| StorageError::io(format!("removing sled's partial snapshot {name}"), e))?;
            tracing::warn!(file = %name, "removed a partial sled snapshot left by a crash");
            removed = true;
        }
    }
    if removed {
        crate::wal::sync_dir(path)?;
    }
    Ok(())
}

fn data_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(DATA);
    k.extend_from_slice(key);
    k
}

/// Appends `n` as LEB128 (7 bits a byte, low first; at most 10 bytes).
fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a LEB128 `u64` from the front of `raw`: the value and its length.
fn read_varint(raw: &[u8]) -> Option<(u64, usize)> {
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

fn encode_versioned(v: &Versioned) -> Vec<u8> {
    let body = v.value.as_deref().unwrap_or(&[]);
    let mut out = Vec::with_capacity(1 + 10 + body.len());
    out.push(if v.value.is_some() { COMPACT_LIVE } else { COMPACT_TOMBSTONE });
    push_varint(&mut out, v.revision);
    out.extend_from_slice(body);
    out
}

fn decode_versioned(key: &[u8], raw: &[u8]) -> Result<Versioned> {
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

fn bound_key(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(data_key(k)),
        Bound::Excluded(k) => Bound::Excluded(data_key(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl SledStore {
    /// A scan of the data keys in a range, forwards or backwards (lazily
    /// either way: sled's ranges walk both directions).
    fn scan_in(&self, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool) -> ScanIter {
        let start = match bound_key(start) {
            Bound::Unbounded => Bound::Included(vec![DATA]),
            b => b,
        };
        let end = match bound_key(end) {
            Bound::Unbounded => Bound::Excluded(vec![DATA + 1]),
            b => b,
        };
        if matches!((&start, &end), (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) if s > e)
        {
            return Box::new(std::iter::empty());
        }
        let decode = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, v) = item.map_err(|e| StorageError::backend("scanning", e))?;
            let key = k[1..].to_vec();
            let versioned = decode_versioned(&key, &v)?;
            Ok((key, versioned))
        };
        let range = self.db.range::<Vec<u8>, _>((start, end));
        if reverse {
            Box::new(range.rev().map(decode))
        } else {
            Box::new(range.map(decode))
        }
    }

    /// Removes the entry at data key `k` (holding `v`; `key` is the key
    /// without its tag) if it is a tombstone at or below `horizon` and
    /// nothing replaced it meanwhile; returns whether it did.
    fn purge_if_tombstone(&self, k: &[u8], key: &[u8], v: &sled::IVec, horizon: Revision) -> Result<bool> {
        let versioned = decode_versioned(key, v)?;
        if versioned.value.is_some() || versioned.revision > horizon {
            return Ok(false);
        }
        let swapped = self
            .db
            .compare_and_swap(k, Some(v), None as Option<&[u8]>)
            .map_err(|e| StorageError::backend("purging a tombstone", e))?;
        Ok(swapped.is_ok())
    }
}

impl ColdStore for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Versioned>> {
        // The data key on the stack when it is short (a point read
        // allocates nothing for it).
        const INLINE: usize = 128;
        let mut inline = [0u8; INLINE];
        let heap;
        let k: &[u8] = if key.len() < INLINE {
            inline[0] = DATA;
            inline[1..=key.len()].copy_from_slice(key);
            &inline[..=key.len()]
        } else {
            heap = data_key(key);
            &heap
        };
        let raw =
            self.db.get(k).map_err(|e| StorageError::backend(format!("reading key {}", printable_key(key)), e))?;
        raw.map(|r| decode_versioned(key, &r)).transpose()
    }

    fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter {
        self.scan_in(start, end, false)
    }

    fn scan_rev(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter {
        self.scan_in(start, end, true)
    }

    fn apply(&self, writes: &mut dyn Iterator<Item = (&[u8], &Versioned)>) -> Result<()> {
        for (key, v) in writes {
            self.db
                .insert(data_key(key), encode_versioned(v))
                .map_err(|e| StorageError::backend(format!("writing key {}", printable_key(key)), e))?;
        }
        Ok(())
    }

    fn set_checkpoint(&self, revision: Revision) -> Result<()> {
        self.db
            .insert(META_CHECKPOINT, &revision.to_be_bytes())
            .map(drop)
            .map_err(|e| StorageError::backend("recording the checkpoint revision", e))
    }

    fn checkpoint(&self) -> Result<Revision> {
        match self.db.get(META_CHECKPOINT).map_err(|e| StorageError::backend("reading the checkpoint revision", e))? {
            None => Ok(0),
            Some(raw) => {
                let bytes: [u8; 8] = raw.as_ref().try_into().map_err(|_| StorageError::Corrupt {
                    key: printable_key(META_CHECKPOINT),
                    reason: "checkpoint revision is not 8 bytes".into(),
                })?;
                Ok(u64::from_be_bytes(bytes))
            }
        }
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map(drop).map_err(|e| StorageError::backend("flushing sled", e))
    }

    fn purge_tombstones(&self, horizon: Revision) -> Result<usize> {
        let mut removed = 0;
        for item in self.db.range::<&[u8], _>(&[DATA][..]..&[DATA + 1][..]) {
            let (k, v) = item.map_err(|e| StorageError::backend("scanning for tombstones", e))?;
            removed += usize::from(self.purge_if_tombstone(&k, &k[1..], &v, horizon)?);
        }
        Ok(removed)
    }

    fn purge_tombstones_of(&self, keys: &mut dyn Iterator<Item = &[u8]>, horizon: Revision) -> Result<usize> {
        let mut removed = 0;
        for key in keys {
            let k = data_key(key);
            let Some(v) = self.db.get(&k).map_err(|e| StorageError::backend("reading a tombstone", e))? else {
                continue;
            };
            removed += usize::from(self.purge_if_tombstone(&k, key, &v, horizon)?);
        }
        Ok(removed)
    }

    fn disk_bytes(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(|e| StorageError::backend("measuring disk size", e))
    }
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

    #[test]
    fn apply_scan_and_purge() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.checkpoint().unwrap(), 0);
        let writes = [
            (b"a".to_vec(), Versioned { revision: 1, value: Some(b"1".to_vec()) }),
            (b"b".to_vec(), Versioned { revision: 2, value: None }),
        ];
        s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        s.set_checkpoint(2).unwrap();
        assert_eq!(s.checkpoint().unwrap(), 2);
        let all: Vec<_> = s.scan(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap().0).collect();
        assert_eq!(all, vec![b"a".to_vec(), b"b".to_vec()]);
        let from_b: Vec<_> = s.scan(Bound::Included(b"b"), Bound::Unbounded).map(|r| r.unwrap().0).collect();
        assert_eq!(from_b, vec![b"b".to_vec()]);
        assert_eq!(s.purge_tombstones(1).unwrap(), 0);
        assert_eq!(s.purge_tombstones(2).unwrap(), 1);
        assert_eq!(s.get(b"b").unwrap(), None);
        assert!(s.get(b"a").unwrap().is_some());
    }

    #[test]
    fn a_targeted_purge_removes_only_the_named_tombstones_at_or_below_the_horizon() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path(), 1 << 20).unwrap();
        let v = |revision, value: Option<&[u8]>| Versioned { revision, value: value.map(<[u8]>::to_vec) };
        let writes = [
            (b"a".to_vec(), v(1, Some(b"1"))),
            (b"b".to_vec(), v(2, None)),
            (b"c".to_vec(), v(3, None)),
            (b"d".to_vec(), v(4, None)),
        ];
        s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        let named: [&[u8]; 4] = [b"a", b"b", b"d", b"zz"];
        assert_eq!(
            s.purge_tombstones_of(&mut named.into_iter(), 3).unwrap(),
            1,
            "only b: a is live, d is newer, zz absent"
        );
        assert_eq!(s.get(b"b").unwrap(), None);
        assert_eq!(s.get(b"c").unwrap(), Some(v(3, None)), "not named: kept");
        assert_eq!(s.get(b"d").unwrap(), Some(v(4, None)));
        assert!(s.get(b"a").unwrap().is_some());
    }
}
