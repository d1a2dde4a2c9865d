//! Patterns are untrusted input (API calls, `dev.toml`): random patterns
//! built from the operators' own vocabulary, with awkward values (huge,
//! tiny and negative numbers, escapes, nested arrays), must be accepted or
//! refused without panicking, and an accepted pattern must match random
//! events without panicking. One invariant on top: `{"$or": [P, P]}`
//! matches exactly what `P` matches.

use serde_json::{Map, Value, json};
use woocom_event_pattern::{Dialect, FilterPattern, PatternSet};

const ROUNDS: usize = 20_000;

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

const KEYS: &[&str] = &["a", "b", "detail", "source", "$or", "prefix", "numeric"];
const OPERATORS: &[&str] = &[
    "prefix",
    "suffix",
    "equals-ignore-case",
    "wildcard",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
    "regex",
];

fn scalar(rng: &mut Lcg) -> Value {
    let choices = [
        json!("x"),
        json!(""),
        json!("a*b"),
        json!("a\\*b\\\\"),
        json!("**"),
        json!("\\"),
        json!("10.0.0.0/8"),
        json!("2001:db8::/200"),
        json!("ÄÖ*ü"),
        json!(0),
        json!(-1.5),
        json!(0.0000001),
        json!(5e9),
        json!(1.2345678901234567e40),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(true),
        json!(null),
        json!(">"),
        json!("<="),
        json!("="),
    ];
    choices[rng.below(choices.len())].clone()
}

fn value(rng: &mut Lcg, depth: usize) -> Value {
    match if depth == 0 { 0 } else { rng.below(4) } {
        0 => scalar(rng),
        1 => Value::Array((0..rng.below(5)).map(|_| value(rng, depth - 1)).collect()),
        _ => {
            let mut object = Map::new();
            for _ in 0..rng.below(3) {
                let key = if rng.below(2) == 0 {
                    OPERATORS[rng.below(OPERATORS.len())]
                } else {
                    KEYS[rng.below(KEYS.len())]
                };
                object.insert(key.to_owned(), value(rng, depth - 1));
            }
            Value::Object(object)
        }
    }
}

#[test]
fn random_patterns_are_accepted_or_refused_and_never_panic() {
    let mut rng = Lcg(7);
    let mut accepted = 0;
    for _ in 0..ROUNDS {
        let pattern = value(&mut rng, 5);
        let event = value(&mut rng, 4);
        let text = pattern.to_string();
        for dialect in [Dialect::EventBridge, Dialect::Sns] {
            let Ok(p) = FilterPattern::parse_with(&text, dialect) else {
                continue;
            };
            accepted += 1;
            let matched = p.matches(&event);
            let doubled = json!({"$or": [pattern, pattern]}).to_string();
            if let Ok(or) = FilterPattern::parse_with(&doubled, dialect) {
                assert_eq!(or.matches(&event), matched, "{doubled} against {event}");
            }
        }
    }
    assert!(accepted > 100, "only {accepted} random patterns were valid");
}

/// A `PatternSet` is an index, not a different matcher: it returns
/// exactly the patterns that match one by one.
#[test]
fn a_pattern_set_matches_what_its_patterns_match_one_by_one() {
    let mut rng = Lcg(11);
    let mut patterns = Vec::new();
    while patterns.len() < 300 {
        let mut pattern = value(&mut rng, 4);
        // Give many patterns an exact top-level field, the indexed case.
        if let Value::Object(fields) = &mut pattern
            && rng.below(2) == 0
        {
            let wanted: Vec<Value> = (0..1 + rng.below(2)).map(|_| scalar(&mut rng)).collect();
            fields.insert("source".to_owned(), Value::Array(wanted));
        }
        if let Ok(p) = FilterPattern::parse(&pattern.to_string()) {
            patterns.push(p);
        }
    }
    let set = PatternSet::new(patterns.clone());
    for _ in 0..ROUNDS / 4 {
        let mut event = value(&mut rng, 4);
        if let Value::Object(fields) = &mut event {
            fields.insert("source".to_owned(), scalar(&mut rng));
        }
        let one_by_one: Vec<usize> = (0..patterns.len())
            .filter(|&i| patterns[i].matches(&event))
            .collect();
        assert_eq!(set.matching(&event), one_by_one, "{event}");
    }
}
