//! The services of one stack, and `dev.toml` applied to them one way:
//! [`apply`] takes the
//! running configuration (none at start) and the new one and brings each
//! service to the new one. `Stack::start` and hot reload both call it, so a
//! section behaves the same whether it was there at start or added later.
//!
//! | section | applied |
//! |---|---|
//! | `[[tables]]` | live: created or updated (what AWS cannot change in place rejects the edit) |
//! | `[buses]`, `[rules]` | live: created, updated or deleted (what the API made stays) |
//! | `[buckets]` | live: created, CORS rules and notifications set (removed buckets stay, with their objects) |
//! | `[queues]` | live: created or updated (a queue turned FIFO rejects the edit); removed ones stay, as tables do |
//! | `[functions]` | live: new or re-pointed ones are built (invocations wait), settings take effect for new instances, removed ones stop |
//! | `[api]`, `[[routes]]` | live: redeployed, requests in flight finish on the old deployment |
//! | `[websocket]` | live: new routes for the next message; open connections keep their timeouts |
//! | `[[subscriptions]]`, `[streams]` | live: mappings start, stop, or restart from their checkpoint |
//! | `[ports]`, `[stack]`, `[frontend]` | at the next `woocom-dev up`: said so, naming the line; the running values stay |
//!
//! An edit that cannot be applied (a bad file, a table change DynamoDB
//! refuses) is rejected before any service changes.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::dynamodb::{DynamoDb, ReconcileError, ReconcileReport};
use crate::event_source_mapping::EventSourceMappings;
use crate::eventbridge::{EventBridge, EventsError};
use crate::gateway::rest::RestApi;
use crate::gateway::websocket::WebSocketGateway;
use crate::lambda::{FunctionSpec, LambdaHost};
use crate::manifest::Manifest;
use crate::sns::{Sns, SnsError};
use crate::sqs::Sqs;
use crate::sqs::error::SqsError;

/// The services a manifest configures.
#[derive(Clone)]
pub struct Services {
    pub lambda: Arc<LambdaHost>,
    pub rest: Arc<RestApi>,
    pub websocket: Arc<WebSocketGateway>,
    pub dynamodb: Arc<DynamoDb>,
    pub sqs: Arc<Sqs>,
    pub sns: Arc<Sns>,
    pub events: Arc<EventBridge>,
    pub s3: Arc<crate::s3::S3>,
    pub s3_notifier: Arc<crate::s3::notify::Notifier>,
    pub mappings: Arc<EventSourceMappings>,
}

/// What [`apply`] did.
#[derive(Debug)]
pub struct Applied {
    /// What changed, as the reload log says it.
    pub changes: Vec<String>,
    /// Functions that need a build: new, or built from another crate. They
    /// are held (`LambdaHost::hold`): their invocations wait until the
    /// caller builds them and releases them.
    pub to_build: BTreeSet<String>,
    /// Sections that changed but apply only at the next start, each
    /// naming the file and line.
    pub needs_restart: Vec<String>,
    pub tables: ReconcileReport,
    /// The configuration now running: the new one, with the sections that
    /// need a restart as they were.
    pub running: Manifest,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Tables(Box<ReconcileError>),
    #[error("{}: [queues] {}", .0, .1.message)]
    Queues(String, SqsError),
    #[error("{}: [topics] {}", .0, .1.message)]
    Topics(String, SnsError),
    #[error("{}: [buses]/[rules] {}", .0, .1.message)]
    Events(String, EventsError),
    #[error("{0}: [buckets] {1}")]
    Buckets(String, String),
}

impl From<ReconcileError> for ApplyError {
    fn from(e: ReconcileError) -> Self {
        ApplyError::Tables(Box::new(e))
    }
}

