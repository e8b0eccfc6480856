//! From a [`SearchExpr`] to a tantivy query over some of an index's fields.
//!
//! - Plain words and phrases are analysed like the indexed text (stemmed
//!   with a language) and matched on the text fields; a phrase keeps the
//!   gaps stop words leave.
//! - Prefix and fuzzy words are matched on the words *as written*
//!   (lowercased, never stemmed): with a language, against a second,
//!   unstemmed field; without one the text field already is that.
//! - A word the analyser drops entirely (a stop word, punctuation, a word
//!   of [`MAX_WORD_BYTES`](crate::MAX_WORD_BYTES) or more) is removed from
//!   the search: it neither requires nor excludes anything. A search with
//!   nothing left matches nothing.
//! - A negation matches every document the negated part does not, wherever
//!   it stands (inside `AND`, `OR`, or alone).

use crate::analysis::tokens;
use crate::parse::SearchExpr;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, EmptyQuery, FuzzyTermQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query,
    TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::Term;

/// Most terms one prefix inside a phrase (`e-ma*`) expands to.
const PHRASE_PREFIX_EXPANSIONS: u32 = 1_000;

/// One indexed field as a search sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    /// Analysed (possibly stemmed) text, with positions.
    pub(crate) text: Field,
    /// Written-form words, with positions (`text` itself without a language).
    pub(crate) raw: Field,
    /// Score multiplier.
    pub(crate) boost: f32,
}

/// Builds queries for a set of fields.
pub(crate) struct Builder {
    pub(crate) targets: Vec<Target>,
    pub(crate) analyzer: TextAnalyzer,
    pub(crate) raw_analyzer: TextAnalyzer,
}

type Q = Box<dyn Query>;

impl Builder {
    /// The query for `expr`; a search with nothing left after analysis
    /// matches nothing.
    pub(crate) fn build(&mut self, expr: &SearchExpr) -> Q {
        self.part(expr).unwrap_or_else(|| Box::new(EmptyQuery))
    }

    /// `None`: nothing left after analysis (the part is ignored).
    fn part(&mut self, expr: &SearchExpr) -> Option<Q> {
        match expr {
            SearchExpr::And(parts) => {
                let mut clauses: Vec<(Occur, Q)> = Vec::with_capacity(parts.len());
                for p in parts {
                    match p {
                        SearchExpr::Not(inner) => {
                            if let Some(q) = self.part(inner) {
                                clauses.push((Occur::MustNot, q));
                            }
                        }
                        other => {
                            if let Some(q) = self.part(other) {
                                clauses.push((Occur::Must, q));
                            }
                        }
                    }
                }
                if clauses.is_empty() {
                    return None;
                }
                if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                Some(Box::new(BooleanQuery::new(clauses)))
            }
            SearchExpr::Or(parts) => {
                let clauses: Vec<(Occur, Q)> =
                    parts.iter().filter_map(|p| self.part(p)).map(|q| (Occur::Should, q)).collect();
                match clauses.len() {
                    0 => None,
                    _ => Some(Box::new(BooleanQuery::new(clauses))),
                }
            }
            SearchExpr::Not(inner) => {
                let q = self.part(inner)?;
                Some(Box::new(BooleanQuery::new(vec![(Occur::Must, Box::new(AllQuery)), (Occur::MustNot, q)])))
            }
            leaf => {
                let targets = self.targets.clone();
                let mut per_field: Vec<(Occur, Q)> = Vec::with_capacity(targets.len());
                for t in &targets {
                    let Some(q) = self.leaf(leaf, t) else { continue };
                    let q: Q = if t.boost == 1.0 { q } else { Box::new(BoostQuery::new(q, t.boost)) };
                    per_field.push((Occur::Should, q));
                }
                match per_field.len() {
                    0 => None,
                    1 => per_field.pop().map(|(_, q)| q),
                    _ => Some(Box::new(BooleanQuery::new(per_field))),
                }
            }
        }
    }

    fn leaf(&mut self, expr: &SearchExpr, t: &Target) -> Option<Q> {
        match expr {
            SearchExpr::Term(word) => words(tokens(&mut self.analyzer, word), t.text),
            SearchExpr::Phrase(ws) => words(tokens(&mut self.analyzer, &ws.join(" ")), t.text),
            SearchExpr::Prefix(word) => {
                let mut toks = tokens(&mut self.raw_analyzer, word);
                match toks.len() {
                    0 => None,
                    1 => {
                        let (_, w) = toks.remove(0);
                        Some(Box::new(FuzzyTermQuery::new_prefix(Term::from_field_text(t.raw, &w), 0, true)))
                    }
                    _ => {
                        let terms = toks.into_iter().map(|(p, w)| (p, Term::from_field_text(t.raw, &w))).collect();
                        let mut q = PhrasePrefixQuery::new_with_offset(terms);
                        q.set_max_expansions(PHRASE_PREFIX_EXPANSIONS);
                        Some(Box::new(q))
                    }
                }
            }
            SearchExpr::Fuzzy(word, distance) => {
                let toks = tokens(&mut self.raw_analyzer, word);
                let mut each: Vec<(Occur, Q)> = toks
                    .into_iter()
                    .map(|(_, w)| {
                        let q: Q = Box::new(FuzzyTermQuery::new(Term::from_field_text(t.raw, &w), *distance, true));
                        (Occur::Must, q)
                    })
                    .collect();
                match each.len() {
                    0 => None,
                    1 => each.pop().map(|(_, q)| q),
                    _ => Some(Box::new(BooleanQuery::new(each))),
                }
            }
            SearchExpr::And(_) | SearchExpr::Or(_) | SearchExpr::Not(_) => self.part(expr),
        }
    }
}

/// A word (one token), or a phrase (several, at their analysed positions).
fn words(mut toks: Vec<(usize, String)>, field: Field) -> Option<Q> {
    match toks.len() {
        0 => None,
        1 => {
            let (_, w) = toks.remove(0);
            Some(Box::new(TermQuery::new(Term::from_field_text(field, &w), IndexRecordOption::WithFreqs)))
        }
        _ => {
            let first = toks[0].0;
            let terms = toks.into_iter().map(|(p, w)| (p - first, Term::from_field_text(field, &w))).collect();
            Some(Box::new(PhraseQuery::new_with_offset(terms)))
        }
    }
}
