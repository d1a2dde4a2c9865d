//! `woocom-dev streams`: stream delivery in a running stack.
//!
//! ```text
//! woocom-dev streams status                        # each mapping's position and lag
//! woocom-dev streams dlq list                      # dead-letter entries
//! woocom-dev streams dlq show <id>                 # AWS's failure record + the records
//! woocom-dev streams dlq redrive <id>              # deliver them again
//! woocom-dev streams replay --subscription <name> --from <seq> --to <seq>
//! ```
//!
//! Talks to `/_woocom/streams/...` on the stack's AWS endpoint.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use woocom_dev::event_source_mapping::http::STREAMS_PATH;
use woocom_dev::manifest::Manifest;

#[derive(clap::Args)]
pub struct StreamsArgs {
    /// The running stack's AWS endpoint (default: dev.toml's [ports] aws).
    #[arg(long, global = true)]
    endpoint: Option<String>,
    /// Read the endpoint from the file `woocom-dev up --ready-file` wrote.
    #[arg(long, global = true, conflicts_with = "endpoint")]
    ready_file: Option<PathBuf>,
    /// Print the server's JSON answer as is.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Each subscription's checkpoint, lag and counters.
    Status,
    /// The local dead-letter queues.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Deliver a range of records to a subscription's function again
    /// (its filters apply; no retries; the checkpoint does not move).
    Replay {
        #[arg(long)]
        subscription: String,
        /// First sequence number (inclusive).
        #[arg(long)]
        from: String,
        /// Last sequence number (inclusive).
        #[arg(long)]
        to: String,
    },
}

#[derive(clap::Subcommand)]
enum DlqAction {
    /// List entries (oldest first).
    List,
    /// Show one entry: the failure record AWS writes and the records.
    Show { id: String },
    /// Deliver an entry's records to its function again; removed on success.
    Redrive { id: String },
}

pub async fn run(
    manifest_path: &Path,
    args: StreamsArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let endpoint = match (&args.endpoint, &args.ready_file) {
        (Some(e), _) => e.trim_end_matches('/').to_owned(),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let ready: Value = serde_json::from_str(&text)?;
            ready["aws"]
                .as_str()
                .ok_or_else(|| format!("{} has no `aws` URL", file.display()))?
                .trim_end_matches('/')
                .to_owned()
        }
        (None, None) => {
            let manifest = Manifest::load(manifest_path)?;
            format!("http://127.0.0.1:{}", manifest.ports.aws)
        }
    };
    let base = format!("{endpoint}{STREAMS_PATH}");
    let (method, url, body) = match &args.action {
        Action::Status => (http::Method::GET, format!("{base}/status"), String::new()),
        Action::Dlq {
            action: DlqAction::List,
        } => (http::Method::GET, format!("{base}/dlq"), String::new()),
        Action::Dlq {
            action: DlqAction::Show { id },
        } => (
            http::Method::GET,
            format!("{base}/dlq/{}", encode(id)),
            String::new(),
        ),
        Action::Dlq {
            action: DlqAction::Redrive { id },
        } => (
            http::Method::POST,
            format!("{base}/dlq/{}/redrive", encode(id)),
            String::new(),
        ),
        Action::Replay {
            subscription,
            from,
            to,
        } => (
            http::Method::POST,
            format!("{base}/replay"),
            serde_json::json!({"subscription": subscription, "from": from, "to": to}).to_string(),
        ),
    };
    let value = request(&endpoint, method, &url, body).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &args.action {
        Action::Status => print_status(&value),
        Action::Dlq {
            action: DlqAction::List,
        } => print_dlq(&value),
        Action::Dlq {
            action: DlqAction::Redrive { .. },
        } => {
            let ok = value["succeeded"].as_bool() == Some(true);
            println!(
                "{} record(s) to {}: {}",
                value["records"],
                value["function"].as_str().unwrap_or("?"),
                if ok {
                    "delivered; entry removed".to_owned()
                } else {
                    format!(
                        "failed again ({}); entry kept",
                        value["functionError"]
                            .as_str()
                            .unwrap_or("batch item failures")
                    )
                }
            );
            if !ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(&value)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn request(
    endpoint: &str,
    method: http::Method,
    url: &str,
    body: String,
) -> Result<Value, Box<dyn std::error::Error>> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    // Replays and redrives wait for the function.
    let response =
        tokio::time::timeout(std::time::Duration::from_secs(900), client.request(request))
            .await
            .map_err(|_| format!("{endpoint} did not answer"))?
            .map_err(|e| {
                format!("cannot reach woocom-dev at {endpoint} (is `woocom-dev up` running?): {e}")
            })?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(value["message"]
            .as_str()
            .unwrap_or("request refused")
            .to_owned()
            .into());
    }
    Ok(value)
}

fn print_status(value: &Value) {
    let list = value["subscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        println!("no [[subscriptions]] in dev.toml");
    }
    for m in list {
        let text = |k: &str| m[k].as_str().unwrap_or("-").to_owned();
        let source = match m["queue"].as_str() {
            Some(q) => format!("queue {q}"),
            None => text("table"),
        };
        println!(
            "{} ({} -> {}): {}\n  checkpoint {}  latest {}  lag {} record(s), iterator age {} ms\n  {} batch(es), {} delivered, {} filtered, {} function error(s), {} discarded, {} in DLQ; last: {}",
            text("name"),
            source,
            text("function"),
            text("state"),
            text("checkpoint"),
            text("latest_sequence_number"),
            m["lag_records"],
            m["iterator_age_ms"],
            m["batches_invoked"],
            m["records_delivered"],
            m["records_filtered"],
            m["function_errors"],
            m["records_discarded"],
            m["dead_letter_entries"],
            text("last_processing_result"),
        );
    }
}

fn print_dlq(value: &Value) {
    let list = value["entries"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no dead-letter entries");
    }
    for e in list {
        let text = |k: &str| e[k].as_str().unwrap_or("-").to_owned();
        println!(
            "{}  {}  {}  {} -> {}  {} record(s) {}..{}  ({})",
            text("id"),
            text("timestamp"),
            text("queue"),
            text("subscription"),
            text("function"),
            e["batchSize"],
            text("startSequenceNumber"),
            text("endSequenceNumber"),
            text("condition"),
        );
    }
}
