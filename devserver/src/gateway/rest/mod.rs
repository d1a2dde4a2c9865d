//! API Gateway REST API with Lambda proxy integrations: stage in the path,
//! routes from `dev.toml`, proxy events in, proxy responses out, and API
//! Gateway's own answers (403, 413, 502, 504) where it gives them.

pub mod event;
pub mod request_checks;
pub mod response;
pub mod routes;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::lambda::{InvokeRequest, Invoker, LambdaError};
use crate::manifest::{ApiSettings, Cors, Route};
use routes::{RouteMatch, RouteTable, split_path};

/// API Gateway's payload limit for REST APIs.
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html>
pub const MAX_REQUEST_BODY: usize = 10 * 1024 * 1024;

pub mod headers {
    pub const REQUEST_ID: &str = "x-amzn-requestid";
    pub const APIGW_ID: &str = "x-amz-apigw-id";
    pub const TRACE_ID: &str = "x-amzn-trace-id";
    pub const ERROR_TYPE: &str = "x-amzn-errortype";
    /// Not AWS: set by the devserver when a function's latest source failed
    /// to build and its previous version answered.
    pub const BUILD_ERROR: &str = "x-woocom-build-error";
}

/// The API as deployed: settings and routes, swapped whole on reload.
pub struct Deployment {
    pub settings: ApiSettings,
    pub routes: RouteTable,
    pub deployment_id: String,
}

pub struct RestApi {
    pub api_id: String,
    pub account_id: String,
    /// The listener's port, for `X-Forwarded-Port`.
    pub port: std::sync::atomic::AtomicU16,
    host: Arc<dyn Invoker>,
    deployment: RwLock<Arc<Deployment>>,
}

impl RestApi {
    pub fn new(
        api_id: String,
        account_id: String,
        settings: ApiSettings,
        routes: Vec<Route>,
        host: Arc<dyn Invoker>,
    ) -> Arc<RestApi> {
        Arc::new(RestApi {
            api_id,
            account_id,
            port: std::sync::atomic::AtomicU16::new(0),
            host,
            deployment: RwLock::new(Arc::new(Deployment {
                settings,
                routes: RouteTable::new(routes),
                deployment_id: short_id(6),
            })),
        })
    }

