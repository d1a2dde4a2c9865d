//! The DynamoDB service through the clients a shop uses: `aws-sdk-dynamodb`
//! and `aws-sdk-dynamodbstreams` against an in-process stack, plus raw HTTP
//! for what the SDKs never send (gzip bodies, hostile payloads).

#[path = "../dynamodb_support/mod.rs"]
mod dynamodb_support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, PutRequest, ReturnValue, TransactWriteItem,
    Update, WriteRequest,
};
use dynamodb_support::{dynamodb, dynamodb_with_retries, http, stack, streams};
use serde_json::{Value, json};

mod faults;
mod items;
mod protocol;
mod results;
mod streams_api;
mod streams_aws;
mod wire;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Sends one raw request to the endpoint; returns status, headers and body.
async fn raw(
    endpoint: &str,
    target: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = http()
        .post(format!("{endpoint}/"))
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.0");
    for (name, value) in woocom_dev::dynamodb::sigv4::sign(
        endpoint.trim_start_matches("http://"),
        &[],
        &body,
        "us-east-1",
        "test",
        "test",
        chrono::Utc::now(),
    ) {
        request = request.header(name, value);
    }
    let mut request = request.body(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("endpoint answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

fn error_type(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).expect("error body is JSON");
    v["__type"].as_str().unwrap_or_default().to_owned()
}
