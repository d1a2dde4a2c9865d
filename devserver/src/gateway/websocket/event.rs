//! The Lambda proxy events of a WebSocket API, built with
//! `aws_lambda_events`' `ApiGatewayWebsocketProxyRequest` and then trimmed
//! to the keys API Gateway sends for each event type, which the type (one
//! struct for every variant, REST fields included) cannot say:
//!
//! - `CONNECT`: `headers`, `multiValueHeaders`, the query parameters when
//!   there are any, `requestContext` (with `messageId`,
//!   `disconnectStatusCode` and `disconnectReason` as `null`),
//!   `isBase64Encoded`. Capture:
//!   <https://gist.github.com/noid11/4aa8933d0b5cdbcc09d377c5d65d28c1>
//! - `MESSAGE`: `requestContext` (with `messageId`), `body`,
//!   `isBase64Encoded`; no headers. aws-lambda-go
//!   `events/testdata/apigw-websocket-request-send-message.json`.
//! - `DISCONNECT`: API Gateway's own `headers` (`Host`, `x-api-key`,
//!   `X-Forwarded-For`, `x-restapi`), `requestContext` with
//!   `disconnectStatusCode` and `disconnectReason`, `isBase64Encoded`.
//!   aws-lambda-go `events/testdata/apigw-websocket-request-disconnect.json`.

use aws_lambda_events::apigw::{
    ApiGatewayWebsocketProxyRequest, ApiGatewayWebsocketProxyRequestContext,
};
use http::HeaderMap;
use serde_json::{Map, Value, json};

use crate::gateway::rest::event::{parse_query, title_case};

/// Facts fixed for the life of a connection.
#[derive(Debug, Clone)]
pub struct ConnectionFacts {
    pub api_id: String,
    pub stage: String,
    pub connection_id: String,
    pub connected_at: chrono::DateTime<chrono::Utc>,
    /// The `Host` the client connected to (API Gateway: the API's domain).
    pub domain_name: String,
    pub source_ip: String,
    pub user_agent: Option<String>,
}

/// The ids of one event: API Gateway uses one value for `requestId` and
/// `extendedRequestId` on WebSocket APIs.
pub struct EventIds<'a> {
    pub request_id: &'a str,
    pub time: chrono::DateTime<chrono::Utc>,
}

pub enum EventKind<'a> {
    Connect {
        headers: &'a HeaderMap,
        raw_query: Option<&'a str>,
        trace_id: &'a str,
        local_port: u16,
    },
    Message {
        route_key: &'a str,
        message_id: &'a str,
        body: &'a str,
    },
    Disconnect {
        status_code: u16,
        reason: &'a str,
    },
}

const CONTEXT_KEYS: &[&str] = &[
    "routeKey",
    "eventType",
    "extendedRequestId",
    "requestTime",
    "messageDirection",
    "stage",
    "connectedAt",
    "requestTimeEpoch",
    "identity",
    "requestId",
    "domainName",
    "connectionId",
    "apiId",
];

