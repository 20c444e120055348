//! The live-query filter language: a whitelist of MongoDB query operators (`$eq $ne $gt $gte
//! $lt $lte $in $nin $exists $and $or $nor $not $regex $size $all $elemMatch`), dotted paths
//! and implicit equality, parsed into a typed AST and evaluated with MongoDB's semantics so a
//! live query and a MongoDB `find` agree on the same documents (tests/matcher_agreement.rs).
//!
//! Semantics kept from MongoDB: a path traverses arrays (`tags: "x"` matches an array holding
//! "x"; `items.qty` looks into every element; a numeric component also indexes); comparisons
//! only match values of the same type bracket; `null` matches missing fields; `$ne`, `$nin`
//! and `$not` match documents without the field; `$all` is an `$and` of equalities.
//! Known difference: JSON objects here do not keep key order, so embedded-document equality
//! ignores field order (MongoDB compares it).

use std::cmp::Ordering;

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Number, Value};

use super::error::AppError;

/// Filters nest at most this deep (objects and arrays of the filter JSON).
pub const MAX_FILTER_DEPTH: usize = 32;
/// Bounds the compiled program of one `$regex` (and so its compile time: both grow with it).
const MAX_REGEX_BYTES: usize = 256 * 1024;
/// Bounds the lazy DFA cache one `$regex` may grow while matching (per thread that matches it).
const MAX_REGEX_CACHE_BYTES: usize = 256 * 1024;

/// What one filter may cost, checked by `Filter::parse` before anything is compiled, so live
/// queries, REST listings and everything else that takes a filter share one bound. Every
/// client-sent filter is held (and matched against every write of its collection) for as long as
/// its subscription lives, so each dimension of its cost is capped: its size, how many
/// operators and values it has, how many regexes it compiles, and how long its lists are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterBudget {
    /// Nodes: every JSON value of the filter, except the elements of `$in`/`$nin`/`$all` lists
    /// (each list counts once; its length has its own cap).
    pub max_nodes: usize,
    pub max_regexes: usize,
    /// Elements of one `$in`, `$nin` or `$all` list.
    pub max_list_len: usize,
    /// The filter's size as compact JSON.
    pub max_bytes: usize,
}

impl Default for FilterBudget {
    fn default() -> Self {
        FilterBudget {
            max_nodes: 256,
            max_regexes: 16,
            max_list_len: 1000,
            max_bytes: 16 * 1024,
        }
    }
}

