//! [`DocId`]: the identity of a document within its collection.

use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// Longest caller-chosen text id, in bytes.
pub const MAX_TEXT_ID_LEN: usize = 512;

/// A document id: a UUID (v7, time-ordered, by default) or a caller-chosen
/// string.
///
/// Ids have a byte encoding ([`DocId::to_key_bytes`]) whose order matches
/// [`Ord`]: UUID ids sort before text ids, UUIDs by their bytes (so v7 ids
/// sort by creation time), text ids by their UTF-8 bytes.
///
/// ```
/// use aurora_core::DocId;
/// let a = DocId::new();
/// let b = DocId::new();
/// assert!(a < b, "v7 ids are time-ordered");
/// let named = DocId::parse("user-42").unwrap();
/// assert_eq!(named.to_string(), "user-42");
/// assert_eq!(DocId::from_key_bytes(&named.to_key_bytes()).unwrap(), named);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "DocIdRepr")]
pub enum DocId {
    /// A UUID id; [`DocId::new`] makes a v7 one.
    Uuid(Uuid),
    /// A caller-chosen text id (non-empty, at most 512 bytes, no NUL),
    /// made by [`DocId::text`] or [`DocId::parse`]: an invalid one cannot
    /// be built.
    Text(TextId),
}

/// The text of a [`DocId::Text`], checked when it was made (non-empty, at
/// most [`MAX_TEXT_ID_LEN`] bytes, no NUL); reads as a `&str`. Its serde
/// form is the plain string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TextId(Arc<str>);

impl TextId {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for TextId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TextId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TextId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for TextId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl DocId {
    /// A fresh, time-ordered UUID v7 id.
    pub fn new() -> Self {
        DocId::Uuid(Uuid::now_v7())
    }

    /// The UUID `s` spells in its canonical form (lower-case, hyphenated,
    /// as ids are written), if it does: the one text that [`DocId::parse`]
    /// reads as a UUID id — any other spelling (upper case, no hyphens,
    /// braces) is a text id, so a text id always reads back as written.
    pub fn canonical_uuid(s: &str) -> Option<Uuid> {
        Uuid::try_parse(s).ok().filter(|u| u.hyphenated().to_string() == s)
    }

    /// Parses an id: a UUID in its canonical spelling
    /// ([`DocId::canonical_uuid`]) becomes a UUID id, any other valid string
    /// a text id (kept exactly as written).
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        if let Some(u) = Self::canonical_uuid(s) {
            return Ok(DocId::Uuid(u));
        }
        Self::text(s)
    }

    /// The id as a value, as filters compare it (a filter on the field
    /// `_id`, see [`Filter`](crate::Filter)): a UUID id is a
    /// [`Value::Uuid`](crate::Value::Uuid), a text id a
    /// [`Value::String`](crate::Value::String).
    pub fn to_value(&self) -> crate::Value {
        match self {
            DocId::Uuid(u) => crate::Value::Uuid(*u),
            DocId::Text(s) => crate::Value::String(s.to_string()),
        }
    }

    /// This id as one unambiguous text, for places that take text only —
    /// a URL path segment (`/documents/{id}` of `aurora serve`): a UUID id
    /// as its canonical text, a text id as it is — except that a text id
    /// that reads as a canonical UUID, or that starts with `~`, gets a `~`
    /// in front. [`DocId::from_path_segment`] reads it back.
    ///
    /// ```
    /// use aurora_core::DocId;
    /// let uuid = DocId::parse("0190a6b2-0000-7000-8000-000000000002").unwrap();
    /// let text = DocId::text("0190a6b2-0000-7000-8000-000000000002").unwrap();
    /// assert_eq!(uuid.to_path_segment(), "0190a6b2-0000-7000-8000-000000000002");
    /// assert_eq!(text.to_path_segment(), "~0190a6b2-0000-7000-8000-000000000002");
    /// assert_eq!(DocId::text("~home").unwrap().to_path_segment(), "~~home");
    /// assert_eq!(DocId::text("o1").unwrap().to_path_segment(), "o1");
    /// for id in [uuid, text, DocId::text("~home").unwrap(), DocId::text("o1").unwrap()] {
    ///     assert_eq!(DocId::from_path_segment(&id.to_path_segment()).unwrap(), id);
    /// }
    /// ```
    pub fn to_path_segment(&self) -> String {
        match self {
            DocId::Uuid(u) => u.hyphenated().to_string(),
            DocId::Text(s) if s.starts_with('~') || Self::canonical_uuid(s).is_some() => format!("~{s}"),
            DocId::Text(s) => s.to_string(),
        }
    }

