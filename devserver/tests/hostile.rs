//! Slow and hostile clients (issue 20): clients that never read, send half a
//! request or nothing at all, break HTTP framing or the WebSocket protocol,
//! or send too much. Each test asserts the exact answer (status,
//! `x-amzn-ErrorType`, close code) and that the stack still serves a normal
//! request within a second afterwards. Loopback only; every wait is
//! bounded, and so is every loop.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use woocom_dev::Stack;
use woocom_dev::listener::Limits;
use woocom_dev::manifest::Manifest;

use common::raw;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What "still serves a normal request" must take at most.
const PROMPT: Duration = Duration::from_secs(1);

fn unique() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

/// The WebSocket fixture stack, its probe recording WebSocket events in a
/// file of its own (the returned path).
async fn websocket_stack(limits: Limits) -> (Stack, PathBuf) {
    let mut manifest = common::manifest("websocket.toml");
    let log = std::env::temp_dir().join(format!("woocom-hostile-{}.jsonl", unique()));
    if let Some(f) = manifest.functions.get_mut("ws") {
        f.env
            .insert("PROBE_WS_LOG".into(), log.display().to_string());
    }
    let stack = common::stack_with_options(manifest, |o| o.limits = limits).await;
    (stack, log)
}

async fn probe_stack(limits: Limits) -> Stack {
    common::stack_with_options(common::manifest("probe.toml"), |o| o.limits = limits).await
}

/// The `$disconnect` the probe recorded for a connection, bounded.
async fn disconnect_code(log: &PathBuf, id: &str) -> Value {
    for _ in 0..400 {
        let found = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| {
                e["requestContext"]["eventType"] == "DISCONNECT"
                    && e["requestContext"]["connectionId"] == id
            });
        if let Some(e) = found {
            return e["requestContext"]["disconnectStatusCode"].clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no $disconnect recorded for {id}");
}

async fn connect(stack: &Stack, query: &str) -> Client {
    let url = format!("{}{query}", stack.urls().websocket);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("handshake accepted")
        .0
}

/// A client whose socket takes in almost nothing: the kernel's smallest
/// receive buffer, and it stops reading once it knows its id.
async fn slow_reader(stack: &Stack, query: &str) -> Client {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let address = raw::address(&stack.urls().websocket).parse().expect("addr");
    let tcp = socket.connect(address).await.expect("connect");
    let url = format!("{}{query}", stack.urls().websocket);
    tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .expect("handshake accepted")
        .0
}

/// The next text message, within `wait`.
async fn next_text(ws: &mut Client, wait: Duration) -> String {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("a message within {wait:?}"))
            .expect("socket open")
            .expect("no protocol error");
        match message {
            Message::Text(t) => return t.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// The connection id, from the echo route's event.
async fn own_id(ws: &mut Client) -> String {
    ws.send(Message::text(r#"{"action":"echo"}"#))
        .await
        .expect("send");
    let event: Value =
        serde_json::from_str(&next_text(ws, Duration::from_secs(10)).await).expect("JSON event");
    event["requestContext"]["connectionId"]
        .as_str()
        .expect("connection id")
        .to_owned()
}

fn connections_url(stack: &Stack, id: &str) -> String {
    let http = stack.urls().websocket.replacen("ws://", "http://", 1);
    format!("{http}/@connections/{id}")
}

/// A `POST @connections/{id}`: its status and how long it took.
async fn post(http: &reqwest::Client, stack: &Stack, id: &str, body: Vec<u8>) -> (u16, Duration) {
    let started = Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        http.post(connections_url(stack, id)).body(body).send(),
    )
    .await
    .expect("@connections answers (it hung before issue 20)")
    .expect("POST @connections");
    (response.status().as_u16(), started.elapsed())
}

/// A normal client gets a push within [`PROMPT`].
async fn push_arrives_promptly(http: &reqwest::Client, stack: &Stack, ws: &mut Client, id: &str) {
    let marker = format!("tick-{}", unique());
    let (status, took) = post(http, stack, id, marker.clone().into_bytes()).await;
    assert_eq!(status, 200, "push to the healthy client");
    assert!(took < PROMPT, "push answered in {took:?}");
    let started = Instant::now();
    assert_eq!(next_text(ws, PROMPT).await, marker);
    assert!(started.elapsed() < PROMPT);
}

// Regression (issue 20): a WebSocket client that never read made
// `POST @connections` hang once 16 messages were queued, stalling every
// caller of @connections (and with it the shop's stream).
#[tokio::test]
async fn client_that_never_reads_is_closed_1008_and_posts_get_410_gone_while_others_get_pushes() {
    let (stack, log) = websocket_stack(Limits::default()).await;
    let http = common::http();
    let mut healthy = connect(&stack, "").await;
    let healthy_id = own_id(&mut healthy).await;
    let mut stuck = slow_reader(&stack, "").await;
    let stuck_id = own_id(&mut stuck).await;

    let mut accepted = 0;
    let mut gone_after = None;
    for i in 0..400 {
        let (status, took) = post(&http, &stack, &stuck_id, vec![b'x'; 100 * 1024]).await;
        assert!(took < PROMPT, "POST {i} answered in {took:?}");
        match status {
            200 => accepted += 1,
            410 => {
                gone_after = Some(i);
                break;
            }
            other => panic!("POST {i}: {other}"),
        }
        if i % 5 == 0 {
            push_arrives_promptly(&http, &stack, &mut healthy, &healthy_id).await;
        }
    }
    assert!(
        gone_after.is_some(),
        "a client that never reads is closed once its buffer is full ({accepted} posts taken)"
    );
    assert!(accepted > 0, "a slow client still gets what fits");

    // Closed: every @connections call answers 410 at once, as for any
    // closed connection.
    let management = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(
            &common::sdk::config(&stack.urls().websocket.replacen("ws://", "http://", 1)).await,
        )
        .build(),
    );
    let started = Instant::now();
    let err = management
        .post_to_connection()
        .connection_id(&stuck_id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new("late"))
        .send()
        .await
        .expect_err("410");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_gone_exception()),
        "{err:?}"
    );
    assert!(started.elapsed() < PROMPT);
    let delete = http
        .delete(connections_url(&stack, &stuck_id))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(delete.status(), 410);
    assert_eq!(
        delete.headers()["x-amzn-errortype"].to_str().ok(),
        Some("GoneException")
    );

    assert_eq!(disconnect_code(&log, &stuck_id).await, 1008);
    push_arrives_promptly(&http, &stack, &mut healthy, &healthy_id).await;
    drop(stuck);
    stack.shutdown().await;
}

