//! Computed fields: values derived from a document's fields at query time
//! (never stored), registered per collection and persisted with the data.
//!
//! A computed field may use other computed fields (chaining); a registration
//! that would form a cycle is refused. Computed values appear in results and
//! can be used in `filter`, `order_by` and `select` (they are never indexed).

use crate::error::{QueryError, Result, ScriptError};
use aurora_core::{Document, Value};
use aurora_storage::{format, Batch, Store};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Storage prefix of registrations: `"k" ++ collection ++ 0x00 ++ name`.
const PREFIX: u8 = b'k';

/// How a computed field is derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expression {
    /// The fields' values as text, joined by `separator` (missing or null
    /// fields are skipped; numbers and booleans are written out).
    Concat {
        /// Source fields, in order.
        fields: Vec<String>,
        /// Text between values.
        separator: String,
    },
    /// The sum of the fields' numeric values (`Int` while every value is an
    /// integer and the sum fits, else `Float`; non-numbers are skipped).
    Sum {
        /// Source fields.
        fields: Vec<String>,
    },
    /// The mean of the fields' numeric values (`Null` if there are none).
    Average {
        /// Source fields.
        fields: Vec<String>,
    },
    /// A JavaScript function body, run with the declared dependencies as
    /// parameters (dots in paths become underscores): with dependencies
    /// `["age"]`, `if (age < 18) return 'minor'; return 'adult';`. Run in a
    /// sandbox process on a fresh runtime per evaluation: no I/O, 16 MiB of
    /// memory, 50 ms per evaluation, 1 s per query, 1 MiB of result (cargo
    /// feature `js`; see the computed-fields guide for the guarantees).
    Custom {
        /// The function body.
        code: String,
        /// The fields it reads, in parameter order.
        dependencies: Vec<String>,
    },
}

impl Expression {
    /// The fields this expression reads.
    pub fn dependencies(&self) -> &[String] {
        match self {
            Expression::Concat { fields, .. } | Expression::Sum { fields } | Expression::Average { fields } => fields,
            Expression::Custom { dependencies, .. } => dependencies,
        }
    }

    /// Whether this is a script (`Custom`), evaluated in a sandbox.
    pub fn is_script(&self) -> bool {
        matches!(self, Expression::Custom { .. })
    }

    /// Checks the expression can run: a script must compile as one
    /// function body (checked in a sandbox; nothing is called).
    pub fn check(&self) -> std::result::Result<(), ScriptError> {
        match self {
            #[cfg(feature = "js")]
            Expression::Custom { code, dependencies } => {
                let params = script_params(dependencies)?;
                aurora_js::check(&params, code).map_err(ScriptError::from)
            }
            #[cfg(not(feature = "js"))]
            Expression::Custom { .. } => Err(no_engine()),
            _ => Ok(()),
        }
    }

    /// Evaluates against a document (which already holds the computed
    /// fields this one depends on), with a one-off [`Scripts`] session.
    /// Only scripts can fail.
    pub fn evaluate(&self, doc: &Document) -> std::result::Result<Value, ScriptError> {
        self.evaluate_in(doc, &mut Scripts::new())
    }

    /// Evaluates within a query's [`Scripts`] session (its sandbox and its
    /// time budget).
    pub fn evaluate_in(&self, doc: &Document, scripts: &mut Scripts) -> std::result::Result<Value, ScriptError> {
        let values = || self.dependencies().iter().filter_map(|f| doc.get_path(f)).filter(|v| !v.is_null());
        Ok(match self {
            #[cfg(feature = "js")]
            Expression::Custom { code, dependencies } => {
                let params = script_params(dependencies)?;
                let args = dependencies.iter().map(|d| doc.get_path(d).cloned().unwrap_or(Value::Null)).collect();
                let l = scripts.limits;
                let session = scripts.session.get_or_insert_with(|| {
                    aurora_js::Session::new(aurora_js::Limits {
                        time: l.time,
                        query_budget: l.query_budget,
                        memory: l.memory,
                        output: l.output,
                    })
                });
                return session.evaluate(&params, code, args).map_err(ScriptError::from);
            }
            #[cfg(not(feature = "js"))]
            Expression::Custom { .. } => {
                let _ = scripts;
                return Err(no_engine());
            }
            Expression::Concat { separator, .. } => {
                let parts: Vec<String> = values()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        Value::Int(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => serde_json::Value::from(other.clone()).to_string(),
                    })
                    .collect();
                Value::String(parts.join(separator))
            }
            Expression::Sum { .. } => {
                let nums: Vec<&Value> = values().filter(|v| v.as_f64().is_some()).collect();
                match nums.iter().try_fold(0i64, |acc, v| v.as_i64().and_then(|i| acc.checked_add(i))) {
                    Some(i) => Value::Int(i),
                    None => Value::Float(nums.iter().filter_map(|v| v.as_f64()).sum()),
                }
            }
            Expression::Average { .. } => {
                let nums: Vec<f64> = values().filter_map(Value::as_f64).collect();
                if nums.is_empty() {
                    Value::Null
                } else {
                    Value::Float(nums.iter().sum::<f64>() / nums.len() as f64)
                }
            }
        })
    }
}

