//! Filters in the plain-JSON form: MongoDB-style operators.

use super::value::{value_at, MARKERS};
use super::{invalid, Path};
use crate::{CoreError, Filter, Value};
use serde_json::{Map, Value as Json};

fn one(key: &str, value: Json) -> Json {
    let mut m = Map::new();
    m.insert(key.to_string(), value);
    Json::Object(m)
}

/// `{field: {op: operand}}`, or `{"$field": [field, {op: operand}]}` for a
/// field whose name starts with `$` (which would read as an operator).
fn on_field(field: &str, op: &str, operand: Json) -> Json {
    let ops = one(op, operand);
    if field.starts_with('$') {
        one("$field", Json::Array(vec![Json::String(field.to_string()), ops]))
    } else {
        one(field, ops)
    }
}

impl Filter {
    /// This filter in the plain-JSON form, canonical: every comparison is
    /// `{field: {"$op": operand}}`, every combination `{"$and": [..]}`,
    /// `{"$or": [..]}` or `{"$not": ..}`, and `All` is `{}`; reading it
    /// back with [`Filter::from_json`] gives this filter again.
    pub fn to_json(&self) -> Json {
        let list = |fs: &[Filter]| Json::Array(fs.iter().map(Filter::to_json).collect());
        if self.fields().first() == Some(&super::ID_FIELD)
            && !matches!(self, Filter::And(_) | Filter::Or(_) | Filter::Not(_))
        {
            return self.id_condition_json();
        }
        match self {
            Filter::All => Json::Object(Map::new()),
            Filter::Eq(f, v) => on_field(f, "$eq", v.to_json()),
            Filter::Ne(f, v) => on_field(f, "$ne", v.to_json()),
            Filter::Gt(f, v) => on_field(f, "$gt", v.to_json()),
            Filter::Gte(f, v) => on_field(f, "$gte", v.to_json()),
            Filter::Lt(f, v) => on_field(f, "$lt", v.to_json()),
            Filter::Lte(f, v) => on_field(f, "$lte", v.to_json()),
            Filter::Between(f, lo, hi) => on_field(f, "$between", Json::Array(vec![lo.to_json(), hi.to_json()])),
            Filter::In(f, vs) => on_field(f, "$in", Json::Array(vs.iter().map(Value::to_json).collect())),
            Filter::Contains(f, s) => on_field(f, "$contains", Json::String(s.clone())),
            Filter::StartsWith(f, s) => on_field(f, "$startsWith", Json::String(s.clone())),
            Filter::EndsWith(f, s) => on_field(f, "$endsWith", Json::String(s.clone())),
            Filter::InArray(f, v) => on_field(f, "$has", v.to_json()),
            Filter::HasField(f) => on_field(f, "$exists", Json::Bool(true)),
            Filter::IsNull(f) => on_field(f, "$isNull", Json::Bool(true)),
            Filter::And(fs) => one("$and", list(fs)),
            Filter::Or(fs) => one("$or", list(fs)),
            Filter::Not(f) => one("$not", f.to_json()),
        }
    }

    /// A comparison on `_id`, its operands written as ids are.
    fn id_condition_json(&self) -> Json {
        let f = super::ID_FIELD;
        let v = id_operand_json;
        match self {
            Filter::Eq(_, x) => on_field(f, "$eq", v(x)),
            Filter::Ne(_, x) => on_field(f, "$ne", v(x)),
            Filter::Gt(_, x) => on_field(f, "$gt", v(x)),
            Filter::Gte(_, x) => on_field(f, "$gte", v(x)),
            Filter::Lt(_, x) => on_field(f, "$lt", v(x)),
            Filter::Lte(_, x) => on_field(f, "$lte", v(x)),
            Filter::Between(_, lo, hi) => on_field(f, "$between", Json::Array(vec![v(lo), v(hi)])),
            Filter::In(_, xs) => on_field(f, "$in", Json::Array(xs.iter().map(v).collect())),
            Filter::InArray(_, x) => on_field(f, "$has", v(x)),
            Filter::Contains(_, s) => on_field(f, "$contains", Json::String(s.clone())),
            Filter::StartsWith(_, s) => on_field(f, "$startsWith", Json::String(s.clone())),
            Filter::EndsWith(_, s) => on_field(f, "$endsWith", Json::String(s.clone())),
            Filter::HasField(_) => on_field(f, "$exists", Json::Bool(true)),
            Filter::IsNull(_) => on_field(f, "$isNull", Json::Bool(true)),
            Filter::All | Filter::And(_) | Filter::Or(_) | Filter::Not(_) => Json::Object(Map::new()),
        }
    }

