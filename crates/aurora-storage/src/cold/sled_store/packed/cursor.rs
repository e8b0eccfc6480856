//! A lazy scan of a packed tree, forwards or backwards, one chunk at a
//! time (the parent module's docs give the reasoning: a chunk is read,
//! then its bound, then checked unchanged; the cursor is the edge of what
//! was emitted, so a racing split neither hides nor repeats a key).

use super::{backend, Chunk, PackedTree, READ_ATTEMPTS};
use crate::cold::sled_store::values::decode_versioned;
use crate::cold::{ScanItem, Versioned};
use crate::error::Result;
use sled::IVec;
use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

/// The scan's state.
pub(super) struct Cursor {
    tree: Arc<PackedTree>,
    /// Forwards: the lower edge of what is left (`Unbounded` at the start).
    /// Backwards: the range's lower bound.
    lo: Bound<Vec<u8>>,
    /// Backwards: the upper edge of what is left. Forwards: the range's
    /// upper bound.
    hi: Bound<Vec<u8>>,
    reverse: bool,
    ready: VecDeque<(Vec<u8>, Versioned)>,
    done: bool,
}

fn below_end(k: &[u8], hi: &Bound<Vec<u8>>) -> bool {
    match hi {
        Bound::Unbounded => true,
        Bound::Included(e) => k <= e.as_slice(),
        Bound::Excluded(e) => k < e.as_slice(),
    }
}

fn above_start(k: &[u8], lo: &Bound<Vec<u8>>) -> bool {
    match lo {
        Bound::Unbounded => true,
        Bound::Included(s) => k >= s.as_slice(),
        Bound::Excluded(s) => k > s.as_slice(),
    }
}

impl Cursor {
    pub(super) fn new(tree: Arc<PackedTree>, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>, reverse: bool) -> Self {
        Self { tree, lo, hi, reverse, ready: VecDeque::new(), done: false }
    }

    /// The chunk owning the next key forwards: the last at or below the
    /// lower edge, else the first.
    fn forward_owner(&self) -> Result<Option<Chunk>> {
        let t = &self.tree.tree;
        let found = match &self.lo {
            Bound::Unbounded => None,
            Bound::Included(s) | Bound::Excluded(s) => t.range::<&[u8], _>(..=&s[..]).next_back(),
        };
        match found {
            Some(c) => c.map(Some).map_err(backend("reading a chunk")),
            None => t.first().map_err(backend("reading a chunk")),
        }
    }

    /// The chunk owning the next key backwards: the last below the upper
    /// edge (at or below it when included), else the first.
    fn backward_owner(&self) -> Result<Option<Chunk>> {
        let t = &self.tree.tree;
        let found = match &self.hi {
            Bound::Unbounded => t.last().transpose(),
            Bound::Included(e) => t.range::<&[u8], _>(..=&e[..]).next_back(),
            Bound::Excluded(e) => t.range::<&[u8], _>(..&e[..]).next_back(),
        };
        match found {
            Some(c) => c.map(Some).map_err(backend("reading a chunk")),
            None => t.first().map_err(backend("reading a chunk")),
        }
    }

    /// Reads the next chunk's share of the scan into `ready` (or ends the
    /// scan); `false` when a writer moved things meanwhile and the step
    /// must be read again.
    fn step(&mut self) -> Result<bool> {
        let owner = if self.reverse { self.backward_owner()? } else { self.forward_owner()? };
        let Some((ck, raw)) = owner else {
            self.done = true;
            return Ok(true);
        };
        let next: Option<IVec> = self.tree.next_key(&ck)?;
        if self.reverse {
            // A chunk between this one and the upper edge appeared: read again.
            if let Some(n) = &next {
                let inside = match &self.hi {
                    Bound::Unbounded => true,
                    Bound::Included(e) => n.as_ref() <= e.as_slice(),
                    Bound::Excluded(e) => n.as_ref() < e.as_slice(),
                };
                if inside {
                    return Ok(false);
                }
            }
        }
        if !self.tree.unchanged(&ck, &raw)? {
            return Ok(false);
        }
        let entries = self.tree.owned(&ck, &raw, next.as_deref())?;
        let mut items = Vec::new();
        for (k, v) in &entries {
            if above_start(k, &self.lo) && below_end(k, &self.hi) {
                let full = self.tree.full(k);
                let super::chunk::Val::Raw(raw) = v else { continue };
                let versioned = decode_versioned(&full, raw)?;
                items.push((full, versioned));
            }
        }
        if self.reverse {
            items.reverse();
            self.ready.extend(items);
            // Below this chunk's key: its predecessors.
            let first = !self.tree.has_predecessor(&ck)?;
            let past_start = !above_start(&ck, &self.lo) || first;
            if past_start {
                self.done = true;
            } else {
                self.hi = Bound::Excluded(ck.to_vec());
            }
        } else {
            self.ready.extend(items);
            match next {
                Some(n) if below_end(&n, &self.hi) => self.lo = Bound::Included(n.to_vec()),
                _ => self.done = true,
            }
        }
        Ok(true)
    }
}

impl Iterator for Cursor {
    type Item = ScanItem;

    fn next(&mut self) -> Option<ScanItem> {
        let mut attempts = 0;
        while self.ready.is_empty() && !self.done {
            let stepped = if attempts >= READ_ATTEMPTS {
                // Writers keep moving this chunk: read it under their lock.
                let tree = Arc::clone(&self.tree);
                let _writes = tree.writer.lock();
                self.step()
            } else {
                self.step()
            };
            match stepped {
                Ok(true) => attempts = 0,
                Ok(false) => attempts += 1,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.ready.pop_front().map(Ok)
    }
}
