//! The AWS SDKs' configuration for a local stack: its endpoint, a region,
//! dummy credentials and plain HTTP (loopback needs no TLS). Shared by the
//! integration tests and, through `#[path]`, the benches.

#![allow(dead_code)]

/// The loader for `endpoint`; add retry or timeout settings, then `load()`.
pub fn loader(endpoint: &str) -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "AKIAEXAMPLE",
            "secret",
            None,
            None,
            "woocom-local",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
}

/// The configuration for `endpoint` with the SDK's defaults otherwise.
pub async fn config(endpoint: &str) -> aws_config::SdkConfig {
    loader(endpoint).load().await
}
