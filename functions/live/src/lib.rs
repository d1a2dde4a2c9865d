//! The WebSocket API's routes (see functions/README.md, "Live updates"):
//!
//! - `$connect` subscribes the connection to the topics of the `topics`
//!   query string parameter (comma-separated, `catalogue` when absent); a
//!   bad list answers 400, which makes API Gateway refuse the handshake.
//! - `subscribe` (`{"action": "subscribe", "topics": [...]}`) replaces the
//!   connection's topics and answers `{"type": "subscribed", "topics"}`.
//! - `$disconnect` removes every item of the connection.
//! - `$default` answers an error naming the action it does not know.
//!
//! Route answers of two-way routes go back to the client as the `body`;
//! errors there take the REST API's error shape under `{"type": "error"}`.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use woocom_domain::live::{self, ConnectionRepo, LiveMessage, Topic, WireError};
use woocom_domain::{ApiError, aws};

/// Route keys, as dev.toml and API Gateway name them.
pub mod route {
    pub const CONNECT: &str = "$connect";
    pub const DISCONNECT: &str = "$disconnect";
    pub const SUBSCRIBE: &str = "subscribe";
}

/// The query string parameter `$connect` reads the topics from.
pub const TOPICS_PARAMETER: &str = "topics";

pub struct Handler {
    pub connections: ConnectionRepo,
}

impl Handler {
    pub async fn from_env() -> Result<Handler, ApiError> {
        let table = aws::env("CONNECTIONS_TABLE")?;
        Ok(Handler {
            connections: ConnectionRepo::new(aws::dynamodb().await, table),
        })
    }
}

/// What one WebSocket event asks of the connections table.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Connect {
        connection_id: String,
        topics: Vec<Topic>,
        expires_at: i64,
    },
    Subscribe {
        connection_id: String,
        topics: Vec<Topic>,
        expires_at: i64,
    },
    Disconnect {
        connection_id: String,
    },
}

/// The body of a `subscribe` message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeMessage {
    #[serde(rename = "action")]
    _action: String,
    topics: Vec<String>,
}

/// Reads the event into an [`Action`], or the error to answer with.
pub fn action(event: &ApiGatewayWebsocketProxyRequest, now_secs: i64) -> Result<Action, ApiError> {
    let context = &event.request_context;
    let connection_id = context
        .connection_id
        .clone()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::bad_request("the event names no connection"))?;
    let expires_at = live::expires_at(context.connected_at, now_secs);
    match context.route_key.as_deref().unwrap_or_default() {
        route::CONNECT => {
            let topics = match event.query_string_parameters.first(TOPICS_PARAMETER) {
                None => vec![Topic::Catalogue],
                Some(list) => Topic::parse_comma_list(list)?,
            };
            Ok(Action::Connect {
                connection_id,
                topics,
                expires_at,
            })
        }
        route::DISCONNECT => Ok(Action::Disconnect { connection_id }),
        route::SUBSCRIBE => {
            let body = event.body.as_deref().unwrap_or_default();
            let message: SubscribeMessage = serde_json::from_str(body).map_err(|e| {
                ApiError::bad_request(format!(
                    "expected {{\"action\": \"subscribe\", \"topics\": [\"catalogue\", \"order:<orderId>\"]}}: {e}"
                ))
            })?;
            let topics = Topic::parse_list(message.topics.iter().map(String::as_str))?;
            Ok(Action::Subscribe {
                connection_id,
                topics,
                expires_at,
            })
        }
        _ => Err(unknown_action(event.body.as_deref().unwrap_or_default())),
    }
}

/// `$default`'s answer: what was sent and what the API understands.
fn unknown_action(body: &str) -> ApiError {
    let sent = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("action").cloned());
    let what = match sent {
        Some(serde_json::Value::String(action)) => format!("unknown action `{action}`"),
        Some(other) => format!("unknown action {other}"),
        None => "a message needs an `action`".to_owned(),
    };
    ApiError::bad_request(format!(
        "{what}: send {{\"action\": \"subscribe\", \"topics\": [...]}}"
    ))
}

