//! Answers the engine gives differently from DynamoDB, corrected in our
//! layer (issue #18).

use serde_json::{Map, Value};

/// One step of a document path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Name(String),
    Index(usize),
}

/// The paths of a ProjectionExpression, `#names` resolved; `None` when one
/// does not parse (the item is then left as the engine gave it).
fn paths(expression: &str, names: &Value) -> Option<Vec<Vec<Step>>> {
    let mut out = Vec::new();
    for path in expression.split(',') {
        let mut steps = Vec::new();
        for part in path.trim().split('.') {
            let (name, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            let name = name.trim();
            if name.is_empty() {
                return None;
            }
            let name = if name.starts_with('#') {
                names.get(name)?.as_str()?.to_owned()
            } else {
                name.to_owned()
            };
            steps.push(Step::Name(name));
            while let Some(inner) = rest.strip_prefix('[') {
                let close = inner.find(']')?;
                steps.push(Step::Index(inner[..close].trim().parse().ok()?));
                rest = &inner[close + 1..];
            }
        }
        out.push(steps);
    }
    Some(out)
}

/// Copies the value at `steps` of `source` (an attribute value) into
/// `target` (the same shape), creating the maps and lists on the way.
fn copy(source: &Value, target: &mut Value, steps: &[Step]) {
    let Some((step, rest)) = steps.split_first() else {
        *target = source.clone();
        return;
    };
    match step {
        Step::Name(name) => {
            let Some(child) = source.get("M").and_then(|m| m.get(name)) else {
                return;
            };
            if !target.get("M").is_some_and(Value::is_object) {
                *target = serde_json::json!({"M": {}});
            }
            let slot = target["M"]
                .as_object_mut()
                .map(|m| m.entry(name.clone()).or_insert(Value::Null));
            if let Some(slot) = slot {
                copy(child, slot, rest);
            }
        }
        Step::Index(i) => {
            let Some(child) = source.get("L").and_then(|l| l.get(*i)) else {
                return;
            };
            if !target.get("L").is_some_and(Value::is_array) {
                *target = serde_json::json!({"L": []});
            }
            if let Some(list) = target["L"].as_array_mut() {
                list.push(Value::Null);
                if let Some(slot) = list.last_mut() {
                    copy(child, slot, rest);
                }
            }
        }
    }
}

/// `item` (attribute name → value) cut down to the paths of `expression`.
pub fn project(item: &Map<String, Value>, expression: &str, names: &Value) -> Option<Value> {
    let paths = paths(expression, names)?;
    let source = serde_json::json!({ "M": item });
    let mut target = serde_json::json!({ "M": {} });
    for path in &paths {
        copy(&source, &mut target, path);
    }
    Some(target["M"].clone())
}

/// TransactGetItems returns each item cut to its Get's
/// ProjectionExpression, as GetItem does.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Get.html>
pub fn project_transact_get(request: &Value, answer: String) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(&answer) else {
        return answer;
    };
    let Some(gets) = request["TransactItems"].as_array() else {
        return answer;
    };
    let mut changed = false;
    for (i, get) in gets.iter().enumerate() {
        let get = &get["Get"];
        let Some(expression) = get["ProjectionExpression"].as_str() else {
            continue;
        };
        let Some(item) = value
            .pointer(&format!("/Responses/{i}/Item"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        if let Some(projected) = project(item, expression, &get["ExpressionAttributeNames"])
            && let Some(slot) = value.pointer_mut(&format!("/Responses/{i}/Item"))
        {
            *slot = projected;
            changed = true;
        }
    }
    if changed { value.to_string() } else { answer }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projections_keep_the_paths_named_and_nothing_else() {
        let item = json!({
            "id": {"S": "a"},
            "v": {"N": "1"},
            "m": {"M": {"x": {"N": "1"}, "y": {"S": "s"}}},
            "l": {"L": [{"S": "zero"}, {"S": "one"}, {"S": "two"}]}
        });
        let item = item.as_object().expect("object");
        assert_eq!(
            project(item, "v", &Value::Null),
            Some(json!({"v": {"N": "1"}}))
        );
        assert_eq!(
            project(item, "#m.y, l[2], missing", &json!({"#m": "m"})),
            Some(json!({"m": {"M": {"y": {"S": "s"}}}, "l": {"L": [{"S": "two"}]}}))
        );
        assert_eq!(project(item, "#unknown", &json!({})), None);
    }

    #[test]
    fn transact_get_answers_are_projected_per_get() {
        let request = json!({"TransactItems": [
            {"Get": {"TableName": "t", "Key": {}, "ProjectionExpression": "v"}},
            {"Get": {"TableName": "t", "Key": {}}}
        ]});
        let answer = json!({"Responses": [
            {"Item": {"id": {"S": "a"}, "v": {"N": "1"}}},
            {"Item": {"id": {"S": "b"}, "v": {"N": "2"}}}
        ]})
        .to_string();
        let fixed: Value =
            serde_json::from_str(&project_transact_get(&request, answer)).expect("json");
        assert_eq!(fixed["Responses"][0]["Item"], json!({"v": {"N": "1"}}));
        assert_eq!(fixed["Responses"][1]["Item"]["id"], json!({"S": "b"}));
    }
}