pub fn build(c: &ConnectionFacts, ids: &EventIds<'_>, kind: &EventKind<'_>) -> Value {
    let (route_key, event_type) = match kind {
        EventKind::Connect { .. } => ("$connect", "CONNECT"),
        EventKind::Message { route_key, .. } => (*route_key, "MESSAGE"),
        EventKind::Disconnect { .. } => ("$disconnect", "DISCONNECT"),
    };
    let mut context = ApiGatewayWebsocketProxyRequestContext::default();
    context.route_key = Some(route_key.to_owned());
    context.event_type = Some(event_type.to_owned());
    context.extended_request_id = Some(ids.request_id.to_owned());
    context.request_id = Some(ids.request_id.to_owned());
    context.request_time = Some(ids.time.format("%d/%b/%Y:%H:%M:%S +0000").to_string());
    context.request_time_epoch = ids.time.timestamp_millis();
    context.message_direction = Some("IN".to_owned());
    context.stage = Some(c.stage.clone());
    context.connected_at = c.connected_at.timestamp_millis();
    context.domain_name = Some(c.domain_name.clone());
    context.connection_id = Some(c.connection_id.clone());
    context.apiid = Some(c.api_id.clone());
    context.identity.source_ip = Some(c.source_ip.clone());
    context.identity.user_agent = c.user_agent.clone();
    match kind {
        EventKind::Message { message_id, .. } => {
            context.message_id = Some((*message_id).to_owned());
        }
        EventKind::Disconnect {
            status_code,
            reason,
        } => {
            context.disconnect_status_code = Some(i64::from(*status_code));
            context.disconnect_reason = Some((*reason).to_owned());
        }
        EventKind::Connect { .. } => {}
    }
    let mut event = ApiGatewayWebsocketProxyRequest::default();
    event.request_context = context;
    event.is_base64_encoded = false;
    if let EventKind::Message { body, .. } = kind {
        event.body = Some((*body).to_owned());
    }

    let value = serde_json::to_value(&event).unwrap_or_else(|_| json!({}));
    let Value::Object(mut full) = value else {
        return value;
    };
    let mut out = Map::new();

    // requestContext: the keys API Gateway sends for this event type.
    if let Some(Value::Object(mut ctx)) = full.remove("requestContext") {
        let mut kept = Map::new();
        for key in CONTEXT_KEYS {
            if let Some(v) = ctx.remove(*key) {
                kept.insert((*key).to_owned(), v);
            }
        }
        match kind {
            EventKind::Connect { .. } => {
                // The capture has the whole identity block with nulls.
                for key in ["messageId", "disconnectStatusCode", "disconnectReason"] {
                    kept.insert(key.to_owned(), Value::Null);
                }
            }
            EventKind::Message { .. } => {
                kept.insert(
                    "messageId".to_owned(),
                    ctx.remove("messageId").unwrap_or(Value::Null),
                );
                kept.insert("identity".to_owned(), short_identity(c));
            }
            EventKind::Disconnect { .. } => {
                for key in ["disconnectStatusCode", "disconnectReason"] {
                    kept.insert(key.to_owned(), ctx.remove(key).unwrap_or(Value::Null));
                }
                kept.insert("identity".to_owned(), short_identity(c));
            }
        }
        out.insert("requestContext".to_owned(), Value::Object(kept));
    }

    match kind {
        EventKind::Connect {
            headers,
            raw_query,
            trace_id,
            local_port,
        } => {
            let pairs = connect_headers(headers, &c.source_ip, trace_id, *local_port);
            let (single, multi) = value_maps(&pairs);
            out.insert("headers".to_owned(), single);
            out.insert("multiValueHeaders".to_owned(), multi);
            let query = parse_query(raw_query.unwrap_or(""));
            if !query.is_empty() {
                let (single, multi) = value_maps(&query);
                out.insert("queryStringParameters".to_owned(), single);
                out.insert("multiValueQueryStringParameters".to_owned(), multi);
            }
        }
        EventKind::Disconnect { .. } => {
            let pairs: Vec<(String, String)> = vec![
                ("Host".to_owned(), c.domain_name.clone()),
                ("x-api-key".to_owned(), String::new()),
                ("X-Forwarded-For".to_owned(), String::new()),
                ("x-restapi".to_owned(), String::new()),
            ];
            let (single, multi) = value_maps(&pairs);
            out.insert("headers".to_owned(), single);
            out.insert("multiValueHeaders".to_owned(), multi);
        }
        EventKind::Message { .. } => {
            out.insert(
                "body".to_owned(),
                full.remove("body").unwrap_or(Value::Null),
            );
        }
    }
    out.insert(
        "isBase64Encoded".to_owned(),
        full.remove("isBase64Encoded").unwrap_or(Value::Bool(false)),
    );
    Value::Object(out)
}

fn short_identity(c: &ConnectionFacts) -> Value {
    let mut identity = Map::new();
    if let Some(agent) = &c.user_agent {
        identity.insert("userAgent".to_owned(), Value::String(agent.clone()));
    }
    identity.insert("sourceIp".to_owned(), Value::String(c.source_ip.clone()));
    Value::Object(identity)
}

