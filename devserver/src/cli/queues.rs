//! `woocom-dev queues`: the SQS queues of a running stack.
//!
//! ```text
//! woocom-dev queues list                 # depth, in flight, delayed, DLQ
//! woocom-dev queues peek <queue> [-n 10] # the first messages, not received
//! woocom-dev queues purge <queue>        # PurgeQueue
//! woocom-dev queues redrive <dlq>        # back to the queues they came from
//! ```
//!
//! Talks to `/_woocom/queues/...` on the stack's AWS endpoint.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;
use woocom_dev::sqs::control::QUEUES_PATH;

use super::running::{RunningStack, encode, request};

#[derive(clap::Args)]
pub struct QueuesArgs {
    #[command(flatten)]
    stack: RunningStack,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Each queue with its visible, in-flight and delayed messages.
    List,
    /// The first messages of a queue, without receiving them.
    Peek {
        queue: String,
        #[arg(short = 'n', long, default_value_t = 10)]
        max: usize,
    },
    /// Delete every message of a queue (SQS allows one purge a minute).
    Purge { queue: String },
    /// Move a dead-letter queue's messages back to their source queues.
    Redrive { queue: String },
}

pub async fn run(
    manifest_path: &Path,
    args: QueuesArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let endpoint = args.stack.endpoint(manifest_path)?;
    let base = format!("{endpoint}{QUEUES_PATH}");
    let (method, url) = match &args.action {
        Action::List => (http::Method::GET, base.clone()),
        Action::Peek { queue, max } => (
            http::Method::GET,
            format!("{base}/{}/messages?max={max}", encode(queue)),
        ),
        Action::Purge { queue } => (
            http::Method::POST,
            format!("{base}/{}/purge", encode(queue)),
        ),
        Action::Redrive { queue } => (
            http::Method::POST,
            format!("{base}/{}/redrive", encode(queue)),
        ),
    };
    let value = request(&endpoint, method, &url, String::new()).await?;
    if args.stack.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &args.action {
        Action::List => print_list(&value),
        Action::Peek { queue, .. } => print_messages(queue, &value),
        Action::Purge { queue } => println!("{queue}: purged"),
        Action::Redrive { queue } => println!(
            "{queue}: {} of {} message(s) moved back ({})",
            value["moved"],
            value["to_move"],
            value["status"].as_str().unwrap_or("?")
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list(value: &Value) {
    let list = value["queues"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no queues (declare them in dev.toml's [queues], or create them through the API)");
    }
    for q in list {
        let dlq = match (
            q["dead_letter_queue"].as_str(),
            q["max_receive_count"].as_u64(),
        ) {
            (Some(d), Some(n)) => format!("  -> {d} after {n} receives"),
            _ => String::new(),
        };
        println!(
            "{}{}: {} visible, {} in flight, {} delayed{dlq}",
            q["name"].as_str().unwrap_or("?"),
            if q["fifo"] == true { " (FIFO)" } else { "" },
            q["visible"],
            q["in_flight"],
            q["delayed"],
        );
    }
}

fn print_messages(queue: &str, value: &Value) {
    let list = value["messages"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("{queue}: empty");
    }
    for m in list {
        println!(
            "{}  received {} time(s){}\n  {}",
            m["messageId"].as_str().unwrap_or("?"),
            m["receiveCount"],
            if m["inFlight"] == true {
                ", in flight"
            } else {
                ""
            },
            m["body"].as_str().unwrap_or_default()
        );
    }
}
