//! `dev.toml`: the one declaration of the stack (functions, REST routes,
//! ports). Everything that reads it goes through [`Manifest::load`] /
//! [`Manifest::parse`], which reject a bad file with the file, line and
//! problem named.

pub mod buckets;
pub mod destination;
pub mod events;
pub mod queues;
mod route_path;
pub mod subscriptions;
pub mod tables;
pub mod topics;
pub mod websocket;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use buckets::Bucket;
pub use destination::Destination;
pub use events::{Bus, Rule, Target, TargetKind};
pub use queues::Queue;
pub use route_path::{RoutePath, Segment};
pub use subscriptions::{StreamsSettings, Subscription};
pub use tables::Table;
pub use topics::{Endpoint, FilterPolicyScope, Topic, TopicSubscription};
pub use websocket::{WebSocketApi, WebSocketRoute};

/// A problem in `dev.toml`, located in the file.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct ManifestError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    #[diagnostic(
        code(woocom::manifest_unreadable),
        help("run woocom-dev in the folder that holds dev.toml, or pass --manifest PATH")
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    #[diagnostic(
        code(woocom::manifest),
        help("fix dev.toml at the line shown; README.md's dev.toml section lists every key")
    )]
    Invalid(#[from] ManifestError),
}

/// Default `Lambda` timeout, as for a function created without one.
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 3.0;
/// Default memory size in MB, as Lambda's.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// How many instances of one function may run at once unless `dev.toml`
/// reserves another number. Local machines are small; AWS's account default
/// (1,000) would only exhaust them.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// API Gateway's longest integration timeout without a quota increase.
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html>
pub const DEFAULT_INTEGRATION_TIMEOUT_MS: u64 = 29_000;

// Serialize: `woocom-dev render` writes the parsed manifest as JSON for
// Terraform; local-only settings (file path, ports) are left out.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The file it was read from (for messages and for resolving paths).
    #[serde(skip)]
    pub path: PathBuf,
    pub stack: StackSettings,
    #[serde(skip)]
    pub ports: Ports,
    pub api: ApiSettings,
    pub functions: BTreeMap<String, Function>,
    pub routes: Vec<Route>,
    /// DynamoDB tables (`[tables.<name>]`), by name.
    pub tables: BTreeMap<String, Table>,
    /// SQS queues (`[queues.<name>]`), by name.
    pub queues: BTreeMap<String, Queue>,
    /// SNS topics and their subscriptions (`[topics.<name>]`), by name.
    pub topics: BTreeMap<String, Topic>,
    /// EventBridge custom buses (`[buses.<name>]`), by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub buses: BTreeMap<String, Bus>,
    /// EventBridge rules and their targets (`[rules.<name>]`), by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, Rule>,
    /// S3 buckets (`[buckets.<name>]`), by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub buckets: BTreeMap<String, Bucket>,
    /// The WebSocket API (`[websocket]`), when declared.
    pub websocket: Option<WebSocketApi>,
    /// Stream event source mappings (`[[subscriptions]]`).
    pub subscriptions: Vec<Subscription>,
    /// Local stream-delivery knobs (`[streams]`); not deployed.
    #[serde(skip)]
    pub streams: StreamsSettings,
    /// The web frontend `woocom-dev up` builds and serves (`[frontend]`);
    /// Terraform deploys it with its own module.
    #[serde(skip)]
    pub frontend: Option<Frontend>,
}

/// `[frontend]`: a Node project whose `npm run build` writes a static site.
///
/// ```toml
/// [frontend]
/// dir = "frontend"   # holds package.json; relative to dev.toml
/// dist = "dist"      # what `npm run build` writes, relative to `dir`
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    pub dir: String,
    #[serde(default = "default_frontend_dist")]
    pub dist: String,
}

fn default_frontend_dist() -> String {
    "dist".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackSettings {
    pub name: String,
    pub region: String,
    pub account_id: String,
}

/// Listener ports; 0 asks the OS for a free one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    #[serde(default = "default_api_port")]
    pub api: u16,
    #[serde(default = "default_websocket_port")]
    pub websocket: u16,
    #[serde(default = "default_aws_port")]
    pub aws: u16,
    /// Where `[frontend]` is served, as CloudFront would serve it.
    #[serde(default = "default_frontend_port")]
    pub frontend: u16,
    /// The S3 endpoint (`AWS_ENDPOINT_URL_S3`): S3's REST paths
    /// (`/<bucket>/<key>`) get a listener of their own.
    #[serde(default = "default_s3_port")]
    pub s3: u16,
}

