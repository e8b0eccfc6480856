//! [`SearchIndex`]: one collection's tantivy index, fed commit by commit,
//! recording in its own commit the last database sequence it reflects.

use crate::definition::SearchDefinition;
use crate::error::{Result, SearchError};
use crate::parse::SearchExpr;
use aurora_core::{DocId, Document, Value};
use std::path::Path;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, EmptyQuery, FuzzyTermQuery, Occur, PhraseQuery, Query, TermQuery,
};
use tantivy::schema::{BytesOptions, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value as _};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Name of the analyser registered on every index.
const TOKENIZER: &str = "aurora";
/// Writer memory budget, bytes (tantivy's minimum is 15 MB).
const WRITER_MEMORY: usize = 32 * 1024 * 1024;
/// Commit the position even without document changes after this many
/// sequences, so a reopen does not re-read (or find trimmed) a long feed.
const POSITION_COMMIT_EVERY: u64 = 1_000;
/// Longest indexed word, bytes; longer ones are dropped.
const MAX_WORD_BYTES: usize = 64;

/// One ranked match.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The document.
    pub id: DocId,
    /// BM25 score (summed over fields, times each field's boost); higher
    /// is better.
    pub score: f32,
}

/// A highlighted fragment of a field's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Highlight {
    /// The field.
    pub field: String,
    /// A fragment of the field's text (at most ~150 characters).
    pub fragment: String,
    /// Byte ranges within `fragment` of the matching words.
    pub ranges: Vec<std::ops::Range<usize>>,
}

/// One collection's search index.
pub struct SearchIndex {
    definition: SearchDefinition,
    index: Index,
    writer: IndexWriter,
    reader: IndexReader,
    id_field: Field,
    fields: Vec<Field>,
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
            .field("applied", &self.applied)
            .field("durable", &self.durable)
            .finish()
    }
}

fn analyzer(definition: &SearchDefinition) -> TextAnalyzer {
    let base = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_WORD_BYTES))
        .filter(LowerCaser)
        .dynamic();
    match definition.language {
        None => base.build(),
        Some(lang) => {
            let with_stop = if definition.stop_words {
                match StopWordFilter::new(lang) {
                    Some(stop) => base.filter_dynamic(stop),
                    None => base,
                }
            } else {
                base
            };
            with_stop.filter_dynamic(Stemmer::new(lang)).build()
        }
    }
}

fn schema(definition: &SearchDefinition) -> (Schema, Field, Vec<Field>) {
    let mut builder = Schema::builder();
    let id = builder.add_bytes_field("_id", BytesOptions::default().set_indexed().set_stored());
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = (0..definition.fields.len()).map(|i| builder.add_text_field(&format!("f{i}"), text.clone())).collect();
    (builder.build(), id, fields)
}

/// The text of a field: a string, or the strings of an array, joined by newlines.
pub fn field_text(doc: &Document, path: &str) -> Option<String> {
    match doc.get_path(path)? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let parts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            (!parts.is_empty()).then(|| parts.join("\n"))
        }
        _ => None,
    }
}

impl SearchIndex {
    /// Opens the index in `dir` (created if empty) for `definition`.
    /// [`SearchIndex::applied`] is then the sequence of its last commit (0
    /// for a new index): feed it every commit after that.
    ///
    /// # Errors
    /// [`SearchError::Directory`] / [`SearchError::Index`]: the folder
    /// cannot be opened, a segment is corrupt, or another writer holds the
    /// index's lock.
    pub fn open(dir: &Path, definition: SearchDefinition) -> Result<Self> {
        let (schema, id_field, fields) = schema(&definition);
        let directory = MmapDirectory::open(dir)?;
        let index = Index::open_or_create(directory, schema)?;
        index.tokenizers().register(TOKENIZER, analyzer(&definition));
        let writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let durable = index.load_metas()?.payload.and_then(|p| p.parse::<u64>().ok()).unwrap_or(0);
        Ok(Self { definition, index, writer, reader, id_field, fields, applied: durable, durable, dirty: false })
    }

    /// The definition it was opened with.
    pub fn definition(&self) -> &SearchDefinition {
        &self.definition
    }