#[cfg(feature = "js")]
fn script_params(dependencies: &[String]) -> std::result::Result<Vec<String>, ScriptError> {
    aurora_js::parameter_names(dependencies).ok_or_else(|| {
        ScriptError::Syntax("every dependency must become a JavaScript identifier ('.' is replaced by '_')".into())
    })
}

#[cfg(not(feature = "js"))]
fn no_engine() -> ScriptError {
    ScriptError::Unavailable("this build has no script engine (cargo feature `js`)".into())
}

/// The limits scripts (`Expression::Custom`) run under. Past any of them an
/// evaluation fails with a [`ScriptError`], promptly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptLimits {
    /// CPU time one evaluation may use (default 50 ms); the host also kills
    /// a sandbox that has not answered after this + 200 ms of wall-clock time.
    pub time: Duration,
    /// Wall-clock time one query run may spend in script evaluations,
    /// across all its documents (default 1 s).
    pub query_budget: Duration,
    /// Bytes one evaluation's runtime may allocate (default 16 MiB).
    pub memory: usize,
    /// Bytes of one result, encoded (default 1 MiB).
    pub output: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        Self {
            time: Duration::from_millis(50),
            query_budget: Duration::from_secs(1),
            memory: 16 << 20,
            output: 1 << 20,
        }
    }
}

/// The script evaluations of one query run: the sandbox it holds while it
/// runs and its time budget (see `aurora_js::Session`). Create one per
/// query execution and pass it to [`apply_in`]; dropping it returns the
/// sandbox to the pool.
#[derive(Debug, Default)]
pub struct Scripts {
    limits: ScriptLimits,
    #[cfg(feature = "js")]
    session: Option<aurora_js::Session>,
}

impl Scripts {
    /// A session with the default limits that has spent nothing (no
    /// sandbox is taken until a script runs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives a held sandbox back to the pool between evaluations (a query
    /// stream does so before each item it yields).
    pub fn release(&mut self) {
        #[cfg(feature = "js")]
        if let Some(session) = &mut self.session {
            session.release();
        }
    }

    /// A session with these limits.
    pub fn with_limits(limits: ScriptLimits) -> Self {
        Self { limits, ..Self::default() }
    }
}

/// One collection's computed fields, in evaluation order (dependencies first).
pub type Ordered = Arc<Vec<(String, Expression)>>;

/// The registry of computed fields of every collection.
#[derive(Debug, Default)]
pub struct ComputedFields {
    by_collection: RwLock<BTreeMap<String, BTreeMap<String, Expression>>>,
    ordered: RwLock<BTreeMap<String, Ordered>>,
}

