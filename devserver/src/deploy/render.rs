//! `woocom-dev render`: `dev.toml` as the JSON file the Terraform modules
//! iterate over (`terraform/manifest.json`).
//!
//! The file is the parsed [`Manifest`] serialized as it is (so a section
//! added to the manifest types appears here without touching this code),
//! plus a `deploy` section derived from it: per function, the environment
//! with table and bus references resolved and the least-privilege IAM
//! policy.
//!
//! Derived data is read from the serialized JSON, not from the Rust types,
//! so sections that other parts of the manifest add later (`websocket`,
//! `subscriptions`) are picked up by name when they appear.
//!
//! ## Table names in AWS
//!
//! Locally a table is called by its `[tables.<name>]` name; in AWS every
//! table is `<prefix>-<name>` (e.g. `woocom-dev-alice-products`), so stacks
//! never share a table. The rule: **a function env value exactly equal to a
//! declared table name is a reference to that table**. Terraform sets it to
//! the deployed name, and the function's role may use that table (and its
//! indexes and stream), and no other.
//!
//! ## Queues, topics and destinations
//!
//! `[queues]` and `[topics]` are deployed under the same prefix
//! (`<prefix>-<name>`), and so are the dedicated on-failure queues of
//! stream mappings (`dlq:<name>`, default `<mapping>-failures`). A name
//! that two of them would share in AWS is refused here rather than left to
//! fail at apply: a `[queues]` entry named like a dedicated on-failure
//! queue, and a topic named `alerts` (the stack's alarm topic). So is an
//! HTTP(S) topic subscription to a loopback address, which SNS in AWS
//! cannot reach.
//!
//! ## Event buses and rules
//!
//! `[buses]` are deployed as `<prefix>-<name>` too, and `[rules]` as
//! `<prefix>-<name>` on their bus (terraform/modules/events); `default` is
//! the account's own bus, never created. The rule for functions that put
//! events mirrors tables': **a function env value exactly equal to a
//! declared bus name, or `default`, is a reference to that bus**.
//! Terraform sets it to the deployed bus's name (`default` stays
//! `default`), and the function's role may `events:PutEvents` on that bus
//! and no other. (So an env value `default` meant as something else also
//! grants PutEvents on the default bus: spell such a setting otherwise.) A
//! value naming both a table and a bus is refused, as is a rule name that
//! would not fit EventBridge's 64 characters once prefixed for production
//! ([`LONGEST_FIXED_PREFIX`]; a developer stack's possibly longer prefix
//! is checked by Terraform, which knows it).
//!
//! ## IAM
//!
//! Resource ARNs in the rendered policies are templates with the
//! placeholders in [`PLACEHOLDERS`], which the `functions` module fills.
//! Besides its tables, buses, logs and @connections, a function's role may
//! receive from the queues its SQS mappings read, and send to, publish to
//! or invoke exactly the destinations dev.toml names for it (stream
//! mappings' `on_failure`, `on_success` / `on_failure` / `dead_letter` of
//! asynchronous invocations). Nothing else is granted implicitly: a
//! function's own SDK calls to a queue or topic are not derived from
//! dev.toml.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::manifest::Manifest;

/// Version of the rendered file's layout; the Terraform modules check it.
pub const FORMAT: u64 = 1;

/// Where the rendered manifest lives, relative to the manifest's folder.
pub const DEFAULT_OUTPUT: &str = "terraform/manifest.json";

/// Placeholders in rendered ARNs, filled by Terraform.
pub const PLACEHOLDERS: &[&str] = &[
    "${partition}",
    "${region}",
    "${account_id}",
    "${prefix}",
    "${websocket_api_id}",
    "${websocket_stage}",
];

/// Actions a function gets on a table it references. Transactions are
/// authorised through these per-item actions; there is no separate action.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html>
pub const TABLE_ACTIONS: &[&str] = &[
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
];

/// Actions on a table's indexes: only reads exist there.
pub const INDEX_ACTIONS: &[&str] = &["dynamodb:Query", "dynamodb:Scan"];

/// What an event source mapping needs to read a DynamoDB stream.
/// <https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#events-dynamodb-permissions>
pub const STREAM_ACTIONS: &[&str] = &[
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
];

/// What an SQS event source mapping needs on its queue (Lambda polls with
/// the function's role).
/// <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html#events-sqs-permissions>
pub const QUEUE_SOURCE_ACTIONS: &[&str] = &[
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
];