    /// The database sequence the searchable state reflects: every commit
    /// up to it is applied, none after.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The sequence recorded in the last tantivy commit: what a reopen
    /// after a crash starts from.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Applies one database commit: for each changed document its state
    /// after the commit (`None`: deleted). Not searchable until
    /// [`SearchIndex::commit`].
    pub fn apply<'a>(&mut self, changes: impl IntoIterator<Item = (&'a DocId, Option<&'a Document>)>) -> Result<()> {
        for (id, doc) in changes {
            let key = id.to_key_bytes();
            self.writer.delete_term(Term::from_field_bytes(self.id_field, &key));
            if let Some(doc) = doc {
                let mut out = TantivyDocument::default();
                out.add_bytes(self.id_field, &key);
                for (field, def) in self.fields.iter().zip(&self.definition.fields) {
                    if let Some(text) = field_text(doc, &def.name) {
                        out.add_text(*field, text);
                    }
                }
                self.writer.add_document(out)?;
            }
            self.dirty = true;
        }
        Ok(())
    }

    /// Removes every document (before a rebuild from a scan).
    /// The position goes back to 0: the next [`SearchIndex::commit`]
    /// records exactly the sequence it is given.
    pub fn clear(&mut self) -> Result<()> {
        self.writer.delete_all_documents()?;
        self.applied = 0;
        self.dirty = true;
        Ok(())
    }

    /// Makes everything applied searchable and records `sequence` (every
    /// commit up to it is applied) in the tantivy commit. Commits to disk
    /// only when documents changed or the position moved far; otherwise
    /// only the in-memory position advances.
    pub fn commit(&mut self, sequence: u64) -> Result<()> {
        let sequence = sequence.max(self.applied);
        if self.dirty || sequence.saturating_sub(self.durable) >= POSITION_COMMIT_EVERY {
            let mut prepared = self.writer.prepare_commit()?;
            prepared.set_payload(&sequence.to_string());
            prepared.commit()?;
            self.reader.reload()?;
            self.durable = sequence;
            self.dirty = false;
        }
        self.applied = sequence;
        Ok(())
    }

    /// Documents in the index (as of the last commit).
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether the index has no document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn field_indexes(&self, field: Option<&str>) -> Result<Vec<usize>> {
        match field {
            None => Ok((0..self.fields.len()).collect()),
            Some(name) => match self.definition.fields.iter().position(|f| f.name == name) {
                Some(i) => Ok(vec![i]),
                None => Err(SearchError::UnknownField {
                    collection: self.definition.collection.clone(),
                    field: name.to_string(),
                }),
            },
        }
    }

    fn analyse(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.index.tokenizers().get(TOKENIZER).unwrap_or_else(|| analyzer(&self.definition));
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            out.push(token.text.clone());
        }
        out
    }

    fn leaf(&self, expr: &SearchExpr, field: Field) -> Box<dyn Query> {
        match expr {
            SearchExpr::Term(word) => self.words_query(&[word.as_str()], field),
            SearchExpr::Phrase(words) => {
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                self.words_query(&words, field)
            }
            SearchExpr::Prefix(word) => {
                Box::new(FuzzyTermQuery::new_prefix(Term::from_field_text(field, &word.to_lowercase()), 0, true))
            }
            SearchExpr::Fuzzy(word, distance) => {
                Box::new(FuzzyTermQuery::new(Term::from_field_text(field, &word.to_lowercase()), *distance, true))
            }
            _ => Box::new(EmptyQuery),
        }
    }

    fn words_query(&self, words: &[&str], field: Field) -> Box<dyn Query> {
        let tokens = self.analyse(&words.join(" "));
        let mut terms: Vec<Term> = tokens.iter().map(|t| Term::from_field_text(field, t)).collect();
        match terms.len() {
            0 => Box::new(EmptyQuery),
            1 => Box::new(TermQuery::new(terms.remove(0), IndexRecordOption::WithFreqs)),
            _ => Box::new(PhraseQuery::new(terms)),
        }
    }

    /// The tantivy query for `expr` over the given fields.
    fn query(&self, expr: &SearchExpr, fields: &[usize]) -> Box<dyn Query> {
        match expr {
            SearchExpr::And(parts) => {
                let mut clauses: Vec<(Occur, Box<dyn Query>)> = parts
                    .iter()
                    .map(|p| match p {
                        SearchExpr::Not(inner) => (Occur::MustNot, self.query(inner, fields)),
                        other => (Occur::Must, self.query(other, fields)),
                    })
                    .collect();
                if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                Box::new(BooleanQuery::new(clauses))
            }
            SearchExpr::Or(parts) => {
                Box::new(BooleanQuery::new(parts.iter().map(|p| (Occur::Should, self.query(p, fields))).collect()))
            }
            SearchExpr::Not(inner) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery)),
                (Occur::MustNot, self.query(inner, fields)),
            ])),
            leaf => {
                let per_field: Vec<(Occur, Box<dyn Query>)> = fields
                    .iter()
                    .map(|&i| {
                        let q = self.leaf(leaf, self.fields[i]);
                        let boost = self.definition.fields[i].boost;
                        let q: Box<dyn Query> = if boost == 1.0 { q } else { Box::new(BoostQuery::new(q, boost)) };
                        (Occur::Should, q)
                    })
                    .collect();
                if per_field.len() == 1 {
                    per_field.into_iter().next().map(|(_, q)| q).unwrap_or_else(|| Box::new(EmptyQuery))
                } else {
                    Box::new(BooleanQuery::new(per_field))
                }
            }
        }
    }

    /// The best `limit` matches after skipping `offset`, best first (ties
    /// in index order). `field` restricts the search to one indexed field.
    ///
    /// # Errors
    /// [`SearchError::UnknownField`]; [`SearchError::Index`] on I/O failure.
    pub fn search(&self, expr: &SearchExpr, field: Option<&str>, limit: usize, offset: usize) -> Result<Vec<Hit>> {
        let fields = self.field_indexes(field)?;
        let query = self.query(expr, &fields);
        let searcher = self.reader.searcher();
        if limit == 0 {
            return Ok(Vec::new());
        }
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
        let fields = self.field_indexes(field)?;
        let query = self.query(expr, &fields);
        Ok(self.reader.searcher().search(&*query, &Count)?)
    }

    /// Highlighted fragments of `doc`'s indexed fields (restricted to
    /// `field` if given) for `expr`; fields without a match are left out.
    ///
    /// # Errors
    /// As [`SearchIndex::search`].
    pub fn highlights(&self, expr: &SearchExpr, field: Option<&str>, doc: &Document) -> Result<Vec<Highlight>> {
        let fields = self.field_indexes(field)?;
        let query = self.query(expr, &fields);
        let searcher = self.reader.searcher();
        let mut out = Vec::new();
        for i in fields {
            let name = &self.definition.fields[i].name;
            let Some(text) = field_text(doc, name) else { continue };
            let generator = SnippetGenerator::create(&searcher, &*query, self.fields[i])?;
            let snippet = generator.snippet(&text);
            if snippet.highlighted().is_empty() {
                continue;
            }
            out.push(Highlight {
                field: name.clone(),
                fragment: snippet.fragment().to_string(),
                ranges: snippet.highlighted().to_vec(),
            });
        }
        Ok(out)
    }
}
