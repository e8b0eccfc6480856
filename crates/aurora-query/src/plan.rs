//! The planner: which index (if any) produces the candidate documents.
//!
//! Every access path yields a *superset* of the matching documents; the
//! whole filter is then applied to each candidate, so a plan can only be
//! slower, never wrong.

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