fn default_api_port() -> u16 {
    4000
}
fn default_websocket_port() -> u16 {
    4001
}
fn default_aws_port() -> u16 {
    4002
}
fn default_frontend_port() -> u16 {
    4003
}
fn default_s3_port() -> u16 {
    4004
}

impl Ports {
    pub fn free() -> Self {
        Ports {
            api: 0,
            websocket: 0,
            aws: 0,
            frontend: 0,
            s3: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiSettings {
    pub stage: String,
    pub binary_media_types: Vec<String>,
    pub integration_timeout_ms: u64,
    pub cors: Option<Cors>,
    pub stage_variables: BTreeMap<String, String>,
}

/// What the console's "Enable CORS" (and our Terraform) sets up: an OPTIONS
/// mock method answering preflights, and CORS headers on the gateway's own
/// error responses. Proxy integrations add nothing to function responses.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    #[serde(default = "star")]
    pub allow_origin: String,
    #[serde(default = "default_cors_methods")]
    pub allow_methods: Vec<String>,
    #[serde(default = "default_cors_headers")]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub max_age: Option<u32>,
}

fn star() -> String {
    "*".to_owned()
}
fn default_cors_methods() -> Vec<String> {
    ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
        .map(String::from)
        .to_vec()
}
fn default_cors_headers() -> Vec<String> {
    [
        "Content-Type",
        "X-Amz-Date",
        "Authorization",
        "X-Api-Key",
        "X-Amz-Security-Token",
    ]
    .map(String::from)
    .to_vec()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Function {
    pub name: String,
    /// The Cargo package whose binary is the function's `bootstrap`.
    #[serde(rename = "crate")]
    pub package: String,
    /// The binary target in that package (defaults to the package name).
    pub bin: Option<String>,
    #[serde(rename = "memory")]
    pub memory_mb: u32,
    #[serde(serialize_with = "serialize_seconds")]
    pub timeout: std::time::Duration,
    /// Reserved concurrency: instances that may run at once.
    pub concurrency: usize,
    pub env: BTreeMap<String, String>,
    /// Asynchronous invocation settings (Lambda's event invoke config).
    pub event_invoke: EventInvokeConfig,
}

/// What Lambda does with an asynchronous (`Event`) invocation that fails,
/// as `aws_lambda_function_event_invoke_config` declares it:
/// `[functions.x] maximum_retry_attempts = 0..2` (default 2),
/// `maximum_event_age_in_seconds = 60..21600` (default 21600, six hours),
/// and its destinations (`DestinationConfig`): `on_success` / `on_failure` =
/// `"queue:<name>"`, `"topic:<name>"` or `"function:<name>"`, a standard
/// queue, standard topic or function of the stack that gets Lambda's
/// invocation record; and `dead_letter = "queue:<name>"` or
/// `"topic:<name>"` (`DeadLetterConfig`), which gets the event itself.
/// <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configure.html>,
/// <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html>
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventInvokeConfig {
    pub maximum_retry_attempts: u32,
    pub maximum_event_age_in_seconds: u32,
    /// What gets the record of a successful invocation.
    pub on_success: Option<Destination>,
    /// What gets the record of a discarded one.
    pub on_failure: Option<Destination>,
    /// The dead-letter queue or topic (`DeadLetterConfig`): gets a
    /// discarded event as it was sent.
    pub dead_letter: Option<Destination>,
}

impl Default for EventInvokeConfig {
    fn default() -> Self {
        EventInvokeConfig {
            maximum_retry_attempts: 2,
            maximum_event_age_in_seconds: 21_600,
            on_success: None,
            on_failure: None,
            dead_letter: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    /// `GET`, `POST`, ... or `ANY`.
    pub method: String,
    #[serde(serialize_with = "serialize_display")]
    pub path: RoutePath,
    pub function: String,
}

/// A timeout as seconds (dev.toml's unit).
fn serialize_seconds<S: serde::Serializer>(
    d: &std::time::Duration,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// A value as it is written in dev.toml (e.g. a route path).
fn serialize_display<T: std::fmt::Display, S: serde::Serializer>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Route {
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

// ---- raw (as written) ----------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    stack: Option<RawStack>,
    #[serde(default)]
    ports: Option<Ports>,
    #[serde(default)]
    api: Option<RawApi>,
    #[serde(default)]
    functions: BTreeMap<Spanned<String>, RawFunction>,
    #[serde(default)]
    routes: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    tables: BTreeMap<Spanned<String>, Spanned<tables::RawTable>>,
    #[serde(default)]
    queues: BTreeMap<Spanned<String>, Spanned<queues::RawQueue>>,
    #[serde(default)]
    topics: BTreeMap<Spanned<String>, Spanned<topics::RawTopic>>,
    #[serde(default)]
    buses: BTreeMap<Spanned<String>, Spanned<events::RawBus>>,
    #[serde(default)]
    rules: BTreeMap<Spanned<String>, Spanned<events::RawRule>>,
    #[serde(default)]
    buckets: BTreeMap<Spanned<String>, Spanned<buckets::RawBucket>>,
    #[serde(default)]
    websocket: Option<Spanned<websocket::RawWebSocket>>,
    #[serde(default)]
    subscriptions: Vec<Spanned<subscriptions::RawSubscription>>,
    #[serde(default)]
    streams: Option<StreamsSettings>,
    #[serde(default)]
    frontend: Option<Spanned<Frontend>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    name: Option<String>,
    region: Option<String>,
    account_id: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    stage: Option<Spanned<String>>,
    #[serde(default)]
    binary_media_types: Vec<String>,
    integration_timeout_ms: Option<Spanned<u64>>,
    cors: Option<Cors>,
    #[serde(default)]
    stage_variables: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    #[serde(rename = "crate")]
    package: Spanned<String>,
    bin: Option<String>,
    memory: Option<Spanned<u32>>,
    timeout: Option<Spanned<f64>>,
    concurrency: Option<Spanned<usize>>,
    #[serde(default)]
    env: BTreeMap<Spanned<String>, String>,
    maximum_retry_attempts: Option<Spanned<u32>>,
    maximum_event_age_in_seconds: Option<Spanned<u32>>,
    on_success: Option<Spanned<String>>,
    on_failure: Option<Spanned<String>>,
    dead_letter: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    method: Spanned<String>,
    path: Spanned<String>,
    function: Spanned<String>,
}

const METHODS: &[&str] = &[
    "ANY", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT",
];

/// Environment variables Lambda reserves; a function may not set them.
/// <https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html>
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// Lambda's limit on the total size of a function's environment variables.
const MAX_ENV_BYTES: usize = 4 * 1024;

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Manifest::parse(path, &text)?)
    }

    /// Parses and validates a manifest; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            ManifestError {
                file: path.to_owned(),
                line,
                column,
                message,
            }
        };
        let raw: RawManifest = toml::from_str(text)
            .map_err(|e| at(e.span().unwrap_or(0..0), e.message().trim_end().to_owned()))?;

        let stack = {
            let raw = raw.stack.unwrap_or(RawStack {
                name: None,
                region: None,
                account_id: None,
            });
            let account_id = match raw.account_id {
                Some(id) => {
                    if id.get_ref().len() != 12 || !id.get_ref().bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(at(
                            id.span(),
                            format!(
                                "stack.account_id `{}` is not a 12-digit AWS account id",
                                id.get_ref()
                            ),
                        ));
                    }
                    id.into_inner()
                }
                None => "000000000000".to_owned(),
            };
            StackSettings {
                name: raw.name.unwrap_or_else(|| "woocom".to_owned()),
                region: raw.region.unwrap_or_else(|| "us-east-1".to_owned()),
                account_id,
            }
        };

