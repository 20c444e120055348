//! The `filter` of a postgres_changes binding: PostgREST-style terms `column=[not.]op.value`,
//! comma-joined (AND), as realtime-js's `postgresChangesFilter()` writes them, evaluated against
//! a document. Values compare by the document field's JSON type (a string field compares as
//! text, a number field numerically), the way Postgres casts a filter value to the column's type;
//! a missing or null field is SQL NULL, so only `is.null` (and `isdistinct`) match it.

use std::cmp::Ordering;

use serde_json::Value;
use switchboard_handlers::core::model::DocumentBody;
use switchboard_handlers::core::ports::lookup;

/// A filter string is at most this long, so parsing and matching stay cheap per change.
pub const MAX_FILTER_BYTES: usize = 1024;
/// Terms one filter may join.
pub const MAX_TERMS: usize = 8;
/// Values one `in.(…)` list may hold.
pub const MAX_IN_VALUES: usize = 100;
/// A column name (a top-level field, or a dotted path into nested objects).
const MAX_COLUMN_BYTES: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    Neq(String),
    Lt(String),
    Lte(String),
    Gt(String),
    Gte(String),
    In(Vec<String>),
    Is(IsValue),
    IsDistinct(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum IsValue {
    Null,
    True,
    False,
}

#[derive(Debug, Clone, PartialEq)]
struct Term {
    column: String,
    negate: bool,
    op: Op,
}

/// A parsed filter; the empty filter matches every document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowFilter {
    terms: Vec<Term>,
}

impl RowFilter {
    /// Parses a binding's `filter`; the error says what is wrong, for the join's error reply.
    pub fn parse(s: &str) -> Result<RowFilter, String> {
        if s.len() > MAX_FILTER_BYTES {
            return Err(format!("a filter is at most {MAX_FILTER_BYTES} bytes"));
        }
        let mut terms = Vec::new();
        for part in split_top(s, ',')? {
            if part.trim().is_empty() {
                continue;
            }
            if terms.len() == MAX_TERMS {
                return Err(format!("a filter joins at most {MAX_TERMS} terms"));
            }
            terms.push(parse_term(&part)?);
        }
        Ok(RowFilter { terms })
    }

    pub fn matches(&self, doc: &DocumentBody) -> bool {
        self.terms.iter().all(|t| {
            let v = lookup(doc, &t.column).filter(|v| !v.is_null());
            let r = eval(&t.op, v);
            // SQL's three-valued logic: NOT of unknown is still unknown, which filters out.
            let r = if t.negate { r.map(|b| !b) } else { r };
            r == Some(true)
        })
    }
}

fn parse_term(t: &str) -> Result<Term, String> {
    let Some((column, rest)) = t.split_once('=') else {
        return Err(format!("filter term {t:?} is not column=op.value"));
    };
    let column = column.trim();
    if column.is_empty()
        || column.len() > MAX_COLUMN_BYTES
        || column.chars().any(char::is_control)
        || column.split('.').any(str::is_empty)
    {
        return Err(format!(
            "filter column {column:?} must be 1 to {MAX_COLUMN_BYTES} bytes, dots between names"
        ));
    }
    let (negate, rest) = match rest.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let Some((op, value)) = rest.split_once('.') else {
        return Err(format!("filter term {t:?} has no operator"));
    };
    let op = match op {
        "eq" => Op::Eq(unquote(value)?),
        "neq" => Op::Neq(unquote(value)?),
        "lt" => Op::Lt(unquote(value)?),
        "lte" => Op::Lte(unquote(value)?),
        "gt" => Op::Gt(unquote(value)?),
        "gte" => Op::Gte(unquote(value)?),
        "isdistinct" => Op::IsDistinct(unquote(value)?),
        "is" => Op::Is(match value.to_ascii_lowercase().as_str() {
            "null" | "unknown" => IsValue::Null,
            "true" => IsValue::True,
            "false" => IsValue::False,
            _ => return Err(format!("is.{value} must be is.null, is.true or is.false")),
        }),
        "in" => {
            let inner = value
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| format!("in.{value} must be in.(a,b,…)"))?;
            let items = split_top(inner, ',')?;
            if items.len() > MAX_IN_VALUES {
                return Err(format!("in.(…) holds at most {MAX_IN_VALUES} values"));
            }
            Op::In(items.iter().map(|i| unquote(i)).collect::<Result<_, _>>()?)
        }
        other => {
            return Err(format!(
                "filter operator {other:?} is not supported (eq, neq, lt, lte, gt, gte, in, is, isdistinct)"
            ));
        }
    };
    Ok(Term {
        column: column.to_owned(),
        negate,
        op,
    })
}