/// Counts serialized bytes and gives up past the limit, so an oversized filter is never
/// serialized whole just to be measured.
struct ByteCounter {
    n: usize,
    limit: usize,
}

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.n = self.n.saturating_add(buf.len());
        if self.n > self.limit {
            return Err(std::io::Error::other("over budget"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn check_budget(v: &Value, b: &FilterBudget) -> Result<(), ParseError> {
    let mut bytes = ByteCounter {
        n: 0,
        limit: b.max_bytes,
    };
    if serde_json::to_writer(&mut bytes, v).is_err() {
        return err(format!(
            "the filter is larger than {} bytes of JSON",
            b.max_bytes
        ));
    }
    // Iterative, like `depth`: runs before any recursive parsing.
    let (mut nodes, mut regexes) = (0usize, 0usize);
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        nodes += 1;
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    match (k.as_str(), c) {
                        ("$in" | "$nin" | "$all", Value::Array(items)) => {
                            if items.len() > b.max_list_len {
                                return err(format!(
                                    "{k} lists at most {} values (this one has {})",
                                    b.max_list_len,
                                    items.len()
                                ));
                            }
                            nodes += 1;
                        }
                        ("$regex", _) => {
                            regexes += 1;
                            stack.push(c);
                        }
                        _ => stack.push(c),
                    }
                }
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    if regexes > b.max_regexes {
        return err(format!(
            "the filter has {regexes} $regex; at most {}",
            b.max_regexes
        ));
    }
    if nodes > b.max_nodes {
        return err(format!(
            "the filter has {nodes} nodes (operators, fields and values); at most {}",
            b.max_nodes
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
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

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

// ------------------------------------------------------------------------------------ AST

#[derive(Debug, Clone)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Nor(Vec<Expr>),
    /// Every condition on the path holds.
    Field(Vec<String>, Vec<Cond>),
}

#[derive(Debug, Clone)]
enum Cond {
    Eq(Value),
    Ne(Value),
    Cmp(Ordering, bool, Value),
    In(ValueSet),
    Nin(ValueSet),
    Exists(bool),
    Not(Vec<Cond>),
    Regex(Regex),
    Size(usize),
    All(Vec<Value>),
    ElemOps(Vec<Cond>),
    ElemQuery(Box<Expr>),
}

/// A `$in`/`$nin` list with its scalars sorted, so a document array is checked against it in
/// |array| × log |list| comparisons rather than |array| × |list|.
#[derive(Debug, Clone)]
struct ValueSet {
    scalars: Vec<Value>,
    /// Arrays and objects: compared one by one (they equal only their own kind).
    others: Vec<Value>,
}

/// Equality's order: by type bracket, then within it.
fn bracket_order(a: &Value, b: &Value) -> Ordering {
    rank(a).cmp(&rank(b)).then_with(|| compare_values(a, b))
}

impl ValueSet {
    fn new(items: Vec<Value>) -> ValueSet {
        let (mut scalars, others): (Vec<Value>, Vec<Value>) = items
            .into_iter()
            .partition(|v| !v.is_array() && !v.is_object());
        scalars.sort_by(bracket_order);
        ValueSet { scalars, others }
    }

    /// Whether some value of the list equals `v`.
    fn contains(&self, v: &Value) -> bool {
        if v.is_array() || v.is_object() {
            self.others.iter().any(|x| values_equal(v, x))
        } else {
            self.scalars
                .binary_search_by(|x| bracket_order(x, v))
                .is_ok()
        }
    }

    /// `$in`: some reached value (or, for an array, one of its elements) is in the list;
    /// a missing field counts as null.
    fn holds_for(&self, vals: &[Reached<'_>]) -> bool {
        vals.iter().any(|r| match r.v {
            None => self.contains(&Value::Null),
            Some(v) => {
                self.contains(v)
                    || (r.expand
                        && matches!(v, Value::Array(items) if items.iter().any(|e| self.contains(e))))
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct Filter {
    expr: Expr,
    src: Value,
}

fn depth(v: &Value) -> usize {
    // Iterative, so a hostile 100k-deep payload cannot overflow the stack here.
    let mut max = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Object(m) => {
                max = max.max(d + 1);
                if d < MAX_FILTER_DEPTH + 1 {
                    stack.extend(m.values().map(|c| (c, d + 1)));
                }
            }
            Value::Array(a) => {
                max = max.max(d + 1);
                if d < MAX_FILTER_DEPTH + 1 {
                    stack.extend(a.iter().map(|c| (c, d + 1)));
                }
            }
            _ => {}
        }
    }
    max
}

fn parse_path(p: &str) -> Result<Vec<String>, ParseError> {
    if p.is_empty() || p.len() > 512 {
        return err(format!("field path {p:?} must be 1 to 512 characters"));
    }
    let parts: Vec<String> = p.split('.').map(str::to_owned).collect();
    if parts.iter().any(|c| c.is_empty() || c.starts_with('$')) {
        return err(format!(
            "field path {p:?}: components may not be empty or start with '$'"
        ));
    }
    Ok(parts)
}

fn parse_expr(m: &Map<String, Value>, at: &str) -> Result<Expr, ParseError> {
    let mut all = Vec::with_capacity(m.len());
    for (k, v) in m {
        let e = match k.as_str() {
            "$and" | "$or" | "$nor" => {
                let Value::Array(items) = v else {
                    return err(format!("{k} at {at} needs a non-empty array of filters"));
                };
                if items.is_empty() {
                    return err(format!("{k} at {at} needs a non-empty array of filters"));
                }
                let mut subs = Vec::with_capacity(items.len());
                for it in items {
                    let Value::Object(o) = it else {
                        return err(format!("{k} at {at} takes filter objects"));
                    };
                    subs.push(parse_expr(o, at)?);
                }
                match k.as_str() {
                    "$and" => Expr::And(subs),
                    "$or" => Expr::Or(subs),
                    _ => Expr::Nor(subs),
                }
            }
            op if op.starts_with('$') => {
                return err(format!("unsupported operator {op} at {}", display(at)));
            }
            path => {
                let full = if at.is_empty() {
                    path.to_owned()
                } else {
                    format!("{at}.{path}")
                };
                Expr::Field(parse_path(path)?, parse_field(v, &full)?)
            }
        };
        all.push(e);
    }
    Ok(if all.len() == 1 {
        all.pop().unwrap_or(Expr::And(Vec::new()))
    } else {
        Expr::And(all)
    })
}

fn display(at: &str) -> &str {
    if at.is_empty() { "the top level" } else { at }
}

fn is_operator_object(v: &Value) -> Option<&Map<String, Value>> {
    match v {
        Value::Object(m) if m.keys().next().is_some_and(|k| k.starts_with('$')) => Some(m),
        _ => None,
    }
}

fn parse_field(v: &Value, at: &str) -> Result<Vec<Cond>, ParseError> {
    match is_operator_object(v) {
        Some(m) => parse_ops(m, at),
        None => {
            if let Value::Object(m) = v
                && m.keys().any(|k| k.starts_with('$'))
            {
                return err(format!("{at}: cannot mix operators and field names"));
            }
            check_literal(v, at)?;
            Ok(vec![Cond::Eq(v.clone())])
        }
    }
}

/// Literal values may not hide operators ($-keys inside a compared document).
fn check_literal(v: &Value, at: &str) -> Result<(), ParseError> {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k.starts_with('$') {
                    return err(format!(
                        "{at}: field names in values may not start with '$'"
                    ));
                }
                check_literal(x, at)?;
            }
            Ok(())
        }
        Value::Array(a) => a.iter().try_for_each(|x| check_literal(x, at)),
        _ => Ok(()),
    }
}

fn list(v: &Value, op: &str, at: &str) -> Result<Vec<Value>, ParseError> {
    let Value::Array(a) = v else {
        return err(format!("{op} at {at} needs an array"));
    };
    for x in a {
        if is_operator_object(x).is_some() {
            return err(format!(
                "{op} at {at}: operators are not allowed inside the list"
            ));
        }
        check_literal(x, at)?;
    }
    Ok(a.clone())
}

fn regex(pattern: &Value, options: Option<&Value>, at: &str) -> Result<Regex, ParseError> {
    let Value::String(p) = pattern else {
        return err(format!("$regex at {at} needs a string pattern"));
    };
    let opts = match options {
        None => "",
        Some(Value::String(o)) => o.as_str(),
        Some(_) => return err(format!("$options at {at} must be a string")),
    };
    let mut b = RegexBuilder::new(p);
    for c in opts.chars() {
        match c {
            'i' => b.case_insensitive(true),
            'm' => b.multi_line(true),
            's' => b.dot_matches_new_line(true),
            'x' => b.ignore_whitespace(true),
            other => return err(format!("$options at {at}: unsupported flag {other:?}")),
        };
    }
    b.size_limit(MAX_REGEX_BYTES)
        .dfa_size_limit(MAX_REGEX_CACHE_BYTES)
        .build()
        .or_else(|e| err(format!("$regex at {at} is not a supported pattern: {e}")))
}

fn parse_ops(m: &Map<String, Value>, at: &str) -> Result<Vec<Cond>, ParseError> {
    let mut out = Vec::with_capacity(m.len());
    if m.contains_key("$options") && !m.contains_key("$regex") {
        return err(format!("$options at {at} needs $regex beside it"));
    }
    for (op, v) in m {
        let c = match op.as_str() {
            "$eq" => {
                check_literal(v, at)?;
                Cond::Eq(v.clone())
            }
            "$ne" => {
                check_literal(v, at)?;
                Cond::Ne(v.clone())
            }
            "$gt" | "$gte" | "$lt" | "$lte" => {
                check_literal(v, at)?;
                let (ord, eq) = match op.as_str() {
                    "$gt" => (Ordering::Greater, false),
                    "$gte" => (Ordering::Greater, true),
                    "$lt" => (Ordering::Less, false),
                    _ => (Ordering::Less, true),
                };
                Cond::Cmp(ord, eq, v.clone())
            }
            "$in" => Cond::In(ValueSet::new(list(v, op, at)?)),
            "$nin" => Cond::Nin(ValueSet::new(list(v, op, at)?)),
            "$all" => {
                let items = list(v, op, at)?;
                Cond::All(items)
            }
            "$exists" => match v {
                Value::Bool(b) => Cond::Exists(*b),
                Value::Number(n) => Cond::Exists(n.as_f64().is_some_and(|f| f != 0.0)),
                _ => return err(format!("$exists at {at} needs a boolean")),
            },
            "$size" => match v.as_u64() {
                Some(n) => Cond::Size(usize::try_from(n).unwrap_or(usize::MAX)),
                None => match v.as_f64() {
                    Some(f) if f >= 0.0 && f.fract() == 0.0 => Cond::Size(f as usize),
                    _ => return err(format!("$size at {at} needs a non-negative integer")),
                },
            },
            "$regex" => Cond::Regex(regex(v, m.get("$options"), at)?),
            "$options" => continue,
            "$not" => match v {
                Value::Object(o) if is_operator_object(v).is_some() => Cond::Not(parse_ops(o, at)?),
                _ => return err(format!("$not at {at} needs an operator object")),
            },
            "$elemMatch" => {
                let Value::Object(o) = v else {
                    return err(format!("$elemMatch at {at} needs an object"));
                };
                if is_operator_object(v).is_some()
                    && !o.keys().any(|k| k == "$and" || k == "$or" || k == "$nor")
                {
                    Cond::ElemOps(parse_ops(o, at)?)
                } else {
                    Cond::ElemQuery(Box::new(parse_expr(o, at)?))
                }
            }
            other => return err(format!("unsupported operator {other} at {at}")),
        };
        out.push(c);
    }
    Ok(out)
}

// ------------------------------------------------------------------------------ matching

/// A value a path reaches (`None` where a branch lacks the field), and whether an array there
/// also stands for its elements: not after an explicit index (`a.0`) or inside `$elemMatch`.
#[derive(Clone, Copy)]
struct Reached<'a> {
    v: Option<&'a Value>,
    expand: bool,
}

fn resolve<'a>(v: &'a Value, path: &[String], indexed: bool, out: &mut Vec<Reached<'a>>) {
    let Some((head, rest)) = path.split_first() else {
        out.push(Reached {
            v: Some(v),
            expand: !indexed,
        });
        return;
    };
    match v {
        Value::Object(m) => match m.get(head) {
            Some(child) => resolve(child, rest, false, out),
            None => out.push(Reached {
                v: None,
                expand: true,
            }),
        },
        Value::Array(items) => {
            if items.is_empty() {
                // No element to lack the field: nothing is reached (not even "missing").
                return;
            }
            let before = out.len();
            if let Ok(i) = head.parse::<usize>()
                && let Some(e) = items.get(i)
            {
                resolve(e, rest, true, out);
            }
            for e in items {
                if e.is_object() {
                    resolve(e, path, false, out);
                }
            }
            if out.len() == before {
                out.push(Reached {
                    v: None,
                    expand: true,
                });
            }
        }
        _ => out.push(Reached {
            v: None,
            expand: true,
        }),
    }
}

fn reach<'a>(doc: &'a Map<String, Value>, path: &[String]) -> Vec<Reached<'a>> {
    let mut vals = Vec::new();
    match path.split_first().and_then(|(h, _)| doc.get(h)) {
        Some(v) => resolve(v, &path[1..], false, &mut vals),
        None => vals.push(Reached {
            v: None,
            expand: true,
        }),
    }
    vals
}

fn num_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => match (a.as_u64(), b.as_u64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
        },
    }
}

