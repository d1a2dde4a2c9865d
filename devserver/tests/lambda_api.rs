//! The Lambda host through `aws-sdk-lambda`: the Invoke API's answers, the
//! environment and Runtime API headers a function gets, and what callers see
//! when a function fails, times out or exits (shared/reference/aws-fidelity.md
//! §1 and §2).

mod common;

use aws_sdk_lambda::operation::RequestId;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
use base64::Engine;
use common::{lambda_client, probe_stack};
use serde_json::{Value, json};

fn payload_json(out: &aws_sdk_lambda::operation::invoke::InvokeOutput) -> Value {
    let bytes = out.payload().expect("payload").as_ref();
    serde_json::from_slice(bytes).expect("payload is JSON")
}

#[tokio::test]
async fn request_response_returns_the_result_with_tail_logs() {
    let stack = probe_stack().await;
    let client = lambda_client(&stack).await;
    let out = client
        .invoke()
        .function_name("probe")
        .payload(Blob::new(r#"{"probe":"echo","n":1}"#))
        .log_type(LogType::Tail)
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.status_code(), 200);
    assert_eq!(out.function_error(), None);
    assert_eq!(out.executed_version(), Some("$LATEST"));
    let report = payload_json(&out);
    assert_eq!(report["event"], json!({ "probe": "echo", "n": 1 }));

    let log = base64::engine::general_purpose::STANDARD
        .decode(out.log_result().expect("log result"))
        .expect("base64");
    let log = String::from_utf8(log).expect("utf-8");
    let request_id = report["context"]["request_id"]
        .as_str()
        .expect("request id");
    assert!(
        log.starts_with(&format!("START RequestId: {request_id} Version: $LATEST\n")),
        "{log}"
    );
    assert!(
        log.contains("probe: mode echo\n"),
        "function output is in the tail: {log}"
    );
    assert!(
        log.contains(&format!("END RequestId: {request_id}\n")),
        "{log}"
    );
    assert!(
        log.contains(&format!("REPORT RequestId: {request_id}\tDuration: "))
            && log.contains("\tMemory Size: 256 MB\t")
            // Read from the process: a running binary uses some.
            && log.contains("\tMax Memory Used: ")
            && !log.contains("\tMax Memory Used: 0 MB"),
        "{log}"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn function_gets_lambdas_environment_and_runtime_api_headers() {
    let stack = probe_stack().await;
    let client = lambda_client(&stack).await;
    let cc = base64::engine::general_purpose::STANDARD.encode(r#"{"custom":{"k":"v"}}"#);
    let out = client
        .invoke()
        .function_name("arn:aws:lambda:us-east-1:000000000000:function:probe")
        .client_context(cc)
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect("invoke by ARN");
    let report = payload_json(&out);
    let env = &report["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "probe");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/probe");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_DEFAULT_REGION"], "us-east-1");
    assert_eq!(env["AWS_LAMBDA_INITIALIZATION_TYPE"], "on-demand");
    assert_eq!(
        env["PROBE_GREETING"], "hello",
        "the function's own env from dev.toml"
    );
    assert_eq!(env["AWS_ENDPOINT_URL_DYNAMODB"], stack.urls().aws.as_str());
    assert_eq!(env["TZ"], ":UTC");
    let runtime_api = env["AWS_LAMBDA_RUNTIME_API"].as_str().expect("runtime api");
    assert!(
        runtime_api.starts_with("127.0.0.1:") && !runtime_api.contains('/'),
        "host:port without scheme: {runtime_api}"
    );
    assert!(
        env["AWS_LAMBDA_LOG_STREAM_NAME"]
            .as_str()
            .is_some_and(|s| s.contains("[$LATEST]"))
    );

    let ctx = &report["context"];
    assert_eq!(
        ctx["invoked_function_arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:probe"
    );
    assert!(
        ctx["xray_trace_id"]
            .as_str()
            .is_some_and(|t| t.starts_with("Root=1-"))
    );
    let deadline = ctx["deadline"].as_u64().expect("deadline ms");
    let now = chrono::Utc::now().timestamp_millis() as u64;
    assert!(
        deadline > now && deadline <= now + 2_500,
        "deadline is the 2 s timeout away"
    );
    assert!(
        ctx["client_context"]
            .as_str()
            .is_some_and(|c| c.contains("\"k\"") || c.contains("k")),
        "client context reached the runtime: {}",
        ctx["client_context"]
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn function_errors_are_200_with_x_amz_function_error() {
    let stack = probe_stack().await;
    let client = lambda_client(&stack).await;

    let out = client
        .invoke()
        .function_name("probe")
        .payload(Blob::new(r#"{"probe":"error"}"#))
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.status_code(), 200);
    assert_eq!(out.function_error(), Some("Unhandled"));
    let error = payload_json(&out);
    assert_eq!(error["errorMessage"], "probe failed on purpose");
    assert!(error["errorType"].is_string());

    let out = client
        .invoke()
        .function_name("probe")
        .payload(Blob::new(r#"{"probe":"exit","code":3}"#))
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.function_error(), Some("Unhandled"));
    let error = payload_json(&out);
    assert_eq!(error["errorType"], "Runtime.ExitError");
    let request_id = out.request_id();
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|m| m.ends_with("Error: Runtime exited with error: exit status 3")),
        "{error} ({request_id:?})"
    );

    let out = client
        .invoke()
        .function_name("probe")
        .payload(Blob::new(r#"{"probe":"sleep","ms":4000}"#))
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.function_error(), Some("Unhandled"));
    let error = payload_json(&out);
    assert_eq!(error["errorType"], "Sandbox.Timedout");
    let message = error["errorMessage"].as_str().expect("message");
    assert!(
        message.starts_with("RequestId: ")
            && message.ends_with("Error: Task timed out after 2.00 seconds"),
        "{message}"
    );

    // Init failure reaches the first caller.
    let out = client
        .invoke()
        .function_name("broken")
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.function_error(), Some("Unhandled"));
    assert_eq!(payload_json(&out)["errorType"], "Runtime.ExitError");

    // A response over 6 MB is Lambda's error, not a truncated result.
    let out = client
        .invoke()
        .function_name("probe")
        .payload(Blob::new(r#"{"probe":"big","bytes":7000000}"#))
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.function_error(), Some("Unhandled"));
    assert_eq!(
        payload_json(&out)["errorType"],
        "Function.ResponseSizeTooLarge"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn event_and_dry_run_invocations() {
    let stack = probe_stack().await;
    let client = lambda_client(&stack).await;
    let out = client
        .invoke()
        .function_name("probe")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect("event invoke");
    assert_eq!(out.status_code(), 202);
    assert!(out.payload().is_none_or(|p| p.as_ref().is_empty()));

    let out = client
        .invoke()
        .function_name("probe")
        .invocation_type(InvocationType::DryRun)
        .send()
        .await
        .expect("dry run");
    assert_eq!(out.status_code(), 204);
    stack.shutdown().await;
}

/// Regression: an `Event` invocation answered 202 with one request id
/// while the function saw another, and each retry got a new one. Lambda
/// keeps the invocation's id for all its attempts.
#[tokio::test]
async fn event_invocations_keep_their_request_id_through_retries() {
    let stack = probe_stack().await;
    let client = lambda_client(&stack).await;
    let dir = common::TempDir::new("event-retries");
    let log = dir.join("attempts.log");
    let payload = serde_json::json!({ "probe": "record", "path": log, "fail": true });
    let out = client
        .invoke()
        .function_name("probe")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .expect("event invoke");
    assert_eq!(out.status_code(), 202);
    let request_id = out.request_id().expect("x-amzn-RequestId").to_owned();
    // The first attempt and Lambda's two retries (1 s and 2 s apart here).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let attempts = loop {
        let lines: Vec<Value> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        if lines.len() >= 3 {
            break lines;
        }
        assert!(std::time::Instant::now() < deadline, "attempts: {lines:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    for attempt in &attempts {
        assert_eq!(attempt["request_id"], request_id.as_str(), "{attempts:?}");
        assert_eq!(attempt["event"]["probe"], "record");
    }
    // MaximumRetryAttempts is 2: no fourth attempt.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let total = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(total, 3);
    assert_eq!(stack.lambda().queued_events("probe"), 0);
    stack.shutdown().await;
}

#[tokio::test]
async fn invoke_api_errors_have_aws_error_codes() {
    let stack = probe_stack().await;
    let client = lambda_client(&stack).await;

    let err = client
        .invoke()
        .function_name("nope")
        .send()
        .await
        .expect_err("unknown function");
    let service = err.into_service_error();
    assert!(service.is_resource_not_found_exception(), "{service:?}");
    assert!(
        format!("{service}")
            .contains("Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"),
        "{service}"
    );

    let err = client
        .invoke()
        .function_name("probe")
        .qualifier("7")
        .send()
        .await
        .expect_err("unknown version");
    assert!(err.into_service_error().is_resource_not_found_exception());

    let err = client
        .invoke()
        .function_name("probe")
        .payload(Blob::new("{not json"))
        .send()
        .await
        .expect_err("bad payload");
    let service = err.into_service_error();
    assert!(
        service.is_invalid_request_content_exception(),
        "{service:?}"
    );

    let err = client
        .invoke()
        .function_name("probe")
        .payload(Blob::new(format!(
            "\"{}\"",
            "a".repeat(6 * 1024 * 1024 + 10)
        )))
        .send()
        .await
        .expect_err("too large");
    assert!(err.into_service_error().is_request_too_large_exception());
    stack.shutdown().await;
}
