//! [`WordTokenizer`]: the words of a text, lowercased, in one pass.
//!
//! It gives exactly the tokens of tantivy's `SimpleTokenizer` followed by
//! `RemoveLongFilter::limit(MAX_WORD_BYTES)` and `LowerCaser` — the same
//! words, positions (a dropped word leaves its gap) and byte offsets —
//! so indexes written with that chain read the same; it only costs less:
//! ASCII bytes are classified and lowercased without decoding characters,
//! and a word is copied once. Indexing spends about a third of its time
//! in the tokenizer chain otherwise.

use crate::analysis::MAX_WORD_BYTES;
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Splits on characters that are not alphanumeric (Unicode), drops words
/// of [`MAX_WORD_BYTES`] bytes or more, lowercases (Unicode, character by
/// character).
#[derive(Clone, Default)]
pub(crate) struct WordTokenizer {
    token: Token,
}

/// The words of one text ([`WordTokenizer`]).
pub(crate) struct WordStream<'a> {
    text: &'a str,
    /// Byte offset where the search for the next word starts (always on a
    /// character boundary).
    at: usize,
    token: &'a mut Token,
}

impl Tokenizer for WordTokenizer {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream { text, at: 0, token: &mut self.token }
    }
}

impl WordStream<'_> {
    /// Whether the (non-ASCII) character at byte `at` — a character
    /// boundary below the text's length — is alphanumeric, and its length
    /// in bytes.
    #[cold]
    fn wide_char_at(&self, at: usize) -> (bool, usize) {
        match self.text.get(at..).and_then(|rest| rest.chars().next()) {
            Some(c) => (c.is_alphanumeric(), c.len_utf8()),
            // Not reached: `at` is a boundary below the length.
            None => (false, 1),
        }
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        let bytes = self.text.as_bytes();
        let mut at = self.at;
        loop {
            // The next word's first character.
            while let Some(&b) = bytes.get(at) {
                if b.is_ascii() {
                    if b.is_ascii_alphanumeric() {
                        break;
                    }
                    at += 1;
                } else {
                    let (word, width) = self.wide_char_at(at);
                    if word {
                        break;
                    }
                    at += width;
                }
            }
            if at >= bytes.len() {
                self.at = at;
                return false;
            }
            let start = at;
            let mut ascii = true;
            while let Some(&b) = bytes.get(at) {
                if b.is_ascii() {
                    if !b.is_ascii_alphanumeric() {
                        break;
                    }
                    at += 1;
                } else {
                    let (word, width) = self.wide_char_at(at);
                    if !word {
                        break;
                    }
                    ascii = false;
                    at += width;
                }
            }
            // Every word takes a position, a dropped one too.
            self.token.position = self.token.position.wrapping_add(1);
            if at - start >= MAX_WORD_BYTES {
                continue;
            }
            self.at = at;
            let word = &self.text[start..at];
            self.token.offset_from = start;
            self.token.offset_to = at;
            self.token.text.clear();
            if ascii {
                self.token.text.push_str(word);
                self.token.text.make_ascii_lowercase();
            } else {
                // As tantivy's LowerCaser: character by character (no
                // final-sigma rule).
                for c in word.chars() {
                    self.token.text.extend(c.to_lowercase());
                }
            }
            return true;
        }
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};

    /// (position, text, offsets) of every token.
    fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(usize, String, usize, usize)> {
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push((t.position, t.text.clone(), t.offset_from, t.offset_to));
        }
        out
    }

    /// The chain it replaces.
    fn chain() -> TextAnalyzer {
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(MAX_WORD_BYTES))
            .filter(LowerCaser)
            .build()
    }

    fn same(text: &str) {
        let mut words = TextAnalyzer::from(WordTokenizer::default());
        assert_eq!(tokens(&mut words, text), tokens(&mut chain(), text), "{text:?}");
    }

    #[test]
    fn words_positions_and_offsets() {
        let mut words = TextAnalyzer::from(WordTokenizer::default());
        let long = "x".repeat(MAX_WORD_BYTES);
        let text = format!("The quick-brown {long} FOX, Żółw 42");
        let got = tokens(&mut words, &text);
        let at = |w: &str| text.find(w).unwrap();
        assert_eq!(
            got,
            vec![
                (0, "the".into(), 0, 3),
                (1, "quick".into(), 4, 9),
                (2, "brown".into(), 10, 15),
                // position 3: the long word, dropped
                (4, "fox".into(), at("FOX"), at("FOX") + 3),
                (5, "żółw".into(), at("Żółw"), at("Żółw") + "Żółw".len()),
                (6, "42".into(), at("42"), at("42") + 2),
            ]
        );
        same(&text);
    }

    #[test]
    fn edge_cases_match_the_chain() {
        for text in [
            "",
            " ",
            "a",
            "...",
            "İstanbul ΣΊΣΥΦΟΣ straße ǅemal",
            "日本語のテキスト、句読点。",
            "e\u{301}te\u{301} caf\u{e9}",
            "emoji 🙂 between🙂words",
            &"é".repeat(MAX_WORD_BYTES / 2),
            &"é".repeat(MAX_WORD_BYTES / 2 - 1),
            &format!("{} {}", "a".repeat(MAX_WORD_BYTES - 1), "b".repeat(MAX_WORD_BYTES + 3)),
        ] {
            same(text);
        }
    }

    proptest! {
        #[test]
        fn same_tokens_as_simple_remove_long_lower(text in "(?s).{0,200}") {
            same(&text);
        }

        #[test]
        fn same_tokens_on_mostly_ascii_text(
            text in "([A-Za-z0-9]{0,70}|[ ,.;:!?'\"\\-]{1,3}|[ÀÉÎõüßİΣΐ]{1,3}|\u{1F642}){0,30}"
        ) {
            same(&text);
        }
    }
}