// Regression (issue 20): `DELETE @connections/{id}` hung behind the
// messages queued for a client that did not read.
#[tokio::test]
async fn delete_answers_204_at_once_for_a_client_that_never_reads() {
    let (stack, log) = websocket_stack(Limits::default()).await;
    let http = common::http();
    let mut stuck = slow_reader(&stack, "").await;
    let stuck_id = own_id(&mut stuck).await;
    // Enough to fill the kernel's socket buffers (a few MB on loopback)
    // and part of the 1 MB queue, not the queue itself.
    for _ in 0..15 {
        let (status, took) = post(&http, &stack, &stuck_id, vec![b'y'; 100 * 1024]).await;
        assert!(took < PROMPT);
        assert_eq!(status, 200);
    }
    let started = Instant::now();
    let delete = tokio::time::timeout(
        Duration::from_secs(5),
        http.delete(connections_url(&stack, &stuck_id)).send(),
    )
    .await
    .expect("DELETE answers")
    .expect("DELETE");
    assert!(
        started.elapsed() < PROMPT,
        "DELETE took {:?}",
        started.elapsed()
    );
    assert_eq!(delete.status(), 204);
    let get = http
        .get(connections_url(&stack, &stuck_id))
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status(), 410, "gone once deleted");
    assert_eq!(disconnect_code(&log, &stuck_id).await, 1000);

    let mut healthy = connect(&stack, "").await;
    let healthy_id = own_id(&mut healthy).await;
    push_arrives_promptly(&http, &stack, &mut healthy, &healthy_id).await;
    drop(stuck);
    stack.shutdown().await;
}

/// The shop of the repository's dev.toml (every function its real binary).
async fn shop_stack() -> Stack {
    let manifest = Manifest::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dev.toml"))
        .expect("dev.toml");
    common::stack_with_options(manifest, |_| {}).await
}

async fn put_stock(http: &reqwest::Client, stack: &Stack, id: &str, stock: i64) {
    let response = http
        .put(format!("{}/products/{id}", stack.urls().api))
        .json(&json!({ "name": "Mug", "price": 1200, "stock": stock }))
        .send()
        .await
        .expect("PUT product");
    assert_eq!(response.status(), 200, "PUT /products/{id}");
}

