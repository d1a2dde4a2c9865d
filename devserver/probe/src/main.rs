//! A Lambda function for the devserver's own tests. It reports what it
//! received (the raw event, what `lambda_http` makes of it, its context and
//! environment) and misbehaves on request, so tests can check how the host
//! and the gateway handle each case.
//!
//! The mode comes from the `probe` query parameter (API Gateway events) or
//! the `probe` field (direct invocations): `echo` (default), `raw` (return
//! the request body / the `response` field verbatim as the result),
//! `sleep` (`ms`), `panic`, `exit` (`code`), `error`, `big` (`bytes`),
//! `ok` (a fixed small proxy response at once, without logging: for
//! benchmarks, so the function's own work does not dominate), `record`
//! (append `{"request_id", "event"}` to the file `path` as one line, then
//! fail when `fail` is true: asynchronous invocation tests count attempts).
//! `PROBE_FAIL_INIT=1` makes it fail before reaching the Runtime API.
//!
//! WebSocket events (`requestContext.eventType` present) are handled by
//! [`websocket`]: `$connect` accepts unless the query has `reject=<status>`
//! (or `fail`); messages act on their body's `action`: `echo` answers the
//! event as the body, `push` posts `data` back to the caller through the
//! `@connections` API at `WOOCOM_WEBSOCKET_ENDPOINT`, `error` fails,
//! `sleep` waits `ms`. With `PROBE_WS_LOG` set, every WebSocket event is
//! appended to that file as one JSON line (tests read `$disconnect` there).
//!
//! DynamoDB stream events (`Records[0].eventSource == "aws:dynamodb"`) are
//! handled by [`dynamodb_stream`]: each batch is appended to the file named
//! by `PROBE_STREAM_LOG` as one JSON line, and the records' item attribute
//! `fail` drives failures: `always` fails the invocation, `once` fails it the
//! first time that record is seen, `partial` reports the record in
//! `batchItemFailures`, `bad-id` reports an empty `itemIdentifier`.
//!
//! SQS events (`eventSource == "aws:sqs"`) are appended to `PROBE_SQS_LOG`;
//! a message whose body is `fail` fails the batch, `partial` is reported
//! in `batchItemFailures`. SNS events (`EventSource == "aws:sns"`) are
//! appended to `PROBE_SNS_LOG`; the message `fail` fails the invocation.
//! EventBridge events (`detail-type` and `source` present) are appended to
//! `PROBE_EVENTS_LOG`; `"fail": true` in the detail fails the invocation.
//! S3 notifications (`eventSource == "aws:s3"`) are appended to
//! `PROBE_S3_LOG` with the time they arrived; a key ending in `.fail`
//! fails the invocation.

use std::time::Duration;

use lambda_http::request::LambdaRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    if std::env::var("PROBE_FAIL_INIT").is_ok_and(|v| v == "1") {
        eprintln!("probe: failing init as asked");
        return Err("init failed on purpose".into());
    }
    lambda_runtime::run(service_fn(handle)).await
}

/// The mode and its arguments, from wherever this kind of event keeps them.
fn options(event: &Value) -> (String, Value) {
    if event.get("httpMethod").is_some() {
        let q = &event["queryStringParameters"];
        let mode = q["probe"].as_str().unwrap_or("echo").to_owned();
        let body = event["body"].as_str().unwrap_or("");
        let response = serde_json::from_str(body).unwrap_or(Value::Null);
        (
            mode,
            json!({ "ms": q["ms"], "code": q["code"], "bytes": q["bytes"], "response": response }),
        )
    } else {
        let mode = event["probe"].as_str().unwrap_or("echo").to_owned();
        (mode, event.clone())
    }
}

