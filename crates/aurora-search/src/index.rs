//! [`SearchIndex`]: one collection's tantivy index, fed commit by commit,
//! recording in its own commit the last database sequence it reflects.

use crate::analysis::{analyzer, raw_analyzer, RAW_TOKENIZER, TOKENIZER};
use crate::definition::SearchDefinition;
use crate::error::{Result, SearchError};
use crate::highlight::{Highlight, Wanted};
use crate::parse::SearchExpr;
use crate::query::{Builder, Target};
use aurora_core::{DocId, Document, Value};
use std::path::Path;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::schema::{BytesOptions, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value as _};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Writer memory budget, bytes (tantivy's minimum is 15 MB): documents
/// are buffered in memory up to it before a segment is written.
const WRITER_MEMORY: usize = 64 * 1024 * 1024;
/// Commit the position even without document changes after this many
/// sequences, so a reopen does not re-read (or find trimmed) a long feed.
const POSITION_COMMIT_EVERY: u64 = 1_000;

/// One ranked match.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The document.
    pub id: DocId,
    /// BM25 score (summed over fields, times each field's boost); higher
    /// is better.
    pub score: f32,
}

/// One document change of a database commit, as the index applies it.
#[derive(Debug, Clone, Copy)]
pub enum DocChange<'a> {
    /// A document that did not exist before this commit (the index holds
    /// no entry for it, so none is looked up to replace).
    Insert(&'a DocId, &'a Document),
    /// A document that existed and is now `after`; `before` (if known)
    /// lets the index skip a change that leaves every indexed field as it
    /// was.
    Update {
        /// Its id.
        id: &'a DocId,
        /// The document before the commit, if known.
        before: Option<&'a Document>,
        /// The document after it.
        after: &'a Document,
    },
    /// A deleted document.
    Delete(&'a DocId),
}

/// One collection's search index.
pub struct SearchIndex {
    definition: SearchDefinition,
    writer: IndexWriter,
    reader: IndexReader,
    id_field: Field,
    targets: Vec<Target>,
    analyzer: TextAnalyzer,
    raw_analyzer: TextAnalyzer,
    /// Whether a position was ever committed (`false` for a new index,
    /// which must be built from the collection, not from history).
    recorded: bool,
    /// Every commit up to it has been added to the writer.
    pending: u64,
    /// The sequence the searchable state reflects.
    applied: u64,
    /// The sequence of the last tantivy commit (what survives a crash).
    durable: u64,
    /// Documents changed since the last tantivy commit.
    dirty: bool,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("collection", &self.definition.collection)
            .field("pending", &self.pending)
            .field("applied", &self.applied)
            .field("durable", &self.durable)
            .finish()
    }
}

fn text_options(tokenizer: &str) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    )
}

/// Field `f{i}` holds the analysed text of the definition's `i`th field;
/// with a language, `r{i}` holds its written-form words (for prefix and
/// fuzzy searches).
fn schema(definition: &SearchDefinition, boosts: impl Iterator<Item = f32>) -> (Schema, Field, Vec<Target>) {
    let mut builder = Schema::builder();
    let id = builder.add_bytes_field("_id", BytesOptions::default().set_indexed().set_stored());
    let stemmed = definition.language.is_some();
    let targets = boosts
        .enumerate()
        .map(|(i, boost)| {
            let text = builder.add_text_field(&format!("f{i}"), text_options(TOKENIZER));
            let raw =
                if stemmed { builder.add_text_field(&format!("r{i}"), text_options(RAW_TOKENIZER)) } else { text };
            Target { text, raw, boost }
        })
        .collect();
    (builder.build(), id, targets)
}

/// The text of a field: a string, or the strings of an array, joined by
/// newlines (as highlights show it).
pub fn field_text(doc: &Document, path: &str) -> Option<String> {
    let parts = field_strings(doc, path);
    (!parts.is_empty()).then(|| parts.join("\n"))
}

/// The strings of a field: a string, or the strings of an array (each one
/// a separate value: a phrase does not run from one into the next).
fn field_strings<'d>(doc: &'d Document, path: &str) -> Vec<&'d str> {
    match doc.get_path(path) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

