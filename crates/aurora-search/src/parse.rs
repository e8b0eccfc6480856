//! The search language: parsed into a [`SearchExpr`] with bounds.
//!
//! ```text
//! expr   := and ("OR" and)*
//! and    := unary (["AND"] unary)*      -- juxtaposition is AND
//! unary  := ("-" | "NOT") unary | atom
//! atom   := "(" expr ")" | "\"" words "\"" | word | word "*" | word "~" [1|2]
//! ```
//!
//! A `word` is a run of characters other than whitespace, `()"*~` (it may
//! start with `-` only after other characters).

use crate::error::{Result, SearchError};

/// Longest accepted search string, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;
/// Most words (terms, phrase words, prefixes, fuzzy terms) in one search.
pub const MAX_QUERY_TERMS: usize = 64;
/// Deepest parenthesis/negation nesting.
pub const MAX_QUERY_DEPTH: usize = 16;

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchExpr {
    /// A word, analysed with the index's language (lowercased, stemmed).
    Term(String),
    /// Words in this order, adjacent (after analysis).
    Phrase(Vec<String>),
    /// Words starting with this prefix (lowercased, not stemmed).
    Prefix(String),
    /// Words within `distance` (1 or 2) edits (Levenshtein, a transposition
    /// counting one) of this word (lowercased, not stemmed).
    Fuzzy(String, u8),
    /// Every part matches.
    And(Vec<SearchExpr>),
    /// Any part matches.
    Or(Vec<SearchExpr>),
    /// Documents that do not match (only meaningful inside an `And`; a
    /// search that is only negative matches nothing).
    Not(Box<SearchExpr>),
}

impl std::fmt::Display for SearchExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |f: &mut std::fmt::Formatter<'_>, parts: &[SearchExpr], sep: &str| -> std::fmt::Result {
            write!(f, "(")?;
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    write!(f, " {sep} ")?;
                }
                write!(f, "{p}")?;
            }
            write!(f, ")")
        };
        match self {
            // A word that would read as an operator is shown quoted.
            SearchExpr::Term(t) if matches!(t.as_str(), "AND" | "OR" | "NOT") || t.starts_with('-') => {
                write!(f, "\"{t}\"")
            }
            SearchExpr::Term(t) => write!(f, "{t}"),
            SearchExpr::Phrase(w) => write!(f, "\"{}\"", w.join(" ")),
            SearchExpr::Prefix(p) => write!(f, "{p}*"),
            SearchExpr::Fuzzy(t, d) => write!(f, "{t}~{d}"),
            SearchExpr::And(parts) => join(f, parts, "AND"),
            SearchExpr::Or(parts) => join(f, parts, "OR"),
            SearchExpr::Not(inner) => write!(f, "NOT {inner}"),
        }
    }
}

/// Parses a search string.
///
/// # Errors
/// [`SearchError::QueryTooLong`], [`SearchError::TooManyTerms`],
/// [`SearchError::Parse`] with the byte position (an unclosed quote or
/// parenthesis, a dangling operator, a fuzzy distance other than 1–2,
/// nesting deeper than [`MAX_QUERY_DEPTH`], an empty search).
pub fn parse(input: &str) -> Result<SearchExpr> {
    if input.len() > MAX_QUERY_BYTES {
        return Err(SearchError::QueryTooLong { len: input.len(), max: MAX_QUERY_BYTES });
    }
    let mut p = Parser { src: input, pos: 0, terms: 0 };
    p.skip_ws();
    if p.at_end() {
        return Err(p.err("empty search"));
    }
    let expr = p.expr(0)?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.err("unexpected `)`"));
    }
    Ok(expr)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    terms: usize,
}

/// How many runs of alphanumeric characters `text` holds: the most words
/// the analyser can make of it.
fn word_runs(text: &str) -> usize {
    let mut runs = 0;
    let mut inside = false;
    for c in text.chars() {
        let alnum = c.is_alphanumeric();
        if alnum && !inside {
            runs += 1;
        }
        inside = alnum;
    }
    runs
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '"' | '*' | '~')
}

