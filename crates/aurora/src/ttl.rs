//! Expiring documents: a collection's [`Ttl`] names a timestamp field; a
//! document whose field plus the rule's delay is at or before now has
//! expired. Reads never return an expired document (they filter by the
//! rule), and an owned background task deletes expired documents in
//! transactions, each commit marked so that its `Delete` events say why
//! ([`ChangeCause::Expired`](crate::ChangeCause)).
//!
//! The rules live in the system collection `_ttl` (one document per
//! collection); the mark is an update of the one document of `_expiry` in
//! the same commit as the deletes, so the reason survives in the change
//! feed across restarts.

use crate::error::Result;
use aurora_core::{DocId, Document, Filter, Timestamp, Value};
use aurora_txn::Database;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The system collection holding the rules.
pub(crate) const TTL_RULES: &str = "_ttl";
/// The system collection whose one document an expiry commit updates.
pub(crate) const EXPIRY_MARK: &str = "_expiry";
/// The id of that document.
const MARK_ID: &str = "mark";
/// Documents deleted per expiry transaction.
const EXPIRE_BATCH: usize = 500;

/// A source of the current time for expiry: the system clock by default,
/// settable in tests ([`ManualTime`]).
pub trait TimeSource: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemTime;

impl TimeSource for SystemTime {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to (for tests of expiry).
///
/// ```
/// use aurora::{ManualTime, TimeSource, Timestamp};
/// let t = ManualTime::new(Timestamp::from_micros(0));
/// t.advance(std::time::Duration::from_secs(2));
/// assert_eq!(t.now(), Timestamp::from_micros(2_000_000));
/// ```
#[derive(Debug, Clone)]
pub struct ManualTime(Arc<parking_lot::Mutex<Timestamp>>);

impl ManualTime {
    /// A clock standing at `at`.
    pub fn new(at: Timestamp) -> Self {
        Self(Arc::new(parking_lot::Mutex::new(at)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock();
        *t = t.saturating_add(by);
    }

    /// Sets the clock.
    pub fn set(&self, at: Timestamp) {
        *self.0.lock() = at;
    }
}

impl TimeSource for ManualTime {
    fn now(&self) -> Timestamp {
        *self.0.lock()
    }
}

/// A collection's expiry rule: a document expires `after` the timestamp in
/// its `field` (a document whose `field` is missing, null or not a
/// timestamp never expires).
///
/// Per-collection lifetimes use the time a document was written
/// (`Ttl::after("created_at", Duration::from_secs(86_400))`); per-document
/// ones store each document's own expiry time (`Ttl::at("expires_at")`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ttl {
    /// The timestamp field.
    pub field: String,
    /// How long after that timestamp the document expires.
    pub after: Duration,
}

impl Ttl {
    /// Expires documents `after` the time in `field`.
    pub fn after(field: impl Into<String>, after: Duration) -> Self {
        Self { field: field.into(), after }
    }

    /// Expires each document at the time in its `field`.
    pub fn at(field: impl Into<String>) -> Self {
        Self::after(field, Duration::ZERO)
    }

    /// The latest timestamp that has expired at `now`.
    fn cutoff(&self, now: Timestamp) -> Timestamp {
        now.saturating_sub(self.after)
    }

    /// Matches the documents expired at `now`.
    pub(crate) fn expired(&self, now: Timestamp) -> Filter {
        Filter::Lte(self.field.clone(), Value::Timestamp(self.cutoff(now)))
    }

    /// Matches the documents not expired at `now` (what reads see).
    pub(crate) fn alive(&self, now: Timestamp) -> Filter {
        Filter::Not(Box::new(self.expired(now)))
    }

    /// Whether `doc` has expired at `now`.
    pub(crate) fn has_expired(&self, doc: &Document, now: Timestamp) -> bool {
        matches!(doc.get_path(&self.field), Some(Value::Timestamp(t)) if *t <= self.cutoff(now))
    }
}

/// The clock expiry reads ([`AuroraConfig::expiry_clock`](crate::AuroraConfig)):
/// the system clock by default, a [`ManualTime`] in tests. Equal when it is
/// the same clock.
#[derive(Clone)]
pub struct ExpiryClock(pub Arc<dyn TimeSource>);

impl ExpiryClock {
    /// Now, by this clock.
    pub fn now(&self) -> Timestamp {
        self.0.now()
    }
}

impl Default for ExpiryClock {
    fn default() -> Self {
        Self(Arc::new(SystemTime))
    }
}

impl std::fmt::Debug for ExpiryClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExpiryClock")
    }
}

impl PartialEq for ExpiryClock {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ExpiryClock {}

impl<T: TimeSource> From<T> for ExpiryClock {
    fn from(t: T) -> Self {
        Self(Arc::new(t))
    }
}

/// A collection's rule at one moment, for the single-document writes of
/// the facade: they treat an expired document as absent, as reads do.
pub(crate) struct ExpiredCheck {
    pub(crate) rule: Ttl,
    pub(crate) now: Timestamp,
}

impl ExpiredCheck {
    /// Whether the document `id` exists in `tx` and has expired.
    pub(crate) fn is_expired(&self, tx: &mut aurora_txn::Transaction, collection: &str, id: &DocId) -> Result<bool> {
        Ok(tx.get_shared(collection, id)?.is_some_and(|d| self.rule.has_expired(&d, self.now)))
    }

    /// Deletes an expired document `id` in `tx`, so that an insert or
    /// upsert of the id writes a new document.
    pub(crate) fn clear(&self, tx: &mut aurora_txn::Transaction, collection: &str, id: &DocId) -> Result<()> {
        if self.is_expired(tx, collection, id)? {
            tx.delete(collection, id)?;
        }
        Ok(())
    }