/// Sending to a destination, by kind: Lambda uses the function's role.
/// <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#destination-permissions>
pub const QUEUE_SEND_ACTIONS: &[&str] = &["sqs:SendMessage"];
pub const TOPIC_PUBLISH_ACTIONS: &[&str] = &["sns:Publish"];
pub const FUNCTION_INVOKE_ACTIONS: &[&str] = &["lambda:InvokeFunction"];

/// The name the stack's alarm topic takes (`<prefix>-alerts`,
/// terraform/modules/monitoring): no `[topics]` entry may have it.
pub const ALERTS_TOPIC: &str = "alerts";

/// Putting events on a bus the function's env references.
/// <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html>
pub const BUS_PUT_ACTIONS: &[&str] = &["events:PutEvents"];

/// The bus every account has: referenced, never created.
pub const DEFAULT_BUS: &str = crate::manifest::events::DEFAULT_BUS;

/// EventBridge's longest rule name (a bus may have 256 characters, and
/// dev.toml's are 64 at most before the prefix).
/// <https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html>
pub const MAX_EVENTS_NAME: usize = 64;

/// The longest prefix of the stacks every manifest must deploy to
/// (`woocom-production-`); developer stacks' are checked by Terraform.
pub const LONGEST_FIXED_PREFIX: &str = "woocom-production-";

/// Writing to the function's own log group, which Terraform creates (so
/// no `logs:CreateLogGroup`).
pub const LOG_ACTIONS: &[&str] = &["logs:CreateLogStream", "logs:PutLogEvents"];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot serialize the manifest: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", manifest.display())]
    Invalid { manifest: PathBuf, message: String },
}

/// The rendered file for `manifest`.
pub fn render(manifest: &Manifest) -> Result<Value, RenderError> {
    render_value(&manifest.path, serde_json::to_value(manifest)?)
}

/// The rendered file for a manifest already serialized to JSON (`source`
/// names it in errors). Everything derived is read from the JSON, so
/// sections the Rust types do not have yet render as soon as they appear.
pub fn render_value(source: &Path, manifest: Value) -> Result<Value, RenderError> {
    let invalid = |message: String| RenderError::Invalid {
        manifest: source.to_owned(),
        message,
    };
    let Value::Object(sections) = manifest else {
        return Err(invalid(
            "the manifest did not serialize to an object".into(),
        ));
    };
    let mut out = Map::new();
    out.insert(
        "//".into(),
        json!("Generated by `woocom-dev render` from dev.toml: do not edit. `woocom-dev render --check` fails when this file is stale."),
    );
    out.insert("format".into(), json!(FORMAT));
    for (key, value) in &sections {
        // Absent optional sections are left out, not `null`, so Terraform
        // reads them with one `try(..., default)`.
        if !value.is_null() {
            out.insert(key.clone(), value.clone());
        }
    }
    out.insert("deploy".into(), derive(&sections).map_err(invalid)?);
    Ok(Value::Object(out))
}

/// The rendered file as text: pretty JSON with a final newline, keys in a
/// stable order, so that it diffs well and `--check` compares bytes.
pub fn render_text(manifest: &Manifest) -> Result<String, RenderError> {
    let mut text = serde_json::to_string_pretty(&render(manifest)?)?;
    text.push('\n');
    Ok(text)
}

/// Writes the rendered file; returns whether it changed.
pub fn write(manifest: &Manifest, output: &Path) -> Result<bool, RenderError> {
    let text = render_text(manifest)?;
    if std::fs::read_to_string(output).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| RenderError::Write {
            path: dir.to_owned(),
            source,
        })?;
    }
    std::fs::write(output, text).map_err(|source| RenderError::Write {
        path: output.to_owned(),
        source,
    })?;
    Ok(true)
}

/// Whether the file at `output` is what `manifest` renders to.
pub fn is_current(manifest: &Manifest, output: &Path) -> Result<bool, RenderError> {
    let text = render_text(manifest)?;
    Ok(std::fs::read_to_string(output).is_ok_and(|old| old == text))
}

/// A queue, topic or function of the stack that something sends to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    kind: TargetKind,
    /// Without the stack prefix.
    name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TargetKind {
    Queue,
    Topic,
    Function,
}

impl Target {
    /// Reads a serialized `{"kind": ..., "name": ...}` destination
    /// (`field` names it in errors).
    fn from_value(value: &Value, field: &str) -> Result<Option<Target>, String> {
        if value.is_null() {
            return Ok(None);
        }
        let kind = value.get("kind").and_then(Value::as_str);
        let name = value.get("name").and_then(Value::as_str);
        let kind = match kind {
            Some("queue") => TargetKind::Queue,
            Some("topic") => TargetKind::Topic,
            Some("function") => TargetKind::Function,
            _ => {
                return Err(format!(
                    "{field} is not a queue, topic or function destination: {value}"
                ));
            }
        };
        match name {
            Some(name) if !name.is_empty() => Ok(Some(Target {
                kind,
                name: name.to_owned(),
            })),
            _ => Err(format!("{field} names no {kind:?} destination: {value}")),
        }
    }

