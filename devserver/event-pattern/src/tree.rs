//! A compiled pattern: a tree of typed matchers, walked once per event.
//! Everything that can be decided from the pattern alone (lower-casing,
//! number scaling, CIDR masks, wildcard splitting) is done when it is
//! compiled, so matching only reads the event.

use serde_json::Value;

use crate::cidr::Cidr;
use crate::number::{Micros, NumberLimits};
use crate::wildcard::Wildcard;

/// One level of a pattern: every field and every `$or` group must match.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Invariant: leaves of exact values come first, then other leaves,
    /// then nested objects, so the cheap and selective checks (usually
    /// `source`, `detail-type`) reject most events first.
    pub fields: Vec<(String, Field)>,
    /// Each group holds two or more alternatives; one must match.
    pub any_of: Vec<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Field {
    Nested(Node),
    /// The values of a field: any one matching is enough.
    Leaf(Vec<Matcher>),
}

#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    String(String),
    /// A number, in millionths when it is within the dialect's limits
    /// (it then also equals `3.0` for `3`), else compared as written
    /// (account numbers and other large ids).
    Number(Option<Micros>, serde_json::Number),
    Bool(bool),
    Null,
    Prefix(String),
    /// The prefix, lower-cased.
    PrefixIgnoreCase(String),
    Suffix(String),
    /// The suffix, lower-cased.
    SuffixIgnoreCase(String),
    /// The value, lower-cased.
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    Cidr(Cidr),
    Numeric(Range),
    Exists(bool),
    AnythingBut(AnythingBut),
}

#[derive(Debug, Clone)]
pub(crate) enum AnythingBut {
    /// Matches any value (of any type) but these strings.
    Strings(Vec<String>),
    /// Matches any value but these numbers.
    Numbers(Vec<Micros>),
    /// The object forms match strings only.
    Prefixes(Vec<String>),
    Suffixes(Vec<String>),
    /// Lower-cased.
    IgnoreCase(Vec<String>),
    Wildcards(Vec<Wildcard>),
}

/// A numeric range; `None` bounds are open-ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub low: Option<(Micros, Inclusive)>,
    pub high: Option<(Micros, Inclusive)>,
}

pub(crate) type Inclusive = bool;

impl Node {
    pub(crate) fn matches(&self, value: Option<&Value>, limits: &NumberLimits) -> bool {
        // An array of objects matches when one element matches the whole
        // level: fields from different elements never combine
        // (event-ruler's `rulesForJSONEvent` array consistency).
        // An empty array holds no fields at all.
        if let Some(Value::Array(items)) = value {
            if items.is_empty() {
                return self.matches(None, limits);
            }
            return items.iter().any(|i| self.matches(Some(i), limits));
        }
        let object = match value {
            Some(Value::Object(o)) => Some(o),
            _ => None,
        };
        self.fields
            .iter()
            .all(|(key, field)| field.matches(object.and_then(|o| o.get(key)), limits))
            && self
                .any_of
                .iter()
                .all(|group| group.iter().any(|alt| alt.matches(value, limits)))
    }
}

impl Field {
    fn matches(&self, value: Option<&Value>, limits: &NumberLimits) -> bool {
        match self {
            Field::Nested(node) => node.matches(value, limits),
            Field::Leaf(matchers) => {
                let mut present = false;
                let hit = for_each_leaf(value, &mut |leaf| {
                    present = true;
                    matchers
                        .iter()
                        .any(|m| !matches!(m, Matcher::Exists(_)) && m.matches(leaf, limits))
                });
                // `exists` looks at leaves only: an object (or an array of
                // objects, or an empty array) is no value.
                hit || matchers
                    .iter()
                    .any(|m| matches!(m, Matcher::Exists(wanted) if *wanted == present))
            }
        }
    }
}

/// Calls `f` on each leaf value (nested arrays flattened, objects
/// skipped) until it returns true.
fn for_each_leaf(value: Option<&Value>, f: &mut dyn FnMut(&Value) -> bool) -> bool {
    match value {
        None | Some(Value::Object(_)) => false,
        Some(Value::Array(items)) => items.iter().any(|i| for_each_leaf(Some(i), f)),
        Some(leaf) => f(leaf),
    }
}

