//! API Gateway WebSocket API with Lambda proxy integrations: one listener
//! serves the connection URL `ws://127.0.0.1:<port>/<stage>` and the
//! `@connections` management API under `/<stage>/@connections/{id}`, as
//! the API's own domain does in AWS.
//!
//! - `$connect` runs before the handshake is answered: a non-2xx
//!   `statusCode`, a function error or a timeout refuses the upgrade with an
//!   HTTP status, so the client never sees the connection.
//! - Each text message is routed by the route selection expression (falling
//!   back to `$default`) and handled in its own task, as API Gateway invokes
//!   integrations concurrently; two-way routes send the function's `body`
//!   back.
//! - `$disconnect` is invoked once the socket is gone, best effort.
//! - AWS's limits: 32 KB frames and 128 KB messages (close 1009), binary
//!   frames refused (close 1003), idle timeout and maximum duration.
//!   <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html>

mod connection;
pub mod event;
pub mod management;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use crate::lambda::{InvokeRequest, InvokeResponse, Invoker, LambdaError};
use crate::manifest::websocket::{CONNECT, DEFAULT, DISCONNECT};
use crate::manifest::{WebSocketApi, WebSocketRoute};
pub use connection::{OUTBOUND_BUFFER_BYTES, WRITE_TIMEOUT};
use event::{ConnectionFacts, EventIds, EventKind};

/// API Gateway's largest WebSocket frame, in and out.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// API Gateway's largest message (several frames), in and out.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// Close codes API Gateway uses.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const NO_STATUS: u16 = 1005;
    pub const ABNORMAL: u16 = 1006;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
}

/// One connected client, as the management API and the routes see it.
pub(crate) struct Connection {
    facts: ConnectionFacts,
    /// Last client activity (ms since the epoch): `LastActiveAt`.
    last_active_ms: AtomicI64,
    /// Never waits on the client (see [`connection`]).
    outbox: Arc<connection::Outbox>,
}

/// What the rest of the service asks a connection's task to do.
pub(crate) enum Outbound {
    Text(String),
    Binary(bytes::Bytes),
}

/// The WebSocket API of one stack.
pub struct WebSocketGateway {
    pub api_id: String,
    stage: String,
    /// Routes and timeouts, swapped whole when dev.toml changes
    /// ([`WebSocketGateway::redeploy`]); open connections keep their
    /// timeouts, their next message takes the new routes.
    settings: RwLock<Arc<WebSocketApi>>,
    integration_timeout: Duration,
    host: Arc<dyn Invoker>,
    /// The listener's port, for `X-Forwarded-Port`.
    pub port: AtomicU16,
    /// Established connections by id. A connection is here from the end of
    /// its handshake until its socket is closed; `@connections` answers 410
    /// for anything else, including a connection still in `$connect`.
    connections: Mutex<HashMap<String, Arc<Connection>>>,
    /// Set once on shutdown: every connection closes with 1001.
    stopping: watch::Sender<bool>,
    /// Per connection: bytes queued for a client that does not read, and
    /// how long one message may take to be written (see [`connection`]).
    outbound_bytes: AtomicUsize,
    write_timeout_ms: AtomicU64,
}

impl WebSocketGateway {
    pub fn new(
        api_id: String,
        stage: String,
        settings: WebSocketApi,
        integration_timeout: Duration,
        host: Arc<dyn Invoker>,
    ) -> Arc<WebSocketGateway> {
        Arc::new(WebSocketGateway {
            api_id,
            stage,
            settings: RwLock::new(Arc::new(settings)),
            integration_timeout,
            host,
            port: AtomicU16::new(0),
            connections: Mutex::new(HashMap::new()),
            stopping: watch::channel(false).0,
            outbound_bytes: AtomicUsize::new(OUTBOUND_BUFFER_BYTES),
            write_timeout_ms: AtomicU64::new(WRITE_TIMEOUT.as_millis() as u64),
        })
    }

    /// Sets the outbound buffer and write timeout of connections opened
    /// from now on.
    pub fn set_outbound_limits(&self, bytes: usize, write_timeout: Duration) {
        self.outbound_bytes.store(bytes, Ordering::Relaxed);
        let ms = u64::try_from(write_timeout.as_millis()).unwrap_or(u64::MAX);
        self.write_timeout_ms.store(ms, Ordering::Relaxed);
    }

