//! [`Update`]: field operators applied to a document in place — set,
//! set-if-absent, unset, increment/decrement, push and pull — as data, so
//! the transaction layer can apply them inside one read-modify-write
//! transaction (atomic, retried on conflict) and they can travel over the
//! network like filters.

use crate::schema::FieldType;
use crate::{Document, Fields, Value};
use serde::{Deserialize, Serialize};

/// One operator of an [`Update`]. Field paths are dotted (`"stats.views"`);
/// objects missing on the way are created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum UpdateOp {
    /// Sets the field to the value.
    Set(String, Value),
    /// Sets the field only if it is missing (a `null` counts as present).
    SetIfAbsent(String, Value),
    /// Removes the field; nothing happens if it is missing.
    Unset(String),
    /// Adds a number (`Int` or finite `Float`; negative to decrement) to a
    /// number field. `Int + Int` stays `Int` (overflow is an error); any
    /// `Float` makes a `Float`. A missing field counts as 0.
    Increment(String, Value),
    /// Appends the value to an array field; a missing field becomes a
    /// one-element array.
    Push(String, Value),
    /// Removes every element equal to the value from an array field;
    /// nothing happens if the field is missing.
    Pull(String, Value),
    /// Sets these top-level fields as given (what a patch document does;
    /// names are not split at dots).
    Merge(Fields),
}

/// Why an [`Update`] cannot be applied. Nothing is changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The operator does not apply to what the field holds (or is declared
    /// to hold), e.g. incrementing a string or pushing onto a number.
    #[error("cannot {op} field `{field}`: it holds {actual}, the operator needs {expected}")]
    WrongType {
        /// The operator (`"increment"`, `"push"`, …).
        op: &'static str,
        /// The field path.
        field: String,
        /// What the operator needs.
        expected: &'static str,
        /// What the field holds (a value type, or `declared <type>`).
        actual: String,
    },
    /// The operator's own value is unusable (incrementing by a string,
    /// by NaN or an infinity).
    #[error("cannot {op} field `{field}` by {actual}: needs {expected}")]
    BadOperand {
        /// The operator.
        op: &'static str,
        /// The field path.
        field: String,
        /// What the operator needs.
        expected: &'static str,
        /// The type of the value given.
        actual: &'static str,
    },
    /// An increment's result does not fit (`Int` overflow, or a `Float`
    /// that is no longer finite).
    #[error("incrementing field `{field}` overflows")]
    Overflow {
        /// The field path.
        field: String,
    },
    /// A value the update writes breaks the input rules every write obeys
    /// (nested deeper than the limit, a merged field name refused).
    #[error("the update's values are refused: {reason}")]
    Refused {
        /// What the input rules said (bounded).
        reason: String,
    },
    /// The field path is invalid, or crosses a value that is not an object.
    #[error("cannot {op} field `{field}`: {reason}")]
    InvalidPath {
        /// The operator.
        op: &'static str,
        /// The field path (cut to 64 characters).
        field: String,
        /// Why.
        reason: String,
    },
}

/// A list of [`UpdateOp`]s applied in order, all or nothing.
///
/// ```
/// use aurora_core::{doc, Update, UpdateError, Value};
/// let mut d = doc! { "views": 1, "tags": ["a", "b"] };
/// Update::new().increment("views", 2).push("tags", "c").pull("tags", "a").set_if_absent("owner", "ada").apply(&mut d)?;
/// assert_eq!(d.get("views"), Some(&Value::Int(3)));
/// assert_eq!(d.get("tags"), Some(&Value::from(vec!["b", "c"])));
/// let err = Update::new().increment("owner", 1).apply(&mut d).unwrap_err();
/// assert!(matches!(err, UpdateError::WrongType { .. }));
/// assert_eq!(d.get("owner"), Some(&Value::from("ada")), "nothing changed");
/// # Ok::<(), UpdateError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Update {
    /// The operators, in order.
    pub ops: Vec<UpdateOp>,
}

impl From<Document> for Update {
    /// A patch document: set its top-level fields ([`UpdateOp::Merge`]).
    fn from(patch: Document) -> Self {
        Self { ops: vec![UpdateOp::Merge(patch.fields)] }
    }
}

