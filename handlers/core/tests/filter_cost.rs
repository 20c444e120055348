//! What the most expensive filter the budget admits costs: it must compile in well under a
//! second and hold well under 64 MiB, matching included; anything beyond is refused before any
//! compiling. Memory is the process's resident set (this test binary's only test).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_core::query::{Filter, FilterBudget};

/// This process's resident memory (Linux), in bytes.
fn rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

const MIB: usize = 1024 * 1024;

fn regexes(n: usize, pattern: &str) -> Value {
    let all: Vec<Value> = (0..n)
        .map(|i| json!({ format!("f{i}"): {"$regex": pattern, "$options": "i"} }))
        .collect();
    json!({ "$or": all })
}

/// The largest `\w{n}` (Unicode word characters, case-insensitive: a big program per
/// repetition) that still compiles under the per-regex size limit.
fn largest_pattern(budget: &FilterBudget) -> String {
    let mut n = 1;
    while Filter::parse(&regexes(1, &format!(r"\w{{{}}}", n * 2)), budget).is_ok() {
        n *= 2;
    }
    let (mut lo, mut hi) = (n, n * 2);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if Filter::parse(&regexes(1, &format!(r"\w{{{mid}}}")), budget).is_ok() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    format!(r"\w{{{lo}}}")
}

#[test]
fn the_costliest_admitted_filter_stays_under_64_mib_and_1_s() {
    let budget = FilterBudget::default();
    let pattern = largest_pattern(&budget);
    let worst = regexes(budget.max_regexes, &pattern);

    let before = rss();
    let started = Instant::now();
    let f = Filter::parse(&worst, &budget).expect("within the budget");
    let compile = started.elapsed();
    // Matching grows each regex's lazy DFA cache: feed every field a long word.
    let word = "é".repeat(4096);
    let doc: serde_json::Map<String, Value> = (0..budget.max_regexes)
        .map(|i| (format!("f{i}"), json!(word)))
        .collect();
    let started = Instant::now();
    let _ = f.matches(&doc);
    let matched = started.elapsed();
    let grew = before
        .zip(rss())
        .map(|(b, a)| a.saturating_sub(b))
        .unwrap_or(0);
    eprintln!(
        "{} x {pattern}: compiled in {compile:?}, matched in {matched:?}, resident memory +{} KiB",
        budget.max_regexes,
        grew / 1024
    );
    assert!(compile < Duration::from_secs(1), "compiled in {compile:?}");
    assert!(grew < 64 * MIB, "resident memory grew {grew} bytes");
    drop(f);

    // One regex more, or the issue's 300: refused before compiling, at once.
    let started = Instant::now();
    for n in [budget.max_regexes + 1, 300] {
        let e = Filter::parse(&regexes(n, &pattern), &budget).expect_err("over the budget");
        assert!(e.0.contains("$regex"), "{e}");
    }
    assert!(started.elapsed() < Duration::from_millis(100));
}
