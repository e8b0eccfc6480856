//! [`Highlight`]: a fragment of a document's field with the words that
//! made it match marked — words and phrases by their analysed form, prefix
//! and fuzzy words by the written words of the field they match. Words
//! under a negation are not marked.

use crate::analysis::{tokens, within_edits};
use crate::parse::SearchExpr;
use std::collections::BTreeMap;
use tantivy::schema::Field;
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;

/// Longest fragment, in characters.
const FRAGMENT_CHARS: usize = 150;

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

/// The positive (not negated) words of a search.
#[derive(Default)]
pub(crate) struct Wanted {
    /// Words and phrase words, as written.
    words: Vec<String>,
    /// Prefixes, as written.
    prefixes: Vec<String>,
    /// Fuzzy words and their distance.
    fuzzy: Vec<(String, u8)>,
}

impl Wanted {
    pub(crate) fn of(expr: &SearchExpr) -> Self {
        let mut w = Wanted::default();
        w.collect(expr);
        w
    }

    fn collect(&mut self, expr: &SearchExpr) {
        match expr {
            SearchExpr::Term(t) => self.words.push(t.clone()),
            SearchExpr::Phrase(ws) => self.words.extend(ws.iter().cloned()),
            SearchExpr::Prefix(p) => self.prefixes.push(p.clone()),
            SearchExpr::Fuzzy(t, d) => self.fuzzy.push((t.clone(), *d)),
            SearchExpr::And(parts) | SearchExpr::Or(parts) => parts.iter().for_each(|p| self.collect(p)),
            SearchExpr::Not(_) => {}
        }
    }

    /// The highlighted fragment of `text` (of field `name`), if a wanted
    /// word occurs in it.
    pub(crate) fn highlight(
        &self,
        name: &str,
        text: &str,
        field: Field,
        analyzer: &TextAnalyzer,
        raw_analyzer: &TextAnalyzer,
    ) -> Option<Highlight> {
        let (mut analyzer, mut raw) = (analyzer.clone(), raw_analyzer.clone());
        // The snippet generator marks the words of `text` whose analysed
        // form is in `terms`.
        let mut terms: BTreeMap<String, f32> = BTreeMap::new();
        for w in &self.words {
            for (_, t) in tokens(&mut analyzer, w) {
                terms.insert(t, 1.0);
            }
        }
        if !self.prefixes.is_empty() || !self.fuzzy.is_empty() {
            let prefixes: Vec<String> =
                self.prefixes.iter().flat_map(|p| tokens(&mut raw, p)).map(|(_, t)| t).collect();
            let fuzzy: Vec<(String, usize)> = self
                .fuzzy
                .iter()
                .flat_map(|(w, d)| tokens(&mut raw, w).into_iter().map(move |(_, t)| (t, usize::from(*d))))
                .collect();
            // Each distinct written word once.
            let written: std::collections::BTreeSet<String> =
                tokens(&mut raw, text).into_iter().map(|(_, t)| t).collect();
            for written in written {
                let hit = prefixes.iter().any(|p| written.starts_with(p.as_str()))
                    || fuzzy.iter().any(|(f, d)| within_edits(f, &written, *d));
                if hit {
                    for (_, t) in tokens(&mut analyzer, &written) {
                        terms.insert(t, 1.0);
                    }
                }
            }
        }
        if terms.is_empty() {
            return None;
        }
        let snippet = SnippetGenerator::new(terms, analyzer, field, FRAGMENT_CHARS).snippet(text);
        if snippet.highlighted().is_empty() {
            return None;
        }
        Some(Highlight {
            field: name.to_string(),
            fragment: snippet.fragment().to_string(),
            ranges: snippet.highlighted().to_vec(),
        })
    }
}
