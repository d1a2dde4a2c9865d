//! Shared by the DynamoDB integration tests: stacks on free ports and SDK
//! clients pointed at them over plain HTTP.

#![allow(dead_code)]

use std::time::Duration;

use woocom_dev::{Stack, StackOptions};

#[path = "../common/mod.rs"]
mod common;
#[allow(unused_imports)] // each test binary uses its own share
pub use common::{TempDir, fixture, function_workspace, golden, manifest, sdk};

/// The DynamoDB test stack (tests/fixtures/dynamodb.toml), in memory.
pub async fn stack() -> Stack {
    Stack::start(
        StackOptions::new(manifest("dynamodb.toml"))
            .free_ports()
            .quiet_build(),
    )
    .await
    .expect("stack starts")
}

pub async fn sdk_config(endpoint: &str, max_attempts: u32) -> aws_config::SdkConfig {
    sdk::loader(endpoint)
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(50)),
        )
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .load()
        .await
}

/// An `aws-sdk-dynamodb` client for `endpoint`; no retries, so a test sees
/// every error the server sends.
pub async fn dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(endpoint, 1).await)
}

pub async fn dynamodb_with_retries(endpoint: &str, attempts: u32) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(endpoint, attempts).await)
}

pub async fn streams(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::new(&sdk_config(endpoint, 1).await)
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}