impl Parser<'_> {
    fn err(&self, message: &str) -> SearchError {
        SearchError::Parse { position: self.pos, message: message.to_string() }
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    /// Whether the next token is the keyword `kw` (followed by a non-word char).
    fn keyword(&self, kw: &str) -> bool {
        self.rest().starts_with(kw) && self.rest()[kw.len()..].chars().next().is_none_or(|c| !is_word_char(c))
    }

    /// Counts the words `text` analyses into (at most its runs of
    /// alphanumeric characters, which is how the tokenizer splits; at
    /// least one).
    fn count_term(&mut self, text: &str) -> Result<()> {
        self.terms += word_runs(text).max(1);
        if self.terms > MAX_QUERY_TERMS {
            return Err(SearchError::TooManyTerms { max: MAX_QUERY_TERMS });
        }
        Ok(())
    }

    fn expr(&mut self, depth: usize) -> Result<SearchExpr> {
        if depth > MAX_QUERY_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        let mut parts = vec![self.and(depth)?];
        loop {
            self.skip_ws();
            if self.keyword("OR") {
                self.pos += 2;
                self.skip_ws();
                if self.at_end() || self.peek() == Some(')') {
                    return Err(self.err("`OR` needs a right-hand side"));
                }
                parts.push(self.and(depth)?);
            } else {
                break;
            }
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { SearchExpr::Or(parts) })
    }

    fn and(&mut self, depth: usize) -> Result<SearchExpr> {
        let mut parts = vec![self.unary(depth)?];
        loop {
            self.skip_ws();
            if self.at_end() || self.peek() == Some(')') || self.keyword("OR") {
                break;
            }
            if self.keyword("AND") {
                self.pos += 3;
                self.skip_ws();
                if self.at_end() || self.peek() == Some(')') {
                    return Err(self.err("`AND` needs a right-hand side"));
                }
            }
            parts.push(self.unary(depth)?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { SearchExpr::And(parts) })
    }

    fn unary(&mut self, depth: usize) -> Result<SearchExpr> {
        if depth > MAX_QUERY_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.skip_ws();
        if self.peek() == Some('-') || self.keyword("NOT") {
            self.pos += if self.peek() == Some('-') { 1 } else { 3 };
            self.skip_ws();
            if self.at_end() {
                return Err(self.err("negation needs something to negate"));
            }
            return Ok(SearchExpr::Not(Box::new(self.unary(depth + 1)?)));
        }
        self.atom(depth)
    }

    fn atom(&mut self, depth: usize) -> Result<SearchExpr> {
        if self.keyword("AND") || self.keyword("OR") {
            return Err(self.err("expected a word, a phrase or `(` before an operator"));
        }
        match self.peek() {
            None => Err(self.err("expected a word, a phrase or `(`")),
            Some('(') => {
                let open = self.pos;
                self.pos += 1;
                self.skip_ws();
                if self.peek() == Some(')') {
                    return Err(self.err("empty parentheses"));
                }
                let inner = self.expr(depth + 1)?;
                self.skip_ws();
                if self.peek() != Some(')') {
                    return Err(SearchError::Parse { position: open, message: "unclosed `(`".into() });
                }
                self.pos += 1;
                Ok(inner)
            }
            Some('"') => {
                let open = self.pos;
                self.pos += 1;
                let Some(len) = self.rest().find('"') else {
                    return Err(SearchError::Parse { position: open, message: "unclosed `\"`".into() });
                };
                let body = &self.src[self.pos..self.pos + len];
                let words: Vec<String> = body.split_whitespace().map(str::to_string).collect();
                self.pos += len + 1;
                for w in &words {
                    self.count_term(w)?;
                }
                match words.len() {
                    0 => Err(SearchError::Parse { position: open, message: "empty phrase".into() }),
                    1 => Ok(SearchExpr::Term(words.into_iter().next().unwrap_or_default())),
                    _ => Ok(SearchExpr::Phrase(words)),
                }
            }
            Some(c) if is_word_char(c) => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if !is_word_char(c) {
                        break;
                    }
                    self.pos += c.len_utf8();
                }
                let word = self.src[start..self.pos].to_string();
                self.count_term(&word)?;
                let expr = match self.peek() {
                    Some('*') => {
                        self.pos += 1;
                        SearchExpr::Prefix(word)
                    }
                    Some('~') => {
                        self.pos += 1;
                        let distance = match self.peek() {
                            Some(d @ ('1' | '2')) => {
                                self.pos += 1;
                                if d == '1' {
                                    1
                                } else {
                                    2
                                }
                            }
                            Some(c) if c.is_ascii_digit() => return Err(self.err("fuzzy distance must be 1 or 2")),
                            _ => 1,
                        };
                        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                            return Err(self.err("fuzzy distance must be 1 or 2"));
                        }
                        SearchExpr::Fuzzy(word, distance)
                    }
                    _ => return Ok(SearchExpr::Term(word)),
                };
                // `*` and `~N` end a word: `foo*bar` or `a~1b` is a mistake,
                // not two words.
                match self.peek() {
                    Some(c) if !c.is_whitespace() && !matches!(c, ')' | '"') => {
                        Err(self.err(&format!("unexpected `{c}` after `*` or `~`")))
                    }
                    _ => Ok(expr),
                }
            }
            Some(c) => Err(self.err(&format!("unexpected `{c}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let e = parse("quick brown fx~").expect("parses");
        assert_eq!(
            e,
            SearchExpr::And(vec![
                SearchExpr::Term("quick".into()),
                SearchExpr::Term("brown".into()),
                SearchExpr::Fuzzy("fx".into(), 1)
            ])
        );
        assert_eq!(
            parse("\"a b\" OR c* -d~2").expect("parses"),
            SearchExpr::Or(vec![
                SearchExpr::Phrase(vec!["a".into(), "b".into()]),
                SearchExpr::And(vec![
                    SearchExpr::Prefix("c".into()),
                    SearchExpr::Not(Box::new(SearchExpr::Fuzzy("d".into(), 2)))
                ])
            ])
        );
    }

    #[test]
    fn errors_have_positions() {
        match parse("good (bad") {
            Err(SearchError::Parse { position, .. }) => assert_eq!(position, 5),
            other => panic!("{other:?}"),
        }
        match parse("a \"open") {
            Err(SearchError::Parse { position, .. }) => assert_eq!(position, 2),
            other => panic!("{other:?}"),
        }
        match parse("a~3") {
            Err(SearchError::Parse { position, .. }) => assert_eq!(position, 2),
            other => panic!("{other:?}"),
        }
        match parse("a )") {
            Err(SearchError::Parse { position, .. }) => assert_eq!(position, 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse("a OR"), Err(SearchError::Parse { position: 4, .. })));
        assert!(matches!(parse("   "), Err(SearchError::Parse { .. })));
    }

    #[test]
    fn bounds() {
        assert!(matches!(parse(&"a ".repeat(3000)), Err(SearchError::QueryTooLong { .. })));
        assert!(matches!(parse(&"a ".repeat(65)), Err(SearchError::TooManyTerms { max: 64 })));
        assert!(matches!(parse(&format!("{}a{}", "(".repeat(40), ")".repeat(40))), Err(SearchError::Parse { .. })));
        assert!(parse(&"a ".repeat(64)).is_ok());
    }
}
