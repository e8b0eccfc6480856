//! The move of a database whose index trees hold an item per entry
//! (layout [`TREES`](super::layout::TREES)) to packed index trees
//! (`packed`), at open, in the style of the move into trees (`layout`):
//!
//! - [`TREES`](super::layout::TREES): drop any packed tree left beside a
//!   per-entry one by an interrupted copy, copy each per-entry index tree
//!   into a new packed tree (named `routes::packed_name`: sled has no
//!   rename, and both trees exist until the copy is recorded), flush,
//!   record [`PACKS_COPIED`], flush;
//! - [`PACKS_COPIED`]: drop the per-entry index trees, record
//!   [`PACKED`] and the checkpoint with [`PACKED`] as its first byte
//!   (which a build from before packed trees refuses as corrupt), flush.
//!
//! A kill at any point leaves one of these states and the next open goes
//! on from there. A packed tree without a per-entry twin at
//! [`TREES`](super::layout::TREES) is kept (the marker of a packed
//! database was lost or rewound: the packed tree is the data). While both
//! exist an index counts once against [`MAX_TREES`](super::MAX_TREES)
//! (sled's meta page holds both names for that moment).

use super::layout::{PACKED, PACKS_COPIED};
use super::packed::PackedTree;
use super::{routes, Part, SledStore};
use crate::error::{printable_key, Result, StorageError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

impl SledStore {
    /// Brings the index trees to the packed layout. `copied`: the marker
    /// says [`PACKS_COPIED`] or later; `done`: it says [`PACKED`].
    /// `packed`: the packed trees found at open, by prefix.
    pub(super) fn pack_index_trees(
        &self,
        path: &Path,
        copied: bool,
        done: bool,
        mut packed: BTreeMap<Vec<u8>, sled::Tree>,
    ) -> Result<()> {
        let plain: Vec<(Vec<u8>, sled::Tree)> = self
            .trees
            .read()
            .iter()
            .filter_map(|(p, t)| match t {
                Part::Plain(t) if routes::is_packed_prefix(p) => Some((p.clone(), t.clone())),
                _ => None,
            })
            .collect();
        if done {
            if let Some((prefix, _)) = plain.first() {
                return Err(StorageError::Corrupt {
                    key: printable_key(prefix),
                    reason: "a per-entry index tree in a database whose index trees are packed".into(),
                });
            }
            self.install(packed);
            return self.mark_checkpoint();
        }
        let moved = !plain.is_empty();
        if moved {
            // At TREES a packed twin is a partial copy; at PACKS_COPIED it
            // is complete, and only a missing one is made.
            let to_copy: Vec<&(Vec<u8>, sled::Tree)> =
                plain.iter().filter(|(p, _)| !copied || !packed.contains_key(p)).collect();
            if !to_copy.is_empty() {
                Self::check_room(path)?;
            }
            for (prefix, tree) in to_copy {
                let name = routes::packed_name(prefix);
                if packed.remove(prefix).is_some() {
                    self.db.drop_tree(&name).map_err(|e| StorageError::backend("dropping a partial packed tree", e))?;
                }
                let target =
                    self.db.open_tree(&name).map_err(|e| StorageError::backend("creating a packed index tree", e))?;
                let loader = PackedTree::new(prefix.clone(), target.clone());
                let entries =
                    tree.iter().map(|item| item.map_err(|e| StorageError::backend("reading an index tree", e)));
                let n = match loader.load(&mut { entries }) {
                    Ok(n) => n,
                    Err(e) => {
                        // The partial copy goes (the next open would drop it
                        // too), so that a build from before packed trees,
                        // which refuses a tree name it does not know, still
                        // opens the database.
                        drop(loader);
                        let _ = self.db.drop_tree(&name);
                        return Err(e);
                    }
                };
                tracing::info!(tree = %printable_key(prefix), entries = n, "packed an index tree");
                packed.insert(prefix.clone(), target);
            }
            self.flush_layout()?;
            self.set_marker(PACKS_COPIED)?;
            self.flush_layout()?;
            for (prefix, _) in &plain {
                self.db.drop_tree(prefix).map_err(|e| StorageError::backend("dropping a per-entry index tree", e))?;
            }
        }
        self.install(packed);
        self.set_marker(PACKED)?;
        self.mark_checkpoint()?;
        if moved || copied {
            self.flush_layout()?;
        }
        Ok(())
    }

    /// Puts the packed trees in the map of trees, in place of their
    /// per-entry twins.
    fn install(&self, packed: BTreeMap<Vec<u8>, sled::Tree>) {
        let mut trees = self.trees.write();
        for (prefix, tree) in packed {
            trees.insert(prefix.clone(), Part::Packed(Arc::new(PackedTree::new(prefix, tree))));
        }
    }
}
