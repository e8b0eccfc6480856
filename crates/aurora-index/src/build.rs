//! Online index management: `create_index` on a populated collection and
//! `drop_index`.
//!
//! A new index is first persisted as [`IndexState::Building`]: from then on
//! every write maintains it. A background thread back-fills the existing
//! documents, each with a compare-and-swap on the document's revision and a
//! rewrite of the document (so a writer that still planned against the old
//! definition fails its own compare-and-swap and retries with the new one).
//! When the back-fill completes the index becomes [`IndexState::Ready`] and
//! visible to reads. A unique build that meets duplicate values removes the
//! index again and fails with [`IndexError::DuplicateValues`] listing them.
//!
//! Every document write is conditioned on the revision of the collection
//! definition it was planned with, so a write planned before the index was
//! published cannot commit after it without the index (the race where a
//! new document lands behind the back-fill's scan): it fails and is planned
//! again. A build interrupted by a crash or a close leaves the index
//! `Building` (never used for reads); [`Collections::open`] resumes it, and
//! `create_index` on an index that is still building waits for that build.

use crate::catalog::{IndexDef, IndexState};
use crate::collections::Collections;
use crate::error::{IndexError, Result};
use crate::keys;
use crate::maintain::{claims_uniqueness, index_values, shown_value};
use aurora_core::{DocId, Document};
use aurora_storage::{CommitOutcome, DocumentWrites};
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Most duplicate values listed in [`IndexError::DuplicateValues`].
const MAX_LISTED: usize = 20;

/// Set when a build thread ends, for callers that joined a running build.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Finished {
    fn set(&self) {
        *self.done.lock() = true;
        self.cv.notify_all();
    }

    fn is_set(&self) -> bool {
        *self.done.lock()
    }

    fn wait(&self) {
        let mut done = self.done.lock();
        while !*done {
            self.cv.wait(&mut done);
        }
    }
}

/// The builds running in this process, by (collection, field).
pub(crate) type RunningBuilds = Arc<Mutex<HashMap<(String, String), Arc<Finished>>>>;

/// A running index build; [`IndexBuild::wait`] waits for it.
pub struct IndexBuild {
    kind: BuildKind,
}

impl std::fmt::Debug for IndexBuild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexBuild").field("finished", &self.is_finished()).finish()
    }
}

enum BuildKind {
    /// The build this call started: its own outcome.
    Own(JoinHandle<Result<()>>),
    /// A build that was already running (a resumed one, or another
    /// caller's): waits for it, then reports whether the index is ready.
    Joined { finished: Arc<Finished>, collections: Box<Collections>, collection: String, field: String },
}

impl IndexBuild {
    /// Waits for the build to finish and returns its outcome. A build this
    /// call joined (the index was already building) reports
    /// [`IndexError::BuildFailed`] if it ended without a ready index.
    pub fn wait(self) -> Result<()> {
        match self.kind {
            BuildKind::Own(thread) => thread.join().unwrap_or_else(|_| {
                Err(IndexError::InvalidSchema {
                    collection: String::new(),
                    reason: "index build thread panicked".into(),
                })
            }),
            BuildKind::Joined { finished, collections, collection, field } => {
                finished.wait();
                match collections.index(&collection, &field)? {
                    Some(IndexDef { state: IndexState::Ready, .. }) => Ok(()),
                    _ => Err(IndexError::BuildFailed {
                        collection,
                        field,
                        reason: "the build this call waited for ended without a ready index (see the log)".into(),
                    }),
                }
            }
        }
    }

    /// Whether the build has finished.
    pub fn is_finished(&self) -> bool {
        match &self.kind {
            BuildKind::Own(thread) => thread.is_finished(),
            BuildKind::Joined { finished, .. } => finished.is_set(),
        }
    }

    fn done() -> Self {
        Self { kind: BuildKind::Own(std::thread::spawn(|| Ok(()))) }
    }
}

/// Marks a build thread's end when dropped (also on a panic).
struct BuildEnd {
    collections: Collections,
    key: (String, String),
    finished: Arc<Finished>,
}

impl Drop for BuildEnd {
    fn drop(&mut self) {
        self.collections.running_builds().lock().remove(&self.key);
        self.finished.set();
    }
}