impl From<Fields> for Update {
    /// Patch fields: set them ([`UpdateOp::Merge`]).
    fn from(fields: Fields) -> Self {
        Self { ops: vec![UpdateOp::Merge(fields)] }
    }
}

impl From<UpdateOp> for Update {
    fn from(op: UpdateOp) -> Self {
        Self { ops: vec![op] }
    }
}

impl Update {
    /// No operators.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether this update changes nothing whatever the document: no
    /// operator, or only patches without fields (`{}` as a patch). Updates
    /// that change nothing are not written: no commit, no change event, the
    /// document keeps its revision.
    ///
    /// ```
    /// use aurora_core::{Fields, Update};
    /// assert!(Update::new().is_noop() && Update::from(Fields::new()).is_noop());
    /// assert!(!Update::new().increment("n", 1).is_noop());
    /// ```
    pub fn is_noop(&self) -> bool {
        self.ops.iter().all(|op| matches!(op, UpdateOp::Merge(fields) if fields.is_empty()))
    }

    /// Passes every value this update writes through `admit` before
    /// anything copies it: a merge's fields as a document, each operator's
    /// operand as the field `value` of a probe document — so a write path
    /// applies the entry rules of documents (nesting, field names, size) to
    /// updates too, and a value nested past the limit is refused the same
    /// way whichever path it came by.
    ///
    /// `admit` owns the probe: it returns it (possibly changed) or refuses
    /// it, disposing of it without deep recursion
    /// ([`dispose_document`](crate::dispose_document)). On the first
    /// refusal the operators not yet checked are disposed of the same way
    /// and the error is returned.
    ///
    /// ```
    /// use aurora_core::{Document, Update, MAX_NESTING_DEPTH};
    /// let check = |d: Document| d.validate().map(|()| d);
    /// assert!(Update::new().set("a", 1).admit_values(check).is_ok());
    /// let mut deep = aurora_core::Value::from(1);
    /// for _ in 0..MAX_NESTING_DEPTH {
    ///     deep = aurora_core::Value::Array(vec![deep]);
    /// }
    /// assert!(Update::new().set("a", deep).admit_values(check).is_err());
    /// ```
    pub fn admit_values<E>(self, mut admit: impl FnMut(Document) -> Result<Document, E>) -> Result<Self, E> {
        let mut ops = self.ops.into_iter();
        let mut admitted = Vec::with_capacity(ops.len());
        while let Some(op) = ops.next() {
            let checked = match op {
                UpdateOp::Merge(fields) => {
                    let mut probe = Document::new();
                    probe.fields = fields;
                    admit(probe).map(|d| UpdateOp::Merge(d.fields))
                }
                UpdateOp::Set(p, v) => operand(&mut admit, v).map(|v| UpdateOp::Set(p, v)),
                UpdateOp::SetIfAbsent(p, v) => operand(&mut admit, v).map(|v| UpdateOp::SetIfAbsent(p, v)),
                UpdateOp::Increment(p, v) => operand(&mut admit, v).map(|v| UpdateOp::Increment(p, v)),
                UpdateOp::Push(p, v) => operand(&mut admit, v).map(|v| UpdateOp::Push(p, v)),
                UpdateOp::Pull(p, v) => operand(&mut admit, v).map(|v| UpdateOp::Pull(p, v)),
                other => Ok(other),
            };
            match checked {
                Ok(op) => admitted.push(op),
                Err(e) => {
                    crate::dispose_update(Self { ops: ops.collect() });
                    return Err(e);
                }
            }
        }
        Ok(Self { ops: admitted })
    }

    fn with(mut self, op: UpdateOp) -> Self {
        self.ops.push(op);
        self
    }

    /// Adds [`UpdateOp::Set`].
    pub fn set(self, field: &str, value: impl Into<Value>) -> Self {
        self.with(UpdateOp::Set(field.into(), value.into()))
    }

    /// Adds [`UpdateOp::SetIfAbsent`].
    pub fn set_if_absent(self, field: &str, value: impl Into<Value>) -> Self {
        self.with(UpdateOp::SetIfAbsent(field.into(), value.into()))
    }

    /// Adds [`UpdateOp::Unset`].
    pub fn unset(self, field: &str) -> Self {
        self.with(UpdateOp::Unset(field.into()))
    }

