//! Subscription filter policies, with the devserver's one pattern engine
//! ([`crate::event_pattern`]): on message attributes (the default scope;
//! `String` values as strings, `Number` as numbers, `String.Array` as its
//! elements) or on the message body (`FilterPolicyScope: MessageBody`,
//! JSON messages only). A policy that does not match means no delivery.
//! <https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html>

use serde_json::{Map, Value};

use super::{MessageAttribute, PublishRequest, SnsError};
use crate::event_pattern::{Dialect, FilterPattern};
use crate::manifest::FilterPolicyScope;

/// Whether a subscription with `policy` gets `request`.
pub fn accepts(policy: Option<&str>, scope: FilterPolicyScope, request: &PublishRequest) -> bool {
    let Some(policy) = policy else {
        return true;
    };
    let Ok(pattern) = FilterPattern::parse_with(policy, Dialect::Sns) else {
        return false;
    };
    let subject = match scope {
        FilterPolicyScope::MessageAttributes => attributes_object(request),
        FilterPolicyScope::MessageBody => {
            let body = if request.structure_json {
                serde_json::from_str::<Value>(&request.message)
                    .ok()
                    .and_then(|v| v.get("default").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default()
            } else {
                request.message.clone()
            };
            match serde_json::from_str::<Value>(&body) {
                Ok(v @ Value::Object(_)) => v,
                _ => return false,
            }
        }
    };
    pattern.matches(&subject)
}

/// The attributes as the object a policy is matched against.
fn attributes_object(request: &PublishRequest) -> Value {
    let mut out = Map::new();
    for (name, a) in &request.attributes {
        let Some(text) = &a.string_value else {
            continue; // Binary attributes are not matched.
        };
        let value = if a.data_type.starts_with("Number") {
            match text.trim().parse::<f64>() {
                Ok(n) => serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
                Err(_) => continue,
            }
        } else if a.data_type == "String.Array" {
            match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Array(_)) => v,
                _ => continue,
            }
        } else {
            Value::String(text.clone())
        };
        out.insert(name.clone(), value);
    }
    Value::Object(out)
}

/// Checks one message attribute as SNS does.
pub fn check_attribute(name: &str, a: &MessageAttribute) -> Result<(), SnsError> {
    let lower = name.to_ascii_lowercase();
    let name_ok = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.");
    if !name_ok {
        return Err(SnsError::invalid_parameter_value(format!(
            "The message attribute name '{name}' is invalid: names hold letters, digits, '_', '-' and '.', at most 256 characters, do not start with AWS. or Amazon., do not start or end with a period and do not hold two periods in a row."
        )));
    }
    let kind = a.data_type.split('.').next().unwrap_or_default();
    match kind {
        "String" | "Number" => {
            let Some(v) = a.string_value.as_deref().filter(|v| !v.is_empty()) else {
                return Err(SnsError::invalid_parameter_value(format!(
                    "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{}'.",
                    a.data_type
                )));
            };
            if kind == "Number" && v.trim().parse::<f64>().is_err() {
                return Err(SnsError::invalid_parameter_value(format!(
                    "Could not cast message attribute '{name}' value to number."
                )));
            }
            if a.data_type == "String.Array"
                && !matches!(serde_json::from_str::<Value>(v), Ok(Value::Array(_)))
            {
                return Err(SnsError::invalid_parameter_value(format!(
                    "The message attribute '{name}' with type 'String.Array' has an invalid value: it must be a JSON array"
                )));
            }
        }
        "Binary" => {
            if a.binary_value.as_ref().is_none_or(Vec::is_empty) {
                return Err(SnsError::invalid_parameter_value(format!(
                    "The message attribute '{name}' must contain non-empty message attribute value for message attribute type 'Binary'."
                )));
            }
        }
        _ => {
            return Err(SnsError::invalid_parameter_value(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(data_type: &str, value: &str) -> MessageAttribute {
        MessageAttribute {
            data_type: data_type.into(),
            string_value: Some(value.into()),
            binary_value: None,
        }
    }

    fn request(attrs: &[(&str, MessageAttribute)], message: &str) -> PublishRequest {
        PublishRequest {
            message: message.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            ..PublishRequest::default()
        }
    }

    #[test]
    fn attribute_policies_match_strings_numbers_and_arrays() {
        let scope = FilterPolicyScope::MessageAttributes;
        let r = request(
            &[
                ("type", attr("String", "OrderPlaced")),
                ("total", attr("Number", "120")),
                ("tags", attr("String.Array", "[\"gift\",\"express\"]")),
            ],
            "{}",
        );
        assert!(accepts(Some(r#"{"type": ["OrderPlaced"]}"#), scope, &r));
        assert!(!accepts(Some(r#"{"type": ["OrderCancelled"]}"#), scope, &r));
        assert!(accepts(
            Some(r#"{"total": [{"numeric": [">", 100]}]}"#),
            scope,
            &r
        ));
        assert!(!accepts(
            Some(r#"{"total": [{"numeric": ["<", 100]}]}"#),
            scope,
            &r
        ));
        assert!(accepts(Some(r#"{"tags": ["express"]}"#), scope, &r));
        assert!(!accepts(Some(r#"{"missing": ["x"]}"#), scope, &r));
        assert!(accepts(
            Some(r#"{"missing": [{"exists": false}]}"#),
            scope,
            &r
        ));
    }

    #[test]
    fn body_policies_read_json_messages_only() {
        let scope = FilterPolicyScope::MessageBody;
        let r = request(&[], r#"{"order": {"status": "placed"}}"#);
        assert!(accepts(
            Some(r#"{"order": {"status": ["placed"]}}"#),
            scope,
            &r
        ));
        assert!(!accepts(
            Some(r#"{"order": {"status": ["paid"]}}"#),
            scope,
            &r
        ));
        let text = request(&[], "not json");
        assert!(!accepts(
            Some(r#"{"order": {"status": ["placed"]}}"#),
            scope,
            &text
        ));
    }

    #[test]
    fn attributes_are_checked() {
        assert!(check_attribute("ok", &attr("String", "v")).is_ok());
        assert!(check_attribute("AWS.x", &attr("String", "v")).is_err());
        assert!(check_attribute("n", &attr("Number", "abc")).is_err());
        assert!(check_attribute("n", &attr("Date", "x")).is_err());
        assert!(check_attribute("a", &attr("String.Array", "nope")).is_err());
    }
}