    /// The deployed resource's ARN, as a template.
    fn arn(&self) -> String {
        let name = &self.name;
        match self.kind {
            TargetKind::Queue => queue_arn(name),
            TargetKind::Topic => {
                format!("arn:${{partition}}:sns:${{region}}:${{account_id}}:${{prefix}}-{name}")
            }
            TargetKind::Function => format!(
                "arn:${{partition}}:lambda:${{region}}:${{account_id}}:function:${{prefix}}-{name}"
            ),
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            TargetKind::Queue => "queue",
            TargetKind::Topic => "topic",
            TargetKind::Function => "function",
        }
    }
}

/// An event source mapping as Terraform and the policies need it.
struct Subscription {
    key: String,
    /// `table` (its stream) or `queue`.
    source_kind: &'static str,
    source: String,
    function: String,
    /// Where a stream mapping's failed records go; SQS mappings have none
    /// (failed messages return to the queue, whose redrive policy applies).
    on_failure: Option<Target>,
    /// The on-failure queue is the mapping's own (`dlq:<name>` or the
    /// default `<key>-failures`), created with it, not one of `[queues]`.
    dedicated: bool,
}

fn derive(sections: &Map<String, Value>) -> Result<Value, String> {
    let empty = Map::new();
    let object = |key: &str| {
        sections
            .get(key)
            .and_then(Value::as_object)
            .unwrap_or(&empty)
    };
    let declared_tables = object("tables");
    let declared_queues = object("queues");
    let declared_topics = object("topics");
    let declared_buses = object("buses");
    let is_bus = |value: &str| value == DEFAULT_BUS || declared_buses.contains_key(value);
    let websocket = sections.get("websocket").filter(|w| !w.is_null());
    let websocket_functions: BTreeSet<String> = websocket
        .and_then(|w| w.get("routes"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("function").and_then(Value::as_str).map(str::to_owned))
        .collect();

    let subscriptions = subscriptions(sections, declared_queues, declared_topics)?;
    check_topics(declared_topics)?;
    check_event_names(sections)?;

    let mut functions = Map::new();
    for (name, function) in object("functions") {
        let mut plain = BTreeMap::new();
        let mut table_env = BTreeMap::new();
        let mut bus_env = BTreeMap::new();
        let env = function
            .get("env")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for (key, value) in env {
            let Some(value) = value.as_str() else {
                return Err(format!("function `{name}`: env `{key}` is not a string"));
            };
            if declared_tables.contains_key(value) && is_bus(value) {
                return Err(format!(
                    "function `{name}`: env `{key}` = \"{value}\" names both [tables.{value}] and the bus `{value}`; rename the table or the bus so the reference is clear"
                ));
            } else if declared_tables.contains_key(value) {
                table_env.insert(key.clone(), value.to_owned());
            } else if is_bus(value) {
                bus_env.insert(key.clone(), value.to_owned());
            } else {
                plain.insert(key.clone(), value.to_owned());
            }
        }
        let tables: BTreeSet<&str> = table_env.values().map(String::as_str).collect();
        let subscribed: Vec<&Subscription> = subscriptions
            .iter()
            .filter(|s| &s.function == name)
            .collect();
        let stream_consumer = subscribed.iter().any(|s| s.source_kind == "table");
        // Functions behind WebSocket routes answer through @connections;
        // with a WebSocket API declared, stream consumers push changes to
        // the browsers (DESIGN.md: live updates) the same way.
        let manages_connections =
            websocket.is_some() && (websocket_functions.contains(name) || stream_consumer);

        let mut statements = vec![json!({
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": LOG_ACTIONS,
            "Resource": [format!(
                "arn:${{partition}}:logs:${{region}}:${{account_id}}:log-group:/aws/lambda/${{prefix}}-{name}:*"
            )],
        })];
        for table in &tables {
            let arn = table_arn(table);
            statements.push(json!({
                "Sid": format!("Table{}", sid(table)),
                "Effect": "Allow",
                "Action": TABLE_ACTIONS,
                "Resource": [arn],
            }));
            let has_indexes = declared_tables.get(*table).is_some_and(|t| {
                ["global_indexes", "local_indexes"].iter().any(|k| {
                    t.get(*k)
                        .and_then(Value::as_array)
                        .is_some_and(|i| !i.is_empty())
                })
            });
            if has_indexes {
                statements.push(json!({
                    "Sid": format!("Table{}Indexes", sid(table)),
                    "Effect": "Allow",
                    "Action": INDEX_ACTIONS,
                    "Resource": [format!("{arn}/index/*")],
                }));
            }
        }
        let buses: BTreeSet<String> = bus_env.values().map(|b| bus_arn(b)).collect();
        if !buses.is_empty() {
            statements.push(json!({
                "Sid": "PutEvents",
                "Effect": "Allow",
                "Action": BUS_PUT_ACTIONS,
                "Resource": buses,
            }));
        }
        let streamed: BTreeSet<&str> = subscribed
            .iter()
            .filter(|s| s.source_kind == "table")
            .map(|s| s.source.as_str())
            .collect();
        for table in &streamed {
            statements.push(json!({
                "Sid": format!("Stream{}", sid(table)),
                "Effect": "Allow",
                "Action": STREAM_ACTIONS,
                "Resource": [format!("{}/stream/*", table_arn(table))],
            }));
        }
        let polled: BTreeSet<&str> = subscribed
            .iter()
            .filter(|s| s.source_kind == "queue")
            .map(|s| s.source.as_str())
            .collect();
        for queue in &polled {
            statements.push(json!({
                "Sid": format!("QueueSource{}", sid(queue)),
                "Effect": "Allow",
                "Action": QUEUE_SOURCE_ACTIONS,
                "Resource": [queue_arn(queue)],
            }));
        }

        // Every destination dev.toml names for this function, and only
        // those: its stream mappings' on-failure targets and its
        // asynchronous invocations' destinations and dead-letter target.
        let mut targets: BTreeSet<Target> = subscribed
            .iter()
            .filter_map(|s| s.on_failure.clone())
            .collect();
        let event_invoke = function.get("event_invoke").unwrap_or(&Value::Null);
        for field in ["on_success", "on_failure", "dead_letter"] {
            let value = event_invoke.get(field).unwrap_or(&Value::Null);
            if let Some(target) = Target::from_value(value, &format!("function `{name}`: {field}"))?
            {
                check_target(&target, &format!("function `{name}`: {field}"), sections)?;
                targets.insert(target);
            }
        }
        for (kind, sid, actions) in [
            (TargetKind::Queue, "SendToQueues", QUEUE_SEND_ACTIONS),
            (TargetKind::Topic, "PublishToTopics", TOPIC_PUBLISH_ACTIONS),
            (
                TargetKind::Function,
                "InvokeFunctions",
                FUNCTION_INVOKE_ACTIONS,
            ),
        ] {
            let resources: BTreeSet<String> = targets
                .iter()
                .filter(|t| t.kind == kind)
                .map(Target::arn)
                .collect();
            if !resources.is_empty() {
                statements.push(json!({
                    "Sid": sid,
                    "Effect": "Allow",
                    "Action": actions,
                    "Resource": resources,
                }));
            }
        }
        if manages_connections {
            statements.push(json!({
                "Sid": "WebSocketConnections",
                "Effect": "Allow",
                "Action": ["execute-api:ManageConnections"],
                "Resource": [
                    "arn:${partition}:execute-api:${region}:${account_id}:${websocket_api_id}/${websocket_stage}/*/@connections/*"
                ],
            }));
        }

        let binary = ["bin", "crate"]
            .iter()
            .find_map(|k| function.get(*k).and_then(Value::as_str))
            .ok_or_else(|| format!("function `{name}` has no `crate`"))?;
        let timeout = function
            .get("timeout")
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("function `{name}` has no `timeout`"))?;
        functions.insert(
            name.clone(),
            json!({
                "binary": binary,
                // Lambda takes whole seconds.
                "timeout": timeout.ceil() as u64,
                "env": plain,
                "table_env": table_env,
                "bus_env": bus_env,
                "websocket_endpoint": manages_connections,
                "policy": {
                    "Version": "2012-10-17",
                    "Statement": statements,
                },
            }),
        );
    }

    let subscriptions: Vec<Value> = subscriptions
        .iter()
        .map(|s| {
            json!({
                "key": s.key,
                "source": { "kind": s.source_kind, "name": s.source },
                "function": s.function,
                "on_failure": s.on_failure.as_ref().map(|t| json!({
                    "kind": t.kind_name(),
                    "name": t.name,
                    "dedicated": s.dedicated,
                })),
            })
        })
        .collect();
    Ok(json!({
        "functions": functions,
        "subscriptions": subscriptions,
        "placeholders": PLACEHOLDERS,
    }))
}

