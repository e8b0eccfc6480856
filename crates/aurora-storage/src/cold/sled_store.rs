//! [`SledStore`]: the [`ColdStore`] on sled 0.34.
//!
//! Layout (since issue 17's fourth session; `routes` has the rules): the
//! documents of a collection, its index entries and its unique claims are
//! each in a sled tree of their own named by their key prefix
//! (`"d" ++ collection ++ 0x00`, `"x" …`, `"u" …`), the change feed in the
//! tree `"f"`, each keyed without that prefix; every other key is in
//! sled's default tree under the prefix `0x01`; the checkpoint revision is
//! the meta key `0x00 "checkpoint"` (`[2][revision: u64 BE]`: 9 bytes, so
//! that a build from before the trees, which reads exactly 8, refuses the
//! database as corrupt instead of finding its collections empty; 8 bytes
//! in the first layout) and the layout's version the meta key
//! `0x00 "layout"` of the default tree. A database written before (every
//! key in the default tree under `0x01`) is moved into the trees when it
//! is opened (`layout`). A scan spanning several trees walks them in name
//! order merged with the default tree (`scan`), so the store still
//! presents one ordered key space.
//!
//! Why trees: sled 0.34 rewrites the leaves at the end of a tree whole
//! (sequential ids always land there) and a key byte cost ~8 MiB on disk
//! per million documents; a prefix every key of a tree repeats is not
//! stored at all, and the feed's appends no longer interleave with the
//! documents' leaves (measured in docs/footprint.md).
//!
//! Writes are plain inserts: sled 0.34's atomic batches seal an I/O buffer
//! each (a `pwrite` + `sync_file_range` per batch), which is what made its
//! flushes take seconds; atomicity comes from Aurora's WAL instead.
//! Values: `values`. sled's own periodic flush is disabled: durability
//! comes from Aurora's WAL, and [`ColdStore::flush`] is called at
//! checkpoints. sled's trees share one log, and `flush` makes all of them
//! durable (`Tree::flush` flushes the page cache every tree writes
//! through), so the checkpoint and the data it covers become durable
//! together, as with one tree.

mod layout;
mod pack_move;
mod packed;
mod routes;
mod scan;
mod values;

use super::{ColdStore, ScanIter, Versioned};
use crate::batch::Revision;
use crate::error::{printable_key, Result, StorageError};
use parking_lot::RwLock;
use routes::tree_prefix;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use values::{decode_versioned, encode_versioned};

const DATA: u8 = 0x01;
const META_CHECKPOINT: &[u8] = b"\x00checkpoint";
/// How long opening waits for sled's own lock to be released.
const SLED_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Most sled trees a database gets. sled 0.34 keeps every tree's name and
/// root in one meta page that it rewrites whenever a tree is created or a
/// root splits, so trees cost O(trees²) bytes written: 100 trees of 10
/// documents took 0.5 MiB on disk, 1 000 took 11 MiB and 5 000 took
/// 194 MiB (`sled_layout --tree-cost N`). Prefixes met after this many
/// trees exist stay in the default tree.
pub const MAX_TREES: usize = 256;

/// A tree of the store: per-entry (a sled item per key) or packed
/// (index entries in chunks, `packed`).
#[derive(Clone)]
enum Part {
    /// A sled item per key, keyed by the key without the prefix.
    Plain(sled::Tree),
    /// Chunks of entries (`packed`).
    Packed(Arc<packed::PackedTree>),
}

impl Part {
    /// Whether the tree holds nothing.
    fn is_empty(&self) -> bool {
        match self {
            Part::Plain(t) => t.is_empty(),
            Part::Packed(p) => p.tree.is_empty(),
        }
    }
}

/// A packed tree and suffixes of keys named to a targeted purge.
type NamedKeys = (Arc<packed::PackedTree>, Vec<Vec<u8>>);

/// The open trees by key prefix.
type Trees = Arc<RwLock<BTreeMap<Vec<u8>, Part>>>;

