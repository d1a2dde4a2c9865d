//! From pattern JSON to a [`Node`] tree, refusing what AWS refuses. The
//! reasons are event-ruler's (`JsonRuleCompiler`), the text EventBridge
//! puts after "Event pattern is not valid. Reason: ".
//! <https://github.com/aws/event-ruler/blob/main/src/main/software/amazon/event/ruler/JsonRuleCompiler.java>

use serde_json::{Map, Value};

use crate::cidr::Cidr;
use crate::number::{Micros, NumberLimits};
use crate::tree::{AnythingBut, Field, Matcher, Node, Range};
use crate::wildcard::Wildcard;
use crate::{Dialect, PatternError};

/// The field name that makes an array of objects an OR of sub-patterns.
pub(crate) const OR_KEYWORD: &str = "$or";

/// Operator names, which cannot be field names inside `$or` (event-ruler's
/// `RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP`).
const OPERATORS: &[&str] = &[
    "anything-but",
    "cidr",
    "equals-ignore-case",
    "exists",
    "numeric",
    "prefix",
    "suffix",
    "wildcard",
];

/// SNS filter policy limits.
/// <https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html>
const SNS_MAX_KEYS: usize = 5;
const SNS_MAX_COMBINATIONS: usize = 150;

pub(crate) struct Compiler {
    pub dialect: Dialect,
    pub limits: NumberLimits,
}

type Result<T> = std::result::Result<T, PatternError>;

fn refuse<T>(path: &str, reason: impl Into<String>) -> Result<T> {
    Err(PatternError {
        path: path.to_owned(),
        reason: reason.into(),
    })
}

