//! [`Hint`]: a per-query override of the planner's choice of access path.

use serde::{Deserialize, Serialize};

/// Which access path a query may use ([`Query::hint`](crate::Query::hint)).
/// Hints change speed, never results: the whole filter is still applied to
/// every candidate.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Hint {
    /// The planner chooses (the default): index reads whose candidates stay
    /// under the scan threshold (see `docs/querying.md`), compound and
    /// ordered walks, or a scan.
    #[default]
    Auto,
    /// Read every document of the collection; use no index.
    Scan,
    /// Use only this index — a field path, or the fields of a compound
    /// index in index order — whatever the statistics say. A query whose
    /// filter and order cannot use it is refused with
    /// [`QueryError::UnusableHint`](crate::QueryError::UnusableHint).
    Index(Vec<String>),
}

impl Hint {
    /// A hint to use the index on `field`.
    pub fn index(field: &str) -> Self {
        Hint::Index(vec![field.to_string()])
    }

    /// A hint to use the compound index over `fields`.
    pub fn compound<S: Into<String>>(fields: impl IntoIterator<Item = S>) -> Self {
        Hint::Index(fields.into_iter().map(Into::into).collect())
    }

    /// Whether the index called `name` (a catalog name, see
    /// `aurora_index::compound`) may be used.
    pub(crate) fn allows(&self, name: &str) -> bool {
        match self {
            Hint::Auto => true,
            Hint::Scan => false,
            Hint::Index(fields) => aurora_index::compound::compound_name(fields) == name,
        }
    }
}
