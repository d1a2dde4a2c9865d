//! The `[websocket]` section of `dev.toml`: the WebSocket API's route
//! selection expression, its connection limits and its routes.
//!
//! ```toml
//! [websocket]
//! route_selection_expression = "$request.body.action"   # the default
//! idle_timeout_seconds = 600                            # AWS: 10 minutes
//! max_connection_seconds = 7200                         # AWS: 2 hours
//!
//! [[websocket.routes]]
//! route_key = "$connect"
//! function = "live"
//!
//! [[websocket.routes]]
//! route_key = "subscribe"
//! function = "live"
//! two_way = true          # the function's `body` is sent back to the caller
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize, Serializer};
use toml::Spanned;

use super::{Function, ManifestError};

/// The predefined route keys.
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-routes.html>
pub const CONNECT: &str = "$connect";
pub const DISCONNECT: &str = "$disconnect";
pub const DEFAULT: &str = "$default";

/// What the console proposes and most APIs use.
pub const DEFAULT_ROUTE_SELECTION_EXPRESSION: &str = "$request.body.action";
/// API Gateway's idle connection timeout and maximum connection duration.
/// They cannot be raised in AWS; `dev.toml` may lower them (for tests).
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html>
pub const MAX_IDLE_TIMEOUT_SECONDS: u64 = 600;
pub const MAX_CONNECTION_SECONDS: u64 = 2 * 60 * 60;
/// Routes per API.
const MAX_ROUTES: usize = 300;

/// The WebSocket API as declared. Serialises to the JSON Terraform reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebSocketApi {
    pub route_selection_expression: RouteSelectionExpression,
    pub idle_timeout_seconds: u64,
    pub max_connection_seconds: u64,
    pub routes: Vec<WebSocketRoute>,
}

impl Default for WebSocketApi {
    fn default() -> Self {
        WebSocketApi {
            route_selection_expression: RouteSelectionExpression::default(),
            idle_timeout_seconds: MAX_IDLE_TIMEOUT_SECONDS,
            max_connection_seconds: MAX_CONNECTION_SECONDS,
            routes: Vec::new(),
        }
    }
}

