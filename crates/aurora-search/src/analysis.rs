//! How text becomes words: the analyser of an index's fields (split on
//! non-alphanumeric characters, drop over-long words, lowercase, then the
//! language's stop words and stemmer), and the *written-form* analyser
//! (the same without stop words or stemming) that prefix and fuzzy
//! searches match against.

use crate::definition::SearchDefinition;
use crate::tokenizer::WordTokenizer;
use tantivy::tokenizer::{Stemmer, StopWordFilter, TextAnalyzer};

/// Name of the analyser of the (possibly stemmed) text fields.
pub(crate) const TOKENIZER: &str = "aurora";
/// Name of the written-form analyser (lowercase only).
pub(crate) const RAW_TOKENIZER: &str = "aurora_raw";
/// Words of this many bytes or more are neither indexed nor searched for.
pub const MAX_WORD_BYTES: usize = 64;

/// The written-form analyser: split, drop words of [`MAX_WORD_BYTES`] or
/// more, lowercase ([`WordTokenizer`], in one pass).
pub(crate) fn raw_analyzer() -> TextAnalyzer {
    TextAnalyzer::from(WordTokenizer::default())
}

/// The analyser of the definition's text fields.
pub(crate) fn analyzer(definition: &SearchDefinition) -> TextAnalyzer {
    let Some(lang) = definition.language else { return raw_analyzer() };
    let base = TextAnalyzer::builder(WordTokenizer::default()).dynamic();
    let with_stop = match (definition.stop_words, StopWordFilter::new(lang)) {
        (true, Some(stop)) => base.filter_dynamic(stop),
        _ => base,
    };
    with_stop.filter_dynamic(Stemmer::new(lang)).build()
}

/// The words of `text` with their positions (stop words leave a gap).
pub(crate) fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(usize, String)> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push((token.position, token.text.clone()));
    }
    out
}

/// Whether `a` and `b` are within `max` edits (insert, delete,
/// substitute, or swap two adjacent characters: optimal string
/// alignment), by characters. Words are at most [`MAX_WORD_BYTES`], so
/// the table is small.
pub(crate) fn within_edits(a: &str, b: &str, max: usize) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[n][m] <= max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance() {
        assert!(within_edits("brown", "brown", 0));
        assert!(within_edits("brown", "brwn", 1));
        assert!(within_edits("brown", "borwn", 1), "a swap counts one");
        assert!(!within_edits("brown", "brn", 1));
        assert!(within_edits("brown", "brn", 2));
        assert!(within_edits("żółw", "zółw", 1), "by characters");
    }

    #[test]
    fn long_words_are_dropped() {
        let mut raw = raw_analyzer();
        assert_eq!(tokens(&mut raw, &"a".repeat(MAX_WORD_BYTES - 1)).len(), 1);
        assert!(tokens(&mut raw, &"a".repeat(MAX_WORD_BYTES)).is_empty());
    }
}
