//! `woocom-dev buckets`: the S3 buckets of a running stack.
//!
//! ```text
//! woocom-dev buckets list                        # objects and bytes per bucket
//! woocom-dev buckets objects <bucket> [--prefix p] [-n 1000]
//! ```
//!
//! Talks to `/_woocom/buckets/...` on the stack's AWS endpoint.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;
use woocom_dev::s3::control::BUCKETS_PATH;

use super::running::{RunningStack, encode, request};

#[derive(clap::Args)]
pub struct BucketsArgs {
    #[command(flatten)]
    stack: RunningStack,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Each bucket with its object count and size.
    List,
    /// The objects of a bucket, in key order.
    Objects {
        bucket: String,
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(short = 'n', long, default_value_t = 1000)]
        max: usize,
    },
}

pub async fn run(
    manifest_path: &Path,
    args: BucketsArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let endpoint = args.stack.endpoint(manifest_path)?;
    let base = format!("{endpoint}{BUCKETS_PATH}");
    let url = match &args.action {
        Action::List => base.clone(),
        Action::Objects {
            bucket,
            prefix,
            max,
        } => format!(
            "{base}/{}/objects?prefix={}&max={max}",
            encode(bucket),
            encode(prefix)
        ),
    };
    let value = request(&endpoint, http::Method::GET, &url, String::new()).await?;
    if args.stack.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &args.action {
        Action::List => print_buckets(&value),
        Action::Objects { bucket, .. } => print_objects(bucket, &value),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_buckets(value: &Value) {
    let list = value["buckets"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!(
            "no buckets (declare them in dev.toml's [buckets], or create them through the API)"
        );
    }
    for b in list {
        println!(
            "{}: {} object(s), {} byte(s){}{}",
            b["name"].as_str().unwrap_or("?"),
            b["objects"],
            b["bytes"],
            match b["cors_rules"].as_u64() {
                Some(0) | None => String::new(),
                Some(n) => format!(", {n} CORS rule(s)"),
            },
            if b["declared"] == true {
                ", from dev.toml"
            } else {
                ""
            },
        );
    }
}

fn print_objects(bucket: &str, value: &Value) {
    let list = value["objects"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("{bucket}: empty");
    }
    for o in list {
        println!(
            "{}  {:>10}  {}  {}",
            o["lastModified"].as_str().unwrap_or("?"),
            o["size"],
            o["etag"].as_str().unwrap_or("?"),
            o["key"].as_str().unwrap_or("?"),
        );
    }
}