impl WebSocketApi {
    pub fn route(&self, route_key: &str) -> Option<&WebSocketRoute> {
        self.routes.iter().find(|r| r.route_key == route_key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebSocketRoute {
    /// `$connect`, `$disconnect`, `$default` or a custom key.
    pub route_key: String,
    pub function: String,
    /// The route has a `$default` route response: the function's `body` is
    /// sent back to the client. Without one, API Gateway sends nothing.
    /// <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response.html>
    pub two_way: bool,
}

/// A parsed route selection expression: literal text and
/// `$request.body.<path>` variables, evaluated against each JSON message.
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-selection-expressions.html>
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSelectionExpression {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    /// A JSONPath into the message body; empty is the whole body.
    Body(Vec<Step>),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

impl Default for RouteSelectionExpression {
    fn default() -> Self {
        RouteSelectionExpression {
            source: DEFAULT_ROUTE_SELECTION_EXPRESSION.to_owned(),
            parts: vec![Part::Body(vec![Step::Key("action".to_owned())])],
        }
    }
}

impl Serialize for RouteSelectionExpression {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl std::fmt::Display for RouteSelectionExpression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

impl RouteSelectionExpression {
    /// Parses an expression as API Gateway writes them: `$request.body.a.b`,
    /// `${request.body.a}-suffix`, `$request.body.list[0]`, `\$` for a
    /// literal dollar sign.
    pub fn parse(source: &str) -> Result<RouteSelectionExpression, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' if chars.peek().is_some_and(|(_, n)| *n == '$') => {
                    literal.push('$');
                    chars.next();
                }
                '$' => {
                    let variable = if chars.peek().is_some_and(|(_, n)| *n == '{') {
                        chars.next();
                        let mut v = String::new();
                        let mut closed = false;
                        for (_, n) in chars.by_ref() {
                            if n == '}' {
                                closed = true;
                                break;
                            }
                            v.push(n);
                        }
                        if !closed {
                            return Err(format!("`${{` at offset {at} is not closed by `}}`"));
                        }
                        v
                    } else {
                        let mut v = String::new();
                        while let Some(&(_, n)) = chars.peek() {
                            if n == '[' {
                                // A bracketed step, quoted names included.
                                for (_, b) in chars.by_ref() {
                                    v.push(b);
                                    if b == ']' {
                                        break;
                                    }
                                }
                            } else if n.is_ascii_alphanumeric() || matches!(n, '_' | '-' | '.') {
                                v.push(n);
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        v
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Body(parse_variable(&variable)?));
                }
                _ => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        if parts.is_empty() {
            return Err("the expression is empty".to_owned());
        }
        Ok(RouteSelectionExpression {
            source: source.to_owned(),
            parts,
        })
    }

    /// The route key a message selects, or `None` when the expression
    /// cannot be evaluated (the message is not JSON): API Gateway then uses
    /// `$default`. A path that is absent evaluates to the empty string;
    /// arrays and objects are stringified.
    pub fn evaluate(&self, message: &str) -> Option<String> {
        let body: serde_json::Value = serde_json::from_str(message).ok()?;
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Body(path) => {
                    let mut value = Some(&body);
                    for step in path {
                        value = match (value, step) {
                            (Some(v), Step::Key(k)) => v.get(k),
                            (Some(v), Step::Index(i)) => v.get(*i),
                            (None, _) => None,
                        };
                    }
                    if let Some(v) = value {
                        out.push_str(&stringify(v));
                    }
                }
            }
        }
        Some(out)
    }
}

/// `request.body`, `request.body.a.b`, `request.body.list[0]`,
/// `request.body['a b']`.
fn parse_variable(variable: &str) -> Result<Vec<Step>, String> {
    let Some(path) = variable.strip_prefix("request.body") else {
        return Err(format!(
            "`${variable}`: a WebSocket route selection expression can only use `$request.body.<path>`"
        ));
    };
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let key = &after[..end];
            if key.is_empty() {
                return Err(format!(
                    "`${variable}`: empty name in the path after `request.body`"
                ));
            }
            steps.push(Step::Key(key.to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return Err(format!("`${variable}`: `[` is not closed by `]`"));
            };
            let inner = &after[..end];
            let quoted = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
            match (quoted, inner.parse::<usize>()) {
                (Some(key), _) => steps.push(Step::Key(key.to_owned())),
                (None, Ok(index)) => steps.push(Step::Index(index)),
                (None, Err(_)) => {
                    return Err(format!(
                        "`${variable}`: `[{inner}]` is neither an index nor a quoted name"
                    ));
                }
            }
            rest = &after[end + 1..];
        } else {
            return Err(format!(
                "`${variable}`: a WebSocket route selection expression can only use `$request.body.<path>`"
            ));
        }
    }
    Ok(steps)
}

/// How a selected value becomes (part of) a route key: strings as they are,
/// arrays as `[item1, item2]` (as API Gateway documents), objects as JSON.
fn stringify(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(stringify).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

// ---- raw (as written) ----------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebSocket {
    route_selection_expression: Option<Spanned<String>>,
    idle_timeout_seconds: Option<Spanned<u64>>,
    max_connection_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    routes: Vec<Spanned<RawRoute>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    route_key: Spanned<String>,
    function: Spanned<String>,
    #[serde(default)]
    two_way: Option<Spanned<bool>>,
}

/// Validates the `[websocket]` section. `at` locates a message in the file.
pub(super) fn parse(
    raw: Option<Spanned<RawWebSocket>>,
    functions: &BTreeMap<String, Function>,
    at: &dyn Fn(Range<usize>, String) -> ManifestError,
) -> Result<Option<WebSocketApi>, ManifestError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let section = raw.span();
    let raw = raw.into_inner();

    let route_selection_expression = match raw.route_selection_expression {
        Some(e) => RouteSelectionExpression::parse(e.get_ref()).map_err(|problem| {
            at(
                e.span(),
                format!(
                    "websocket.route_selection_expression `{}`: {problem}",
                    e.get_ref()
                ),
            )
        })?,
        None => RouteSelectionExpression::default(),
    };
    let idle_timeout_seconds = bounded(
        raw.idle_timeout_seconds,
        "idle_timeout_seconds",
        MAX_IDLE_TIMEOUT_SECONDS,
        "API Gateway's idle timeout, 10 minutes",
        at,
    )?;
    let max_connection_seconds = bounded(
        raw.max_connection_seconds,
        "max_connection_seconds",
        MAX_CONNECTION_SECONDS,
        "API Gateway's maximum connection duration, 2 hours",
        at,
    )?;
    if raw.routes.len() > MAX_ROUTES {
        return Err(at(
            section,
            format!("websocket: API Gateway allows {MAX_ROUTES} routes per API"),
        ));
    }

    let mut routes: Vec<WebSocketRoute> = Vec::new();
    for raw_route in raw.routes {
        let span = raw_route.span();
        let r = raw_route.into_inner();
        let key = r.route_key.get_ref();
        if key.is_empty() || key.len() > 128 {
            return Err(at(
                r.route_key.span(),
                "websocket route_key must be 1-128 characters".to_owned(),
            ));
        }
        if key.starts_with('$') && ![CONNECT, DISCONNECT, DEFAULT].contains(&key.as_str()) {
            return Err(at(
                r.route_key.span(),
                format!(
                    "websocket route_key `{key}`: keys starting with `$` are reserved for $connect, $disconnect and $default"
                ),
            ));
        }
        if !functions.contains_key(r.function.get_ref()) {
            let known: Vec<&str> = functions.keys().map(String::as_str).collect();
            return Err(at(
                r.function.span(),
                format!(
                    "websocket route {key}: unknown function `{}` (declared: {})",
                    r.function.get_ref(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        if routes.iter().any(|o| &o.route_key == key) {
            return Err(at(
                span,
                format!("duplicate websocket route {key}: it is already declared"),
            ));
        }
        let two_way = match r.two_way {
            Some(t) if *t.get_ref() && (key == CONNECT || key == DISCONNECT) => {
                return Err(at(
                    t.span(),
                    format!(
                        "websocket route {key}: two_way is for message routes; {key} has no client to answer"
                    ),
                ));
            }
            Some(t) => t.into_inner(),
            None => false,
        };
        routes.push(WebSocketRoute {
            route_key: key.clone(),
            function: r.function.into_inner(),
            two_way,
        });
    }

    Ok(Some(WebSocketApi {
        route_selection_expression,
        idle_timeout_seconds,
        max_connection_seconds,
        routes,
    }))
}

fn bounded(
    value: Option<Spanned<u64>>,
    name: &str,
    max: u64,
    why: &str,
    at: &dyn Fn(Range<usize>, String) -> ManifestError,
) -> Result<u64, ManifestError> {
    match value {
        Some(v) if !(1..=max).contains(v.get_ref()) => Err(at(
            v.span(),
            format!("websocket.{name} must be between 1 and {max} ({why})"),
        )),
        Some(v) => Ok(v.into_inner()),
        None => Ok(max),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::manifest::Manifest;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("dev.toml"), text)
    }

    const GOOD: &str = r#"
[functions.live]
crate = "woocom-live"

[websocket]
route_selection_expression = "$request.body.action"
idle_timeout_seconds = 5

[[websocket.routes]]
route_key = "$connect"
function = "live"

[[websocket.routes]]
route_key = "subscribe"
function = "live"
two_way = true
"#;

    #[test]
    fn parses_routes_and_limits() {
        let m = parse(GOOD).expect("valid");
        let ws = m.websocket.expect("websocket section");
        assert_eq!(ws.idle_timeout_seconds, 5);
        assert_eq!(ws.max_connection_seconds, MAX_CONNECTION_SECONDS);
        assert_eq!(ws.routes.len(), 2);
        assert!(ws.route("subscribe").is_some_and(|r| r.two_way));
        assert!(ws.route(CONNECT).is_some_and(|r| !r.two_way));
        let json = serde_json::to_value(&ws).expect("serialises");
        assert_eq!(json["route_selection_expression"], "$request.body.action");
        assert_eq!(json["routes"][1]["route_key"], "subscribe");
    }

    #[test]
    fn no_section_is_none() {
        let m = parse("[functions.live]\ncrate = \"x\"\n").expect("valid");
        assert!(m.websocket.is_none());
    }

    #[test]
    fn unknown_function_is_a_located_error() {
        let err = parse(&GOOD.replace(
            "function = \"live\"\ntwo_way",
            "function = \"lve\"\ntwo_way",
        ))
        .expect_err("unknown");
        assert!(err.message.contains("unknown function `lve`"), "{err}");
        assert!(err.message.contains("declared: live"), "{err}");
        assert_eq!(err.line, 15);
    }

    #[test]
    fn duplicate_route_key_is_refused() {
        let text = format!(
            "{GOOD}\n[[websocket.routes]]\nroute_key = \"subscribe\"\nfunction = \"live\"\n"
        );
        let err = parse(&text).expect_err("duplicate");
        assert!(
            err.message.contains("duplicate websocket route subscribe"),
            "{err}"
        );
        assert_eq!(err.line, 18);
    }

    #[test]
    fn bad_expression_is_a_located_error() {
        let err = parse(&GOOD.replace("$request.body.action", "$request.header.action"))
            .expect_err("bad expression");
        assert!(
            err.message.contains("can only use `$request.body.<path>`"),
            "{err}"
        );
        assert_eq!(err.line, 6);
        let err = parse(&GOOD.replace("$request.body.action", "${request.body.action"))
            .expect_err("unclosed");
        assert!(err.message.contains("not closed"), "{err}");
    }

    #[test]
    fn reserved_keys_and_limits_are_checked() {
        let err = parse(&GOOD.replace("\"subscribe\"", "\"$subscribe\"")).expect_err("reserved");
        assert!(err.message.contains("reserved"), "{err}");
        let err = parse(&GOOD.replace("idle_timeout_seconds = 5", "idle_timeout_seconds = 601"))
            .expect_err("idle");
        assert!(err.message.contains("between 1 and 600"), "{err}");
        let err = parse(&GOOD.replace(
            "route_key = \"$connect\"\nfunction = \"live\"",
            "route_key = \"$connect\"\nfunction = \"live\"\ntwo_way = true",
        ))
        .expect_err("two_way on $connect");
        assert!(
            err.message.contains("two_way is for message routes"),
            "{err}"
        );
        let err =
            parse(&GOOD.replace("idle_timeout_seconds", "idle_timeout")).expect_err("unknown key");
        assert!(err.message.contains("idle_timeout"), "{err}");
    }

    #[test]
    fn evaluates_expressions_as_api_gateway_documents() {
        let message =
            r#"{"service":"chat","action":"join","data":{"room":"room1234","tags":["a","b"]}}"#;
        let eval = |e: &str| {
            RouteSelectionExpression::parse(e)
                .expect("parses")
                .evaluate(message)
        };
        assert_eq!(eval("$request.body.action").as_deref(), Some("join"));
        assert_eq!(eval("${request.body.action}").as_deref(), Some("join"));
        assert_eq!(
            eval("${request.body.action}-${request.body.service}").as_deref(),
            Some("join-chat")
        );
        assert_eq!(eval("$request.body.data.room").as_deref(), Some("room1234"));
        assert_eq!(eval("$request.body['service']").as_deref(), Some("chat"));
        assert_eq!(eval("$request.body.data.tags[1]").as_deref(), Some("b"));
        assert_eq!(eval("$request.body.data.tags").as_deref(), Some("[a, b]"));
        assert_eq!(eval("$request.body.missing").as_deref(), Some(""));
        assert_eq!(eval("static").as_deref(), Some("static"));
        assert_eq!(eval("\\$default").as_deref(), Some("$default"));
        let action = RouteSelectionExpression::default();
        assert_eq!(action.evaluate("not json"), None);
        assert_eq!(action.evaluate(r#"{"action":7}"#).as_deref(), Some("7"));
    }
}