        let api = {
            let raw = raw.api.unwrap_or(RawApi {
                stage: None,
                binary_media_types: Vec::new(),
                integration_timeout_ms: None,
                cors: None,
                stage_variables: BTreeMap::new(),
            });
            let stage = match raw.stage {
                Some(stage) => {
                    let ok = !stage.get_ref().is_empty()
                        && stage
                            .get_ref()
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if !ok {
                        return Err(at(
                            stage.span(),
                            format!(
                                "api.stage `{}`: a stage name may only contain letters, digits, `-` and `_`",
                                stage.get_ref()
                            ),
                        ));
                    }
                    stage.into_inner()
                }
                None => "local".to_owned(),
            };
            let integration_timeout_ms = match raw.integration_timeout_ms {
                Some(t) if !(50..=300_000).contains(t.get_ref()) => {
                    return Err(at(
                        t.span(),
                        "api.integration_timeout_ms must be between 50 and 300000 (API Gateway's range)"
                            .to_owned(),
                    ));
                }
                Some(t) => t.into_inner(),
                None => DEFAULT_INTEGRATION_TIMEOUT_MS,
            };
            ApiSettings {
                stage,
                binary_media_types: raw.binary_media_types,
                integration_timeout_ms,
                cors: raw.cors,
                stage_variables: raw.stage_variables,
            }
        };

