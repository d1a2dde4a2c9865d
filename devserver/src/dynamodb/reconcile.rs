//! Makes the engine's tables match `dev.toml` on `woocom-dev up`, so a fresh
//! checkout has its tables with no script, and a table edited in `dev.toml`
//! follows the edit.
//!
//! What DynamoDB can change in place is changed in place (global indexes
//! added or removed, streams, TTL). What it cannot (a table's keys, its
//! local indexes) is reported with the file, the table, what changed, and
//! what to do; nothing is changed then, so no data is lost by surprise.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use super::DynamoDb;
use super::wire::ApiError;
use crate::manifest::Manifest;
use crate::manifest::tables::{Index, KeyAttribute, Projection, Table};

/// What a reconcile did, one line per change.
#[derive(Debug, Default, Clone)]
pub struct ReconcileReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    /// Tables in the database that `dev.toml` does not declare (left alone).
    pub undeclared: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{}", incompatible_message(file, changes))]
    Incompatible {
        file: PathBuf,
        /// (table, line of its declaration, what changed)
        changes: Vec<(String, usize, String)>,
    },
    #[error("{}:{line}: table `{table}`: DynamoDB refused {operation}: {error}", file.display())]
    Engine {
        file: PathBuf,
        table: String,
        line: usize,
        operation: &'static str,
        error: ApiError,
    },
}

fn incompatible_message(file: &std::path::Path, changes: &[(String, usize, String)]) -> String {
    let mut out = String::from(
        "dev.toml changes tables in ways DynamoDB cannot apply to an existing table:\n",
    );
    for (table, line, change) in changes {
        out.push_str(&format!(
            "  {}:{line}: table `{table}`: {change}\n",
            file.display()
        ));
    }
    out.push_str(
        "Nothing was changed. To start these tables afresh run `woocom-dev reset` \
         (deletes all local table data), or give a changed table a new name.",
    );
    out
}

/// Key attributes as (name, HASH or RANGE, type).
type Keys = Vec<(String, String, String)>;
/// Index name -> (keys, projection).
type IndexShapes = BTreeMap<String, (Keys, String)>;

/// The parts of a table that decide whether it matches its declaration.
#[derive(Debug, PartialEq)]
struct Shape {
    keys: Keys,
    local: IndexShapes,
    global: IndexShapes,
    /// The view type when a stream is on.
    stream: Option<String>,
}

fn key_schema(pk: &KeyAttribute, sk: Option<&KeyAttribute>) -> Vec<(String, String, String)> {
    let mut keys = vec![(
        pk.name.clone(),
        "HASH".to_owned(),
        pk.kind.as_str().to_owned(),
    )];
    if let Some(sk) = sk {
        keys.push((
            sk.name.clone(),
            "RANGE".to_owned(),
            sk.kind.as_str().to_owned(),
        ));
    }
    keys
}

fn projection_text(p: &Projection) -> String {
    match p {
        Projection::All => "ALL".to_owned(),
        Projection::KeysOnly => "KEYS_ONLY".to_owned(),
        Projection::Include(attrs) => {
            let mut attrs = attrs.clone();
            attrs.sort();
            format!("INCLUDE {}", attrs.join(","))
        }
    }
}

fn declared_shape(t: &Table) -> Shape {
    let index = |i: &Index| {
        (
            key_schema(&i.partition_key, i.sort_key.as_ref()),
            projection_text(&i.projection),
        )
    };
    Shape {
        keys: key_schema(&t.partition_key, t.sort_key.as_ref()),
        local: t
            .local_indexes
            .iter()
            .map(|i| (i.name.clone(), index(i)))
            .collect(),
        global: t
            .global_indexes
            .iter()
            .map(|i| (i.name.clone(), index(i)))
            .collect(),
        stream: t.stream.map(|s| s.as_str().to_owned()),
    }
}

