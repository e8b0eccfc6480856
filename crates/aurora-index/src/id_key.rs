//! [`IdKey`]: a document id as its storage key bytes — what an index
//! entry ends with, passed on to fetch the document without building a
//! [`DocId`] (whose text form is an allocation of its own).

use aurora_core::{CoreError, DocId};

/// A document id as its key bytes ([`DocId::to_key_bytes`]), checked to be
/// a valid id's. Orders exactly as the ids do (the key bytes preserve
/// their order), so sorting and intersecting index reads works on these
/// as on ids.
///
/// ```
/// use aurora_core::DocId;
/// use aurora_index::IdKey;
/// let (a, b) = (DocId::text("a")?, DocId::text("b")?);
/// let (ka, kb) = (IdKey::of(&a), IdKey::of(&b));
/// assert!(ka < kb);
/// assert_eq!(ka.to_id()?, a);
/// assert_eq!(ka.as_bytes(), a.to_key_bytes().as_slice());
/// # Ok::<(), aurora_core::CoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdKey(Vec<u8>);

impl IdKey {
    /// The key bytes of `id`.
    pub fn of(id: &DocId) -> Self {
        Self(id.to_key_bytes())
    }

    /// Takes `bytes` as an id's key bytes after checking them
    /// ([`DocId::check_key_bytes`]).
    ///
    /// # Errors
    /// [`CoreError::InvalidDocId`] when they are no id's.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, CoreError> {
        DocId::check_key_bytes(&bytes)?;
        Ok(Self(bytes))
    }

    /// Bytes already checked (by the index read that found them).
    pub(crate) fn checked(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The id.
    ///
    /// # Errors
    /// None in practice (the bytes were checked when made); typed as
    /// [`DocId::from_key_bytes`] is.
    pub fn to_id(&self) -> Result<DocId, CoreError> {
        DocId::from_key_bytes(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn orders_as_ids_and_refuses_what_is_no_id() {
        let mut ids = vec![
            DocId::text("b").unwrap(),
            DocId::text("a").unwrap(),
            DocId::new(),
            DocId::text("aa").unwrap(),
            DocId::new(),
        ];
        let mut keys: Vec<IdKey> = ids.iter().map(IdKey::of).collect();
        ids.sort();
        keys.sort();
        assert_eq!(keys.iter().map(|k| k.to_id().unwrap()).collect::<Vec<_>>(), ids);
        assert!(IdKey::from_bytes(vec![2]).is_err(), "an empty text id");
        assert!(IdKey::from_bytes(vec![2, b'a', 0]).is_err(), "a NUL");
        assert!(IdKey::from_bytes(vec![1, 1, 2]).is_err(), "a short UUID");
        assert_eq!(IdKey::from_bytes(vec![2, b'a']).unwrap(), IdKey::of(&DocId::text("a").unwrap()));
    }
}
