//! Validation DynamoDB makes that the engine skips, made in our layer
//! before the engine sees the request (issue #18). Each check only refuses
//! what DynamoDB refuses, with its message; anything it cannot judge it
//! lets through to the engine.

use serde_json::Value;

use super::wire::ApiError;

/// The expressions of a request and the name DynamoDB gives each in its
/// messages.
const EXPRESSIONS: [(&str, &str); 3] = [
    ("ConditionExpression", "ConditionExpression"),
    ("FilterExpression", "FilterExpression"),
    ("KeyConditionExpression", "KeyConditionExpression"),
];

/// The type names `attribute_type` takes.
const TYPE_NAMES: [&str; 10] = ["B", "NULL", "SS", "BOOL", "L", "BS", "N", "NS", "S", "M"];

/// Checks `request` for `operation`.
pub fn check(operation: &str, request: &Value) -> Result<(), ApiError> {
    if operation == "CreateTable" {
        check_attribute_definitions(request)?;
    }
    if matches!(operation, "CreateTable" | "TagResource") {
        check_tags(request)?;
    }
    // Writes word expression errors with the validation layer's prefix, as
    // the engine does for its own (captured against DynamoDB by its
    // authors).
    let prefix = if matches!(operation, "PutItem" | "UpdateItem" | "DeleteItem") {
        "1 validation error detected: "
    } else {
        ""
    };
    for (field, name) in EXPRESSIONS {
        if let Some(expression) = request.get(field).and_then(Value::as_str)
            && let Some(problem) =
                check_expression(expression, &request["ExpressionAttributeValues"])
        {
            return Err(ApiError::validation(format!(
                "{prefix}Invalid {name}: {problem}"
            )));
        }
    }
    Ok(())
}

/// `Attribute Name is duplicated` for an AttributeDefinitions list naming
/// one attribute twice.
fn check_attribute_definitions(request: &Value) -> Result<(), ApiError> {
    let Some(definitions) = request["AttributeDefinitions"].as_array() else {
        return Ok(());
    };
    let mut seen = Vec::new();
    for name in definitions
        .iter()
        .filter_map(|d| d["AttributeName"].as_str())
    {
        if seen.contains(&name) {
            return Err(ApiError::validation(format!(
                "Attribute Name is duplicated: {name}"
            )));
        }
        seen.push(name);
    }
    Ok(())
}

/// Whether a tag key or value holds only what AWS allows: letters,
/// numbers, spaces and `_ . : / = + - @`.
/// <https://docs.aws.amazon.com/tag-editor/latest/userguide/best-practices-and-strats.html>
fn tag_text_allowed(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

/// Tag keys and values with characters AWS does not allow, and keys in
/// AWS's own `aws:` namespace, are refused.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Tagging.html#TaggingRestrictions>
fn check_tags(request: &Value) -> Result<(), ApiError> {
    let Some(tags) = request["Tags"].as_array() else {
        return Ok(());
    };
    for tag in tags {
        if let Some(key) = tag["Key"].as_str() {
            if !tag_text_allowed(key) {
                return Err(ApiError::validation(format!(
                    "The Tag Key provided is invalid, Key: {key}"
                )));
            }
            if key.to_ascii_lowercase().starts_with("aws:") {
                return Err(ApiError::validation(format!(
                    "Tag Key cannot be prefixed with aws:, Key: {key}"
                )));
            }
        }
        if let Some(value) = tag["Value"].as_str()
            && !tag_text_allowed(value)
        {
            return Err(ApiError::validation(format!(
                "The Tag Value provided is invalid, Value: {value}"
            )));
        }
    }
    Ok(())
}

/// An expression's tokens: names, placeholders, keywords, punctuation.
fn tokens(expression: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in expression.char_indices() {
        let word = c.is_alphanumeric() || matches!(c, '_' | '#' | ':' | '.' | '[' | ']');
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(&expression[s..i]);
                start = None;
            }
            _ => {}
        }
        if !word && !c.is_whitespace() {
            out.push(&expression[i..i + c.len_utf8()]);
        }
    }
    if let Some(s) = start {
        out.push(&expression[s..]);
    }
    out
}

/// `AttributeValue: {S:b}` as DynamoDB describes a value in its messages.
fn describe(value: &Value) -> String {
    match value.as_object().and_then(|m| m.iter().next()) {
        Some((kind, Value::String(v))) => format!("AttributeValue: {{{kind}:{v}}}"),
        Some((kind, v)) => format!("AttributeValue: {{{kind}:{v}}}"),
        None => "AttributeValue: {}".to_owned(),
    }
}

/// The type and scalar of a value placeholder, when `values` has it.
fn scalar<'a>(values: &'a Value, token: &str) -> Option<(&'a str, &'a Value)> {
    if !token.starts_with(':') {
        return None;
    }
    values
        .get(token)?
        .as_object()?
        .iter()
        .next()
        .map(|(k, v)| (k.as_str(), v))
}