impl SearchIndex {
    /// Opens the index in `dir` (created if empty) for `definition`.
    /// [`SearchIndex::applied`] is then the sequence of its last commit (0
    /// for a new index, see [`SearchIndex::is_new`]): feed it every commit
    /// after that.
    ///
    /// # Errors
    /// [`SearchError::Locked`]: another writer holds the index's lock;
    /// [`SearchError::Directory`] / [`SearchError::Index`]: the folder
    /// cannot be opened, a segment is corrupt, or the files were written
    /// for another definition.
    pub fn open(dir: &Path, definition: SearchDefinition) -> Result<Self> {
        let (schema, id_field, targets) = schema(&definition, definition.fields.iter().map(|f| f.boost));
        let directory = MmapDirectory::open(dir)?;
        let index = Index::open_or_create(directory, schema)?;
        let analyzer = analyzer(&definition);
        let raw_analyzer = raw_analyzer();
        index.tokenizers().register(TOKENIZER, analyzer.clone());
        index.tokenizers().register(RAW_TOKENIZER, raw_analyzer.clone());
        let writer = match index.writer_with_num_threads(1, WRITER_MEMORY) {
            Ok(w) => w,
            Err(tantivy::TantivyError::LockFailure(..)) => {
                return Err(SearchError::Locked { path: dir.display().to_string() })
            }
            Err(e) => return Err(e.into()),
        };
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let payload = index.load_metas()?.payload;
        let durable = payload.as_deref().and_then(|p| p.parse::<u64>().ok()).unwrap_or(0);
        Ok(Self {
            definition,
            writer,
            reader,
            id_field,
            targets,
            analyzer,
            raw_analyzer,
            recorded: payload.is_some(),
            pending: durable,
            applied: durable,
            durable,
            dirty: false,
        })
    }

    /// The definition it was opened with.
    pub fn definition(&self) -> &SearchDefinition {
        &self.definition
    }

    /// Whether no position was ever committed: the index is new and must
    /// be built from the collection's documents ([`SearchIndex::clear`],
    /// [`DocChange::Insert`] for each, [`SearchIndex::commit`] with the
    /// snapshot's sequence), not from history.
    pub fn is_new(&self) -> bool {
        !self.recorded
    }

    /// The database sequence the searchable state reflects: every commit
    /// up to it is applied, none after.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The sequence every commit up to which has been given to
    /// [`SearchIndex::apply`] (searchable after the next
    /// [`SearchIndex::commit`]); at least [`SearchIndex::applied`].
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// The sequence recorded in the last tantivy commit: what a reopen
    /// after a crash starts from.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Whether changes were applied that are not searchable yet.
    pub fn has_uncommitted(&self) -> bool {
        self.dirty || self.pending != self.applied
    }

