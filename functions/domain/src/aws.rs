//! The AWS SDK configuration every function uses: region, credentials and
//! endpoints from the environment Lambda (or the devserver) provides,
//! HTTPS through rustls, and the SDK's standard retries with backoff so
//! throttling is absorbed before it reaches a caller.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// Attempts per SDK call, the first included; throttling and transient
/// errors are retried with exponential backoff and jitter.
pub const MAX_ATTEMPTS: u32 = 5;

/// The first retry's backoff ceiling; it doubles per attempt (full
/// jitter). The SDK's default is 1 s, which over five attempts can wait
/// up to 15 s, past a REST function's timeout (10 s here, API Gateway's
/// 29 s); 50 ms (AWS's DynamoDB guidance starts at 50 ms) bounds the
/// waiting at 0.75 s, after which the caller gets a clear 503.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(50);

pub async fn sdk_config() -> aws_config::SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(INITIAL_BACKOFF),
        )
        .load()
        .await
}

pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
}

/// A required environment variable, e.g. a table name.
pub fn env(name: &str) -> Result<String, crate::ApiError> {
    std::env::var(name)
        .map_err(|_| crate::ApiError::internal(format!("environment variable {name} is not set")))
}
