//! Merging a memtable range snapshot with a cold-store scan: both sorted by
//! key; where both hold a key, the newer revision wins.

use crate::cold::{ScanItem, Versioned};
use std::iter::Peekable;

/// Merges `hot` (sorted, from the memtable) with `cold` (sorted, from the
/// cold store).
pub(crate) struct Merge<C: Iterator<Item = ScanItem>> {
    hot: Peekable<std::vec::IntoIter<(Vec<u8>, Versioned)>>,
    cold: Peekable<C>,
    /// Both inputs run in descending key order.
    descending: bool,
}

impl<C: Iterator<Item = ScanItem>> Merge<C> {
    pub(crate) fn new(hot: Vec<(Vec<u8>, Versioned)>, cold: C) -> Self {
        Self { hot: hot.into_iter().peekable(), cold: cold.peekable(), descending: false }
    }

    /// Merges in descending key order: `hot` sorted ascending (it is
    /// reversed here), `cold` already descending.
    pub(crate) fn new_descending(mut hot: Vec<(Vec<u8>, Versioned)>, cold: C) -> Self {
        hot.reverse();
        Self { hot: hot.into_iter().peekable(), cold: cold.peekable(), descending: true }
    }
}

impl<C: Iterator<Item = ScanItem>> Iterator for Merge<C> {
    type Item = ScanItem;

    fn next(&mut self) -> Option<ScanItem> {
        let order = match (self.hot.peek(), self.cold.peek()) {
            (None, None) => return None,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) | (_, Some(Err(_))) => std::cmp::Ordering::Greater,
            (Some((hk, _)), Some(Ok((ck, _)))) if self.descending => ck.cmp(hk),
            (Some((hk, _)), Some(Ok((ck, _)))) => hk.cmp(ck),
        };
        match order {
            std::cmp::Ordering::Less => self.hot.next().map(Ok),
            std::cmp::Ordering::Greater => self.cold.next(),
            std::cmp::Ordering::Equal => {
                let hot = self.hot.next()?;
                match self.cold.next() {
                    Some(Ok(cold)) if cold.1.revision > hot.1.revision => Some(Ok(cold)),
                    _ => Some(Ok(hot)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(k: &str, rev: u64) -> (Vec<u8>, Versioned) {
        (k.as_bytes().to_vec(), Versioned { revision: rev, value: Some(vec![rev as u8]) })
    }

    #[test]
    fn merges_in_order_newest_wins() {
        let hot = vec![item("a", 5), item("c", 2), item("d", 9)];
        let cold = vec![item("b", 1), item("c", 3), item("d", 4), item("e", 1)];
        let got: Vec<_> = Merge::new(hot, cold.into_iter().map(Ok)).map(|r| r.unwrap()).collect();
        assert_eq!(got, vec![item("a", 5), item("b", 1), item("c", 3), item("d", 9), item("e", 1)]);
    }

    #[test]
    fn merges_backwards_in_order_newest_wins() {
        let hot = vec![item("a", 5), item("c", 2), item("d", 9)];
        let cold = vec![item("e", 1), item("d", 4), item("c", 3), item("b", 1)];
        let got: Vec<_> = Merge::new_descending(hot, cold.into_iter().map(Ok)).map(|r| r.unwrap()).collect();
        assert_eq!(got, vec![item("e", 1), item("d", 9), item("c", 3), item("b", 1), item("a", 5)]);
    }
}