    pub fn deployment(&self) -> Arc<Deployment> {
        self.deployment
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Deploys new settings and routes; requests in flight finish on the
    /// old ones.
    pub fn redeploy(&self, settings: ApiSettings, routes: Vec<Route>) {
        let next = Arc::new(Deployment {
            settings,
            routes: RouteTable::new(routes),
            deployment_id: short_id(6),
        });
        *self
            .deployment
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
    }
}

pub fn router(api: Arc<RestApi>) -> Router {
    Router::new().fallback(handle).with_state(api)
}

/// An answer API Gateway gives itself (a "gateway response").
struct GatewayResponse {
    status: StatusCode,
    error_type: &'static str,
    body: &'static str,
}

const MISSING_AUTHENTICATION_TOKEN: GatewayResponse = GatewayResponse {
    status: StatusCode::FORBIDDEN,
    error_type: "MissingAuthenticationTokenException",
    body: r#"{"message":"Missing Authentication Token"}"#,
};
const FORBIDDEN: GatewayResponse = GatewayResponse {
    status: StatusCode::FORBIDDEN,
    error_type: "ForbiddenException",
    body: r#"{"message":"Forbidden"}"#,
};
const REQUEST_TOO_LARGE: GatewayResponse = GatewayResponse {
    status: StatusCode::PAYLOAD_TOO_LARGE,
    error_type: "RequestTooLargeException",
    body: r#"{"message":"Request Too Long"}"#,
};
const INTERNAL_SERVER_ERROR: GatewayResponse = GatewayResponse {
    status: StatusCode::BAD_GATEWAY,
    error_type: "InternalServerErrorException",
    body: r#"{"message": "Internal server error"}"#,
};
const INTEGRATION_TIMEOUT: GatewayResponse = GatewayResponse {
    status: StatusCode::GATEWAY_TIMEOUT,
    error_type: "InternalServerErrorException",
    body: r#"{"message": "Endpoint request timed out"}"#,
};

struct Ids {
    request_id: String,
    extended_request_id: String,
    trace_id: String,
}

fn gateway_response(r: &GatewayResponse, ids: &Ids, cors: Option<&Cors>) -> Response {
    let mut response = (r.status, r.body).into_response();
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert(headers::ERROR_TYPE, HeaderValue::from_static(r.error_type));
    add_ids(h, ids);
    if let Some(cors) = cors {
        // "Enable CORS" also puts the CORS headers on DEFAULT_4XX/5XX.
        add_cors_origin(h, cors);
    }
    response
}

fn add_ids(h: &mut http::HeaderMap, ids: &Ids) {
    for (name, value) in [
        (headers::REQUEST_ID, &ids.request_id),
        (headers::APIGW_ID, &ids.extended_request_id),
        (headers::TRACE_ID, &ids.trace_id),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
}

fn add_cors_origin(h: &mut http::HeaderMap, cors: &Cors) {
    if let Ok(v) = HeaderValue::from_str(&cors.allow_origin) {
        h.insert("access-control-allow-origin", v);
    }
}

/// The OPTIONS mock integration that "Enable CORS" creates.
fn preflight(cors: &Cors, ids: &Ids) -> Response {
    let mut response = (StatusCode::OK, "").into_response();
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    add_cors_origin(h, cors);
    for (name, value) in [
        ("access-control-allow-methods", cors.allow_methods.join(",")),
        ("access-control-allow-headers", cors.allow_headers.join(",")),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    if let Some(age) = cors.max_age {
        h.insert("access-control-max-age", HeaderValue::from(age));
    }
    add_ids(h, ids);
    response
}

async fn handle(
    State(api): State<Arc<RestApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let deployment = api.deployment();
    let cors = deployment.settings.cors.as_ref();
    let trace_root = crate::lambda::new_trace_id();
    let ids = Ids {
        request_id: uuid::Uuid::new_v4().to_string(),
        extended_request_id: extended_request_id(),
        trace_id: trace_root.split(';').next().unwrap_or_default().to_owned(),
    };
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let full_path = parts.uri.path().to_owned();

    if let Some(refusal) = request_checks::check(&parts) {
        tracing::info!(target: "gateway", %method, path = %full_path, "{}: refused before routing", refusal.status);
        return gateway_response(refusal, &ids, cors);
    }

    // `/{stage}/rest-of-path`; anything else is not this API.
    let stage = &deployment.settings.stage;
    let rest = full_path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage.as_str()))
        .filter(|r| r.is_empty() || r.starts_with('/'));
    let Some(rest) = rest else {
        return gateway_response(&FORBIDDEN, &ids, cors);
    };
    let path = if rest.is_empty() { "/" } else { rest };

    let content_length = crate::listener::content_length(&parts.headers);
    let body = match crate::listener::read_body(body, content_length, MAX_REQUEST_BODY).await {
        Ok(body) => body,
        Err(e) => {
            let refusal = request_checks::body_refusal(&e);
            tracing::info!(target: "gateway", %method, path = %full_path, "{}: request body: {e}", refusal.status);
            return gateway_response(refusal, &ids, cors);
        }
    };

    let segments = split_path(path);
    let found = deployment.routes.find(method.as_str(), &segments);
    // "Enable CORS" adds an OPTIONS method to every resource; an explicit
    // method beats ANY, so preflights never reach an ANY route's function.
    let preflight_answer = match (&found, cors) {
        (RouteMatch::Found { route, .. }, Some(cors)) if route.method == "ANY" => Some(cors),
        (RouteMatch::NoMethod { .. }, Some(cors)) => Some(cors),
        _ => None,
    };
    if method == Method::OPTIONS
        && let Some(cors) = preflight_answer
    {
        return preflight(cors, &ids);
    }
    let (route, params) = match found {
        RouteMatch::Found { route, params } => (route, params),
        RouteMatch::NoMethod { .. } | RouteMatch::NotFound => {
            tracing::info!(target: "gateway", %method, path = %full_path, "403 no route");
            return gateway_response(&MISSING_AUTHENTICATION_TOKEN, &ids, cors);
        }
    };

    let resource_path = route.path.to_string();
    let facts = event::RequestFacts {
        method: &method,
        path,
        raw_query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip().to_string(),
        local_port: api.port.load(std::sync::atomic::Ordering::Relaxed),
        request_id: &ids.request_id,
        extended_request_id: &ids.extended_request_id,
        trace_id: &ids.trace_id,
        time: chrono::Utc::now(),
    };
    let api_facts = event::ApiFacts {
        api_id: &api.api_id,
        account_id: &api.account_id,
        stage,
        deployment_id: &deployment.deployment_id,
        resource_id: resource_id(&resource_path),
        resource_path,
        path_params: &params,
        stage_variables: &deployment.settings.stage_variables,
        binary_media_types: &deployment.settings.binary_media_types,
    };
    let payload = bytes::Bytes::from(event::build(&facts, &api_facts));

    // A function being rebuilt holds its requests; the integration timeout
    // starts once the new version is there.
    let timeout = Duration::from_millis(deployment.settings.integration_timeout_ms);
    let outcome = api
        .host
        .invoke(
            &route.function,
            InvokeRequest {
                payload,
                trace_id: Some(trace_root),
                caller_timeout: Some(timeout),
                ..InvokeRequest::default()
            },
        )
        .await;
    let function = route.function.as_str();
    let result = match outcome {
        Err(LambdaError::CallerTimedOut(_)) => {
            tracing::warn!(target: "gateway", function, request_id = %ids.request_id,
                "{method} {full_path} -> 504: integration timed out after {timeout:?}");
            return gateway_response(&INTEGRATION_TIMEOUT, &ids, cors);
        }
        Err(e) => {
            tracing::warn!(target: "gateway", function, request_id = %ids.request_id,
                "{method} {full_path} -> 502: {e}");
            return gateway_response(&INTERNAL_SERVER_ERROR, &ids, cors);
        }
        Ok(result) => result,
    };
    if result.function_error.is_some() {
        tracing::warn!(target: "gateway", function, request_id = %result.request_id,
            "{method} {full_path} -> 502: Lambda execution failed due to customer function error: {}",
            String::from_utf8_lossy(&result.payload));
        return gateway_response(&INTERNAL_SERVER_ERROR, &ids, cors);
    }
    let accept_is_binary = parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| event::is_binary(first, &deployment.settings.binary_media_types));
    let proxy = match response::parse(&result.payload, accept_is_binary) {
        Ok(p) => p,
        Err(problem) => {
            tracing::warn!(target: "gateway", function, request_id = %result.request_id,
                "{method} {full_path} -> 502: Malformed Lambda proxy response: {problem}");
            return gateway_response(&INTERNAL_SERVER_ERROR, &ids, cors);
        }
    };
    tracing::info!(target: "gateway", function, request_id = %result.request_id,
        "{method} {full_path} -> {} ({:.1} ms)", proxy.status, started.elapsed().as_secs_f64() * 1000.0);

