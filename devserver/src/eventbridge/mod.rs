//! EventBridge: event buses (the `default` bus and custom ones), rules with
//! event patterns or schedules, and their targets (functions, queues,
//! topics, other buses), served on the AWS endpoint in the JSON protocol
//! the SDKs and the AWS CLI speak (`X-Amz-Target: AWSEvents.*`).
//! <https://docs.aws.amazon.com/eventbridge/latest/APIReference/Welcome.html>
//!
//! Delivery, as EventBridge does it (classic buses):
//! - `PutEvents` answers once the events are accepted; each event goes to
//!   the targets of every enabled rule of its bus whose pattern matches, in
//!   the background.
//! - A function target is invoked asynchronously (the function's retry and
//!   destination settings apply); a queue target gets the event as the
//!   message body (a FIFO queue with the target's `MessageGroupId`; it
//!   deduplicates by content, as EventBridge requires); a topic target gets
//!   it as the message; a
//!   bus target receives the event as it is.
//! - What the target gets is the event, or the target's `Input`,
//!   `InputPath` or `InputTransformer` ([`transform`]).
//! - A delivery that fails is retried with exponential back-off until the
//!   target's retry policy (attempts, event age) is spent; a target that
//!   does not exist is not retried. Then the event goes to the target's
//!   dead-letter queue with the attributes EventBridge adds (`RULE_ARN`,
//!   `TARGET_ARN`, `ERROR_CODE`, `ERROR_MESSAGE`, ...), or is dropped.
//!   Failures are logged and listed by `woocom-dev events`.
//! - Scheduled rules (`rate(...)`, `cron(...)`, UTC) fire on time with a
//!   `Scheduled Event` from `aws.events`; `woocom-dev events fire <rule>`
//!   fires one now.
//!
//! Differences from AWS, on purpose: retries wait 100 ms doubling up to
//! 5 s (AWS backs off over up to 24 hours), so a failing target reaches its
//! dead-letter queue in seconds or minutes, not a day. Events accepted but
//! not yet delivered are held in memory: a `kill -9` loses them (rules and
//! targets persist in `eventbridge.json`).

pub mod api;
pub mod archive;
pub mod control;
pub mod schedule;
pub mod transform;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::dynamodb::DataLocation;
use crate::event_pattern::{FilterPattern, PatternSet};
use crate::lambda::{InvokeRequest, LambdaError, LambdaHost};
use crate::manifest::events::{DEFAULT_BUS, InputTransformer, RetryPolicy};
use crate::manifest::{self, TargetKind};
use crate::sns::Sns;
use crate::sqs::message::AttributeValue;
use crate::sqs::{SendRequest, Sqs};

/// The file buses, rules and targets persist in, under `.woocom/data`.
pub const STATE_FILE: &str = "eventbridge.json";
/// `X-Amz-Target` prefix of EventBridge's operations.
pub const TARGET_PREFIX: &str = "AWSEvents.";
/// Entries per `PutEvents`.
pub const MAX_ENTRIES: usize = 10;
/// A `PutEvents` request's entries, in all (AWS counts each entry's
/// fields; see `entry_size`).
pub const MAX_REQUEST_BYTES: usize = 1_048_576;
/// Failures `woocom-dev events` can list.
const FAILURES_KEPT: usize = 200;
/// First wait before a retry, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_LONGEST: Duration = Duration::from_secs(5);
/// How often scheduled rules are checked.
const SCHEDULE_TICK: Duration = Duration::from_millis(500);

/// An EventBridge error, as the JSON protocol sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsError {
    pub code: &'static str,
    pub message: String,
}

impl EventsError {
    pub fn new(code: &'static str, message: impl Into<String>) -> EventsError {
        EventsError {
            code,
            message: message.into(),
        }
    }
    pub fn validation(message: impl Into<String>) -> EventsError {
        EventsError::new("ValidationException", message)
    }
    pub fn not_found(message: impl Into<String>) -> EventsError {
        EventsError::new("ResourceNotFoundException", message)
    }
    pub fn bus_not_found(bus: &str) -> EventsError {
        EventsError::not_found(format!("Event bus {bus} does not exist."))
    }
    pub fn rule_not_found(rule: &str, bus: &str) -> EventsError {
        EventsError::not_found(format!("Rule {rule} does not exist on EventBus {bus}."))
    }
    pub fn pattern(reason: &str) -> EventsError {
        EventsError::new(
            "InvalidEventPatternException",
            format!("Event pattern is not valid. Reason: {reason}"),
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BusState {
    name: String,
    description: Option<String>,
    created_ms: i64,
    declared: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    rules: BTreeMap<String, RuleState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RuleState {
    name: String,
    description: Option<String>,
    event_pattern: Option<String>,
    schedule_expression: Option<String>,
    /// `ENABLED` or `DISABLED`.
    state: String,
    role_arn: Option<String>,
    declared: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    targets: Vec<TargetState>,
    #[serde(skip)]
    pattern: Option<FilterPattern>,
    #[serde(skip)]
    schedule: Option<Schedule>,
}

/// A target as the API describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetState {
    pub id: String,
    pub arn: String,
    pub input: Option<String>,
    pub input_path: Option<String>,
    pub input_transformer: Option<InputTransformer>,
    pub message_group_id: Option<String>,
    pub retry_policy: RetryPolicy,
    pub dead_letter_arn: Option<String>,
    pub role_arn: Option<String>,
}

#[derive(Debug, Clone)]
enum Schedule {
    Rate(schedule::Rate),
    Cron(schedule::Cron),
}

impl Schedule {
    fn parse(expression: &str) -> Result<Schedule, String> {
        manifest::events::schedule_ok(expression)?;
        if let Some(inner) = expression
            .strip_prefix("rate(")
            .and_then(|r| r.strip_suffix(')'))
        {
            return schedule::Rate::parse(inner).map(Schedule::Rate);
        }
        let inner = expression
            .strip_prefix("cron(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_default();
        schedule::Cron::parse(inner).map(Schedule::Cron)
    }

    /// When it fires next after `after_ms` (rates count from `after_ms`).
    fn next_ms(&self, after_ms: i64) -> Option<i64> {
        match self {
            Schedule::Rate(r) => {
                Some(after_ms + i64::try_from(r.every.as_millis()).unwrap_or(i64::MAX / 2))
            }
            Schedule::Cron(c) => {
                let after = chrono::DateTime::from_timestamp_millis(after_ms)?;
                c.next_after(after).map(|t| t.timestamp_millis())
            }
        }
    }
}

/// What a rule is, for the API and the CLI.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleInfo {
    pub name: String,
    pub arn: String,
    pub bus: String,
    pub description: Option<String>,
    pub event_pattern: Option<String>,
    pub schedule_expression: Option<String>,
    pub state: String,
    pub role_arn: Option<String>,
    pub targets: Vec<TargetState>,
}

/// A bus, for the API and the CLI.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BusInfo {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub created_ms: i64,
}

/// One `PutEvents` entry.
#[derive(Debug, Clone, Default)]
pub struct EventEntry {
    pub source: Option<String>,
    pub detail_type: Option<String>,
    pub detail: Option<String>,
    pub resources: Vec<String>,
    /// `Time`, in milliseconds since the epoch (default: now).
    pub time_ms: Option<i64>,
    pub bus: Option<String>,
    pub trace_header: Option<String>,
}

/// What one entry got: its event id, or an error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    Accepted(String),
    Failed { code: String, message: String },
}

/// A delivery that failed for good, for `woocom-dev events`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryFailure {
    pub time: String,
    pub rule_arn: String,
    pub target_id: String,
    pub target_arn: String,
    pub event_id: String,
    pub error_code: String,
    pub error_message: String,
    pub attempts: u32,
    /// Where the event went: the dead-letter queue's ARN, or none (dropped).
    pub dead_letter_arn: Option<String>,
}

