//! Shared by the integration tests: start a stack from a fixture manifest
//! on free ports.

#![allow(dead_code)]

pub mod sdk;

use std::path::PathBuf;

use woocom_dev::manifest::Manifest;
use woocom_dev::{Stack, StackOptions};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn manifest(name: &str) -> Manifest {
    Manifest::load(&fixture(name)).expect("fixture manifest is valid")
}

/// The probe stack (tests/fixtures/probe.toml) on free ports.
pub async fn probe_stack() -> Stack {
    stack_from(manifest("probe.toml")).await
}

pub async fn stack_from(manifest: Manifest) -> Stack {
    Stack::start(StackOptions::new(manifest).free_ports().quiet_build())
        .await
        .expect("stack starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// An `aws-sdk-lambda` client for the stack's AWS endpoint, over plain HTTP.
pub async fn lambda_client(stack: &Stack) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(&sdk::config(&stack.urls().aws).await)
}

/// The probe's report of the event it got (the `body` of its response).
pub async fn probe_report(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(response.status(), 200, "probe answered");
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).expect("probe report is JSON")
}