/// The handshake's headers as API Gateway passes them to `$connect`: the
/// hop-by-hop `Connection` and `Upgrade` are consumed at the edge, which
/// adds the trace and forwarding headers.
fn connect_headers(
    headers: &HeaderMap,
    source_ip: &str,
    trace_id: &str,
    local_port: u16,
) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| *k != http::header::CONNECTION && *k != http::header::UPGRADE)
        .map(|(k, v)| {
            (
                title_case(k.as_str()),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut add = |name: &str, value: String| {
        if !pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
            pairs.push((name.to_owned(), value));
        }
    };
    add("X-Amzn-Trace-Id", trace_id.to_owned());
    add("X-Forwarded-For", source_ip.to_owned());
    add("X-Forwarded-Port", local_port.to_string());
    add("X-Forwarded-Proto", "http".to_owned());
    pairs
}

/// API Gateway's two views of name/value pairs (headers, query parameters):
/// each name's last value, and all of a name's values in order.
pub(crate) fn value_maps(pairs: &[(String, String)]) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, v) in pairs {
        single.insert(name.clone(), Value::String(v.clone()));
        match multi.get_mut(name) {
            Some(Value::Array(list)) => list.push(Value::String(v.clone())),
            _ => {
                multi.insert(name.clone(), json!([v]));
            }
        }
    }
    (Value::Object(single), Value::Object(multi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ConnectionFacts {
        ConnectionFacts {
            api_id: "abcd123456".into(),
            stage: "local".into(),
            connection_id: "R1kmxc2VNjMCFIA=".into(),
            connected_at: chrono::Utc::now(),
            domain_name: "127.0.0.1:4001".into(),
            source_ip: "127.0.0.1".into(),
            user_agent: Some("test/1".into()),
        }
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    }

    fn round_trips(event: &Value) {
        let parsed: ApiGatewayWebsocketProxyRequest = serde_json::from_value(event.clone())
            .expect("parses as ApiGatewayWebsocketProxyRequest");
        let again = serde_json::to_value(&parsed).expect("serialises");
        let _: ApiGatewayWebsocketProxyRequest = serde_json::from_value(again).expect("re-parses");
    }

    #[test]
    fn connect_event_has_headers_query_and_null_message_fields() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:4001".parse().expect("value"));
        headers.insert("connection", "Upgrade".parse().expect("value"));
        headers.insert("upgrade", "websocket".parse().expect("value"));
        headers.insert("sec-websocket-key", "abc==".parse().expect("value"));
        let ids = EventIds {
            request_id: "XfGLwFTktjMFsLg=",
            time: chrono::Utc::now(),
        };
        let event = build(
            &facts(),
            &ids,
            &EventKind::Connect {
                headers: &headers,
                raw_query: Some("token=a+b&x=1&x=2"),
                trace_id: "Root=1-abc",
                local_port: 4001,
            },
        );
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
        assert_eq!(event["headers"]["Sec-Websocket-Key"], "abc==");
        assert!(event["headers"].get("Connection").is_none());
        assert_eq!(event["headers"]["X-Forwarded-Port"], "4001");
        assert_eq!(event["queryStringParameters"]["token"], "a b");
        assert_eq!(
            event["multiValueQueryStringParameters"]["x"],
            json!(["1", "2"])
        );
        let ctx = &event["requestContext"];
        assert_eq!(ctx["eventType"], "CONNECT");
        assert_eq!(ctx["routeKey"], "$connect");
        assert!(ctx["messageId"].is_null() && ctx.get("messageId").is_some());
        assert!(ctx["disconnectStatusCode"].is_null());
        assert_eq!(ctx["requestId"], ctx["extendedRequestId"]);
        assert_eq!(ctx["messageDirection"], "IN");
        assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
        assert!(ctx.get("accountId").is_none() && ctx.get("resourcePath").is_none());
        round_trips(&event);
    }

    #[test]
    fn message_event_has_no_headers() {
        let ids = EventIds {
            request_id: "R1knPH17NjMFftw=",
            time: chrono::Utc::now(),
        };
        let event = build(
            &facts(),
            &ids,
            &EventKind::Message {
                route_key: "$default",
                message_id: "R1knPc2ntjMCFIA=",
                body: "{\"a\":1}",
            },
        );
        assert_eq!(keys(&event), ["body", "isBase64Encoded", "requestContext"]);
        let ctx = &event["requestContext"];
        assert_eq!(ctx["messageId"], "R1knPc2ntjMCFIA=");
        assert!(ctx.get("disconnectStatusCode").is_none());
        assert_eq!(
            keys(&ctx["identity"]),
            ["sourceIp".to_owned(), "userAgent".to_owned()]
        );
        round_trips(&event);
    }

    #[test]
    fn disconnect_event_has_gateway_headers_and_status() {
        let ids = EventIds {
            request_id: "R1koeHsUtjMFbRw=",
            time: chrono::Utc::now(),
        };
        let event = build(
            &facts(),
            &ids,
            &EventKind::Disconnect {
                status_code: 1005,
                reason: "Client-side close frame status not set",
            },
        );
        assert_eq!(
            keys(&event),
            [
                "headers",
                "isBase64Encoded",
                "multiValueHeaders",
                "requestContext"
            ]
        );
        assert_eq!(event["headers"]["x-restapi"], "");
        let ctx = &event["requestContext"];
        assert_eq!(ctx["disconnectStatusCode"], 1005);
        assert!(ctx.get("messageId").is_none());
        round_trips(&event);
    }
}