    fn outbound_limits(&self) -> (usize, Duration) {
        (
            self.outbound_bytes.load(Ordering::Relaxed),
            Duration::from_millis(self.write_timeout_ms.load(Ordering::Relaxed)),
        )
    }

    pub fn settings(&self) -> Arc<WebSocketApi> {
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Deploys new routes and settings (a dev.toml edit).
    pub fn redeploy(&self, settings: WebSocketApi) {
        *self
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(settings);
    }

    /// Ids of the connections open now.
    pub fn connection_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Connection>>> {
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn connection(&self, id: &str) -> Option<Arc<Connection>> {
        self.lock().get(id).cloned()
    }

    /// Closes every connection (1001 Going away) without `$disconnect`
    /// (the functions are stopping too), and waits briefly for the sockets.
    pub async fn shutdown(&self) {
        self.stopping.send_replace(true);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !self.lock().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Signals shutdown without waiting (for `Drop`).
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    fn message_route(&self, message: &str) -> Option<WebSocketRoute> {
        let settings = self.settings();
        let selected = settings
            .route_selection_expression
            .evaluate(message)
            .unwrap_or_else(|| DEFAULT.to_owned());
        let custom = settings.routes.iter().find(|r| {
            r.route_key == selected && r.route_key != CONNECT && r.route_key != DISCONNECT
        });
        custom.or_else(|| settings.route(DEFAULT)).cloned()
    }

    /// Invokes a route's function; the outer error is the integration
    /// timeout (counted once the function is ready to run).
    async fn invoke(
        &self,
        function: &str,
        event: &serde_json::Value,
    ) -> Result<Result<InvokeResponse, LambdaError>, IntegrationTimedOut> {
        let payload = bytes::Bytes::from(serde_json::to_vec(event).unwrap_or_default());
        let request = InvokeRequest {
            payload,
            caller_timeout: Some(self.integration_timeout),
            ..InvokeRequest::default()
        };
        match self.host.invoke(function, request).await {
            Err(LambdaError::CallerTimedOut(_)) => Err(IntegrationTimedOut),
            other => Ok(other),
        }
    }
}

/// API Gateway's integration timeout passed before the function answered.
struct IntegrationTimedOut;

pub fn router(gateway: Arc<WebSocketGateway>) -> Router {
    Router::new().fallback(handle).with_state(gateway)
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [("content-type", "application/json")],
        r#"{"message":"Forbidden"}"#,
    )
        .into_response()
}

async fn handle(
    State(gateway): State<Arc<WebSocketGateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let path = request.uri().path().to_owned();
    let rest = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(gateway.stage.as_str()))
        .filter(|r| r.is_empty() || r.starts_with('/'));
    let Some(rest) = rest else {
        return forbidden();
    };
    if let Some(id) = rest.strip_prefix("/@connections/") {
        return management::handle(gateway.clone(), id.to_owned(), request).await;
    }
    if !(rest.is_empty() || rest == "/") || !is_upgrade(&request) {
        return forbidden();
    }
    connect(gateway, peer, request).await
}

fn is_upgrade(request: &Request) -> bool {
    let h = request.headers();
    let has = |name: http::header::HeaderName, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    request.method() == http::Method::GET
        && has(http::header::UPGRADE, "websocket")
        && has(http::header::CONNECTION, "upgrade")
        && h.contains_key(http::header::SEC_WEBSOCKET_KEY)
}

/// An id as API Gateway writes connection, request and message ids:
/// 15 base64-like characters and `=` (`R1kmxc2VNjMCFIA=`). Only letters
/// and digits, so ids need no escaping in a URL path.
pub fn new_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
    let mut n = u128::from(a) << 64 | u128::from(b);
    let mut id = String::with_capacity(16);
    for _ in 0..15 {
        id.push(char::from(ALPHABET[(n % 62) as usize]));
        n /= 62;
    }
    id.push('=');
    id
}

/// How `$connect` answered.
enum Verdict {
    Accept { subprotocol: Option<HeaderValue> },
    Reject(StatusCode),
}