fn number(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    if let Some(event_type) = payload["requestContext"]["eventType"].as_str() {
        return websocket(event_type, &payload).await;
    }
    if payload["Records"][0]["eventSource"] == "aws:dynamodb" {
        return dynamodb_stream(&payload, &context.request_id);
    }
    if payload["Records"][0]["eventSource"] == "aws:sqs" {
        return sqs_batch(&payload, &context.request_id);
    }
    if payload["Records"][0]["eventSource"] == "aws:s3" {
        return s3_notification(&payload, &context.request_id);
    }
    if payload["Records"][0]["EventSource"] == "aws:sns" {
        return sns_notification(&payload, &context.request_id);
    }
    if payload.get("detail-type").is_some() && payload.get("source").is_some() {
        return eventbridge_event(&payload, &context.request_id);
    }
    let (mode, args) = options(&payload);
    if mode == "ok" {
        return Ok(json!({
            "statusCode": 200,
            "headers": { "content-type": "application/json" },
            "body": r#"{"ok":true}"#,
        }));
    }
    println!("probe: mode {mode}");
    let is_api = payload.get("httpMethod").is_some();
    match mode.as_str() {
        "raw" => return Ok(args["response"].clone()),
        "sleep" => tokio::time::sleep(Duration::from_millis(number(&args["ms"]))).await,
        "panic" => panic!("probe panicked on purpose"),
        "exit" => std::process::exit(number(&args["code"]) as i32),
        "error" => return Err("probe failed on purpose".into()),
        "record" => {
            let line = json!({ "request_id": context.request_id, "event": payload });
            append_line(args["path"].as_str().unwrap_or("probe-record.log"), &line)?;
            if args["fail"].as_bool() == Some(true) {
                return Err("probe failed on purpose".into());
            }
            return Ok(json!({ "recorded": true }));
        }
        "big" => {
            let body = "x".repeat(number(&args["bytes"]) as usize);
            return Ok(if is_api {
                json!({ "statusCode": 200, "body": body })
            } else {
                Value::String(body)
            });
        }
        _ => {}
    }

    let lambda_http = match serde_json::from_value::<LambdaRequest>(payload.clone()) {
        Ok(LambdaRequest::ApiGatewayV1(_)) => {
            let request: lambda_http::Request = lambda_http::Request::from(
                serde_json::from_value::<LambdaRequest>(payload.clone())?,
            );
            use lambda_http::RequestExt;
            json!({
                "variant": "ApiGatewayV1",
                "method": request.method().as_str(),
                "uri": request.uri().to_string(),
                "path_parameters": format!("{:?}", request.path_parameters()),
            })
        }
        Ok(_) => json!({ "variant": "other" }),
        Err(e) => json!({ "error": e.to_string() }),
    };
    let env: serde_json::Map<String, Value> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("AWS_")
                || k.starts_with("LAMBDA_")
                || k.starts_with('_')
                || k == "TZ"
                || k == "LANG"
                || k.starts_with("PROBE_")
        })
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let report = json!({
        "event": payload,
        "lambda_http": lambda_http,
        "context": {
            "request_id": context.request_id,
            "deadline": context.deadline,
            "invoked_function_arn": context.invoked_function_arn,
            "xray_trace_id": context.xray_trace_id,
            "client_context": context.client_context.map(|c| format!("{c:?}")),
            "env_config_function_name": context.env_config.function_name,
        },
        "env": env,
        "pid": std::process::id(),
    });
    Ok(if is_api {
        json!({
            "statusCode": 200,
            "headers": { "content-type": "application/json", "x-probe": "yes" },
            "body": report.to_string(),
        })
    } else {
        report
    })
}

/// A WebSocket API event: see the module documentation.
async fn websocket(event_type: &str, event: &Value) -> Result<Value, Error> {
    if let Ok(path) = std::env::var("PROBE_WS_LOG") {
        append_line(&path, event)?;
    }
    match event_type {
        "CONNECT" => {
            let q = &event["queryStringParameters"];
            if q.get("fail").is_some() {
                return Err("probe refused the connection by failing".into());
            }
            if let Some(status) = q.get("reject") {
                let status = number(status);
                return Ok(json!({ "statusCode": if status == 0 { 403 } else { status } }));
            }
            Ok(json!({ "statusCode": 200 }))
        }
        "MESSAGE" => {
            let body: Value = event["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            match body["action"].as_str().unwrap_or("") {
                "error" => Err("probe failed on purpose".into()),
                "sleep" => {
                    tokio::time::sleep(Duration::from_millis(number(&body["ms"]))).await;
                    Ok(json!({ "statusCode": 200, "body": "slept" }))
                }
                "push" => {
                    let id = event["requestContext"]["connectionId"]
                        .as_str()
                        .unwrap_or("");
                    let data = match &body["data"] {
                        Value::String(s) => s.clone(),
                        Value::Null => event.to_string(),
                        other => other.to_string(),
                    };
                    let status = post_to_connection(id, data.as_bytes()).await?;
                    Ok(
                        json!({ "statusCode": 200, "body": json!({ "pushed": status }).to_string() }),
                    )
                }
                _ => Ok(json!({ "statusCode": 200, "body": event.to_string() })),
            }
        }
        _ => Ok(json!({ "statusCode": 200 })),
    }
}

