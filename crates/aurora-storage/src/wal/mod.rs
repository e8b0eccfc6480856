//! The write-ahead log: numbered segment files of framed records.
//!
//! A segment is named after the first revision it may hold
//! (`wal/00000000000000000042.log`). Records are appended in revision order;
//! a segment is synced before the next one is created, so after a crash only
//! the newest segment can have a torn tail. Segments whose records are all
//! contained in a flushed cold store are deleted at checkpoints.

pub(crate) mod frame;
pub(crate) mod inspect;
pub(crate) mod replay;

use crate::batch::{Op, Revision};
use crate::error::{Result, StorageError};
use crate::format;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Segment files of `dir`, sorted by first revision.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(Revision, PathBuf)>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| StorageError::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
            continue;
        };
        if let Ok(first) = stem.parse::<Revision>() {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn segment_path(dir: &Path, first: Revision) -> PathBuf {
    dir.join(format!("{first:020}.log"))
}

/// Fsyncs a directory so that file creations and removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(format!("syncing directory {}", dir.display()), e))
}

/// The appending end of the log. Encoded records collect in `buf` until
/// [`WalWriter::write_out`] hands them to the OS.
pub(crate) struct WalWriter {
    dir: PathBuf,
    file: Arc<File>,
    /// Bytes of records in the active segment.
    len: u64,
    /// Bytes the active segment's file holds: records, then zeros.
    allocated: u64,
    /// How far ahead of `len` to keep zeros (0: none, the file ends at `len`).
    preallocate: u64,
    segment_bytes: u64,
    buf: Vec<u8>,
    buf_first: Option<Revision>,
    buf_last: Revision,
    buf_records: usize,
    written: Revision,
    written_bytes: u64,
    /// Set when a write or fsync failed: the file's tail is then unknown
    /// (a partial write may have landed), so writing the buffer again would
    /// put intact records after a torn one. The writer refuses from then on.
    failed: bool,
}

impl WalWriter {
    /// Starts a fresh segment whose first record will be `first`; with
    /// `preallocate` > 0, the segment is filled with zeros that far ahead
    /// of its records as they are written (the file is empty until the
    /// first write, so an unused segment costs nothing).
    pub(crate) fn create(dir: &Path, first: Revision, segment_bytes: u64, preallocate: u64) -> Result<Self> {
        let file = Self::new_segment(dir, first)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file: Arc::new(file),
            len: 0,
            allocated: 0,
            preallocate,
            segment_bytes,
            buf: Vec::with_capacity(64 * 1024),
            buf_first: None,
            buf_last: first.saturating_sub(1),
            buf_records: 0,
            written: first.saturating_sub(1),
            written_bytes: 0,
            failed: false,
        })
    }

    fn new_segment(dir: &Path, first: Revision) -> Result<File> {
        let path = segment_path(dir, first);
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| StorageError::io(format!("creating WAL segment {}", path.display()), e))?;
        sync_dir(dir)?;
        Ok(file)
    }

    /// Encodes a record into the buffer (in place: the payload is written
    /// after room for its header, which is filled in after it).
    pub(crate) fn append(&mut self, revision: Revision, ops: &[Op]) -> Result<()> {
        let start = self.buf.len();
        self.buf.resize(start + frame::HEADER_LEN, 0);
        if let Err(e) = format::encode_into(&frame::RecordRef { revision, ops }, &mut self.buf) {
            self.buf.truncate(start);
            return Err(e);
        }
        frame::seal_frame(&mut self.buf, start);
        self.buf_first.get_or_insert(revision);
        self.buf_last = revision;
        self.buf_records += 1;
        Ok(())
    }

    /// Records buffered and not yet written to the OS.
    pub(crate) fn buffered_records(&self) -> usize {
        self.buf_records
    }

    /// Writes the buffer to the OS (no fsync), rotating to a new segment
    /// first if the active one is full.
    pub(crate) fn write_out(&mut self) -> Result<()> {
        let Some(first) = self.buf_first else {
            return Ok(());
        };
        if self.failed {
            return Err(StorageError::io(
                "writing to the WAL after an earlier write failed",
                std::io::Error::other("the WAL's tail is unknown until the store is reopened"),
            ));
        }
        let written = self.write_buffer(first);
        self.failed = written.is_err();
        written
    }

    fn write_buffer(&mut self, first: Revision) -> Result<()> {
        if self.len >= self.segment_bytes {
            if self.allocated > self.len {
                // A closed segment ends at its last record.
                self.file.set_len(self.len).map_err(|e| StorageError::io("cutting a full WAL segment's zeros", e))?;
            }
            self.file.sync_data().map_err(|e| StorageError::io("syncing a full WAL segment", e))?;
            self.file = Arc::new(Self::new_segment(&self.dir, first)?);
            self.len = 0;
            self.allocated = 0;
        }
        let end = self.len + self.buf.len() as u64;
        if self.preallocate > 0 && end > self.allocated {
            self.zero_fill(end + self.preallocate)?;
        }
        self.file
            .write_all_at(&self.buf, self.len)
            .map_err(|e| StorageError::io(format!("writing WAL records up to revision {}", self.buf_last), e))?;
        self.len += self.buf.len() as u64;
        self.written_bytes += self.buf.len() as u64;
        self.written = self.buf_last;
        self.buf.clear();
        self.buf_first = None;
        self.buf_records = 0;
        Ok(())
    }

    /// Writes zeros from the end of the file's allocated bytes to `to`: real
    /// blocks (not a sparse hole or unwritten extents), so that records
    /// later overwrite blocks the file already holds. The first sync after
    /// it journals the growth once for many records.
    fn zero_fill(&mut self, to: u64) -> Result<()> {
        const CHUNK: usize = 64 << 10;
        let zeros = vec![0u8; CHUNK];
        let mut at = self.allocated.max(self.len);
        while at < to {
            let n = usize::try_from(to - at).map_or(CHUNK, |left| left.min(CHUNK));
            self.file
                .write_all_at(&zeros[..n], at)
                .map_err(|e| StorageError::io("zero-filling the WAL ahead of its end", e))?;
            at += n as u64;
        }
        self.allocated = to;
        Ok(())
    }

    /// The active segment and the last revision written to it, for an fsync
    /// done without holding the writer.
    pub(crate) fn sync_target(&self) -> (Arc<File>, Revision) {
        (Arc::clone(&self.file), self.written)
    }

    /// Total bytes written since this writer was created.
    pub(crate) fn written_bytes(&self) -> u64 {
        self.written_bytes
    }
}
