//! [`Document`]: an id plus named fields.

use crate::{CoreError, DocId, Fields, Value};
use serde::{Deserialize, Serialize};

/// A document: an id plus named fields.
///
/// Build one with [`doc!`](crate::doc), from a map, or from any serde type
/// with [`Document::from_serde`]; read it back into a struct with
/// [`Document::decode`].
///
/// ```
/// use aurora_core::{doc, Document};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct User { name: String, age: u32 }
///
/// let user = User { name: "Alice".into(), age: 30 };
/// let d = Document::from_serde(&user).unwrap();
/// assert_eq!(d.get("name").and_then(|v| v.as_str()), Some("Alice"));
/// assert_eq!(d.decode::<User>().unwrap(), user);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Document {
    /// The document's id.
    pub id: DocId,
    /// The document's fields, ordered by name.
    pub fields: Fields,
}

impl Document {
    /// An empty document with a fresh id.
    pub fn new() -> Self {
        Self::with_id(DocId::new())
    }

    /// An empty document with the given id.
    pub fn with_id(id: DocId) -> Self {
        Self { id, fields: Fields::new() }
    }

    /// A document with a fresh id whose fields are those of `value`, which
    /// must serialize to a map (a struct, a map, `serde_json::json!({..})`).
    pub fn from_serde<T: Serialize + ?Sized>(value: &T) -> Result<Self, CoreError> {
        match Value::from_serde(value)? {
            Value::Object(fields) => Ok(Self { id: DocId::new(), fields }),
            other => Err(CoreError::Conversion(format!(
                "a document must be built from a map or struct, got {}",
                other.type_name()
            ))),
        }
    }

    /// Decodes the fields into a `Deserialize` type (the id is not included;
    /// see [`Document::decode_with_id`]).
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, CoreError> {
        crate::serde_bridge::de::from_fields(&self.fields).map_err(|source| CoreError::Serde {
            what: format!("document {} into {}", self.id, std::any::type_name::<T>()),
            source,
        })
    }

    /// Like [`Document::decode`], with the id added as the string field `id_field`.
    pub fn decode_with_id<T: serde::de::DeserializeOwned>(&self, id_field: &str) -> Result<T, CoreError> {
        let mut d = self.clone();
        d.fields.insert(id_field.to_string(), Value::String(self.id.to_string()));
        d.decode()
    }

    /// Replaces the id, returning the document (builder style).
    pub fn id(mut self, id: DocId) -> Self {
        self.id = id;
        self
    }

    /// The top-level field `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// Follows a dotted path (`"address.city"`, `"tags.0"`).
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        let (head, rest) = path.split_once('.').unwrap_or((path, ""));
        self.fields.get(head)?.get_path(rest)
    }

    /// [`Document::get_path`], except that the path `_id` is the
    /// document's id ([`DocId::to_value`](crate::DocId::to_value), made once
    /// into `id` when first asked for) — what filters see.
    pub fn get_path_or_id<'a>(&'a self, path: &str, id: &'a std::cell::OnceCell<Value>) -> Option<&'a Value> {
        if path == crate::json::ID_FIELD {
            return Some(id.get_or_init(|| self.id.to_value()));
        }
        self.get_path(path)
    }

    /// Follows a dotted path to a value that can be changed in place.
    pub fn get_path_mut(&mut self, path: &str) -> Option<&mut Value> {
        let (head, rest) = path.split_once('.').unwrap_or((path, ""));
        let mut v = self.fields.get_mut(head)?;
        for part in rest.split('.').filter(|p| !p.is_empty()) {
            v = match v {
                Value::Object(o) => o.get_mut(part)?,
                Value::Array(a) => a.get_mut(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// Sets the top-level field `name`, returning the previous value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.fields.insert(name.into(), value.into())
    }

    /// Removes the top-level field `name`.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name)
    }

    /// An estimate of the bytes this document occupies in memory when
    /// shared (`Arc<Document>`, as the hot cache holds it): the shared block,
    /// a text id's heap block, and the fields' B-tree nodes and heap blocks
    /// as the allocator hands them out (see [`Value::approx_size`]).
    pub fn approx_size(&self) -> usize {
        let id = match &self.id {
            DocId::Uuid(_) => 0,
            DocId::Text(s) => crate::value::heap_block(2 * std::mem::size_of::<usize>() + s.len()),
        };
        crate::value::heap_block(2 * std::mem::size_of::<usize>() + std::mem::size_of::<Self>())
            + id
            + crate::value::map_bytes(&self.fields)
    }
}

impl From<Fields> for Document {
    fn from(fields: Fields) -> Self {
        Self { id: DocId::new(), fields }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc;

    #[test]
    fn from_serde_rejects_non_maps() {
        assert!(Document::from_serde(&5).is_err());
        assert!(Document::from_serde(&vec![1, 2]).is_err());
    }

    #[test]
    fn decode_reports_the_document() {
        let d = doc! { "age": "not a number" };
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            age: u32,
        }
        let err = d.decode::<T>().unwrap_err().to_string();
        assert!(err.contains(&d.id.to_string()), "{err}");
    }

    #[test]
    fn paths_reach_nested_fields() {
        let d = doc! { "address": { "city": "Oslo", "zip": [1, 2] } };
        assert_eq!(d.get_path("address.city"), Some(&Value::from("Oslo")));
        assert_eq!(d.get_path("address.zip.1"), Some(&Value::Int(2)));
        assert_eq!(d.get_path("address.nope"), None);
        assert_eq!(d.get_path("address.city.x"), None);
    }

    #[test]
    fn postcard_round_trip_keeps_types() {
        let d = doc! { "i": 1, "f": 1.0, "u": uuid::Uuid::nil(), "b": Value::bytes(vec![1u8, 2]),
        "t": crate::Timestamp::from_micros(5), "n": null };
        let bytes = postcard::to_allocvec(&d).unwrap();
        let back: Document = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, d);
        assert!(matches!(back.get("f"), Some(Value::Float(_))));
        assert!(matches!(back.get("u"), Some(Value::Uuid(_))));
    }

    /// Issue 17: the hot cache's limit is only as good as this estimate. A
    /// small document's fields live in one B-tree leaf with room for 11
    /// entries, and every string is a heap block of 32 bytes at least; the
    /// old estimate (about a third of the real cost, measured 348 against
    /// 984 bytes) counted neither.
    #[test]
    fn approx_size_counts_the_btree_node_and_heap_blocks() {
        let d = doc! { "name": "user-1", "email": "user-1@example.com", "age": 31, "active": true };
        let entry = std::mem::size_of::<String>() + std::mem::size_of::<Value>();
        let leaf = 16 + 11 * entry;
        let strings = 6 * 32; // four keys, two string values: 32 bytes each at least
        let arc = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Document>();
        let floor = leaf + strings + arc;
        assert!(d.approx_size() >= floor, "{} < {floor}", d.approx_size());
        assert!(d.approx_size() <= floor + floor / 4, "{} is far above {floor}", d.approx_size());
        let mut big = Document::new();
        for i in 0..100 {
            big.set(format!("f{i}"), i);
        }
        assert!(big.approx_size() >= 100_usize.div_ceil(11) * leaf, "one leaf per 11 fields at least");
    }
}