/// Canonical type order (MongoDB's, for the JSON types): null < numbers < strings < objects
/// < arrays < booleans.
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

/// Total order across types (used for sorting and for comparisons inside one bracket).
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y).unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = compare_values(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((ka, va), (kb, vb)) in x.iter().zip(y) {
                let o = compare_values(va, vb)
                    .then_with(|| rank(va).cmp(&rank(vb)))
                    .then_with(|| ka.cmp(kb));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    rank(a) == rank(b) && compare_values(a, b) == Ordering::Equal
}

/// Equality against one reached value: the value itself or, for an array, any element.
fn eq_one(r: Reached<'_>, x: &Value) -> bool {
    match r.v {
        None => x.is_null(),
        Some(v) => {
            values_equal(v, x)
                || (r.expand
                    && matches!(v, Value::Array(items) if items.iter().any(|e| values_equal(e, x))))
        }
    }
}

/// A missing field compares as null.
static NULL: Value = Value::Null;

/// `$all`: every listed value equals some reached value (or an element of a reached array),
/// as `eq_one` decides. The reached values are sorted once, so a 1,000-value list against a
/// 20,000-element array costs |array| log |array| + |list| log |array| comparisons, not
/// |list| × |array|.
fn all_hold<'a>(xs: &[Value], vals: &[Reached<'a>]) -> bool {
    if xs.is_empty() {
        return false;
    }
    let mut scalars: Vec<&'a Value> = Vec::new();
    let mut others: Vec<&'a Value> = Vec::new();
    let mut push = |v: &'a Value| {
        if v.is_array() || v.is_object() {
            others.push(v);
        } else {
            scalars.push(v);
        }
    };
    for r in vals {
        match r.v {
            None => push(&NULL),
            Some(v) => {
                push(v);
                if r.expand
                    && let Value::Array(items) = v
                {
                    items.iter().for_each(&mut push);
                }
            }
        }
    }
    scalars.sort_by(|a, b| bracket_order(a, b));
    xs.iter().all(|x| {
        if x.is_array() || x.is_object() {
            others.iter().any(|o| values_equal(o, x))
        } else {
            scalars.binary_search_by(|s| bracket_order(s, x)).is_ok()
        }
    })
}