/// A destination names a queue, topic or function the manifest declares
/// (dev.toml's loader checks this too; the JSON fixtures are not loaded).
fn check_target(target: &Target, field: &str, sections: &Map<String, Value>) -> Result<(), String> {
    let section = match target.kind {
        TargetKind::Queue => "queues",
        TargetKind::Topic => "topics",
        TargetKind::Function => "functions",
    };
    let declared = sections
        .get(section)
        .and_then(Value::as_object)
        .is_some_and(|m| m.contains_key(&target.name));
    if declared {
        Ok(())
    } else {
        Err(format!(
            "{field}: {} `{}` is not in [{section}]",
            target.kind_name(),
            target.name
        ))
    }
}

/// What the Terraform modules cannot deploy as written: a topic named like
/// the stack's alarm topic, and HTTP(S) subscriptions to this machine.
fn check_topics(topics: &Map<String, Value>) -> Result<(), String> {
    if topics.contains_key(ALERTS_TOPIC) {
        return Err(format!(
            "[topics.{ALERTS_TOPIC}]: in AWS the stack's alarm topic is already `<prefix>-{ALERTS_TOPIC}` (terraform/modules/monitoring); rename this topic"
        ));
    }
    for (name, topic) in topics {
        let list = topic
            .get("subscriptions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (i, s) in list.enumerate() {
            let protocol = s.get("protocol").and_then(Value::as_str).unwrap_or("");
            let endpoint = s.get("endpoint").and_then(Value::as_str).unwrap_or("");
            if (protocol == "http" || protocol == "https") && is_loopback_url(endpoint) {
                return Err(format!(
                    "[topics.{name}] subscriptions[{i}]: endpoint `{endpoint}` is this machine; SNS in AWS cannot reach it, so the stack cannot deploy it (give a public URL, or keep the subscription in a local-only manifest)"
                ));
            }
        }
    }
    Ok(())
}