    /// `NotFound` for an expired document (an update or replace of it).
    pub(crate) fn absent_as_not_found(
        &self,
        tx: &mut aurora_txn::Transaction,
        collection: &str,
        id: &DocId,
    ) -> Result<()> {
        if self.is_expired(tx, collection, id)? {
            return Err(crate::Error::NotFound { collection: collection.into(), id: id.to_string() });
        }
        Ok(())
    }
}

/// The rules in force, by collection, and the clock they are read with.
pub(crate) struct Expiry {
    rules: RwLock<HashMap<String, Ttl>>,
    pub(crate) time: ExpiryClock,
}

impl Expiry {
    /// Loads the rules stored in `_ttl` (none if it was never written).
    pub(crate) fn load(db: &Database, time: ExpiryClock) -> Result<Self> {
        let mut rules = HashMap::new();
        if !db.collections().list_collections().iter().any(|c| c == TTL_RULES) {
            return Ok(Self { rules: RwLock::new(rules), time });
        }
        for doc in db.collections().documents().scan(TTL_RULES)? {
            let doc = doc?;
            let field = doc.get("field").and_then(Value::as_str);
            let after = doc.get("after_us").and_then(Value::as_i64).and_then(|v| u64::try_from(v).ok());
            if let (DocId::Text(collection), Some(field), Some(after)) = (&doc.id, field, after) {
                rules.insert(collection.to_string(), Ttl::after(field, Duration::from_micros(after)));
            }
        }
        Ok(Self { rules: RwLock::new(rules), time })
    }

    /// The rule of `collection`, if any.
    pub(crate) fn rule(&self, collection: &str) -> Option<Ttl> {
        self.rules.read().get(collection).cloned()
    }

    /// Sets (or with `None` removes) the rule of `collection`, durably.
    pub(crate) fn set(&self, db: &Database, collection: &str, ttl: Option<Ttl>) -> Result<()> {
        db.collections().definition_shared(collection)?;
        if let Some(rule) = &ttl {
            aurora_core::names::validate_field_path(&rule.field)?;
        }
        // The system collections, the first time a rule is set.
        for name in [TTL_RULES, EXPIRY_MARK] {
            match db.collections().create_collection(name, Default::default()) {
                Ok(()) | Err(aurora_index::IndexError::CollectionExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let id = DocId::text(collection)?;
        db.transaction(|tx| match &ttl {
            Some(rule) => {
                let after = i64::try_from(rule.after.as_micros()).unwrap_or(i64::MAX);
                let mut doc = Document::with_id(id.clone());
                doc.set("field", rule.field.clone());
                doc.set("after_us", after);
                tx.upsert(TTL_RULES, doc)
            }
            None => tx.delete(TTL_RULES, &id).map(drop),
        })?;
        let mut rules = self.rules.write();
        match ttl {
            Some(rule) => rules.insert(collection.to_string(), rule),
            None => rules.remove(collection),
        };
        Ok(())
    }

    /// Removes the rule of a dropped collection (a collection created later
    /// under the same name starts without one).
    pub(crate) fn forget(&self, db: &Database, collection: &str) -> Result<()> {
        if self.rules.write().remove(collection).is_none() {
            return Ok(());
        }
        let id = DocId::text(collection)?;
        db.transaction(|tx| tx.delete(TTL_RULES, &id).map(drop))?;
        Ok(())
    }

    /// Deletes every document expired now, in transactions of
    /// [`EXPIRE_BATCH`], each marked as an expiry commit. Returns how many
    /// it deleted.
    pub(crate) fn expire(&self, db: &Database) -> Result<u64> {
        let rules: Vec<(String, Ttl)> = self.rules.read().iter().map(|(c, t)| (c.clone(), t.clone())).collect();
        let mut deleted = 0;
        for (collection, rule) in rules {
            let _span = tracing::debug_span!("expire", collection = %collection).entered();
            loop {
                let now = self.time.now();
                let query = aurora_query::Query::new(&collection).where_filter(rule.expired(now)).limit(EXPIRE_BATCH);
                let mut read = db.begin_with(aurora_txn::Isolation::Snapshot)?;
                let ids = match query.ids(&mut read) {
                    Ok(ids) => ids,
                    // Dropped meanwhile: nothing to expire.
                    Err(aurora_query::QueryError::Index(aurora_index::IndexError::UnknownCollection(_))) => break,
                    Err(e) => return Err(e.into()),
                };
                drop(read);
                if ids.is_empty() {
                    break;
                }
                let mark_id = DocId::text(MARK_ID)?;
                let n = db.transaction(|tx| {
                    let mut n = 0u64;
                    for id in &ids {
                        // Still expired in this transaction's snapshot (a
                        // concurrent update may have extended it).
                        if tx.get_shared(&collection, id)?.is_some_and(|d| rule.has_expired(&d, now)) {
                            tx.delete(&collection, id)?;
                            n += 1;
                        }
                    }
                    if n > 0 {
                        let mut mark = Document::with_id(mark_id.clone());
                        mark.set("collection", collection.clone());
                        mark.set("at", Value::Timestamp(now));
                        mark.set("deleted", n as i64);
                        tx.upsert(EXPIRY_MARK, mark)?;
                    }
                    Ok(n)
                })?;
                deleted += n;
                tracing::debug!(deleted = n, "expired documents");
                // A short batch was the last; a batch of nothing deleted
                // (all extended meanwhile) must not spin.
                if ids.len() < EXPIRE_BATCH || n == 0 {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}