fn cmp_one(r: Reached<'_>, ord: Ordering, or_equal: bool, x: &Value) -> bool {
    let Some(v) = r.v else {
        return false;
    };
    let test = |e: &Value| {
        rank(e) == rank(x) && {
            let o = compare_values(e, x);
            o == ord || (or_equal && o == Ordering::Equal)
        }
    };
    test(v)
        || (r.expand && matches!(v, Value::Array(items) if !x.is_array() && items.iter().any(test)))
}

fn regex_one(r: Reached<'_>, re: &Regex) -> bool {
    match r.v {
        Some(Value::String(s)) => re.is_match(s),
        Some(Value::Array(items)) if r.expand => items
            .iter()
            .any(|e| matches!(e, Value::String(s) if re.is_match(s))),
        _ => false,
    }
}

fn arrays<'a>(vals: &'a [Reached<'a>]) -> impl Iterator<Item = &'a Vec<Value>> + 'a {
    vals.iter().filter_map(|r| match r.v {
        Some(Value::Array(a)) => Some(a),
        _ => None,
    })
}

fn cond_holds(c: &Cond, vals: &[Reached<'_>]) -> bool {
    match c {
        Cond::Eq(x) => vals.iter().any(|r| eq_one(*r, x)),
        Cond::Ne(x) => !vals.iter().any(|r| eq_one(*r, x)),
        Cond::Cmp(ord, or_eq, x) => {
            if x.is_null() {
                // Only $gte/$lte null match (null and missing, like $eq null).
                return *or_eq && vals.iter().any(|r| eq_one(*r, x));
            }
            vals.iter().any(|r| cmp_one(*r, *ord, *or_eq, x))
        }
        Cond::In(set) => set.holds_for(vals),
        Cond::Nin(set) => !set.holds_for(vals),
        Cond::Exists(want) => vals.iter().any(|r| r.v.is_some()) == *want,
        Cond::Not(cs) => !cs.iter().all(|c| cond_holds(c, vals)),
        Cond::Regex(re) => vals.iter().any(|r| regex_one(*r, re)),
        Cond::Size(n) => arrays(vals).any(|a| a.len() == *n),
        Cond::All(xs) => all_hold(xs, vals),
        Cond::ElemOps(cs) => arrays(vals).any(|items| {
            items.iter().any(|e| {
                let one = [Reached {
                    v: Some(e),
                    expand: false,
                }];
                cs.iter().all(|c| cond_holds(c, &one))
            })
        }),
        Cond::ElemQuery(q) => arrays(vals).any(|items| {
            items.iter().any(|e| match e {
                Value::Object(m) => expr_holds(q, m),
                _ => false,
            })
        }),
    }
}

fn expr_holds(e: &Expr, doc: &Map<String, Value>) -> bool {
    match e {
        Expr::And(es) => es.iter().all(|e| expr_holds(e, doc)),
        Expr::Or(es) => es.iter().any(|e| expr_holds(e, doc)),
        Expr::Nor(es) => !es.iter().any(|e| expr_holds(e, doc)),
        Expr::Field(path, conds) => {
            let vals = reach(doc, path);
            conds.iter().all(|c| cond_holds(c, &vals))
        }
    }
}

fn rename_id(v: &Value) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    Value::Object(
        m.iter()
            .map(|(k, v)| match k.as_str() {
                "$and" | "$or" | "$nor" => (
                    k.clone(),
                    match v {
                        Value::Array(a) => Value::Array(a.iter().map(rename_id).collect()),
                        other => other.clone(),
                    },
                ),
                "id" => ("_id".to_owned(), v.clone()),
                _ => match k.strip_prefix("id.") {
                    Some(rest) => (format!("_id.{rest}"), v.clone()),
                    None => (k.clone(), v.clone()),
                },
            })
            .collect(),
    )
}

