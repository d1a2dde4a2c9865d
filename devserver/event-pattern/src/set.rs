//! Many patterns against each event, as an EventBridge bus matches its
//! rules: patterns that require exact string values of a top-level field
//! (`source`, `detail-type`) are indexed by those values, so an event is
//! only checked against the patterns that could match it.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::FilterPattern;
use crate::tree::{Field, Matcher};

/// Patterns with an index; matches exactly what matching each pattern in
/// turn would.
#[derive(Debug, Clone, Default)]
pub struct PatternSet {
    patterns: Vec<FilterPattern>,
    /// Top-level field name -> value -> patterns needing that value.
    /// Invariant: each pattern index is in exactly one place, here or in
    /// `unindexed`.
    by_field: Vec<(String, HashMap<String, Vec<usize>>)>,
    unindexed: Vec<usize>,
}

impl PatternSet {
    pub fn new(patterns: Vec<FilterPattern>) -> PatternSet {
        // Index each pattern on its most selective exact field: the one
        // with the most distinct values across the set (`source` over
        // `detail-type`, typically).
        let mut distinct: HashMap<&str, HashSet<&str>> = HashMap::new();
        for pattern in &patterns {
            for (key, values) in exact_fields(pattern) {
                distinct.entry(key).or_default().extend(values);
            }
        }
        let mut by_field: Vec<(String, HashMap<String, Vec<usize>>)> = Vec::new();
        let mut unindexed = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            let Some((key, values)) = exact_fields(pattern)
                .max_by_key(|(key, _)| distinct.get(key).map_or(0, HashSet::len))
            else {
                unindexed.push(i);
                continue;
            };
            let slot = match by_field.iter().position(|(k, _)| k == key) {
                Some(slot) => slot,
                None => {
                    by_field.push((key.to_owned(), HashMap::new()));
                    by_field.len() - 1
                }
            };
            for value in values {
                let wanted = by_field[slot].1.entry(value.to_owned()).or_default();
                if wanted.last() != Some(&i) {
                    wanted.push(i);
                }
            }
        }
        PatternSet {
            patterns,
            by_field,
            unindexed,
        }
    }

    pub fn patterns(&self) -> &[FilterPattern] {
        &self.patterns
    }

    /// Indices of the patterns matching `event`, ascending.
    pub fn matching(&self, event: &Value) -> Vec<usize> {
        let Value::Object(fields) = event else {
            // Not an envelope (an array of objects, say): no index applies.
            return (0..self.patterns.len())
                .filter(|&i| self.patterns[i].matches(event))
                .collect();
        };
        let mut candidates = self.unindexed.clone();
        for (key, by_value) in &self.by_field {
            add_candidates(fields.get(key), by_value, &mut candidates);
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|&i| self.patterns[i].matches(event));
        candidates
    }
}

/// The patterns wanting `value`, or any string in it (nested arrays
/// flattened, as matching does).
fn add_candidates(
    value: Option<&Value>,
    by_value: &HashMap<String, Vec<usize>>,
    candidates: &mut Vec<usize>,
) {
    match value {
        Some(Value::String(s)) => {
            if let Some(ids) = by_value.get(s) {
                candidates.extend_from_slice(ids);
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                add_candidates(Some(item), by_value, candidates);
            }
        }
        _ => {}
    }
}

/// The top-level fields of `pattern` that only list strings, with those
/// strings: the pattern cannot match an event without one of them there.
fn exact_fields(pattern: &FilterPattern) -> impl Iterator<Item = (&str, Vec<&str>)> {
    pattern.root.fields.iter().filter_map(|(key, field)| {
        let Field::Leaf(matchers) = field else {
            return None;
        };
        matchers
            .iter()
            .map(|m| match m {
                Matcher::String(s) => Some(s.as_str()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|values| (key.as_str(), values))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(patterns: &[&str]) -> PatternSet {
        PatternSet::new(
            patterns
                .iter()
                .map(|p| FilterPattern::parse(p).expect(p))
                .collect(),
        )
    }

    #[test]
    fn indexed_and_unindexed_patterns_match_as_one_by_one() {
        let set = set(&[
            r#"{"source": ["shop"], "detail": {"total": [{"numeric": [">", 10]}]}}"#,
            r#"{"source": ["shop", "billing"]}"#,
            r#"{"detail-type": ["Order Placed"]}"#,
            r#"{"source": [{"prefix": "sh"}]}"#,
            r#"{"resources": ["arn:a"]}"#,
        ]);
        let event = json!({"source": "shop", "detail-type": "Order Placed", "resources": ["arn:b", ["arn:a"]], "detail": {"total": 5}});
        assert_eq!(set.matching(&event), vec![1, 2, 3, 4]);
        assert_eq!(set.matching(&json!({"source": "billing"})), vec![1]);
        assert_eq!(set.matching(&json!([{"source": "billing"}])), vec![1]);
        assert!(set.matching(&json!({"source": "other"})).is_empty());
    }
}
