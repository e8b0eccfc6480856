//! [`Watched`]: the live revision of every *watched* key, kept in memory by
//! the commit leader, so that a condition on such a key is decided without
//! a read ([`Batch::require_watched_revision`](crate::Batch::require_watched_revision)).
//!
//! A key is watched from the first condition that names it that way: the
//! leader (one at a time, under the WAL lock) reads its live revision once,
//! as an ordinary condition would, and from then on records every revision
//! it commits for that key (0 for a delete: a tombstone is absent to a
//! condition). Every write reaches the store through the leader, and
//! nothing else changes a key's live revision (a tombstone purge removes
//! only what is already absent), so the recorded revision is always the
//! one a read would find. It is rebuilt from reads after every open, and a
//! key deleted is dropped from it (read again at its next condition).
//!
//! Meant for a few keys named by most commits and rarely written — the
//! collection definitions every write is conditioned on. The number of
//! watched keys is bounded ([`MAX_WATCHED`]); past it, conditions on new
//! keys are read as before.

use crate::batch::Revision;
use std::collections::HashMap;

/// Most keys watched at once.
pub(crate) const MAX_WATCHED: usize = 4096;

/// Watched keys and their live revisions. Owned by the commit leader.
#[derive(Debug, Default)]
pub(crate) struct Watched {
    revisions: HashMap<Vec<u8>, Revision, foldhash::fast::RandomState>,
    /// The first bytes of the watched keys (a bit per byte value), so that
    /// a committed key is looked up only when it may be one of them.
    first_bytes: [u64; 4],
}

impl Watched {
    /// The live revision of `key` if it is watched.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Revision> {
        self.revisions.get(key).copied()
    }

    /// Starts watching `key`, whose live revision was just read as
    /// `revision`; returns false (and watches nothing) when full.
    pub(crate) fn watch(&mut self, key: &[u8], revision: Revision) -> bool {
        if self.revisions.len() >= MAX_WATCHED {
            return false;
        }
        let (word, bit) = Self::bit(key);
        self.first_bytes[word] |= bit;
        self.revisions.insert(key.to_vec(), revision);
        true
    }

    /// Records that `key` was committed at `revision` (0: deleted). Called
    /// for every committed key, in commit order; cheap for keys that are
    /// not watched. A deleted key is no longer watched (a dropped
    /// collection's definition does not hold a place): the next condition
    /// on it reads it again and watches it anew.
    pub(crate) fn note(&mut self, key: &[u8], revision: Revision) {
        let (word, bit) = Self::bit(key);
        if self.first_bytes[word] & bit == 0 {
            return;
        }
        if revision == 0 {
            self.revisions.remove(key);
        } else if let Some(r) = self.revisions.get_mut(key) {
            *r = revision;
        }
    }

    /// Where `key`'s first byte (0 for the empty key) is in `first_bytes`.
    fn bit(key: &[u8]) -> (usize, u64) {
        let first = key.first().copied().unwrap_or(0);
        (usize::from(first >> 6), 1 << (first & 63))
    }

    /// Whether no key is watched (nothing to note).
    pub(crate) fn is_empty(&self) -> bool {
        self.revisions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_key_follows_every_commit_of_it_and_others_are_ignored() {
        let mut w = Watched::default();
        assert!(w.is_empty());
        assert_eq!(w.get(b"c/users"), None, "not watched: read as usual");
        assert!(w.watch(b"c/users", 7));
        assert_eq!(w.get(b"c/users"), Some(7));
        w.note(b"c/users", 9);
        assert_eq!(w.get(b"c/users"), Some(9), "a commit of it moves it");
        w.note(b"c/orders", 10);
        w.note(b"d/users/1", 11);
        assert_eq!(w.get(b"c/orders"), None, "unwatched keys stay unwatched");
        assert_eq!(w.get(b"c/users"), Some(9));
        w.note(b"c/users", 0);
        assert_eq!(w.get(b"c/users"), None, "deleted: no longer watched, read as usual");
        assert!(w.watch(b"", 3), "the empty key too");
        w.note(b"", 12);
        assert_eq!(w.get(b""), Some(12));
    }

    #[test]
    fn watching_stops_at_the_bound() {
        let mut w = Watched::default();
        for i in 0..MAX_WATCHED {
            assert!(w.watch(format!("k{i}").as_bytes(), 1));
        }
        assert!(!w.watch(b"one more", 1), "full: read as usual");
        assert_eq!(w.get(b"one more"), None);
        w.note(b"k7", 0);
        assert!(w.watch(b"one more", 1), "a deleted key's place is free again");
        assert_eq!(w.get(b"one more"), Some(1));
    }
}