impl Collections {
    /// Starts building an index on `field`. Writes are not blocked; the
    /// index is used for reads only once complete. Creating an index that
    /// is ready is a no-op that finishes at once; creating one that is
    /// still building (in this process, or interrupted by a crash and
    /// resumed at open) waits for that build.
    pub fn create_index(&self, collection: &str, field: &str, unique: bool) -> Result<IndexBuild> {
        crate::compound::check_path(collection, field)?;
        self.start_index(collection, field, unique)
    }

    /// Starts building a compound index over `fields` (2 to
    /// [`MAX_COMPOUND_FIELDS`](crate::compound::MAX_COMPOUND_FIELDS)
    /// distinct paths, in this order) — online, exactly like
    /// [`Collections::create_index`]: writes maintain it at once, reads use
    /// it once [`IndexState::Ready`], a crash mid-build resumes at open. A
    /// unique one refuses two documents with the same values unless one of
    /// them is `null`. Entries hold each field's whole value (a missing
    /// field as `null`; arrays are not split into elements). Bad fields are
    /// [`IndexError::InvalidSchema`], and nothing changes.
    pub fn create_compound_index<S: AsRef<str>>(
        &self,
        collection: &str,
        fields: &[S],
        unique: bool,
    ) -> Result<IndexBuild> {
        crate::compound::check_fields(collection, fields)?;
        self.start_index(collection, &crate::compound::compound_name(fields), unique)
    }

    /// Removes the compound index over `fields` (see
    /// [`Collections::drop_index`]); [`IndexError::NoIndex`] if there is none.
    pub fn drop_compound_index<S: AsRef<str>>(&self, collection: &str, fields: &[S]) -> Result<()> {
        self.drop_index(collection, &crate::compound::compound_name(fields))
    }

    /// Starts building the index called `field` (a field path or a
    /// compound index's name).
    fn start_index(&self, collection: &str, field: &str, unique: bool) -> Result<IndexBuild> {
        // One decision at a time, so two callers never start the same build.
        let running = self.running_builds();
        let mut running = running.lock();
        let def = self.definition_shared(collection)?;
        if let Some(existing) = def.indexes.get(field).filter(|d| d.unique != unique) {
            // Never a silent success that enforces something else.
            return Err(IndexError::InvalidSchema {
                collection: collection.into(),
                reason: format!(
                    "an index on `{field}` already exists with unique = {}; drop it first to change that",
                    existing.unique
                ),
            });
        }
        match def.indexes.get(field) {
            Some(IndexDef { state: IndexState::Ready, .. }) => return Ok(IndexBuild::done()),
            Some(IndexDef { state: IndexState::Building, .. }) => {
                let key = (collection.to_string(), field.to_string());
                if let Some(finished) = running.get(&key) {
                    return Ok(IndexBuild {
                        kind: BuildKind::Joined {
                            finished: Arc::clone(finished),
                            collections: Box::new(self.clone()),
                            collection: key.0,
                            field: key.1,
                        },
                    });
                }
                // Left building by an earlier build that failed: start again.
            }
            None => {
                // Entries a drop interrupted by a crash left behind: no
                // writer maintains an index that is not defined, so anything
                // under its prefixes is stale.
                self.delete_prefixes(&[
                    keys::entries_prefix(collection, field),
                    keys::claims_prefix(collection, field),
                ])?;
                self.update_definition(collection, |def| {
                    def.indexes.insert(field.to_string(), IndexDef { unique, state: IndexState::Building });
                    Ok(())
                })?;
            }
        }
        let unique = self.index(collection, field)?.is_some_and(|d| d.unique);
        let thread = self.spawn_build(&mut running, collection, field, unique)?;
        Ok(IndexBuild { kind: BuildKind::Own(thread) })
    }

    /// Starts every build a crash or close interrupted (indexes persisted
    /// as `Building`); called at open. Their outcome is logged.
    pub(crate) fn resume_builds(&self) -> Result<()> {
        let running = self.running_builds();
        let mut running = running.lock();
        for name in self.list_collections() {
            let def = self.definition_shared(&name)?;
            for (field, index) in def.indexes.iter().filter(|(_, d)| d.state == IndexState::Building) {
                tracing::info!(collection = %name, field, "resuming an interrupted index build");
                drop(self.spawn_build(&mut running, &name, field, index.unique)?);
            }
        }
        Ok(())
    }