/// Brings the services from `old` (what runs; `None` at start) to `new`.
pub async fn apply(
    services: &Services,
    old: Option<&Manifest>,
    new: &Manifest,
) -> Result<Applied, ApplyError> {
    let mut running = new.clone();
    let mut changes = Vec::new();
    let mut needs_restart = Vec::new();

    if let Some(old) = old {
        let text = std::fs::read_to_string(&new.path).unwrap_or_default();
        let mut restart = |section: &str, changed: bool| {
            if changed {
                needs_restart.push(format!(
                    "{}:{}: [{section}] changed; it applies at the next `woocom-dev up` (the running stack keeps the old values)",
                    new.path.display(),
                    section_line(&text, section)
                ));
            }
        };
        restart("ports", old.ports != new.ports);
        restart("stack", old.stack != new.stack);
        restart("frontend", old.frontend != new.frontend);
        running.ports = old.ports;
        running.stack = old.stack.clone();
        running.frontend = old.frontend.clone();
    }

    // Tables first: a change DynamoDB refuses rejects the whole edit
    // before anything else changes.
    let tables = services.dynamodb.reconcile(&running).await?;
    for t in &tables.created {
        changes.push(format!("created table {t}"));
    }
    for t in &tables.updated {
        changes.push(format!("updated table {t}"));
    }

    // Queues next, dead-letter queues first; a change SQS cannot make in
    // place (a queue turned FIFO) rejects the edit.
    let queue_changes = services
        .sqs
        .reconcile(&running.queues)
        .map_err(|e| ApplyError::Queues(new.path.display().to_string(), e))?;
    changes.extend(queue_changes);

    // Topics after the queues their subscriptions name.
    let lambda = services.lambda.clone();
    let topic_changes = services
        .sns
        .reconcile(&running.topics, &|f| lambda.function_arn(f))
        .map_err(|e| ApplyError::Topics(new.path.display().to_string(), e))?;
    changes.extend(topic_changes);

    // Buses and rules after the queues and topics their targets name.
    let event_changes = services
        .events
        .reconcile(&running.buses, &running.rules, Some(&services.lambda))
        .map_err(|e| ApplyError::Events(new.path.display().to_string(), e))?;
    changes.extend(event_changes);

    // Buckets after the functions, queues and topics they notify.
    let bucket_changes = apply_buckets(services, old, &running)
        .map_err(|e| ApplyError::Buckets(new.path.display().to_string(), e))?;
    changes.extend(bucket_changes);

    let to_build = apply_functions(&services.lambda, old, &running, &mut changes);

    let api_changed = old.is_none_or(|o| o.api != running.api || o.routes != running.routes);
    if api_changed {
        services
            .rest
            .redeploy(running.api.clone(), running.routes.clone());
        if old.is_some() {
            changes.push("REST API routes and settings".to_owned());
        }
    }

    if old.is_none_or(|o| o.websocket != running.websocket) {
        services
            .websocket
            .redeploy(running.websocket.clone().unwrap_or_default());
        if old.is_some() {
            changes.push("WebSocket API routes and settings".to_owned());
        }
    }

    let mapping_changes = services
        .mappings
        .apply(&running.subscriptions, running.streams)
        .await;
    if old.is_some() {
        changes.extend(mapping_changes);
    }

    Ok(Applied {
        changes,
        to_build,
        needs_restart,
        tables,
        running,
    })
}

/// Buckets declared are created; their CORS rules (when dev.toml sets
/// some, or set some before) and notifications take effect.
fn apply_buckets(
    services: &Services,
    old: Option<&Manifest>,
    new: &Manifest,
) -> Result<Vec<String>, String> {
    let mut changes = Vec::new();
    for (name, bucket) in &new.buckets {
        if services.s3.ensure_bucket(name)? {
            changes.push(format!("created bucket {name}"));
        }
        let before = old.and_then(|o| o.buckets.get(name));
        let had_cors = before.is_some_and(|b| !b.cors_rule.is_empty());
        if !bucket.cors_rule.is_empty() {
            if before.is_none_or(|b| b.cors_rule != bucket.cors_rule) {
                services.s3.set_cors(name, Some(bucket.cors_rule.clone()))?;
                if old.is_some() {
                    changes.push(format!("bucket {name} CORS rules"));
                }
            }
        } else if had_cors {
            services.s3.set_cors(name, None)?;
            changes.push(format!("bucket {name} CORS rules removed"));
        }
        if old.is_some() && before.is_some_and(|b| b.notifications != bucket.notifications) {
            changes.push(format!("bucket {name} notifications"));
        }
    }
    services.s3_notifier.configure(&new.buckets);
    Ok(changes)
}

/// Functions removed stop; new ones (and ones built from another crate)
/// are held for a build; others with new settings get them for their next
/// instances. Returns the functions to build.
fn apply_functions(
    lambda: &LambdaHost,
    old: Option<&Manifest>,
    new: &Manifest,
    changes: &mut Vec<String>,
) -> BTreeSet<String> {
    let mut to_build = BTreeSet::new();
    if let Some(old) = old {
        for name in old.functions.keys() {
            if !new.functions.contains_key(name) {
                lambda.remove_function(name);
                changes.push(format!("removed function {name}"));
            }
        }
    }
    for (name, f) in &new.functions {
        match old.and_then(|o| o.functions.get(name)) {
            None => {
                to_build.insert(name.clone());
                if old.is_some() {
                    changes.push(format!("added function {name}"));
                }
            }
            Some(o) if o.package != f.package || o.bin != f.bin => {
                to_build.insert(name.clone());
                changes.push(format!("function {name} now builds from {}", f.package));
            }
            Some(o) if o != f => {
                // Same binary, new settings (env, timeout, memory,
                // concurrency, event invoke config): new instances get them.
                if let Some(binary) = lambda.binary_of(name) {
                    lambda.put_function(FunctionSpec {
                        config: f.clone(),
                        stamp: FunctionSpec::stamp_of(&binary),
                        binary,
                    });
                }
                changes.push(format!("function {name} settings"));
            }
            Some(_) => {}
        }
    }
    let held: Vec<String> = to_build.iter().cloned().collect();
    lambda.hold(&held);
    to_build
}

/// The line of a `[section]` header in dev.toml's text (1 when absent:
/// the section was removed).
fn section_line(text: &str, section: &str) -> usize {
    let header = format!("[{section}]");
    text.lines()
        .position(|l| l.trim_start().starts_with(&header))
        .map_or(1, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::section_line;

    #[test]
    fn section_lines_count_from_one() {
        let text = "[stack]\nname = \"x\"\n\n[frontend]\ndir = \"f\"\n";
        assert_eq!(section_line(text, "stack"), 1);
        assert_eq!(section_line(text, "frontend"), 4);
        assert_eq!(section_line(text, "ports"), 1);
    }
}
