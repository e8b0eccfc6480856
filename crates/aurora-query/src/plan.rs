//! The planner: which index (if any) produces the candidate documents.
//!
//! Every access path yields a *superset* of the matching documents; the
//! whole filter is then applied to each candidate, so a plan can only be
//! slower, never wrong.

use crate::query::Order;
use aurora_core::filter::Filter;
use aurora_core::{FieldType, Value};
use aurora_index::{CollectionDef, IndexScan};
use std::ops::Bound;

/// How candidates are found.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// Read every document of the collection.
    FullScan,
    /// Read one ready index.
    Index {
        /// The indexed field.
        field: String,
        /// The entries read (one scan per value for `in`).
        scans: Vec<IndexScan>,
    },
    /// Read the documents by id: an `eq` or `in` on `_id` (no index
    /// needed — documents are stored by id).
    Ids {
        /// The ids read.
        count: usize,
    },
    /// Intersect the ids of two index reads.
    Intersection(Box<Access>, Box<Access>),
    /// Walk an index in value order, stopping once `limit` matches are found
    /// (an `order_by` on an indexed, non-nullable field).
    IndexOrder {
        /// The ordering field.
        field: String,
        /// Descending order.
        descending: bool,
    },
    /// Read a compound index: the entries whose leading fields equal
    /// `equal`, with the next field within `range`. When `ordered`, the
    /// query's order is the order of the remaining fields, so the entries
    /// are walked in it (backwards when `descending`) and the walk stops
    /// after `offset + limit` matches; otherwise its ids are candidates like
    /// any other index read's.
    Compound {
        /// The index's fields, in index order.
        fields: Vec<String>,
        /// Values of the leading fields the filter fixes.
        equal: Vec<Value>,
        /// Bounds on the next field (both `Unbounded`: none).
        range: (Bound<Value>, Bound<Value>),
        /// Walked in the query's order.
        ordered: bool,
        /// Walked backwards (a descending order).
        descending: bool,
    },
}

impl Access {
    /// The access path named without any value from the filter, e.g.
    /// `full_scan`, `ids`, `index(room)`, `index_order(ts desc)`,
    /// `compound(room,ts)`, `intersection(index(a),index(b))` — what the
    /// `query` tracing span records (spans never carry document or filter
    /// values).
    pub fn summary(&self) -> String {
        match self {
            Access::FullScan => "full_scan".into(),
            Access::Ids { .. } => "ids".into(),
            Access::Index { field, .. } => format!("index({field})"),
            Access::Intersection(a, b) => format!("intersection({},{})", a.summary(), b.summary()),
            Access::IndexOrder { field, descending } => {
                format!("index_order({field} {})", if *descending { "desc" } else { "asc" })
            }
            Access::Compound { fields, .. } => format!("compound({})", fields.join(",")),
        }
    }
}

/// A read of a compound index the filter and order allow.
#[derive(Debug, Clone)]
pub(crate) struct CompoundRead {
    /// The index's catalog name.
    pub(crate) name: String,
    /// The read.
    pub(crate) scan: IndexScan,
    /// What `explain` shows.
    pub(crate) access: Access,
    /// The direction to walk in when the read yields the query's order.
    pub(crate) walk: Option<Order>,
}