    fn spawn_build(
        &self,
        running: &mut HashMap<(String, String), Arc<Finished>>,
        collection: &str,
        field: &str,
        unique: bool,
    ) -> Result<JoinHandle<Result<()>>> {
        let key = (collection.to_string(), field.to_string());
        let finished = Arc::new(Finished::default());
        running.insert(key.clone(), Arc::clone(&finished));
        let this = self.clone();
        std::thread::Builder::new()
            .name(format!("aurora-index-build-{collection}.{field}"))
            .spawn(move || {
                // Signals the end even if the back-fill panics, so no
                // waiter hangs and the field can be built again.
                let _end = BuildEnd { collections: this.clone(), key: key.clone(), finished };
                let outcome = this.backfill(&key.0, &key.1, unique);
                if let Err(e) = &outcome {
                    tracing::warn!(collection = %key.0, field = %key.1, error = %e, "index build ended without a ready index");
                }
                outcome
            })
            .map_err(|e| {
                running.remove(&(collection.to_string(), field.to_string()));
                IndexError::Storage(aurora_storage::StorageError::Io { context: "starting an index build".into(), source: e })
            })
    }

    fn backfill(&self, collection: &str, field: &str, unique: bool) -> Result<()> {
        let _span = tracing::info_span!("index_build", collection, field).entered();
        let mut duplicates: BTreeMap<Vec<u8>, (String, Vec<String>)> = BTreeMap::new();
        let filled = (|| -> Result<()> {
            let ids: Vec<DocId> =
                self.documents().scan(collection)?.map(|d| d.map(|d| d.id)).collect::<Result<_, _>>()?;
            for id in ids {
                if let Some(dup) = self.backfill_one(collection, field, unique, &id)? {
                    let entry = duplicates.entry(dup.0).or_insert_with(|| (dup.1, vec![dup.2]));
                    entry.1.push(id.to_string());
                }
            }
            Ok(())
        })();
        if let Err(e) = filled {
            // A build that cannot succeed on this data (a value too large
            // for an index key, a cap, a damaged document) leaves no
            // definition behind: a half-built index would refuse writes the
            // collection accepted before, and be rebuilt at every open. An
            // interrupted one (closed, I/O, full disk) stays `Building` and
            // resumes at the next open.
            if !interrupted(&e) {
                self.drop_index(collection, field)?;
            }
            return Err(e);
        }
        if !duplicates.is_empty() {
            self.drop_index(collection, field)?;
            return Err(IndexError::DuplicateValues {
                collection: collection.into(),
                field: field.into(),
                duplicates: duplicates.into_values().take(MAX_LISTED).collect(),
            });
        }
        self.update_definition(collection, |def| match def.indexes.get_mut(field) {
            Some(index) => {
                index.state = IndexState::Ready;
                Ok(())
            }
            None => Err(IndexError::BuildFailed {
                collection: collection.into(),
                field: field.into(),
                reason: "the index was dropped during its build".into(),
            }),
        })?;
        self.recount(collection, field)?;
        tracing::info!("index ready");
        Ok(())
    }