impl Compiler {
    pub(crate) fn root(&self, text: &str) -> Result<Node> {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return refuse("", format!("Pattern is not JSON: {e}")),
        };
        let Value::Object(root) = value else {
            return refuse("", "Filter is not an object");
        };
        let node = self.object(&root, "", false)?;
        if self.dialect == Dialect::Sns {
            let keys = count_keys(&node);
            if keys > SNS_MAX_KEYS {
                return refuse(
                    "",
                    format!(
                        "Filter policy can not have more than {SNS_MAX_KEYS} keys (it has {keys})"
                    ),
                );
            }
            let combinations = combinations(&node);
            if combinations > SNS_MAX_COMBINATIONS {
                return refuse(
                    "",
                    format!(
                        "Filter policy is too complex: {combinations} combinations of values, at most {SNS_MAX_COMBINATIONS}"
                    ),
                );
            }
        }
        Ok(node)
    }

    fn object(&self, object: &Map<String, Value>, path: &str, in_or: bool) -> Result<Node> {
        if object.is_empty() {
            return refuse(path, "Empty objects are not allowed");
        }
        let mut leaves = Vec::new();
        let mut nested = Vec::new();
        let mut any_of = Vec::new();
        for (key, value) in object {
            if key == OR_KEYWORD {
                any_of.push(self.or_group(value, path)?);
                continue;
            }
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if in_or && OPERATORS.contains(&key.as_str()) {
                return refuse(
                    &here,
                    format!("{key} is Ruler reserved fieldName which cannot be used inside $or."),
                );
            }
            match value {
                Value::Object(inner) => {
                    nested.push((
                        key.clone(),
                        Field::Nested(self.object(inner, &here, in_or)?),
                    ));
                }
                Value::Array(values) if values.is_empty() => {
                    return refuse(&here, "Empty arrays are not allowed");
                }
                Value::Array(values) => {
                    let matchers = values
                        .iter()
                        .map(|v| self.matcher(v, &here))
                        .collect::<Result<Vec<_>>>()?;
                    leaves.push((key.clone(), Field::Leaf(matchers)));
                }
                _ => return refuse(&here, format!("\"{key}\" must be an object or an array")),
            }
        }
        // Exact values first: cheapest, and usually the most selective.
        leaves.sort_by_key(|(_, field)| !is_exact(field));
        leaves.extend(nested);
        Ok(Node {
            fields: leaves,
            any_of,
        })
    }

    fn or_group(&self, value: &Value, path: &str) -> Result<Vec<Node>> {
        let Value::Array(alternatives) = value else {
            return refuse(path, "It must be an Array followed with $or.");
        };
        let nodes = alternatives
            .iter()
            .map(|alt| match alt {
                Value::Object(o) => self.object(o, path, true),
                _ => refuse(
                    path,
                    "Only JSON object is allowed in array of $or relationship.",
                ),
            })
            .collect::<Result<Vec<_>>>()?;
        if nodes.len() < 2 {
            return refuse(
                path,
                "There must have at least 2 Objects in $or relationship.",
            );
        }
        Ok(nodes)
    }

    fn matcher(&self, value: &Value, path: &str) -> Result<Matcher> {
        let op = match value {
            Value::String(s) => return Ok(Matcher::String(s.clone())),
            Value::Number(n) => return Ok(Matcher::Number(self.limits.micros(n).ok(), n.clone())),
            Value::Bool(b) => return Ok(Matcher::Bool(*b)),
            Value::Null => return Ok(Matcher::Null),
            Value::Array(_) => {
                return refuse(
                    path,
                    "Match value must be String, number, true, false, or null",
                );
            }
            Value::Object(op) => op,
        };
        let mut entries = op.iter();
        let Some((name, arg)) = entries.next() else {
            return refuse(path, "Match expression name not found");
        };
        if entries.next().is_some() {
            return refuse(path, "Only one key allowed in match expression");
        }
        let string = |what: &str| match arg {
            Value::String(s) => Ok(s.as_str()),
            _ => refuse(path, format!("{what} match pattern must be a string")),
        };
        match name.as_str() {
            "prefix" | "suffix" => {
                let prefix = name == "prefix";
                if let Value::Object(inner) = arg {
                    let s = self.ignore_case_argument(inner, name, path)?;
                    return Ok(if prefix {
                        Matcher::PrefixIgnoreCase(s)
                    } else {
                        Matcher::SuffixIgnoreCase(s)
                    });
                }
                let s = string(name)?.to_owned();
                Ok(if prefix {
                    Matcher::Prefix(s)
                } else {
                    Matcher::Suffix(s)
                })
            }
            "equals-ignore-case" => Ok(Matcher::EqualsIgnoreCase(
                string("equals-ignore-case")?.to_lowercase(),
            )),
            "wildcard" if self.dialect == Dialect::Sns => {
                refuse(path, "Unrecognized match type wildcard")
            }
            "wildcard" => Wildcard::parse(string("wildcard")?)
                .map(Matcher::Wildcard)
                .or_else(|reason| refuse(path, reason)),
            "cidr" => Cidr::parse(string("cidr")?)
                .map(Matcher::Cidr)
                .or_else(|reason| refuse(path, reason)),
            "exists" => match arg {
                Value::Bool(b) => Ok(Matcher::Exists(*b)),
                _ => refuse(path, "exists match pattern must be either true or false."),
            },
            "numeric" => match arg {
                Value::Array(parts) => self.numeric(parts, path).map(Matcher::Numeric),
                _ => refuse(path, "Value of numeric must be an array."),
            },
            "anything-but" => self.anything_but(arg, path).map(Matcher::AnythingBut),
            other => refuse(path, format!("Unrecognized match type {other}")),
        }
    }

    /// `{"equals-ignore-case": ".."}` inside `prefix` or `suffix`,
    /// lower-cased.
    fn ignore_case_argument(
        &self,
        inner: &Map<String, Value>,
        outer: &str,
        path: &str,
    ) -> Result<String> {
        let mut entries = inner.iter();
        let Some((name, arg)) = entries.next() else {
            return refuse(path, format!("{} expression name not found", title(outer)));
        };
        if name != "equals-ignore-case" {
            return refuse(path, format!("Unsupported {outer} pattern: {name}"));
        }
        if entries.next().is_some() {
            return refuse(path, "Only one key allowed in match expression");
        }
        match arg {
            Value::String(s) => Ok(s.to_lowercase()),
            _ => refuse(path, "equals-ignore-case match pattern must be a string"),
        }
    }

    fn number(&self, n: &Value, path: &str, what: &str) -> Result<Micros> {
        let Value::Number(n) = n else {
            return refuse(path, format!("Value of {what} must be numeric"));
        };
        self.limits
            .micros(n)
            .or_else(|problem| refuse(path, self.limits.message(problem)))
    }

    /// `["=", x]`, `["<" | "<=", x]`, or `[">" | ">=", x]` optionally
    /// followed by `"<" | "<=", y`: the lower bound always comes first.
    fn numeric(&self, parts: &[Value], path: &str) -> Result<Range> {
        let too_many = || refuse(path, "Too many elements in numeric expression");
        let Some(Value::String(op)) = parts.first() else {
            let shown = parts
                .first()
                .map_or_else(|| "]".to_owned(), Value::to_string);
            return refuse(path, format!("Invalid member in numeric match: {shown}"));
        };
        let value = parts.get(1).unwrap_or(&Value::Null);
        match op.as_str() {
            "=" => {
                let x = self.number(value, path, "equals")?;
                if parts.len() > 2 {
                    return too_many();
                }
                Ok(Range {
                    low: Some((x, true)),
                    high: Some((x, true)),
                })
            }
            "<" | "<=" => {
                let x = self.number(value, path, op)?;
                if parts.len() > 2 {
                    return too_many();
                }
                Ok(Range {
                    low: None,
                    high: Some((x, op == "<=")),
                })
            }
            ">" | ">=" => {
                let low = Some((self.number(value, path, op)?, op == ">="));
                let Some(second) = parts.get(2) else {
                    return Ok(Range { low, high: None });
                };
                let Value::String(top_op) = second else {
                    return refuse(path, format!("Bad value in numeric range: {second}"));
                };
                if top_op != "<" && top_op != "<=" {
                    return refuse(path, format!("Bad numeric range operator: {top_op}"));
                }
                let top = self.number(parts.get(3).unwrap_or(&Value::Null), path, top_op)?;
                if parts.len() > 4 {
                    return refuse(path, "Too many terms in numeric range expression");
                }
                Ok(Range {
                    low,
                    high: Some((top, top_op == "<=")),
                })
            }
            other => refuse(
                path,
                format!("Unrecognized numeric range operator: {other}"),
            ),
        }
    }

    fn anything_but(&self, arg: &Value, path: &str) -> Result<AnythingBut> {
        match arg {
            Value::String(s) => Ok(AnythingBut::Strings(vec![s.clone()])),
            Value::Number(_) => Ok(AnythingBut::Numbers(vec![self.number(
                arg,
                path,
                "anything-but",
            )?])),
            Value::Array(items) => {
                if items.iter().all(Value::is_string) && !items.is_empty() {
                    return Ok(AnythingBut::Strings(
                        items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_owned))
                            .collect(),
                    ));
                }
                if items.iter().any(|i| !i.is_string() && !i.is_number()) {
                    return refuse(
                        path,
                        "Inside anything but list, start|null|boolean is not supported.",
                    );
                }
                if items.is_empty() || items.iter().any(Value::is_string) {
                    return refuse(
                        path,
                        "Inside anything but list, either all values are number or string, mixed type is not supported",
                    );
                }
                items
                    .iter()
                    .map(|i| self.number(i, path, "anything-but"))
                    .collect::<Result<Vec<_>>>()
                    .map(AnythingBut::Numbers)
            }
            Value::Object(inner) => self.anything_but_object(inner, path),
            _ => refuse(
                path,
                "Value of anything-but must be an array or single string/number value.",
            ),
        }
    }

    /// `{"prefix" | "suffix" | "equals-ignore-case" | "wildcard": string
    /// or [strings]}`.
    fn anything_but_object(&self, inner: &Map<String, Value>, path: &str) -> Result<AnythingBut> {
        let mut entries = inner.iter();
        let Some((name, arg)) = entries.next() else {
            return refuse(path, "Anything-But expression name not found");
        };
        if entries.next().is_some() {
            return refuse(path, "Only one key allowed in match expression");
        }
        let not_string = match name.as_str() {
            "equals-ignore-case" => {
                "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
            }
            "wildcard" if self.dialect == Dialect::Sns => {
                return refuse(path, "Unsupported anything-but pattern: wildcard");
            }
            "wildcard" => "wildcard match pattern must be a string",
            "prefix" | "suffix" => "prefix/suffix match pattern must be a string",
            other => return refuse(path, format!("Unsupported anything-but pattern: {other}")),
        };
        let values: Vec<&str> = match arg {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| refuse(path, not_string), Ok))
                .collect::<Result<_>>()?,
            _ => {
                return refuse(
                    path,
                    "Value of anything-but must be an array or single string/number value.",
                );
            }
        };
        if matches!(name.as_str(), "prefix" | "suffix") && values.iter().any(|v| v.is_empty()) {
            return refuse(path, "Null prefix/suffix not allowed");
        }
        let owned = || values.iter().map(|v| (*v).to_owned()).collect();
        Ok(match name.as_str() {
            "prefix" => AnythingBut::Prefixes(owned()),
            "suffix" => AnythingBut::Suffixes(owned()),
            "equals-ignore-case" => {
                AnythingBut::IgnoreCase(values.iter().map(|v| v.to_lowercase()).collect())
            }
            _ => AnythingBut::Wildcards(
                values
                    .iter()
                    .map(|v| Wildcard::parse(v))
                    .collect::<std::result::Result<_, _>>()
                    .or_else(|reason| refuse(path, reason))?,
            ),
        })
    }
}

fn is_exact(field: &Field) -> bool {
    matches!(field, Field::Leaf(matchers) if matchers.iter().all(|m| matches!(
        m,
        Matcher::String(_) | Matcher::Number(..) | Matcher::Bool(_) | Matcher::Null
    )))
}

fn title(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Leaf fields, counting each `$or` alternative's own.
fn count_keys(node: &Node) -> usize {
    node.fields
        .iter()
        .map(|(_, f)| match f {
            Field::Nested(inner) => count_keys(inner),
            Field::Leaf(_) => 1,
        })
        .sum::<usize>()
        + node.any_of.iter().flatten().map(count_keys).sum::<usize>()
}

/// SNS's complexity: the product of the number of values of each field,
/// each `$or` group adding its alternatives' products.
fn combinations(node: &Node) -> usize {
    let fields = node.fields.iter().fold(1usize, |acc, (_, f)| {
        acc.saturating_mul(match f {
            Field::Nested(inner) => combinations(inner),
            Field::Leaf(matchers) => matchers.len(),
        })
    });
    node.any_of.iter().fold(fields, |acc, group| {
        acc.saturating_mul(group.iter().map(combinations).sum())
    })
}