/// One event as `woocom-dev events tail` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Tailed {
    pub bus: String,
    pub event: Arc<Value>,
    /// The rules it matched.
    pub rules: Vec<String>,
}

/// Which rules of a bus an event goes to.
#[derive(Clone, Copy)]
enum Route<'a> {
    /// The enabled rules whose pattern matches.
    Matching,
    /// This rule, whatever its pattern (a schedule, or `fire`).
    Rule(&'a str),
    /// A replay: the matching rules among these rule ARNs (all when empty).
    Replay(&'a [String]),
}

/// One delivery to make: an event for one target of one rule.
struct Delivery {
    rule_arn: String,
    rule_name: String,
    target: TargetState,
    event: Arc<Value>,
    ingestion_time: String,
    accepted_ms: i64,
}

/// Why a delivery failed.
struct Failure {
    code: &'static str,
    message: String,
    /// Whether trying again may succeed.
    retriable: bool,
}

/// The EventBridge service of one stack.
pub struct EventBridge {
    buses: Mutex<BTreeMap<String, BusState>>,
    path: Option<PathBuf>,
    region: String,
    account_id: String,
    sqs: Arc<Sqs>,
    sns: Arc<Sns>,
    lambda: Weak<LambdaHost>,
    failures: Mutex<VecDeque<DeliveryFailure>>,
    tail: tokio::sync::broadcast::Sender<Tailed>,
    /// Next firing of each scheduled rule, by rule ARN.
    next_fire: Mutex<HashMap<String, i64>>,
    archives: Mutex<archive::Archives>,
    me: RwLock<Weak<EventBridge>>,
    /// Bumped (under the `buses` lock) by every change to buses or rules:
    /// a bus's [`RuleIndex`] built at another generation is rebuilt.
    generation: std::sync::atomic::AtomicU64,
    /// Each bus's enabled pattern rules, indexed for matching.
    indexes: Mutex<HashMap<String, Arc<RuleIndex>>>,
}

/// The enabled rules of a bus that have a pattern, as one [`PatternSet`]:
/// an event is checked only against the rules that could match it (by
/// `source` or `detail-type`), not against every rule in turn.
struct RuleIndex {
    generation: u64,
    set: PatternSet,
    /// Rule name of each pattern of `set`, by position.
    rules: Vec<String>,
}

fn now_ms() -> i64 {
    crate::sqs::now_ms()
}

fn iso_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl EventBridge {
    /// Opens the stack's buses (`<data>/eventbridge.json`, or in memory).
    pub fn open(
        location: &DataLocation,
        region: &str,
        account_id: &str,
        sqs: Arc<Sqs>,
        sns: Arc<Sns>,
        lambda: Weak<LambdaHost>,
    ) -> Result<Arc<EventBridge>, String> {
        let mut buses = BTreeMap::new();
        let path = match location {
            DataLocation::Dir(dir) => {
                let _ = std::fs::create_dir_all(dir);
                let path = dir.join(STATE_FILE);
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        let saved: Vec<BusState> = serde_json::from_slice(&bytes)
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                        for mut b in saved {
                            for r in b.rules.values_mut() {
                                r.pattern = r
                                    .event_pattern
                                    .as_deref()
                                    .and_then(|p| FilterPattern::parse(p).ok());
                                r.schedule = r
                                    .schedule_expression
                                    .as_deref()
                                    .and_then(|s| Schedule::parse(s).ok());
                            }
                            buses.insert(b.name.clone(), b);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                }
                Some(path)
            }
            DataLocation::Memory => None,
        };
        buses
            .entry(DEFAULT_BUS.to_owned())
            .or_insert_with(|| BusState {
                name: DEFAULT_BUS.to_owned(),
                description: None,
                created_ms: now_ms(),
                declared: false,
                tags: BTreeMap::new(),
                rules: BTreeMap::new(),
            });
        let events = Arc::new(EventBridge {
            buses: Mutex::new(buses),
            path,
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            sqs,
            sns,
            lambda,
            failures: Mutex::new(VecDeque::new()),
            tail: tokio::sync::broadcast::channel(256).0,
            next_fire: Mutex::new(HashMap::new()),
            archives: Mutex::new(archive::Archives::open(location)?),
            me: RwLock::new(Weak::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
            indexes: Mutex::new(HashMap::new()),
        });
        *events
            .me
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::downgrade(&events);
        Ok(events)
    }

    fn me(&self) -> Option<Arc<EventBridge>> {
        self.me
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .upgrade()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BusState>> {
        self.buses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The buses, to change: indexes built before are rebuilt when next
    /// used.
    fn lock_mut(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BusState>> {
        let buses = self.lock();
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        buses
    }

    /// The rule index of `bus` as it is now (`buses` is the locked map).
    fn rule_index(&self, bus: &BusState) -> Arc<RuleIndex> {
        let generation = self.generation.load(std::sync::atomic::Ordering::Relaxed);
        let mut indexes = self
            .indexes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(index) = indexes.get(&bus.name)
            && index.generation == generation
        {
            return index.clone();
        }
        let (rules, patterns): (Vec<String>, Vec<FilterPattern>) = bus
            .rules
            .values()
            .filter(|r| r.state == "ENABLED")
            .filter_map(|r| Some((r.name.clone(), r.pattern.clone()?)))
            .unzip();
        let index = Arc::new(RuleIndex {
            generation,
            set: PatternSet::new(patterns),
            rules,
        });
        indexes.insert(bus.name.clone(), index.clone());
        index
    }

    fn save(&self, buses: &BTreeMap<String, BusState>) -> Result<(), EventsError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let list: Vec<&BusState> = buses.values().collect();
        let bytes = serde_json::to_vec_pretty(&list).map_err(|e| {
            EventsError::new("InternalException", format!("cannot save the buses: {e}"))
        })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                EventsError::new(
                    "InternalException",
                    format!("cannot save the buses to {}: {e}", path.display()),
                )
            })
    }

    // ---- names and ARNs --------------------------------------------------

    pub fn bus_arn(&self, bus: &str) -> String {
        format!(
            "arn:aws:events:{}:{}:event-bus/{bus}",
            self.region, self.account_id
        )
    }

    pub fn rule_arn(&self, bus: &str, rule: &str) -> String {
        if bus == DEFAULT_BUS {
            format!(
                "arn:aws:events:{}:{}:rule/{rule}",
                self.region, self.account_id
            )
        } else {
            format!(
                "arn:aws:events:{}:{}:rule/{bus}/{rule}",
                self.region, self.account_id
            )
        }
    }

    /// A bus named by name or ARN (`None`: the default bus).
    pub fn bus_name(&self, name_or_arn: Option<&str>) -> String {
        match name_or_arn {
            None | Some("") => DEFAULT_BUS.to_owned(),
            Some(s) => s
                .strip_prefix("arn:")
                .and_then(|rest| rest.rsplit_once(":event-bus/"))
                .map_or(s, |(_, name)| name)
                .to_owned(),
        }
    }

    fn arn_of(&self, kind: &TargetKind, lambda: Option<&LambdaHost>) -> String {
        match kind {
            TargetKind::Function(f) => lambda.map_or_else(
                || {
                    format!(
                        "arn:aws:lambda:{}:{}:function:{f}",
                        self.region, self.account_id
                    )
                },
                |l| l.function_arn(f),
            ),
            TargetKind::Queue(q) => self.sqs.queue_arn(q),
            TargetKind::Topic(t) => self.sns.topic_arn(t),
            TargetKind::Bus(b) => self.bus_arn(b),
        }
    }

    // ---- buses -----------------------------------------------------------

    /// `CreateEventBus`.
    pub fn create_bus(
        &self,
        name: &str,
        description: Option<String>,
        tags: BTreeMap<String, String>,
    ) -> Result<String, EventsError> {
        if !manifest::events::name_ok(name) || name.starts_with("aws.") || name == DEFAULT_BUS {
            return Err(EventsError::validation(format!(
                "Event bus name {name} is not valid: 1-64 letters, digits, `.`, `-` and `_`, not `default` and not starting with `aws.`."
            )));
        }
        let mut buses = self.lock_mut();
        if buses.contains_key(name) {
            return Err(EventsError::new(
                "ResourceAlreadyExistsException",
                format!("Event bus {name} already exists."),
            ));
        }
        buses.insert(
            name.to_owned(),
            BusState {
                name: name.to_owned(),
                description,
                created_ms: now_ms(),
                declared: false,
                tags,
                rules: BTreeMap::new(),
            },
        );
        self.save(&buses)?;
        Ok(self.bus_arn(name))
    }

    /// `DeleteEventBus` (a bus that does not exist is not an error).
    pub fn delete_bus(&self, name: &str) -> Result<(), EventsError> {
        if name == DEFAULT_BUS {
            return Err(EventsError::validation("Cannot delete event bus default."));
        }
        let mut buses = self.lock_mut();
        if buses.remove(name).is_some() {
            self.save(&buses)?;
        }
        Ok(())
    }

    pub fn bus(&self, name: &str) -> Result<BusInfo, EventsError> {
        let buses = self.lock();
        let b = buses
            .get(name)
            .ok_or_else(|| EventsError::bus_not_found(name))?;
        Ok(BusInfo {
            name: b.name.clone(),
            arn: self.bus_arn(&b.name),
            description: b.description.clone(),
            created_ms: b.created_ms,
        })
    }

    pub fn buses(&self) -> Vec<BusInfo> {
        let names: Vec<String> = self.lock().keys().cloned().collect();
        names.iter().filter_map(|n| self.bus(n).ok()).collect()
    }

    // ---- rules -----------------------------------------------------------

    /// `PutRule`: creates or updates a rule (its targets stay).
    #[allow(clippy::too_many_arguments)]
    pub fn put_rule(
        &self,
        bus: &str,
        name: &str,
        event_pattern: Option<String>,
        schedule_expression: Option<String>,
        state: Option<String>,
        description: Option<String>,
        role_arn: Option<String>,
        tags: BTreeMap<String, String>,
    ) -> Result<String, EventsError> {
        if !manifest::events::name_ok(name) {
            return Err(EventsError::validation(format!(
                "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+"
            )));
        }
        if event_pattern.is_none() && schedule_expression.is_none() {
            return Err(EventsError::validation(
                "Parameter(s) EventPattern or ScheduleExpression must be specified.",
            ));
        }
        let pattern = match &event_pattern {
            Some(p) => Some(FilterPattern::parse(p).map_err(|r| EventsError::pattern(&r))?),
            None => None,
        };
        let schedule = match &schedule_expression {
            Some(s) => {
                if bus != DEFAULT_BUS {
                    return Err(EventsError::validation(
                        "ScheduleExpression is supported only on the default event bus.",
                    ));
                }
                Some(Schedule::parse(s).map_err(EventsError::validation)?)
            }
            None => None,
        };
        let state = match state.as_deref() {
            None => "ENABLED".to_owned(),
            Some(s @ ("ENABLED" | "DISABLED")) => s.to_owned(),
            Some(other) => {
                return Err(EventsError::validation(format!(
                    "1 validation error detected: Value '{other}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]"
                )));
            }
        };
        let mut buses = self.lock_mut();
        let b = buses
            .get_mut(bus)
            .ok_or_else(|| EventsError::bus_not_found(bus))?;
        let (targets, declared, old_tags) = b
            .rules
            .remove(name)
            .map(|r| (r.targets, r.declared, r.tags))
            .unwrap_or_default();
        let mut all_tags = old_tags;
        all_tags.extend(tags);
        b.rules.insert(
            name.to_owned(),
            RuleState {
                name: name.to_owned(),
                description,
                event_pattern,
                schedule_expression,
                state,
                role_arn,
                declared,
                tags: all_tags,
                targets,
                pattern,
                schedule,
            },
        );
        self.save(&buses)?;
        drop(buses);
        let arn = self.rule_arn(bus, name);
        self.lock_fire().remove(&arn);
        Ok(arn)
    }

    fn lock_fire(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.next_fire
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with_rule<T>(
        &self,
        bus: &str,
        rule: &str,
        f: impl FnOnce(&mut RuleState) -> Result<T, EventsError>,
    ) -> Result<T, EventsError> {
        let mut buses = self.lock_mut();
        let b = buses
            .get_mut(bus)
            .ok_or_else(|| EventsError::bus_not_found(bus))?;
        let r = b
            .rules
            .get_mut(rule)
            .ok_or_else(|| EventsError::rule_not_found(rule, bus))?;
        let out = f(r)?;
        self.save(&buses)?;
        Ok(out)
    }

    pub fn rule(&self, bus: &str, name: &str) -> Result<RuleInfo, EventsError> {
        let buses = self.lock();
        let b = buses
            .get(bus)
            .ok_or_else(|| EventsError::bus_not_found(bus))?;
        let r = b
            .rules
            .get(name)
            .ok_or_else(|| EventsError::rule_not_found(name, bus))?;
        Ok(self.rule_info(bus, r))
    }

    fn rule_info(&self, bus: &str, r: &RuleState) -> RuleInfo {
        RuleInfo {
            name: r.name.clone(),
            arn: self.rule_arn(bus, &r.name),
            bus: bus.to_owned(),
            description: r.description.clone(),
            event_pattern: r.event_pattern.clone(),
            schedule_expression: r.schedule_expression.clone(),
            state: r.state.clone(),
            role_arn: r.role_arn.clone(),
            targets: r.targets.clone(),
        }
    }

    /// The rules of a bus (`ListRules`), by name.
    pub fn rules(&self, bus: &str) -> Result<Vec<RuleInfo>, EventsError> {
        let buses = self.lock();
        let b = buses
            .get(bus)
            .ok_or_else(|| EventsError::bus_not_found(bus))?;
        Ok(b.rules.values().map(|r| self.rule_info(bus, r)).collect())
    }

    /// Every rule of every bus (for the CLI).
    pub fn all_rules(&self) -> Vec<RuleInfo> {
        let buses = self.lock();
        buses
            .values()
            .flat_map(|b| b.rules.values().map(|r| self.rule_info(&b.name, r)))
            .collect()
    }

    /// The rules with a target of this ARN (`ListRuleNamesByTarget`).
    pub fn rule_names_by_target(&self, bus: &str, arn: &str) -> Result<Vec<String>, EventsError> {
        let buses = self.lock();
        let b = buses
            .get(bus)
            .ok_or_else(|| EventsError::bus_not_found(bus))?;
        Ok(b.rules
            .values()
            .filter(|r| r.targets.iter().any(|t| t.arn == arn))
            .map(|r| r.name.clone())
            .collect())
    }

    pub fn set_state(&self, bus: &str, rule: &str, enabled: bool) -> Result<(), EventsError> {
        self.with_rule(bus, rule, |r| {
            r.state = if enabled { "ENABLED" } else { "DISABLED" }.to_owned();
            Ok(())
        })
    }

    /// `DeleteRule`: refused while the rule has targets, unless `force`.
    pub fn delete_rule(&self, bus: &str, rule: &str, force: bool) -> Result<(), EventsError> {
        let mut buses = self.lock_mut();
        let b = buses
            .get_mut(bus)
            .ok_or_else(|| EventsError::bus_not_found(bus))?;
        match b.rules.get(rule) {
            None => return Ok(()),
            Some(r) if !r.targets.is_empty() && !force => {
                return Err(EventsError::validation(
                    "Rule can't be deleted since it has targets.",
                ));
            }
            Some(_) => {}
        }
        b.rules.remove(rule);
        self.save(&buses)
    }

    // ---- targets ---------------------------------------------------------

    /// `PutTargets`: adds or replaces targets by id. Returns the entries
    /// that failed (id, code, message).
    pub fn put_targets(
        &self,
        bus: &str,
        rule: &str,
        targets: Vec<TargetState>,
    ) -> Result<Vec<(String, String, String)>, EventsError> {
        let mut failed = Vec::new();
        let mut good = Vec::new();
        for t in targets {
            match self.check_target(&t) {
                Ok(()) => good.push(t),
                Err(e) => failed.push((t.id.clone(), e.code.to_owned(), e.message)),
            }
        }
        self.with_rule(bus, rule, |r| {
            let new_ids = good
                .iter()
                .filter(|t| !r.targets.iter().any(|o| o.id == t.id))
                .count();
            if r.targets.len() + new_ids > manifest::events::MAX_TARGETS {
                return Err(EventsError::new(
                    "LimitExceededException",
                    "The requested resource exceeds the maximum number allowed.",
                ));
            }
            for t in good {
                match r.targets.iter_mut().find(|o| o.id == t.id) {
                    Some(o) => *o = t,
                    None => r.targets.push(t),
                }
            }
            Ok(())
        })?;
        Ok(failed)
    }

    fn check_target(&self, t: &TargetState) -> Result<(), EventsError> {
        let ok_id = !t.id.is_empty()
            && t.id.len() <= 64
            && t.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !ok_id {
            return Err(EventsError::validation(format!(
                "Target Id {} is not valid: 1-64 letters, digits, `.`, `-` and `_`.",
                t.id
            )));
        }
        let inputs = usize::from(t.input.is_some())
            + usize::from(t.input_path.is_some())
            + usize::from(t.input_transformer.is_some());
        if inputs > 1 {
            return Err(EventsError::validation(
                "Only one of Input, InputPath, or InputTransformer must be provided.",
            ));
        }
        if let Some(i) = &t.input
            && serde_json::from_str::<Value>(i).is_err()
        {
            return Err(EventsError::validation("Input is not valid JSON text."));
        }
        if let Some(p) = &t.input_path {
            transform::JsonPath::parse(p)
                .map_err(|e| EventsError::validation(format!("InputPath is not valid: {e}")))?;
        }
        if let Some(tr) = &t.input_transformer {
            transform::Transformer::new(tr).map_err(EventsError::validation)?;
        }
        if target_kind(&t.arn).is_none() {
            return Err(EventsError::validation(format!(
                "Target {} has an ARN this stack cannot deliver to ({}): name a Lambda function, an SQS queue, an SNS topic or an event bus.",
                t.id, t.arn
            )));
        }
        let p = t.retry_policy;
        if p.maximum_retry_attempts > 185
            || !(60..=86_400).contains(&p.maximum_event_age_in_seconds)
        {
            return Err(EventsError::validation(
                "RetryPolicy: MaximumRetryAttempts is 0-185 and MaximumEventAgeInSeconds 60-86400.",
            ));
        }
        Ok(())
    }

    /// `RemoveTargets`: the ids that were not there fail.
    pub fn remove_targets(
        &self,
        bus: &str,
        rule: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String, String)>, EventsError> {
        self.with_rule(bus, rule, |r| {
            let mut failed = Vec::new();
            for id in ids {
                let before = r.targets.len();
                r.targets.retain(|t| &t.id != id);
                if r.targets.len() == before {
                    failed.push((
                        id.clone(),
                        "ResourceNotFoundException".to_owned(),
                        format!("Target {id} does not exist on rule {rule}."),
                    ));
                }
            }
            Ok(failed)
        })
    }

    // ---- dev.toml ----------------------------------------------------------

    /// Makes the declared buses and rules those of dev.toml: declared ones
    /// are created or updated (their targets become dev.toml's), declared
    /// ones dropped from dev.toml are deleted; what the API made stays.
    pub fn reconcile(
        &self,
        buses_declared: &BTreeMap<String, manifest::Bus>,
        rules_declared: &BTreeMap<String, manifest::Rule>,
        lambda: Option<&LambdaHost>,
    ) -> Result<Vec<String>, EventsError> {
        let mut changes = Vec::new();
        let mut buses = self.lock_mut();
        let dropped: Vec<String> = buses
            .values()
            .filter(|b| b.declared && !buses_declared.contains_key(&b.name))
            .map(|b| b.name.clone())
            .collect();
        for name in dropped {
            buses.remove(&name);
            changes.push(format!("deleted event bus {name}"));
        }
        for (name, bus) in buses_declared {
            match buses.get_mut(name) {
                Some(b) => {
                    if !b.declared || b.description != bus.description {
                        b.declared = true;
                        b.description.clone_from(&bus.description);
                        changes.push(format!("updated event bus {name}"));
                    }
                }
                None => {
                    buses.insert(
                        name.clone(),
                        BusState {
                            name: name.clone(),
                            description: bus.description.clone(),
                            created_ms: now_ms(),
                            declared: true,
                            tags: BTreeMap::new(),
                            rules: BTreeMap::new(),
                        },
                    );
                    changes.push(format!("created event bus {name}"));
                }
            }
        }
        // Declared rules no longer in dev.toml (or moved to another bus).
        for b in buses.values_mut() {
            let bus_name = b.name.clone();
            b.rules.retain(|name, r| {
                let keep =
                    !r.declared || rules_declared.get(name).is_some_and(|d| d.bus == bus_name);
                if !keep {
                    changes.push(format!("deleted rule {name}"));
                }
                keep
            });
        }
        for (name, rule) in rules_declared {
            let Some(b) = buses.get_mut(&rule.bus) else {
                continue;
            };
            let targets: Vec<TargetState> = rule
                .targets
                .iter()
                .map(|t| TargetState {
                    id: t.id.clone(),
                    arn: self.arn_of(&t.kind, lambda),
                    input: t.input.clone(),
                    input_path: t.input_path.clone(),
                    input_transformer: t.input_transformer.clone(),
                    message_group_id: t.message_group_id.clone(),
                    retry_policy: t.retry_policy,
                    dead_letter_arn: t.dead_letter_queue.as_ref().map(|q| self.sqs.queue_arn(q)),
                    role_arn: None,
                })
                .collect();
            let event_pattern = rule.event_pattern.as_ref().map(|p| p.as_str().to_owned());
            let new = RuleState {
                name: name.clone(),
                description: rule.description.clone(),
                event_pattern,
                schedule_expression: rule.schedule_expression.clone(),
                state: rule.state.clone(),
                role_arn: None,
                declared: true,
                tags: BTreeMap::new(),
                targets,
                pattern: rule.event_pattern.clone(),
                schedule: rule
                    .schedule_expression
                    .as_deref()
                    .and_then(|s| Schedule::parse(s).ok()),
            };
            let same = b.rules.get(name).is_some_and(|old| {
                old.declared
                    && old.description == new.description
                    && old.event_pattern == new.event_pattern
                    && old.schedule_expression == new.schedule_expression
                    && old.state == new.state
                    && old.targets == new.targets
            });
            if !same {
                let existed = b.rules.contains_key(name);
                b.rules.insert(name.clone(), new);
                changes.push(format!(
                    "{} rule {name} on bus {}",
                    if existed { "updated" } else { "created" },
                    rule.bus
                ));
                self.lock_fire().remove(&self.rule_arn(&rule.bus, name));
            }
        }
        if !changes.is_empty() {
            self.save(&buses)?;
        }
        Ok(changes)
    }

    // ---- events ------------------------------------------------------------

    /// `PutEvents`: each entry accepted (and delivered in the background)
    /// or refused with EventBridge's error code.
    pub fn put_events(&self, entries: Vec<EventEntry>) -> Vec<EntryResult> {
        entries.into_iter().map(|e| self.put_one(e)).collect()
    }

    fn put_one(&self, e: EventEntry) -> EntryResult {
        let failed = |code: &str, message: &str| EntryResult::Failed {
            code: code.to_owned(),
            message: message.to_owned(),
        };
        let source = match e.source.as_deref() {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => {
                return failed(
                    "InvalidArgument",
                    "Parameter Source is not valid. Reason: Source is a required argument.",
                );
            }
        };
        let detail_type = match e.detail_type.as_deref() {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => {
                return failed(
                    "InvalidArgument",
                    "Parameter DetailType is not valid. Reason: DetailType is a required argument.",
                );
            }
        };
        let detail = match e.detail.as_deref() {
            Some(s) if !s.is_empty() => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => v,
                _ => return failed("MalformedDetail", "Detail is malformed."),
            },
            _ => {
                return failed(
                    "InvalidArgument",
                    "Parameter Detail is not valid. Reason: Detail is a required argument.",
                );
            }
        };
        let bus = self.bus_name(e.bus.as_deref());
        let accepted_ms = now_ms();
        let id = uuid::Uuid::new_v4().to_string();
        let event = json!({
            "version": "0",
            "id": id,
            "detail-type": detail_type,
            "source": source,
            "account": self.account_id,
            "time": iso_time(e.time_ms.unwrap_or(accepted_ms)),
            "region": self.region,
            "resources": e.resources,
            "detail": detail,
        });
        match self.route(&bus, Arc::new(event), accepted_ms, Route::Matching) {
            Ok(()) => EntryResult::Accepted(id),
            // EventBridge accepts an event for a bus that does not exist,
            // gives it an id and drops it (reported against AWS in
            // aws/aws-cli#9186, aws/aws-sdk#186; LocalStack's AWS-validated
            // test does the same). We answer the same, and say it aloud so
            // the typo is found here and not after deployment.
            Err(err) if err.code == "ResourceNotFoundException" => {
                tracing::warn!(
                    bus,
                    id = %id,
                    "event dropped: event bus {bus} does not exist (AWS accepts such an event and drops it too)"
                );
                EntryResult::Accepted(id)
            }
            Err(err) => failed(err.code, &err.message),
        }
    }

    /// Sends `event` to the targets of the rules of `bus` that `to` picks,
    /// and records it in the bus's archives (unless it is a replay).
    fn route(
        &self,
        bus: &str,
        event: Arc<Value>,
        accepted_ms: i64,
        to: Route<'_>,
    ) -> Result<(), EventsError> {
        let mut deliveries = Vec::new();
        let mut matched = Vec::new();
        {
            let buses = self.lock();
            let b = buses
                .get(bus)
                .ok_or_else(|| EventsError::bus_not_found(bus))?;
            let hits: Vec<&RuleState> = match to {
                Route::Rule(name) => b.rules.get(name).into_iter().collect(),
                Route::Matching | Route::Replay(_) => {
                    let index = self.rule_index(b);
                    index
                        .set
                        .matching(&event)
                        .into_iter()
                        .filter_map(|i| b.rules.get(&index.rules[i]))
                        .filter(|r| match to {
                            Route::Replay(rules) => {
                                rules.is_empty() || rules.contains(&self.rule_arn(bus, &r.name))
                            }
                            _ => true,
                        })
                        .collect()
                }
            };
            for r in hits {
                matched.push(r.name.clone());
                let rule_arn = self.rule_arn(bus, &r.name);
                for t in &r.targets {
                    deliveries.push(Delivery {
                        rule_arn: rule_arn.clone(),
                        rule_name: r.name.clone(),
                        target: t.clone(),
                        event: event.clone(),
                        ingestion_time: iso_time(accepted_ms),
                        accepted_ms,
                    });
                }
            }
        }
        if !matches!(to, Route::Replay(_)) {
            self.archive(bus, &event);
        }
        tracing::debug!(bus, id = %event["id"], rules = ?matched, "event");
        let _ = self.tail.send(Tailed {
            bus: bus.to_owned(),
            event,
            rules: matched,
        });
        if deliveries.is_empty() {
            return Ok(());
        }
        let Some(me) = self.me() else {
            return Ok(());
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                for d in deliveries {
                    handle.spawn(me.clone().deliver(d));
                }
            }
            Err(_) => tracing::warn!("events accepted outside the runtime are not delivered"),
        }
        Ok(())
    }

    /// Events as they arrive, with the rules they matched.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Tailed> {
        self.tail.subscribe()
    }

    /// Deliveries that failed for good, oldest first.
    pub fn failures(&self) -> Vec<DeliveryFailure> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    async fn deliver(self: Arc<Self>, d: Delivery) {
        let policy = d.target.retry_policy;
        let max_age_ms = i64::from(policy.maximum_event_age_in_seconds) * 1000;
        let mut wait = RETRY_FIRST;
        let mut retries = 0u32;
        loop {
            let failure = match self.send_once(&d) {
                Ok(()) => {
                    tracing::debug!(rule = %d.rule_name, target = %d.target.id, id = %d.event["id"], "delivered");
                    return;
                }
                Err(f) => f,
            };
            let exhausted = if !failure.retriable {
                None
            } else if retries >= policy.maximum_retry_attempts {
                Some("MaximumRetryAttempts")
            } else if now_ms() - d.accepted_ms >= max_age_ms {
                Some("MaximumEventAgeInSeconds")
            } else {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_LONGEST);
                retries += 1;
                continue;
            };
            self.dead_letter(&d, &failure, retries, exhausted);
            return;
        }
    }

    fn send_once(&self, d: &Delivery) -> Result<(), Failure> {
        let kind = target_kind(&d.target.arn).ok_or_else(|| Failure {
            code: "SDK_CLIENT_ERROR",
            message: format!("cannot deliver to {}", d.target.arn),
            retriable: false,
        })?;
        let not_found = |what: String| Failure {
            code: "RESOURCE_NOT_FOUND",
            message: what,
            retriable: false,
        };
        if let TargetKind::Bus(bus) = &kind {
            // Bus to bus: the event as it is.
            return self
                .route(bus, d.event.clone(), now_ms(), Route::Matching)
                .map_err(|e| not_found(e.message));
        }
        let input = self.input_for(d);
        match kind {
            TargetKind::Function(f) => {
                let Some(lambda) = self.lambda.upgrade() else {
                    return Err(Failure {
                        code: "SDK_CLIENT_ERROR",
                        message: "the stack is stopping".to_owned(),
                        retriable: false,
                    });
                };
                lambda
                    .invoke_event(
                        &f,
                        InvokeRequest {
                            payload: input.into(),
                            ..InvokeRequest::default()
                        },
                    )
                    .map(|_| ())
                    .map_err(|e| match e {
                        LambdaError::FunctionNotFound { .. } => not_found(e.to_string()),
                        LambdaError::TooManyRequests(_) | LambdaError::ShuttingDown => Failure {
                            code: "THROTTLING",
                            message: e.to_string(),
                            retriable: true,
                        },
                        other => Failure {
                            code: "SDK_CLIENT_ERROR",
                            message: other.to_string(),
                            retriable: false,
                        },
                    })
            }
            TargetKind::Queue(q) => {
                let fifo = q.ends_with(".fifo");
                self.sqs
                    .send(
                        &q,
                        SendRequest {
                            body: input,
                            // No deduplication id: EventBridge requires a FIFO
                            // target queue to deduplicate by content.
                            group_id: d.target.message_group_id.clone().filter(|_| fifo),
                            ..SendRequest::default()
                        },
                    )
                    .map(|_| ())
                    .map_err(|e| {
                        if e.code == "AWS.SimpleQueueService.NonExistentQueue" {
                            not_found(e.message)
                        } else {
                            Failure {
                                code: "SDK_CLIENT_ERROR",
                                message: e.message,
                                retriable: false,
                            }
                        }
                    })
            }
            TargetKind::Topic(t) => self
                .sns
                .publish_internal(&t, input, &[])
                .map(|_| ())
                .map_err(|e| {
                    if e.code == "NotFound" {
                        not_found(e.message)
                    } else {
                        Failure {
                            code: "SDK_CLIENT_ERROR",
                            message: e.message,
                            retriable: false,
                        }
                    }
                }),
            TargetKind::Bus(_) => Ok(()),
        }
    }

    /// What the target gets (see [`transform`]).
    fn input_for(&self, d: &Delivery) -> String {
        let t = &d.target;
        if let Some(input) = &t.input {
            return input.clone();
        }
        if let Some(path) = &t.input_path {
            return transform::JsonPath::parse(path)
                .ok()
                .and_then(|p| p.find(&d.event).map(Value::to_string))
                .unwrap_or_else(|| "null".to_owned());
        }
        if let Some(tr) = &t.input_transformer
            && let Ok(tr) = transform::Transformer::new(tr)
        {
            return tr.apply(
                &d.event,
                &transform::Context {
                    rule_arn: &d.rule_arn,
                    rule_name: &d.rule_name,
                    ingestion_time: &d.ingestion_time,
                },
            );
        }
        d.event.to_string()
    }

    fn dead_letter(&self, d: &Delivery, f: &Failure, retries: u32, exhausted: Option<&str>) {
        let dead_letter_arn = d.target.dead_letter_arn.clone();
        let mut sent_to = None;
        if let Some(dlq) = &dead_letter_arn {
            let queue = dlq.rsplit(':').next().unwrap_or_default();
            let mut attributes = BTreeMap::new();
            let mut put = |k: &str, v: String| {
                attributes.insert(k.to_owned(), AttributeValue::string(v));
            };
            put("RULE_ARN", d.rule_arn.clone());
            put("TARGET_ARN", d.target.arn.clone());
            put("ERROR_CODE", f.code.to_owned());
            put("ERROR_MESSAGE", f.message.clone());
            if let Some(condition) = exhausted {
                put("EXHAUSTED_RETRY_CONDITION", condition.to_owned());
            }
            put("RETRY_ATTEMPTS", retries.to_string());
            match self.sqs.send(
                queue,
                SendRequest {
                    body: d.event.to_string(),
                    attributes,
                    ..SendRequest::default()
                },
            ) {
                Ok(_) => sent_to = Some(dlq.clone()),
                Err(e) => tracing::error!(
                    rule = %d.rule_name, target = %d.target.id,
                    "the event could not be sent to the dead-letter queue {dlq} either: {}", e.message
                ),
            }
        }
        tracing::warn!(
            rule = %d.rule_name,
            target = %d.target.id,
            id = %d.event["id"],
            code = f.code,
            "delivery failed after {} attempt(s): {}; {}",
            retries + 1,
            f.message,
            match &sent_to {
                Some(q) => format!("sent to the dead-letter queue {}", q.rsplit(':').next().unwrap_or(q)),
                None => "dropped (no dead-letter queue)".to_owned(),
            }
        );
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() == FAILURES_KEPT {
            failures.pop_front();
        }
        failures.push_back(DeliveryFailure {
            time: iso_time(now_ms()),
            rule_arn: d.rule_arn.clone(),
            target_id: d.target.id.clone(),
            target_arn: d.target.arn.clone(),
            event_id: d.event["id"].as_str().unwrap_or_default().to_owned(),
            error_code: f.code.to_owned(),
            error_message: f.message.clone(),
            attempts: retries + 1,
            dead_letter_arn: sent_to,
        });
    }

    // ---- schedules ---------------------------------------------------------

    /// Fires a rule now, as its schedule would (any rule: a pattern rule
    /// gets the same `Scheduled Event`). Returns the event id.
    pub fn fire(&self, bus: &str, rule: &str) -> Result<String, EventsError> {
        self.rule(bus, rule)?;
        let now = now_ms();
        let id = uuid::Uuid::new_v4().to_string();
        let event = json!({
            "version": "0",
            "id": id,
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account_id,
            "time": iso_time(now),
            "region": self.region,
            "resources": [self.rule_arn(bus, rule)],
            "detail": {},
        });
        self.route(bus, Arc::new(event), now, Route::Rule(rule))?;
        Ok(id)
    }

    /// Fires the enabled scheduled rules that are due; remembers when each
    /// fires next.
    fn tick(&self, now: i64) {
        let scheduled: Vec<(String, String, Schedule)> = {
            let buses = self.lock();
            buses
                .values()
                .flat_map(|b| {
                    b.rules.values().filter_map(|r| {
                        let s = r.schedule.clone()?;
                        (r.state == "ENABLED").then(|| (b.name.clone(), r.name.clone(), s))
                    })
                })
                .collect()
        };
        let mut due = Vec::new();
        {
            let mut next = self.lock_fire();
            let live: std::collections::HashSet<String> = scheduled
                .iter()
                .map(|(b, r, _)| self.rule_arn(b, r))
                .collect();
            next.retain(|arn, _| live.contains(arn));
            for (bus, rule, schedule) in scheduled {
                let arn = self.rule_arn(&bus, &rule);
                match next.get(&arn).copied() {
                    None => {
                        if let Some(at) = schedule.next_ms(now) {
                            next.insert(arn, at);
                        }
                    }
                    Some(at) if at <= now => {
                        due.push((bus, rule));
                        match schedule.next_ms(at.max(now - 1)) {
                            Some(n) => next.insert(arn, n),
                            None => next.remove(&arn),
                        };
                    }
                    Some(_) => {}
                }
            }
        }
        for (bus, rule) in due {
            match self.fire(&bus, &rule) {
                Ok(id) => tracing::info!(rule = %rule, id = %id, "scheduled rule fired"),
                Err(e) => {
                    tracing::warn!(rule = %rule, "scheduled rule could not fire: {}", e.message)
                }
            }
        }
    }

    /// Runs the scheduler until the service is dropped.
    pub fn start_scheduler(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(SCHEDULE_TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                let Some(events) = weak.upgrade() else {
                    return;
                };
                events.tick(now_ms());
            }
        });
    }

    /// `TestEventPattern`.
    pub fn test_pattern(pattern: &str, event: &str) -> Result<bool, EventsError> {
        let pattern = FilterPattern::parse(pattern).map_err(|r| EventsError::pattern(&r))?;
        let event: Value = serde_json::from_str(event)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| EventsError::validation("Parameter Event is not valid."))?;
        for field in ["id", "account", "source", "time", "region", "detail-type"] {
            if event.get(field).is_none() {
                return Err(EventsError::validation(format!(
                    "Parameter Event is not valid. Reason: Provided Event is missing required field: {field}"
                )));
            }
        }
        Ok(pattern.matches(&event))
    }
}

