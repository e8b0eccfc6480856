//! [`HighKeys`]: the highest key the store has held under each key scope a
//! commit condition named, so that the absence of a key above it is known
//! without a read ([`Batch::require_new`](crate::Batch::require_new)).
//!
//! A key sorting above every key ever held under its scope cannot be
//! present. The commit leader (one at a time, under the WAL lock) learns a
//! scope's highest key from the store the first time a condition names it
//! — the last key under the prefix in the memtable and the cold store,
//! tombstones included — and from then on raises it with every key it
//! commits. Keys only leave a scope by deletes (tombstones, purged later),
//! which can only make the recorded key higher than needed: a key at or
//! below it is read as before, so the shortcut never answers differently
//! from the read.

use std::collections::HashMap;

/// Highest keys per scope prefix. Owned by the commit leader.
#[derive(Debug, Default)]
pub(crate) struct HighKeys {
    /// Scope prefix → the highest key held under it (empty: none, which
    /// sorts below every key under the prefix).
    highs: HashMap<Vec<u8>, Vec<u8>, foldhash::fast::RandomState>,
    /// The distinct prefix lengths in `highs`, to find a key's scopes.
    lengths: Vec<usize>,
}

impl HighKeys {
    /// Whether `prefix`'s highest key is known.
    pub(crate) fn tracks(&self, prefix: &[u8]) -> bool {
        self.highs.contains_key(prefix)
    }

    /// Starts tracking `prefix`, whose highest key held is `high` (`None`:
    /// nothing under it).
    pub(crate) fn track(&mut self, prefix: &[u8], high: Option<Vec<u8>>) {
        if !self.lengths.contains(&prefix.len()) {
            self.lengths.push(prefix.len());
        }
        self.highs.insert(prefix.to_vec(), high.unwrap_or_default());
    }

    /// Whether `key` is known to be absent: it sorts above the highest key
    /// held under its scope (its first `scope` bytes), which is tracked.
    pub(crate) fn above(&self, key: &[u8], scope: usize) -> bool {
        if scope == 0 || scope >= key.len() {
            return false;
        }
        self.highs.get(&key[..scope]).is_some_and(|high| key > high.as_slice())
    }

    /// Records that `key` is now held (called for every committed key).
    pub(crate) fn note(&mut self, key: &[u8]) {
        for &len in &self.lengths {
            if len < key.len() {
                if let Some(high) = self.highs.get_mut(&key[..len]) {
                    if key > high.as_slice() {
                        high.clear();
                        high.extend_from_slice(key);
                    }
                }
            }
        }
    }

    /// Whether no scope is tracked (nothing to note).
    pub(crate) fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_absent_only_above_everything_held_in_its_scope() {
        let mut h = HighKeys::default();
        assert!(!h.above(b"p/5", 2), "an untracked scope is never decided");
        h.track(b"p/", Some(b"p/3".to_vec()));
        h.track(b"q/", None);
        assert!(h.above(b"p/4", 2));
        assert!(!h.above(b"p/3", 2), "the highest key itself is held");
        assert!(!h.above(b"p/25", 2), "below the highest key: read");
        assert!(h.above(b"q/0", 2), "an empty scope");
        assert!(!h.above(b"p/", 2), "the prefix alone is not in its scope");
        assert!(!h.above(b"p/9", 0), "no scope");
        h.note(b"p/7");
        h.note(b"p/5");
        h.note(b"x/9");
        assert!(!h.above(b"p/6", 2), "noted keys raise the scope's highest key");
        assert!(!h.above(b"p/7", 2));
        assert!(h.above(b"p/8", 2));
        assert!(h.above(b"q/0", 2), "other scopes untouched");
    }
}
