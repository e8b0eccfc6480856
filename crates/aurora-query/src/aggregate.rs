//! Aggregations over a query's matches: count, sum, avg, min, max,
//! optionally per group.

use crate::error::Result;
use crate::query::Query;
use aurora_core::{Document, Value};
use aurora_txn::Transaction;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One aggregate to compute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregate {
    /// Matching documents.
    Count,
    /// Sum of the numeric values of a field (others skipped).
    Sum(String),
    /// Mean of the numeric values of a field.
    Avg(String),
    /// Smallest value of a field (in `Value` order; missing skipped).
    Min(String),
    /// Largest value of a field.
    Max(String),
}

impl Aggregate {
    /// The aggregate's name in results: `count`, `sum(field)`,
    /// `avg(field)`, `min(field)`, `max(field)`.
    pub fn name(&self) -> String {
        match self {
            Aggregate::Count => "count".into(),
            Aggregate::Sum(f) => format!("sum({f})"),
            Aggregate::Avg(f) => format!("avg({f})"),
            Aggregate::Min(f) => format!("min({f})"),
            Aggregate::Max(f) => format!("max({f})"),
        }
    }
}

/// An aggregate's result.
pub type AggregateValue = Value;

/// The aggregates of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The group key (`Null` for documents lacking the field; absent
    /// grouping gives one group with key `Null`).
    pub key: Value,
    /// One value per requested aggregate, in order.
    pub values: Vec<AggregateValue>,
    /// The requested aggregates' names ([`Aggregate::name`]), in the same
    /// order as `values`.
    pub names: Vec<String>,
}

impl Group {
    /// The value of the aggregate named `name` (`"count"`,
    /// `"sum(total)"`, …; see [`Aggregate::name`]).
    ///
    /// ```
    /// use aurora_query::{Aggregate, Group};
    /// use aurora_core::Value;
    /// let g = Group { key: Value::Null, values: vec![Value::Int(3)], names: vec![Aggregate::Count.name()] };
    /// assert_eq!(g.get("count"), Some(&Value::Int(3)));
    /// ```
    pub fn get(&self, name: &str) -> Option<&AggregateValue> {
        self.names.iter().position(|n| n == name).and_then(|i| self.values.get(i))
    }

    /// The aggregates as `(name, value)` pairs, in request order.
    pub fn named(&self) -> impl Iterator<Item = (&str, &AggregateValue)> {
        self.names.iter().map(String::as_str).zip(&self.values)
    }
}

fn compute(docs: &[&Document], agg: &Aggregate) -> Value {
    let values = |f: &str| docs.iter().filter_map(move |d| d.get_path(f)).collect::<Vec<_>>();
    match agg {
        Aggregate::Count => Value::Int(docs.len() as i64),
        Aggregate::Sum(f) => {
            let nums: Vec<&Value> = values(f).into_iter().filter(|v| v.as_f64().is_some()).collect();
            let ints: Option<i64> = nums.iter().try_fold(0i64, |acc, v| v.as_i64().and_then(|i| acc.checked_add(i)));
            match ints {
                Some(i) => Value::Int(i),
                None => Value::Float(nums.iter().filter_map(|v| v.as_f64()).sum()),
            }
        }
        Aggregate::Avg(f) => {
            let nums: Vec<f64> = values(f).into_iter().filter_map(Value::as_f64).collect();
            if nums.is_empty() {
                Value::Null
            } else {
                Value::Float(nums.iter().sum::<f64>() / nums.len() as f64)
            }
        }
        Aggregate::Min(f) => values(f).into_iter().min().cloned().unwrap_or(Value::Null),
        Aggregate::Max(f) => values(f).into_iter().max().cloned().unwrap_or(Value::Null),
    }
}

impl Query {
    /// Computes `aggregates` over all matches (limit/offset ignored),
    /// grouped by `group_by` if given; groups come in key order.
    pub fn aggregate(
        &self,
        tx: &mut Transaction,
        group_by: Option<&str>,
        aggregates: &[Aggregate],
    ) -> Result<Vec<Group>> {
        let q = Query { limit: None, offset: 0, select: None, after: None, order: Vec::new(), ..self.clone() };
        let docs = q.collect(tx)?;
        let mut groups: BTreeMap<Value, Vec<&Document>> = BTreeMap::new();
        for d in &docs {
            let key = group_by.and_then(|g| d.get_path(g)).cloned().unwrap_or(Value::Null);
            groups.entry(key).or_default().push(d);
        }
        if groups.is_empty() && group_by.is_none() {
            groups.insert(Value::Null, Vec::new());
        }
        Ok(groups
            .into_iter()
            .map(|(key, members)| Group {
                key,
                values: aggregates.iter().map(|a| compute(&members, a)).collect(),
                names: aggregates.iter().map(Aggregate::name).collect(),
            })
            .collect())
    }
}