// Regression (issue 20): through the shop, `notify` blocked on a client that
// did not read until its 30 s timeout, the stream batch failed and was
// retried, and a healthy client got the next stock change 40 s late.
#[tokio::test]
async fn stock_changes_reach_a_healthy_client_within_a_second_while_another_never_reads() {
    let stack = shop_stack().await;
    let http = common::http();
    let mut healthy = connect(&stack, "?topics=catalogue").await;
    let before = stack.websocket().connection_ids();
    let stuck = slow_reader(&stack, "?topics=catalogue").await;
    let stuck_id = stack
        .websocket()
        .connection_ids()
        .into_iter()
        .find(|id| !before.contains(id))
        .expect("the slow client's id");

    let product = format!("hostile-{}", unique());
    put_stock(&http, &stack, &product, 100).await;
    let mut stock = 100;
    let mut closed = false;
    for round in 0..40 {
        // Fill the slow client's buffers through @connections, as other
        // pushes would.
        if !closed {
            for _ in 0..5 {
                let (status, took) = post(&http, &stack, &stuck_id, vec![b'z'; 100 * 1024]).await;
                assert!(took < PROMPT, "POST answered in {took:?}");
                closed |= status == 410;
            }
        }
        stock -= 1;
        put_stock(&http, &stack, &product, stock).await;
        let started = Instant::now();
        let message: Value =
            serde_json::from_str(&next_text(&mut healthy, PROMPT).await).expect("JSON");
        assert_eq!(
            message,
            json!({ "type": "stock", "productId": product, "stock": stock }),
            "round {round}"
        );
        assert!(started.elapsed() < PROMPT);
        if closed && round > 2 {
            break;
        }
    }
    assert!(
        closed,
        "the client that never reads was closed (410) once its buffer was full"
    );
    drop(stuck);
    stack.shutdown().await;
}

/// One masked frame per broken rule, and the close code RFC 6455 asks for.
/// <https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1>
#[tokio::test]
async fn websocket_protocol_errors_close_with_1002_or_1007_and_run_disconnect() {
    let (stack, log) = websocket_stack(Limits::default()).await;
    let cases: [(&str, Vec<u8>, u16); 5] = [
        (
            "text frame that is not UTF-8",
            raw::frame(0x81, &[0x7b, 0xff, 0xfe, 0x7d], true),
            1007,
        ),
        (
            "unmasked client frame",
            raw::frame(0x81, b"{}", false),
            1002,
        ),
        (
            "reserved bit set",
            raw::frame(0x80 | 0x40 | 0x1, b"{}", true),
            1002,
        ),
        ("unknown opcode 0x3", raw::frame(0x83, b"{}", true), 1002),
        (
            "continuation with nothing to continue",
            raw::frame(0x80, b"{}", true),
            1002,
        ),
    ];
    for (what, bytes, expected) in cases {
        let before = stack.websocket().connection_ids();
        let (mut tcp, head) =
            raw::websocket_handshake(&stack.urls().websocket, "dGhlIHNhbXBsZSBub25jZQ==").await;
        assert_eq!(head.map(|h| h.status), Some(101), "{what}: handshake");
        let id = wait_new_connection(&stack, &before).await;
        tcp.write_all(&bytes).await.expect("write");
        let code = raw::read_close_code(&mut tcp, Duration::from_secs(5)).await;
        assert_eq!(code, Some(expected), "{what}: close frame");
        assert!(
            raw::closed_within(&mut tcp, Duration::from_secs(5)).await,
            "{what}: socket closed"
        );
        assert_eq!(
            disconnect_code(&log, &id).await,
            expected,
            "{what}: $disconnect"
        );

        let started = Instant::now();
        let mut ws = connect(&stack, "").await;
        own_id(&mut ws).await;
        assert!(started.elapsed() < PROMPT, "{what}: a normal client after");
    }
    stack.shutdown().await;
}

