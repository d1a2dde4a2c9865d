//! `woocom-dev seed [TABLE ...]`: loads the seed data `dev.toml` names
//! (`[tables.<name>] seed = "..."`) into the tables, again. Items with the
//! same key are replaced; other items are kept. Goes through the running
//! stack when there is one (so stream consumers see the writes), else
//! straight into the stack's data folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use woocom_dev::dynamodb::{DataLocation, DynamoDb};
use woocom_dev::manifest::Manifest;
use woocom_dev::seed;

#[derive(clap::Args)]
pub struct SeedArgs {
    /// Only these tables (default: every table with a seed file).
    tables: Vec<String>,
    /// The running stack's AWS endpoint (default: dev.toml's [ports] aws).
    #[arg(long)]
    endpoint: Option<String>,
    /// Read the endpoint from the file `woocom-dev up --ready-file` wrote.
    #[arg(long, conflicts_with = "endpoint")]
    ready_file: Option<PathBuf>,
}

pub async fn run(
    manifest_path: &Path,
    args: SeedArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let manifest = Manifest::load(manifest_path)?;
    let seeded: Vec<&str> = manifest
        .tables
        .values()
        .filter(|t| t.seed.is_some())
        .map(|t| t.name.as_str())
        .collect();
    let tables: Vec<String> = if args.tables.is_empty() {
        seeded.iter().map(|t| (*t).to_owned()).collect()
    } else {
        for t in &args.tables {
            if !seeded.contains(&t.as_str()) {
                return Err(format!(
                    "table `{t}` has no seed file in {} (tables with one: {})",
                    manifest_path.display(),
                    if seeded.is_empty() {
                        "none".to_owned()
                    } else {
                        seeded.join(", ")
                    }
                )
                .into());
            }
        }
        args.tables.clone()
    };
    // Every file is checked before anything is written.
    let mut loads = Vec::new();
    for name in &tables {
        let table = &manifest.tables[name];
        loads.push((name.clone(), seed::load(&manifest, table)?));
    }

    let endpoint = super::faults::endpoint_of(manifest_path, &args.endpoint, &args.ready_file)?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    if is_running(&client, &endpoint).await {
        for (table, items) in &loads {
            seed::write_with(table, items, |request| {
                batch_write_remote(&client, &endpoint, request)
            })
            .await?;
            println!(
                "seeded `{table}`: {} items (through {endpoint})",
                items.len()
            );
        }
    } else {
        let db = DynamoDb::open(DataLocation::project(&manifest))?;
        db.reconcile(&manifest).await?;
        for (table, items) in &loads {
            let written = seed::write(&db, table, items).await?;
            println!("seeded `{table}`: {written} items");
        }
        db.close();
    }
    Ok(ExitCode::SUCCESS)
}

async fn is_running(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    endpoint: &str,
) -> bool {
    let Ok(uri) = format!("{endpoint}{}", woocom_dev::aws::HEALTH_PATH).parse::<http::Uri>() else {
        return false;
    };
    let request = http::Request::get(uri).body(Full::new(Bytes::new()));
    let Ok(request) = request else {
        return false;
    };
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(1), client.request(request)).await,
        Ok(Ok(r)) if r.status().is_success()
    )
}

/// One BatchWriteItem through the running stack's DynamoDB endpoint; its
/// answer, or DynamoDB's error type and message.
async fn batch_write_remote(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    endpoint: &str,
    request: Value,
) -> Result<Value, String> {
    let body = Bytes::from(request.to_string());
    let host = endpoint
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let target = "DynamoDB_20120810.BatchWriteItem";
    let mut request = http::Request::post(endpoint)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", target);
    // Signed as an SDK signs (the endpoint checks the signature's shape).
    for (name, value) in woocom_dev::dynamodb::sigv4::sign(
        &host,
        &[("x-amz-target", target)],
        &body,
        "us-east-1",
        "woocom-seed",
        "woocom-seed",
        chrono::Utc::now(),
    ) {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(answer);
    }
    Err(format!(
        "{} {}",
        answer["__type"]
            .as_str()
            .unwrap_or("error")
            .rsplit('#')
            .next()
            .unwrap_or(""),
        answer["message"]
            .as_str()
            .or(answer["Message"].as_str())
            .unwrap_or("")
    ))
}
