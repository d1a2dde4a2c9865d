//! `woocom-dev scan <table>`: prints a table's items as readable JSON
//! (`{"pk": "a", "n": 1}` rather than DynamoDB's `{"pk": {"S": "a"}}`;
//! `--raw` for DynamoDB JSON).

use std::path::Path;
use std::process::ExitCode;

use serde_json::{Map, Value, json};
use woocom_dev::manifest::Manifest;

#[derive(clap::Args)]
pub struct ScanArgs {
    /// The table to print.
    table: String,
    /// Print at most this many items.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Print DynamoDB JSON (typed attribute values).
    #[arg(long)]
    raw: bool,
}

pub async fn run(
    manifest_path: &Path,
    args: ScanArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let manifest = Manifest::load(manifest_path)?;
    let Some(db) = super::tables::open_project_database(&manifest)? else {
        return Err(format!(
            "no tables yet for stack `{}`: run `woocom-dev up` first",
            manifest.stack.name
        )
        .into());
    };
    let mut printed = 0usize;
    let mut start: Option<Value> = None;
    while printed < args.limit {
        let mut request =
            json!({"TableName": args.table, "Limit": (args.limit - printed).min(1000)});
        if let Some(key) = start.take() {
            request["ExclusiveStartKey"] = key;
        }
        let request = serde_json::from_value(request)?;
        let page = db.scan(request).map_err(|e| {
            format!(
                "{}: {e}",
                e.error_type().rsplit('#').next().unwrap_or("error")
            )
        })?;
        let page = serde_json::to_value(&page)?;
        for item in page["Items"].as_array().into_iter().flatten() {
            let shown = if args.raw { item.clone() } else { plain(item) };
            println!("{}", serde_json::to_string_pretty(&shown)?);
            printed += 1;
        }
        match page.get("LastEvaluatedKey") {
            Some(key) if !key.is_null() => start = Some(key.clone()),
            _ => break,
        }
    }
    eprintln!("{printed} item(s) from `{}`", args.table);
    Ok(ExitCode::SUCCESS)
}

/// DynamoDB JSON to plain JSON: numbers as numbers where they fit, sets as
/// arrays, binary as its base64 text.
fn plain(value: &Value) -> Value {
    match value {
        Value::Object(map) if map.len() == 1 => {
            let Some((kind, inner)) = map.iter().next() else {
                return Value::Null;
            };
            match (kind.as_str(), inner) {
                ("S" | "B", v) => v.clone(),
                ("N", Value::String(n)) => number(n),
                ("BOOL", v) => v.clone(),
                ("NULL", _) => Value::Null,
                ("SS" | "BS", v) => v.clone(),
                ("NS", Value::Array(ns)) => Value::Array(
                    ns.iter()
                        .map(|n| n.as_str().map_or(Value::Null, number))
                        .collect(),
                ),
                ("L", Value::Array(items)) => Value::Array(items.iter().map(plain).collect()),
                ("M", Value::Object(_)) => plain_item(inner),
                _ => plain_item(value),
            }
        }
        _ => plain_item(value),
    }
}

fn plain_item(item: &Value) -> Value {
    match item {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), plain(v)))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

fn number(text: &str) -> Value {
    serde_json::from_str::<serde_json::Number>(text)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_json_becomes_plain_json() {
        let item = json!({
            "pk": {"S": "a"}, "n": {"N": "1.5"}, "ok": {"BOOL": true}, "none": {"NULL": true},
            "tags": {"SS": ["x"]}, "doc": {"M": {"l": {"L": [{"N": "2"}]}}}
        });
        assert_eq!(
            plain_item(&item),
            json!({"pk": "a", "n": 1.5, "ok": true, "none": null, "tags": ["x"], "doc": {"l": [2]}})
        );
    }
}