    /// Adds [`UpdateOp::Increment`] by `by`.
    pub fn increment(self, field: &str, by: impl Into<Value>) -> Self {
        self.with(UpdateOp::Increment(field.into(), by.into()))
    }

    /// Adds [`UpdateOp::Increment`] by `-by` (an `Int` of `i64::MIN` cannot
    /// be negated: [`UpdateError::BadOperand`] when applied).
    pub fn decrement(self, field: &str, by: impl Into<Value>) -> Self {
        let negated = match by.into() {
            Value::Int(i) => i.checked_neg().map_or(Value::Null, Value::Int),
            Value::Float(f) => Value::Float(-f),
            other => other,
        };
        self.with(UpdateOp::Increment(field.into(), negated))
    }

    /// Adds [`UpdateOp::Push`].
    pub fn push(self, field: &str, value: impl Into<Value>) -> Self {
        self.with(UpdateOp::Push(field.into(), value.into()))
    }

    /// Adds [`UpdateOp::Pull`].
    pub fn pull(self, field: &str, value: impl Into<Value>) -> Self {
        self.with(UpdateOp::Pull(field.into(), value.into()))
    }

    /// Checks what can be checked without a document: valid paths, usable
    /// operands, and — given the declared type of a path (`None`:
    /// undeclared) — operators that match the declaration (increment on
    /// `Int`/`Float`/`Any`, push/pull on `Array`/`Any`).
    pub fn check(&self, declared: impl Fn(&str) -> Option<FieldType>) -> Result<(), UpdateError> {
        // The entry rules first, before anything copies a value.
        for op in &self.ops {
            let limit = crate::MAX_NESTING_DEPTH;
            match op {
                UpdateOp::Merge(fields) => {
                    crate::validate_fields(fields).map_err(|e| UpdateError::Refused { reason: e.to_string() })?
                }
                UpdateOp::Set(f, v)
                | UpdateOp::SetIfAbsent(f, v)
                | UpdateOp::Increment(f, v)
                | UpdateOp::Push(f, v)
                | UpdateOp::Pull(f, v) => {
                    if 1 + v.nesting_depth(limit) > limit {
                        let e = crate::CoreError::TooDeep { field: crate::error::bounded(f), limit };
                        return Err(UpdateError::Refused { reason: e.to_string() });
                    }
                }
                UpdateOp::Unset(_) => {}
            }
        }
        for op in &self.ops {
            let (name, field) = match op {
                UpdateOp::Merge(_) => continue,
                UpdateOp::Set(f, _) | UpdateOp::SetIfAbsent(f, _) | UpdateOp::Unset(f) => ("set", f),
                UpdateOp::Increment(f, _) => ("increment", f),
                UpdateOp::Push(f, _) => ("push", f),
                UpdateOp::Pull(f, _) => ("pull", f),
            };
            crate::names::validate_field_path(field).map_err(|e| UpdateError::InvalidPath {
                op: name,
                field: crate::error::bounded(field),
                reason: e.to_string(),
            })?;
            let wants = match op {
                UpdateOp::Increment(_, by) => {
                    if !matches!(by, Value::Int(_)) && !matches!(by, Value::Float(x) if x.is_finite()) {
                        return Err(UpdateError::BadOperand {
                            op: name,
                            field: field.clone(),
                            expected: "an int or a finite float",
                            actual: by.type_name(),
                        });
                    }
                    Some(([FieldType::Int, FieldType::Float], "a number"))
                }
                UpdateOp::Push(..) | UpdateOp::Pull(..) => Some(([FieldType::Array, FieldType::Array], "an array")),
                _ => None,
            };
            if let (Some((types, expected)), Some(t)) = (wants, declared(field)) {
                if t != FieldType::Any && !types.contains(&t) {
                    return Err(UpdateError::WrongType {
                        op: name,
                        field: field.clone(),
                        expected,
                        actual: format!("declared {t}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Applies every operator in order; on an error `doc` is unchanged.
    pub fn apply(&self, doc: &mut Document) -> Result<(), UpdateError> {
        self.check(|_| None)?;
        let mut fields = doc.fields.clone();
        for op in &self.ops {
            apply_one(&mut fields, op)?;
        }
        doc.fields = fields;
        Ok(())
    }
}

/// The object holding the last segment of `path` and that segment; missing
/// objects on the way are created when `create`, otherwise `None`.
fn parent<'a>(
    fields: &'a mut Fields,
    path: &'a str,
    op: &'static str,
    create: bool,
) -> Result<Option<(&'a mut Fields, &'a str)>, UpdateError> {
    let Some((head, rest)) = path.split_once('.') else { return Ok(Some((fields, path))) };
    if !fields.contains_key(head) {
        if !create {
            return Ok(None);
        }
        fields.insert(head.to_string(), Value::Object(Fields::new()));
    }
    match fields.get_mut(head) {
        Some(Value::Object(inner)) => parent(inner, rest, op, create),
        Some(other) => Err(UpdateError::InvalidPath {
            op,
            field: crate::error::bounded(path),
            reason: format!("`{head}` holds {}, not an object", other.type_name()),
        }),
        None => Ok(None),
    }
}

fn apply_one(fields: &mut Fields, op: &UpdateOp) -> Result<(), UpdateError> {
    match op {
        UpdateOp::Merge(patch) => fields.extend(patch.iter().map(|(k, v)| (k.clone(), v.clone()))),
        UpdateOp::Set(path, v) => {
            if let Some((obj, last)) = parent(fields, path, "set", true)? {
                obj.insert(last.to_string(), v.clone());
            }
        }
        UpdateOp::SetIfAbsent(path, v) => {
            if let Some((obj, last)) = parent(fields, path, "set", true)? {
                obj.entry(last.to_string()).or_insert_with(|| v.clone());
            }
        }
        UpdateOp::Unset(path) => {
            if let Some((obj, last)) = parent(fields, path, "unset", false)? {
                obj.remove(last);
            }
        }
        UpdateOp::Increment(path, by) => {
            let Some((obj, last)) = parent(fields, path, "increment", true)? else { return Ok(()) };
            let sum = match (obj.get(last), by) {
                (None, by) => by.clone(),
                (Some(Value::Int(a)), Value::Int(b)) => {
                    Value::Int(a.checked_add(*b).ok_or_else(|| UpdateError::Overflow { field: path.clone() })?)
                }
                (Some(Value::Int(a)), Value::Float(b)) => finite(*a as f64 + b, path)?,
                (Some(Value::Float(a)), Value::Int(b)) => finite(a + *b as f64, path)?,
                (Some(Value::Float(a)), Value::Float(b)) => finite(a + b, path)?,
                (Some(other), _) => {
                    return Err(UpdateError::WrongType {
                        op: "increment",
                        field: path.clone(),
                        expected: "a number",
                        actual: other.type_name().to_string(),
                    })
                }
            };
            obj.insert(last.to_string(), sum);
        }
        UpdateOp::Push(path, v) => {
            let Some((obj, last)) = parent(fields, path, "push", true)? else { return Ok(()) };
            match obj.get_mut(last) {
                None => {
                    obj.insert(last.to_string(), Value::Array(vec![v.clone()]));
                }
                Some(Value::Array(items)) => items.push(v.clone()),
                Some(other) => return Err(not_array("push", path, other)),
            }
        }
        UpdateOp::Pull(path, v) => {
            let Some((obj, last)) = parent(fields, path, "pull", false)? else { return Ok(()) };
            match obj.get_mut(last) {
                None => {}
                Some(Value::Array(items)) => items.retain(|x| x != v),
                Some(other) => return Err(not_array("pull", path, other)),
            }
        }
    }
    Ok(())
}

fn finite(x: f64, path: &str) -> Result<Value, UpdateError> {
    if x.is_finite() {
        Ok(Value::Float(x))
    } else {
        Err(UpdateError::Overflow { field: path.to_string() })
    }
}

fn not_array(op: &'static str, path: &str, other: &Value) -> UpdateError {
    UpdateError::WrongType { op, field: path.to_string(), expected: "an array", actual: other.type_name().to_string() }
}

/// An operator's operand through an entry check, as the field `value` of a
/// probe document ([`Update::admit_values`]).
fn operand<E>(admit: &mut impl FnMut(Document) -> Result<Document, E>, v: Value) -> Result<Value, E> {
    let mut probe = Document::new();
    probe.fields.insert("value".into(), v);
    admit(probe).map(|mut d| d.fields.remove("value").unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc;

    #[test]
    fn operators_apply_in_order_on_nested_paths() {
        let mut d = doc! { "n": 1, "x": 1.5, "tags": ["a", "b", "a"], "stats": { "views": 10 } };
        Update::new()
            .increment("n", 2)
            .decrement("x", 1)
            .increment("stats.views", 0.5)
            .increment("stats.likes", 1)
            .pull("tags", "a")
            .push("tags", "c")
            .push("new", 1)
            .set("deep.er.path", true)
            .set_if_absent("n", 100)
            .set_if_absent("owner", "ada")
            .unset("missing.field")
            .unset("x")
            .apply(&mut d)
            .unwrap();
        assert_eq!(d.get("n"), Some(&Value::Int(3)));
        assert_eq!(d.get("x"), None);
        assert_eq!(d.get_path("stats.views"), Some(&Value::Float(10.5)));
        assert_eq!(d.get_path("stats.likes"), Some(&Value::Int(1)));
        assert_eq!(d.get("tags"), Some(&Value::from(vec!["b", "c"])));
        assert_eq!(d.get("new"), Some(&Value::Array(vec![Value::Int(1)])));
        assert_eq!(d.get_path("deep.er.path"), Some(&Value::Bool(true)));
        assert_eq!(d.get("owner"), Some(&Value::from("ada")));
    }

    #[test]
    fn bad_operators_are_typed_errors_and_change_nothing() {
        let original = doc! { "name": "ada", "n": i64::MAX, "f": 1e308, "nothing": null };
        type Expect = fn(&UpdateError) -> bool;
        let cases: Vec<(Update, Expect)> = vec![
            (Update::new().increment("n", 0).increment("name", 1), |e| matches!(e, UpdateError::WrongType { .. })),
            (Update::new().increment("nothing", 1), |e| matches!(e, UpdateError::WrongType { .. })),
            (Update::new().increment("n", 1), |e| matches!(e, UpdateError::Overflow { .. })),
            (Update::new().increment("f", 1e308), |e| matches!(e, UpdateError::Overflow { .. })),
            (Update::new().decrement("n", i64::MIN), |e| matches!(e, UpdateError::BadOperand { .. })),
            (Update::new().increment("n", "one"), |e| matches!(e, UpdateError::BadOperand { .. })),
            (Update::new().increment("n", f64::NAN), |e| matches!(e, UpdateError::BadOperand { .. })),
            (Update::new().push("name", 1), |e| matches!(e, UpdateError::WrongType { .. })),
            (Update::new().pull("n", 1), |e| matches!(e, UpdateError::WrongType { .. })),
            (Update::new().set("name.first", "a"), |e| matches!(e, UpdateError::InvalidPath { .. })),
            (Update::new().set("a..b", 1), |e| matches!(e, UpdateError::InvalidPath { .. })),
        ];
        for (update, expected) in cases {
            let mut d = original.clone();
            let err = update.apply(&mut d).unwrap_err();
            assert!(expected(&err), "{update:?}: {err}");
            assert_eq!(d, original, "{update:?} changed the document");
        }
    }

    #[test]
    fn declared_types_are_checked_before_any_document() {
        let declared = |f: &str| match f {
            "name" => Some(FieldType::String),
            "n" => Some(FieldType::Int),
            "tags" => Some(FieldType::Array),
            _ => None,
        };
        assert!(Update::new().increment("n", 1).push("tags", 1).increment("free", 1).check(declared).is_ok());
        let err = Update::new().increment("name", 1).check(declared).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot increment field `name`: it holds declared string, the operator needs a number"
        );
        assert!(Update::new().push("n", 1).check(declared).is_err());
    }

    #[test]
    fn a_patch_document_is_a_merge() {
        let mut d = doc! { "a": 1, "b": 2 };
        Update::from(doc! { "b": 3, "c": 4 }).apply(&mut d).unwrap();
        assert_eq!(d.fields.len(), 3);
        assert_eq!(d.get("c"), Some(&Value::Int(4)));
        // A dotted patch name would be an unreachable field: refused.
        let refused = Update::from(doc! { "c.d": 4 }).apply(&mut d);
        assert!(matches!(refused, Err(UpdateError::Refused { .. })), "{refused:?}");
        assert_eq!(d.fields.len(), 3, "nothing changed");
    }
}