/// `http(s)://localhost…`, `127.x.x.x`, `[::1]` or `0.0.0.0`.
fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    }
    .to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host == "0.0.0.0"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Subscriptions from the serialized `subscriptions` section (absent until
/// the manifest declares event source mappings): each gets a unique key,
/// which names its Terraform resources and its dedicated on-failure queue.
fn subscriptions(
    sections: &Map<String, Value>,
    queues: &Map<String, Value>,
    topics: &Map<String, Value>,
) -> Result<Vec<Subscription>, String> {
    let Some(list) = sections.get("subscriptions").filter(|s| !s.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(list) = list.as_array() else {
        return Err("`subscriptions` did not serialize to a list".into());
    };
    let mut out: Vec<Subscription> = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let field = |name: &str| {
            s.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("subscriptions[{i}] has no `{name}`"))
        };
        let (source_kind, source) = match (field("table"), field("queue")) {
            (Ok(table), Err(_)) => ("table", table),
            (Err(_), Ok(queue)) => {
                if !queues.contains_key(&queue) {
                    return Err(format!(
                        "subscriptions[{i}]: queue `{queue}` is not in [queues]"
                    ));
                }
                ("queue", queue)
            }
            _ => {
                return Err(format!(
                    "subscriptions[{i}] names neither exactly one `table` nor `queue`"
                ));
            }
        };
        let function = field("function")?;
        // dev.toml names each mapping (default `<function>-<table>`).
        let base = field("name").unwrap_or_else(|_| format!("{function}-{source}"));
        let mut key = base.clone();
        let mut n = 2;
        while out.iter().any(|o| o.key == key) {
            key = format!("{base}-{n}");
            n += 1;
        }
        let on_failure = s.get("on_failure").and_then(Value::as_str);
        let (target, dedicated) = match (source_kind, on_failure) {
            // Lambda has no on-failure destination for SQS mappings.
            ("queue", None) => (None, false),
            ("queue", Some(target)) => {
                return Err(format!(
                    "subscriptions[{i}] (`{key}`): on_failure `{target}` is for stream mappings; a queue's failed messages return to it and its redrive_policy moves them on"
                ));
            }
            (_, Some(target)) => match target.split_once(':') {
                // `dlq:<name>`: locally a dead-letter queue of the stream
                // poller; in AWS the mapping's own SQS queue.
                Some(("dlq", name)) if !name.is_empty() => (
                    Some(Target {
                        kind: TargetKind::Queue,
                        name: name.to_owned(),
                    }),
                    true,
                ),
                Some(("queue", name)) if queues.contains_key(name) => (
                    Some(Target {
                        kind: TargetKind::Queue,
                        name: name.to_owned(),
                    }),
                    false,
                ),
                Some(("topic", name)) if topics.contains_key(name) => (
                    Some(Target {
                        kind: TargetKind::Topic,
                        name: name.to_owned(),
                    }),
                    false,
                ),
                Some((kind @ ("queue" | "topic"), name)) => {
                    return Err(format!(
                        "subscriptions[{i}] (`{key}`): on_failure `{target}`: {kind} `{name}` is not in [{kind}s]"
                    ));
                }
                _ => {
                    return Err(format!(
                        "subscriptions[{i}] (`{key}`): on_failure `{target}` is not `dlq:<name>`, `queue:<name>` or `topic:<name>`"
                    ));
                }
            },
            (_, None) => (
                Some(Target {
                    kind: TargetKind::Queue,
                    name: format!("{key}-failures"),
                }),
                true,
            ),
        };
        if let Some(t) = target
            .as_ref()
            .filter(|t| dedicated && queues.contains_key(&t.name))
        {
            return Err(format!(
                "subscriptions[{i}] (`{key}`): its on-failure queue `{0}` would be created for it, and [queues.{0}] declares a queue of that name too: write on_failure = \"queue:{0}\" to send to that queue, or name another with \"dlq:<name>\"",
                t.name
            ));
        }
        out.push(Subscription {
            key,
            source_kind,
            source,
            function,
            on_failure: target,
            dedicated,
        });
    }
    Ok(out)
}

