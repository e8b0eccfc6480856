//! Scans over the trees of the sled backend: one tree's part of a range
//! (its name stripped from the bounds, put back on the keys), and the
//! merge of the trees (walked in name order; their intervals are disjoint)
//! with the default tree into one walk in key order.

use crate::cold::{ScanItem, ScanIter};
use std::ops::Bound;

/// Owned bounds of a range: (start, end).
pub(crate) type Bounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The bounds of `start..end` inside the tree named `prefix`, with the
/// prefix stripped, or `None` when no key of the tree is in the range.
pub(crate) fn inner_bounds(prefix: &[u8], start: Bound<&[u8]>, end: Bound<&[u8]>) -> Option<Bounds> {
    // A key outside the tree's interval that is above its name is above
    // every key of the tree (see `routes`: keys with the prefix are all of
    // the interval).
    let lo = match start {
        Bound::Unbounded => Bound::Unbounded,
        b if starts_with(b, prefix) => strip(b, prefix),
        Bound::Included(s) | Bound::Excluded(s) if s < prefix => Bound::Unbounded,
        Bound::Included(_) | Bound::Excluded(_) => return None,
    };
    let hi = match end {
        Bound::Unbounded => Bound::Unbounded,
        b if starts_with(b, prefix) => strip(b, prefix),
        Bound::Included(e) | Bound::Excluded(e) if e < prefix => return None,
        Bound::Included(_) | Bound::Excluded(_) => Bound::Unbounded,
    };
    (!is_empty(as_ref(&lo), as_ref(&hi))).then_some((lo, hi))
}

/// Whether a bounded `b`'s key starts with `prefix`.
fn starts_with(b: Bound<&[u8]>, prefix: &[u8]) -> bool {
    matches!(b, Bound::Included(k) | Bound::Excluded(k) if k.starts_with(prefix))
}

/// `b` with `prefix` taken off its key (which starts with it), owned.
fn strip(b: Bound<&[u8]>, prefix: &[u8]) -> Bound<Vec<u8>> {
    b.map(|k| k[prefix.len()..].to_vec())
}

/// Whether every key of `start..end` lies in the tree named `prefix`.
pub(crate) fn within(prefix: &[u8], start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    let start_in = starts_with(start, prefix);
    let end_in = match end {
        Bound::Included(e) => e.starts_with(prefix),
        Bound::Excluded(e) => e.starts_with(prefix) || crate::store::prefix_successor(prefix).as_deref() == Some(e),
        Bound::Unbounded => false,
    };
    start_in && end_in
}

pub(crate) fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Whether `start..end` holds no key at all (sled's ranges want
/// `start <= end`; nothing is below the empty key).
pub(crate) fn is_empty(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    match (start, end) {
        (_, Bound::Excluded([])) => true,
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => s >= e,
        _ => false,
    }
}

/// Two walks in the same key order, whose keys are disjoint, as one.
/// An error is passed on as soon as it is the next item of either side.
pub(crate) struct Merged {
    pub(crate) a: std::iter::Peekable<ScanIter>,
    pub(crate) b: std::iter::Peekable<ScanIter>,
    pub(crate) reverse: bool,
}

impl Iterator for Merged {
    type Item = ScanItem;

    fn next(&mut self) -> Option<ScanItem> {
        let take_a = match (self.a.peek(), self.b.peek()) {
            (None, None) => return None,
            (Some(_), None) | (Some(Err(_)), _) => true,
            (None, Some(_)) | (_, Some(Err(_))) => false,
            (Some(Ok((ka, _))), Some(Ok((kb, _)))) => (ka < kb) != self.reverse,
        };
        if take_a {
            self.a.next()
        } else {
            self.b.next()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(k: &[u8]) -> Bound<&[u8]> {
        Bound::Included(k)
    }

    fn exc(k: &[u8]) -> Bound<&[u8]> {
        Bound::Excluded(k)
    }

    #[test]
    fn bounds_inside_a_tree() {
        let p = b"dA\0";
        let un = Bound::Unbounded;
        assert_eq!(inner_bounds(p, un, un), Some((Bound::Unbounded, Bound::Unbounded)));
        assert_eq!(inner_bounds(p, inc(b"c"), exc(b"e")), Some((Bound::Unbounded, Bound::Unbounded)));
        assert_eq!(
            inner_bounds(p, exc(b"dA\0k"), inc(b"dA\0m")),
            Some((Bound::Excluded(b"k".to_vec()), Bound::Included(b"m".to_vec())))
        );
        assert_eq!(inner_bounds(p, inc(b"dA\0"), exc(b"dA\x01")), Some((Bound::Included(vec![]), Bound::Unbounded)));
        assert_eq!(inner_bounds(p, inc(b"dA\x01"), un), None, "starts past the tree");
        assert_eq!(inner_bounds(p, un, exc(b"dA")), None, "ends before the tree");
        assert_eq!(inner_bounds(p, un, exc(b"dA\0")), None, "ends at its first key, excluded");
        assert_eq!(inner_bounds(p, un, inc(b"dA\0")), Some((Bound::Unbounded, Bound::Included(vec![]))));
        assert_eq!(inner_bounds(p, inc(b"dA\0z"), exc(b"dA\0b")), None, "start above end");
        assert!(within(p, inc(b"dA\0"), exc(b"dA\x01")));
        assert!(within(p, exc(b"dA\0a"), inc(b"dA\0b")));
        assert!(!within(p, inc(b"dA\0"), un));
        assert!(!within(p, inc(b"dA"), exc(b"dA\x01")));
        assert!(!within(b"f", inc(b"f"), exc(b"h")));
        assert!(is_empty(inc(b"b"), exc(b"b")) && !is_empty(inc(b"b"), inc(b"b")) && is_empty(exc(b"c"), inc(b"b")));
    }
}
