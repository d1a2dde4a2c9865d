//! `woocom-dev topics`: the SNS topics of a running stack and their
//! subscriptions.
//!
//! ```text
//! woocom-dev topics          # each topic, then one line per subscription
//! woocom-dev topics --json   # the same, as JSON
//! ```
//!
//! Talks to `/_woocom/topics` on the stack's AWS endpoint.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;
use woocom_dev::sns::control::TOPICS_PATH;

use super::running::{RunningStack, request};

#[derive(clap::Args)]
pub struct TopicsArgs {
    #[command(flatten)]
    stack: RunningStack,
}

pub async fn run(
    manifest_path: &Path,
    args: TopicsArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let endpoint = args.stack.endpoint(manifest_path)?;
    let url = format!("{endpoint}{TOPICS_PATH}");
    let value = request(&endpoint, http::Method::GET, &url, String::new()).await?;
    if args.stack.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_topics(&value);
    Ok(ExitCode::SUCCESS)
}

fn print_topics(value: &Value) {
    let topics = value["topics"].as_array().cloned().unwrap_or_default();
    if topics.is_empty() {
        println!("no topics (declare them in dev.toml's [topics], or create them through the API)");
    }
    for t in topics {
        let subs = t["subscriptions"].as_array().cloned().unwrap_or_default();
        println!(
            "{}{}: {} subscription(s)  {}",
            t["name"].as_str().unwrap_or("?"),
            if t["fifo"] == true { " (FIFO)" } else { "" },
            subs.len(),
            t["arn"].as_str().unwrap_or_default()
        );
        for s in subs {
            let mut notes = Vec::new();
            if s["rawMessageDelivery"] == true {
                notes.push("raw".to_owned());
            }
            if let Some(p) = s["filterPolicy"].as_str() {
                notes.push(format!(
                    "filter on {}: {p}",
                    s["filterPolicyScope"]
                        .as_str()
                        .unwrap_or("MessageAttributes")
                ));
            }
            if let Some(d) = s["deadLetterArn"].as_str() {
                notes.push(format!(
                    "dead letters -> {}",
                    d.rsplit(':').next().unwrap_or(d)
                ));
            }
            if s["pendingConfirmation"] == true {
                notes.push("pending confirmation".to_owned());
            }
            let endpoint = s["endpoint"].as_str().unwrap_or("?");
            // Queue and function ARNs read better as their names.
            let target = if endpoint.starts_with("arn:") {
                endpoint.rsplit(':').next().unwrap_or(endpoint)
            } else {
                endpoint
            };
            println!(
                "  -> {} {target}{}",
                s["protocol"].as_str().unwrap_or("?"),
                if notes.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", notes.join("; "))
                }
            );
        }
    }
}