fn table_arn(table: &str) -> String {
    format!("arn:${{partition}}:dynamodb:${{region}}:${{account_id}}:table/${{prefix}}-{table}")
}

/// A bus of the stack, or the account's default bus.
fn bus_arn(bus: &str) -> String {
    if bus == DEFAULT_BUS {
        "arn:${partition}:events:${region}:${account_id}:event-bus/default".to_owned()
    } else {
        format!("arn:${{partition}}:events:${{region}}:${{account_id}}:event-bus/${{prefix}}-{bus}")
    }
}

/// Rule names EventBridge would refuse once prefixed: longer than
/// [`MAX_EVENTS_NAME`] under [`LONGEST_FIXED_PREFIX`].
fn check_event_names(sections: &Map<String, Value>) -> Result<(), String> {
    let limit = MAX_EVENTS_NAME - LONGEST_FIXED_PREFIX.len();
    let names = sections
        .get("rules")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys());
    for name in names {
        if name.len() > limit {
            return Err(format!(
                "[rules.{name}]: in AWS the rule is `<prefix>-{name}` (`{LONGEST_FIXED_PREFIX}{name}` in production, {} characters), and EventBridge allows {MAX_EVENTS_NAME}; shorten the name to {limit} characters or fewer",
                LONGEST_FIXED_PREFIX.len() + name.len()
            ));
        }
    }
    Ok(())
}

fn queue_arn(queue: &str) -> String {
    format!("arn:${{partition}}:sqs:${{region}}:${{account_id}}:${{prefix}}-{queue}")
}

/// An IAM statement id (`[A-Za-z0-9]+`) from a table or queue name.
fn sid(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(Path::new("dev.toml"), text).expect("valid manifest")
    }

    const SHOP: &str = r#"
[functions.products]
crate = "woocom-products"
timeout = 2.5
env = { PRODUCTS_TABLE = "products", MODE = "shop" }

[functions.orders]
crate = "woocom-orders"
env = { ORDERS_TABLE = "orders", PRODUCTS_TABLE = "products" }

[[routes]]
method = "GET"
path = "/products/{id}"
function = "products"

[tables.products]
partition_key = { name = "id" }

[tables.orders]
partition_key = { name = "pk" }
sort_key = { name = "sk" }
stream = "NEW_AND_OLD_IMAGES"