/// The best compound-index read for these filter conjuncts and this order,
/// if any ready compound index serves them: the one that yields the order,
/// then fixes the most leading fields, then also bounds the next one.
pub(crate) fn compound_for(
    def: &CollectionDef,
    conjuncts: &[&Filter],
    order: &[(String, Order)],
    allowed: impl Fn(&str) -> bool,
) -> Option<CompoundRead> {
    let mut best: Option<((bool, usize, bool), CompoundRead)> = None;
    for (fields, name) in def.ready_compound_indexes().filter(|(_, name)| allowed(name)) {
        let mut equal = Vec::new();
        for field in &fields {
            let eq = conjuncts.iter().find_map(|c| match c {
                Filter::Eq(f, v) if f == field => Some(v.clone()),
                _ => None,
            });
            match eq {
                Some(v) => equal.push(v),
                None => break,
            }
        }
        let rest = &fields[equal.len()..];
        let (mut low, mut high) = (Bound::Unbounded, Bound::Unbounded);
        if let Some(next) = rest.first() {
            for c in conjuncts {
                let (lo, hi) = match c {
                    Filter::Gt(f, v) if f == next => (Bound::Excluded(v.clone()), Bound::Unbounded),
                    Filter::Gte(f, v) if f == next => (Bound::Included(v.clone()), Bound::Unbounded),
                    Filter::Lt(f, v) if f == next => (Bound::Unbounded, Bound::Excluded(v.clone())),
                    Filter::Lte(f, v) if f == next => (Bound::Unbounded, Bound::Included(v.clone())),
                    Filter::Between(f, a, b) if f == next => (Bound::Included(a.clone()), Bound::Included(b.clone())),
                    _ => continue,
                };
                low = tighter_low(low, lo);
                high = tighter_high(high, hi);
            }
        }
        let ranged = !matches!((&low, &high), (Bound::Unbounded, Bound::Unbounded));
        // The entries come in the order of the remaining fields, then id:
        // the query's order only if it names exactly those, one direction.
        let walk = match order.first() {
            Some((_, dir))
                if order.len() == rest.len() && order.iter().zip(rest).all(|((f, d), r)| f == r && d == dir) =>
            {
                Some(*dir)
            }
            _ => None,
        };
        if equal.is_empty() && !ranged && walk.is_none() {
            continue;
        }
        let score = (walk.is_some(), equal.len(), ranged);
        if best.as_ref().is_some_and(|(b, _)| *b >= score) {
            continue;
        }
        let access = Access::Compound {
            fields: fields.iter().map(|f| f.to_string()).collect(),
            equal: equal.clone(),
            range: (low.clone(), high.clone()),
            ordered: walk.is_some(),
            descending: walk == Some(Order::Desc),
        };
        let scan = IndexScan::Tuple { equal, low, high };
        best = Some((score, CompoundRead { name: name.to_string(), scan, access, walk }));
    }
    best.map(|(_, read)| read)
}

/// Whether a compound read answers the whole filter by itself, so its
/// documents need no second test: every conjunct is an `eq` fixing one of
/// the read's leading fields (`equal_fields`) to the very value the read
/// uses (`equal`, in the same order), on a field declared with a
/// scalar type whose values the index keeps whole and exact (string, int,
/// bool, UUID, timestamp, bytes — not float, array or undeclared fields,
/// which may hold values the index splits or normalises), with a value
/// that is neither null nor a container. The same rule as the index-only
/// `count`.
pub(crate) fn compound_answers(
    def: &CollectionDef,
    conjuncts: &[&Filter],
    equal_fields: &[String],
    equal: &[Value],
) -> bool {
    !conjuncts.is_empty()
        && conjuncts.iter().all(|c| match c {
            Filter::Eq(f, v) => {
                equal_fields.iter().zip(equal).any(|(ef, ev)| ef == f && ev == v)
                    && !matches!(v, Value::Null | Value::Float(_) | Value::Array(_) | Value::Object(_))
                    && def.schema.fields.get(f).is_some_and(|d| {
                        matches!(
                            d.field_type,
                            FieldType::String
                                | FieldType::Int
                                | FieldType::Bool
                                | FieldType::Uuid
                                | FieldType::Timestamp
                                | FieldType::Bytes
                        )
                    })
            }
            _ => false,
        })
}

/// The tighter of two lower bounds (same field, comparable values).
pub(crate) fn tighter_low(a: Bound<Value>, b: Bound<Value>) -> Bound<Value> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => match x.cmp(y) {
            std::cmp::Ordering::Less => b,
            std::cmp::Ordering::Greater => a,
            std::cmp::Ordering::Equal if matches!(b, Bound::Excluded(_)) => b,
            std::cmp::Ordering::Equal => a,
        },
    }
}

/// The tighter of two upper bounds.
pub(crate) fn tighter_high(a: Bound<Value>, b: Bound<Value>) -> Bound<Value> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => match x.cmp(y) {
            std::cmp::Ordering::Less => a,
            std::cmp::Ordering::Greater => b,
            std::cmp::Ordering::Equal if matches!(b, Bound::Excluded(_)) => b,
            std::cmp::Ordering::Equal => a,
        },
    }
}

/// What `explain()` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The access path.
    pub access: Access,
    /// Candidates the access path produced (for a full scan: documents in
    /// the collection), before the filter.
    pub estimated_rows: u64,
    /// Documents actually read and tested against the filter.
    pub examined_rows: u64,
    /// Documents returned.
    pub returned_rows: u64,
}

