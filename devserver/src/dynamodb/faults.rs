//! Fault injection: a table answers a share of its requests with a
//! throttling or server error, in DynamoDB's exact shapes, so code that
//! retries (the SDKs' standard retry mode, batch-unprocessed loops, stream
//! consumers) can be exercised locally.
//!
//! Rules come from `dev.toml` (`[tables.<name>.faults]`) and are changed at
//! run time through `PUT`/`DELETE /_woocom/dynamodb/faults`
//! (`woocom-dev faults set|clear|list`).

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::wire::{ApiError, InjectedError};

/// The rule key that applies to every table.
pub const ALL_TABLES: &str = "*";

/// One table's faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Share of requests that fail, 0.0 to 1.0.
    pub rate: f64,
    pub error: InjectedError,
    /// Only these operations fail (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
    /// Fail only this many requests (of those the rate picks), then the
    /// rule ends: a bounded, repeatable fault, e.g. fewer failures than the
    /// SDK's attempts so a retry must succeed. Listed as what is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl FaultRule {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.rate.is_finite() && (0.0..=1.0).contains(&self.rate)) {
            return Err(format!("rate {} is not between 0 and 1", self.rate));
        }
        if let Some(op) = self
            .operations
            .iter()
            .find(|op| !super::engine::OPERATIONS.contains(&op.as_str()))
        {
            return Err(format!("`{op}` is not a DynamoDB operation"));
        }
        if self.count == Some(0) {
            return Err("count must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// A rule in force, with the failures it has left when it has a count.
#[derive(Debug)]
struct Armed {
    rule: FaultRule,
    left: Option<AtomicU64>,
}

/// The fault rules in force, by table name (or [`ALL_TABLES`]).
#[derive(Debug)]
pub struct Faults {
    rules: RwLock<BTreeMap<String, Armed>>,
    /// splitmix64 state: cheap, lock-free, good enough to pick a share.
    rng: AtomicU64,
}

impl Default for Faults {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Faults {
            rules: RwLock::new(BTreeMap::new()),
            rng: AtomicU64::new(seed),
        }
    }
}

impl Faults {
    pub fn set(&self, table: &str, rule: FaultRule) -> Result<(), String> {
        rule.validate()?;
        if let Ok(mut rules) = self.rules.write() {
            let left = rule.count.map(AtomicU64::new);
            rules.insert(table.to_owned(), Armed { rule, left });
        }
        Ok(())
    }

    /// Clears one table's rule, or every rule.
    pub fn clear(&self, table: Option<&str>) {
        if let Ok(mut rules) = self.rules.write() {
            match table {
                Some(t) => {
                    rules.remove(t);
                }
                None => rules.clear(),
            }
        }
    }

    /// Whether no rule is in force (then no request needs looking at).
    pub fn is_empty(&self) -> bool {
        self.rules.read().map_or(true, |r| r.is_empty())
    }

    pub fn list(&self) -> BTreeMap<String, FaultRule> {
        let Ok(rules) = self.rules.read() else {
            return BTreeMap::new();
        };
        rules
            .iter()
            .map(|(table, armed)| {
                let mut rule = armed.rule.clone();
                rule.count = armed.left.as_ref().map(|l| l.load(Ordering::Acquire));
                (table.clone(), rule)
            })
            .collect()
    }

    /// The error to answer instead of running the request, if a rule picks it.
    pub fn check(&self, operation: &str, request: &Value) -> Option<ApiError> {
        let mut spent = None;
        let error = {
            let rules = self.rules.read().ok()?;
            if rules.is_empty() {
                return None;
            }
            let tables = tables_of(request);
            let candidates = rules.get_key_value(ALL_TABLES).into_iter().chain(
                tables
                    .iter()
                    .filter_map(|t| rules.get_key_value(t.as_str())),
            );
            let mut error = None;
            for (table, armed) in candidates {
                let rule = &armed.rule;
                let applies =
                    rule.operations.is_empty() || rule.operations.iter().any(|o| o == operation);
                if !applies || self.next_unit() >= rule.rate {
                    continue;
                }
                if let Some(left) = &armed.left {
                    match left
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    {
                        Ok(1) => spent = Some(table.clone()),
                        Ok(_) => {}
                        // Spent by a concurrent request; being removed.
                        Err(_) => continue,
                    }
                }
                error = Some(rule.error.to_api_error());
                break;
            }
            error
        };
        if let Some(table) = spent
            && let Ok(mut rules) = self.rules.write()
            && rules
                .get(&table)
                .and_then(|armed| armed.left.as_ref())
                .is_some_and(|left| left.load(Ordering::Acquire) == 0)
        {
            rules.remove(&table);
        }
        error
    }

    /// A uniform number in [0, 1).
    fn next_unit(&self) -> f64 {
        let mut z = self
            .rng
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The tables a request touches, wherever the operation names them.
pub fn tables_of(request: &Value) -> Vec<String> {
    let mut tables = Vec::new();
    if let Some(t) = request.get("TableName").and_then(Value::as_str) {
        tables.push(t.to_owned());
    }
    if let Some(items) = request.get("RequestItems").and_then(Value::as_object) {
        tables.extend(items.keys().cloned());
    }
    if let Some(items) = request.get("TransactItems").and_then(Value::as_array) {
        for item in items {
            for kind in ["Put", "Update", "Delete", "ConditionCheck", "Get"] {
                if let Some(t) = item
                    .get(kind)
                    .and_then(|k| k.get("TableName"))
                    .and_then(Value::as_str)
                {
                    tables.push(t.to_owned());
                }
            }
        }
    }
    if let Some(arn) = request.get("StreamArn").and_then(Value::as_str)
        && let Some(t) = super::streams_api::parse_stream_arn(arn)
    {
        tables.push(t.table.to_owned());
    }
    if let Some(it) = request.get("ShardIterator").and_then(Value::as_str)
        && let Some((t, _, _)) = dynoxide::actions::get_shard_iterator::decode_shard_iterator(it)
    {
        tables.push(t);
    }
    if let Some(s) = request.get("Statement").and_then(Value::as_str) {
        tables.extend(partiql_table(s));
    }
    for list in ["Statements", "TransactStatements"] {
        if let Some(items) = request.get(list).and_then(Value::as_array) {
            for item in items {
                if let Some(s) = item.get("Statement").and_then(Value::as_str) {
                    tables.extend(partiql_table(s));
                }
            }
        }
    }
    tables
}

/// The table a PartiQL statement names: the word after FROM, INTO or UPDATE.
fn partiql_table(statement: &str) -> Option<String> {
    let mut words = statement.split_whitespace();
    while let Some(word) = words.next() {
        if ["FROM", "INTO", "UPDATE"]
            .iter()
            .any(|k| word.eq_ignore_ascii_case(k))
        {
            let name = words.next()?;
            let name = name.split(['.', '[']).next().unwrap_or(name);
            return Some(name.trim_matches('"').to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rate_one_always_fails_rate_zero_never() {
        let faults = Faults::default();
        let req = json!({"TableName": "orders"});
        assert!(faults.check("PutItem", &req).is_none());
        faults
            .set(
                "orders",
                FaultRule {
                    rate: 1.0,
                    error: InjectedError::ThrottlingException,
                    operations: vec![],
                    count: None,
                },
            )
            .expect("valid");
        let err = faults.check("PutItem", &req).expect("fails");
        assert_eq!(err.code(), "ThrottlingException");
        assert!(
            faults
                .check("PutItem", &json!({"TableName": "other"}))
                .is_none()
        );
        faults.clear(Some("orders"));
        assert!(faults.check("PutItem", &req).is_none());
    }

    #[test]
    fn a_share_of_requests_fails() {
        let faults = Faults::default();
        faults
            .set(
                ALL_TABLES,
                FaultRule {
                    rate: 0.25,
                    error: InjectedError::ProvisionedThroughputExceededException,
                    operations: vec!["GetItem".into()],
                    count: None,
                },
            )
            .expect("valid");
        let req = json!({"TableName": "t"});
        let failed = (0..10_000)
            .filter(|_| faults.check("GetItem", &req).is_some())
            .count();
        assert!((2_000..3_000).contains(&failed), "{failed}");
        assert!(
            faults.check("PutItem", &req).is_none(),
            "other operations pass"
        );
    }

    #[test]
    fn tables_are_found_in_batches_transactions_and_statements() {
        let req = json!({
            "RequestItems": {"a": [], "b": []},
            "TransactItems": [{"Put": {"TableName": "c"}}],
            "Statement": "SELECT * FROM \"d\" WHERE pk = ?"
        });
        assert_eq!(tables_of(&req), vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn bad_rules_are_refused() {
        let bad = FaultRule {
            rate: 1.5,
            error: InjectedError::ThrottlingException,
            operations: vec![],
            count: None,
        };
        assert!(bad.validate().is_err());
        let bad_op = FaultRule {
            rate: 0.5,
            error: InjectedError::ThrottlingException,
            operations: vec!["PutItems".into()],
            count: None,
        };
        assert!(bad_op.validate().expect_err("op").contains("PutItems"));
        let no_count = FaultRule {
            rate: 1.0,
            error: InjectedError::ThrottlingException,
            operations: vec![],
            count: Some(0),
        };
        assert!(no_count.validate().is_err());
    }

    #[test]
    fn a_counted_rule_fails_that_many_requests_then_ends() {
        let faults = Faults::default();
        faults
            .set(
                "orders",
                FaultRule {
                    rate: 1.0,
                    error: InjectedError::ProvisionedThroughputExceededException,
                    operations: vec!["GetItem".into()],
                    count: Some(2),
                },
            )
            .expect("valid");
        let req = json!({"TableName": "orders"});
        assert!(faults.check("PutItem", &req).is_none(), "not counted");
        assert!(faults.check("GetItem", &req).is_some());
        assert_eq!(faults.list()["orders"].count, Some(1), "listed as left");
        assert!(faults.check("GetItem", &req).is_some());
        assert!(faults.check("GetItem", &req).is_none(), "spent");
        assert!(faults.list().is_empty(), "a spent rule is removed");
        assert!(faults.is_empty());
    }
}
