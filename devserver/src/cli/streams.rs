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

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;
use woocom_dev::event_source_mapping::http::STREAMS_PATH;

use super::running::{RunningStack, encode, request};

#[derive(clap::Args)]
pub struct StreamsArgs {
    #[command(flatten)]
    stack: RunningStack,
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
    let endpoint = args.stack.endpoint(manifest_path)?;
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
    if args.stack.json {
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