impl Filter {
    /// Parses a client's filter, refusing it when it exceeds `budget` (before compiling it).
    pub fn parse(v: &Value, budget: &FilterBudget) -> Result<Filter, ParseError> {
        let Value::Object(m) = v else {
            return err("a filter must be a JSON object");
        };
        if depth(v) > MAX_FILTER_DEPTH {
            return err(format!(
                "the filter nests deeper than {MAX_FILTER_DEPTH} levels"
            ));
        }
        check_budget(v, budget)?;
        Ok(Filter {
            expr: parse_expr(m, "")?,
            src: v.clone(),
        })
    }

    pub fn match_all() -> Filter {
        Filter {
            expr: Expr::And(Vec::new()),
            src: Value::Object(Map::new()),
        }
    }

    pub fn matches(&self, doc: &Map<String, Value>) -> bool {
        expr_holds(&self.expr, doc)
    }

    /// The filter for a MongoDB `find` on the stored collection (`id` is stored as `_id`).
    pub fn to_mongo(&self) -> Value {
        rename_id(&self.src)
    }

    pub fn source(&self) -> &Value {
        &self.src
    }
}

// ---------------------------------------------------------------------------------- sort

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Default)]
pub struct Sort(pub Vec<(String, SortDir)>);

const MAX_SORT_KEYS: usize = 8;