async fn wait_new_connection(stack: &Stack, before: &[String]) -> String {
    for _ in 0..200 {
        if let Some(id) = stack
            .websocket()
            .connection_ids()
            .into_iter()
            .find(|id| !before.contains(id))
        {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no new connection");
}

/// RFC 6455 §4.2.1: the key is base64 of 16 bytes; anything else is a bad
/// handshake.
#[tokio::test]
async fn handshake_with_a_bad_sec_websocket_key_is_400() {
    let (stack, _log) = websocket_stack(Limits::default()).await;
    let oversized = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="; // 32 bytes
    for key in ["", "not base64 at all!!!!!!=", oversized, "AAAA"] {
        let (_tcp, head) = raw::websocket_handshake(&stack.urls().websocket, key).await;
        assert_eq!(head.map(|h| h.status), Some(400), "key {key:?}");
    }
    let started = Instant::now();
    let mut ws = connect(&stack, "").await;
    own_id(&mut ws).await;
    assert!(started.elapsed() < PROMPT);
    stack.shutdown().await;
}

/// A normal REST request through the probe answers 200 within [`PROMPT`].
async fn rest_serves_promptly(stack: &Stack) {
    let started = Instant::now();
    let response = tokio::time::timeout(
        PROMPT,
        common::http()
            .get(format!("{}/products/42", stack.urls().api))
            .send(),
    )
    .await
    .expect("a normal request within a second")
    .expect("GET");
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < PROMPT);
}

fn short_timeouts() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(500),
        body_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    }
}