/// Whether `low` sorts after `high` (both of `kind`, S, N or B).
fn after(kind: &str, low: &Value, high: &Value) -> bool {
    let (Some(low), Some(high)) = (low.as_str(), high.as_str()) else {
        return false;
    };
    match kind {
        "N" => match (low.trim().parse::<f64>(), high.trim().parse::<f64>()) {
            (Ok(l), Ok(h)) => l > h,
            _ => false,
        },
        "S" => low.as_bytes() > high.as_bytes(),
        "B" => {
            use base64::Engine as _;
            let decode = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).ok();
            matches!((decode(low), decode(high)), (Some(l), Some(h)) if l > h)
        }
        _ => false,
    }
}

/// The first problem DynamoDB finds in an expression whose operands are
/// value placeholders: BETWEEN bounds of two types or in the wrong order,
/// and `attribute_type` with a type that does not exist.
fn check_expression(expression: &str, values: &Value) -> Option<String> {
    let t = tokens(expression);
    for (i, token) in t.iter().enumerate() {
        if token.eq_ignore_ascii_case("BETWEEN")
            && let (Some(lo), Some(and), Some(hi)) = (t.get(i + 1), t.get(i + 2), t.get(i + 3))
            && and.eq_ignore_ascii_case("AND")
            && let (Some((lo_kind, lo_value)), Some((hi_kind, hi_value))) =
                (scalar(values, lo), scalar(values, hi))
        {
            let (lo_text, hi_text) = (describe(&values[*lo]), describe(&values[*hi]));
            if lo_kind != hi_kind {
                return Some(format!(
                    "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: {lo_text}, upper bound operand: {hi_text}"
                ));
            }
            if after(lo_kind, lo_value, hi_value) {
                return Some(format!(
                    "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: {lo_text}, upper bound operand: {hi_text}"
                ));
            }
        }
        if *token == "attribute_type" && t.get(i + 1) == Some(&"(") {
            // attribute_type ( path , :type )
            let close = t[i..].iter().position(|x| *x == ")").map(|p| p + i)?;
            let argument = t[i..close].last()?;
            if let Some(("S", Value::String(name))) = scalar(values, argument)
                && !TYPE_NAMES.contains(&name.as_str())
            {
                return Some(format!(
                    "Invalid attribute type name found; type: {name}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn between_bounds_must_share_a_type_and_be_in_order() {
        let values = json!({":a": {"N": "1"}, ":b": {"N": "5"}, ":s": {"S": "5"}});
        assert_eq!(check_expression("v BETWEEN :a AND :b", &values), None);
        let reversed = check_expression("v between :b and :a", &values).expect("reversed");
        assert_eq!(
            reversed,
            "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}"
        );
        assert!(
            check_expression("(v BETWEEN :a AND :s)", &values)
                .is_some_and(|m| m.contains("same data type"))
        );
        assert_eq!(check_expression("v BETWEEN :a AND w", &values), None);
    }

    #[test]
    fn attribute_type_names_must_exist() {
        let values = json!({":t": {"S": "XX"}, ":n": {"S": "N"}});
        assert!(
            check_expression("attribute_type(#v, :t)", &values)
                .is_some_and(|m| m.starts_with("Invalid attribute type name found; type: XX"))
        );
        assert_eq!(check_expression("attribute_type(v, :n)", &values), None);
    }

    #[test]
    fn messages_name_the_expression_and_writes_carry_the_prefix() {
        let request = json!({"ConditionExpression": "v BETWEEN :b AND :a",
            "ExpressionAttributeValues": {":a": {"S": "a"}, ":b": {"S": "b"}}});
        let err = check("PutItem", &request).expect_err("reversed");
        assert!(
            err.message.as_deref().is_some_and(|m| m.starts_with(
                "1 validation error detected: Invalid ConditionExpression: The BETWEEN"
            )),
            "{err}"
        );
        let scan = json!({"FilterExpression": "v BETWEEN :b AND :a",
            "ExpressionAttributeValues": {":a": {"S": "a"}, ":b": {"S": "b"}}});
        let err = check("Scan", &scan).expect_err("reversed");
        assert!(
            err.message
                .as_deref()
                .is_some_and(|m| m.starts_with("Invalid FilterExpression: The BETWEEN")),
            "{err}"
        );
    }

    #[test]
    fn tags_with_forbidden_characters_or_the_aws_prefix_are_refused() {
        check(
            "TagResource",
            &json!({"Tags": [{"Key": "team name_1:/=+-@.", "Value": "ünïcode ok"}]}),
        )
        .expect("allowed characters");
        for (tags, start) in [
            (
                json!([{"Key": "k{", "Value": "v"}]),
                "The Tag Key provided is invalid",
            ),
            (
                json!([{"Key": "aws:x", "Value": "v"}]),
                "Tag Key cannot be prefixed with aws:",
            ),
            (
                json!([{"Key": "k", "Value": "v<"}]),
                "The Tag Value provided is invalid",
            ),
        ] {
            let err = check("TagResource", &json!({"Tags": tags})).expect_err(start);
            assert!(
                err.message.as_deref().is_some_and(|m| m.starts_with(start)),
                "{err}"
            );
        }
    }

    #[test]
    fn an_attribute_defined_twice_is_refused() {
        let request = json!({"AttributeDefinitions": [
            {"AttributeName": "a", "AttributeType": "S"},
            {"AttributeName": "a", "AttributeType": "S"}]});
        let err = check("CreateTable", &request).expect_err("duplicate");
        assert_eq!(
            err.message.as_deref(),
            Some("Attribute Name is duplicated: a")
        );
    }
}