/// The value a sort sees for a document: missing is null; an array sorts by its smallest
/// element ascending and its largest descending (an empty array below null).
fn sort_key<'a>(doc: &'a Map<String, Value>, path: &str, dir: SortDir) -> Option<&'a Value> {
    let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
    let vals = reach(doc, &parts);
    let mut flat: Vec<&Value> = Vec::new();
    let mut empty_array = false;
    for v in vals.iter().filter_map(|r| r.v) {
        match v {
            Value::Array(a) if a.is_empty() => empty_array = true,
            Value::Array(a) => flat.extend(a.iter()),
            other => flat.push(other),
        }
    }
    let pick = match dir {
        SortDir::Asc => flat.into_iter().min_by(|a, b| compare_values(a, b)),
        SortDir::Desc => flat.into_iter().max_by(|a, b| compare_values(a, b)),
    };
    match pick {
        Some(v) => Some(v),
        None if empty_array => None,
        None => Some(&Value::Null),
    }
}

impl Sort {
    pub fn parse_spec(s: &str) -> Result<Sort, ParseError> {
        let mut out = Vec::new();
        for part in s.split(',') {
            let (name, dir) = match part.strip_prefix('-') {
                Some(n) => (n, SortDir::Desc),
                None => (part.strip_prefix('+').unwrap_or(part), SortDir::Asc),
            };
            parse_path(name)?;
            out.push((name.to_owned(), dir));
        }
        if out.len() > MAX_SORT_KEYS {
            return err(format!("at most {MAX_SORT_KEYS} sort fields"));
        }
        Ok(Sort(out))
    }