    /// Applies one database commit's changes to the collection. Not
    /// searchable until [`SearchIndex::commit`].
    ///
    /// # Errors
    /// [`SearchError::Index`] if tantivy's indexing thread failed; call
    /// [`SearchIndex::rollback`] then.
    pub fn apply<'a>(&mut self, changes: impl IntoIterator<Item = DocChange<'a>>) -> Result<()> {
        for change in changes {
            let (id, doc, replace) = match change {
                DocChange::Insert(id, doc) => (id, Some(doc), false),
                DocChange::Update { id, before, after } => {
                    if before.is_some_and(|b| self.same_text(b, after)) {
                        continue;
                    }
                    (id, Some(after), true)
                }
                DocChange::Delete(id) => (id, None, true),
            };
            let key = id.to_key_bytes();
            if replace {
                self.writer.delete_term(Term::from_field_bytes(self.id_field, &key));
            }
            if let Some(doc) = doc {
                let fields: Vec<(Target, Vec<&str>)> = self
                    .targets
                    .iter()
                    .zip(&self.definition.fields)
                    .map(|(target, def)| (*target, field_strings(doc, &def.name)))
                    .collect();
                // Sized for its values (each with a few bytes of header),
                // not tantivy's default 1 KiB.
                let bytes = fields
                    .iter()
                    .map(|(t, texts)| {
                        let copies = if t.raw == t.text { 1 } else { 2 };
                        texts.iter().map(|s| copies * (s.len() + 8)).sum::<usize>()
                    })
                    .sum::<usize>()
                    + key.len()
                    + 8;
                let mut out = TantivyDocument::with_capacity(bytes);
                out.add_bytes(self.id_field, &key);
                for (target, texts) in fields {
                    for text in texts {
                        out.add_text(target.text, text);
                        if target.raw != target.text {
                            out.add_text(target.raw, text);
                        }
                    }
                }
                self.writer.add_document(out)?;
            }
            self.dirty = true;
        }
        Ok(())
    }

    /// Whether every indexed field reads the same in `a` and `b`.
    fn same_text(&self, a: &Document, b: &Document) -> bool {
        self.definition.fields.iter().all(|f| field_strings(a, &f.name) == field_strings(b, &f.name))
    }

    /// Records that every commit up to `sequence` has been applied (not
    /// searchable until [`SearchIndex::commit`]).
    pub fn advance(&mut self, sequence: u64) {
        self.pending = self.pending.max(sequence);
    }

    /// Removes every document (before a rebuild from a scan). The
    /// position goes back to 0: the next [`SearchIndex::commit`] records
    /// exactly the sequence it is given.
    ///
    /// # Errors
    /// [`SearchError::Index`] if tantivy's indexing thread failed.
    pub fn clear(&mut self) -> Result<()> {
        self.writer.delete_all_documents()?;
        self.pending = 0;
        self.dirty = true;
        Ok(())
    }

    /// Drops every change applied since the last tantivy commit (after a
    /// failure half-way through a commit's changes): the index is again
    /// exactly its last commit, at [`SearchIndex::durable`].
    ///
    /// # Errors
    /// [`SearchError::Index`] if tantivy cannot return to its last commit.
    pub fn rollback(&mut self) -> Result<()> {
        self.writer.rollback()?;
        self.pending = self.durable;
        self.applied = self.durable;
        self.dirty = false;
        Ok(())
    }

    /// [`SearchIndex::advance`] to `sequence`, then
    /// [`SearchIndex::publish`].
    ///
    /// # Errors
    /// As [`SearchIndex::publish`].
    pub fn commit(&mut self, sequence: u64) -> Result<()> {
        self.advance(sequence);
        self.publish()
    }

    /// Makes everything applied searchable and records the pending
    /// position (every commit up to it is applied) in the tantivy commit.
    /// Commits to disk only when documents changed or the position moved
    /// far; otherwise only the in-memory position advances.
    ///
    /// # Errors
    /// [`SearchError::Index`] on I/O failure (call
    /// [`SearchIndex::rollback`] then).
    pub fn publish(&mut self) -> Result<()> {
        let sequence = self.pending;
        if self.dirty || !self.recorded || sequence.saturating_sub(self.durable) >= POSITION_COMMIT_EVERY {
            let mut prepared = self.writer.prepare_commit()?;
            prepared.set_payload(&sequence.to_string());
            prepared.commit()?;
            self.reader.reload()?;
            self.durable = sequence;
            self.recorded = true;
            self.dirty = false;
        }
        self.applied = sequence;
        Ok(())
    }

    /// Closes the index: waits for tantivy's background merges, so its
    /// folder can be deleted or opened again right after.
    ///
    /// # Errors
    /// [`SearchError::Index`] if a merge failed.
    pub fn close(self) -> Result<()> {
        drop(self.reader);
        Ok(self.writer.wait_merging_threads()?)
    }

    /// Documents in the index (as of the last commit).
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// tantivy segments in the searchable state (each tantivy commit with
    /// changed documents writes one; background merges join them).
    pub fn segments(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// Whether the index has no document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn targets(&self, field: Option<&str>) -> Result<Vec<(usize, Target)>> {
        match field {
            None => Ok(self.targets.iter().copied().enumerate().collect()),
            Some(name) => match self.definition.fields.iter().position(|f| f.name == name) {
                Some(i) => Ok(vec![(i, self.targets[i])]),
                None => Err(SearchError::UnknownField {
                    collection: self.definition.collection.clone(),
                    field: name.to_string(),
                }),
            },
        }
    }

    fn query(&self, expr: &SearchExpr, targets: &[(usize, Target)]) -> Box<dyn tantivy::query::Query> {
        Builder {
            targets: targets.iter().map(|(_, t)| *t).collect(),
            analyzer: self.analyzer.clone(),
            raw_analyzer: self.raw_analyzer.clone(),
        }
        .build(expr)
    }

    /// The best `limit` matches after skipping `offset`, best first (ties
    /// in index order). `field` restricts the search to one indexed field.
    /// The window is bounded by the number of documents in the index.
    ///
    /// # Errors
    /// [`SearchError::UnknownField`]; [`SearchError::Index`] on I/O failure.
    pub fn search(&self, expr: &SearchExpr, field: Option<&str>, limit: usize, offset: usize) -> Result<Vec<Hit>> {
        let targets = self.targets(field)?;
        let searcher = self.reader.searcher();
        let docs = usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX);
        let limit = limit.min(docs.saturating_sub(offset));
        if limit == 0 {
            return Ok(Vec::new());
        }
        let query = self.query(expr, &targets);
        let top = searcher.search(&*query, &TopDocs::with_limit(limit).and_offset(offset).order_by_score())?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let Some(bytes) = doc.get_first(self.id_field).and_then(|v| v.as_bytes().map(<[u8]>::to_vec)) else {
                continue;
            };
            if let Ok(id) = DocId::from_key_bytes(&bytes) {
                hits.push(Hit { id, score });
            }
        }
        Ok(hits)
    }

    /// How many documents match.
    ///
    /// # Errors
    /// As [`SearchIndex::search`].
    pub fn count(&self, expr: &SearchExpr, field: Option<&str>) -> Result<usize> {
        let targets = self.targets(field)?;
        let query = self.query(expr, &targets);
        Ok(self.reader.searcher().search(&*query, &Count)?)
    }

    /// Highlighted fragments of `doc`'s indexed fields (restricted to
    /// `field` if given) for `expr`'s words that are not negated; fields
    /// without such a word are left out.
    ///
    /// # Errors
    /// [`SearchError::UnknownField`].
    pub fn highlights(&self, expr: &SearchExpr, field: Option<&str>, doc: &Document) -> Result<Vec<Highlight>> {
        let wanted = Wanted::of(expr);
        let mut out = Vec::new();
        for (i, target) in self.targets(field)? {
            let name = &self.definition.fields[i].name;
            let Some(text) = field_text(doc, name) else { continue };
            if let Some(h) = wanted.highlight(name, &text, target.text, &self.analyzer, &self.raw_analyzer) {
                out.push(h);
            }
        }
        Ok(out)
    }
}