/// `POST <WOOCOM_WEBSOCKET_ENDPOINT>/@connections/<id>` over plain HTTP/1.1
/// (loopback only: the probe carries no HTTP client); returns the status.
async fn post_to_connection(id: &str, data: &[u8]) -> Result<u16, Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = std::env::var("WOOCOM_WEBSOCKET_ENDPOINT")?;
    let rest = endpoint
        .strip_prefix("http://")
        .ok_or("WOOCOM_WEBSOCKET_ENDPOINT is not an http:// URL")?;
    let (host, stage) = rest.split_once('/').unwrap_or((rest, ""));
    let id: String = id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let head = format!(
        "POST /{stage}/@connections/{id} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        data.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(data).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let status = String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status in the @connections answer")?;
    Ok(status)
}

/// A DynamoDB stream batch: see the module documentation.
fn dynamodb_stream(event: &Value, request_id: &str) -> Result<Value, Error> {
    let raw = event;
    // Deserializing proves the event fits the crate functions use; the log
    // keeps the records as sent.
    let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(raw.clone())?;
    let received_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let log = std::env::var("PROBE_STREAM_LOG").ok();
    if let Some(path) = &log {
        let records = &raw["Records"];
        let line =
            json!({ "request_id": request_id, "received_us": received_us, "records": records });
        append_line(path, &line)?;
    }
    let mut failures = Vec::new();
    for record in &event.records {
        let image = if record.change.new_image.is_empty() {
            serde_json::to_value(&record.change.old_image)?
        } else {
            serde_json::to_value(&record.change.new_image)?
        };
        let Some(fail) = image["fail"]["S"].as_str() else {
            continue;
        };
        let sequence = record.change.sequence_number.clone().unwrap_or_default();
        match fail {
            "always" => return Err(format!("probe failed on record {sequence}").into()),
            "once" => {
                let marker = format!("{}.once", log.as_deref().unwrap_or("/tmp/probe-stream"));
                let seen = std::fs::read_to_string(&marker).unwrap_or_default();
                if !seen.lines().any(|l| l == record.event_id) {
                    append_line(&marker, &record.event_id)?;
                    return Err(format!("probe failed once on record {sequence}").into());
                }
            }
            "partial" => failures.push(json!({ "itemIdentifier": sequence })),
            "bad-id" => failures.push(json!({ "itemIdentifier": "" })),
            _ => {}
        }
    }
    Ok(json!({ "batchItemFailures": failures }))
}

/// An SQS batch: logged to `PROBE_SQS_LOG` as one JSON line; a message
/// whose body is `fail` fails the invocation, `partial` is reported in
/// `batchItemFailures`.
fn sqs_batch(raw: &Value, request_id: &str) -> Result<Value, Error> {
    // Deserializing proves the event fits the crate functions use.
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(raw.clone())?;
    if let Ok(path) = std::env::var("PROBE_SQS_LOG") {
        let received_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let line = json!({ "request_id": request_id, "received_us": received_us, "records": raw["Records"] });
        append_line(&path, &line)?;
    }
    let mut failures = Vec::new();
    for m in &event.records {
        match m.body.as_deref() {
            Some("fail") => return Err("probe failed on purpose".into()),
            Some("partial") => failures.push(json!({ "itemIdentifier": m.message_id })),
            _ => {}
        }
    }
    Ok(json!({ "batchItemFailures": failures }))
}