        let mut functions = BTreeMap::new();
        // (function, field, span, target, accepts) of each destination,
        // checked once the queues and topics are read.
        let mut destinations = Vec::new();
        for (name, f) in raw.functions {
            let name_ok = !name.get_ref().is_empty()
                && name.get_ref().len() <= 64
                && name
                    .get_ref()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                return Err(at(
                    name.span(),
                    format!(
                        "function name `{}`: Lambda allows 1-64 letters, digits, `-` and `_`",
                        name.get_ref()
                    ),
                ));
            }
            let timeout = match f.timeout {
                Some(t) if !(t.get_ref().is_finite() && (1.0..=900.0).contains(t.get_ref())) => {
                    return Err(at(
                        t.span(),
                        format!(
                            "function `{}`: timeout must be between 1 and 900 seconds",
                            name.get_ref()
                        ),
                    ));
                }
                Some(t) => t.into_inner(),
                None => DEFAULT_TIMEOUT_SECONDS,
            };
            let memory_mb = match f.memory {
                Some(m) if !(128..=10_240).contains(m.get_ref()) => {
                    return Err(at(
                        m.span(),
                        format!(
                            "function `{}`: memory must be between 128 and 10240 MB",
                            name.get_ref()
                        ),
                    ));
                }
                Some(m) => m.into_inner(),
                None => DEFAULT_MEMORY_MB,
            };
            let concurrency = match f.concurrency {
                Some(c) if *c.get_ref() == 0 => {
                    return Err(at(
                        c.span(),
                        format!(
                            "function `{}`: concurrency 0 would throttle every request; remove the function instead",
                            name.get_ref()
                        ),
                    ));
                }
                Some(c) => c.into_inner(),
                None => DEFAULT_CONCURRENCY,
            };
            let mut env = BTreeMap::new();
            let mut env_bytes = 0;
            for (key, value) in f.env {
                if RESERVED_ENV.contains(&key.get_ref().as_str()) {
                    return Err(at(
                        key.span(),
                        format!(
                            "function `{}`: `{}` is reserved by Lambda and cannot be set",
                            name.get_ref(),
                            key.get_ref()
                        ),
                    ));
                }
                env_bytes += key.get_ref().len() + value.len();
                env.insert(key.into_inner(), value);
            }
            if env_bytes > MAX_ENV_BYTES {
                return Err(at(
                    name.span(),
                    format!(
                        "function `{}`: environment variables total {env_bytes} bytes; Lambda allows 4 KB",
                        name.get_ref()
                    ),
                ));
            }
            let mut event_invoke = EventInvokeConfig::default();
            if let Some(n) = f.maximum_retry_attempts {
                if *n.get_ref() > 2 {
                    return Err(at(
                        n.span(),
                        format!(
                            "function `{}`: maximum_retry_attempts must be between 0 and 2 (Lambda's range for asynchronous invocation)",
                            name.get_ref()
                        ),
                    ));
                }
                event_invoke.maximum_retry_attempts = n.into_inner();
            }
            if let Some(age) = f.maximum_event_age_in_seconds {
                if !(60..=21_600).contains(age.get_ref()) {
                    return Err(at(
                        age.span(),
                        format!(
                            "function `{}`: maximum_event_age_in_seconds must be between 60 and 21600 (Lambda's range)",
                            name.get_ref()
                        ),
                    ));
                }
                event_invoke.maximum_event_age_in_seconds = age.into_inner();
            }
            for (field, value) in [
                ("on_success", f.on_success),
                ("on_failure", f.on_failure),
                ("dead_letter", f.dead_letter),
            ] {
                let Some(value) = value else { continue };
                let accepts = destination::Accepts {
                    function: field != "dead_letter",
                };
                let Some(target) = Destination::parse(value.get_ref()) else {
                    return Err(at(
                        value.span(),
                        format!(
                            "function `{}`: {field} `{}` must be {}, naming one of this dev.toml",
                            name.get_ref(),
                            value.get_ref(),
                            Destination::forms(accepts)
                        ),
                    ));
                };
                destinations.push((
                    name.get_ref().clone(),
                    field,
                    value.span(),
                    target.clone(),
                    accepts,
                ));
                match field {
                    "on_success" => event_invoke.on_success = Some(target),
                    "on_failure" => event_invoke.on_failure = Some(target),
                    _ => event_invoke.dead_letter = Some(target),
                }
            }
            let function = Function {
                name: name.get_ref().clone(),
                package: f.package.into_inner(),
                bin: f.bin,
                memory_mb,
                timeout: std::time::Duration::from_secs_f64(timeout),
                concurrency,
                env,
                event_invoke,
            };
            functions.insert(name.into_inner(), function);
        }

        let mut routes: Vec<Route> = Vec::new();
        for raw_route in raw.routes {
            let span = raw_route.span();
            let r = raw_route.into_inner();
            let method = r.method.get_ref().to_ascii_uppercase();
            if !METHODS.contains(&method.as_str()) {
                return Err(at(
                    r.method.span(),
                    format!(
                        "route method `{}` is not one of {}",
                        r.method.get_ref(),
                        METHODS.join(", ")
                    ),
                ));
            }
            let path = RoutePath::parse(r.path.get_ref()).map_err(|problem| {
                at(
                    r.path.span(),
                    format!("route path `{}`: {problem}", r.path.get_ref()),
                )
            })?;
            if !functions.contains_key(r.function.get_ref()) {
                let known: Vec<&str> = functions.keys().map(String::as_str).collect();
                return Err(at(
                    r.function.span(),
                    format!(
                        "route {method} {path}: unknown function `{}` (declared: {})",
                        r.function.get_ref(),
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            let route = Route {
                method,
                path,
                function: r.function.into_inner(),
            };
            if let Some(other) = routes
                .iter()
                .find(|o| o.method == route.method && o.path.same_resource(&route.path))
            {
                return Err(at(
                    span,
                    format!(
                        "duplicate route {}: {} is already declared",
                        route.key(),
                        other.key()
                    ),
                ));
            }
            routes.push(route);
        }

        let tables = tables::parse(raw.tables, &at)?;
        let queues = queues::parse(raw.queues, &at)?;
        let topics = topics::parse(raw.topics, &queues, &functions, &at)?;
        for (function, field, span, target, accepts) in destinations {
            target
                .check(accepts, &queues, &topics, &functions)
                .map_err(|problem| {
                    at(span, format!("function `{function}`: {field}: {problem}"))
                })?;
        }
        let buses = events::parse_buses(raw.buses, &at)?;
        let rules = events::parse_rules(
            raw.rules,
            &events::Declared {
                buses: &buses,
                queues: &queues,
                topics: &topics,
                functions: &functions,
            },
            &at,
        )?;
        let buckets = buckets::parse(raw.buckets, &functions, &queues, &topics, &at)?;
        let websocket = websocket::parse(raw.websocket, &functions, &at)?;
        let subscriptions = subscriptions::parse(
            raw.subscriptions,
            &tables,
            &queues,
            &topics,
            &functions,
            &at,
        )?;
        let frontend = match raw.frontend {
            Some(f) => {
                let span = f.span();
                let f = f.into_inner();
                for (field, value) in [("dir", &f.dir), ("dist", &f.dist)] {
                    if value.is_empty() || Path::new(value).is_absolute() || value.contains("..") {
                        return Err(at(
                            span.clone(),
                            format!(
                                "frontend.{field} `{value}` must be a folder inside the project, relative to dev.toml"
                            ),
                        ));
                    }
                }
                Some(f)
            }
            None => None,
        };

        Ok(Manifest {
            path: path.to_owned(),
            stack,
            ports: raw.ports.unwrap_or(Ports {
                api: default_api_port(),
                websocket: default_websocket_port(),
                aws: default_aws_port(),
                frontend: default_frontend_port(),
                s3: default_s3_port(),
            }),
            api,
            functions,
            routes,
            tables,
            queues,
            topics,
            buses,
            rules,
            buckets,
            websocket,
            subscriptions,
            streams: raw.streams.unwrap_or_default(),
            frontend,
        })
    }

    /// The frontend's project folder and its build output, absolute.
    pub fn frontend_dirs(&self) -> Option<(PathBuf, PathBuf)> {
        let f = self.frontend.as_ref()?;
        let dir = self.root().join(&f.dir);
        let dist = dir.join(&f.dist);
        Some((dir, dist))
    }

    /// The folder the manifest lives in: the workspace whose crates it names.
    pub fn root(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("dev.toml"), text)
    }

    const GOOD: &str = r#"
[api]
stage = "local"

[functions.products]
crate = "woocom-products"
timeout = 5
env = { TABLE = "products" }

[[routes]]
method = "GET"
path = "/products/{id}"
function = "products"
"#;

    #[test]
    fn parses_functions_and_routes() {
        let m = parse(GOOD).expect("valid manifest");
        assert_eq!(m.api.stage, "local");
        let f = &m.functions["products"];
        assert_eq!(f.package, "woocom-products");
        assert_eq!(f.timeout, std::time::Duration::from_secs(5));
        assert_eq!(f.env["TABLE"], "products");
        assert_eq!(m.routes[0].key(), "GET /products/{id}");
        assert_eq!(m.ports.api, 4000);
    }

    #[test]
    fn unknown_function_names_line_and_known_functions() {
        let text = GOOD.replace("function = \"products\"", "function = \"prodcts\"");
        let err = parse(&text).expect_err("unknown function");
        assert_eq!(err.line, 13);
        assert!(err.message.contains("unknown function `prodcts`"), "{err}");
        assert!(err.message.contains("declared: products"), "{err}");
        assert!(err.to_string().starts_with("dev.toml:13:"), "{err}");
    }

    #[test]
    fn duplicate_route_is_rejected_with_its_line() {
        let text = format!(
            "{GOOD}\n[[routes]]\nmethod = \"get\"\npath = \"/products/{{sku}}\"\nfunction = \"products\"\n"
        );
        let err = parse(&text).expect_err("duplicate");
        assert!(
            err.message.contains("duplicate route GET /products/{sku}"),
            "{err}"
        );
        assert_eq!(err.line, 15);
    }

    #[test]
    fn bad_path_syntax_is_rejected() {
        let text = GOOD.replace("/products/{id}", "/products/{id");
        let err = parse(&text).expect_err("bad path");
        assert!(err.message.contains("route path `/products/{id`"), "{err}");
        assert_eq!(err.line, 12);
    }

    #[test]
    fn unknown_key_is_a_located_error() {
        let text = GOOD.replace("timeout = 5", "timeuot = 5");
        let err = parse(&text).expect_err("unknown key");
        assert_eq!(err.line, 7);
        assert!(err.message.contains("timeuot"), "{err}");
    }

    #[test]
    fn reserved_environment_variable_is_rejected() {
        let text = GOOD.replace("TABLE = ", "AWS_REGION = ");
        let err = parse(&text).expect_err("reserved");
        assert!(err.message.contains("`AWS_REGION` is reserved"), "{err}");
    }

    #[test]
    fn timeout_out_of_range_is_rejected() {
        let text = GOOD.replace("timeout = 5", "timeout = 901");
        let err = parse(&text).expect_err("timeout");
        assert!(err.message.contains("between 1 and 900"), "{err}");
        assert_eq!(err.line, 7);
    }
}
