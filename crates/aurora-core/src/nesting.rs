//! Nesting limits: how deep a value may nest, checked where values enter
//! and enforced where they are decoded, so that no value — whatever wrote
//! it — can overflow the stack of the code that clones, compares, encodes,
//! decodes or drops it.
//!
//! The limit is [`MAX_NESTING_DEPTH`] = 100 levels, MongoDB's limit for
//! nested documents (its "Nested Depth for BSON Documents"): deep enough for
//! any real document, shallow enough that every recursive walk of a value
//! stays far inside a 2 MiB thread stack (tokio's worker default).

use crate::{CoreError, Document, Value};
use std::cell::Cell;

/// Most levels of arrays and objects a value may nest, counting the
/// document's own fields as level 1: `{ "a": 1 }` has depth 1,
/// `{ "a": [1] }` depth 2, `{ "a": { "b": [1] } }` depth 3.
pub const MAX_NESTING_DEPTH: usize = 100;

/// Most levels the decoder accepts: the entry limit plus headroom for
/// containers stored around documents (change-feed entries hold documents
/// inside their own structures). Decoding deeper is an error, never a stack
/// overflow.
pub const MAX_DECODE_DEPTH: usize = MAX_NESTING_DEPTH + 28;

impl Value {
    /// Levels of nesting: 0 for a scalar, 1 for an array or object of
    /// scalars (an empty one too), and so on. Stops counting past `limit`
    /// (returns `limit + 1`), so it is safe on any value that was built at
    /// all, and costs at most `limit` levels of recursion.
    pub fn nesting_depth(&self, limit: usize) -> usize {
        fn walk(v: &Value, left: usize) -> usize {
            let children: Box<dyn Iterator<Item = &Value>> = match v {
                Value::Array(items) => Box::new(items.iter()),
                Value::Object(fields) => Box::new(fields.values()),
                _ => return 0,
            };
            if left == 0 {
                return 1;
            }
            1 + children.map(|c| walk(c, left - 1)).max().unwrap_or(0)
        }
        walk(self, limit).min(limit + 1)
    }
}

impl Document {
    /// Checks what every write path requires of a document: a valid id
    /// ([`DocId::validate`](crate::DocId::validate)), top-level field names
    /// that follow [`names::validate_field_name`](crate::names::validate_field_name), and at most
    /// [`MAX_NESTING_DEPTH`] levels of nesting
    /// ([`CoreError::TooDeep`] names the field).
    pub fn validate(&self) -> Result<(), CoreError> {
        self.id.validate()?;
        validate_fields(&self.fields)
    }
}

/// The checks of [`Document::validate`] on fields alone (a patch): each
/// top-level name follows [`names::validate_field_name`](crate::names::validate_field_name)
/// and each value nests at most [`MAX_NESTING_DEPTH`] levels. Call it
/// before copying fields: a copy of a value nested past the stack's depth
/// would overflow it.
pub fn validate_fields(fields: &crate::Fields) -> Result<(), CoreError> {
    for (name, value) in fields {
        crate::names::validate_field_name(name)?;
        if 1 + value.nesting_depth(MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH {
            return Err(CoreError::TooDeep { field: crate::error::bounded(name), limit: MAX_NESTING_DEPTH });
        }
    }
    Ok(())
}

/// Drops documents without recursion (see [`dispose`]): what is left of a
/// batch after one of its documents was refused.
pub fn dispose_all(docs: impl IntoIterator<Item = Document>) {
    for d in docs {
        dispose_document(d);
    }
}

/// Drops a value without recursion: a value nested deeper than the stack
/// can hold (which callers can build) is taken apart level by level on the
/// heap. Used where a refused value is dropped.
pub fn dispose(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(fields) => stack.extend(fields.into_values()),
            _ => {}
        }
    }
}

/// Drops a document without recursion (see [`dispose`]).
pub fn dispose_document(doc: Document) {
    dispose(Value::Object(doc.fields));
}

/// Drops an update's operands without recursion (see [`dispose`]): what
/// is left of an update after one of its values was refused.
pub fn dispose_update(update: crate::Update) {
    use crate::UpdateOp;
    for op in update.ops {
        match op {
            UpdateOp::Merge(fields) => dispose(Value::Object(fields)),
            UpdateOp::Set(_, v)
            | UpdateOp::SetIfAbsent(_, v)
            | UpdateOp::Increment(_, v)
            | UpdateOp::Push(_, v)
            | UpdateOp::Pull(_, v) => dispose(v),
            other => drop(other),
        }
    }
}

