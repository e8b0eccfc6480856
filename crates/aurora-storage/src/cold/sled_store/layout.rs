//! The layout version of the sled backend, and the move of a database
//! written before sled trees (every key in the default tree under `0x01`)
//! into them.
//!
//! The meta key `0x00 "layout"` of the default tree says where the move is:
//! absent — the first layout (or a new, empty database); [`COPIED`] — the
//! keys of every prefix with a tree are in their trees, and their old
//! copies in the default tree may remain; [`TREES`] — done. Each step is
//! flushed before the marker that records it, and each is idempotent:
//! - absent: copy the default tree's keys into the trees of their
//!   prefixes (creating trees up to [`MAX_TREES`](super::MAX_TREES); a copy
//!   overwrites what an interrupted earlier copy wrote, with the same
//!   bytes), flush, record [`COPIED`], flush;
//! - [`COPIED`]: remove from the default tree the keys whose prefix has a
//!   tree, record [`TREES`] and the checkpoint in this layout's 9-byte
//!   form (which a build from before the trees refuses), flush.
//!
//! A kill at any point leaves the database at one of these states (sled's
//! flush makes every earlier write durable), and the next open goes on
//! from there. Nothing else writes before the move is done: it runs inside
//! [`SledStore::open`].
//!
//! Then the index trees are packed (`pack_move`: [`TREES`] →
//! [`PACKS_COPIED`] → [`PACKED`]); a new database is marked [`PACKED`]
//! at once.

use super::{data_key, routes, Part, SledStore, DATA, META_CHECKPOINT};
use crate::cold::ColdStore;
use crate::error::{printable_key, Result, StorageError};
use std::collections::BTreeMap;
use std::path::Path;

/// Free space the move into trees needs beyond the size of sled's files:
/// room for the log segments sled keeps open while it writes (bytes).
pub(super) const MOVE_HEADROOM: u64 = 16 << 20;

/// Bytes of the files under `dir`, recursively (0 for what cannot be read).
pub(super) fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The layout's meta key.
const META_LAYOUT: &[u8] = b"\x00layout";
/// The trees hold a copy of their keys; the default tree's copies may remain.
const COPIED: u8 = 1;
/// Every key is in the tree of its prefix, index entries one sled item
/// each (also the first byte of the checkpoint value in that layout).
pub(super) const TREES: u8 = 2;
/// Every per-entry index tree has a complete packed copy; the per-entry
/// ones may remain (`pack_move`).
pub(super) const PACKS_COPIED: u8 = 3;
/// Done: index trees are packed (also the first byte of the checkpoint
/// value in this layout, which a build from before packed trees refuses).
pub(super) const PACKED: u8 = 4;

impl SledStore {
    /// Brings the database to the tree layout (see the module docs), then
    /// drops the trees left empty (a dropped collection's), so they do not
    /// count against [`MAX_TREES`](super::MAX_TREES).
    pub(super) fn upgrade_layout(&self, path: &Path, packed: BTreeMap<Vec<u8>, sled::Tree>) -> Result<()> {
        let marker = self.db.get(META_LAYOUT).map_err(|e| StorageError::backend("reading the layout version", e))?;
        let state = match marker.as_deref() {
            None => None,
            Some([v @ (COPIED | TREES | PACKS_COPIED | PACKED)]) => Some(*v),
            Some([v]) => {
                return Err(StorageError::UnknownFormat {
                    key: printable_key(META_LAYOUT),
                    version: *v,
                    supported: PACKED,
                })
            }
            Some(_) => {
                return Err(StorageError::Corrupt {
                    key: printable_key(META_LAYOUT),
                    reason: "the layout version is not one byte".into(),
                })
            }
        };
        let mut state = state;
        if state.is_none() {
            self.check_room_to_move(path)?;
            let copied = self.copy_into_trees(&packed)?;
            if copied == 0 {
                // Nothing to move (a new database): no key of a prefix is
                // in the default tree, so the layout holds as it is.
                state = Some(TREES);
            } else {
                tracing::info!(keys = copied, "moved the cold store's keys into sled trees (layout 2)");
                self.flush_layout()?;
                self.set_marker(COPIED)?;
                self.flush_layout()?;
                state = Some(COPIED);
            }
        }
        if state == Some(COPIED) {
            self.remove_moved()?;
            self.set_marker(TREES)?;
            self.mark_checkpoint()?;
            self.flush_layout()?;
        }
        self.pack_index_trees(
            path,
            state == Some(PACKS_COPIED) || state == Some(PACKED),
            state == Some(PACKED),
            packed,
        )?;
        self.drop_empty_trees()
    }