[tables.orders.global_indexes.by_customer]
partition_key = { name = "customer" }
"#;

    #[test]
    fn table_references_are_split_from_plain_env() {
        let out = render(&manifest(SHOP)).expect("render");
        let f = &out["deploy"]["functions"]["products"];
        assert_eq!(f["table_env"], json!({"PRODUCTS_TABLE": "products"}));
        assert_eq!(f["env"], json!({"MODE": "shop"}));
        assert_eq!(f["timeout"], json!(3));
        assert_eq!(f["binary"], json!("woocom-products"));
    }

    #[test]
    fn policies_name_only_the_referenced_tables() {
        let out = render(&manifest(SHOP)).expect("render");
        let statements = |f: &str| out["deploy"]["functions"][f]["policy"]["Statement"].clone();
        let products = statements("products");
        let resources: Vec<&str> = products
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["Resource"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        assert!(
            resources
                .iter()
                .any(|r| r.ends_with(":table/${prefix}-products"))
        );
        assert!(
            !resources.iter().any(|r| r.contains("orders")),
            "{resources:?}"
        );
        assert!(
            !resources.iter().any(|r| r.contains("/index/")),
            "{resources:?}"
        );
        let orders = statements("orders").to_string();
        assert!(
            orders.contains("table/${prefix}-orders/index/*"),
            "{orders}"
        );
        assert!(!orders.contains("execute-api"), "{orders}");
    }

    #[test]
    fn sids_are_alphanumeric() {
        assert_eq!(sid("order-lines.v2"), "OrderLinesV2");
    }

    #[test]
    fn local_only_settings_are_not_rendered() {
        let out = render(&manifest(SHOP)).expect("render");
        assert!(out.get("ports").is_none());
        assert!(out["tables"]["orders"].get("faults").is_none());
        assert_eq!(
            out["tables"]["orders"]["global_indexes"][0]["projection"],
            json!({"type": "ALL", "non_key_attributes": []})
        );
        assert_eq!(out["routes"][0]["path"], json!("/products/{id}"));
    }

    const EVENTS: &str = r#"
[functions.fulfil]
crate = "woocom-orders"
timeout = 10

[functions.notify]
crate = "woocom-notify"
on_success = "topic:events"
on_failure = "function:fulfil"
dead_letter = "queue:notify-dlq"

[tables.orders]
partition_key = { name = "pk" }
stream = "NEW_IMAGE"

[queues.work]
visibility_timeout_seconds = 60

[queues.notify-dlq]

[topics.events]

[[topics.events.subscriptions]]
queue = "work"

[[subscriptions]]
queue = "work"
function = "fulfil"

[[subscriptions]]
table = "orders"
function = "notify"
starting_position = "LATEST"
on_failure = "topic:events"
"#;

    fn statement(out: &Value, function: &str, sid: &str) -> Value {
        out["deploy"]["functions"][function]["policy"]["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["Sid"] == sid)
            .cloned()
            .unwrap_or(Value::Null)
    }

    #[test]
    fn queue_mappings_and_destinations_grant_exactly_their_resources() {
        let out = render(&manifest(EVENTS)).expect("render");
        assert_eq!(
            statement(&out, "fulfil", "QueueSourceWork"),
            json!({
                "Sid": "QueueSourceWork",
                "Effect": "Allow",
                "Action": QUEUE_SOURCE_ACTIONS,
                "Resource": ["arn:${partition}:sqs:${region}:${account_id}:${prefix}-work"],
            })
        );
        assert_eq!(
            statement(&out, "notify", "PublishToTopics")["Resource"],
            json!(["arn:${partition}:sns:${region}:${account_id}:${prefix}-events"])
        );
        assert_eq!(
            statement(&out, "notify", "SendToQueues")["Resource"],
            json!(["arn:${partition}:sqs:${region}:${account_id}:${prefix}-notify-dlq"])
        );
        assert_eq!(
            statement(&out, "notify", "InvokeFunctions")["Resource"],
            json!(["arn:${partition}:lambda:${region}:${account_id}:function:${prefix}-fulfil"])
        );
        assert!(statement(&out, "fulfil", "SendToQueues").is_null());
        assert_eq!(
            out["deploy"]["subscriptions"],
            json!([
                {"key": "fulfil-work", "source": {"kind": "queue", "name": "work"}, "function": "fulfil", "on_failure": null},
                {"key": "notify-orders", "source": {"kind": "table", "name": "orders"}, "function": "notify",
                 "on_failure": {"kind": "topic", "name": "events", "dedicated": false}},
            ])
        );
        assert_eq!(
            out["queues"]["work"]["visibility_timeout_seconds"],
            json!(60)
        );
        assert_eq!(
            out["topics"]["events"]["subscriptions"][0]["endpoint"],
            json!("work")
        );
    }

    #[test]
    fn a_topic_named_like_the_alarm_topic_is_refused() {
        let text = "[functions.f]\ncrate = \"c\"\n[topics.alerts]\n";
        let err = render(&manifest(text)).expect_err("refused").to_string();
        assert!(err.contains("[topics.alerts]"), "{err}");
    }

    #[test]
    fn a_loopback_http_subscription_is_refused() {
        let text = "[functions.f]\ncrate = \"c\"\n[topics.t]\n[[topics.t.subscriptions]]\nendpoint = \"http://127.0.0.1:9000/hook\"\n";
        let err = render(&manifest(text)).expect_err("refused").to_string();
        assert!(
            err.contains("[topics.t] subscriptions[0]") && err.contains("127.0.0.1"),
            "{err}"
        );
        assert!(is_loopback_url("https://localhost/x"));
        assert!(is_loopback_url("http://[::1]:8080/"));
        assert!(!is_loopback_url("https://hooks.example.com/127.0.0.1"));
    }

    const BUSES: &str = r#"
[functions.orders]
crate = "woocom-orders"
env = { EVENT_BUS_NAME = "shop", AUDIT_BUS = "default", ORDERS_TABLE = "orders", MODE = "shop-mode" }

[functions.fulfil]
crate = "woocom-orders"
env = { MODE = "Default" }

[tables.orders]
partition_key = { name = "pk" }

[buses.shop]

[rules.order-placed]
bus = "shop"
event_pattern = '{"source": ["woocom.orders"]}'

[[rules.order-placed.targets]]
function = "fulfil"
"#;

    #[test]
    fn bus_references_grant_put_events_on_exactly_those_buses() {
        let out = render(&manifest(BUSES)).expect("render");
        let orders = &out["deploy"]["functions"]["orders"];
        assert_eq!(
            orders["bus_env"],
            json!({"AUDIT_BUS": "default", "EVENT_BUS_NAME": "shop"})
        );
        assert_eq!(orders["table_env"], json!({"ORDERS_TABLE": "orders"}));
        assert_eq!(orders["env"], json!({"MODE": "shop-mode"}));
        assert_eq!(
            statement(&out, "orders", "PutEvents"),
            json!({
                "Sid": "PutEvents",
                "Effect": "Allow",
                "Action": ["events:PutEvents"],
                "Resource": [
                    "arn:${partition}:events:${region}:${account_id}:event-bus/${prefix}-shop",
                    "arn:${partition}:events:${region}:${account_id}:event-bus/default",
                ],
            })
        );
        // A rule's target is invoked by EventBridge, not given PutEvents;
        // and only the exact name `default` refers to the default bus.
        assert!(statement(&out, "fulfil", "PutEvents").is_null());
        assert_eq!(out["deploy"]["functions"]["fulfil"]["bus_env"], json!({}));
        assert_eq!(out["rules"]["order-placed"]["bus"], json!("shop"));
        assert_eq!(
            out["rules"]["order-placed"]["event_pattern"],
            json!("{\"source\": [\"woocom.orders\"]}")
        );
    }

    #[test]
    fn an_env_value_naming_a_table_and_a_bus_is_refused() {
        let text = "[functions.f]\ncrate = \"c\"\nenv = { X = \"shop\" }\n[tables.shop]\npartition_key = { name = \"id\" }\n[buses.shop]\n";
        let err = render(&manifest(text)).expect_err("refused").to_string();
        assert!(
            err.contains("env `X`") && err.contains("[tables.shop]"),
            "{err}"
        );
    }

    #[test]
    fn a_rule_name_too_long_once_prefixed_is_refused() {
        let long = "r".repeat(MAX_EVENTS_NAME - LONGEST_FIXED_PREFIX.len() + 1);
        let text = format!(
            "[functions.f]\ncrate = \"c\"\n[rules.{long}]\nevent_pattern = '{{\"source\": [\"a\"]}}'\n"
        );
        let err = render(&manifest(&text)).expect_err("refused").to_string();
        assert!(err.contains(&format!("[rules.{long}]")), "{err}");
        let fits = &long[1..];
        let text = format!(
            "[functions.f]\ncrate = \"c\"\n[rules.{fits}]\nevent_pattern = '{{\"source\": [\"a\"]}}'\n"
        );
        render(&manifest(&text)).expect("46 characters fit");
    }

    #[test]
    fn a_dedicated_on_failure_queue_may_not_share_a_declared_queue_name() {
        let text = "[functions.f]\ncrate = \"c\"\n[tables.things]\npartition_key = { name = \"id\" }\nstream = \"KEYS_ONLY\"\n[queues.fails]\n[[subscriptions]]\ntable = \"things\"\nfunction = \"f\"\nstarting_position = \"LATEST\"\non_failure = \"dlq:fails\"\n";
        let err = render(&manifest(text)).expect_err("refused").to_string();
        assert!(err.contains("on_failure = \"queue:fails\""), "{err}");
    }
}
