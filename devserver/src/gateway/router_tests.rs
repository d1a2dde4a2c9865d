//! The REST and WebSocket routers driven with `oneshot` against a fake
//! [`Invoker`], as axum's own tests drive handlers: what each gateway sends
//! a function and what it answers for each way an invocation can end,
//! without processes or sockets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::rest::{self, RestApi};
use super::websocket::{self, WebSocketGateway};
use crate::lambda::{InvokeRequest, InvokeResponse, Invoker, LambdaError};
use crate::manifest::Manifest;

/// How the fake answers an invocation.
#[derive(Clone)]
enum Answer {
    Payload(Value),
    FunctionError,
    TimedOut,
    NotFound,
}

/// Records what it is asked and answers as told.
struct FakeInvoker {
    answer: Answer,
    calls: Mutex<Vec<(String, InvokeRequest)>>,
}

impl FakeInvoker {
    fn new(answer: Answer) -> Arc<FakeInvoker> {
        Arc::new(FakeInvoker {
            answer,
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<(String, InvokeRequest)> {
        self.calls.lock().expect("calls").clone()
    }

    fn event(&self) -> Value {
        let calls = self.calls();
        let (_, request) = calls.last().expect("the function was invoked");
        serde_json::from_slice(&request.payload).expect("the event is JSON")
    }
}

impl Invoker for FakeInvoker {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        request: InvokeRequest,
    ) -> BoxFuture<'a, Result<InvokeResponse, LambdaError>> {
        let timeout = request.caller_timeout.unwrap_or_default();
        self.calls
            .lock()
            .expect("calls")
            .push((function.to_owned(), request));
        let answer = self.answer.clone();
        Box::pin(async move {
            let (payload, function_error) = match answer {
                Answer::Payload(v) => (Bytes::from(v.to_string()), None),
                Answer::FunctionError => (
                    Bytes::from_static(br#"{"errorType":"Boom","errorMessage":"no"}"#),
                    Some("Unhandled".to_owned()),
                ),
                Answer::TimedOut => return Err(LambdaError::CallerTimedOut(timeout)),
                Answer::NotFound => {
                    return Err(LambdaError::FunctionNotFound {
                        arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{function}"),
                    });
                }
            };
            Ok(InvokeResponse {
                request_id: "fake-request-id".into(),
                payload,
                function_error,
                log: None,
            })
        })
    }

    fn invoke_event(
        &self,
        _function: &str,
        _request: InvokeRequest,
    ) -> Result<String, LambdaError> {
        Err(LambdaError::ShuttingDown)
    }

    fn function_arn(&self, function: &str) -> String {
        format!("arn:aws:lambda:us-east-1:000000000000:function:{function}")
    }
}

const MANIFEST: &str = r#"
[api]
stage = "test"
integration_timeout_ms = 50

[functions.f]
crate = "f"

[[routes]]
method = "GET"
path = "/items/{id}"
function = "f"

[websocket]
[[websocket.routes]]
route_key = "$connect"
function = "f"
"#;

fn manifest() -> Manifest {
    Manifest::parse("dev.toml".as_ref(), MANIFEST).expect("manifest")
}

fn rest_router(fake: &Arc<FakeInvoker>) -> axum::Router {
    let m = manifest();
    let api = RestApi::new(
        "abc123defg".into(),
        "000000000000".into(),
        m.api.clone(),
        m.routes.clone(),
        fake.clone(),
    );
    rest::router(api)
}

fn request(method: &str, uri: &str) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1")
        .body(Body::empty())
        .expect("request");
    let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

async fn call(
    router: axum::Router,
    request: Request<Body>,
) -> (StatusCode, http::HeaderMap, Value) {
    let response = router.oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, headers, json)
}

#[tokio::test]
async fn rest_sends_a_proxy_event_and_maps_the_proxy_response() {
    let fake = FakeInvoker::new(Answer::Payload(json!({
        "statusCode": 201,
        "headers": {"x-made": "yes"},
        "body": "{\"ok\":true}",
    })));
    let (status, headers, body) =
        call(rest_router(&fake), request("GET", "/test/items/42?a=1")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["x-made"], "yes");
    assert_eq!(body, json!({"ok": true}));
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "f");
    // API Gateway's integration timeout goes with the invocation.
    assert_eq!(calls[0].1.caller_timeout, Some(Duration::from_millis(50)));
    let event = fake.event();
    assert_eq!(event["resource"], "/items/{id}");
    assert_eq!(event["pathParameters"], json!({"id": "42"}));
    assert_eq!(event["queryStringParameters"], json!({"a": "1"}));
    assert_eq!(event["requestContext"]["stage"], "test");
}