    /// Reads a filter in the plain-JSON form: an object whose keys are
    /// field paths or `$and` / `$or` / `$not` (several keys: all must
    /// hold; `{}` matches everything).
    ///
    /// A field's condition is a value (`{"room": "lobby"}`: equality; a
    /// value object such as `{"$uuid": …}` is a value) or an object of
    /// operators, all of which must hold:
    ///
    /// | operator | meaning | [`Filter`] |
    /// |---|---|---|
    /// | `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte` | comparisons (numbers compare numerically) | `Eq` … `Lte` |
    /// | `$between: [lo, hi]` | `lo <= field <= hi` | `Between` |
    /// | `$in: [..]`, `$nin: [..]` | one of / none of | `In`, `Not(In)` |
    /// | `$has: v` | the array field has an element equal to `v` | `InArray` |
    /// | `$contains`, `$startsWith`, `$endsWith` (strings) | substring tests | `Contains` … |
    /// | `$exists: true/false` | the field is present (even if null) / absent | `HasField`, `Not(HasField)` |
    /// | `$isNull: true/false` | the field is missing or null / has a non-null value | `IsNull`, `Not(IsNull)` |
    /// | `$not: {ops}` | the operators do not all hold | `Not` |
    ///
    /// A field whose name starts with `$` is written
    /// `{"$field": ["$name", {ops}]}`.
    ///
    /// # Errors
    /// [`CoreError::InvalidJson`] (with a JSON pointer) for an unknown
    /// operator, an operand of the wrong shape or a malformed value;
    /// [`CoreError::InvalidName`] for a bad field path;
    /// [`CoreError::FilterTooDeep`] past the nesting limit.
    ///
    /// ```
    /// use aurora_core::{Filter, F};
    /// use serde_json::json;
    /// let f = Filter::from_json(&json!({"age": {"$gt": 21, "$lt": 65}, "tags": {"$has": "vip"}})).unwrap();
    /// assert_eq!(f, (F.gt("age", 21) & F.lt("age", 65)) & F.in_array("tags", "vip"));
    /// ```
    pub fn from_json(json: &Json) -> Result<Filter, CoreError> {
        let filter = filter_at(json, &Path::ROOT).map_err(|e| match e {
            CoreError::TooDeep { limit, .. } => CoreError::FilterTooDeep { limit },
            other => other,
        })?;
        filter.check_depth()?;
        Ok(filter)
    }
}

fn filter_at(json: &Json, at: &Path<'_>) -> Result<Filter, CoreError> {
    let Json::Object(map) = json else {
        return Err(invalid(at, "a filter is a JSON object"));
    };
    // The conditions of several keys, and of several operators on one
    // field, form one flat conjunction.
    let mut all = Vec::with_capacity(map.len());
    for (key, operand) in map {
        let here = at.key(key)?;
        match key.as_str() {
            "$and" => all.push(Filter::And(filters(operand, &here)?)),
            "$or" => all.push(Filter::Or(filters(operand, &here)?)),
            "$not" => all.push(Filter::Not(Box::new(filter_at(operand, &here)?))),
            "$field" => match operand {
                Json::Array(pair) if pair.len() == 2 && pair[0].is_string() => {
                    let field = pair[0].as_str().unwrap_or_default();
                    all.extend(condition(field, &pair[1], &here.index(1)?)?);
                }
                _ => return Err(invalid(&here, "`$field` takes [\"field name\", {operators}]")),
            },
            op if op.starts_with('$') => return Err(invalid(&here, format!("unknown operator {op:?}"))),
            field => all.extend(condition(field, operand, &here)?),
        }
    }
    Ok(if all.is_empty() { Filter::All } else { conjunction(all) })
}

/// One filter, or `And` of several.
fn conjunction(mut all: Vec<Filter>) -> Filter {
    if all.len() == 1 {
        all.pop().unwrap_or(Filter::All)
    } else {
        Filter::And(all)
    }
}

fn filters(json: &Json, at: &Path<'_>) -> Result<Vec<Filter>, CoreError> {
    let Json::Array(items) = json else {
        return Err(invalid(at, "takes an array of filters"));
    };
    items.iter().enumerate().map(|(i, f)| filter_at(f, &at.index(i)?)).collect()
}