/// Splits at `sep` outside double quotes and parentheses.
fn split_top(s: &str, sep: char) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped, mut depth) = (false, false, 0u32);
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if !quoted && c == '(' {
            depth += 1;
        } else if !quoted && c == ')' {
            depth = depth.checked_sub(1).ok_or("unbalanced ')' in filter")?;
        } else if !quoted && depth == 0 && c == sep {
            out.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
    }
    if quoted || depth != 0 {
        return Err("unbalanced quotes or parentheses in filter".to_owned());
    }
    out.push(cur);
    Ok(out)
}

/// PostgREST quoting: `"…"` with `\"` and `\\` inside; anything else is taken as written.
fn unquote(v: &str) -> Result<String, String> {
    let t = v.trim();
    let Some(inner) = t.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return Ok(t.to_owned());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next().ok_or("a quoted filter value ends with '\\'")?);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// `None` is SQL's unknown (a NULL field, or a value that does not compare with the field's type).
fn eval(op: &Op, v: Option<&Value>) -> Option<bool> {
    match op {
        Op::Is(want) => Some(match (want, v) {
            (IsValue::Null, v) => v.is_none(),
            (IsValue::True, v) => v == Some(&Value::Bool(true)),
            (IsValue::False, v) => v == Some(&Value::Bool(false)),
        }),
        Op::IsDistinct(s) => Some(match v {
            None => s != "null",
            Some(v) => equal(v, s) != Some(true),
        }),
        Op::In(list) => {
            let v = v?;
            Some(list.iter().any(|s| equal(v, s) == Some(true)))
        }
        Op::Eq(s) => equal(v?, s),
        Op::Neq(s) => equal(v?, s).map(|e| !e),
        Op::Lt(s) => order(v?, s).map(|o| o == Ordering::Less),
        Op::Lte(s) => order(v?, s).map(|o| o != Ordering::Greater),
        Op::Gt(s) => order(v?, s).map(|o| o == Ordering::Greater),
        Op::Gte(s) => order(v?, s).map(|o| o != Ordering::Less),
    }
}

/// Whether the field equals the filter's text read as the field's type; objects and arrays
/// equal their JSON text.
fn equal(v: &Value, s: &str) -> Option<bool> {
    match v {
        Value::Object(_) | Value::Array(_) => {
            serde_json::from_str::<Value>(s).ok().map(|o| *v == o)
        }
        _ => order(v, s).map(|o| o == Ordering::Equal),
    }
}

