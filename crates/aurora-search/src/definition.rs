//! [`SearchDefinition`]: which fields of a collection are searchable, how
//! they are analysed, and how much each counts; kept as `definition.json`
//! in the index folder.

use crate::error::{Result, SearchError};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use tantivy::tokenizer::Language;

/// Name of the definition file inside an index folder.
pub const DEFINITION_FILE: &str = "definition.json";
/// Most fields one search index covers.
pub const MAX_SEARCH_FIELDS: usize = 32;

/// One searchable field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchField {
    /// The field's path in the document (`"body"`, `"meta.title"`). A
    /// string is indexed; an array indexes its strings; other values are
    /// skipped.
    pub name: String,
    /// How much a match in this field counts relative to others (finite,
    /// > 0; 1.0 is neutral).
    pub boost: f32,
}

/// How the text of every field is analysed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SearchOptions {
    /// Stemming language; `None` (the default) only splits on
    /// non-alphanumeric characters and lowercases, so matches are whole
    /// words, case-insensitively.
    pub language: Option<Language>,
    /// Remove the language's stop words ("the", "and", …); only with a
    /// language.
    pub stop_words: bool,
    /// Per-field boosts by field name; fields not named count 1.0.
    pub boosts: Vec<(String, f32)>,
}

impl SearchOptions {
    /// English stemming (`"running"` finds `"run"`), no stop words.
    pub fn english() -> Self {
        Self { language: Some(Language::English), ..Self::default() }
    }

    /// With a stemming language.
    pub fn language(mut self, language: Language) -> Self {
        self.language = Some(language);
        self
    }

    /// With a boost for one field (finite, > 0).
    pub fn boost(mut self, field: &str, boost: f32) -> Self {
        self.boosts.push((field.to_string(), boost));
        self
    }
}

/// A search index's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchDefinition {
    /// The collection it follows.
    pub collection: String,
    /// The fields, in declaration order.
    pub fields: Vec<SearchField>,
    /// Analysis.
    pub language: Option<Language>,
    /// Whether stop words are removed.
    pub stop_words: bool,
}

impl SearchDefinition {
    /// Builds and validates a definition.
    ///
    /// # Errors
    /// [`SearchError::Definition`]: no field, more than
    /// [`MAX_SEARCH_FIELDS`], an empty or repeated field name, a boost for a
    /// field not listed, a boost not finite and > 0.
    pub fn new<S: AsRef<str>>(
        collection: &str,
        fields: impl IntoIterator<Item = S>,
        options: &SearchOptions,
    ) -> Result<Self> {
        let mut out: Vec<SearchField> = Vec::new();
        for f in fields {
            let name = f.as_ref();
            if name.is_empty() {
                return Err(SearchError::Definition("a field name is empty".into()));
            }
            if out.iter().any(|o| o.name == name) {
                return Err(SearchError::Definition(format!("field `{name}` is listed twice")));
            }
            out.push(SearchField { name: name.to_string(), boost: 1.0 });
        }
        if out.is_empty() {
            return Err(SearchError::Definition("a search index needs at least one field".into()));
        }
        if out.len() > MAX_SEARCH_FIELDS {
            return Err(SearchError::Definition(format!(
                "{} fields, more than the {MAX_SEARCH_FIELDS} allowed",
                out.len()
            )));
        }
        for (name, boost) in &options.boosts {
            if !boost.is_finite() || *boost <= 0.0 {
                return Err(SearchError::Definition(format!("boost {boost} of `{name}` must be finite and > 0")));
            }
            match out.iter_mut().find(|f| &f.name == name) {
                Some(f) => f.boost = *boost,
                None => return Err(SearchError::Definition(format!("boost for `{name}`, which is not indexed"))),
            }
        }
        Ok(Self {
            collection: collection.to_string(),
            fields: out,
            language: options.language,
            stop_words: options.stop_words,
        })
    }

    /// Writes `definition.json` into `dir` (atomically: a temporary file
    /// renamed over it).
    ///
    /// # Errors
    /// [`SearchError::DefinitionFile`] on I/O failure.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(DEFINITION_FILE);
        let file_err = |message: String| SearchError::DefinitionFile { path: path.display().to_string(), message };
        let json = serde_json::to_vec_pretty(self).map_err(|e| file_err(e.to_string()))?;
        let tmp = dir.join(format!("{DEFINITION_FILE}.tmp"));
        std::fs::write(&tmp, json).map_err(|e| file_err(e.to_string()))?;
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| file_err(e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| file_err(e.to_string()))
    }

    /// Reads `definition.json` from `dir`; `Ok(None)` if there is none.
    ///
    /// # Errors
    /// [`SearchError::DefinitionFile`] if it cannot be read or parsed.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(DEFINITION_FILE);
        let file_err = |message: String| SearchError::DefinitionFile { path: path.display().to_string(), message };
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| file_err(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(file_err(e.to_string())),
        }
    }
}
