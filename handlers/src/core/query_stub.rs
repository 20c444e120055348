//! TEMPORARY stand-in for `core/query/` (the full matcher, being written in parallel) so the
//! live-data pipeline compiles; same public API, a subset of the operators. When `query/mod.rs`
//! lands, delete this file and replace the `#[path]` line in core/mod.rs with `pub mod query;`.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::error::AppError;

pub const MAX_FILTER_DEPTH: usize = 32;

#[derive(Debug, Clone)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

impl From<ParseError> for AppError {
    fn from(e: ParseError) -> Self {
        AppError::invalid(e.0)
    }
}

#[derive(Debug, Clone)]
pub struct Filter {
    src: Value,
}

const OPS: [&str; 9] = [
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists",
];

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn check(m: &Map<String, Value>) -> Result<(), ParseError> {
    for (k, v) in m {
        if k == "$and" || k == "$or" {
            let Value::Array(a) = v else {
                return Err(ParseError(format!("{k} needs an array")));
            };
            for x in a {
                let Value::Object(o) = x else {
                    return Err(ParseError(format!("{k} needs objects")));
                };
                check(o)?;
            }
        } else if k.starts_with('$') {
            return Err(ParseError(format!("unsupported operator {k}")));
        } else if let Value::Object(o) = v {
            for op in o.keys() {
                if op.starts_with('$') && !OPS.contains(&op.as_str()) {
                    return Err(ParseError(format!("unsupported operator {op} at {k}")));
                }
            }
        }
    }
    Ok(())
}

fn get<'a>(doc: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = doc.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn eq(a: Option<&Value>, b: &Value) -> bool {
    match a {
        None => b.is_null(),
        Some(Value::Array(xs)) if !b.is_array() => xs.iter().any(|x| eq(Some(x), b)),
        Some(a) => cmp(a, b) == Some(Ordering::Equal) || a == b,
    }
}

fn cond(v: Option<&Value>, op: &str, arg: &Value) -> bool {
    let ord = |f: fn(Ordering) -> bool| v.and_then(|v| cmp(v, arg)).is_some_and(f);
    match op {
        "$eq" => eq(v, arg),
        "$ne" => !eq(v, arg),
        "$gt" => ord(|o| o == Ordering::Greater),
        "$gte" => ord(|o| o != Ordering::Less),
        "$lt" => ord(|o| o == Ordering::Less),
        "$lte" => ord(|o| o != Ordering::Greater),
        "$in" => arg.as_array().is_some_and(|a| a.iter().any(|x| eq(v, x))),
        "$nin" => !arg.as_array().is_some_and(|a| a.iter().any(|x| eq(v, x))),
        "$exists" => v.is_some() == arg.as_bool().unwrap_or(true),
        _ => false,
    }
}

fn matches_map(f: &Map<String, Value>, doc: &Map<String, Value>) -> bool {
    f.iter().all(|(k, v)| match k.as_str() {
        "$and" => v.as_array().is_some_and(|a| {
            a.iter()
                .all(|x| x.as_object().is_some_and(|o| matches_map(o, doc)))
        }),
        "$or" => v.as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x.as_object().is_some_and(|o| matches_map(o, doc)))
        }),
        path => match v {
            Value::Object(o) if o.keys().any(|k| k.starts_with('$')) => {
                o.iter().all(|(op, arg)| cond(get(doc, path), op, arg))
            }
            other => eq(get(doc, path), other),
        },
    })
}

fn rename_id(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let k = if k == "id" {
                        "_id".to_owned()
                    } else if let Some(rest) = k.strip_prefix("id.") {
                        format!("_id.{rest}")
                    } else {
                        k.clone()
                    };
                    let v = if k == "$and" || k == "$or" {
                        match v {
                            Value::Array(a) => Value::Array(a.iter().map(rename_id).collect()),
                            other => other.clone(),
                        }
                    } else {
                        v.clone()
                    };
                    (k, v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Filter {
    pub fn parse(v: &Value) -> Result<Filter, ParseError> {
        let Value::Object(m) = v else {
            return Err(ParseError("a filter must be an object".into()));
        };
        if depth(v) > MAX_FILTER_DEPTH {
            return Err(ParseError(format!(
                "filter nests deeper than {MAX_FILTER_DEPTH} levels"
            )));
        }
        check(m)?;
        Ok(Filter { src: v.clone() })
    }

    pub fn match_all() -> Filter {
        Filter {
            src: Value::Object(Map::new()),
        }
    }

    pub fn matches(&self, doc: &Map<String, Value>) -> bool {
        self.src.as_object().is_some_and(|f| matches_map(f, doc))
    }

    pub fn to_mongo(&self) -> Value {
        rename_id(&self.src)
    }

    pub fn source(&self) -> &Value {
        &self.src
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Default)]
pub struct Sort(pub Vec<(String, SortDir)>);

impl Sort {
    pub fn parse_spec(s: &str) -> Result<Sort, ParseError> {
        let mut out = Vec::new();
        for part in s.split(',') {
            let (name, dir) = match part.strip_prefix('-') {
                Some(n) => (n, SortDir::Desc),
                None => (part, SortDir::Asc),
            };
            if name.is_empty() || name.starts_with('$') {
                return Err(ParseError(format!("bad sort field {part:?}")));
            }
            out.push((name.to_owned(), dir));
        }
        Ok(Sort(out))
    }

    pub fn to_mongo(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, d)| {
                    let k = if k == "id" {
                        "_id".to_owned()
                    } else {
                        k.clone()
                    };
                    (k, Value::from(if *d == SortDir::Asc { 1 } else { -1 }))
                })
                .collect(),
        )
    }

    pub fn compare(&self, a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
        for (k, d) in &self.0 {
            let o = compare_values(
                get(a, k).unwrap_or(&Value::Null),
                get(b, k).unwrap_or(&Value::Null),
            );
            let o = if *d == SortDir::Desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        compare_values(
            a.get("id").unwrap_or(&Value::Null),
            b.get("id").unwrap_or(&Value::Null),
        )
    }
}

pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Number(_) => 1,
            Value::String(_) => 2,
            Value::Object(_) => 3,
            Value::Array(_) => 4,
            Value::Bool(_) => 5,
        }
    }
    cmp(a, b).unwrap_or_else(|| rank(a).cmp(&rank(b)))
}
