//! Dropping what the client refused without deep recursion: a value can
//! be nested deeper than the stack holds (an application can build one),
//! and Rust drops nested values recursively. The embedded handle takes a
//! refused document apart the same way.

use aurora::{Document, Update, UpdateOp, Value};

/// Drops `value` level by level, its children moved to a heap stack first.
pub(crate) fn value(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(fields) => stack.extend(fields.into_values()),
            _ => {}
        }
    }
}

/// Drops a document's values without deep recursion.
pub(crate) fn document(doc: Document) {
    doc.fields.into_values().for_each(value);
}

/// Drops an update's operands without deep recursion.
pub(crate) fn update(update: Update) {
    for op in update.ops {
        match op {
            UpdateOp::Merge(fields) => fields.into_values().for_each(value),
            UpdateOp::Set(_, v)
            | UpdateOp::SetIfAbsent(_, v)
            | UpdateOp::Increment(_, v)
            | UpdateOp::Push(_, v)
            | UpdateOp::Pull(_, v) => value(v),
            other => drop(other),
        }
    }
}

/// The entry check of an update's values, as the embedded handle makes
/// it (`Aurora::update_document`): each operand checked as the field
/// `value` of a probe document, a merge's fields as a document — so a
/// value nested past the limit is `CoreError::TooDeep` on both. Nothing is
/// copied; a refused update is dropped without deep recursion.
pub(crate) fn admit_update(incoming: Update) -> aurora::Result<Update> {
    let mut ops = incoming.ops.into_iter();
    let mut admitted = Vec::new();
    let probe = |v: Value| {
        let mut d = Document::new();
        d.fields.insert("value".into(), v);
        let r = d.validate();
        (d.fields.remove("value").unwrap_or(Value::Null), r)
    };
    while let Some(op) = ops.next() {
        let (op, checked) = match op {
            UpdateOp::Merge(fields) => {
                let mut d = Document::new();
                d.fields = fields;
                let r = d.validate();
                (UpdateOp::Merge(d.fields), r)
            }
            UpdateOp::Set(p, v) => {
                let (v, r) = probe(v);
                (UpdateOp::Set(p, v), r)
            }
            UpdateOp::SetIfAbsent(p, v) => {
                let (v, r) = probe(v);
                (UpdateOp::SetIfAbsent(p, v), r)
            }
            UpdateOp::Increment(p, v) => {
                let (v, r) = probe(v);
                (UpdateOp::Increment(p, v), r)
            }
            UpdateOp::Push(p, v) => {
                let (v, r) = probe(v);
                (UpdateOp::Push(p, v), r)
            }
            UpdateOp::Pull(p, v) => {
                let (v, r) = probe(v);
                (UpdateOp::Pull(p, v), r)
            }
            other => (other, Ok(())),
        };
        match checked {
            Ok(()) => admitted.push(op),
            Err(e) => {
                admitted.push(op);
                update(Update { ops: admitted });
                update(Update { ops: ops.collect() });
                return Err(e.into());
            }
        }
    }
    Ok(Update { ops: admitted })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_value_deeper_than_the_stack_is_dropped() {
        let mut v = aurora::Value::from(1);
        for _ in 0..1_000_000 {
            v = aurora::Value::Array(vec![v]);
        }
        super::value(v);
    }
}
