//! [`Query`]: the fluent query builder and its execution against a
//! transaction's snapshot.

use crate::computed::Scripts;
use crate::error::{QueryError, Result};
use crate::hint::Hint;
use crate::interrupt::{CancelToken, Stop};
use crate::matcher::Matcher;
use crate::plan::{
    access_for, compound_answers, compound_for, estimate_rows, orderable, scan_cap, tighter_high, tighter_low,
    worth_reading, Access, CompoundRead, Plan, INTERSECT_FACTOR,
};
use crate::scan::FilteredScan;
use crate::validate::{check_filter, field_type};
use aurora_core::filter::{Filter, F};
use aurora_core::{DocId, Document, Fields, Value};
use aurora_index::{CollectionDef, IdKey, IndexScan};
use aurora_txn::Transaction;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// A keyset-paging position: the sort values and id of the last item seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The values of the `order_by` fields (missing fields as `Null`).
    pub values: Vec<Value>,
    /// The document id (the final tie-breaker).
    pub id: DocId,
}

/// One page of a keyset-paged query.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The documents of this page.
    pub items: Vec<Document>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
}

/// A query over one collection: a filter (data, see [`Filter`]), ordering,
/// offset/limit or a keyset cursor, and a projection. Build it, then run it
/// against a transaction (which fixes the snapshot and overlays the
/// transaction's own writes).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub(crate) collection: String,
    pub(crate) filter: Filter,
    pub(crate) order: Vec<(String, Order)>,
    pub(crate) limit: Option<usize>,
    pub(crate) offset: usize,
    pub(crate) select: Option<Vec<String>>,
    pub(crate) after: Option<Cursor>,
    pub(crate) computed: Option<crate::computed::Ordered>,
    pub(crate) script_limits: crate::computed::ScriptLimits,
    pub(crate) hint: Hint,
    pub(crate) stop: Stop,
}

/// A value sorted in one direction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Directed<T> {
    Asc(T),
    Desc(std::cmp::Reverse<T>),
}

impl<T> Directed<T> {
    fn new(order: Order, value: T) -> Self {
        match order {
            Order::Asc => Directed::Asc(value),
            Order::Desc => Directed::Desc(std::cmp::Reverse(value)),
        }
    }
}

/// Where a document sorts in one query's order ([`Query::sort_key`]):
/// comparing two keys of the same query orders their documents exactly as
/// the query's results are ordered (ties broken by id). Keys of different
/// queries are not comparable in any useful way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SortKey {
    parts: Vec<Directed<Value>>,
    id: Directed<DocId>,
}

impl SortKey {
    /// The id of the document this key belongs to.
    pub fn id(&self) -> &DocId {
        match &self.id {
            Directed::Asc(id) | Directed::Desc(std::cmp::Reverse(id)) => id,
        }
    }
}