/// Values an index can be searched for: scalars (arrays are indexed by
/// element, so an array value cannot be looked up whole).
fn indexable(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// Index reads that cover one conjunct, if its field has a ready index.
pub(crate) fn access_for(def: &CollectionDef, conjunct: &Filter) -> Option<(String, Vec<IndexScan>)> {
    let ready = |f: &str| def.ready_index(f).is_some();
    let one = |f: &String, scan: IndexScan| Some((f.clone(), vec![scan]));
    match conjunct {
        Filter::Eq(f, v) | Filter::InArray(f, v) if ready(f) && indexable(v) => one(f, IndexScan::Eq(v.clone())),
        Filter::In(f, vs) if ready(f) && vs.iter().all(indexable) => {
            let mut distinct: Vec<&Value> = vs.iter().collect();
            distinct.sort();
            distinct.dedup();
            Some((f.clone(), distinct.into_iter().map(|v| IndexScan::Eq(v.clone())).collect()))
        }
        Filter::Gt(f, v) if ready(f) && indexable(v) => {
            one(f, IndexScan::Range(Bound::Excluded(v.clone()), Bound::Unbounded))
        }
        Filter::Gte(f, v) if ready(f) && indexable(v) => {
            one(f, IndexScan::Range(Bound::Included(v.clone()), Bound::Unbounded))
        }
        Filter::Lt(f, v) if ready(f) && indexable(v) => {
            one(f, IndexScan::Range(Bound::Unbounded, Bound::Excluded(v.clone())))
        }
        Filter::Lte(f, v) if ready(f) && indexable(v) => {
            one(f, IndexScan::Range(Bound::Unbounded, Bound::Included(v.clone())))
        }
        Filter::Between(f, lo, hi) if ready(f) && indexable(lo) && indexable(hi) => {
            one(f, IndexScan::Range(Bound::Included(lo.clone()), Bound::Included(hi.clone())))
        }
        Filter::StartsWith(f, p) if ready(f) => one(f, IndexScan::Prefix(p.clone())),
        _ => None,
    }
}

/// Whether `order_by(field)` can walk the index: ready, and every document
/// has a scalar value there (declared, non-nullable, not an array).
pub(crate) fn orderable(def: &CollectionDef, field: &str) -> bool {
    def.ready_index(field).is_some()
        && def.schema.fields.get(field).is_some_and(|d| {
            !d.nullable && !matches!(d.field_type, FieldType::Array | FieldType::Object | FieldType::Any)
        })
}

/// Fewest index candidates a read may always produce before the planner
/// prefers a scan (small collections keep their index reads).
pub(crate) const MIN_SCAN_CAP: usize = 256;

/// Share of an index's entries past which reading its candidates one by
/// one costs more than scanning the collection in order: a read that
/// produces more than this is abandoned for a scan (unless hinted).
pub(crate) const SCAN_FRACTION: f64 = 0.4;

/// Most candidates an index read with `entries` entries may produce
/// before a scan is cheaper.
pub(crate) fn scan_cap(entries: u64) -> usize {
    let share = (entries as f64 * SCAN_FRACTION) as usize;
    share.max(MIN_SCAN_CAP)
}

/// Of two candidate index reads, the larger is intersected with the
/// smaller when it produces at most this many times its candidates;
/// beyond that, testing the smaller read's documents is cheaper.
pub(crate) const INTERSECT_FACTOR: usize = 8;

/// Rows an index read is expected to produce, before reading it: an
/// equality (or `in`) reads `entries_per_value` rows per value — the
/// uniform assumption of System R, which SQLite's `sqlite_stat1` also
/// keeps — and any other read a third of the index (System R's default
/// selectivity of an inequality).
pub(crate) fn estimate_rows(scans: &[IndexScan], entries: u64, entries_per_value: f64) -> f64 {
    if scans.iter().all(|s| matches!(s, IndexScan::Eq(_))) {
        scans.len() as f64 * entries_per_value
    } else {
        entries as f64 / 3.0
    }
}

/// Whether a candidate read estimated at `estimate` rows is worth reading
/// once the best read so far produced `best` candidates: only if it could
/// be intersected with it ([`INTERSECT_FACTOR`]), with 4× slack for a
/// skewed value the average misjudges. Skipping costs nothing in
/// correctness: the filter is tested on every fetched document.
pub(crate) fn worth_reading(estimate: f64, best: usize) -> bool {
    estimate <= (best.max(1) * INTERSECT_FACTOR * 4) as f64
}
