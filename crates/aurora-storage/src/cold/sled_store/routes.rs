//! Which sled tree holds a key.
//!
//! The cold store presents one ordered key space; sled stores it in trees
//! of its own (sled 0.34 rewrites the leaves at the end of a tree whole,
//! and a key byte costs it ~8 MiB per million documents, so a prefix that
//! every key of a large range repeats is best not stored at all, and the
//! change feed's appends are best kept out of the documents' leaves):
//!
//! - `"d" ++ collection ++ 0x00 ++ rest` (a document): the tree named
//!   `"d" ++ collection ++ 0x00`, keyed by `rest` (the id's key bytes);
//! - `"x" …` (index entries) and `"u" …` (unique claims) likewise, one
//!   tree per collection and kind;
//! - `"f" ++ rest` (the change feed): the tree `"f"`, keyed by `rest`;
//! - every other key (the catalog, the feed's floor and archives, …), and a
//!   `d`/`x`/`u` key whose collection part is empty, longer than
//!   [`MAX_NAME`] bytes or not ended by 0x00: sled's default tree, under
//!   `0x01` as in the first layout.
//!
//! A tree's name is the whole prefix its keys share, and every key with
//! that prefix is routed to it, so one tree holds exactly one contiguous
//! interval of the key space (`name .. successor(name)`), and the default
//! tree holds none of any tree's keys: a scan walks the trees in name
//! order, merged with the default tree.

/// Longest collection part of a tree name, in bytes (collection names
/// are at most 128 bytes).
pub(crate) const MAX_NAME: usize = 128;
/// Key-space tags stored in a tree per collection: documents, unique
/// claims, index entries.
const PER_COLLECTION: [u8; 3] = [b'd', b'u', b'x'];
/// The change feed's tag: one tree.
const FEED: u8 = b'f';
/// The index entries' tag: their trees are packed.
const INDEX: u8 = b'x';

/// The name of the tree that holds `key` — the prefix of `key` stripped
/// when it is stored — or `None` for sled's default tree.
pub(crate) fn tree_prefix(key: &[u8]) -> Option<&[u8]> {
    match *key.first()? {
        FEED => Some(&key[..1]),
        tag if PER_COLLECTION.contains(&tag) => {
            let nul = key[1..].iter().take(MAX_NAME + 1).position(|&b| b == 0)?;
            (nul > 0).then(|| &key[..nul + 2])
        }
        _ => None,
    }
}

/// Whether `name` is a tree name this layout makes.
pub(crate) fn is_tree_name(name: &[u8]) -> bool {
    tree_prefix(name) == Some(name)
}

/// First byte of the sled name of a packed tree (`packed`): `"p" ++ prefix`.
/// sled has no rename, and a per-entry index tree and its packed copy
/// coexist while a database is moved to packed trees, so the packed one
/// needs a name of its own. The store's map of trees is keyed by the
/// prefix either way, so scans still walk the trees in prefix order.
const PACKED: u8 = b'p';

/// Whether the keys of the tree `prefix` are stored packed (index entries).
pub(crate) fn is_packed_prefix(prefix: &[u8]) -> bool {
    prefix.first() == Some(&INDEX)
}

/// The sled name of the packed tree of `prefix`.
pub(crate) fn packed_name(prefix: &[u8]) -> Vec<u8> {
    [&[PACKED][..], prefix].concat()
}

/// The prefix whose packed tree is named `name`, if it is such a name.
pub(crate) fn packed_prefix(name: &[u8]) -> Option<&[u8]> {
    match name.split_first() {
        Some((&PACKED, prefix)) if is_tree_name(prefix) && is_packed_prefix(prefix) => Some(prefix),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_route_by_their_key_space_prefix() {
        assert_eq!(tree_prefix(b"dusers\0\x02u1"), Some(&b"dusers\0"[..]));
        assert_eq!(tree_prefix(b"dusers\0"), Some(&b"dusers\0"[..]));
        assert_eq!(tree_prefix(b"xusers\0age\0\x10"), Some(&b"xusers\0"[..]));
        assert_eq!(tree_prefix(b"uusers\0email\0a"), Some(&b"uusers\0"[..]));
        assert_eq!(tree_prefix(b"f\0\0\0\0\0\0\0\x07\0\0\0\0"), Some(&b"f"[..]));
        assert_eq!(tree_prefix(b"f"), Some(&b"f"[..]));
        for default in [&b""[..], b"cusers", b"F", b"vdusers\0\x02u1", b"dusers", b"d\0id", b"d", b"k", b"\xff"] {
            assert_eq!(tree_prefix(default), None, "{default:?}");
        }
        let long = [&b"d"[..], &[b'a'; MAX_NAME], b"\0id"].concat();
        assert_eq!(tree_prefix(&long), Some(&long[..MAX_NAME + 2]));
        let too_long = [&b"d"[..], &[b'a'; MAX_NAME + 1], b"\0id"].concat();
        assert_eq!(tree_prefix(&too_long), None);
    }

    #[test]
    fn tree_names_are_exactly_the_prefixes() {
        for name in [&b"dusers\0"[..], b"x_jobs\0", b"uc\0", b"f"] {
            assert!(is_tree_name(name), "{name:?}");
        }
        for name in [&b"__sled__default"[..], b"dusers\0\x02", b"dusers", b"fx", b"", b"c", b"pxusers\0"] {
            assert!(!is_tree_name(name), "{name:?}");
        }
    }

    #[test]
    fn packed_trees_are_named_apart_from_the_prefixes() {
        assert_eq!(packed_name(b"xusers\0"), b"pxusers\0".to_vec());
        assert_eq!(packed_prefix(b"pxusers\0"), Some(&b"xusers\0"[..]));
        for name in [&b"pdusers\0"[..], b"xusers\0", b"px", b"pxusers", b"p", b""] {
            assert_eq!(packed_prefix(name), None, "{name:?}");
        }
        assert!(is_packed_prefix(b"xusers\0") && !is_packed_prefix(b"dusers\0") && !is_packed_prefix(b"f"));
    }
}