    /// Reads [`DocId::to_path_segment`]: a text starting with `~` is the
    /// text id that follows the `~`; any other is read by [`DocId::parse`]
    /// (a canonical UUID is a UUID id, the rest a text id).
    pub fn from_path_segment(s: &str) -> Result<Self, CoreError> {
        match s.strip_prefix('~') {
            Some(text) => Self::text(text),
            None => Self::parse(s),
        }
    }

    /// Checks a text id's rules (non-empty, at most 512 bytes, no NUL).
    /// A [`TextId`] is checked when it is made, so this holds for every id;
    /// write paths still call it, as a statement of what they require.
    pub fn validate(&self) -> Result<(), CoreError> {
        match self {
            DocId::Uuid(_) => Ok(()),
            DocId::Text(s) => Self::text(s).map(drop),
        }
    }

    /// A text id, taken as given (even if it looks like a UUID).
    pub fn text(s: &str) -> Result<Self, CoreError> {
        let reason = if s.is_empty() {
            Some("must not be empty")
        } else if s.len() > MAX_TEXT_ID_LEN {
            Some("longer than 512 bytes")
        } else if s.contains('\0') {
            Some("contains a NUL character")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CoreError::InvalidDocId { id: s.chars().take(64).collect(), reason }),
            None => Ok(DocId::Text(TextId(Arc::from(s)))),
        }
    }

    /// The order-preserving byte encoding used in storage keys.
    pub fn to_key_bytes(&self) -> Vec<u8> {
        let mut out = vec![0; self.key_len()];
        self.write_key_bytes(&mut out);
        out
    }

    /// Length of [`DocId::to_key_bytes`].
    pub fn key_len(&self) -> usize {
        match self {
            DocId::Uuid(_) => 17,
            DocId::Text(s) => 1 + s.len(),
        }
    }

    /// Writes [`DocId::to_key_bytes`] into the front of `out` (which must
    /// hold at least [`DocId::key_len`] bytes) and returns the length.
    pub fn write_key_bytes(&self, out: &mut [u8]) -> usize {
        let (tag, body): (u8, &[u8]) = match self {
            DocId::Uuid(u) => (1, u.as_bytes()),
            DocId::Text(s) => (2, s.as_bytes()),
        };
        out[0] = tag;
        out[1..=body.len()].copy_from_slice(body);
        1 + body.len()
    }

    /// Decodes [`DocId::to_key_bytes`].
    pub fn from_key_bytes(bytes: &[u8]) -> Result<Self, CoreError> {
        let bad = |reason| CoreError::InvalidDocId { id: format!("{bytes:02x?}"), reason };
        match bytes.split_first() {
            Some((1, rest)) => Uuid::from_slice(rest).map(DocId::Uuid).map_err(|_| bad("uuid key is not 16 bytes")),
            Some((2, rest)) => {
                let s = std::str::from_utf8(rest).map_err(|_| bad("text key is not UTF-8"))?;
                Self::text(s)
            }
            _ => Err(bad("unknown id tag")),
        }
    }

    /// Checks that `bytes` are the [`DocId::to_key_bytes`] of some id —
    /// exactly when [`DocId::from_key_bytes`] would succeed — without
    /// building the id (no allocation): for readers that only pass the
    /// bytes on, such as an index read fetching its documents by key.
    ///
    /// ```
    /// use aurora_core::DocId;
    /// let id = DocId::text("user-1")?;
    /// assert!(DocId::check_key_bytes(&id.to_key_bytes()).is_ok());
    /// assert!(DocId::check_key_bytes(&[2]).is_err(), "an empty text id");
    /// assert!(DocId::check_key_bytes(&[9, 1]).is_err(), "an unknown tag");
    /// # Ok::<(), aurora_core::CoreError>(())
    /// ```
    ///
    /// # Errors
    /// [`CoreError::InvalidDocId`], as `from_key_bytes` gives it.
    pub fn check_key_bytes(bytes: &[u8]) -> Result<(), CoreError> {
        let fine = match bytes.split_first() {
            Some((1, rest)) => rest.len() == 16,
            Some((2, rest)) => {
                // ASCII (the common case) is UTF-8: checked without the
                // general decoder.
                !rest.is_empty()
                    && rest.len() <= MAX_TEXT_ID_LEN
                    && !rest.contains(&0)
                    && (rest.is_ascii() || std::str::from_utf8(rest).is_ok())
            }
            _ => false,
        };
        if fine {
            Ok(())
        } else {
            // The slow path names the reason exactly as decoding does.
            Self::from_key_bytes(bytes).map(drop)
        }
    }
}

