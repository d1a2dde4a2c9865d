//! `woocom-dev faults`: fault injection in a running stack, for testing
//! code that retries.
//!
//! ```text
//! woocom-dev faults set orders --rate 0.2 --error ProvisionedThroughputExceededException
//! woocom-dev faults set '*' --rate 1 --error ThrottlingException --operation PutItem
//! woocom-dev faults set products --rate 1 --count 2 --operation GetItem
//! woocom-dev faults list
//! woocom-dev faults clear [orders]
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use woocom_dev::dynamodb::http::FAULTS_PATH;
use woocom_dev::manifest::Manifest;
use woocom_dev::manifest::tables::FAULT_ERRORS;

#[derive(clap::Args)]
pub struct FaultsArgs {
    /// The running stack's AWS endpoint (default: dev.toml's [ports] aws).
    #[arg(long, global = true)]
    endpoint: Option<String>,
    /// Read the endpoint from the file `woocom-dev up --ready-file` wrote.
    #[arg(long, global = true, conflicts_with = "endpoint")]
    ready_file: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Make a table (or `*`, every table) fail a share of its requests.
    Set {
        table: String,
        /// Share of requests that fail, 0 to 1.
        #[arg(long)]
        rate: f64,
        /// ProvisionedThroughputExceededException, ThrottlingException or InternalServerError.
        #[arg(long, default_value = "ProvisionedThroughputExceededException")]
        error: String,
        /// Only fail this operation (repeatable; default: all).
        #[arg(long = "operation")]
        operations: Vec<String>,
        /// Fail only this many requests, then end the rule (default: no end).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// Remove the faults of one table, or all.
    Clear { table: Option<String> },
    /// Show the faults in force.
    List,
}

pub async fn run(
    manifest_path: &Path,
    args: FaultsArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let endpoint = endpoint_of(manifest_path, &args.endpoint, &args.ready_file)?;
    let url = format!("{endpoint}{FAULTS_PATH}");
    let (method, url, body) = match args.action {
        Action::Set {
            table,
            rate,
            error,
            operations,
            count,
        } => {
            if !FAULT_ERRORS.contains(&error.as_str()) {
                return Err(format!(
                    "--error `{error}` is not one of {}",
                    FAULT_ERRORS.join(", ")
                )
                .into());
            }
            let mut body = serde_json::json!({"table": table, "rate": rate, "error": error, "operations": operations});
            if let Some(count) = count {
                body["count"] = count.into();
            }
            (http::Method::PUT, url, body.to_string())
        }
        Action::Clear { table } => {
            let url = match table {
                Some(t) => format!(
                    "{url}?table={}",
                    percent_encoding::utf8_percent_encode(&t, percent_encoding::NON_ALPHANUMERIC)
                ),
                None => url,
            };
            (http::Method::DELETE, url, String::new())
        }
        Action::List => (http::Method::GET, url, String::new()),
    };
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(&url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let response =
        tokio::time::timeout(std::time::Duration::from_secs(10), client.request(request))
            .await
            .map_err(|_| format!("{endpoint} did not answer within 10 s"))?
            .map_err(|e| {
                format!("cannot reach woocom-dev at {endpoint} (is `woocom-dev up` running?): {e}")
            })?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        return Err(value["message"]
            .as_str()
            .unwrap_or("request refused")
            .to_owned()
            .into());
    }
    let faults = value["faults"].as_object().cloned().unwrap_or_default();
    if faults.is_empty() {
        println!("no faults in force");
    }
    for (table, rule) in faults {
        let ops = rule["operations"]
            .as_array()
            .map(|o| {
                o.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| "all operations".to_owned());
        let left = rule["count"]
            .as_u64()
            .map(|n| format!(", {n} more then off"))
            .unwrap_or_default();
        println!(
            "{table}: {:.0}% of requests -> {} ({ops}{left})",
            rule["rate"].as_f64().unwrap_or(0.0) * 100.0,
            rule["error"].as_str().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The running stack's AWS endpoint: `--endpoint`, the `aws` URL of a
/// ready file, or dev.toml's `[ports] aws`.
pub fn endpoint_of(
    manifest_path: &Path,
    endpoint: &Option<String>,
    ready_file: &Option<PathBuf>,
) -> Result<String, Box<dyn std::error::Error>> {
    Ok(match (endpoint, ready_file) {
        (Some(e), _) => e.trim_end_matches('/').to_owned(),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let ready: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
            ready["aws"]
                .as_str()
                .ok_or_else(|| format!("{} has no `aws` URL", file.display()))?
                .trim_end_matches('/')
                .to_owned()
        }
        (None, None) => format!(
            "http://127.0.0.1:{}",
            Manifest::load(manifest_path)?.ports.aws
        ),
    })
}