thread_local! {
    static DECODE_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// One level of recursive decoding (or conversion) on this thread: a
/// recursive `Deserialize` impl enters a level before it recurses and gives
/// up past [`MAX_DECODE_DEPTH`] levels instead of exhausting the stack,
/// whatever the input (a damaged file, a hostile peer). Used by [`Value`],
/// [`Filter`](crate::Filter), the serde bridge and `EventFilter`.
///
/// ```
/// use aurora_core::{DecodeLevel, MAX_DECODE_DEPTH};
/// let levels: Vec<_> = (0..MAX_DECODE_DEPTH).map_while(|_| DecodeLevel::enter()).collect();
/// assert_eq!(levels.len(), MAX_DECODE_DEPTH);
/// assert!(DecodeLevel::enter().is_none(), "one more is refused");
/// drop(levels);
/// assert!(DecodeLevel::enter().is_some(), "levels end with their guards");
/// ```
pub struct DecodeLevel;

impl DecodeLevel {
    /// Enters one more level; `None` when [`MAX_DECODE_DEPTH`] levels are
    /// already entered on this thread. The level ends when the guard drops.
    pub fn enter() -> Option<Self> {
        DECODE_DEPTH.with(|d| {
            if d.get() >= MAX_DECODE_DEPTH {
                None
            } else {
                d.set(d.get() + 1);
                Some(DecodeLevel)
            }
        })
    }
}

impl Drop for DecodeLevel {
    fn drop(&mut self) {
        DECODE_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc;

    fn nested(levels: usize) -> Value {
        let mut v = Value::Int(1);
        for i in 0..levels {
            v = if i % 2 == 0 { Value::Array(vec![v]) } else { Value::Object([("k".to_string(), v)].into()) };
        }
        v
    }

    #[test]
    fn depth_is_counted_and_bounded() {
        assert_eq!(Value::Int(1).nesting_depth(10), 0);
        assert_eq!(nested(3).nesting_depth(10), 3);
        assert_eq!(nested(50).nesting_depth(10), 11);
        assert!(doc! { "a": 1 }.validate().is_ok());
        let ok = Document { fields: [("a".to_string(), nested(MAX_NESTING_DEPTH - 1))].into(), ..Document::new() };
        assert!(ok.validate().is_ok());
        let deep = Document { fields: [("a".to_string(), nested(MAX_NESTING_DEPTH))].into(), ..Document::new() };
        assert!(matches!(deep.validate(), Err(CoreError::TooDeep { .. })));
    }

    #[test]
    fn very_deep_values_are_refused_decoded_safely_and_disposed_without_recursion() {
        let deep = nested(200_000);
        assert_eq!(deep.nesting_depth(MAX_NESTING_DEPTH), MAX_NESTING_DEPTH + 1);
        dispose(deep);
        // A stored value deeper than the decoder allows: an error, not a
        // stack overflow (the bytes are built by hand: encoding such a value
        // would itself recurse).
        let mut bytes = Vec::new();
        for _ in 0..100_000 {
            bytes.push(8); // variant index of Array
            bytes.push(1); // one element
        }
        bytes.push(2); // Int
        bytes.push(2); // zig-zag 1
        let err = postcard::from_bytes::<Value>(&bytes).unwrap_err();
        assert!(err.to_string().contains("nested") || !err.to_string().is_empty());
        let shallow = nested(MAX_NESTING_DEPTH);
        let bytes = postcard::to_allocvec(&shallow).unwrap();
        assert_eq!(postcard::from_bytes::<Value>(&bytes).unwrap(), shallow);
    }

    #[test]
    fn an_update_refused_at_its_first_value_disposes_the_rest_without_recursion() {
        use crate::Update;
        // Each operand is far deeper than an ordinary (recursive) drop
        // survives on a test thread's stack: the refused probe and every
        // operator after it must be taken apart on the heap.
        let mut update = Update::new().set("a", nested(200_000)).push("b", nested(200_000));
        update.ops.push(crate::UpdateOp::Merge([("m".to_string(), nested(200_000))].into()));
        let refused = update.admit_values(|d: Document| match d.validate() {
            Ok(()) => Ok(d),
            Err(e) => {
                dispose_document(d);
                Err(e)
            }
        });
        assert!(matches!(refused, Err(CoreError::TooDeep { .. })));
        dispose_update(Update::new().increment("n", nested(200_000)));
    }
}