/// An SNS notification: logged to `PROBE_SNS_LOG` as one JSON line; a
/// message `fail` fails the invocation.
fn sns_notification(raw: &Value, request_id: &str) -> Result<Value, Error> {
    // Deserializing proves the event fits the crate functions use.
    let event: aws_lambda_events::event::sns::SnsEvent = serde_json::from_value(raw.clone())?;
    if let Ok(path) = std::env::var("PROBE_SNS_LOG") {
        let line = json!({ "request_id": request_id, "records": raw["Records"] });
        append_line(&path, &line)?;
    }
    if event.records.iter().any(|r| r.sns.message == "fail") {
        return Err("probe failed on purpose".into());
    }
    Ok(json!({ "ok": true }))
}

/// An S3 notification: logged to `PROBE_S3_LOG` as one JSON line; a key
/// ending in `.fail` fails the invocation.
fn s3_notification(raw: &Value, request_id: &str) -> Result<Value, Error> {
    // Deserializing proves the event fits the crate functions use.
    let event: aws_lambda_events::event::s3::S3Event = serde_json::from_value(raw.clone())?;
    if let Ok(path) = std::env::var("PROBE_S3_LOG") {
        let received_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let line = json!({ "request_id": request_id, "received_us": received_us, "event": raw });
        append_line(&path, &line)?;
    }
    if event.records.iter().any(|r| {
        r.s3.object
            .key
            .as_deref()
            .is_some_and(|k| k.ends_with(".fail"))
    }) {
        return Err("probe failed on purpose".into());
    }
    Ok(json!({ "ok": true }))
}

fn eventbridge_event(raw: &Value, request_id: &str) -> Result<Value, Error> {
    // Deserializing proves the event fits the crate functions use.
    let event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
        serde_json::from_value(raw.clone())?;
    if let Ok(path) = std::env::var("PROBE_EVENTS_LOG") {
        let received_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let line = json!({ "request_id": request_id, "received_us": received_us, "event": raw });
        append_line(&path, &line)?;
    }
    if event.detail["fail"] == true {
        return Err("probe failed on purpose".into());
    }
    Ok(json!({ "ok": true, "id": event.id }))
}

/// Appends `line` and a newline to the file at `path`.
///
/// Several instances of one function append to the same log at once (a
/// function subscribed to several tables gets their batches concurrently).
/// `O_APPEND` keeps each `write` whole but does not keep a line whole when
/// it is written in pieces, and `writeln!(file, "{value}")` with a
/// `serde_json::Value` makes one `write` per JSON token: two instances'
/// lines interleaved into garbage, which tests read as batches never
/// delivered. So the line is formatted first and written in one call.
fn append_line(path: &str, line: &dyn std::fmt::Display) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    write_line(&mut file, line)
}

fn write_line(out: &mut impl std::io::Write, line: &dyn std::fmt::Display) -> std::io::Result<()> {
    let mut text = line.to_string();
    text.push('\n');
    out.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the `write` calls made on it.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
    }

    impl std::io::Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.writes.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    // Regression (issue #6, flaky stream tests): the stream log was written
    // with `writeln!(file, "{line}")`, one `write` per JSON token, so two
    // instances of `sink` logging at once interleaved their lines and the
    // tests timed out waiting for batches that had been delivered.
    #[test]
    fn a_log_line_is_written_in_one_call() {
        let line = json!({
            "request_id": "r",
            "records": [{"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "a"}}}}],
        });
        let mut out = Recorder::default();
        write_line(&mut out, &line).expect("write");
        assert_eq!(out.writes.len(), 1, "{:?}", out.writes);
        assert_eq!(out.writes[0], format!("{line}\n").into_bytes());
    }

    #[test]
    fn concurrent_appenders_leave_whole_lines() {
        let dir = std::env::temp_dir().join(format!("woocom-probe-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("log.jsonl").display().to_string();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let line = json!({ "writer": w, "i": i, "pad": "x".repeat(500) });
                        append_line(&path, &line).expect("append");
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer");
        }
        let text = std::fs::read_to_string(&path).expect("log");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(text.lines().count(), 800);
        for line in text.lines() {
            serde_json::from_str::<Value>(line).expect("a whole line");
        }
    }
}