    /// Indexes one document; returns `(encoded value, rendered value,
    /// holder id)` if a unique value is already claimed by another document.
    pub(crate) fn backfill_one(
        &self,
        collection: &str,
        field: &str,
        unique: bool,
        id: &DocId,
    ) -> Result<Option<(Vec<u8>, String, String)>> {
        loop {
            let (rev, Some(doc)) = self.documents().get_versioned(collection, id)? else { return Ok(None) };
            let (def, def_rev) = self.def_versioned(collection)?;
            if !def.indexes.contains_key(field) {
                return Err(IndexError::BuildFailed {
                    collection: collection.into(),
                    field: field.into(),
                    reason: "the index was dropped during its build".into(),
                });
            }
            let mut writes = DocumentWrites::new();
            writes.put(collection, &doc)?;
            let doc_key = aurora_storage::document_key(collection, id);
            let def_key = keys::catalog_key(collection);
            let batch = writes.batch_mut();
            batch.require_revision(doc_key.clone(), rev);
            batch.require_revision(def_key.clone(), def_rev);
            let mut claims = Vec::new();
            for value in index_values(Some(&doc), field) {
                batch.put(keys::entry_key(collection, field, &value, id), Vec::new());
                if unique && claims_uniqueness(&value) {
                    let claim = keys::claim_key(collection, field, &value);
                    match self.documents().store().get(&claim)? {
                        Some(holder) if holder == id.to_key_bytes() => {}
                        Some(holder) => return Ok(Some(duplicate(&doc, field, value, &holder))),
                        None => {
                            batch.require_absent(claim.clone()).put(claim.clone(), id.to_key_bytes());
                            claims.push((claim, value));
                        }
                    }
                }
            }
            match self.documents().commit(writes)? {
                CommitOutcome::Committed(_) => return Ok(None),
                CommitOutcome::ConditionFailed { key, .. } if key == doc_key || key == def_key => continue,
                CommitOutcome::ConditionFailed { key, .. } => {
                    if let Some((_, value)) = claims.into_iter().find(|(c, _)| *c == key) {
                        let holder = self.documents().store().get(&key)?.unwrap_or_default();
                        return Ok(Some(duplicate(&doc, field, value, &holder)));
                    }
                    continue;
                }
            }
        }
    }

    /// Removes an index: its definition (and the schema's `indexed`/`unique`
    /// marks on the field), entries and unique claims. Runs one at a time
    /// with `create_index` decisions, so an index re-created at once never
    /// has its new entries deleted by this drop; a drop cut short by a crash
    /// leaves stale entries that the next `create_index` of the field
    /// clears first.
    pub fn drop_index(&self, collection: &str, field: &str) -> Result<()> {
        let running = self.running_builds();
        let _one_decision_at_a_time = running.lock();
        self.update_definition(collection, |def| {
            if def.indexes.remove(field).is_none() {
                return Err(IndexError::NoIndex {
                    collection: collection.into(),
                    field: crate::compound::display_name(field),
                });
            }
            if let Some(f) = def.schema.fields.get_mut(field) {
                f.indexed = false;
                f.unique = false;
            }
            Ok(())
        })?;
        self.delete_prefixes(&[keys::entries_prefix(collection, field), keys::claims_prefix(collection, field)])?;
        self.recount(collection, field)
    }
}

fn duplicate(doc: &Document, field: &str, value: Vec<u8>, holder: &[u8]) -> (Vec<u8>, String, String) {
    let shown = shown_value(doc, field, &value);
    let holder = DocId::from_key_bytes(holder).map_or_else(|_| "?".into(), |h| h.to_string());
    (value, shown, holder)
}

/// Whether a build ended because the database stopped under it (closed,
/// poisoned, I/O, full disk) rather than because of the data: such a build
/// resumes at the next open.
fn interrupted(e: &IndexError) -> bool {
    use aurora_storage::StorageError as S;
    matches!(
        e,
        IndexError::Storage(S::Closed | S::Poisoned(_) | S::Io { .. } | S::DiskFull { .. } | S::Backend { .. })
            | IndexError::BuildFailed { .. }
    )
}

#[cfg(test)]
mod tests {
    use crate::catalog::{IndexDef, IndexState};
    use crate::{Collections, IndexConfig, IndexError, Schema};
    use aurora_core::{doc, DocId, Value};
    use aurora_storage::{DocumentStore, DocumentStoreConfig, StoreConfig};
    use std::path::Path;

    fn open(dir: &Path) -> Collections {
        let docs = DocumentStore::open(dir, StoreConfig::default(), DocumentStoreConfig::default()).unwrap();
        Collections::open(docs, IndexConfig::default()).unwrap()
    }

    /// The state a crash in the middle of a build leaves: the index
    /// persisted as `Building`, only some documents back-filled (here none).
    fn crashed_mid_build(dir: &Path, handles: &[&str]) {
        let db = open(dir);
        db.create_collection("people", Schema::new()).unwrap();
        for (i, h) in handles.iter().enumerate() {
            db.put("people", doc! { "handle": *h }.id(DocId::text(&format!("p{i}")).unwrap())).unwrap();
        }
        db.update_definition("people", |def| {
            def.indexes.insert("handle".into(), IndexDef { unique: true, state: IndexState::Building });
            Ok(())
        })
        .unwrap();
        db.documents().store().close().unwrap();
    }