#[tokio::test]
async fn rest_answers_504_when_the_integration_times_out() {
    let fake = FakeInvoker::new(Answer::TimedOut);
    let (status, headers, body) = call(rest_router(&fake), request("GET", "/test/items/1")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(headers["x-amzn-errortype"], "InternalServerErrorException");
    assert_eq!(body, json!({"message": "Endpoint request timed out"}));
}

#[tokio::test]
async fn rest_answers_502_for_a_function_error_a_malformed_response_or_no_function() {
    for answer in [
        Answer::FunctionError,
        // An unknown key (a missing statusCode is a 200, as in AWS).
        Answer::Payload(json!({"statusCode": 200, "wrongValue": "value"})),
        Answer::Payload(json!("not an object")),
        Answer::NotFound,
    ] {
        let fake = FakeInvoker::new(answer);
        let (status, _, body) = call(rest_router(&fake), request("GET", "/test/items/1")).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(body, json!({"message": "Internal server error"}));
    }
}

#[tokio::test]
async fn rest_answers_unmatched_routes_itself_without_invoking() {
    let fake = FakeInvoker::new(Answer::Payload(json!({"statusCode": 200})));
    let (status, _, body) = call(rest_router(&fake), request("GET", "/test/nothing")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, json!({"message": "Missing Authentication Token"}));
    let (status, _, body) = call(rest_router(&fake), request("GET", "/prod/items/1")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, json!({"message": "Forbidden"}));
    assert!(fake.calls().is_empty());
}

fn websocket_router(fake: &Arc<FakeInvoker>) -> axum::Router {
    let m = manifest();
    let gateway = WebSocketGateway::new(
        "wsapi12345".into(),
        "test".into(),
        m.websocket.clone().unwrap_or_default(),
        Duration::from_millis(50),
        fake.clone(),
    );
    websocket::router(gateway)
}

/// A WebSocket handshake; `hyper::upgrade::on` gives the request the
/// upgrade handle hyper's server would (one that never completes here).
fn handshake() -> Request<Body> {
    let mut request = request("GET", "/test?room=1");
    for (name, value) in [
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ] {
        request.headers_mut().insert(
            http::HeaderName::from_static(name),
            http::HeaderValue::from_static(value),
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    request.extensions_mut().insert(on_upgrade);
    request
}

#[tokio::test]
async fn websocket_connect_runs_the_connect_route_and_takes_its_verdict() {
    let accept = FakeInvoker::new(Answer::Payload(json!({"statusCode": 200})));
    let (status, headers, _) = call(websocket_router(&accept), handshake()).await;
    assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        headers["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    let event = accept.event();
    assert_eq!(event["requestContext"]["eventType"], "CONNECT");
    assert_eq!(event["requestContext"]["routeKey"], "$connect");
    assert_eq!(event["queryStringParameters"], json!({"room": "1"}));

    let cases = [
        (
            Answer::Payload(json!({"statusCode": 401})),
            StatusCode::UNAUTHORIZED,
        ),
        (Answer::Payload(json!({})), StatusCode::BAD_GATEWAY),
        (Answer::FunctionError, StatusCode::INTERNAL_SERVER_ERROR),
        (Answer::TimedOut, StatusCode::GATEWAY_TIMEOUT),
    ];
    for (answer, expected) in cases {
        let fake = FakeInvoker::new(answer);
        let (status, _, _) = call(websocket_router(&fake), handshake()).await;
        assert_eq!(status, expected);
    }
}
