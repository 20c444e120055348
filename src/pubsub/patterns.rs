//! Channel patterns (`?pattern=true`): Redis glob syntax, as the upstream API used Redis
//! `PSUBSCRIBE` — `*` any run of characters (`:` included, and none), `?` one character,
//! `[abc]`, `[a-z]`, `[^a]` one character of a class, `\x` the character `x`.
//!
//! Matching is the greedy "last star" walk: no recursion, at most pattern length × channel
//! length steps, and both are capped (`MAX_PATTERN_BYTES`, the channel limit), so a pattern a
//! client chooses costs a bounded amount per published message.

use std::fmt;

/// Longest pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    Any,
    Star,
    Class {
        negated: bool,
        /// Inclusive ranges; a single character is a range of one.
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn accepts(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::Any => true,
            Token::Star => false,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    TooLong,
    /// A `[` without its `]`, or a trailing `\`.
    Unterminated,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::TooLong => write!(f, "a pattern is at most {MAX_PATTERN_BYTES} bytes"),
            PatternError::Unterminated => f.write_str("unterminated [class] or escape in pattern"),
        }
    }
}

impl Glob {
    pub fn compile(pattern: &str) -> Result<Glob, PatternError> {
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(PatternError::TooLong);
        }
        let mut tokens = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let t = match c {
                '*' => {
                    // Runs of stars are one star (and keep the walk linear in them).
                    if tokens.last() == Some(&Token::Star) {
                        continue;
                    }
                    Token::Star
                }
                '?' => Token::Any,
                '\\' => Token::Literal(chars.next().ok_or(PatternError::Unterminated)?),
                '[' => class(&mut chars)?,
                c => Token::Literal(c),
            };
            tokens.push(t);
        }
        Ok(Glob { tokens })
    }

    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut p, mut t) = (0usize, 0usize);
        // Where the last star was, and where in the text its current attempt ends.
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::Star) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(tok) if tok.accepts(text[t]) => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    // The last star takes one more character and the rest is tried again.
                    Some((sp, st)) => {
                        star = Some((sp, st + 1));
                        p = sp + 1;
                        t = st + 1;
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p.min(self.tokens.len())..]
            .iter()
            .all(|tok| *tok == Token::Star)
    }
}

fn class(chars: &mut std::str::Chars<'_>) -> Result<Token, PatternError> {
    let mut negated = false;
    let mut ranges = Vec::new();
    if chars.clone().next() == Some('^') {
        negated = true;
        chars.next();
    }
    // A `]` right after the opening (or the `^`) is a literal, as in Redis.
    if chars.clone().next() == Some(']') {
        chars.next();
        ranges.push((']', ']'));
    }
    loop {
        match chars.next().ok_or(PatternError::Unterminated)? {
            ']' => break,
            '\\' => {
                let e = chars.next().ok_or(PatternError::Unterminated)?;
                ranges.push((e, e));
            }
            // `a-z`; a `-` first or before `]` is a literal dash.
            '-' if !ranges.is_empty() && !matches!(chars.clone().next(), Some(']') | None) => {
                let hi = chars.next().ok_or(PatternError::Unterminated)?;
                if let Some(last) = ranges.last_mut() {
                    let lo = last.0;
                    *last = (lo.min(hi), lo.max(hi));
                }
            }
            c => ranges.push((c, c)),
        }
    }
    Ok(Token::Class { negated, ranges })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::compile(p).expect("compiles").matches(t)
    }

    #[test]
    fn star_spans_colons_and_nothing() {
        assert!(m("user:*", "user:1"));
        assert!(m("user:*", "user:1:events"));
        assert!(m("user:*", "user:"));
        assert!(!m("user:*", "users:1"));
        assert!(!m("user:*", "user"));
        assert!(m("*", ""));
        assert!(m("*", "anything:at:all"));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*:events", "user:1:events"));
        assert!(m("**x", "abx"));
    }

    #[test]
    fn single_characters_classes_and_escapes() {
        assert!(m("user:?", "user:1"));
        assert!(!m("user:?", "user:12"));
        assert!(m("r[ao]om", "room"));
        assert!(m("r[ao]om", "raom"));
        assert!(!m("r[ao]om", "rim"));
        assert!(m("v[0-9]", "v7"));
        assert!(m("v[9-0]", "v7"));
        assert!(!m("v[^0-9]", "v7"));
        assert!(m("v[^0-9]", "vx"));
        assert!(m("a[-]b", "a-b"));
        assert!(m("a[x-]b", "a-b"));
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "aXb"));
        assert!(m("[]]", "]"));
        assert!(m("é*", "été"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(Glob::compile("a["), Err(PatternError::Unterminated));
        assert_eq!(Glob::compile("a\\"), Err(PatternError::Unterminated));
        assert_eq!(
            Glob::compile(&"a".repeat(MAX_PATTERN_BYTES + 1)),
            Err(PatternError::TooLong)
        );
    }

    #[test]
    fn adversarial_patterns_stay_cheap() {
        let p = format!("{}b", "*a".repeat(40));
        let t = "a".repeat(255);
        let start = std::time::Instant::now();
        for _ in 0..100 {
            assert!(!m(&p, &t));
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