impl Default for DocId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for DocId {
    fn from(u: Uuid) -> Self {
        DocId::Uuid(u)
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Uuid(u) => u.fmt(f),
            DocId::Text(s) => f.write_str(s),
        }
    }
}

impl std::str::FromStr for DocId {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_text_ids() {
        assert!(DocId::text("").is_err());
        assert!(DocId::text("a\0b").is_err());
        assert!(DocId::text(&"x".repeat(513)).is_err());
        assert!(DocId::from_key_bytes(&[9, 1]).is_err());
        assert!(DocId::from_key_bytes(&[1, 1, 2]).is_err());
    }

    proptest! {
        /// Checking key bytes agrees with decoding them, on any bytes
        /// (mostly tags 1 and 2, short bodies, NULs and broken UTF-8).
        #[test]
        fn checking_key_bytes_agrees_with_decoding(
            tag in prop_oneof![Just(1u8), Just(2u8), any::<u8>()],
            body in proptest::collection::vec(prop_oneof![Just(0u8), Just(0xffu8), 0x20u8..0x7f, any::<u8>()], 0..20),
            long in any::<bool>(),
        ) {
            let mut bytes = vec![tag];
            bytes.extend_from_slice(&body);
            if long {
                bytes.extend(std::iter::repeat_n(b'x', MAX_TEXT_ID_LEN));
            }
            prop_assert_eq!(DocId::check_key_bytes(&bytes).is_ok(), DocId::from_key_bytes(&bytes).is_ok());
            prop_assert!(DocId::check_key_bytes(&[]).is_err());
        }

        #[test]
        fn key_bytes_preserve_order(a in "[a-z0-9-]{1,20}", b in "[a-z0-9-]{1,20}", ua: u128, ub: u128) {
            let ids = [
                DocId::text(&a).unwrap(), DocId::text(&b).unwrap(),
                DocId::Uuid(Uuid::from_u128(ua)), DocId::Uuid(Uuid::from_u128(ub)),
            ];
            for x in &ids {
                prop_assert_eq!(&DocId::from_key_bytes(&x.to_key_bytes()).unwrap(), x);
                for y in &ids {
                    prop_assert_eq!(x.cmp(y), x.to_key_bytes().cmp(&y.to_key_bytes()));
                }
            }
        }
    }
}

/// The derived decoding of [`DocId`]; decoding then checks the text rules,
/// so an invalid id cannot be made by deserializing either.
#[derive(Deserialize)]
#[serde(rename = "DocId")]
enum DocIdRepr {
    Uuid(Uuid),
    Text(Arc<str>),
}

impl TryFrom<DocIdRepr> for DocId {
    type Error = CoreError;

    fn try_from(repr: DocIdRepr) -> Result<Self, CoreError> {
        match repr {
            DocIdRepr::Uuid(u) => Ok(DocId::Uuid(u)),
            DocIdRepr::Text(s) => DocId::text(&s),
        }
    }
}