fn key(collection: &str, name: &str) -> Vec<u8> {
    let mut k = vec![PREFIX];
    k.extend_from_slice(collection.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Dependency order of a collection's computed fields, or the name of one
/// on a cycle.
fn order(fields: &BTreeMap<String, Expression>) -> std::result::Result<Vec<(String, Expression)>, String> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < fields.len() {
        let ready: Vec<&String> = fields
            .iter()
            .filter(|(n, e)| {
                !done.contains(n.as_str())
                    && e.dependencies().iter().all(|d| !fields.contains_key(d) || done.contains(d.as_str()))
            })
            .map(|(n, _)| n)
            .collect();
        if ready.is_empty() {
            let stuck = fields.keys().find(|n| !done.contains(n.as_str())).cloned().unwrap_or_default();
            return Err(stuck);
        }
        for n in ready {
            done.insert(n);
            out.push((n.clone(), fields[n].clone()));
        }
    }
    Ok(out)
}

impl ComputedFields {
    /// Loads every registration from the store.
    pub fn load(store: &Store) -> Result<Self> {
        let this = Self::default();
        {
            let mut map = this.by_collection.write().unwrap_or_else(|e| e.into_inner());
            for item in store.scan_prefix(&[PREFIX])? {
                let (k, v) = item?;
                let rest = &k[1..];
                let Some(split) = rest.iter().position(|b| *b == 0) else { continue };
                let collection = String::from_utf8_lossy(&rest[..split]).into_owned();
                let name = String::from_utf8_lossy(&rest[split + 1..]).into_owned();
                let expr: Expression = format::decode(&k, &v)?;
                map.entry(collection).or_default().insert(name, expr);
            }
        }
        this.rebuild_order();
        Ok(this)
    }

    fn rebuild_order(&self) {
        let map = self.by_collection.read().unwrap_or_else(|e| e.into_inner());
        let mut ordered = self.ordered.write().unwrap_or_else(|e| e.into_inner());
        ordered.clear();
        for (collection, fields) in map.iter() {
            if let Ok(o) = order(fields) {
                ordered.insert(collection.clone(), Arc::new(o));
            }
        }
    }

    /// Registers (or replaces) `name` on `collection`; refuses a cycle with
    /// [`QueryError::ComputedCycle`]. Persisted at once.
    pub fn register(&self, store: &Store, collection: &str, name: &str, expression: Expression) -> Result<()> {
        // A computed field is read like a top-level field: the same rules.
        let shown = || name.chars().take(64).collect::<String>();
        if let Err(e) = aurora_core::names::validate_field_name(name) {
            return Err(QueryError::InvalidComputed { name: shown(), reason: e.to_string() });
        }
        expression
            .check()
            .map_err(|reason| QueryError::InvalidComputed { name: shown(), reason: reason.to_string() })?;
        let mut map = self.by_collection.write().unwrap_or_else(|e| e.into_inner());
        let mut fields = map.get(collection).cloned().unwrap_or_default();
        fields.insert(name.to_string(), expression.clone());
        if let Err(on_cycle) = order(&fields) {
            return Err(QueryError::ComputedCycle { collection: collection.into(), field: on_cycle });
        }
        let mut batch = Batch::new();
        batch.put(key(collection, name), format::encode(&expression)?);
        store.commit(batch)?.into_result()?;
        map.insert(collection.to_string(), fields);
        drop(map);
        self.rebuild_order();
        Ok(())
    }

    /// Removes a registration; returns whether it existed.
    pub fn unregister(&self, store: &Store, collection: &str, name: &str) -> Result<bool> {
        let mut map = self.by_collection.write().unwrap_or_else(|e| e.into_inner());
        let existed = map.get_mut(collection).is_some_and(|f| f.remove(name).is_some());
        if existed {
            let mut batch = Batch::new();
            batch.delete(key(collection, name));
            store.commit(batch)?.into_result()?;
        }
        drop(map);
        self.rebuild_order();
        Ok(existed)
    }

    /// A collection's computed fields in evaluation order.
    pub fn for_collection(&self, collection: &str) -> Option<Ordered> {
        self.ordered.read().unwrap_or_else(|e| e.into_inner()).get(collection).cloned()
    }

    /// Whether `name` is a computed field of `collection`.
    pub fn is_computed(&self, collection: &str, name: &str) -> bool {
        self.by_collection
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(collection)
            .is_some_and(|f| f.contains_key(name))
    }
}

/// Adds the computed fields to a copy of `doc`; a failing script is
/// [`QueryError::ComputedFailed`] naming the field and document.
pub fn apply(ordered: &[(String, Expression)], doc: &Document) -> Result<Document> {
    apply_in(ordered, doc, &mut Scripts::new())
}

/// [`apply`] within a query's [`Scripts`] session.
pub fn apply_in(ordered: &[(String, Expression)], doc: &Document, scripts: &mut Scripts) -> Result<Document> {
    let mut out = doc.clone();
    for (name, expr) in ordered {
        let v = expr.evaluate_in(&out, scripts).map_err(|reason| QueryError::ComputedFailed {
            field: name.clone(),
            id: doc.id.to_string(),
            reason,
        })?;
        out.fields.insert(name.clone(), v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_core::doc;

    #[test]
    fn expressions_and_chaining() {
        let d = doc! { "first": "Ada", "last": "Lovelace", "a": 1, "b": 2.5, "c": null, "n": 3 };
        let concat =
            Expression::Concat { fields: vec!["first".into(), "missing".into(), "last".into()], separator: " ".into() };
        assert_eq!(concat.evaluate(&d), Ok(Value::from("Ada Lovelace")));
        assert_eq!(Expression::Sum { fields: vec!["a".into(), "n".into()] }.evaluate(&d), Ok(Value::Int(4)));
        assert_eq!(
            Expression::Sum { fields: vec!["a".into(), "b".into(), "c".into()] }.evaluate(&d),
            Ok(Value::Float(3.5))
        );
        assert_eq!(Expression::Average { fields: vec!["a".into(), "b".into()] }.evaluate(&d), Ok(Value::Float(1.75)));
        assert_eq!(Expression::Average { fields: vec!["zz".into()] }.evaluate(&d), Ok(Value::Null));
        let mut fields = BTreeMap::new();
        fields.insert("total".to_string(), Expression::Sum { fields: vec!["sub".into(), "a".into()] });
        fields.insert("sub".to_string(), Expression::Sum { fields: vec!["a".into(), "n".into()] });
        let o = order(&fields).unwrap();
        assert_eq!(o.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["sub", "total"]);
        assert_eq!(apply(&o, &d).unwrap().get("total"), Some(&Value::Int(5)));
        fields.insert("sub".to_string(), Expression::Sum { fields: vec!["total".into()] });
        assert!(order(&fields).is_err(), "cycle");
    }

    #[cfg(feature = "js")]
    #[test]
    fn scripts_run_the_study_example_and_respect_limits() {
        let grade = Expression::Custom {
            code: "if (age < 18) return 'minor'; return 'adult';".into(),
            dependencies: vec!["age".into()],
        };
        assert!(grade.check().is_ok());
        assert_eq!(grade.evaluate(&doc! { "age": 12 }), Ok(Value::from("minor")));
        assert_eq!(grade.evaluate(&doc! { "age": 40 }), Ok(Value::from("adult")));
        let nested = Expression::Custom {
            code: "return { n: a_b * 2, list: [1, 'x', null], big: 2.5 };".into(),
            dependencies: vec!["a.b".into()],
        };
        let got = nested.evaluate(&doc! { "a": { "b": 21 } }).unwrap();
        assert_eq!(got.get_path("n"), Some(&Value::Int(42)));
        assert_eq!(got.get_path("list.1"), Some(&Value::from("x")));
        assert_eq!(got.get_path("big"), Some(&Value::Float(2.5)));
        let spin = Expression::Custom { code: "while (true) {}".into(), dependencies: vec![] };
        assert!(matches!(spin.evaluate(&doc! {}), Err(ScriptError::TimeLimit(_))), "time limit");
        let hog = Expression::Custom {
            code: "let a = []; while (true) a.push('x'.repeat(1000));".into(),
            dependencies: vec![],
        };
        assert!(hog.evaluate(&doc! {}).is_err(), "memory or time limit");
        let throws = Expression::Custom { code: "throw new Error('boom');".into(), dependencies: vec![] };
        assert_eq!(throws.evaluate(&doc! {}), Err(ScriptError::Threw("Error: boom".to_string())));
        let bad = Expression::Custom { code: "return (".into(), dependencies: vec![] };
        assert!(bad.check().is_err(), "syntax errors are found at registration");
        let no_io = Expression::Custom {
            code: "return typeof require + typeof process + typeof fetch;".into(),
            dependencies: vec![],
        };
        assert_eq!(no_io.evaluate(&doc! {}), Ok(Value::from("undefinedundefinedundefined")));
    }
}