    #[test]
    fn an_interrupted_unique_build_is_resumed_at_open_and_create_index_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        crashed_mid_build(dir.path(), &["a", "b", "c"]);
        let db = open(dir.path());
        // Waits for the resumed build instead of returning at once.
        db.create_index("people", "handle", true).unwrap().wait().unwrap();
        assert_eq!(db.index("people", "handle").unwrap().unwrap().state, IndexState::Ready);
        assert_eq!(db.lookup("people", "handle", &Value::from("b")).unwrap().len(), 1);
        let err = db.insert("people", doc! { "handle": "a" }).unwrap_err();
        assert!(matches!(err, IndexError::UniqueViolation { .. }), "the resumed unique index holds: {err}");
    }

    #[test]
    fn an_interrupted_compound_build_is_resumed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let name = crate::compound::compound_name(&["room", "at"]);
        {
            let db = open(dir.path());
            db.create_collection("msgs", Schema::new()).unwrap();
            for i in 0..30i64 {
                db.put("msgs", doc! { "room": format!("r{}", i % 3), "at": i }).unwrap();
            }
            db.update_definition("msgs", |def| {
                def.indexes.insert(name.clone(), IndexDef { unique: true, state: IndexState::Building });
                Ok(())
            })
            .unwrap();
            db.documents().store().close().unwrap();
        }
        let db = open(dir.path());
        db.create_compound_index("msgs", &["room", "at"], true).unwrap().wait().unwrap();
        assert_eq!(db.index("msgs", &name).unwrap().unwrap().state, IndexState::Ready);
        let scan = crate::IndexScan::Tuple {
            equal: vec![Value::from("r1")],
            low: std::ops::Bound::Included(Value::Int(10)),
            high: std::ops::Bound::Unbounded,
        };
        let ids = db.scan_index(None, "msgs", &name, &scan).unwrap();
        assert_eq!(ids.len(), 7, "r1 holds at = 1, 4, … 28; seven of them are >= 10");
        let err = db.insert("msgs", doc! { "room": "r1", "at": 4 }).unwrap_err();
        assert!(matches!(err, IndexError::UniqueViolation { .. }), "the resumed unique index holds: {err}");
        db.insert("msgs", doc! { "room": "r1", "at": 4.5 }).unwrap();
        let stats = db.index_stats("msgs").unwrap();
        assert_eq!(stats[0].fields, ["room", "at"]);
        assert_eq!((stats[0].entries, stats[0].distinct_values), (31, 31));
    }

    /// A document not yet back-filled holds no claim for its value; when a
    /// write moves it off that value, the claim — held by another document
    /// inserted during the build — must stay.
    #[test]
    fn a_write_during_a_unique_build_never_releases_a_claim_it_does_not_hold() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        db.create_collection("people", Schema::new()).unwrap();
        let a = DocId::text("a").unwrap();
        db.put("people", doc! { "h": "v" }.id(a.clone())).unwrap();
        // The build published, its back-fill not yet at `a`.
        db.update_definition("people", |def| {
            def.indexes.insert("h".into(), IndexDef { unique: true, state: IndexState::Building });
            Ok(())
        })
        .unwrap();
        db.insert("people", doc! { "h": "v" }.id(DocId::text("b").unwrap())).unwrap();
        db.put("people", doc! { "h": "x" }.id(a)).unwrap();
        let err = db.insert("people", doc! { "h": "v" }).unwrap_err();
        assert!(matches!(err, IndexError::UniqueViolation { .. }), "b still holds v: {err}");
    }

    #[test]
    fn a_resumed_unique_build_that_meets_duplicates_removes_the_index() {
        let dir = tempfile::tempdir().unwrap();
        crashed_mid_build(dir.path(), &["a", "b", "a"]);
        let db = open(dir.path());
        let joined = db.create_index("people", "handle", true).unwrap().wait();
        // Either this call joined the resumed build (which failed) or that
        // build had already removed the index and this call built it anew.
        assert!(
            matches!(joined, Err(IndexError::BuildFailed { .. } | IndexError::DuplicateValues { .. })),
            "{joined:?}"
        );
        assert_eq!(db.index("people", "handle").unwrap(), None, "never left half-visible");
        db.insert("people", doc! { "handle": "a" }).unwrap();
    }
}