/// Carries out the action; a `subscribe` answers the topics it set.
pub async fn run(handler: &Handler, action: Action) -> Result<Option<LiveMessage>, ApiError> {
    match action {
        Action::Connect {
            connection_id,
            topics,
            expires_at,
        } => {
            handler
                .connections
                .subscribe(&connection_id, &topics, expires_at)
                .await?;
            Ok(None)
        }
        Action::Subscribe {
            connection_id,
            topics,
            expires_at,
        } => {
            handler
                .connections
                .replace(&connection_id, &topics, expires_at)
                .await?;
            Ok(Some(LiveMessage::Subscribed { topics }))
        }
        Action::Disconnect { connection_id } => {
            handler
                .connections
                .remove_connection(&connection_id)
                .await?;
            Ok(None)
        }
    }
}

pub async fn handle(
    handler: &Handler,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let request = event.payload;
    let outcome = match action(&request, live::now_secs()) {
        Ok(action) => run(handler, action).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &outcome {
        if e.status >= 500 {
            tracing::error!(status = e.status, "{}", e.message);
        } else {
            tracing::info!(status = e.status, "{}", e.message);
        }
    }
    Ok(respond(outcome))
}

/// The proxy response: 200 with the message as the body, or the error's
/// status with `{"type": "error", "error": {...}}`. On `$connect` a
/// non-2xx status refuses the connection.
pub fn respond(outcome: Result<Option<LiveMessage>, ApiError>) -> ApiGatewayProxyResponse {
    let (status, message) = match outcome {
        Ok(message) => (200, message),
        Err(e) => (
            i64::from(e.status),
            Some(LiveMessage::Error {
                error: WireError::from(&e),
            }),
        ),
    };
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response.body = message.map(|m| Body::Text(m.to_json()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const NOW: i64 = 1_800_000_000;
    const CONNECTED_AT_MS: i64 = 1_799_999_000_500;

    /// A WebSocket event as the gateway sends it (see
    /// devserver/tests/websocket.rs for the full shape).
    fn event(route_key: &str, query: Value, body: Option<&str>) -> ApiGatewayWebsocketProxyRequest {
        let event_type = match route_key {
            route::CONNECT => "CONNECT",
            route::DISCONNECT => "DISCONNECT",
            _ => "MESSAGE",
        };
        serde_json::from_value(json!({
            "queryStringParameters": query,
            "requestContext": {
                "routeKey": route_key,
                "eventType": event_type,
                "connectionId": "L0SM9cOFvHcCIhw=",
                "connectedAt": CONNECTED_AT_MS,
                "requestTimeEpoch": CONNECTED_AT_MS,
                "stage": "local",
                "apiId": "abcdefghij",
                "messageDirection": "IN",
                "requestId": "r-1",
                "identity": { "sourceIp": "127.0.0.1" }
            },
            "body": body,
            "isBase64Encoded": false
        }))
        .expect("a WebSocket event")
    }

    const EXPIRES: i64 = 1_799_999_000 + live::CONNECTION_LIFETIME_SECS;

    #[test]
    fn connect_without_topics_follows_the_catalogue() {
        assert_eq!(
            action(&event(route::CONNECT, Value::Null, None), NOW),
            Ok(Action::Connect {
                connection_id: "L0SM9cOFvHcCIhw=".into(),
                topics: vec![Topic::Catalogue],
                expires_at: EXPIRES,
            })
        );
    }

    #[test]
    fn connect_reads_the_topics_parameter() {
        let e = event(
            route::CONNECT,
            json!({"topics": "order:o-1,catalogue"}),
            None,
        );
        assert_eq!(
            action(&e, NOW),
            Ok(Action::Connect {
                connection_id: "L0SM9cOFvHcCIhw=".into(),
                topics: vec![Topic::order("o-1"), Topic::Catalogue],
                expires_at: EXPIRES,
            })
        );
    }

    #[test]
    fn connect_with_a_bad_topic_answers_400_so_the_handshake_is_refused() {
        for bad in ["prices", "order:", "catalogue,,", ""] {
            let e = event(route::CONNECT, json!({ "topics": bad }), None);
            let error = action(&e, NOW).expect_err(bad);
            assert_eq!(error.status, 400, "{bad}");
            assert_eq!(error.code, "validation_failed");
            let response = respond(Err(error));
            assert_eq!(response.status_code, 400);
        }
    }

    #[test]
    fn subscribe_replaces_the_topics() {
        let e = event(
            route::SUBSCRIBE,
            Value::Null,
            Some(r#"{"action":"subscribe","topics":["order:o-9"]}"#),
        );
        assert_eq!(
            action(&e, NOW),
            Ok(Action::Subscribe {
                connection_id: "L0SM9cOFvHcCIhw=".into(),
                topics: vec![Topic::order("o-9")],
                expires_at: EXPIRES,
            })
        );
        let answer = respond(Ok(Some(LiveMessage::Subscribed {
            topics: vec![Topic::order("o-9")],
        })));
        assert_eq!(answer.status_code, 200);
        let Some(Body::Text(body)) = answer.body else {
            panic!("a text body");
        };
        assert_eq!(
            serde_json::from_str::<Value>(&body).expect("json"),
            json!({"type": "subscribed", "topics": ["order:o-9"]})
        );
    }

    #[test]
    fn subscribe_with_a_malformed_body_is_a_bad_request() {
        for body in [
            r#"{"action":"subscribe"}"#,
            r#"{"action":"subscribe","topics":"catalogue"}"#,
            r#"{"action":"subscribe","topics":[],"extra":1}"#,
        ] {
            let e = event(route::SUBSCRIBE, Value::Null, Some(body));
            assert_eq!(action(&e, NOW).expect_err(body).code, "bad_request");
        }
        let e = event(
            route::SUBSCRIBE,
            Value::Null,
            Some(r#"{"action":"subscribe","topics":["nope"]}"#),
        );
        let error = action(&e, NOW).expect_err("unknown topic");
        assert_eq!(error.code, "validation_failed");
        assert!(error.fields["topics"].contains("nope"));
    }

    #[test]
    fn unknown_actions_are_named_in_the_error_body() {
        let e = event("$default", Value::Null, Some(r#"{"action":"dance"}"#));
        let response = respond(action(&e, NOW).map(|_| None));
        assert_eq!(response.status_code, 400);
        let Some(Body::Text(body)) = response.body else {
            panic!("a text body");
        };
        let body: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["code"], "bad_request");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains("unknown action `dance`"), "{message}");

        let e = event("$default", Value::Null, Some("hello"));
        let message = action(&e, NOW).expect_err("no action").message;
        assert!(message.contains("needs an `action`"), "{message}");
    }

    #[test]
    fn disconnect_forgets_the_connection() {
        assert_eq!(
            action(&event(route::DISCONNECT, Value::Null, None), NOW),
            Ok(Action::Disconnect {
                connection_id: "L0SM9cOFvHcCIhw=".into()
            })
        );
    }

    #[test]
    fn connect_and_disconnect_answer_200_without_a_body() {
        let response = respond(Ok(None));
        assert_eq!(response.status_code, 200);
        assert_eq!(response.body, None);
        let wire = serde_json::to_value(&response).expect("json");
        assert_eq!(wire["statusCode"], 200);
    }

    /// Golden events (`fixtures/example-apigw-websocket-*.json`, shaped as
    /// API Gateway sends them): each parses, serializes and parses back to
    /// the same event, and reads as the action it stands for.
    #[test]
    fn golden_events_round_trip_and_read_as_their_actions() {
        let connection_id = "PkPZtcnOoAMCJHQ=".to_owned();
        let expires_at = 1_795_446_000 + live::CONNECTION_LIFETIME_SECS;
        let order = Topic::order("o-5f1c2a9e0b7d4e3f8a6b1c2d3e4f5a6b");
        let cases = [
            (
                include_str!("../fixtures/example-apigw-websocket-connect.json"),
                Action::Connect {
                    connection_id: connection_id.clone(),
                    topics: vec![Topic::Catalogue, order.clone()],
                    expires_at,
                },
            ),
            (
                include_str!("../fixtures/example-apigw-websocket-subscribe.json"),
                Action::Subscribe {
                    connection_id: connection_id.clone(),
                    topics: vec![order],
                    expires_at,
                },
            ),
            (
                include_str!("../fixtures/example-apigw-websocket-disconnect.json"),
                Action::Disconnect { connection_id },
            ),
        ];
        for (raw, expected) in cases {
            let parsed: ApiGatewayWebsocketProxyRequest =
                serde_json::from_str(raw).expect("a WebSocket event");
            let again: ApiGatewayWebsocketProxyRequest =
                serde_json::from_value(serde_json::to_value(&parsed).expect("serializes"))
                    .expect("parses back");
            assert_eq!(again, parsed);
            assert_eq!(action(&parsed, NOW), Ok(expected));
        }
    }
}