    pub fn to_mongo(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, d)| {
                    let k = match k.as_str() {
                        "id" => "_id".to_owned(),
                        _ => k
                            .strip_prefix("id.")
                            .map_or_else(|| k.clone(), |r| format!("_id.{r}")),
                    };
                    (k, Value::from(if *d == SortDir::Asc { 1 } else { -1 }))
                })
                .collect(),
        )
    }

    /// MongoDB's order for these keys, ties broken by `id` ascending.
    pub fn compare(&self, a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
        for (k, d) in &self.0 {
            let (x, y) = (sort_key(a, k, *d), sort_key(b, k, *d));
            let o = match (x, y) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => compare_values(x, y),
            };
            let o = if *d == SortDir::Desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        let null = Value::Null;
        compare_values(a.get("id").unwrap_or(&null), b.get("id").unwrap_or(&null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn m(filter: Value, d: Value) -> bool {
        Filter::parse(&filter, &FilterBudget::default())
            .expect("valid filter")
            .matches(&doc(d))
    }

    #[test]
    fn rejects_everything_outside_the_whitelist() {
        for bad in [
            json!({"$where": "true"}),
            json!({"$expr": {"$eq": [1, 1]}}),
            json!({"a": {"$function": {}}}),
            json!({"a": {"$mod": [2, 0]}}),
            json!({"a": {"$type": "string"}}),
            json!({"$text": {"$search": "x"}}),
            json!({"a": {"$unknown": 1}}),
            json!([1]),
            json!("a"),
            json!(null),
            json!(5),
            json!({"$and": []}),
            json!({"$or": {"a": 1}}),
            json!({"$nor": [1]}),
            json!({"a": {"$in": 5}}),
            json!({"a": {"$size": -1}}),
            json!({"a": {"$size": 1.5}}),
            json!({"a": {"$exists": "yes"}}),
            json!({"a": {"$regex": 5}}),
            json!({"a": {"$regex": "(?=x)"}}),
            json!({"a": {"$regex": "a", "$options": "q"}}),
            json!({"a": {"$options": "i"}}),
            json!({"a": {"$not": 5}}),
            json!({"a": {"$gt": 1, "b": 2}}),
            json!({"": 1}),
            json!({"a..b": 1}),
            json!({"a.$b": 1}),
            json!({"a": {"$in": [{"$gt": 1}]}}),
            json!({"a": {"x": {"$gt": 1}}}),
        ] {
            assert!(
                Filter::parse(&bad, &FilterBudget::default()).is_err(),
                "accepted {bad}"
            );
        }
    }

    #[test]
    fn depth_is_bounded() {
        let mut v = json!(1);
        for _ in 0..32 {
            v = json!({ "a": v });
        }
        assert!(
            Filter::parse(&v, &FilterBudget::default()).is_ok(),
            "32 levels"
        );
        let v = json!({ "a": v });
        let e = Filter::parse(&v, &FilterBudget::default()).expect_err("33 levels");
        assert!(e.0.contains("32"));
        // Far deeper than the limit (payload decoding caps JSON nesting at 128 anyway): refused
        // by the iterative depth check before any recursive parsing.
        let mut deep = json!(1);
        for _ in 0..5_000 {
            deep = Value::Array(vec![deep]);
        }
        let mut top = Map::new();
        top.insert("a".to_owned(), deep);
        assert!(Filter::parse(&Value::Object(top), &FilterBudget::default()).is_err());
    }

    #[test]
    fn every_dimension_of_the_budget_is_enforced() {
        let b = FilterBudget {
            max_nodes: 8,
            max_regexes: 2,
            max_list_len: 3,
            max_bytes: 96,
        };
        let refused = |v: Value, why: &str| {
            let e = Filter::parse(&v, &b).expect_err("over budget");
            assert!(e.0.contains(why), "{v}: {e}");
        };
        refused(json!({"a": {"$in": [1, 2, 3, 4]}}), "$in lists at most 3");
        refused(json!({"a": {"$nin": [1, 2, 3, 4]}}), "$nin lists at most 3");
        refused(json!({"a": {"$all": [1, 2, 3, 4]}}), "$all lists at most 3");
        refused(
            json!({"$or": [{"a": {"$regex": "x"}}, {"b": {"$regex": "y"}}, {"c": {"$regex": "z"}}]}),
            "$regex",
        );
        refused(
            json!({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "h": 8}),
            "nodes",
        );
        refused(json!({"a": "x".repeat(96)}), "96 bytes");
        // At the limits: admitted.
        assert!(Filter::parse(&json!({"a": {"$in": [1, 2, 3]}, "b": {"$regex": "x"}}), &b).is_ok());
        // The defaults admit a full list but not the issue's 20,000 zeros.
        let d = FilterBudget::default();
        assert!(Filter::parse(&json!({"tags": {"$in": vec![0; 1000]}}), &d).is_ok());
        assert!(Filter::parse(&json!({"tags": {"$in": vec![0; 20_000]}}), &d).is_err());
    }

    #[test]
    fn equality_nulls_and_arrays() {
        assert!(m(json!({"a": 1}), json!({"a": 1.0})));
        assert!(m(json!({"a": null}), json!({"b": 1})));
        assert!(m(json!({"a": null}), json!({"a": null})));
        assert!(!m(json!({"a": null}), json!({"a": 0})));
        assert!(m(json!({"tags": "x"}), json!({"tags": ["y", "x"]})));
        assert!(m(json!({"a": [1, 2]}), json!({"a": [1, 2]})));
        assert!(m(json!({"a": [1, 2]}), json!({"a": [[1, 2], 3]})));
        assert!(!m(json!({"a": [1, 2]}), json!({"a": [2, 1]})));
        assert!(m(json!({"a": {"x": 1}}), json!({"a": {"x": 1}})));
        assert!(!m(json!({"a": {"x": 1}}), json!({"a": {"x": 1, "y": 2}})));
        assert!(m(json!({"a.b": 2}), json!({"a": [{"b": 1}, {"b": 2}]})));
        assert!(m(json!({"a.1": 5}), json!({"a": [4, 5]})));
        assert!(m(json!({"a.b": null}), json!({"a": [{"b": 1}, {}]})));
        assert!(m(json!({"id": "x"}), json!({"id": "x"})));
    }

    #[test]
    fn comparisons_stay_in_their_type_bracket() {
        assert!(m(json!({"n": {"$gt": 5}}), json!({"n": 6})));
        assert!(!m(json!({"n": {"$gt": 5}}), json!({"n": "9"})));
        assert!(m(json!({"n": {"$gte": 5, "$lt": 7}}), json!({"n": [1, 6]})));
        assert!(m(json!({"s": {"$lt": "b"}}), json!({"s": "a"})));
        assert!(m(json!({"n": {"$gte": null}}), json!({})));
        assert!(!m(json!({"n": {"$gt": null}}), json!({"n": 1})));
        assert!(m(
            json!({"items.qty": {"$gt": 5}}),
            json!({"items": [{"qty": 1}, {"qty": 9}]})
        ));
    }

    #[test]
    fn negations_match_missing_fields() {
        assert!(m(json!({"a": {"$ne": 1}}), json!({})));
        assert!(!m(json!({"a": {"$ne": 1}}), json!({"a": [1, 2]})));
        assert!(m(json!({"a": {"$nin": [1, 2]}}), json!({"a": 3})));
        assert!(m(json!({"a": {"$nin": [1]}}), json!({})));
        assert!(m(json!({"a": {"$not": {"$gt": 5}}}), json!({"a": 1})));
        assert!(m(json!({"a": {"$not": {"$gt": 5}}}), json!({})));
        assert!(m(json!({"$nor": [{"a": 1}, {"b": 2}]}), json!({"a": 2})));
    }

    #[test]
    fn the_other_operators() {
        assert!(m(json!({"a": {"$in": [1, null]}}), json!({})));
        assert!(m(json!({"a": {"$exists": true}}), json!({"a": null})));
        assert!(m(json!({"a": {"$exists": false}}), json!({"b": 1})));
        assert!(m(json!({"a": {"$size": 2}}), json!({"a": [1, 2]})));
        assert!(!m(json!({"a": {"$size": 2}}), json!({"a": "ab"})));
        assert!(m(json!({"a": {"$all": [1, 2]}}), json!({"a": [2, 3, 1]})));
        assert!(!m(json!({"a": {"$all": []}}), json!({"a": [1]})));
        assert!(m(
            json!({"s": {"$regex": "^ab", "$options": "i"}}),
            json!({"s": "ABc"})
        ));
        assert!(m(json!({"s": {"$regex": "b"}}), json!({"s": ["x", "abc"]})));
        assert!(!m(json!({"s": {"$regex": "b"}}), json!({"s": 5})));
        assert!(m(
            json!({"r": {"$elemMatch": {"$gte": 80, "$lt": 85}}}),
            json!({"r": [70, 82, 90]})
        ));
        assert!(!m(
            json!({"r": {"$elemMatch": {"$gte": 80, "$lt": 85}}}),
            json!({"r": [70, 90]})
        ));
        assert!(m(
            json!({"r": {"$elemMatch": {"p": "x", "s": {"$gt": 8}}}}),
            json!({"r": [{"p": "x", "s": 1}, {"p": "x", "s": 9}]})
        ));
        assert!(!m(
            json!({"r": {"$elemMatch": {"p": "x", "s": {"$gt": 8}}}}),
            json!({"r": [{"p": "x", "s": 1}, {"p": "y", "s": 9}]})
        ));
        assert!(m(
            json!({"$or": [{"a": 1}, {"b": {"$exists": true}}]}),
            json!({"b": 0})
        ));
    }

    #[test]
    fn to_mongo_renames_the_id() {
        let f = Filter::parse(
            &json!({"id": "x", "$or": [{"id.k": 1}, {"n": 2}]}),
            &FilterBudget::default(),
        )
        .expect("ok");
        assert_eq!(
            f.to_mongo(),
            json!({"_id": "x", "$or": [{"_id.k": 1}, {"n": 2}]})
        );
    }

    #[test]
    fn sorting_follows_mongodb() {
        let s = Sort::parse_spec("n,-id").expect("sort");
        let a = doc(json!({"id": "a", "n": 2}));
        let b = doc(json!({"id": "b", "n": [1, 5]}));
        let c = doc(json!({"id": "c"}));
        let mut v = [&a, &b, &c];
        v.sort_by(|x, y| s.compare(x, y));
        assert_eq!(
            v.iter().map(|d| d["id"].clone()).collect::<Vec<_>>(),
            vec![json!("c"), json!("b"), json!("a")]
        );
        assert!(Sort::parse_spec("$x").is_err());
        assert!(Sort::parse_spec("a,,b").is_err());
        assert_eq!(
            Sort::parse_spec("-id").expect("sort").to_mongo(),
            json!({"_id": -1})
        );
    }
}