/// The field against the filter's text read as the field's type; objects and arrays have no order.
fn order(v: &Value, s: &str) -> Option<Ordering> {
    match v {
        Value::String(x) => Some(x.as_str().cmp(s)),
        Value::Number(n) => {
            if let (Some(a), Ok(b)) = (n.as_i64(), s.parse::<i64>()) {
                return Some(a.cmp(&b));
            }
            n.as_f64()?.partial_cmp(&s.parse::<f64>().ok()?)
        }
        Value::Bool(b) => {
            let other = match s.to_ascii_lowercase().as_str() {
                "true" | "t" => true,
                "false" | "f" => false,
                _ => return None,
            };
            Some(b.cmp(&other))
        }
        Value::Object(_) | Value::Array(_) | Value::Null => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(v: Value) -> DocumentBody {
        match v {
            Value::Object(m) => m,
            _ => DocumentBody::new(),
        }
    }

    fn m(filter: &str, d: Value) -> bool {
        RowFilter::parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(&doc(d))
    }

    #[test]
    fn comparisons_follow_the_fields_type() {
        let d = json!({"id": "7", "n": 5, "x": 2.5, "done": true, "tag": "b", "meta": {"k": "v"}});
        assert!(m("id=eq.7", d.clone()), "a string field compares as text");
        assert!(m("n=eq.5", d.clone()));
        assert!(m("n=gt.4,n=lt.6,n=gte.5,n=lte.5", d.clone()));
        assert!(!m("n=gt.5", d.clone()));
        assert!(m("n=lt.10", d.clone()), "numerically, not as text");
        assert!(m("x=gt.2.25", d.clone()));
        assert!(m("done=eq.true", d.clone()) && m("done=eq.t", d.clone()));
        assert!(m("tag=neq.a", d.clone()) && !m("tag=neq.b", d.clone()));
        assert!(m("tag=in.(a,b,c)", d.clone()) && !m("tag=in.(a,c)", d.clone()));
        assert!(m("n=in.(1,5)", d.clone()));
        assert!(
            m("meta.k=eq.v", d.clone()),
            "a dotted path reads nested fields"
        );
        assert!(m(r#"meta=eq.{"k":"v"}"#, d.clone()) && m(r#"meta=neq.{"k":1}"#, d.clone()));
        assert!(!m("meta=gt.1", d.clone()), "objects have no order");
        assert!(m("", d.clone()), "no filter matches everything");
        assert!(
            !m("n=eq.abc", d.clone()),
            "a value of another type never matches"
        );
        assert!(!m("n=neq.abc", d.clone()));
    }

    #[test]
    fn null_and_missing_fields_are_sql_null() {
        let d = json!({"a": null, "b": 1});
        assert!(m("a=is.null", d.clone()) && m("gone=is.null", d.clone()));
        assert!(!m("b=is.null", d.clone()) && m("b=not.is.null", d.clone()));
        assert!(!m("a=eq.1", d.clone()) && !m("a=neq.1", d.clone()));
        assert!(!m("a=not.eq.1", d.clone()), "NOT unknown is unknown");
        assert!(m("a=isdistinct.1", d.clone()) && m("b=isdistinct.2", d.clone()));
        assert!(!m("b=isdistinct.1", d.clone()));
        assert!(m("b=not.eq.2", d));
    }

    #[test]
    fn quoted_values_keep_reserved_characters() {
        let d = json!({"s": "a,b", "q": "say \"hi\"", "p": "(x)"});
        assert!(m(r#"s=eq."a,b""#, d.clone()));
        assert!(m(r#"s=in.("a,b",c)"#, d.clone()));
        assert!(m(r#"q=eq."say \"hi\"""#, d.clone()));
        assert!(m(r#"p=eq."(x)""#, d));
    }

    #[test]
    fn bad_filters_are_refused_with_a_reason() {
        for bad in [
            "nocolumn",
            "=eq.1",
            "a=eq",
            "a=like.x%",
            "a=in.1,2",
            "a=in.(1,2",
            r#"a=eq."open"#,
            "a=is.maybe",
            "a..b=eq.1",
        ] {
            assert!(RowFilter::parse(bad).is_err(), "{bad}");
        }
        assert!(RowFilter::parse(&"a=eq.1,".repeat(MAX_TERMS + 1)).is_err());
        assert!(RowFilter::parse(&format!("a=eq.{}", "x".repeat(MAX_FILTER_BYTES))).is_err());
        let many: Vec<String> = (0..=MAX_IN_VALUES).map(|i| i.to_string()).collect();
        assert!(RowFilter::parse(&format!("a=in.({})", many.join(","))).is_err());
    }
}
