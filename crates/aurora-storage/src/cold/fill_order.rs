//! The order in which the applier inserts a sorted run of keys into one sled
//! tree, so that sled 0.34's leaves end up full.
//!
//! sled 0.34 splits a leaf once it holds more than [`LEAF_ITEMS`] items, at
//! `len / 2 + 1` (17 items → 9 | 8), and the left half is never appended
//! to again when keys arrive in ascending order (Aurora's document ids are
//! UUID v7, index entries append at the end of their value's run, the feed
//! appends): inserted in key order, every leaf but the last keeps 9 items,
//! about twice the pages (and splits, each logging both halves) that full
//! leaves need. The applier writes a frozen memtable whose keys are
//! distinct and whose checkpoint comes after all of them, so the order of
//! its inserts is free. [`fill_order`] inserts, in each block of
//! [`LEAF_ITEMS`] consecutive keys, the 9 "skeleton" keys at positions
//! 0, 2, …, 14, 15 first (in ascending order over the whole run), which
//! split into leaves of exactly those 9 keys, then the 7 "fill" keys at the
//! odd positions 1, …, 13 — each falls strictly between two skeleton keys
//! of its block, so into that block's leaf, which then holds 16 items and
//! does not split again.
//!
//! A run shorter than a block, and the last partial block of a run, are
//! inserted in key order (they land in the leaf at the insertion point,
//! which the next run keeps filling).

/// Items a sled 0.34 leaf holds before it splits (`node.rs::should_split`).
pub const LEAF_ITEMS: usize = 16;

/// Positions within a block of [`LEAF_ITEMS`] keys inserted first: the
/// keys of one leaf after sled splits the run (17 → 9 | 8).
const SKELETON: [usize; 9] = [0, 2, 4, 6, 8, 10, 12, 14, 15];
/// Positions inserted second, each between two skeleton keys.
const FILL: [usize; 7] = [1, 3, 5, 7, 9, 11, 13];

/// The order in which to insert the `len` keys of a sorted run: a
/// permutation of `0..len` (each index exactly once), the skeleton
/// positions of every full block of [`LEAF_ITEMS`] and the last partial
/// block's positions in ascending order, then the fill positions of every
/// full block in ascending order.
///
/// ```
/// use aurora_storage::cold::fill_order::fill_order;
/// let order: Vec<usize> = fill_order(18).collect();
/// assert_eq!(order, [0, 2, 4, 6, 8, 10, 12, 14, 15, 16, 17, 1, 3, 5, 7, 9, 11, 13]);
/// ```
pub fn fill_order(len: usize) -> impl Iterator<Item = usize> {
    let blocks = len / LEAF_ITEMS;
    let full = blocks * LEAF_ITEMS;
    let skeleton = (0..blocks).flat_map(|b| SKELETON.iter().map(move |p| b * LEAF_ITEMS + p));
    let fill = (0..blocks).flat_map(|b| FILL.iter().map(move |p| b * LEAF_ITEMS + p));
    skeleton.chain(full..len).chain(fill)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_exactly_once() {
        for len in 0..100 {
            let mut seen: Vec<usize> = fill_order(len).collect();
            assert_eq!(seen.len(), len, "length {len}");
            seen.sort_unstable();
            assert!(seen.iter().copied().eq(0..len), "length {len}: {seen:?}");
        }
    }

    #[test]
    fn skeleton_ascending_then_fill_ascending_between_its_skeleton_neighbours() {
        let len = 5 * LEAF_ITEMS + 7;
        let order: Vec<usize> = fill_order(len).collect();
        let split = 5 * SKELETON.len() + 7;
        let (skeleton, fill) = order.split_at(split);
        assert!(skeleton.windows(2).all(|w| w[0] < w[1]), "{skeleton:?}");
        assert!(fill.windows(2).all(|w| w[0] < w[1]), "{fill:?}");
        for f in fill {
            // Both neighbours are skeleton keys of the same block.
            assert!(skeleton.contains(&(f - 1)) && skeleton.contains(&(f + 1)), "{f}");
            assert_eq!((f - 1) / LEAF_ITEMS, (f + 1) / LEAF_ITEMS, "{f}");
        }
    }

    /// sled's split rule on the skeleton appended in order: each leaf
    /// left behind holds the 9 skeleton keys of one block, so its 7 fill
    /// keys bring it to [`LEAF_ITEMS`] and no further.
    #[test]
    fn simulated_sled_leaves_end_full() {
        let len = 40 * LEAF_ITEMS;
        // A leaf is the sorted list of its keys; keys go to the last leaf
        // whose first key is at or below them; a leaf over LEAF_ITEMS splits
        // at len / 2 + 1 before the next insert.
        let mut leaves: Vec<Vec<usize>> = vec![vec![]];
        for k in fill_order(len) {
            if let Some(i) = leaves.iter().position(|l| l.len() > LEAF_ITEMS) {
                let at = leaves[i].len() / 2 + 1;
                let right = leaves[i].split_off(at);
                leaves.insert(i + 1, right);
            }
            let i = leaves.iter().rposition(|l| l.first().is_none_or(|f| *f <= k)).unwrap_or(0);
            let at = leaves[i].partition_point(|x| *x < k);
            leaves[i].insert(at, k);
        }
        let full = leaves.iter().filter(|l| l.len() == LEAF_ITEMS).count();
        assert!(full >= leaves.len() - 1, "{:?}", leaves.iter().map(Vec::len).collect::<Vec<_>>());
        // In key order, the same rule leaves 9 in every leaf but the last.
        let mut ascending: Vec<Vec<usize>> = vec![vec![]];
        for k in 0..len {
            if ascending.last().is_some_and(|l| l.len() > LEAF_ITEMS) {
                let last = ascending.len() - 1;
                let right = ascending[last].split_off(LEAF_ITEMS / 2 + 1);
                ascending.push(right);
            }
            if let Some(l) = ascending.last_mut() {
                l.push(k);
            }
        }
        assert!(ascending.len() > leaves.len() * 17 / 10, "{} vs {}", ascending.len(), leaves.len());
    }
}