/// The sled-backed cold store (the default backend of
/// [`Store::open`](crate::Store::open)).
pub struct SledStore {
    db: sled::Db,
    /// Every tree of the database (all are opened at start). A prefix
    /// (`routes::tree_prefix`) has its keys in its tree when it has one,
    /// else in the default tree; a write to a prefix without a tree creates
    /// one while there are fewer than [`MAX_TREES`] and the default tree
    /// holds no key of the prefix, so a prefix's keys are never split
    /// between the two.
    trees: Trees,
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
    /// quarters of it.
    ///
    /// A database in the layout before sled trees is moved into them here
    /// (once; crash-safe: a kill at any point leaves a database that opens
    /// and finishes the move).
    ///
    /// # Errors
    /// [`StorageError::Backend`] when sled refuses the directory;
    /// [`StorageError::Corrupt`] when it holds a tree whose name this
    /// layout does not make, or [`StorageError::UnknownFormat`] for a
    /// layout version this build does not know.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes / SLED_CACHE_SHARE.1 * SLED_CACHE_SHARE.0)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None);
        remove_partial_snapshots(path)?;
        let started = Instant::now();
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && started.elapsed() < SLED_LOCK_WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(StorageError::backend(format!("opening sled at {}", path.display()), e)),
            }
        };
        let store = Self { db, trees: Arc::default() };
        let packed = store.load_trees()?;
        store.upgrade_layout(path, packed)?;
        Ok(store)
    }

    /// Opens every tree of the database: the per-entry ones go in the map,
    /// the packed ones are returned by prefix (`upgrade_layout` decides
    /// which of an index's two trees holds it while it is being packed); a
    /// name this layout does not make is damage.
    fn load_trees(&self) -> Result<BTreeMap<Vec<u8>, sled::Tree>> {
        let default_name: &[u8] = &self.db.name();
        let mut trees = self.trees.write();
        let mut packed = BTreeMap::new();
        for name in self.db.tree_names() {
            if name.as_ref() == default_name {
                continue;
            }
            let packed_prefix = routes::packed_prefix(&name);
            if !routes::is_tree_name(&name) && packed_prefix.is_none() {
                return Err(StorageError::Corrupt {
                    key: printable_key(&name),
                    reason: "sled holds a tree whose name is not a key prefix of Aurora's layout".into(),
                });
            }
            let tree = self.db.open_tree(&name).map_err(|e| StorageError::backend("opening a sled tree", e))?;
            match packed_prefix {
                Some(prefix) => drop(packed.insert(prefix.to_vec(), tree)),
                None => drop(trees.insert(name.to_vec(), Part::Plain(tree))),
            }
        }
        Ok(packed)
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

fn bound_key(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(data_key(k)),
        Bound::Excluded(k) => Bound::Excluded(data_key(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The error for a key of the default tree whose prefix has a tree.
fn misplaced(key: &[u8]) -> StorageError {
    StorageError::Corrupt {
        key: printable_key(key),
        reason: "a key in sled's default tree that belongs in the tree of its prefix".into(),
    }
}

/// Whether the default tree's key `stored` (with its `0x01`), handed out
/// by an iterator although its prefix has a tree of its own, is gone from
/// the default tree. sled 0.34's iterators hand out keys from a copy of the
/// leaf they last read, so a key purged after that read (and its prefix
/// given a tree, which needs the default tree to hold none of its keys)
/// can still come out: it is skipped. A key still there is misplaced —
/// damage, [`StorageError::Corrupt`].
fn gone_from_default(db: &sled::Db, stored: &[u8]) -> Result<bool> {
    db.get(stored).map(|v| v.is_none()).map_err(|e| StorageError::backend("reading sled's default tree", e))
}

/// Calls `f` with `key` stored under `prefix` in one buffer (on the stack
/// when it is short: a point read allocates nothing for it).
fn with_joined<R>(prefix: &[u8], key: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    const INLINE: usize = 128;
    let len = prefix.len() + key.len();
    if len <= INLINE {
        let mut inline = [0u8; INLINE];
        inline[..prefix.len()].copy_from_slice(prefix);
        inline[prefix.len()..len].copy_from_slice(key);
        f(&inline[..len])
    } else {
        f(&[prefix, key].concat())
    }
}

impl SledStore {
    /// The tree a write to `prefix` goes to: its own (created if there is
    /// room and the default tree holds none of its keys), or the default
    /// tree (`None`).
    fn tree_for_write(&self, prefix: &[u8]) -> Result<Option<Part>> {
        if let Some(tree) = self.trees.read().get(prefix) {
            return Ok(Some(tree.clone()));
        }
        if self.trees.read().len() >= MAX_TREES || self.default_holds(prefix)? {
            return Ok(None);
        }
        self.create_tree(prefix, routes::is_packed_prefix(prefix))
    }

    /// Inserts a sorted run of writes whose keys share the tree prefix
    /// `prefix` (`None`: keys of the default tree) in
    /// [`fill_order`](crate::cold::fill_order::fill_order): sled 0.34 then
    /// leaves leaves of 16 items where key order leaves 9 (the module has
    /// the reasoning; `sled_layout --order fill` measures it) when its keys
    /// are `ascending` (strictly: distinct), else in the order given, so a
    /// later version of a key still replaces an earlier one.
    fn apply_run(&self, prefix: Option<&[u8]>, run: &[(&[u8], &Versioned)], ascending: bool) -> Result<()> {
        let tree = match prefix {
            Some(p) => match self.tree_for_write(p)? {
                Some(Part::Plain(t)) => Some((p.len(), t)),
                Some(Part::Packed(packed)) => {
                    let suffixes: Vec<(&[u8], &Versioned)> =
                        run.iter().map(|(k, v)| (k.get(p.len()..).unwrap_or_default(), *v)).collect();
                    return packed.apply(&suffixes, ascending);
                }
                None => None,
            },
            None => None,
        };
        let order: Box<dyn Iterator<Item = usize>> =
            if ascending { Box::new(crate::cold::fill_order::fill_order(run.len())) } else { Box::new(0..run.len()) };
        for (key, v) in order.filter_map(|i| run.get(i)) {
            let write_error = |e| StorageError::backend(format!("writing key {}", printable_key(key)), e);
            match &tree {
                Some((len, tree)) => tree.insert(&key[*len..], encode_versioned(v)),
                None => self.db.insert(data_key(key), encode_versioned(v)),
            }
            .map_err(write_error)?;
        }
        Ok(())
    }

    /// Whether the default tree holds a key under `prefix`.
    fn default_holds(&self, prefix: &[u8]) -> Result<bool> {
        let start = data_key(prefix);
        let end = crate::store::prefix_successor(&start).unwrap_or_default();
        let first = self.db.range::<&[u8], _>(&start[..]..&end[..]).next();
        first.transpose().map(|f| f.is_some()).map_err(|e| StorageError::backend("reading sled's default tree", e))
    }

    /// Opens (creates) the tree of `prefix` — packed (named
    /// `routes::packed_name`) or per-entry (named `prefix`) — or `None`
    /// when the cap was reached meanwhile: the count is checked again
    /// under the write lock, so concurrent `apply` calls for different new
    /// prefixes never pass [`MAX_TREES`].
    fn create_tree(&self, prefix: &[u8], packed: bool) -> Result<Option<Part>> {
        let mut trees = self.trees.write();
        if let Some(tree) = trees.get(prefix) {
            return Ok(Some(tree.clone()));
        }
        if trees.len() >= MAX_TREES {
            return Ok(None);
        }
        let name = if packed { routes::packed_name(prefix) } else { prefix.to_vec() };
        let tree = self
            .db
            .open_tree(&name)
            .map_err(|e| StorageError::backend(format!("creating the sled tree {}", printable_key(&name)), e))?;
        let part = if packed {
            Part::Packed(Arc::new(packed::PackedTree::new(prefix.to_vec(), tree)))
        } else {
            Part::Plain(tree)
        };
        trees.insert(prefix.to_vec(), part.clone());
        Ok(Some(part))
    }

    /// The default tree's part of a scan: its data keys in a range, each
    /// checked to belong there.
    fn scan_default(&self, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool) -> ScanIter {
        let start = match bound_key(start) {
            Bound::Unbounded => Bound::Included(vec![DATA]),
            b => b,
        };
        let end = match bound_key(end) {
            Bound::Unbounded => Bound::Excluded(vec![DATA + 1]),
            b => b,
        };
        if scan::is_empty(scan::as_ref(&start), scan::as_ref(&end)) {
            return Box::new(std::iter::empty());
        }
        let trees = Arc::clone(&self.trees);
        let db = self.db.clone();
        let decode = move |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, v) = item.map_err(|e| StorageError::backend("scanning", e))?;
            let key = &k[1..];
            if tree_prefix(key).is_some_and(|p| trees.read().contains_key(p)) && !gone_from_default(&db, &k)? {
                return Err(misplaced(key));
            }
            Ok(Some((key.to_vec(), decode_versioned(key, &v)?)))
        };
        let range = self.db.range::<Vec<u8>, _>((start, end));
        if reverse {
            Box::new(range.rev().map(decode).filter_map(Result::transpose))
        } else {
            Box::new(range.map(decode).filter_map(Result::transpose))
        }
    }

    /// One tree's part of a scan (`None`: no key of the tree is in it).
    fn scan_tree(
        prefix: Vec<u8>,
        tree: Part,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
    ) -> Option<ScanIter> {
        let (lo, hi) = scan::inner_bounds(&prefix, start, end)?;
        let tree = match tree {
            Part::Plain(tree) => tree,
            Part::Packed(packed) => return Some(packed.scan(lo, hi, reverse)),
        };
        let range = tree.range::<Vec<u8>, _>((lo, hi));
        let decode = move |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, v) = item.map_err(|e| StorageError::backend("scanning", e))?;
            let key = [&prefix[..], &k].concat();
            let versioned = decode_versioned(&key, &v)?;
            Ok((key, versioned))
        };
        Some(if reverse { Box::new(range.rev().map(decode)) } else { Box::new(range.map(decode)) })
    }

    /// A scan of the keys in a range, forwards or backwards (lazily either
    /// way: sled's ranges walk both directions): inside one tree (or the
    /// default tree only) when the range is inside one prefix's interval
    /// (a prefix scan of a collection or an index), else the trees it meets
    /// in name order merged with the default tree.
    fn scan_in(&self, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool) -> ScanIter {
        if scan::is_empty(start, end) {
            return Box::new(std::iter::empty());
        }
        let single = match start {
            Bound::Included(s) | Bound::Excluded(s) => tree_prefix(s).filter(|p| scan::within(p, start, end)),
            Bound::Unbounded => None,
        };
        if let Some(prefix) = single {
            let tree = self.trees.read().get(prefix).cloned();
            return match tree {
                Some(tree) => Self::scan_tree(prefix.to_vec(), tree, start, end, reverse)
                    .unwrap_or_else(|| Box::new(std::iter::empty())),
                None => self.scan_default(start, end, reverse),
            };
        }
        let mut parts: Vec<ScanIter> = self
            .trees
            .read()
            .iter()
            .filter_map(|(prefix, tree)| Self::scan_tree(prefix.clone(), tree.clone(), start, end, reverse))
            .collect();
        if reverse {
            parts.reverse();
        }
        let trees: ScanIter = Box::new(parts.into_iter().flatten());
        Box::new(scan::Merged { a: self.scan_default(start, end, reverse).peekable(), b: trees.peekable(), reverse })
    }

    /// Removes the entry at `k` of `tree` (holding `v`; `key` names it in
    /// errors) if it is a tombstone at or below `horizon` and nothing
    /// replaced it meanwhile; returns whether it did.
    fn purge_if_tombstone(tree: &sled::Tree, k: &[u8], key: &[u8], v: &sled::IVec, horizon: Revision) -> Result<bool> {
        let versioned = decode_versioned(key, v)?;
        if versioned.value.is_some() || versioned.revision > horizon {
            return Ok(false);
        }
        let swapped = tree
            .compare_and_swap(k, Some(v), None as Option<&[u8]>)
            .map_err(|e| StorageError::backend("purging a tombstone", e))?;
        Ok(swapped.is_ok())
    }
}