/// The shape of a table as DescribeTable reports it.
fn described_shape(description: &Value) -> Shape {
    let types: BTreeMap<&str, &str> = description["AttributeDefinitions"]
        .as_array()
        .map(|defs| {
            defs.iter()
                .filter_map(|d| Some((d["AttributeName"].as_str()?, d["AttributeType"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let keys = |schema: &Value| -> Vec<(String, String, String)> {
        let mut keys: Vec<(String, String, String)> = schema
            .as_array()
            .map(|ks| {
                ks.iter()
                    .filter_map(|k| {
                        let name = k["AttributeName"].as_str()?;
                        Some((
                            name.to_owned(),
                            k["KeyType"].as_str()?.to_owned(),
                            types.get(name).copied().unwrap_or("?").to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        keys.sort_by(|a, b| a.1.cmp(&b.1));
        keys
    };
    let projection = |p: &Value| -> String {
        match p["ProjectionType"].as_str() {
            Some("INCLUDE") => {
                let mut attrs: Vec<&str> = p["NonKeyAttributes"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                attrs.sort_unstable();
                format!("INCLUDE {}", attrs.join(","))
            }
            Some(other) => other.to_owned(),
            None => "ALL".to_owned(),
        }
    };
    let indexes = |list: &Value| {
        list.as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|i| {
                        Some((
                            i["IndexName"].as_str()?.to_owned(),
                            (keys(&i["KeySchema"]), projection(&i["Projection"])),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let spec = &description["StreamSpecification"];
    Shape {
        keys: keys(&description["KeySchema"]),
        local: indexes(&description["LocalSecondaryIndexes"]),
        global: indexes(&description["GlobalSecondaryIndexes"]),
        stream: (spec["StreamEnabled"].as_bool() == Some(true))
            .then(|| spec["StreamViewType"].as_str().unwrap_or("").to_owned()),
    }
}

fn describe_keys(keys: &[(String, String, String)]) -> String {
    keys.iter()
        .map(|(name, kind, ty)| {
            let role = if kind == "HASH" { "partition" } else { "sort" };
            format!("{role} key {name} ({ty})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn attribute_definitions(t: &Table) -> Vec<Value> {
    let mut defs: BTreeMap<String, &str> = BTreeMap::new();
    let mut add = |k: &KeyAttribute| {
        defs.insert(k.name.clone(), k.kind.as_str());
    };
    add(&t.partition_key);
    if let Some(sk) = &t.sort_key {
        add(sk);
    }
    for i in t.global_indexes.iter().chain(&t.local_indexes) {
        add(&i.partition_key);
        if let Some(sk) = &i.sort_key {
            add(sk);
        }
    }
    defs.into_iter()
        .map(|(name, ty)| json!({"AttributeName": name, "AttributeType": ty}))
        .collect()
}

fn key_schema_json(pk: &KeyAttribute, sk: Option<&KeyAttribute>) -> Value {
    let mut ks = vec![json!({"AttributeName": pk.name, "KeyType": "HASH"})];
    if let Some(sk) = sk {
        ks.push(json!({"AttributeName": sk.name, "KeyType": "RANGE"}));
    }
    Value::Array(ks)
}

fn index_json(i: &Index) -> Value {
    let projection = match &i.projection {
        Projection::All => json!({"ProjectionType": "ALL"}),
        Projection::KeysOnly => json!({"ProjectionType": "KEYS_ONLY"}),
        Projection::Include(attrs) => {
            json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": attrs})
        }
    };
    json!({
        "IndexName": i.name,
        "KeySchema": key_schema_json(&i.partition_key, i.sort_key.as_ref()),
        "Projection": projection,
    })
}

fn create_table_request(t: &Table) -> Value {
    let mut request = json!({
        "TableName": t.name,
        "AttributeDefinitions": attribute_definitions(t),
        "KeySchema": key_schema_json(&t.partition_key, t.sort_key.as_ref()),
        "BillingMode": "PAY_PER_REQUEST",
    });
    if !t.global_indexes.is_empty() {
        request["GlobalSecondaryIndexes"] = t.global_indexes.iter().map(index_json).collect();
    }
    if !t.local_indexes.is_empty() {
        request["LocalSecondaryIndexes"] = t.local_indexes.iter().map(index_json).collect();
    }
    if let Some(view) = t.stream {
        request["StreamSpecification"] =
            json!({"StreamEnabled": true, "StreamViewType": view.as_str()});
    }
    request
}

pub(super) async fn reconcile(
    db: &Arc<DynamoDb>,
    manifest: &Manifest,
) -> Result<ReconcileReport, ReconcileError> {
    let file = manifest.path.clone();
    let engine_error =
        |t: &Table, operation: &'static str, error: ApiError| ReconcileError::Engine {
            file: file.clone(),
            table: t.name.clone(),
            line: t.line,
            operation,
            error,
        };
    let mut report = ReconcileReport::default();
    let existing = list_tables(db)
        .await
        .map_err(|error| ReconcileError::Engine {
            file: file.clone(),
            table: "*".to_owned(),
            line: 1,
            operation: "ListTables",
            error,
        })?;

    // First pass: find what cannot change in place, before changing anything.
    let mut incompatible = Vec::new();
    let mut descriptions = BTreeMap::new();
    for t in manifest.tables.values() {
        if !existing.contains(&t.name) {
            continue;
        }
        let description = db
            .call_json("DescribeTable", json!({"TableName": t.name}))
            .await
            .map_err(|e| engine_error(t, "DescribeTable", e))?;
        let have = described_shape(&description["Table"]);
        let want = declared_shape(t);
        if have.keys != want.keys {
            incompatible.push((
                t.name.clone(),
                t.line,
                format!(
                    "keys changed from [{}] to [{}]; DynamoDB cannot change a table's keys",
                    describe_keys(&have.keys),
                    describe_keys(&want.keys)
                ),
            ));
        }
        if have.local != want.local {
            let names = |m: &BTreeMap<String, _>| m.keys().cloned().collect::<Vec<_>>().join(", ");
            incompatible.push((
                t.name.clone(),
                t.line,
                format!(
                    "local indexes changed (were [{}], now [{}]); local indexes can only be set when a table is created",
                    names(&have.local),
                    names(&want.local)
                ),
            ));
        }
        descriptions.insert(t.name.clone(), have);
    }
    if !incompatible.is_empty() {
        return Err(ReconcileError::Incompatible {
            file,
            changes: incompatible,
        });
    }

    for t in manifest.tables.values() {
        match descriptions.get(&t.name) {
            None => {
                db.call_json("CreateTable", create_table_request(t))
                    .await
                    .map_err(|e| engine_error(t, "CreateTable", e))?;
                report.created.push(t.name.clone());
            }
            Some(have) => {
                let want = declared_shape(t);
                // Global indexes: one change per UpdateTable, as DynamoDB
                // allows; a changed index is dropped and built again.
                for (name, spec) in &have.global {
                    if want.global.get(name) != Some(spec) {
                        update_table(db, t, json!({"GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": name}}]}))
                            .await
                            .map_err(|e| engine_error(t, "UpdateTable", e))?;
                        report
                            .updated
                            .push(format!("{}: removed global index {name}", t.name));
                    }
                }
                for index in &t.global_indexes {
                    if have.global.get(&index.name) != want.global.get(&index.name) {
                        update_table(
                            db,
                            t,
                            json!({
                                "AttributeDefinitions": attribute_definitions(t),
                                "GlobalSecondaryIndexUpdates": [{"Create": index_json(index)}],
                            }),
                        )
                        .await
                        .map_err(|e| engine_error(t, "UpdateTable", e))?;
                        report
                            .updated
                            .push(format!("{}: created global index {}", t.name, index.name));
                    }
                }
                if have.stream != want.stream {
                    if have.stream.is_some() {
                        update_table(
                            db,
                            t,
                            json!({"StreamSpecification": {"StreamEnabled": false}}),
                        )
                        .await
                        .map_err(|e| engine_error(t, "UpdateTable", e))?;
                    }
                    if let Some(view) = &want.stream {
                        update_table(
                            db,
                            t,
                            json!({"StreamSpecification": {"StreamEnabled": true, "StreamViewType": view}}),
                        )
                        .await
                        .map_err(|e| engine_error(t, "UpdateTable", e))?;
                    }
                    report.updated.push(format!(
                        "{}: stream {} -> {}",
                        t.name,
                        have.stream.as_deref().unwrap_or("off"),
                        want.stream.as_deref().unwrap_or("off")
                    ));
                }
            }
        }
        reconcile_ttl(db, t, &mut report)
            .await
            .map_err(|e| engine_error(t, "UpdateTimeToLive", e))?;
    }
    report.undeclared = existing
        .into_iter()
        .filter(|name| !manifest.tables.contains_key(name))
        .collect();
    Ok(report)
}

async fn update_table(
    db: &Arc<DynamoDb>,
    t: &Table,
    mut changes: Value,
) -> Result<Value, ApiError> {
    changes["TableName"] = Value::String(t.name.clone());
    db.call_json("UpdateTable", changes).await
}

async fn reconcile_ttl(
    db: &Arc<DynamoDb>,
    t: &Table,
    report: &mut ReconcileReport,
) -> Result<(), ApiError> {
    let described = db
        .call_json("DescribeTimeToLive", json!({"TableName": t.name}))
        .await?;
    let ttl = &described["TimeToLiveDescription"];
    let enabled = matches!(
        ttl["TimeToLiveStatus"].as_str(),
        Some("ENABLED" | "ENABLING")
    );
    let have = enabled
        .then(|| ttl["AttributeName"].as_str().map(str::to_owned))
        .flatten();
    if have == t.ttl_attribute {
        return Ok(());
    }
    if let Some(old) = &have {
        db.call_json(
            "UpdateTimeToLive",
            json!({"TableName": t.name, "TimeToLiveSpecification": {"AttributeName": old, "Enabled": false}}),
        )
        .await?;
    }
    if let Some(new) = &t.ttl_attribute {
        db.call_json(
            "UpdateTimeToLive",
            json!({"TableName": t.name, "TimeToLiveSpecification": {"AttributeName": new, "Enabled": true}}),
        )
        .await?;
    }
    // A table created by this start reports as created, TTL included.
    if report.created.contains(&t.name) {
        return Ok(());
    }
    report.updated.push(format!(
        "{}: TTL attribute {} -> {}",
        t.name,
        have.as_deref().unwrap_or("off"),
        t.ttl_attribute.as_deref().unwrap_or("off")
    ));
    Ok(())
}

/// Every table name, following ListTables' pages.
pub async fn list_tables(db: &Arc<DynamoDb>) -> Result<Vec<String>, ApiError> {
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let mut request = json!({"Limit": 100});
        if let Some(s) = &start {
            request["ExclusiveStartTableName"] = Value::String(s.clone());
        }
        let page = db.call_json("ListTables", request).await?;
        if let Some(list) = page["TableNames"].as_array() {
            names.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        match page["LastEvaluatedTableName"].as_str() {
            Some(last) => start = Some(last.to_owned()),
            None => return Ok(names),
        }
    }
}
