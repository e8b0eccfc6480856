//! [`Query`]: the query builder shared by the client and the embedded
//! handle, and its plain-JSON form (the body of `POST
//! /v1/collections/{c}/query`, filters in `aurora::json`'s form).

use aurora::{Document, Filter, Order, F};
use serde_json::{json, Map, Value as Json};

/// A query: filter, order, projection, limit and offset — built the same
/// way as the embedded [`aurora::QueryBuilder`], run by
/// [`Store::find`](crate::Store::find) on either backend.
///
/// ```
/// use aurora::Order;
/// use aurora_client::Query;
/// let q = Query::new().filter(|f| f.eq("room", "rust") & f.gt("at", 10)).order_by("at", Order::Desc).limit(20);
/// assert_eq!(
///     q.to_json(),
///     serde_json::json!({
///         "filter": {"$and": [{"room": {"$eq": "rust"}}, {"at": {"$gt": 10}}]},
///         "order": [{"field": "at", "order": "desc"}],
///         "limit": 20
///     })
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use = "a query does nothing until it is run"]
pub struct Query {
    /// The filter (`None`: every document).
    pub filter: Option<Filter>,
    /// Sort keys, first to last.
    pub order: Vec<(String, Order)>,
    /// The fields to return (`None`: whole documents).
    pub select: Option<Vec<String>>,
    /// At most this many documents (the server also caps it).
    pub limit: Option<usize>,
    /// Documents skipped first.
    pub offset: usize,
}

impl Query {
    /// Every document, in id order.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a filter (ANDed with earlier ones): `.filter(|f| f.eq("a", 1) | f.lt("b", 2))`.
    pub fn filter(self, build: impl FnOnce(F) -> Filter) -> Self {
        self.where_filter(build(F))
    }

    /// Adds a filter value (ANDed with earlier ones).
    pub fn where_filter(mut self, f: Filter) -> Self {
        self.filter = Some(match self.filter.take() {
            Some(old) => old & f,
            None => f,
        });
        self
    }

    /// Adds a sort key.
    pub fn order_by(mut self, field: &str, order: Order) -> Self {
        self.order.push((field.to_string(), order));
        self
    }

    /// Returns at most `n` documents.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Skips the first `n` matches.
    pub fn offset(mut self, n: usize) -> Self {
        self.offset = n;
        self
    }

    /// Returns only these fields (and `_id`).
    pub fn select<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.select = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// The query's plain-JSON form, as the server reads it.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        if let Some(f) = &self.filter {
            m.insert("filter".into(), f.to_json());
        }
        if !self.order.is_empty() {
            let order: Vec<Json> = self
                .order
                .iter()
                .map(|(field, o)| json!({ "field": field, "order": if *o == Order::Desc { "desc" } else { "asc" } }))
                .collect();
            m.insert("order".into(), Json::Array(order));
        }
        if let Some(s) = &self.select {
            m.insert("select".into(), json!(s));
        }
        if let Some(l) = self.limit {
            m.insert("limit".into(), json!(l));
        }
        if self.offset > 0 {
            m.insert("offset".into(), json!(self.offset));
        }
        Json::Object(m)
    }

    /// This query on the embedded handle.
    pub fn on(&self, db: &aurora::Aurora, collection: &str) -> aurora::QueryBuilder {
        let mut q = db.query(collection);
        if let Some(f) = &self.filter {
            q = q.where_filter(f.clone());
        }
        for (field, order) in &self.order {
            q = q.order_by(field, *order);
        }
        if let Some(s) = &self.select {
            q = q.select(s.clone());
        }
        if let Some(l) = self.limit {
            q = q.limit(l);
        }
        if self.offset > 0 {
            q = q.offset(self.offset);
        }
        q
    }
}

/// One page of a query over the client: the documents, and the cursor of
/// the next page (`None`: this was the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The documents, in the query's order.
    pub items: Vec<Document>,
    /// Pass to [`RemoteQuery::after`](crate::RemoteQuery::after) for the next page.
    pub next_cursor: Option<String>,
}