    let mut out = Response::new(Body::from(proxy.body));
    *out.status_mut() = StatusCode::from_u16(proxy.status).unwrap_or(StatusCode::OK);
    let h = out.headers_mut();
    for (name, values) in &proxy.headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        if name == http::header::SET_COOKIE {
            for v in values {
                if let Ok(v) = HeaderValue::from_str(v) {
                    h.append(name.clone(), v);
                }
            }
        } else if let Ok(v) = HeaderValue::from_str(&values.join(", ")) {
            h.insert(name, v);
        }
    }
    if !h.contains_key(http::header::CONTENT_TYPE) {
        h.insert("content-type", HeaderValue::from_static("application/json"));
    }
    add_ids(h, &ids);
    if let Some(error) = api.host.build_error(function) {
        // Local only: the function's last edit did not compile and this is
        // the previous version answering. Say so where curl and the browser
        // show it.
        // Header values are visible ASCII: anything else in the compiler's
        // line (quotes, paths) becomes `?`.
        let line: String = error
            .lines()
            .next()
            .unwrap_or("build failed")
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&format!("previous version serving; {line}")) {
            h.insert(headers::BUILD_ERROR, v);
        }
    }
    out
}

/// API Gateway's extended request id: 16 characters, base64-like.
fn extended_request_id() -> String {
    use base64::Engine;
    let bytes = uuid::Uuid::new_v4();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes.as_bytes()[..11]);
    format!("{}=", &encoded[..15])
}

/// A stable resource id per resource path, as API Gateway gives each
/// resource a 6-character id.
fn resource_id(path: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    base36(hash, 6)
}

fn short_id(len: usize) -> String {
    base36(uuid::Uuid::new_v4().as_u64_pair().0, len)
}

pub fn base36(mut n: u64, len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}