impl Matcher {
    fn matches(&self, value: &Value, limits: &NumberLimits) -> bool {
        match (self, value) {
            (Matcher::String(p), Value::String(s)) => p == s,
            (Matcher::Number(micros, literal), Value::Number(n)) => {
                number_eq(*micros, literal, n, limits)
            }
            (Matcher::Bool(p), Value::Bool(b)) => p == b,
            (Matcher::Null, Value::Null) => true,
            (Matcher::Prefix(p), Value::String(s)) => s.starts_with(p.as_str()),
            (Matcher::Suffix(p), Value::String(s)) => s.ends_with(p.as_str()),
            (Matcher::PrefixIgnoreCase(p), Value::String(s)) => starts_with_ignore_case(s, p),
            (Matcher::SuffixIgnoreCase(p), Value::String(s)) => ends_with_ignore_case(s, p),
            (Matcher::EqualsIgnoreCase(p), Value::String(s)) => equals_ignore_case(s, p),
            (Matcher::Wildcard(w), Value::String(s)) => w.matches(s),
            (Matcher::Cidr(c), Value::String(s)) => c.contains(s),
            (Matcher::Numeric(range), Value::Number(n)) => {
                limits.micros(n).is_ok_and(|x| range.contains(x))
            }
            (Matcher::AnythingBut(but), v) => but.matches(v, limits),
            _ => false,
        }
    }
}

impl AnythingBut {
    fn matches(&self, value: &Value, limits: &NumberLimits) -> bool {
        match (self, value) {
            (AnythingBut::Strings(not), Value::String(s)) => !not.iter().any(|n| n == s),
            (AnythingBut::Strings(_), _) => true,
            (AnythingBut::Numbers(not), Value::Number(n)) => match limits.micros(n) {
                Ok(x) => !not.contains(&x),
                Err(_) => true,
            },
            (AnythingBut::Numbers(_), _) => true,
            (AnythingBut::Prefixes(not), Value::String(s)) => {
                !not.iter().any(|p| s.starts_with(p.as_str()))
            }
            (AnythingBut::Suffixes(not), Value::String(s)) => {
                !not.iter().any(|p| s.ends_with(p.as_str()))
            }
            (AnythingBut::IgnoreCase(not), Value::String(s)) => {
                !not.iter().any(|p| equals_ignore_case(s, p))
            }
            (AnythingBut::Wildcards(not), Value::String(s)) => !not.iter().any(|w| w.matches(s)),
            _ => false,
        }
    }
}

impl Range {
    fn contains(&self, x: Micros) -> bool {
        let above = match self.low {
            None => true,
            Some((low, true)) => x >= low,
            Some((low, false)) => x > low,
        };
        let below = match self.high {
            None => true,
            Some((high, true)) => x <= high,
            Some((high, false)) => x < high,
        };
        above && below
    }
}

fn number_eq(
    micros: Option<Micros>,
    literal: &serde_json::Number,
    n: &serde_json::Number,
    limits: &NumberLimits,
) -> bool {
    if let Some(m) = micros
        && let Ok(x) = limits.micros(n)
    {
        return m == x;
    }
    // Out of range: as written, integers exactly.
    match (literal.as_i64(), n.as_i64(), literal.as_u64(), n.as_u64()) {
        (Some(a), Some(b), _, _) => a == b,
        (_, _, Some(a), Some(b)) => a == b,
        _ => literal.as_f64() == n.as_f64(),
    }
}

/// `pattern` is lower-case already.
fn equals_ignore_case(s: &str, pattern: &str) -> bool {
    if s.is_ascii() && pattern.is_ascii() {
        return s.eq_ignore_ascii_case(pattern);
    }
    s.chars().flat_map(char::to_lowercase).eq(pattern.chars())
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    if s.is_ascii() && prefix.is_ascii() {
        return s.len() >= prefix.len()
            && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes());
    }
    let mut lowered = s.chars().flat_map(char::to_lowercase);
    prefix.chars().all(|p| lowered.next() == Some(p))
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    if s.is_ascii() && suffix.is_ascii() {
        return s.len() >= suffix.len()
            && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes());
    }
    let lowered: Vec<char> = s.chars().flat_map(char::to_lowercase).collect();
    let wanted: Vec<char> = suffix.chars().collect();
    lowered.ends_with(&wanted)
}
