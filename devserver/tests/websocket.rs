//! The WebSocket API end to end: a real WebSocket client (tokio-tungstenite),
//! the `@connections` API through `aws-sdk-apigatewaymanagement`, the
//! in-process stack on free ports, and the probe function echoing, pushing,
//! refusing and recording the events it gets (tests/fixtures/websocket.toml).
//! Expected values are what API Gateway sends and answers (see
//! shared/reference/aws-fidelity.md §4).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use woocom_dev::Stack;
use woocom_dev::manifest::Manifest;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A stack from the fixture whose probe records every WebSocket event in a
/// file of its own (the returned path).
async fn stack_with(edit: impl FnOnce(&mut Manifest)) -> (Stack, PathBuf) {
    let mut manifest = common::manifest("websocket.toml");
    let log = std::env::temp_dir().join(format!("woocom-ws-{}.jsonl", uuid_like()));
    if let Some(f) = manifest.functions.get_mut("ws") {
        f.env
            .insert("PROBE_WS_LOG".into(), log.display().to_string());
    }
    edit(&mut manifest);
    (common::stack_from(manifest).await, log)
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

/// The events the probe recorded, oldest first.
fn recorded(log: &PathBuf) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits (bounded) until the probe recorded an event of this type.
async fn wait_recorded(log: &PathBuf, event_type: &str) -> Value {
    for _ in 0..1200 {
        if let Some(e) = recorded(log)
            .into_iter()
            .find(|e| e["requestContext"]["eventType"] == event_type)
        {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no {event_type} event recorded in {}", log.display());
}

fn config() -> WebSocketConfig {
    // A client that refuses frames over 32 KB, so receiving a large push
    // proves the gateway split it as API Gateway does.
    WebSocketConfig::default().max_frame_size(Some(32 * 1024))
}

async fn connect(stack: &Stack, query: &str) -> Client {
    try_connect(stack, query).await.expect("handshake accepted")
}

async fn try_connect(stack: &Stack, query: &str) -> Result<Client, tungstenite::Error> {
    let mut request = format!("{}{query}", stack.urls().websocket)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("user-agent", "woocom-test/1.0".parse().expect("value"));
    request
        .headers_mut()
        .insert("x-custom", "one".parse().expect("value"));
    tokio_tungstenite::connect_async_with_config(request, Some(config()), true)
        .await
        .map(|(ws, _)| ws)
}

/// The next message from the gateway (text or binary as text), bounded.
async fn next(ws: &mut Client) -> Message {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("stream open")
            .expect("no protocol error");
        match message {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

async fn next_text(ws: &mut Client) -> String {
    match next(ws).await {
        Message::Text(t) => t.as_str().to_owned(),
        other => panic!("expected text, got {other:?}"),
    }
}

async fn next_json(ws: &mut Client) -> Value {
    serde_json::from_str(&next_text(ws).await).expect("JSON message")
}

async fn send(ws: &mut Client, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

/// The close frame the gateway sends, bounded.
async fn next_close(ws: &mut Client) -> CloseFrame {
    match next(ws).await {
        Message::Close(Some(frame)) => frame,
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// Asks the echo route for the event, which names the connection.
async fn own_id(ws: &mut Client) -> String {
    send(ws, r#"{"action":"echo"}"#).await;
    let event = next_json(ws).await;
    event["requestContext"]["connectionId"]
        .as_str()
        .expect("connectionId")
        .to_owned()
}

async fn management(stack: &Stack) -> aws_sdk_apigatewaymanagement::Client {
    let endpoint = stack.urls().websocket.replacen("ws://", "http://", 1);
    aws_sdk_apigatewaymanagement::Client::new(&common::sdk::config(&endpoint).await)
}

/// Waits (bounded) until the gateway has forgotten the connection.
async fn wait_gone(stack: &Stack, id: &str) {
    for _ in 0..1200 {
        if !stack.websocket().connection_ids().iter().any(|c| c == id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("connection {id} still open");
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

#[tokio::test]
async fn connect_event_carries_query_string_headers_and_context() {
    let (stack, log) = stack_with(|_| {}).await;
    let mut ws = connect(&stack, "?token=abc&tag=1&tag=2&q=a+b").await;
    let id = own_id(&mut ws).await;
    let event = wait_recorded(&log, "CONNECT").await;
    common::golden::assert_matches("example-apigw-websocket-connect.json", &event);

    assert_eq!(
        keys(&event),
        [
            "headers",
            "isBase64Encoded",
            "multiValueHeaders",
            "multiValueQueryStringParameters",
            "queryStringParameters",
            "requestContext"
        ]
    );
    assert_eq!(event["queryStringParameters"]["token"], "abc");
    assert_eq!(event["queryStringParameters"]["q"], "a b");
    assert_eq!(
        event["multiValueQueryStringParameters"]["tag"],
        json!(["1", "2"])
    );
    let headers = &event["headers"];
    assert_eq!(headers["X-Custom"], "one");
    assert_eq!(headers["Sec-Websocket-Version"], "13");
    assert!(headers["Sec-Websocket-Key"].is_string());
    assert!(headers.get("Connection").is_none(), "hop-by-hop dropped");
    assert_eq!(headers["X-Forwarded-For"], "127.0.0.1");
    assert!(
        headers["X-Amzn-Trace-Id"]
            .as_str()
            .is_some_and(|t| t.starts_with("Root=1-"))
    );
    assert_eq!(event["isBase64Encoded"], false);

    let ctx = &event["requestContext"];
    assert_eq!(ctx["routeKey"], "$connect");
    assert_eq!(ctx["eventType"], "CONNECT");
    assert_eq!(ctx["connectionId"], id.as_str());
    assert_eq!(ctx["stage"], "test");
    assert_eq!(ctx["messageDirection"], "IN");
    assert_eq!(ctx["requestId"], ctx["extendedRequestId"]);
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["identity"]["userAgent"], "woocom-test/1.0");
    assert!(ctx["apiId"].as_str().is_some_and(|a| a.len() == 10));
    assert!(
        ctx["domainName"]
            .as_str()
            .is_some_and(|d| d.starts_with("127.0.0.1:"))
    );
    for key in ["messageId", "disconnectStatusCode", "disconnectReason"] {
        assert!(ctx[key].is_null() && ctx.get(key).is_some(), "{key}: null");
    }
    let connected_at = ctx["connectedAt"].as_i64().expect("connectedAt ms");
    assert!(ctx["requestTimeEpoch"].as_i64() >= Some(connected_at));

    let _: ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(event.clone()).expect("an aws_lambda_events WebSocket request");
    stack.shutdown().await;
}

#[tokio::test]
async fn messages_route_by_action_and_fall_back_to_default() {
    let (stack, _log) = stack_with(|_| {}).await;
    let mut ws = connect(&stack, "").await;

    send(&mut ws, r#"{"action":"echo","n":1}"#).await;
    let event = next_json(&mut ws).await;
    assert_eq!(keys(&event), ["body", "isBase64Encoded", "requestContext"]);
    assert_eq!(event["body"], r#"{"action":"echo","n":1}"#);
    let ctx = &event["requestContext"];
    assert_eq!(ctx["routeKey"], "echo");
    assert_eq!(ctx["eventType"], "MESSAGE");
    assert!(ctx["messageId"].as_str().is_some_and(|m| m.len() == 16));
    assert!(ctx.get("disconnectStatusCode").is_none());
    let _: ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(event.clone()).expect("an aws_lambda_events WebSocket request");

    // No such route key → $default; not JSON → $default.
    send(&mut ws, r#"{"action":"nope"}"#).await;
    assert_eq!(
        next_json(&mut ws).await["requestContext"]["routeKey"],
        "$default"
    );
    send(&mut ws, "plain text").await;
    let event = next_json(&mut ws).await;
    assert_eq!(event["requestContext"]["routeKey"], "$default");
    assert_eq!(event["body"], "plain text");

    // A one-way route sends nothing back: the next answer is the echo's.
    send(&mut ws, r#"{"action":"silent"}"#).await;
    send(&mut ws, r#"{"action":"echo","n":2}"#).await;
    assert_eq!(
        next_json(&mut ws).await["body"],
        r#"{"action":"echo","n":2}"#
    );

    // A function error on a route: API Gateway's error object.
    send(&mut ws, r#"{"action":"error"}"#).await;
    let error = next_json(&mut ws).await;
    assert_eq!(error["message"], "Internal server error");
    assert!(error["connectionId"].is_string() && error["requestId"].is_string());
    stack.shutdown().await;
}

#[tokio::test]
async fn no_matching_route_and_no_default_answers_forbidden() {
    let (stack, _log) = stack_with(|m| {
        if let Some(ws) = m.websocket.as_mut() {
            ws.routes.retain(|r| r.route_key != "$default");
        }
    })
    .await;
    let mut ws = connect(&stack, "").await;
    let id = own_id(&mut ws).await;
    send(&mut ws, r#"{"action":"nope"}"#).await;
    let answer = next_json(&mut ws).await;
    assert_eq!(answer["message"], "Forbidden");
    assert_eq!(answer["connectionId"], id.as_str());
    assert!(answer["requestId"].is_string());
    stack.shutdown().await;
}

#[tokio::test]
async fn connect_refused_by_the_function_refuses_the_handshake() {
    let (stack, _log) = stack_with(|_| {}).await;
    for (query, status) in [("?reject=401", 401), ("?reject=403", 403), ("?fail=1", 500)] {
        match try_connect(&stack, query).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), status, "{query}")
            }
            Err(other) => panic!("{query}: unexpected error {other}"),
            Ok(_) => panic!("{query}: the handshake was accepted"),
        }
    }
    assert!(stack.websocket().connection_ids().is_empty());

    // Not an upgrade, or another stage: API Gateway's 403.
    let http = common::http();
    let plain = stack.urls().websocket.replacen("ws://", "http://", 1);
    let response = http.get(&plain).send().await.expect("request");
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.text().await.expect("body"),
        r#"{"message":"Forbidden"}"#
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn connections_api_pushes_describes_and_deletes() {
    let (stack, log) = stack_with(|_| {}).await;
    let api = management(&stack).await;
    let mut ws = connect(&stack, "").await;
    let id = own_id(&mut ws).await;

    api.post_to_connection()
        .connection_id(&id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
            r#"{"order":"o-1","status":"PAID"}"#,
        ))
        .send()
        .await
        .expect("PostToConnection");
    assert_eq!(
        next_text(&mut ws).await,
        r#"{"order":"o-1","status":"PAID"}"#
    );

    // A function pushes to its caller through WOOCOM_WEBSOCKET_ENDPOINT.
    send(&mut ws, r#"{"action":"push","data":"from the function"}"#).await;
    assert_eq!(next_text(&mut ws).await, "from the function");

    // Larger than a frame: sent in 32 KB frames (the client refuses more).
    let big = "x".repeat(100 * 1024);
    api.post_to_connection()
        .connection_id(&id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
            big.clone(),
        ))
        .send()
        .await
        .expect("PostToConnection 100 KB");
    assert_eq!(next_text(&mut ws).await.len(), big.len());
    let too_big = api
        .post_to_connection()
        .connection_id(&id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
            "x".repeat(128 * 1024 + 1),
        ))
        .send()
        .await
        .expect_err("over 128 KB");
    assert!(
        too_big
            .as_service_error()
            .is_some_and(|e| e.is_payload_too_large_exception()),
        "{too_big:?}"
    );

    let info = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("GetConnection");
    let identity = info.identity().expect("Identity");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some("woocom-test/1.0"));
    let connected = info.connected_at().expect("ConnectedAt");
    let active = info.last_active_at().expect("LastActiveAt");
    assert!(active >= connected);

    api.delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("DeleteConnection");
    let frame = next_close(&mut ws).await;
    assert_eq!(frame.code, CloseCode::Normal);
    wait_gone(&stack, &id).await;
    let disconnect = wait_recorded(&log, "DISCONNECT").await;
    assert_eq!(disconnect["requestContext"]["connectionId"], id.as_str());
    stack.shutdown().await;
}

#[tokio::test]
async fn closed_or_unknown_connection_is_410_gone() {
    let (stack, _log) = stack_with(|_| {}).await;
    let api = management(&stack).await;
    let mut ws = connect(&stack, "").await;
    let id = own_id(&mut ws).await;
    ws.close(None).await.expect("close");
    wait_gone(&stack, &id).await;

    for target in [id.as_str(), "Zm9vYmFyYmF6cXU="] {
        let err = api
            .post_to_connection()
            .connection_id(target)
            .data(aws_sdk_apigatewaymanagement::primitives::Blob::new("late"))
            .send()
            .await
            .expect_err("gone");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_gone_exception()),
            "{err:?}"
        );
        let err = api
            .get_connection()
            .connection_id(target)
            .send()
            .await
            .expect_err("gone");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_gone_exception()),
            "{err:?}"
        );
    }

    // On the wire: 410, the error type in a header, no body.
    let url = format!(
        "{}/@connections/{}",
        stack.urls().websocket.replacen("ws://", "http://", 1),
        id.replace('=', "%3D")
    );
    let response = common::http()
        .post(url)
        .body("x")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 410);
    assert_eq!(response.headers()["x-amzn-errortype"], "GoneException");
    assert!(response.headers().contains_key("x-amzn-requestid"));
    assert_eq!(response.text().await.expect("body"), "");
    stack.shutdown().await;
}

#[tokio::test]
async fn disconnect_is_delivered_with_the_close_status() {
    let (stack, log) = stack_with(|_| {}).await;
    let mut ws = connect(&stack, "").await;
    let id = own_id(&mut ws).await;
    ws.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "tab closed".into(),
    }))
    .await
    .expect("close");
    let event = wait_recorded(&log, "DISCONNECT").await;
    assert_eq!(
        keys(&event),
        [
            "headers",
            "isBase64Encoded",
            "multiValueHeaders",
            "requestContext"
        ]
    );
    assert_eq!(event["headers"]["x-api-key"], "");
    let ctx = &event["requestContext"];
    assert_eq!(ctx["connectionId"], id.as_str());
    assert_eq!(ctx["routeKey"], "$disconnect");
    assert_eq!(ctx["disconnectStatusCode"], 1001);
    assert_eq!(ctx["disconnectReason"], "tab closed");
    assert!(ctx.get("messageId").is_none());
    let _: ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(event.clone()).expect("an aws_lambda_events WebSocket request");

    // A close frame without a status, and a dropped socket.
    let mut ws = connect(&stack, "").await;
    let quiet = own_id(&mut ws).await;
    ws.close(None).await.expect("close");
    let mut ws = connect(&stack, "").await;
    let dropped = own_id(&mut ws).await;
    drop(ws);
    for (id, code) in [(quiet, 1005), (dropped, 1006)] {
        let mut found = None;
        for _ in 0..1200 {
            found = recorded(&log).into_iter().find(|e| {
                e["requestContext"]["eventType"] == "DISCONNECT"
                    && e["requestContext"]["connectionId"] == id.as_str()
            });
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let event = found.expect("disconnect recorded");
        assert_eq!(event["requestContext"]["disconnectStatusCode"], code);
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn limits_close_the_connection_as_api_gateway_does() {
    let (stack, log) = stack_with(|m| {
        if let Some(ws) = m.websocket.as_mut() {
            ws.idle_timeout_seconds = 2;
        }
    })
    .await;

    // One frame over 32 KB: 1009.
    let mut ws = connect(&stack, "").await;
    send(
        &mut ws,
        &format!(r#"{{"action":"silent","pad":"{}"}}"#, "x".repeat(40 * 1024)),
    )
    .await;
    assert_eq!(next_close(&mut ws).await.code, CloseCode::Size);

    // 100 KB in 32 KB frames is fine; 129 KB is not: 1009.
    let mut ws = connect(&stack, "").await;
    let fragmented = |size: usize| {
        let text = format!(r#"{{"action":"echo","pad":"{}"}}"#, "x".repeat(size));
        let chunks: Vec<Vec<u8>> = text
            .as_bytes()
            .chunks(32 * 1024)
            .map(<[u8]>::to_vec)
            .collect();
        let last = chunks.len() - 1;
        chunks
            .into_iter()
            .enumerate()
            .map(move |(i, c)| {
                let opcode = OpCode::Data(if i == 0 { Data::Text } else { Data::Continue });
                Message::Frame(Frame::message(c, opcode, i == last))
            })
            .collect::<Vec<_>>()
    };
    for frame in fragmented(100 * 1024) {
        ws.feed(frame).await.expect("feed");
    }
    ws.flush().await.expect("flush");
    let echoed = next_json(&mut ws).await;
    assert_eq!(echoed["requestContext"]["routeKey"], "echo");
    for frame in fragmented(129 * 1024) {
        ws.feed(frame).await.expect("feed");
    }
    ws.flush().await.expect("flush");
    assert_eq!(next_close(&mut ws).await.code, CloseCode::Size);

    // Binary frames are not supported: 1003.
    let mut ws = connect(&stack, "").await;
    ws.send(Message::binary(vec![1, 2, 3])).await.expect("send");
    assert_eq!(next_close(&mut ws).await.code, CloseCode::Unsupported);

    // Idle past the timeout (2 s here, 10 minutes in AWS): 1001, and
    // $disconnect says so.
    let mut ws = connect(&stack, "").await;
    let id = own_id(&mut ws).await;
    let started = std::time::Instant::now();
    assert_eq!(next_close(&mut ws).await.code, CloseCode::Away);
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let mut idle_disconnect = None;
    for _ in 0..1200 {
        idle_disconnect = recorded(&log).into_iter().find(|e| {
            e["requestContext"]["eventType"] == "DISCONNECT"
                && e["requestContext"]["connectionId"] == id.as_str()
        });
        if idle_disconnect.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        idle_disconnect.expect("disconnect")["requestContext"]["disconnectStatusCode"],
        1001
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_open_connections() {
    let (stack, _log) = stack_with(|_| {}).await;
    let mut ws = connect(&stack, "").await;
    let _ = own_id(&mut ws).await;
    let stopping = tokio::spawn(stack.shutdown());
    assert_eq!(next_close(&mut ws).await.code, CloseCode::Away);
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown ends")
        .expect("shutdown task");
}
