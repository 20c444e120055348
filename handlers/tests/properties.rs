//! Property tests over generated input (proptest; `PROPTEST_CASES` bounds the run, 1,024 cases per
//! property by default, about a second in all): the live-query parser and matcher, sort specs and
//! the value order, and the payload decoders never panic, and keep their invariants.

use std::cmp::Ordering;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use switchboard_handlers::core::query::{Filter, FilterBudget, Sort, compare_values};
use switchboard_handlers::socketio::payload::decode;

const KEYS: &[&str] = &[
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$and",
    "$or",
    "$nor",
    "$not",
    "$regex",
    "$options",
    "$size",
    "$all",
    "$elemMatch",
    "$where",
    "$expr",
    "$function",
    "a",
    "b",
    "a.b",
    "tags",
    "n",
    "",
    "é",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        "[a-z.*+?()\\[\\]^$|]{0,8}".prop_map(Value::String),
        prop::sample::select(KEYS).prop_map(|k| Value::String(k.to_owned())),
    ]
}

/// JSON trees biased towards filter-shaped objects (operator keys, dotted paths).
fn json_tree() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

fn document() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(
        (
            prop::sample::select(&["a", "b", "tags", "n", "x"][..]),
            json_tree(),
        ),
        0..6,
    )
    .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Small literals that often collide (1 and 1.0, equal strings, arrays of them), so `$in`
/// checks meet equal values across types and nesting.
fn small_literal() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0i64..4).prop_map(|n| json!(n)),
        (0i64..4).prop_map(|n| json!(n as f64)),
        Just(json!(2.5)),
        prop::sample::select(&["x", "y", ""][..]).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(&["a", "b"][..]), inner), 0..3).prop_map(
                |kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            ),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1024)
    ))]

    #[test]
    fn filters_parse_and_match_without_panicking(filter in json_tree(), docs in prop::collection::vec(document(), 0..4)) {
        if let Ok(f) = Filter::parse(&filter, &FilterBudget::default()) {
            for d in &docs {
                let _ = f.matches(d);
            }
            // What the matcher accepted is what MongoDB is sent: it must parse again the same.
            let again = Filter::parse(&f.to_mongo(), &FilterBudget::default());
            prop_assert!(again.is_ok(), "to_mongo of {filter} does not parse: {:?}", again.err());
            if let Ok(g) = again {
                for d in &docs {
                    prop_assert_eq!(f.matches(d), g.matches(d));
                }
            }
        }
    }

    #[test]
    fn in_and_nin_are_or_and_nor_of_equalities(
        list in prop::collection::vec(small_literal(), 1..8),
        docs in prop::collection::vec(
            prop::collection::vec((prop::sample::select(&["a", "b"][..]), small_literal()), 0..3),
            1..4,
        ),
    ) {
        let budget = FilterBudget::default();
        let eqs: Vec<Value> = list.iter().map(|x| json!({ "a": { "$eq": x } })).collect();
        let pairs = [
            (json!({ "a": { "$in": list.clone() } }), json!({ "$or": eqs.clone() })),
            (json!({ "a": { "$nin": list.clone() } }), json!({ "$nor": eqs })),
        ];
        for (set, spelled_out) in pairs {
            let f = Filter::parse(&set, &budget);
            let g = Filter::parse(&spelled_out, &budget);
            prop_assert!(f.is_ok() && g.is_ok(), "{set} / {spelled_out}");
            if let (Ok(f), Ok(g)) = (f, g) {
                for kv in &docs {
                    let d: Map<String, Value> =
                        kv.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
                    prop_assert_eq!(f.matches(&d), g.matches(&d), "{} on {:?}", set, d);
                }
            }
        }
    }

    #[test]
    fn all_is_an_and_of_equalities(
        list in prop::collection::vec(small_literal(), 1..8),
        docs in prop::collection::vec(
            prop::collection::vec((prop::sample::select(&["a", "b"][..]), small_literal()), 0..3),
            1..4,
        ),
    ) {
        let budget = FilterBudget::default();
        let eqs: Vec<Value> = list.iter().map(|x| json!({ "a": { "$eq": x } })).collect();
        let all = json!({ "a": { "$all": list.clone() } });
        let spelled_out = json!({ "$and": eqs });
        let f = Filter::parse(&all, &budget);
        let g = Filter::parse(&spelled_out, &budget);
        prop_assert!(f.is_ok() && g.is_ok(), "{all} / {spelled_out}");
        if let (Ok(f), Ok(g)) = (f, g) {
            for kv in &docs {
                let d: Map<String, Value> =
                    kv.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
                prop_assert_eq!(f.matches(&d), g.matches(&d), "{} on {:?}", all, d);
            }
        }
    }

    #[test]
    fn forbidden_operators_never_parse(inner in json_tree(), op in prop::sample::select(&["$where", "$expr", "$function", "$unknown"][..])) {
        let filter = json!({ "a": 1, op: inner.clone() });
        prop_assert!(Filter::parse(&filter, &FilterBudget::default()).is_err());
        let nested = json!({ "$and": [ { "x": 1 }, { op: inner } ] });
        prop_assert!(Filter::parse(&nested, &FilterBudget::default()).is_err());
    }

    #[test]
    fn value_order_is_a_total_order(a in json_tree(), b in json_tree(), c in json_tree()) {
        prop_assert_eq!(compare_values(&a, &a), Ordering::Equal);
        prop_assert_eq!(compare_values(&a, &b), compare_values(&b, &a).reverse());
        if compare_values(&a, &b) != Ordering::Greater && compare_values(&b, &c) != Ordering::Greater {
            prop_assert_ne!(compare_values(&a, &c), Ordering::Greater);
        }
    }

    #[test]
    fn sorts_parse_and_compare_without_panicking(spec in "[-a-z.,]{0,20}", x in document(), y in document()) {
        if let Ok(s) = Sort::parse_spec(&spec) {
            prop_assert_eq!(s.compare(&x, &y), s.compare(&y, &x).reverse());
        }
    }

    #[test]
    fn payload_decoders_never_panic(v in json_tree()) {
        let _ = decode::<switchboard_handlers::integration::Execute>(v.clone());
        let _ = decode::<switchboard_handlers::wallet::AddressRef>(v.clone());
        let _ = decode::<switchboard_handlers::core::custom::Broadcast>(v.clone());
        let _ = decode::<switchboard_handlers::core::custom::DirectMessage>(v.clone());
        let _ = decode::<switchboard_handlers::core::wallet::NewTransaction>(v.clone());
        let _ = decode::<switchboard_handlers::core::integration::IntegrationSpec>(v.clone());
        let _ = decode::<switchboard_handlers::socketio::payload::ProjectRef>(v.clone());
        if v.is_array() {
            prop_assert!(decode::<switchboard_handlers::wallet::AddressRef>(v).is_err());
        }
    }
}
