//! Seed data: the items a table starts with, so a new stack is not empty.
//!
//! `[tables.<name>] seed = "seed/products.json"` names a JSON array of plain
//! items (`{"id": "teapot", "price": 3900}`, not DynamoDB's typed JSON).
//! `woocom-dev up` loads it into a table it has just created, and
//! `woocom-dev seed` loads it again on demand (items with the same key are
//! replaced; other items are kept).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::dynamodb::DynamoDb;
use crate::manifest::Manifest;
use crate::manifest::tables::{AttributeType, KeyAttribute, Table};

/// BatchWriteItem's limit on requests per call.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html>
pub const BATCH_LIMIT: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read {} (seed of table `{table}`): {source}", file.display())]
    Read {
        table: String,
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not valid JSON: {message}", file.display())]
    Json {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: item {index}: {message}", file.display())]
    Item {
        file: PathBuf,
        /// Position in the array, from 0.
        index: usize,
        message: String,
    },
    #[error("seeding table `{table}`: {message}")]
    Write { table: String, message: String },
}

/// The seed file of `table`, resolved against `dev.toml`'s folder.
pub fn seed_file(manifest: &Manifest, table: &Table) -> Option<PathBuf> {
    table.seed.as_ref().map(|f| manifest.root().join(f))
}

/// Reads and checks a table's seed file: every item is an object with the
/// table's key attributes of the declared types. Returns the items in
/// DynamoDB JSON, ready for `PutRequest`s.
pub fn load(manifest: &Manifest, table: &Table) -> Result<Vec<Value>, SeedError> {
    let Some(file) = seed_file(manifest, table) else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(&file).map_err(|source| SeedError::Read {
        table: table.name.clone(),
        file: file.clone(),
        source,
    })?;
    parse(&file, &text, table)
}

fn parse(file: &std::path::Path, text: &str, table: &Table) -> Result<Vec<Value>, SeedError> {
    let value: Value = serde_json::from_str(text).map_err(|e| SeedError::Json {
        file: file.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let Value::Array(items) = value else {
        return Err(SeedError::Json {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: "a seed file is a JSON array of items".to_owned(),
        });
    };
    let keys: Vec<&KeyAttribute> = std::iter::once(&table.partition_key)
        .chain(table.sort_key.as_ref())
        .collect();
    let mut seen = std::collections::BTreeMap::new();
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let at = |message: String| SeedError::Item {
                file: file.to_owned(),
                index,
                message,
            };
            let Value::Object(fields) = item else {
                return Err(at("an item is a JSON object".to_owned()));
            };
            let mut key = Vec::new();
            for k in &keys {
                let value = fields.get(&k.name).ok_or_else(|| {
                    at(format!(
                        "missing key attribute `{}` of table `{}`",
                        k.name, table.name
                    ))
                })?;
                let ok = match k.kind {
                    AttributeType::S | AttributeType::B => {
                        value.as_str().is_some_and(|s| !s.is_empty())
                    }
                    AttributeType::N => value.is_number(),
                };
                if !ok {
                    return Err(at(format!(
                        "key attribute `{}` must be a non-empty {} (table `{}` declares it {})",
                        k.name,
                        match k.kind {
                            AttributeType::N => "number",
                            _ => "string",
                        },
                        table.name,
                        k.kind.as_str()
                    )));
                }
                key.push(value.to_string());
            }
            if let Some(first) = seen.insert(key.join("\u{0}"), index) {
                return Err(at(format!("same key as item {first}")));
            }
            let mut typed = Map::new();
            for (name, value) in fields {
                let attribute = if keys
                    .iter()
                    .any(|k| k.name == *name && k.kind == AttributeType::B)
                {
                    json!({ "B": value })
                } else {
                    attribute_value(value)
                        .map_err(|message| at(format!("attribute `{name}`: {message}")))?
                };
                typed.insert(name.clone(), attribute);
            }
            Ok(Value::Object(typed))
        })
        .collect()
}

/// Plain JSON → DynamoDB's typed JSON: strings S, numbers N, booleans
/// BOOL, null NULL, arrays L, objects M.
pub fn attribute_value(value: &Value) -> Result<Value, String> {
    Ok(match value {
        Value::Null => json!({ "NULL": true }),
        Value::Bool(b) => json!({ "BOOL": b }),
        Value::Number(n) => json!({ "N": n.to_string() }),
        Value::String(s) => json!({ "S": s }),
        Value::Array(items) => json!({
            "L": items.iter().map(attribute_value).collect::<Result<Vec<_>, _>>()?
        }),
        Value::Object(fields) => {
            let mut map = Map::new();
            for (k, v) in fields {
                if k.is_empty() {
                    return Err("attribute names must not be empty".to_owned());
                }
                map.insert(k.clone(), attribute_value(v)?);
            }
            json!({ "M": map })
        }
    })
}

/// Writes `items` (DynamoDB JSON) into `table` with BatchWriteItem,
/// resending what the engine leaves unprocessed.
pub async fn write(db: &Arc<DynamoDb>, table: &str, items: &[Value]) -> Result<usize, SeedError> {
    write_with(table, items, |request| async move {
        db.call_json("BatchWriteItem", request)
            .await
            .map_err(|e| e.to_string())
    })
    .await
}

/// [`write`] through any BatchWriteItem transport (`woocom-dev seed` sends
/// them to a running stack over HTTP): `batch_write` takes the request and
/// returns DynamoDB's answer.
pub async fn write_with<F, Fut>(
    table: &str,
    items: &[Value],
    batch_write: F,
) -> Result<usize, SeedError>
where
    F: Fn(Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    let fail = |message: String| SeedError::Write {
        table: table.to_owned(),
        message,
    };
    for chunk in items.chunks(BATCH_LIMIT) {
        let mut requests: Vec<Value> = chunk
            .iter()
            .map(|item| json!({ "PutRequest": { "Item": item } }))
            .collect();
        for _attempt in 0..10 {
            let answer = batch_write(json!({ "RequestItems": { table: requests } }))
                .await
                .map_err(fail)?;
            requests = answer["UnprocessedItems"][table]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if requests.is_empty() {
                break;
            }
        }
        if !requests.is_empty() {
            return Err(fail(format!(
                "{} items stayed unprocessed after 10 attempts",
                requests.len()
            )));
        }
    }
    Ok(items.len())
}

/// Loads the seed of each named table that has one. Returns the tables
/// seeded and how many items each got.
pub async fn seed_tables(
    db: &Arc<DynamoDb>,
    manifest: &Manifest,
    tables: &[String],
) -> Result<Vec<(String, usize)>, SeedError> {
    let mut done = Vec::new();
    for name in tables {
        let Some(table) = manifest.tables.get(name) else {
            continue;
        };
        if table.seed.is_none() {
            continue;
        }
        let items = load(manifest, table)?;
        let written = write(db, name, &items).await?;
        done.push((name.clone(), written));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn table() -> Table {
        let manifest = Manifest::parse(
            Path::new("dev.toml"),
            "[tables.products]\npartition_key = { name = \"id\", type = \"S\" }\nseed = \"seed/products.json\"\n",
        )
        .expect("manifest");
        manifest.tables["products"].clone()
    }

    #[test]
    fn plain_items_become_typed_items() {
        let items = parse(
            Path::new("seed.json"),
            r#"[{"id": "teapot", "price": 3900, "tags": ["tea"], "dims": {"h": 1.5}, "sale": false, "note": null}]"#,
            &table(),
        )
        .expect("valid");
        assert_eq!(
            items[0],
            json!({"id": {"S": "teapot"}, "price": {"N": "3900"}, "tags": {"L": [{"S": "tea"}]},
                   "dims": {"M": {"h": {"N": "1.5"}}}, "sale": {"BOOL": false}, "note": {"NULL": true}})
        );
    }

    #[test]
    fn an_item_without_its_key_is_named_by_position() {
        let err = parse(
            Path::new("seed/products.json"),
            r#"[{"id": "a"}, {"name": "no id"}]"#,
            &table(),
        )
        .expect_err("missing key");
        assert_eq!(
            err.to_string(),
            "seed/products.json: item 1: missing key attribute `id` of table `products`"
        );
    }

    #[test]
    fn wrong_key_type_duplicate_keys_and_bad_json_are_reported() {
        let err = parse(Path::new("s.json"), r#"[{"id": 7}]"#, &table()).expect_err("type");
        assert!(
            err.to_string().contains("must be a non-empty string"),
            "{err}"
        );
        let err = parse(
            Path::new("s.json"),
            r#"[{"id": "a"}, {"id": "a"}]"#,
            &table(),
        )
        .expect_err("duplicate");
        assert_eq!(err.to_string(), "s.json: item 1: same key as item 0");
        let err = parse(Path::new("s.json"), "[\n{\"id\": }]", &table()).expect_err("json");
        assert!(err.to_string().starts_with("s.json:2:"), "{err}");
        let err = parse(Path::new("s.json"), "{}", &table()).expect_err("not an array");
        assert!(err.to_string().contains("JSON array"), "{err}");
    }

    #[test]
    fn the_manifest_refuses_a_seed_that_is_not_json() {
        let err = Manifest::parse(
            Path::new("dev.toml"),
            "[tables.products]\npartition_key = { name = \"id\", type = \"S\" }\nseed = \"seed.csv\"\n",
        )
        .expect_err("csv");
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("must be a .json file"), "{err}");
    }
}