// Regression (issue 20): half-sent requests and silent connections stayed
// open forever on every listener.
#[tokio::test]
async fn half_sent_heads_and_silent_connections_are_closed_after_the_header_read_timeout() {
    let stack = probe_stack(short_timeouts()).await;
    rest_serves_promptly(&stack).await;
    let urls = stack.urls().clone();
    for url in [&urls.api, &urls.websocket, &urls.aws] {
        let mut silent = raw::connect(url).await;
        let mut half = raw::connect(url).await;
        half.write_all(b"GET /test/products/42 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .expect("write");
        let started = Instant::now();
        assert!(
            raw::closed_within(&mut half, Duration::from_secs(5)).await,
            "{url}: half-sent head closed"
        );
        assert!(
            raw::closed_within(&mut silent, Duration::from_secs(5)).await,
            "{url}: silent connection closed"
        );
        assert!(started.elapsed() >= Duration::from_millis(400));
    }
    rest_serves_promptly(&stack).await;
    stack.shutdown().await;
}

#[tokio::test]
async fn body_slower_than_the_body_read_timeout_is_400() {
    let stack = probe_stack(short_timeouts()).await;
    rest_serves_promptly(&stack).await;
    let mut tcp = raw::connect(&stack.urls().api).await;
    tcp.write_all(
        b"POST /test/products HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .await
    .expect("write");
    let head = raw::read_head(&mut tcp, Duration::from_secs(5))
        .await
        .expect("an answer");
    assert_eq!(head.status, 400);
    assert_eq!(head.header("x-amzn-errortype"), Some("BadRequestException"));
    rest_serves_promptly(&stack).await;
    stack.shutdown().await;
}

#[tokio::test]
async fn past_the_connection_bound_new_connections_wait_until_one_closes() {
    let stack = probe_stack(Limits {
        max_connections: 4,
        ..Limits::default()
    })
    .await;
    let url = stack.urls().api.clone();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(raw::connect(&url).await);
    }
    // The kernel completes the TCP handshake; the devserver does not take
    // the connection, so the request waits.
    let mut waiting = raw::connect(&url).await;
    waiting
        .write_all(b"GET /test/products/42 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let early = tokio::time::timeout(
        Duration::from_millis(500),
        raw::read_head(&mut waiting, Duration::from_secs(10)),
    )
    .await;
    assert!(early.is_err(), "no answer past the bound: {early:?}");
    held.pop();
    let head = raw::read_head(&mut waiting, Duration::from_secs(5))
        .await
        .expect("answered once a slot is free");
    assert_eq!(head.status, 200);
    drop(held);
    drop(waiting);
    tokio::time::sleep(Duration::from_millis(100)).await;
    rest_serves_promptly(&stack).await;
    stack.shutdown().await;
}

// Regression (issue 20): a malformed chunked body got 413 "Request Too
// Long"; it is a 400.
#[tokio::test]
async fn malformed_chunked_bodies_are_400_not_413() {
    let stack = probe_stack(Limits::default()).await;
    rest_serves_promptly(&stack).await;
    let head = "POST /test/products HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let cases: [(&str, &str, bool); 3] = [
        ("bad chunk size", "zz\r\nhello\r\n0\r\n\r\n", false),
        (
            "chunk longer than declared",
            "5\r\nhello, and more\r\n0\r\n\r\n",
            false,
        ),
        ("early close", "64\r\nonly ten b", true),
    ];
    for (what, body, close_early) in cases {
        let mut tcp = raw::connect(&stack.urls().api).await;
        tcp.write_all(format!("{head}{body}").as_bytes())
            .await
            .expect("write");
        if close_early {
            tcp.shutdown().await.expect("shutdown");
        }
        let answer = raw::read_head(&mut tcp, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{what}: an answer"));
        assert_eq!(answer.status, 400, "{what}");
        assert_eq!(
            answer.header("x-amzn-errortype"),
            Some("BadRequestException"),
            "{what}"
        );
        rest_serves_promptly(&stack).await;
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn oversized_headers_missing_host_and_ambiguous_length_are_refused() {
    let stack = probe_stack(Limits::default()).await;
    rest_serves_promptly(&stack).await;
    let api = stack.urls().api.clone();
    let big = |n: usize| {
        format!(
            "GET /test/products/42 HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(n)
        )
    };
    // API Gateway's quota: 10,240 bytes of request line and header values.
    let head = raw::exchange(&api, big(9_000).as_bytes())
        .await
        .expect("answer");
    assert_eq!(head.status, 200, "within the quota");
    let head = raw::exchange(&api, big(10_300).as_bytes())
        .await
        .expect("answer");
    assert_eq!(head.status, 431, "over the quota");
    assert_eq!(
        head.header("x-amzn-errortype"),
        Some("RequestHeaderFieldsTooLargeException")
    );
    // Far over: hyper refuses before any handler.
    let head = raw::exchange(&api, big(100_000).as_bytes())
        .await
        .expect("answer");
    assert_eq!(head.status, 431, "over the listener's own bound");

    let head = raw::exchange(&api, b"GET /test/products/42 HTTP/1.1\r\n\r\n")
        .await
        .expect("answer");
    assert_eq!(head.status, 400, "HTTP/1.1 without Host");
    assert_eq!(head.header("x-amzn-errortype"), Some("BadRequestException"));

    let head = raw::exchange(
        &api,
        b"POST /test/products HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await
    .expect("answer");
    assert_eq!(head.status, 400, "Transfer-Encoding with Content-Length");
    assert_eq!(head.header("x-amzn-errortype"), Some("BadRequestException"));
    rest_serves_promptly(&stack).await;
    stack.shutdown().await;
}

/// A normal invoke through `aws-sdk-lambda` answers within [`PROMPT`].
async fn lambda_serves_promptly(client: &aws_sdk_lambda::Client) {
    let started = Instant::now();
    let out = client
        .invoke()
        .function_name("probe")
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.status_code(), 200);
    assert!(started.elapsed() < PROMPT, "{:?}", started.elapsed());
}

// Regression (issue 20): 13 MB got a plain-text 413 without
// `x-amzn-ErrorType` (SDKs raised a generic error), invalid UTF-8 reached
// the function, and ARNs of another region or account ran the local
// function.
#[tokio::test]
async fn invoke_refuses_oversized_non_utf8_and_foreign_arns_as_lambda_does() {
    let stack = probe_stack(Limits::default()).await;
    let client = common::lambda_client(&stack).await;
    lambda_serves_promptly(&client).await;

    for size in [7 * 1024 * 1024, 13 * 1024 * 1024] {
        let err = client
            .invoke()
            .function_name("probe")
            .payload(Blob::new(vec![b' '; size]))
            .send()
            .await
            .expect_err("too large");
        let err = err.into_service_error();
        assert!(err.is_request_too_large_exception(), "{size}: {err:?}");
        lambda_serves_promptly(&client).await;
    }
    let raw = common::http()
        .post(format!(
            "{}/2015-03-31/functions/probe/invocations",
            stack.urls().aws
        ))
        .body(vec![b' '; 13 * 1024 * 1024])
        .send()
        .await
        .expect("POST");
    assert_eq!(raw.status(), 413);
    assert_eq!(
        raw.headers()["x-amzn-errortype"].to_str().ok(),
        Some("RequestTooLargeException")
    );

    let err = client
        .invoke()
        .function_name("probe")
        .payload(Blob::new(b"{\"a\":\"\xff\xfe\"}".to_vec()))
        .send()
        .await
        .expect_err("not UTF-8");
    let err = err.into_service_error();
    assert!(err.is_invalid_request_content_exception(), "{err:?}");

    let err = client
        .invoke()
        .function_name("arn:aws:lambda:eu-west-1:000000000000:function:probe")
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect_err("another region");
    let err = err.into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    assert_eq!(
        aws_sdk_lambda::error::ProvideErrorMetadata::message(&err),
        Some("Functions from 'eu-west-1' are not reachable in this region ('us-east-1')")
    );
    for arn in [
        "arn:aws:lambda:us-east-1:111111111111:function:probe",
        "111111111111:function:probe",
    ] {
        let err = client
            .invoke()
            .function_name(arn)
            .payload(Blob::new("{}"))
            .send()
            .await
            .expect_err("another account");
        let err = err.into_service_error();
        assert!(err.is_resource_not_found_exception(), "{arn}: {err:?}");
    }
    lambda_serves_promptly(&client).await;
    stack.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_on_every_listener_get_their_services_answer() {
    let stack = probe_stack(Limits::default()).await;
    let http = common::http();
    // REST: 413 past API Gateway's 10 MB.
    let response = http
        .post(format!("{}/products", stack.urls().api))
        .body(vec![b'a'; 11 * 1024 * 1024])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.headers()["x-amzn-errortype"].to_str().ok(),
        Some("RequestTooLargeException")
    );
    rest_serves_promptly(&stack).await;
    stack.shutdown().await;

    // WebSocket @connections: 413 past 128 KB.
    let (stack, _log) = websocket_stack(Limits::default()).await;
    let mut ws = connect(&stack, "").await;
    let id = own_id(&mut ws).await;
    let response = http
        .post(connections_url(&stack, &id))
        .body(vec![b'a'; 129 * 1024])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.headers()["x-amzn-errortype"].to_str().ok(),
        Some("PayloadTooLargeException")
    );
    push_arrives_promptly(&http, &stack, &mut ws, &id).await;
    stack.shutdown().await;
}

/// Open file handles of this process (the in-process stack's included).
fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

// Regression (issue 20): 2,000 silent connections raised the devserver's
// file handles from 139 to 2,139 for good.
#[tokio::test]
async fn silent_connections_give_their_file_handles_back() {
    let stack = probe_stack(short_timeouts()).await;
    rest_serves_promptly(&stack).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let idle = open_files();
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(raw::connect(&stack.urls().api).await);
    }
    assert!(open_files() >= idle + 200, "client and server sockets open");
    for tcp in &mut silent {
        assert!(
            raw::closed_within(tcp, Duration::from_secs(5)).await,
            "closed by the header read timeout"
        );
    }
    drop(silent);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = open_files();
    assert!(
        after <= idle + 5,
        "file handles back to {idle} (+5), not {after}"
    );
    rest_serves_promptly(&stack).await;
    stack.shutdown().await;
}

/// A client that stopped reading is closed once a message has waited the
/// write timeout for its socket, even when nothing more is pushed to it.
#[tokio::test]
async fn message_not_written_within_the_write_timeout_closes_with_1008() {
    let (stack, log) = websocket_stack(Limits {
        // Room for everything pushed below: only the timeout can close it.
        websocket_outbound_bytes: 64 * 1024 * 1024,
        websocket_write_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let http = common::http();
    let mut stuck = slow_reader(&stack, "").await;
    let stuck_id = own_id(&mut stuck).await;
    // More than the kernel's socket buffers take (a few MB on loopback).
    let mut gone = false;
    for _ in 0..80 {
        let (status, took) = post(&http, &stack, &stuck_id, vec![b'w'; 100 * 1024]).await;
        assert!(took < PROMPT);
        if status == 410 {
            gone = true;
            break;
        }
    }
    let started = Instant::now();
    while !gone && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        gone = http
            .get(connections_url(&stack, &stuck_id))
            .send()
            .await
            .is_ok_and(|r| r.status() == 410);
    }
    assert!(gone, "closed after the write timeout");
    assert_eq!(disconnect_code(&log, &stuck_id).await, 1008);

    let mut healthy = connect(&stack, "").await;
    let healthy_id = own_id(&mut healthy).await;
    push_arrives_promptly(&http, &stack, &mut healthy, &healthy_id).await;
    drop(stuck);
    stack.shutdown().await;
}