/// Ordering of two documents: the sort keys (missing = `Null`), then the id
/// in the direction of the first sort key.
fn compare(order: &[(String, Order)], a: &Document, b: &Document) -> Ordering {
    for (field, dir) in order {
        let (x, y) = (a.get_path(field).unwrap_or(&Value::Null), b.get_path(field).unwrap_or(&Value::Null));
        let o = x.cmp(y);
        let o = if *dir == Order::Desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    let o = a.id.cmp(&b.id);
    if order.first().is_some_and(|(_, d)| *d == Order::Desc) {
        o.reverse()
    } else {
        o
    }
}

fn cursor_of(order: &[(String, Order)], d: &Document) -> Cursor {
    Cursor {
        values: order.iter().map(|(f, _)| d.get_path(f).cloned().unwrap_or(Value::Null)).collect(),
        id: d.id.clone(),
    }
}

/// Sets `path` (dotted) in `fields`, creating nested objects on the way.
fn set_path(fields: &mut Fields, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            fields.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = fields.entry(head.to_string()).or_insert_with(|| Value::Object(Fields::new()));
            if !matches!(entry, Value::Object(_)) {
                *entry = Value::Object(Fields::new());
            }
            if let Value::Object(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

fn project(doc: &Document, fields: &[String]) -> Document {
    let mut out = Document::with_id(doc.id.clone());
    for path in fields {
        if let Some(v) = doc.get_path(path) {
            set_path(&mut out.fields, path, v.clone());
        }
    }
    out
}

/// A document that sorts exactly where `cursor` points.
fn probe(order: &[(String, Order)], cursor: &Cursor) -> Document {
    let mut d = Document::with_id(cursor.id.clone());
    for ((path, _), v) in order.iter().zip(&cursor.values) {
        set_path(&mut d.fields, path, v.clone());
    }
    d
}

impl Query {
    /// A query matching every document of `collection`.
    pub fn new(collection: &str) -> Self {
        Self {
            collection: collection.into(),
            filter: Filter::All,
            order: Vec::new(),
            limit: None,
            offset: 0,
            select: None,
            after: None,
            computed: None,
            script_limits: crate::computed::ScriptLimits::default(),
            hint: Hint::Auto,
            stop: Stop::default(),
        }
    }

    /// Stops the query once the instant `at` has passed: it fails with
    /// [`QueryError::TimedOut`], having read nothing more, instead of
    /// returning. Every loop of the engine that reads documents or index
    /// entries — scans, index reads and walks, fetching candidates,
    /// sorting, the initial load of a live query — checks the clock every
    /// [`CHECK_EVERY`](crate::CHECK_EVERY) steps, so a query stops within a
    /// few documents' work of its deadline (a step that runs a script is
    /// bound by the script's own time limit). Without a deadline a query
    /// runs to its end.
    pub fn deadline(mut self, at: Instant) -> Self {
        self.stop.deadline = Some(at);
        self
    }

    /// A [`Query::deadline`] `limit` from now: the clock starts when this
    /// is called, not when the query runs (time spent waiting to run
    /// counts).
    pub fn timeout(self, limit: Duration) -> Self {
        let at = Instant::now().checked_add(limit);
        match at {
            Some(at) => self.deadline(at),
            None => self,
        }
    }

    /// Stops the query, with [`QueryError::Cancelled`], once `token` is
    /// cancelled — from any thread, for instance when the client that
    /// asked for it has gone. Checked like [`Query::deadline`].
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.stop.token = Some(token);
        self
    }

    /// The query without its deadline and cancel token.
    pub fn without_deadline(mut self) -> Self {
        self.stop = Stop::default();
        self
    }

    /// The deadline set by [`Query::deadline`] or [`Query::timeout`].
    pub fn deadline_at(&self) -> Option<Instant> {
        self.stop.deadline
    }

    /// Overrides the planner: [`Hint::Scan`] reads every document,
    /// [`Hint::Index`] uses only that index (refused with
    /// [`QueryError::UnusableHint`] if the filter and order cannot use it).
    /// Results are the same either way.
    pub fn hint(mut self, hint: Hint) -> Self {
        self.hint = hint;
        self
    }

    /// The limits its scripts run under (default: [`ScriptLimits::default`](crate::ScriptLimits)).
    pub fn with_script_limits(mut self, limits: crate::computed::ScriptLimits) -> Self {
        self.script_limits = limits;
        self
    }

    /// Evaluates these computed fields on every document before filtering,
    /// so `filter`, `order_by` and `select` can use them and results carry them.
    pub fn with_computed(mut self, computed: Option<crate::computed::Ordered>) -> Self {
        self.computed = computed.filter(|c| !c.is_empty());
        self
    }

    /// Whether running this query evaluates scripts (`Expression::Custom`
    /// computed fields): such a query waits on a sandbox process, so async
    /// callers should run it off their executor's worker threads.
    pub fn runs_scripts(&self) -> bool {
        self.computed.as_ref().is_some_and(|c| c.iter().any(|(_, e)| e.is_script()))
    }

    /// Adds the computed fields to a fetched document.
    fn enrich(&self, d: Arc<Document>, scripts: &mut Scripts) -> Result<Arc<Document>> {
        match &self.computed {
            Some(c) => Ok(Arc::new(crate::computed::apply_in(c, &d, scripts)?)),
            None => Ok(d),
        }
    }

    fn is_computed(&self, field: &str) -> bool {
        self.computed.as_ref().is_some_and(|c| c.iter().any(|(n, _)| field == n || field.starts_with(&format!("{n}."))))
    }

    /// Adds a filter built with [`F`] (ANDed with earlier filters).
    pub fn filter(self, build: impl FnOnce(F) -> Filter) -> Self {
        self.where_filter(build(F))
    }

    /// Adds a prebuilt filter (ANDed with earlier filters).
    pub fn where_filter(mut self, f: Filter) -> Self {
        self.filter = match self.filter {
            Filter::All => f,
            prev => prev & f,
        };
        self
    }

    /// Sorts by `field` (further calls add tie-breakers).
    pub fn order_by(mut self, field: &str, order: Order) -> Self {
        self.order.push((field.into(), order));
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

    /// Returns only these fields (and the id); nested paths build nested objects.
    pub fn select<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.select = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// Starts after `cursor` (keyset paging; combine with `order_by` and `limit`).
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// Whether the result is a window of the matches (limit, offset or a
    /// cursor), so a change can move other documents in or out of it.
    pub fn is_windowed(&self) -> bool {
        self.limit.is_some() || self.offset > 0 || self.after.is_some()
    }

    /// The document as this query would return it — computed fields added,
    /// projected — or `None` if it does not match (for live queries).
    pub fn evaluate(&self, doc: &Document) -> Result<Option<Document>> {
        let enriched = match &self.computed {
            Some(c) => crate::computed::apply_in(c, doc, &mut Scripts::with_limits(self.script_limits))?,
            None => doc.clone(),
        };
        if !self.filter.matches(&enriched) {
            return Ok(None);
        }
        Ok(Some(match &self.select {
            Some(fields) => project(&enriched, fields),
            None => enriched,
        }))
    }

    /// Like [`Query::evaluate`], with the document's [`SortKey`]; a document
    /// at or before the query's keyset cursor does not match.
    pub fn evaluate_keyed(&self, doc: &Document) -> Result<Option<(SortKey, Document)>> {
        let enriched = match &self.computed {
            Some(c) => std::borrow::Cow::Owned(crate::computed::apply(c, doc)?),
            None => std::borrow::Cow::Borrowed(doc),
        };
        if !self.filter.matches(&enriched) {
            return Ok(None);
        }
        let key = self.sort_key(&enriched);
        if let Some(c) = &self.after {
            if key <= self.sort_key(&probe(&self.order, c)) {
                return Ok(None);
            }
        }
        Ok(Some((key, self.shape(&enriched))))
    }

    /// Where `doc` (with computed fields already added) sorts in this
    /// query's order: by the `order_by` fields (a missing field as `Null`),
    /// then by id, in the direction of the first sort field — exactly the
    /// order results come in.
    pub fn sort_key(&self, doc: &Document) -> SortKey {
        let parts = self
            .order
            .iter()
            .map(|(field, dir)| Directed::new(*dir, doc.get_path(field).cloned().unwrap_or(Value::Null)))
            .collect();
        let dir = self.order.first().map_or(Order::Asc, |(_, d)| *d);
        SortKey { parts, id: Directed::new(dir, doc.id.clone()) }
    }

    /// The offset and limit (`None`: no limit).
    pub fn window(&self) -> (usize, Option<usize>) {
        (self.offset, self.limit)
    }

    /// Whether computed fields are evaluated before filtering.
    pub fn has_computed_fields(&self) -> bool {
        self.computed.is_some()
    }

    /// The filter.
    pub fn filter_expr(&self) -> &Filter {
        &self.filter
    }

    /// The collection.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    fn validate(&self, tx: &Transaction) -> Result<Arc<CollectionDef>> {
        let def = tx.database().collections().definition_shared(&self.collection)?;
        self.filter.check_depth()?;
        check_filter(&self.collection, &def.schema, &self.filter, &|f| self.is_computed(f))?;
        for f in self.order.iter().map(|(f, _)| f).chain(self.select.iter().flatten()) {
            if !self.is_computed(f) {
                field_type(&self.collection, &def.schema, f)?;
            }
        }
        if let Some(c) = &self.after {
            if c.values.len() != self.order.len() {
                return Err(QueryError::InvalidCursor(format!(
                    "the cursor has {} sort values, the query orders by {} fields",
                    c.values.len(),
                    self.order.len()
                )));
            }
        }
        Ok(def)
    }

    /// The index reads the filter allows: one per indexed field, range
    /// conjuncts on one field merged into one range.
    fn index_scans(&self, def: &CollectionDef) -> BTreeMap<String, Vec<IndexScan>> {
        let mut by_field: BTreeMap<String, Vec<IndexScan>> = BTreeMap::new();
        for conjunct in self.filter.conjuncts() {
            if let Some((field, scans)) = access_for(def, conjunct).filter(|(f, _)| self.hint.allows(f)) {
                match (by_field.get_mut(&field), scans.as_slice()) {
                    (Some(existing), [IndexScan::Range(lo, hi)]) => {
                        if let [IndexScan::Range(elo, ehi)] = existing.as_mut_slice() {
                            *elo = tighter_low(elo.clone(), lo.clone());
                            *ehi = tighter_high(ehi.clone(), hi.clone());
                        }
                    }
                    // Keep the more selective kind: point reads beat ranges.
                    (Some(existing), new) if new.iter().all(|s| matches!(s, IndexScan::Eq(_))) => {
                        if !existing.iter().all(|s| matches!(s, IndexScan::Eq(_))) || new.len() < existing.len() {
                            *existing = scans;
                        }
                    }
                    (Some(_), _) => {}
                    (None, _) => {
                        by_field.insert(field, scans);
                    }
                }
            }
        }
        by_field
    }

    /// Reads each index option's ids, in (value, id) order. Unless an
    /// index is hinted, a read that produces more candidates than
    /// [`scan_cap`] of its index's entries is abandoned: a scan is cheaper.
    ///
    /// Candidates are read most selective first, by [`estimate_rows`] from
    /// the index's statistics; once one has been read, a candidate too
    /// broad to be intersected with it ([`worth_reading`]) is not read at
    /// all — except the index on the query's one ordering field, whose
    /// read gives the order.
    fn index_options(&self, tx: &Transaction, def: &CollectionDef) -> Result<Vec<(Access, Vec<IdKey>)>> {
        let collections = tx.database().collections();
        let auto = matches!(self.hint, Hint::Auto);
        let order_field = match self.order.as_slice() {
            [(field, _)] => Some(field.as_str()),
            _ => None,
        };
        let mut candidates: Vec<(String, Vec<IndexScan>, u64, f64)> = self
            .index_scans(def)
            .into_iter()
            .map(|(field, scans)| {
                if !auto {
                    return (field, scans, 0, 0.0);
                }
                let entries = collections.index_entries(&self.collection, &field);
                let per_value = collections.index_entries_per_value(&self.collection, &field);
                let estimate = estimate_rows(&scans, entries, per_value);
                (field, scans, entries, estimate)
            })
            .collect();
        candidates.sort_by(|a, b| a.3.total_cmp(&b.3));
        let mut best: Option<usize> = None;
        let mut options = Vec::new();
        if let Some(ids) = self.id_reads() {
            best = Some(ids.len());
            options.push((Access::Ids { count: ids.len() }, ids));
        }
        let mut ticker = self.stop.ticker();
        'fields: for (field, scans, entries, estimate) in candidates {
            if auto && order_field != Some(field.as_str()) && best.is_some_and(|b| !worth_reading(estimate, b)) {
                tracing::debug!(field, estimate, "index read skipped: too broad to narrow a better one");
                continue;
            }
            let cap = if auto { scan_cap(entries) } else { usize::MAX };
            // Sized by the estimate (bounded), so the read does not regrow it.
            let mut ids = Vec::with_capacity((estimate.max(0.0) as usize).min(cap).min(1 << 16));
            for scan in &scans {
                for id in collections.scan_index_keys(tx.snapshot(), &self.collection, &field, scan, false)? {
                    ticker.tick()?;
                    ids.push(id?);
                    if ids.len() > cap {
                        tracing::debug!(field, cap, "index read too broad: a scan is cheaper");
                        continue 'fields;
                    }
                }
            }
            best = Some(best.map_or(ids.len(), |b| b.min(ids.len())));
            options.push((Access::Index { field, scans }, ids));
        }
        Ok(options)
    }

    /// The ids an `eq` or `in` on `_id` names (the fewest, if several
    /// conjuncts do), sorted — documents are stored by id, so these are
    /// point reads. `None` when no conjunct is one, or a hint says which
    /// access to use.
    fn id_reads(&self) -> Option<Vec<IdKey>> {
        if self.hint != Hint::Auto {
            return None;
        }
        let as_id = |v: &Value| match v {
            Value::Uuid(u) => Some(DocId::Uuid(*u)),
            // A text that breaks the id rules is no document's id.
            Value::String(s) => DocId::text(s).ok(),
            _ => None,
        };
        self.filter
            .conjuncts()
            .into_iter()
            .filter_map(|c| match c {
                Filter::Eq(f, v) if f == aurora_core::json::ID_FIELD => Some(as_id(v).into_iter().collect::<Vec<_>>()),
                Filter::In(f, vs) if f == aurora_core::json::ID_FIELD => Some(vs.iter().filter_map(as_id).collect()),
                _ => None,
            })
            .min_by_key(Vec::len)
            .map(|mut ids| {
                ids.sort();
                ids.dedup();
                ids.iter().map(IdKey::of).collect()
            })
    }

    /// Refuses a [`Hint::Index`] the query cannot use: no such ready index,
    /// or a filter and order that give it nothing to read.
    fn check_hint(&self, def: &CollectionDef) -> Result<()> {
        let Hint::Index(fields) = &self.hint else { return Ok(()) };
        let name = aurora_index::compound::compound_name(fields);
        let refuse = |reason: &str| {
            Err(QueryError::UnusableHint {
                index: aurora_index::compound::display_name(&name),
                reason: reason.to_string(),
            })
        };
        if fields.is_empty() {
            return refuse("no fields named");
        }
        if def.ready_index(&name).is_none() {
            return refuse("the collection has no ready index on it");
        }
        let usable = match fields.as_slice() {
            [field] => {
                self.index_scans(def).contains_key(field)
                    || matches!(self.order.as_slice(), [(f, _)] if f == field && orderable(def, f))
            }
            _ => {
                self.computed.is_none()
                    && compound_for(def, &self.filter.conjuncts(), &self.order, |n| n == name).is_some()
            }
        };
        if usable {
            Ok(())
        } else {
            refuse("the filter and order give it nothing to read")
        }
    }

    /// Runs the query: the matching documents (ordered, paged, projected)
    /// and the plan that produced them.
    pub fn run(&self, tx: &mut Transaction) -> Result<(Vec<Document>, Plan)> {
        let (page, plan) = self.run_enriched(tx)?;
        Ok((page.iter().map(|d| self.shape(d)).collect(), plan))
    }

    /// The matching documents, each with its [`SortKey`] (for live queries,
    /// which keep their results in the query's order and need the key even
    /// when the projection drops the sort fields).
    pub fn collect_keyed(&self, tx: &mut Transaction) -> Result<Vec<(SortKey, Document)>> {
        let (page, _) = self.run_enriched(tx)?;
        Ok(page.iter().map(|d| (self.sort_key(d), self.shape(d))).collect())
    }

    /// Runs the query up to the projection: the page of enriched matches.
    ///
    /// Inside a `query` span (debug level) that records the plan once known:
    /// `access` ([`Access::summary`]), `estimated`, `examined` and `returned`
    /// rows (never a filter's values).
    fn run_enriched(&self, tx: &mut Transaction) -> Result<(Vec<Arc<Document>>, Plan)> {
        use tracing::field::Empty;
        let span = tracing::debug_span!("query", collection = %self.collection, access = Empty, estimated = Empty, examined = Empty, returned = Empty);
        let _entered = span.enter();
        let result = self.run_enriched_in_span(tx);
        if let Ok((_, plan)) = &result {
            span.record("access", plan.access.summary());
            span.record("estimated", plan.estimated_rows);
            span.record("examined", plan.examined_rows);
            span.record("returned", plan.returned_rows);
        }
        result
    }

    fn run_enriched_in_span(&self, tx: &mut Transaction) -> Result<(Vec<Arc<Document>>, Plan)> {
        let def = self.validate(tx)?;
        // One script session per run: one sandbox, one time budget.
        let mut scripts = Scripts::with_limits(self.script_limits);
        let mut ticker = self.stop.ticker();
        ticker.check()?;
        let written = tx.written_ids(&self.collection);
        let wanted = self.limit.map(|l| l.saturating_add(self.offset)).filter(|_| self.after.is_none());
        self.check_hint(&def)?;
        let matcher = Matcher::new(&self.filter);
        let single_order = match self.order.as_slice() {
            [(field, dir)] if written.is_empty() && orderable(&def, field) && self.hint.allows(field) => {
                Some((field.clone(), *dir))
            }
            _ => None,
        };
        // A compound index that fixes leading fields and yields the order
        // of the rest: walk it in order and stop after `offset + limit`
        // matches past the cursor.
        let compound = if self.computed.is_none() {
            compound_for(&def, &self.filter.conjuncts(), &self.order, |name| self.hint.allows(name))
        } else {
            None
        };
        if let Some(read) = compound.as_ref().filter(|r| r.walk.is_some() && written.is_empty()) {
            let (matched, examined) = self.walk_compound(tx, &def, read, &matcher, &mut scripts)?;
            return self.finish(read.access.clone(), examined, examined, matched, true);
        }
        // Ascending top-k on an ordered field: walk its index lazily (the
        // filter's read on it, or the whole index when the filter uses no
        // index) and stop as soon as enough documents match.
        if let (Some((field, Order::Asc)), Some(w)) = (&single_order, wanted) {
            let scans = self.index_scans(&def);
            let walk = match scans.get(field).map(Vec::as_slice) {
                Some([scan]) => Some((Access::Index { field: field.clone(), scans: vec![scan.clone()] }, scan.clone())),
                None if scans.is_empty() => {
                    Some((Access::IndexOrder { field: field.clone(), descending: false }, IndexScan::All))
                }
                _ => None,
            };
            if let Some((access, scan)) = walk {
                let ids = tx.database().collections().scan_index_keys(
                    tx.snapshot(),
                    &self.collection,
                    field,
                    &scan,
                    false,
                )?;
                let (mut examined, mut matched) = (0u64, Vec::new());
                for id in ids {
                    if matched.len() >= w {
                        break;
                    }
                    ticker.tick()?;
                    examined += 1;
                    if let Some(d) = tx.get_shared_by_key(&self.collection, &id?)? {
                        let d = self.enrich(d, &mut scripts)?;
                        if matcher.matches(&d) {
                            matched.push(d);
                        }
                    }
                }
                return self.finish(access, examined, examined, matched, true);
            }
        }
        let mut options = self.index_options(tx, &def)?;
        if let Some(read) = compound {
            let mut ids = Vec::new();
            for id in tx.database().collections().scan_index_keys(
                tx.snapshot(),
                &self.collection,
                &read.name,
                &read.scan,
                false,
            )? {
                ticker.tick()?;
                ids.push(id?);
            }
            let access = match read.access {
                Access::Compound { fields, equal, range, .. } => {
                    Access::Compound { fields, equal, range, ordered: false, descending: false }
                }
                other => other,
            };
            options.push((access, ids));
        }
        options.sort_by_key(|(_, ids)| ids.len());
        // An index read on the ordering field already yields the order:
        // walk it and stop once enough documents matched (top-k).
        let ordered_read = single_order.as_ref().and_then(|(field, dir)| {
            options
                .iter()
                .position(|(a, _)| matches!(a, Access::Index { field: f, scans } if f == field && scans.len() == 1))
                .map(|i| (i, *dir))
        });
        // A read of the one index that answers the filter exactly needs no
        // second test of its documents (which would touch their fields).
        let exact_field = self.exact_index_read(tx, &def).map(|(f, _)| f.clone());
        let answers = |a: &Access| matches!(a, Access::Index { field, .. } if Some(field) == exact_field.as_ref());
        let mut examined = 0u64;
        let mut matched: Vec<Arc<Document>> = Vec::new();
        let mut fetch = |tx: &mut Transaction,
                         ids: Vec<IdKey>,
                         stop_at: Option<usize>,
                         answered: bool,
                         matched: &mut Vec<Arc<Document>>,
                         scripts: &mut Scripts|
         -> Result<()> {
            for id in ids {
                if stop_at.is_some_and(|w| matched.len() >= w) {
                    break;
                }
                ticker.tick()?;
                examined += 1;
                if let Some(d) = tx.get_shared_by_key(&self.collection, &id)? {
                    let d = self.enrich(d, scripts)?;
                    if answered || matcher.matches(&d) {
                        matched.push(d);
                    }
                }
            }
            Ok(())
        };
        let (access, estimated, presorted) = if let Some((i, dir)) = ordered_read {
            let (access, mut ids) = options.swap_remove(i);
            if dir == Order::Desc {
                ids.reverse();
            }
            let estimated = ids.len() as u64;
            fetch(tx, ids, wanted, answers(&access), &mut matched, &mut scripts)?;
            (access, estimated, true)
        } else if !options.is_empty() {
            let mut it = options.into_iter();
            let (best_access, best) = it.next().unwrap_or((Access::FullScan, Vec::new()));
            let (access, mut ids) = match it.next() {
                Some((second_access, second)) if second.len() <= best.len().saturating_mul(INTERSECT_FACTOR) => {
                    let other: BTreeSet<&IdKey> = second.iter().collect();
                    let both = best.into_iter().filter(|id| other.contains(id)).collect();
                    (Access::Intersection(Box::new(best_access), Box::new(second_access)), both)
                }
                _ => (best_access, best),
            };
            let estimated = ids.len() as u64;
            ids.extend(written.iter().map(IdKey::of));
            ids.sort();
            ids.dedup();
            matched.reserve(ids.len());
            fetch(tx, ids, None, answers(&access), &mut matched, &mut scripts)?;
            // Fetched in id order (the key bytes sort as the ids do), which
            // is the order of a query without `order_by`: no sort needed.
            (access, estimated, self.order.is_empty())
        } else if let Some((field, dir)) = single_order.clone().filter(|_| self.after.is_none()) {
            // Walk the index lazily in the order's direction and stop once
            // `offset + limit` documents matched.
            let collections = tx.database().collections().clone();
            let ids = collections.scan_index_keys(
                tx.snapshot(),
                &self.collection,
                &field,
                &IndexScan::All,
                dir == Order::Desc,
            )?;
            for id in ids {
                if wanted.is_some_and(|w| matched.len() >= w) {
                    break;
                }
                ticker.tick()?;
                examined += 1;
                if let Some(d) = tx.get_shared_by_key(&self.collection, &id?)? {
                    let d = self.enrich(d, &mut scripts)?;
                    if matcher.matches(&d) {
                        matched.push(d);
                    }
                }
            }
            (Access::IndexOrder { field, descending: dir == Order::Desc }, examined, true)
        } else {
            let early = if self.order.is_empty() { wanted } else { None };
            if written.is_empty() && self.computed.is_none() {
                // Without own writes to overlay or computed fields to add,
                // the filter is tested on the stored bytes, lazily, and
                // the scan stops early.
                let mut scan = FilteredScan::new(tx, &self.collection, &self.filter, matcher.clone(), &self.stop)?;
                while early.is_none_or(|w| matched.len() < w) {
                    match scan.next() {
                        Some(d) => matched.push(d?),
                        None => break,
                    }
                }
                examined = scan.examined();
            } else {
                let all: Box<dyn Iterator<Item = aurora_txn::Result<Arc<Document>>>> = if written.is_empty() {
                    Box::new(tx.snapshot_documents(&self.collection)?)
                } else {
                    Box::new(tx.scan_shared(&self.collection)?.into_iter().map(Ok))
                };
                for d in all {
                    if early.is_some_and(|w| matched.len() >= w) {
                        break;
                    }
                    ticker.tick()?;
                    examined += 1;
                    let d = self.enrich(d?, &mut scripts)?;
                    if matcher.matches(&d) {
                        matched.push(d);
                    }
                }
            }
            (Access::FullScan, examined, false)
        };
        self.finish(access, estimated, examined, matched, presorted)
    }

    /// Walks a compound index in the query's order (ascending lazily,
    /// descending from the read's ids backwards), fetching and testing each
    /// document, until `offset + limit` matches lie past the cursor.
    /// Returns the matches (in order) and how many documents were read.
    fn walk_compound(
        &self,
        tx: &mut Transaction,
        def: &CollectionDef,
        read: &CompoundRead,
        matcher: &Matcher,
        scripts: &mut Scripts,
    ) -> Result<(Vec<Arc<Document>>, u64)> {
        let collections = tx.database().collections().clone();
        // A cursor's first sort value is a bound on the walked field: pages
        // start at the cursor instead of re-reading the pages before it.
        let scan = match (&self.after, &read.scan) {
            (Some(c), IndexScan::Tuple { equal, low, high }) => match (c.values.first(), read.walk) {
                (Some(v), Some(Order::Desc)) => IndexScan::Tuple {
                    equal: equal.clone(),
                    low: low.clone(),
                    high: tighter_high(high.clone(), Bound::Included(v.clone())),
                },
                (Some(v), _) => IndexScan::Tuple {
                    equal: equal.clone(),
                    low: tighter_low(low.clone(), Bound::Included(v.clone())),
                    high: high.clone(),
                },
                (None, _) => read.scan.clone(),
            },
            _ => read.scan.clone(),
        };
        let descending = read.walk == Some(Order::Desc);
        let ids = collections.scan_index_keys(tx.snapshot(), &self.collection, &read.name, &scan, descending)?;
        let wanted = self.limit.map(|l| l.saturating_add(self.offset));
        let position = self.after.as_ref().map(|c| probe(&self.order, c));
        // When the read answers the whole filter, its documents match
        // without a second test (which would touch each one's fields).
        let answered = match &read.access {
            Access::Compound { fields, equal, .. } => {
                compound_answers(def, &self.filter.conjuncts(), fields.get(..equal.len()).unwrap_or(&[]), equal)
            }
            _ => false,
        };
        let (mut examined, mut matched) = (0u64, Vec::with_capacity(wanted.unwrap_or(0).min(1024)));
        let mut ticker = self.stop.ticker();
        for id in ids {
            if wanted.is_some_and(|w| matched.len() >= w) {
                break;
            }
            ticker.tick()?;
            examined += 1;
            if let Some(d) = tx.get_shared_by_key(&self.collection, &id?)? {
                let d = self.enrich(d, scripts)?;
                let past = position.as_ref().is_none_or(|p| compare(&self.order, &d, p) == Ordering::Greater);
                if past && (answered || matcher.matches(&d)) {
                    matched.push(d);
                }
            }
        }
        Ok((matched, examined))
    }

    /// Sorts (unless presorted), applies the cursor, offset and limit, and
    /// reports the plan; the page is still unprojected (see [`Query::shape`]).
    fn finish(
        &self,
        access: Access,
        estimated: u64,
        examined: u64,
        mut matched: Vec<Arc<Document>>,
        presorted: bool,
    ) -> Result<(Vec<Arc<Document>>, Plan)> {
        if !presorted {
            crate::interrupt::sort_by(&mut matched, |a, b| compare(&self.order, a, b), &mut self.stop.ticker())?;
        }
        if let Some(c) = &self.after {
            let position = probe(&self.order, c);
            matched.retain(|d| compare(&self.order, d, &position) == Ordering::Greater);
        }
        let out: Vec<Arc<Document>> =
            matched.into_iter().skip(self.offset).take(self.limit.unwrap_or(usize::MAX)).collect();
        let plan = Plan { access, estimated_rows: estimated, examined_rows: examined, returned_rows: out.len() as u64 };
        Ok((out, plan))
    }

    /// An enriched match as the query returns it (projected).
    fn shape(&self, d: &Document) -> Document {
        match &self.select {
            Some(fields) => project(d, fields),
            None => d.clone(),
        }
    }

    /// The matches one at a time, without collecting them, when the query
    /// needs no sorting and the transaction has not written the collection:
    /// candidates (index ids, or the collection itself) are read, enriched
    /// and tested lazily, so memory stays flat and dropping the iterator
    /// stops the work. Ordered or cursor-paged queries, and queries that must
    /// see the transaction's own writes, are run in full first. The iterator
    /// owns its snapshot and may outlive the transaction.
    pub fn stream(&self, tx: &mut Transaction) -> Result<Box<dyn Iterator<Item = Result<Document>> + Send>> {
        let def = self.validate(tx)?;
        self.check_hint(&def)?;
        if !self.order.is_empty() || self.after.is_some() || !tx.written_ids(&self.collection).is_empty() {
            return Ok(Box::new(self.collect(tx)?.into_iter().map(Ok)));
        }
        let mut options = self.index_options(tx, &def)?;
        options.sort_by_key(|(_, ids)| ids.len());
        let matcher = Matcher::new(&self.filter);
        // A scan without computed fields tests the filter on the stored
        // bytes: its items already match.
        let prefiltered = options.is_empty() && self.computed.is_none();
        let source: Box<dyn Iterator<Item = Result<Arc<Document>>> + Send> = match options.into_iter().next() {
            Some((_, mut ids)) => {
                ids.sort();
                ids.dedup();
                let (snapshot, docs, collection) =
                    (tx.snapshot().clone(), tx.database().collections().documents().clone(), self.collection.clone());
                Box::new(ids.into_iter().filter_map(move |id| {
                    Transaction::snapshot_document_by_key(&snapshot, &docs, &collection, &id)
                        .map_err(QueryError::from)
                        .transpose()
                }))
            }
            None if prefiltered => {
                Box::new(FilteredScan::new(tx, &self.collection, &self.filter, matcher.clone(), &self.stop)?)
            }
            None => Box::new(tx.snapshot_documents(&self.collection)?.map(|d| d.map_err(QueryError::from))),
        };
        let this = self.clone();
        let mut scripts = Scripts::with_limits(self.script_limits);
        let mut ticker = self.stop.ticker();
        let matches = source.filter_map(move |d| {
            if let Err(e) = ticker.tick() {
                return Some(Err(e));
            }
            let enriched = d.and_then(|d| this.enrich(d, &mut scripts));
            // The caller may hold the stream for as long as it likes between
            // items: the sandbox goes back to the pool meanwhile.
            scripts.release();
            let d = match enriched {
                Ok(d) => d,
                Err(e) => return Some(Err(e)),
            };
            if !prefiltered && !matcher.matches(&d) {
                return None;
            }
            Some(Ok(match &this.select {
                Some(fields) => project(&d, fields),
                None => (*d).clone(),
            }))
        });
        // Skip `offset` matches (never an error) and stop after `limit`.
        let mut to_skip = self.offset;
        let paged = matches.filter(move |r| match r {
            Ok(_) if to_skip > 0 => {
                to_skip -= 1;
                false
            }
            _ => true,
        });
        Ok(Box::new(paged.take(self.limit.unwrap_or(usize::MAX))))
    }

    /// The matching documents.
    pub fn collect(&self, tx: &mut Transaction) -> Result<Vec<Document>> {
        Ok(self.run(tx)?.0)
    }

    /// The matching documents, shared instead of copied: without a
    /// projection or computed fields each is the snapshot's (or the hot
    /// cache's) own copy, so no document is cloned.
    pub fn collect_shared(&self, tx: &mut Transaction) -> Result<Vec<Arc<Document>>> {
        let (page, _) = self.run_enriched(tx)?;
        Ok(match &self.select {
            Some(fields) => page.iter().map(|d| Arc::new(project(d, fields))).collect(),
            None => page,
        })
    }

    /// The plan, with actual counts (the query is run).
    pub fn explain(&self, tx: &mut Transaction) -> Result<Plan> {
        Ok(self.run(tx)?.1)
    }

    /// The first match.
    pub fn first(&self, tx: &mut Transaction) -> Result<Option<Document>> {
        Ok(self.clone().limit(1).collect(tx)?.into_iter().next())
    }

    /// The field and values of the filter when one index answers it
    /// exactly: the filter is one `eq` or `in` on a field whose ready index
    /// holds exactly its declared scalar values (a declared string, number,
    /// bool, UUID, timestamp or bytes field — an array or undeclared field
    /// may hold values the index splits), with no computed fields, cursor
    /// or own writes to overlay, and a hint that allows it.
    fn exact_index_read(&self, tx: &Transaction, def: &CollectionDef) -> Option<(&String, Vec<&Value>)> {
        use aurora_core::FieldType;
        if self.computed.is_some() || self.after.is_some() || !tx.written_ids(&self.collection).is_empty() {
            return None;
        }
        let conjuncts = self.filter.conjuncts();
        let (field, values): (&String, Vec<&Value>) = match conjuncts.as_slice() {
            [Filter::Eq(f, v)] => (f, vec![v]),
            [Filter::In(f, vs)] => (f, vs.iter().collect()),
            _ => return None,
        };
        let exact = def.ready_index(field).is_some()
            && self.hint.allows(field)
            && def.schema.fields.get(field).is_some_and(|d| {
                matches!(
                    d.field_type,
                    FieldType::String
                        | FieldType::Int
                        | FieldType::Float
                        | FieldType::Bool
                        | FieldType::Uuid
                        | FieldType::Timestamp
                        | FieldType::Bytes
                )
            })
            && values.iter().all(|v| !matches!(v, Value::Array(_) | Value::Object(_)));
        exact.then_some((field, values))
    }

    /// The ids of the matches straight from one index, without reading a
    /// document, when that index answers the filter exactly
    /// ([`Query::exact_index_read`]). Sorted by id.
    fn index_only_ids(&self, tx: &Transaction, def: &CollectionDef) -> Result<Option<Vec<IdKey>>> {
        let Some((field, values)) = self.exact_index_read(tx, def) else {
            return Ok(None);
        };
        let _span =
            tracing::debug_span!("query", collection = %self.collection, access = %format_args!("index_only({field})"))
                .entered();
        let collections = tx.database().collections();
        let distinct: BTreeSet<&Value> = values.into_iter().collect();
        let mut ids = Vec::new();
        let mut ticker = self.stop.ticker();
        for v in distinct {
            let scan = IndexScan::Eq(v.clone());
            for id in collections.scan_index_keys(tx.snapshot(), &self.collection, field, &scan, false)? {
                ticker.tick()?;
                ids.push(id?);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(Some(ids))
    }

    /// How many documents match (ignoring limit and offset). Answered from
    /// an index without reading documents when the index answers the
    /// filter exactly (an `eq` or `in` on a declared scalar field);
    /// otherwise the matches are counted without copying them.
    pub fn count(&self, tx: &mut Transaction) -> Result<u64> {
        let def = self.validate(tx)?;
        self.check_hint(&def)?;
        if let Some(ids) = self.index_only_ids(tx, &def)? {
            return Ok(ids.len() as u64);
        }
        let q = Query { limit: None, offset: 0, select: None, after: None, order: Vec::new(), ..self.clone() };
        Ok(q.run_enriched(tx)?.0.len() as u64)
    }

    /// Whether any document matches (from an index alone when it can, as
    /// [`Query::count`]).
    pub fn exists(&self, tx: &mut Transaction) -> Result<bool> {
        let def = self.validate(tx)?;
        self.check_hint(&def)?;
        if self.offset == 0 {
            if let Some(ids) = self.index_only_ids(tx, &def)? {
                return Ok(!ids.is_empty());
            }
        }
        Ok(!self.clone().limit(1).run_enriched(tx)?.0.is_empty())
    }

    /// The ids of the matches, in the query's order (from an index alone
    /// when it can, as [`Query::count`], for an unordered query).
    pub fn ids(&self, tx: &mut Transaction) -> Result<Vec<DocId>> {
        let def = self.validate(tx)?;
        self.check_hint(&def)?;
        if self.order.is_empty() {
            if let Some(ids) = self.index_only_ids(tx, &def)? {
                return ids
                    .iter()
                    .skip(self.offset)
                    .take(self.limit.unwrap_or(usize::MAX))
                    .map(|id| id.to_id().map_err(QueryError::Core))
                    .collect();
            }
        }
        Ok(self.run_enriched(tx)?.0.iter().map(|d| d.id.clone()).collect())
    }

    /// One page: the next `limit` matches after the query's cursor, and the
    /// cursor of the page's last item if the page is full. Positions are
    /// values, not offsets, so concurrent inserts never shift or repeat items.
    ///
    /// The cursor holds the sort values of the last item *before* the
    /// projection (and with computed fields added), so `select` may leave
    /// the sort fields out; a missing sort field is recorded as `Null`,
    /// which is where the ordering puts it.
    pub fn page(&self, tx: &mut Transaction) -> Result<Page> {
        let (page, _) = self.run_enriched(tx)?;
        let full = self.limit.is_some_and(|l| page.len() == l && l > 0);
        let next_cursor = if full { page.last().map(|d| cursor_of(&self.order, d)) } else { None };
        Ok(Page { items: page.iter().map(|d| self.shape(d)).collect(), next_cursor })
    }

    /// Deletes every match in the transaction; returns how many.
    pub fn delete(&self, tx: &mut Transaction) -> Result<u64> {
        let ids = Query { select: None, ..self.clone() }.ids(tx)?;
        for id in &ids {
            tx.delete(&self.collection, id)?;
        }
        Ok(ids.len() as u64)
    }

    /// Applies update operators to every match in the transaction (see
    /// `Transaction::update_with`); returns how many. The operators are
    /// checked against the schema before any document is read.
    pub fn update_with(&self, tx: &mut Transaction, update: &aurora_core::Update) -> Result<u64> {
        let def = self.validate(tx)?;
        update.check(|path| def.schema.field_type(path)).map_err(aurora_txn::TxnError::from)?;
        let ids = Query { select: None, ..self.clone() }.ids(tx)?;
        for id in &ids {
            tx.update_with(&self.collection, id, update)?;
        }
        Ok(ids.len() as u64)
    }

    /// Merges `patch` into every match in the transaction; returns how many.
    pub fn update(&self, tx: &mut Transaction, patch: &Fields) -> Result<u64> {
        // Checked before the patch is copied into each match.
        aurora_core::validate_fields(patch)?;
        let ids = Query { select: None, ..self.clone() }.ids(tx)?;
        for id in &ids {
            tx.update(&self.collection, id, patch.clone())?;
        }
        Ok(ids.len() as u64)
    }
}