async fn connect(
    gateway: Arc<WebSocketGateway>,
    peer: SocketAddr,
    mut request: Request,
) -> Response {
    let headers = request.headers().clone();
    if headers
        .get(http::header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        let mut response = StatusCode::BAD_REQUEST.into_response();
        response.headers_mut().insert(
            http::header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    }
    // A key that is not base64 of 16 bytes is a bad handshake (RFC 6455
    // §4.2.1): refused before `$connect` runs.
    if !headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .is_some_and(|k| connection::is_valid_key(k.as_bytes()))
    {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return forbidden();
    };
    let header = |name: http::header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let facts = ConnectionFacts {
        api_id: gateway.api_id.clone(),
        stage: gateway.stage.clone(),
        connection_id: new_id(),
        connected_at: chrono::Utc::now(),
        domain_name: header(http::header::HOST).unwrap_or_default(),
        source_ip: peer.ip().to_string(),
        user_agent: header(http::header::USER_AGENT),
    };

    let verdict = match gateway.settings().route(CONNECT).cloned() {
        None => Verdict::Accept { subprotocol: None },
        Some(route) => {
            let request_id = new_id();
            let trace = crate::lambda::new_trace_id();
            let event = event::build(
                &facts,
                &EventIds {
                    request_id: &request_id,
                    time: chrono::Utc::now(),
                },
                &EventKind::Connect {
                    headers: &headers,
                    raw_query: request.uri().query(),
                    trace_id: trace.split(';').next().unwrap_or_default(),
                    local_port: gateway.port.load(Ordering::Relaxed),
                },
            );
            connect_verdict(&gateway, &route, &facts, &event).await
        }
    };
    let subprotocol = match verdict {
        Verdict::Reject(status) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = status;
            return response;
        }
        Verdict::Accept { subprotocol } => subprotocol,
    };

    let Some(key) = headers.get(http::header::SEC_WEBSOCKET_KEY) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("upgrade"),
    );
    h.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = subprotocol {
        h.insert(http::header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    tokio::spawn(connection::run(gateway, facts, on_upgrade));
    response
}

/// Runs `$connect` and reads its answer as API Gateway does: 2xx accepts
/// (a `Sec-WebSocket-Protocol` header picks the subprotocol); another
/// status refuses the handshake with it; a function error, a malformed
/// answer or a timeout refuses it with 500 / 502 / 504.
async fn connect_verdict(
    gateway: &WebSocketGateway,
    route: &WebSocketRoute,
    facts: &ConnectionFacts,
    event: &serde_json::Value,
) -> Verdict {
    let id = &facts.connection_id;
    let function = route.function.as_str();
    let result = match gateway.invoke(function, event).await {
        Err(_) => {
            tracing::warn!(target: "gateway", function, connection_id = %id,
                "$connect -> 504: integration timed out after {:?}", gateway.integration_timeout);
            return Verdict::Reject(StatusCode::GATEWAY_TIMEOUT);
        }
        Ok(Err(e)) => {
            tracing::warn!(target: "gateway", function, connection_id = %id, "$connect -> 500: {e}");
            return Verdict::Reject(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Ok(Ok(result)) => result,
    };
    if result.function_error.is_some() {
        tracing::warn!(target: "gateway", function, connection_id = %id, request_id = %result.request_id,
            "$connect -> 500: Lambda execution failed due to customer function error: {}",
            String::from_utf8_lossy(&result.payload));
        return Verdict::Reject(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let answer: serde_json::Value = serde_json::from_slice(&result.payload).unwrap_or_default();
    let status = answer.get("statusCode").and_then(|s| {
        s.as_u64()
            .or_else(|| s.as_str().and_then(|s| s.parse().ok()))
    });
    let Some(status) = status
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        tracing::warn!(target: "gateway", function, connection_id = %id, request_id = %result.request_id,
            "$connect -> 502: Malformed Lambda proxy response (no statusCode)");
        return Verdict::Reject(StatusCode::BAD_GATEWAY);
    };
    if !status.is_success() {
        tracing::info!(target: "gateway", function, connection_id = %id, request_id = %result.request_id,
            "$connect -> {status}: connection refused by the function");
        return Verdict::Reject(status);
    }
    let subprotocol = answer
        .get("headers")
        .and_then(|h| h.as_object())
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol"))
        })
        .and_then(|(_, v)| v.as_str())
        .and_then(|v| HeaderValue::from_str(v).ok());
    tracing::info!(target: "gateway", function, connection_id = %id, request_id = %result.request_id,
        "$connect -> {status}");
    Verdict::Accept { subprotocol }
}

/// The body of an error API Gateway sends on the socket itself.
fn socket_error(message: &str, connection_id: &str, request_id: &str) -> String {
    serde_json::json!({
        "message": message,
        "connectionId": connection_id,
        "requestId": request_id,
    })
    .to_string()
}

/// Routes and runs one client message; answers on the socket what API
/// Gateway would: the body of a two-way route, or its error objects.
async fn handle_message(gateway: Arc<WebSocketGateway>, connection: Arc<Connection>, text: String) {
    let id = connection.facts.connection_id.clone();
    let request_id = new_id();
    let send = |text: String| {
        // Never waits: a client that does not read is closed instead.
        let _ = connection.outbox.push(Outbound::Text(text));
        std::future::ready(())
    };
    let Some(route) = gateway.message_route(&text) else {
        tracing::info!(target: "gateway", connection_id = %id, "message -> no route and no $default: Forbidden");
        send(socket_error("Forbidden", &id, &request_id)).await;
        return;
    };
    let message_id = new_id();
    let event = event::build(
        &connection.facts,
        &EventIds {
            request_id: &request_id,
            time: chrono::Utc::now(),
        },
        &EventKind::Message {
            route_key: &route.route_key,
            message_id: &message_id,
            body: &text,
        },
    );
    let function = route.function.as_str();
    let route_key = route.route_key.as_str();
    let result = match gateway.invoke(function, &event).await {
        Err(_) => {
            tracing::warn!(target: "gateway", function, connection_id = %id,
                "{route_key}: integration timed out after {:?}", gateway.integration_timeout);
            send(socket_error("Endpoint request timed out", &id, &request_id)).await;
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(target: "gateway", function, connection_id = %id, "{route_key}: {e}");
            send(socket_error("Internal server error", &id, &request_id)).await;
            return;
        }
        Ok(Ok(result)) => result,
    };
    if result.function_error.is_some() {
        tracing::warn!(target: "gateway", function, connection_id = %id, request_id = %result.request_id,
            "{route_key}: Lambda execution failed due to customer function error: {}",
            String::from_utf8_lossy(&result.payload));
        send(socket_error("Internal server error", &id, &request_id)).await;
        return;
    }
    tracing::info!(target: "gateway", function, connection_id = %id, request_id = %result.request_id,
        "{route_key} ({} bytes)", text.len());
    if !route.two_way {
        return;
    }
    let answer: serde_json::Value = serde_json::from_slice(&result.payload).unwrap_or_default();
    match answer.get("body") {
        Some(serde_json::Value::String(body)) => send(body.clone()).await,
        Some(serde_json::Value::Null) | None => {}
        Some(other) => send(other.to_string()).await,
    }
}

/// Runs `$disconnect`, best effort: its result goes nowhere.
async fn handle_disconnect(
    gateway: Arc<WebSocketGateway>,
    facts: ConnectionFacts,
    code: u16,
    reason: String,
) {
    let Some(route) = gateway.settings().route(DISCONNECT).cloned() else {
        return;
    };
    let request_id = new_id();
    let event = event::build(
        &facts,
        &EventIds {
            request_id: &request_id,
            time: chrono::Utc::now(),
        },
        &EventKind::Disconnect {
            status_code: code,
            reason: &reason,
        },
    );
    let function = route.function.as_str();
    let id = &facts.connection_id;
    match gateway.invoke(function, &event).await {
        Ok(Ok(r)) if r.function_error.is_none() => {
            tracing::info!(target: "gateway", function, connection_id = %id, request_id = %r.request_id,
                "$disconnect ({code})");
        }
        Ok(Ok(r)) => {
            tracing::warn!(target: "gateway", function, connection_id = %id, request_id = %r.request_id,
                "$disconnect failed: {}", String::from_utf8_lossy(&r.payload));
        }
        Ok(Err(e)) => {
            tracing::warn!(target: "gateway", function, connection_id = %id, "$disconnect: {e}")
        }
        Err(_) => {
            tracing::warn!(target: "gateway", function, connection_id = %id, "$disconnect timed out")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_api_gateway_ids() {
        let id = new_id();
        assert_eq!(id.len(), 16);
        assert!(id.ends_with('='));
        assert!(id[..15].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(new_id(), id);
    }
}