impl ColdStore for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Versioned>> {
        let read_error = |e| StorageError::backend(format!("reading key {}", printable_key(key)), e);
        let in_tree = tree_prefix(key).and_then(|p| {
            // Read under the map's lock: no handle cloned on the hot path.
            self.trees.read().get(p).map(|tree| match tree {
                Part::Plain(tree) => Ok(tree.get(&key[p.len()..])),
                Part::Packed(packed) => Err(Arc::clone(packed)),
            })
        });
        let raw = match in_tree {
            Some(Ok(read)) => read.map_err(read_error)?,
            Some(Err(packed)) => return packed.get(key.get(packed.prefix().len()..).unwrap_or_default()),
            None => with_joined(&[DATA], key, |k| self.db.get(k)).map_err(read_error)?,
        };
        raw.map(|r| decode_versioned(key, &r)).transpose()
    }

    fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter {
        self.scan_in(start, end, false)
    }

    fn scan_rev(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter {
        self.scan_in(start, end, true)
    }

    fn apply(&self, writes: &mut dyn Iterator<Item = (&[u8], &Versioned)>) -> Result<()> {
        // The applier's writes (a frozen memtable) come in key order with
        // distinct keys, so a prefix's writes (one tree's) are one run, and
        // each run is inserted in `fill_order` so that sled's leaves end
        // full. Other callers (WAL replay, restore) may repeat a key, later
        // versions replacing earlier ones: a run that is not strictly
        // ascending keeps the order it came in. (Two large runs applied
        // from two threads were slower: 33–40 K documents/s against
        // 41–60 K for a bulk load with one index, with more CPU —
        // `write_path bulk100 200000`.)
        let mut run: Vec<(&[u8], &Versioned)> = Vec::new();
        let mut run_prefix: Option<&[u8]> = None;
        let mut ascending = true;
        for (key, v) in writes {
            let prefix = tree_prefix(key);
            if prefix != run_prefix && !run.is_empty() {
                self.apply_run(run_prefix, &run, ascending)?;
                run.clear();
                ascending = true;
            }
            ascending &= run.last().is_none_or(|(last, _)| *last < key);
            run_prefix = prefix;
            run.push((key, v));
        }
        if !run.is_empty() {
            self.apply_run(run_prefix, &run, ascending)?;
        }
        Ok(())
    }

    fn set_checkpoint(&self, revision: Revision) -> Result<()> {
        let mut value = [0u8; 9];
        value[0] = layout::PACKED;
        value[1..].copy_from_slice(&revision.to_be_bytes());
        self.db
            .insert(META_CHECKPOINT, &value)
            .map(drop)
            .map_err(|e| StorageError::backend("recording the checkpoint revision", e))
    }

    fn checkpoint(&self) -> Result<Revision> {
        match self.db.get(META_CHECKPOINT).map_err(|e| StorageError::backend("reading the checkpoint revision", e))? {
            None => Ok(0),
            Some(raw) => {
                let bytes = match raw.as_ref() {
                    [layout::TREES | layout::PACKED, rest @ ..] if rest.len() == 8 => rest,
                    first_layout if first_layout.len() == 8 => first_layout,
                    _ => {
                        return Err(StorageError::Corrupt {
                            key: printable_key(META_CHECKPOINT),
                            reason: "checkpoint revision is neither 8 bytes nor the layout version and 8 bytes".into(),
                        })
                    }
                };
                let mut revision = [0u8; 8];
                revision.copy_from_slice(bytes);
                Ok(u64::from_be_bytes(revision))
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
            if tree_prefix(&k[1..]).is_some_and(|p| self.trees.read().contains_key(p)) {
                if gone_from_default(&self.db, &k)? {
                    continue;
                }
                return Err(misplaced(&k[1..]));
            }
            removed += usize::from(Self::purge_if_tombstone(&self.db, &k, &k[1..], &v, horizon)?);
        }
        let trees: Vec<(Vec<u8>, Part)> = self.trees.read().iter().map(|(p, t)| (p.clone(), t.clone())).collect();
        for (prefix, tree) in trees {
            let tree = match tree {
                Part::Plain(tree) => tree,
                Part::Packed(packed) => {
                    removed += packed.purge_all(horizon)?;
                    continue;
                }
            };
            for item in tree.iter() {
                let (k, v) = item.map_err(|e| StorageError::backend("scanning for tombstones", e))?;
                let key = [&prefix[..], &k].concat();
                removed += usize::from(Self::purge_if_tombstone(&tree, &k, &key, &v, horizon)?);
            }
        }
        Ok(removed)
    }

    fn purge_tombstones_of(&self, keys: &mut dyn Iterator<Item = &[u8]>, horizon: Revision) -> Result<usize> {
        let mut removed = 0;
        // The named keys of each packed tree, purged a chunk at a time.
        let mut packed: BTreeMap<Vec<u8>, NamedKeys> = BTreeMap::new();
        for key in keys {
            let in_tree = tree_prefix(key).and_then(|p| Some((p, self.trees.read().get(p)?.clone())));
            let (tree, k) = match in_tree {
                Some((p, Part::Plain(tree))) => (tree, key[p.len()..].to_vec()),
                Some((p, Part::Packed(tree))) => {
                    let named = packed.entry(p.to_vec()).or_insert_with(|| (tree, Vec::new()));
                    named.1.push(key[p.len()..].to_vec());
                    continue;
                }
                None => ((*self.db).clone(), data_key(key)),
            };
            let Some(v) = tree.get(&k).map_err(|e| StorageError::backend("reading a tombstone", e))? else {
                continue;
            };
            removed += usize::from(Self::purge_if_tombstone(&tree, &k, key, &v, horizon)?);
        }
        for (tree, mut named) in packed.into_values() {
            removed += tree.purge_keys(&mut named, horizon)?;
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

    /// sled itself at `path` (retrying while a dropped store's lock is
    /// being released).
    fn raw(path: &Path) -> sled::Db {
        let started = Instant::now();
        loop {
            match sled::Config::new().path(path).flush_every_ms(None).open() {
                Ok(db) => return db,
                Err(e) if started.elapsed() < SLED_LOCK_WAIT => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn live(revision: Revision, value: &[u8]) -> Versioned {
        Versioned { revision, value: Some(value.to_vec()) }
    }

    fn keys(iter: ScanIter) -> Vec<Vec<u8>> {
        iter.map(|r| r.unwrap().0).collect()
    }

    const SPREAD: [&[u8]; 12] = [
        b"a",
        b"cusers",
        b"d",
        b"dorders\0\x02o1",
        b"dusers",
        b"dusers\0",
        b"dusers\0\x02u1",
        b"dusers\0\x02u2",
        b"dusers\x01",
        b"f\0\0\0\0\0\0\0\x01",
        b"uusers\0email\0a",
        b"xusers\0age\0\x10",
    ];

    #[test]
    fn a_scan_across_trees_walks_the_key_space_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path(), 1 << 20).unwrap();
        let writes: Vec<_> =
            SPREAD.iter().rev().enumerate().map(|(i, k)| (k.to_vec(), live(i as u64 + 1, k))).collect();
        s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        let all: Vec<Vec<u8>> = SPREAD.iter().map(|k| k.to_vec()).collect();
        assert_eq!(keys(s.scan(Bound::Unbounded, Bound::Unbounded)), all);
        let mut rev = all.clone();
        rev.reverse();
        assert_eq!(keys(s.scan_rev(Bound::Unbounded, Bound::Unbounded)), rev);
        assert_eq!(keys(s.scan(Bound::Excluded(b"dusers"), Bound::Included(b"dusers\0\x02u1"))), all[5..7].to_vec());
        assert_eq!(keys(s.scan_rev(Bound::Included(b"d"), Bound::Excluded(b"dusers\0\x02u2"))), {
            let mut v = all[2..7].to_vec();
            v.reverse();
            v
        });
        assert_eq!(keys(s.scan(Bound::Included(b"dusers\0"), Bound::Excluded(b"dusers\x01"))), all[5..8].to_vec());
        for (k, v) in &writes {
            assert_eq!(s.get(k).unwrap().as_ref(), Some(v));
        }
        assert_eq!(s.get(b"dusers\0\x02u3").unwrap(), None);
        assert_eq!(s.get(b"dnone\0\x02u3").unwrap(), None, "a prefix without a tree");
        // Where the bytes went: the documents of `users` in their tree, keyed by the id alone.
        let Some(Part::Plain(users)) = s.trees.read().get(&b"dusers\0"[..]).cloned() else { panic!("a plain tree") };
        assert!(users.get(b"\x02u1").unwrap().is_some());
        assert!(matches!(s.trees.read().get(&b"xusers\0"[..]), Some(Part::Packed(_))), "index entries are packed");
        assert!(s.db.tree_names().iter().any(|n| n.as_ref() == b"pxusers\0"));
        assert!(s.db.get(b"\x01dusers\0\x02u1").unwrap().is_none());
        assert!(s.db.get(b"\x01dusers").unwrap().is_some(), "no NUL: the default tree");
        let names: Vec<Vec<u8>> = s.trees.read().keys().cloned().collect();
        let expected: Vec<&[u8]> = vec![b"dorders\0", b"dusers\0", b"f", b"uusers\0", b"xusers\0"];
        assert_eq!(names, expected.iter().map(|n| n.to_vec()).collect::<Vec<_>>());
        // Tombstones in trees are purged like the others.
        let dels = [(b"dusers\0\x02u1".to_vec(), Versioned { revision: 20, value: None })];
        s.apply(&mut dels.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        assert_eq!(s.purge_tombstones_of(&mut [&b"dusers\0\x02u1"[..]].into_iter(), 19).unwrap(), 0);
        assert_eq!(s.purge_tombstones(20).unwrap(), 1);
        assert_eq!(s.get(b"dusers\0\x02u1").unwrap(), None);
    }

    #[test]
    fn concurrent_applies_of_new_prefixes_never_pass_max_trees() {
        let key = |i: usize| format!("dc{i:04}\0\x02id").into_bytes();
        // Rounds of four appliers, each with a new prefix, racing for the
        // last place under the cap.
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let s = SledStore::open(dir.path(), 1 << 20).unwrap();
            let first: Vec<_> = (0..MAX_TREES - 1).map(|i| (key(i), live(1, b"v"))).collect();
            s.apply(&mut first.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
            let start = std::sync::Barrier::new(4);
            std::thread::scope(|scope| {
                for t in 0..4 {
                    let (s, start) = (&s, &start);
                    scope.spawn(move || {
                        let (k, v) = (key(MAX_TREES + t), live(2, b"w"));
                        start.wait();
                        s.apply(&mut std::iter::once((k.as_slice(), &v))).unwrap();
                    });
                }
            });
            assert_eq!(s.trees.read().len(), MAX_TREES);
            assert_eq!(keys(s.scan(Bound::Unbounded, Bound::Unbounded)).len(), MAX_TREES - 1 + 4);
            drop(s);
            let s = SledStore::open(dir.path(), 1 << 20).unwrap();
            assert_eq!(s.trees.read().len(), MAX_TREES, "reopened within the cap");
        }
    }

    #[test]
    fn past_max_trees_a_prefix_stays_in_the_default_tree_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path(), 1 << 20).unwrap();
        let key = |i: usize| format!("dc{i:04}\0\x02id").into_bytes();
        let writes: Vec<_> = (0..=MAX_TREES).map(|i| (key(i), live(i as u64 + 1, b"v"))).collect();
        s.apply(&mut writes.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        assert_eq!(s.trees.read().len(), MAX_TREES);
        let last = key(MAX_TREES);
        assert!(s.db.get(data_key(&last)).unwrap().is_some(), "the prefix past the cap is in the default tree");
        assert_eq!(keys(s.scan(Bound::Unbounded, Bound::Unbounded)).len(), MAX_TREES + 1);
        let prefix = format!("dc{MAX_TREES:04}\0").into_bytes();
        assert_eq!(keys(s.scan_prefix_for_test(&prefix)), vec![last.clone()]);
        // Empty one tree: dropped at the next open; the prefix past the cap
        // still holds keys in the default tree, so it gets no tree.
        let dels = [(key(0), Versioned { revision: 900, value: None })];
        s.apply(&mut dels.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        assert_eq!(s.purge_tombstones(900).unwrap(), 1);
        drop(s);
        let s = SledStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.trees.read().len(), MAX_TREES - 1, "the emptied tree was dropped");
        let more = [(format!("dc{MAX_TREES:04}\0\x02id2").into_bytes(), live(901, b"w"))];
        s.apply(&mut more.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        assert_eq!(s.trees.read().len(), MAX_TREES - 1);
        assert_eq!(keys(s.scan_prefix_for_test(&prefix)).len(), 2);
        // A new prefix takes the free place.
        let new = [(b"dnew\0\x02id".to_vec(), live(902, b"n"))];
        s.apply(&mut new.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
        assert!(s.trees.read().contains_key(&b"dnew\0"[..]));
        assert_eq!(s.get(b"dnew\0\x02id").unwrap(), Some(live(902, b"n")));
    }

    impl SledStore {
        fn scan_prefix_for_test(&self, prefix: &[u8]) -> ScanIter {
            let end = crate::store::prefix_successor(prefix).unwrap();
            self.scan(Bound::Included(prefix), Bound::Excluded(&end))
        }
    }

    /// Writes `pairs` the way the first layout did: every key in sled's
    /// default tree under `0x01`.
    fn write_first_layout(path: &Path, pairs: &[(Vec<u8>, Versioned)]) {
        let db = raw(path);
        for (k, v) in pairs {
            db.insert(data_key(k), encode_versioned(v)).unwrap();
        }
        db.insert(META_CHECKPOINT, &9u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }

    #[test]
    fn the_first_layout_is_moved_into_trees_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let pairs: Vec<_> = SPREAD.iter().enumerate().map(|(i, k)| (k.to_vec(), live(i as u64 + 1, k))).collect();
        write_first_layout(dir.path(), &pairs);
        let s = SledStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.checkpoint().unwrap(), 9);
        let all: Vec<_> = s.scan(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap()).collect();
        assert_eq!(all, pairs);
        assert_eq!(s.trees.read().len(), 5);
        assert!(s.db.get(b"\x01dusers\0\x02u1").unwrap().is_none(), "moved out of the default tree");
        assert_eq!(s.db.get(b"\x00layout").unwrap().as_deref(), Some(&[layout::PACKED][..]));
        let raw_checkpoint = s.db.get(META_CHECKPOINT).unwrap().unwrap();
        assert_eq!(raw_checkpoint.len(), 9, "not the 8 bytes a build before the trees reads");
        assert_eq!(raw_checkpoint[0], layout::PACKED, "not the layout-2 form a build before packed trees reads");
        drop(s);
        let s = SledStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.scan(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap()).collect::<Vec<_>>(), pairs);
    }

    #[test]
    fn a_move_stopped_after_its_copy_is_finished_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let pairs: Vec<_> = SPREAD.iter().enumerate().map(|(i, k)| (k.to_vec(), live(i as u64 + 1, k))).collect();
        write_first_layout(dir.path(), &pairs);
        {
            // Stopped inside the copy: one key copied, no marker.
            let db = raw(dir.path());
            db.open_tree(b"dusers\0").unwrap().insert(b"\x02u1", encode_versioned(&pairs[6].1)).unwrap();
            db.flush().unwrap();
        }
        let s = SledStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.scan(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap()).collect::<Vec<_>>(), pairs);
        drop(s);
        {
            // Stopped inside the removal: copies back in the default tree, marker "copied".
            let db = raw(dir.path());
            db.insert(b"\x01dusers\0\x02u2", encode_versioned(&pairs[7].1)).unwrap();
            db.insert(b"\x00layout", &[1u8]).unwrap();
            db.flush().unwrap();
        }
        let s = SledStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.scan(Bound::Unbounded, Bound::Unbounded).map(|r| r.unwrap()).collect::<Vec<_>>(), pairs);
        assert!(s.db.get(b"\x01dusers\0\x02u2").unwrap().is_none());
    }

    #[test]
    fn damaged_layouts_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        drop(SledStore::open(dir.path(), 1 << 20).unwrap());
        raw(dir.path()).insert(b"\x00layout", &[9u8]).unwrap();
        assert!(matches!(SledStore::open(dir.path(), 1 << 20), Err(StorageError::UnknownFormat { version: 9, .. })));
        raw(dir.path()).insert(b"\x00layout", &[2u8, 0]).unwrap();
        assert!(matches!(SledStore::open(dir.path(), 1 << 20), Err(StorageError::Corrupt { .. })));
        raw(dir.path()).insert(b"\x00layout", &[2u8]).unwrap();
        {
            let db = raw(dir.path());
            db.open_tree(b"not a prefix").unwrap().insert(b"k", b"v").unwrap();
            db.flush().unwrap();
        }
        let err = SledStore::open(dir.path(), 1 << 20).err().unwrap();
        assert!(matches!(&err, StorageError::Corrupt { reason, .. } if reason.contains("tree")), "{err}");
        assert!(raw(dir.path()).drop_tree(b"not a prefix").unwrap());
        {
            // A key of a prefix with a tree, left in the default tree.
            let db = raw(dir.path());
            db.open_tree(b"dusers\0").unwrap().insert(b"\x02u1", encode_versioned(&live(1, b"a"))).unwrap();
            db.insert(b"\x01dusers\0\x02u2", encode_versioned(&live(2, b"b"))).unwrap();
            db.flush().unwrap();
        }
        let s = SledStore::open(dir.path(), 1 << 20).unwrap();
        s.db.insert(META_CHECKPOINT, &[2u8, 0, 0][..]).unwrap();
        assert!(matches!(s.checkpoint(), Err(StorageError::Corrupt { .. })));
        s.db.insert(META_CHECKPOINT, &7u64.to_be_bytes()).unwrap();
        assert_eq!(s.checkpoint().unwrap(), 7, "the first layout's 8 bytes");
        s.set_checkpoint(8).unwrap();
        assert_eq!(s.checkpoint().unwrap(), 8);
        let items: Vec<_> = s.scan(Bound::Unbounded, Bound::Unbounded).collect();
        assert!(items
            .iter()
            .any(|r| matches!(r, Err(StorageError::Corrupt { reason, .. }) if reason.contains("default tree"))));
        assert!(matches!(s.purge_tombstones(5), Err(StorageError::Corrupt { .. })));
    }
}