/// Whether `json` is an object of operators (every key starts with `$`, and
/// it is not a one-key value marker such as `{"$uuid": …}`).
fn is_operators(json: &Json) -> bool {
    match json {
        Json::Object(map) if !map.is_empty() => {
            let value_marker = map.len() == 1 && map.keys().all(|k| MARKERS.contains(&k.as_str()));
            !value_marker && map.keys().all(|k| k.starts_with('$'))
        }
        _ => false,
    }
}

/// An operand compared with `_id`, read as an id is written
/// ([`DocId::from_json`](crate::DocId::from_json)): a string is a UUID id
/// in its canonical spelling, else a text id; `{"$text": "…"}` is a text
/// id even when it reads as a UUID. Other values are read as values.
fn id_operand(json: &Json, at: &Path<'_>) -> Result<Value, CoreError> {
    match json {
        Json::String(s) => Ok(match crate::DocId::canonical_uuid(s) {
            Some(u) => Value::Uuid(u),
            None => Value::String(s.clone()),
        }),
        Json::Object(m) if m.len() == 1 && m.contains_key("$text") => match m.get("$text") {
            Some(Json::String(s)) => Ok(Value::String(s.clone())),
            _ => Err(invalid(at, "`$text` takes a string")),
        },
        other => value_at(other, at),
    }
}

/// An operand compared with `_id` in the form [`id_operand`] reads.
fn id_operand_json(v: &Value) -> Json {
    match v {
        Value::Uuid(u) => Json::String(u.hyphenated().to_string()),
        Value::String(s) if crate::DocId::canonical_uuid(s).is_some() => one("$text", Json::String(s.clone())),
        other => other.to_json(),
    }
}

/// The conditions one field's operand sets (one per operator).
fn condition(field: &str, operand: &Json, at: &Path<'_>) -> Result<Vec<Filter>, CoreError> {
    crate::names::validate_field_path(field)?;
    let is_id = field == super::ID_FIELD;
    let value_at = |json: &Json, at: &Path<'_>| if is_id { id_operand(json, at) } else { value_at(json, at) };
    let text_id = is_id && matches!(operand, Json::Object(m) if m.len() == 1 && m.contains_key("$text"));
    if !is_operators(operand) || text_id {
        return Ok(vec![Filter::Eq(field.to_string(), value_at(operand, at)?)]);
    }
    let Json::Object(ops) = operand else { return Err(invalid(at, "expected operators")) };
    let mut all = Vec::with_capacity(ops.len());
    for (op, arg) in ops {
        let here = at.key(op)?;
        let f = field.to_string();
        let value = || value_at(arg, &here);
        let text = || arg.as_str().map(str::to_string).ok_or_else(|| invalid(&here, format!("`{op}` takes a string")));
        let flag = || arg.as_bool().ok_or_else(|| invalid(&here, format!("`{op}` takes true or false")));
        let list = || match arg {
            Json::Array(items) => items.iter().enumerate().map(|(i, v)| value_at(v, &here.index(i)?)).collect(),
            _ => Err(invalid(&here, format!("`{op}` takes an array"))),
        };
        let negate_unless = |yes: bool, f: Filter| if yes { f } else { Filter::Not(Box::new(f)) };
        all.push(match op.as_str() {
            "$eq" => Filter::Eq(f, value()?),
            "$ne" => Filter::Ne(f, value()?),
            "$gt" => Filter::Gt(f, value()?),
            "$gte" => Filter::Gte(f, value()?),
            "$lt" => Filter::Lt(f, value()?),
            "$lte" => Filter::Lte(f, value()?),
            "$between" => match <[Value; 2]>::try_from(list()?) {
                Ok([lo, hi]) => Filter::Between(f, lo, hi),
                Err(_) => return Err(invalid(&here, "`$between` takes [low, high]")),
            },
            "$in" => Filter::In(f, list()?),
            "$nin" => Filter::Not(Box::new(Filter::In(f, list()?))),
            "$has" => Filter::InArray(f, value()?),
            "$contains" => Filter::Contains(f, text()?),
            "$startsWith" => Filter::StartsWith(f, text()?),
            "$endsWith" => Filter::EndsWith(f, text()?),
            "$exists" => negate_unless(flag()?, Filter::HasField(f)),
            "$isNull" => negate_unless(flag()?, Filter::IsNull(f)),
            "$not" => Filter::Not(Box::new(conjunction(condition(field, arg, &here)?))),
            other => return Err(invalid(&here, format!("unknown operator {other:?}"))),
        });
    }
    Ok(all)
}