    /// Refuses the move with [`StorageError::DiskFull`], before it writes
    /// anything, when the disk has less free space than the move needs: it
    /// writes every key once more before the old copies go, so about the
    /// size of sled's files, plus [`MOVE_HEADROOM`] for sled's log segments.
    /// A new or already moved database (no data key in the default tree
    /// under a prefix with a tree) needs nothing.
    fn check_room_to_move(&self, path: &Path) -> Result<()> {
        let mut data = self.db.range::<&[u8], _>(&[DATA][..]..&[DATA + 1][..]).keys();
        let has_data = data.next().transpose().map_err(|e| StorageError::backend("reading the first layout", e))?;
        if has_data.is_none() {
            return Ok(());
        }
        Self::check_room(path)
    }

    /// [`StorageError::DiskFull`] unless the disk at `path` has room for
    /// sled's files once more plus [`MOVE_HEADROOM`].
    pub(super) fn check_room(path: &Path) -> Result<()> {
        let files = dir_bytes(path);
        let required = files.saturating_add(MOVE_HEADROOM);
        let available = fs2::available_space(path)
            .map_err(|e| StorageError::io(format!("measuring free space at {}", path.display()), e))?;
        if available < required {
            return Err(StorageError::DiskFull { path: path.to_path_buf(), available, required });
        }
        Ok(())
    }

    /// Rewrites a checkpoint of an earlier layout (8 bytes, or layout 2's
    /// 9) in this layout's form, which a build from before refuses to read.
    pub(super) fn mark_checkpoint(&self) -> Result<()> {
        let present =
            self.db.get(META_CHECKPOINT).map_err(|e| StorageError::backend("reading the checkpoint revision", e))?;
        if present.is_some_and(|p| p.first() != Some(&PACKED) || p.len() != 9) {
            self.set_checkpoint(self.checkpoint()?)?;
        }
        Ok(())
    }

    pub(super) fn set_marker(&self, state: u8) -> Result<()> {
        self.db
            .insert(META_LAYOUT, &[state])
            .map(drop)
            .map_err(|e| StorageError::backend("recording the layout version", e))
    }

    pub(super) fn flush_layout(&self) -> Result<()> {
        self.db.flush().map(drop).map_err(|e| StorageError::backend("flushing sled", e))
    }

    /// Copies every key of the default tree whose prefix has (or can get)
    /// a tree into it; returns how many.
    fn copy_into_trees(&self, packed: &BTreeMap<Vec<u8>, sled::Tree>) -> Result<u64> {
        let mut copied = 0;
        for item in self.db.range::<&[u8], _>(&[DATA][..]..&[DATA + 1][..]) {
            let (k, v) = item.map_err(|e| StorageError::backend("reading the first layout", e))?;
            let key = &k[1..];
            let Some(prefix) = routes::tree_prefix(key) else { continue };
            if packed.contains_key(prefix) {
                // The prefix is already packed (a marker lost on a packed
                // database): its keys in the default tree are damage, which
                // reads report.
                continue;
            }
            let existing = self.trees.read().get(prefix).cloned();
            let Some(tree) = (match existing {
                Some(tree) => Some(tree),
                None => self.create_tree(prefix, false)?,
            }) else {
                continue;
            };
            let Part::Plain(tree) = tree else { continue };
            tree.insert(&key[prefix.len()..], v).map_err(|e| StorageError::backend("moving a key into its tree", e))?;
            copied += 1;
        }
        Ok(copied)
    }

    /// Removes from the default tree the keys whose prefix has a tree.
    fn remove_moved(&self) -> Result<()> {
        let prefixes: Vec<Vec<u8>> = self.trees.read().keys().cloned().collect();
        for prefix in prefixes {
            let start = data_key(&prefix);
            let end = crate::store::prefix_successor(&start).unwrap_or_default();
            for item in self.db.range::<&[u8], _>(&start[..]..&end[..]) {
                let (k, _) = item.map_err(|e| StorageError::backend("reading the first layout", e))?;
                self.db.remove(&k).map_err(|e| StorageError::backend("removing a moved key", e))?;
            }
        }
        Ok(())
    }

    fn drop_empty_trees(&self) -> Result<()> {
        let mut trees = self.trees.write();
        let empty: Vec<(Vec<u8>, bool)> = trees
            .iter()
            .filter(|(_, t)| t.is_empty())
            .map(|(p, t)| (p.clone(), matches!(t, Part::Packed(_))))
            .collect();
        for (prefix, packed) in empty {
            let name = if packed { routes::packed_name(&prefix) } else { prefix.clone() };
            self.db.drop_tree(&name).map_err(|e| StorageError::backend("dropping an empty sled tree", e))?;
            trees.remove(&prefix);
        }
        Ok(())
    }
}