/// What a target ARN names, when this stack can deliver to it.
pub fn target_kind(arn: &str) -> Option<TargetKind> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, rest] => {
            let name = rest.strip_prefix("function:")?;
            // A qualified ARN (`:function:f:$LATEST`) names the function.
            let name = name.split(':').next()?;
            Some(TargetKind::Function(name.to_owned()))
        }
        ["arn", _, "sqs", _, _, name] => Some(TargetKind::Queue((*name).to_owned())),
        ["arn", _, "sns", _, _, name] => Some(TargetKind::Topic((*name).to_owned())),
        ["arn", _, "events", _, _, rest] => rest
            .strip_prefix("event-bus/")
            .map(|b| TargetKind::Bus(b.to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Weak;
    use std::time::Duration;

    use super::{EventBridge, TargetState, target_kind};
    use crate::dynamodb::DataLocation;
    use crate::manifest::TargetKind;
    use crate::manifest::events::RetryPolicy;
    use crate::sns::Sns;
    use crate::sqs::{ReceiveRequest, Sqs};

    #[tokio::test]
    async fn a_rate_rule_fires_when_its_period_has_passed() {
        let sqs = Sqs::open(&DataLocation::Memory, "us-east-1", "000000000000").expect("sqs");
        sqs.create_queue("ticks", &Default::default(), Default::default())
            .expect("queue");
        let sns = Sns::open(
            &DataLocation::Memory,
            "us-east-1",
            "000000000000",
            sqs.clone(),
            Weak::new(),
        )
        .expect("sns");
        let events = EventBridge::open(
            &DataLocation::Memory,
            "us-east-1",
            "000000000000",
            sqs.clone(),
            sns,
            Weak::new(),
        )
        .expect("events");
        events
            .put_rule(
                "default",
                "tick",
                None,
                Some("rate(1 minute)".into()),
                None,
                None,
                None,
                Default::default(),
            )
            .expect("rule");
        let target = TargetState {
            id: "q".into(),
            arn: sqs.queue_arn("ticks"),
            input: None,
            input_path: None,
            input_transformer: None,
            message_group_id: None,
            retry_policy: RetryPolicy::default(),
            dead_letter_arn: None,
            role_arn: None,
        };
        assert!(
            events
                .put_targets("default", "tick", vec![target])
                .expect("targets")
                .is_empty()
        );
        let receive = || {
            sqs.receive(
                "ticks",
                ReceiveRequest {
                    max: 10,
                    visibility_timeout: None,
                    wait: Some(Duration::from_millis(300)),
                },
            )
        };
        let t0 = 1_800_000_000_000;
        events.tick(t0);
        events.tick(t0 + 59_000);
        assert!(
            receive().await.expect("receive").is_empty(),
            "fired before its minute"
        );
        events.tick(t0 + 60_000);
        let got = receive().await.expect("receive");
        assert_eq!(got.len(), 1);
        let event: serde_json::Value = serde_json::from_str(&got[0].body).expect("JSON");
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["source"], "aws.events");
        // Disabled, it does not fire.
        events.set_state("default", "tick", false).expect("disable");
        events.tick(t0 + 120_000);
        assert!(
            receive().await.expect("receive").is_empty(),
            "a disabled rule fired"
        );
    }

    /// The matched rules of each event follow every change to the rules:
    /// the index is rebuilt after a rule is added, disabled, re-patterned or
    /// deleted.
    #[tokio::test]
    async fn matching_follows_every_change_to_the_rules() {
        let sqs = Sqs::open(&DataLocation::Memory, "us-east-1", "000000000000").expect("sqs");
        let sns = Sns::open(
            &DataLocation::Memory,
            "us-east-1",
            "000000000000",
            sqs.clone(),
            Weak::new(),
        )
        .expect("sns");
        let events = EventBridge::open(
            &DataLocation::Memory,
            "us-east-1",
            "000000000000",
            sqs,
            sns,
            Weak::new(),
        )
        .expect("events");
        let rule = |name: &str, pattern: &str| {
            events
                .put_rule(
                    "default",
                    name,
                    Some(pattern.to_owned()),
                    None,
                    None,
                    None,
                    None,
                    Default::default(),
                )
                .expect("rule");
        };
        let mut tail = events.subscribe();
        let mut matched = |source: &str, detail_type: &str| {
            let put = events.put_events(vec![super::EventEntry {
                source: Some(source.to_owned()),
                detail_type: Some(detail_type.to_owned()),
                detail: Some("{}".to_owned()),
                ..Default::default()
            }]);
            assert!(matches!(put[0], super::EntryResult::Accepted(_)), "{put:?}");
            let mut rules = tail.try_recv().expect("tailed").rules;
            rules.sort();
            rules
        };
        rule("orders", r#"{"source": ["shop.orders"]}"#);
        rule("payments", r#"{"source": ["shop.payments"]}"#);
        rule("placed", r#"{"detail-type": [{"prefix": "Order"}]}"#);
        assert_eq!(matched("shop.orders", "OrderPlaced"), ["orders", "placed"]);
        assert_eq!(matched("shop.payments", "Paid"), ["payments"]);
        assert!(matched("shop.stock", "Low").is_empty());

        events
            .set_state("default", "orders", false)
            .expect("disable");
        assert_eq!(matched("shop.orders", "OrderPlaced"), ["placed"]);
        events.set_state("default", "orders", true).expect("enable");
        assert_eq!(matched("shop.orders", "OrderPlaced"), ["orders", "placed"]);

        rule("payments", r#"{"source": ["shop.stock"]}"#);
        assert!(matched("shop.payments", "Paid").is_empty());
        assert_eq!(matched("shop.stock", "Low"), ["payments"]);

        events
            .delete_rule("default", "placed", false)
            .expect("delete");
        assert_eq!(matched("shop.orders", "OrderPlaced"), ["orders"]);
    }

    #[test]
    fn target_arns_name_their_kind() {
        assert_eq!(
            target_kind("arn:aws:lambda:us-east-1:000000000000:function:f"),
            Some(TargetKind::Function("f".into()))
        );
        assert_eq!(
            target_kind("arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"),
            Some(TargetKind::Function("f".into()))
        );
        assert_eq!(
            target_kind("arn:aws:sqs:us-east-1:000000000000:q.fifo"),
            Some(TargetKind::Queue("q.fifo".into()))
        );
        assert_eq!(
            target_kind("arn:aws:events:us-east-1:000000000000:event-bus/shop"),
            Some(TargetKind::Bus("shop".into()))
        );
        assert_eq!(
            target_kind("arn:aws:states:us-east-1:000000000000:stateMachine:s"),
            None
        );
    }
}
