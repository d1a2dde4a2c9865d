//! SNS: topics (standard and FIFO), subscriptions to SQS queues, functions
//! and HTTP endpoints, filter policies, and Publish / PublishBatch, served
//! on the AWS endpoint in the query protocol the SDKs and the AWS CLI
//! speak for SNS.
//! <https://docs.aws.amazon.com/sns/latest/api/welcome.html>
//!
//! Delivery, as SNS does it:
//! - SQS: the SNS envelope (`Type: Notification`, ...) or, with
//!   `RawMessageDelivery`, the message itself with its attributes as SQS
//!   message attributes. A FIFO topic passes its group and deduplication ids.
//!   Sent before `Publish` answers, so an acknowledged publish is in the
//!   queue's store (and survives `kill -9` as the queue does).
//! - Lambda: an asynchronous invocation with the `SNSEvent` shape; the
//!   function's retry and destination settings apply.
//! - HTTP: a `POST` of the envelope (or raw message) with SNS's
//!   `x-amz-sns-*` headers, retried [`HTTP_RETRY_DELAYS`]. Subscriptions made
//!   through the API are confirmed first: the endpoint gets a
//!   `SubscriptionConfirmation` whose `SubscribeURL` (on this endpoint)
//!   confirms it. Subscriptions declared in `dev.toml` are confirmed already.
//! - A delivery that fails for good goes to the subscription's dead-letter
//!   queue (`RedrivePolicy`) when it has one.
//!
//! Differences from AWS, on purpose: messages carry `Signature` as a base64
//! SHA-256 digest of the string SNS signs (there is no AWS certificate to
//! sign with locally); HTTP retries wait a second or two instead of SNS's
//! 20 seconds; `https://` endpoints cannot be reached (no TLS client) and
//! fail to their dead-letter queue.

pub mod api;
pub mod control;
pub mod error;
mod filter;
pub mod xml;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::dynamodb::DataLocation;
use crate::lambda::{InvokeRequest, LambdaHost};
use crate::manifest::{self, Endpoint, FilterPolicyScope};
use crate::sqs::message::AttributeValue;
use crate::sqs::{SendRequest, Sqs};
pub use error::SnsError;

/// The file topics and subscriptions persist in, under `.woocom/data`.
pub const STATE_FILE: &str = "sns.json";
/// Largest message, attributes included (256 KiB).
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// Waits between attempts of an HTTP delivery.
pub const HTTP_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(1),
    Duration::from_secs(2),
];
/// How long a FIFO topic remembers a deduplication id.
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;

/// A message attribute as SNS takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageAttribute {
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

/// What a publish asks for.
#[derive(Debug, Clone, Default)]
pub struct PublishRequest {
    pub message: String,
    pub subject: Option<String>,
    /// `MessageStructure=json`: `message` holds one text per protocol.
    pub structure_json: bool,
    pub attributes: BTreeMap<String, MessageAttribute>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

/// What a publish answers.
#[derive(Debug, Clone)]
pub struct Published {
    pub message_id: String,
    pub sequence_number: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicState {
    name: String,
    fifo: bool,
    content_based_deduplication: bool,
    /// Settable attributes (`DisplayName`, `Policy`, `DeliveryPolicy`, ...).
    attributes: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    subscriptions: Vec<SubscriptionState>,
    /// Declared in dev.toml (reconciled from it).
    declared: bool,
    #[serde(skip)]
    dedup: HashMap<String, (i64, Published)>,
    #[serde(default)]
    sequence: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SubscriptionState {
    /// The id after the topic ARN in the subscription ARN.
    id: String,
    protocol: String,
    /// Queue or function ARN, or URL.
    endpoint: String,
    raw: bool,
    filter_policy: Option<String>,
    scope: FilterPolicyScope,
    /// `RedrivePolicy`'s dead-letter queue ARN.
    dead_letter_arn: Option<String>,
    delivery_policy: Option<String>,
    confirmed: bool,
    token: Option<String>,
    declared: bool,
}

/// One subscription, for listings and `woocom-dev topics`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionInfo {
    pub subscription_arn: String,
    pub topic_arn: String,
    pub protocol: String,
    pub endpoint: String,
    pub raw_message_delivery: bool,
    pub filter_policy: Option<String>,
    pub filter_policy_scope: &'static str,
    pub dead_letter_arn: Option<String>,
    pub pending_confirmation: bool,
}

/// One topic, for `woocom-dev topics`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicInfo {
    pub name: String,
    pub arn: String,
    pub fifo: bool,
    pub subscriptions: Vec<SubscriptionInfo>,
}

/// A delivery to make once the topic's lock is released.
struct Delivery {
    topic_arn: String,
    subscription_arn: String,
    sub: SubscriptionState,
    message_id: String,
    sequence_number: Option<String>,
    message: String,
    subject: Option<String>,
    attributes: BTreeMap<String, MessageAttribute>,
    group_id: Option<String>,
    dedup_id: Option<String>,
    timestamp: String,
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

/// The SNS service of one stack.
pub struct Sns {
    topics: Mutex<BTreeMap<String, TopicState>>,
    path: Option<PathBuf>,
    region: String,
    account_id: String,
    endpoint: RwLock<String>,
    sqs: Arc<Sqs>,
    lambda: Weak<LambdaHost>,
    http: HttpClient,
}

fn now_ms() -> i64 {
    crate::sqs::now_ms()
}

fn timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

impl Sns {
    /// Opens the stack's topics (`<data>/sns.json`, or in memory).
    pub fn open(
        location: &DataLocation,
        region: &str,
        account_id: &str,
        sqs: Arc<Sqs>,
        lambda: Weak<LambdaHost>,
    ) -> Result<Arc<Sns>, String> {
        let mut topics = BTreeMap::new();
        let path = match location {
            DataLocation::Dir(dir) => {
                let _ = std::fs::create_dir_all(dir);
                let path = dir.join(STATE_FILE);
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        let saved: Vec<TopicState> = serde_json::from_slice(&bytes)
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                        for t in saved {
                            topics.insert(t.name.clone(), t);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                }
                Some(path)
            }
            DataLocation::Memory => None,
        };
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        Ok(Arc::new(Sns {
            topics: Mutex::new(topics),
            path,
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            endpoint: RwLock::new("http://127.0.0.1:4002".to_owned()),
            sqs,
            lambda,
            http,
        }))
    }

    pub fn set_endpoint(&self, url: &str) {
        *self
            .endpoint
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            url.trim_end_matches('/').to_owned();
    }

    fn endpoint(&self) -> String {
        self.endpoint
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, TopicState>> {
        self.topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn topic_arn(&self, name: &str) -> String {
        format!("arn:aws:sns:{}:{}:{name}", self.region, self.account_id)
    }

    /// The topic an ARN names, checked to be this stack's region and
    /// account (`InvalidParameter` for a malformed ARN).
    pub fn topic_name<'a>(&self, arn: &'a str, field: &str) -> Result<&'a str, SnsError> {
        if !arn.starts_with("arn:") {
            return Err(SnsError::invalid_parameter(format!(
                "{field} Reason: {arn} does not start with arn"
            )));
        }
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _, "sns", region, account, name]
                if *region == self.region && *account == self.account_id =>
            {
                Ok(name)
            }
            ["arn", _, "sns", _, _, _] => Err(SnsError::topic_not_found()),
            _ => Err(SnsError::invalid_parameter(format!(
                "{field} Reason: An ARN must have at least 6 elements, not {}",
                parts.len()
            ))),
        }
    }

    fn save(&self, topics: &BTreeMap<String, TopicState>) -> Result<(), SnsError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let list: Vec<&TopicState> = topics.values().collect();
        let bytes = serde_json::to_vec_pretty(&list)
            .map_err(|e| SnsError::internal(format!("cannot save the topics: {e}")))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                SnsError::internal(format!("cannot save the topics to {}: {e}", path.display()))
            })
    }

    // ---- topics -----------------------------------------------------------

    /// `CreateTopic`: the topic's ARN, new or existing (when its
    /// attributes agree).
    pub fn create_topic(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<String, SnsError> {
        let fifo = attributes.get("FifoTopic").is_some_and(|v| v == "true");
        if !manifest::topics::name_ok(name, fifo) {
            return Err(SnsError::invalid_parameter(
                if name.ends_with(".fifo") && !fifo {
                    "Topic Name Reason: Fifo Topic names must end with .fifo and they must have FifoTopic attribute set to true".to_owned()
                } else if fifo {
                    "Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long.".to_owned()
                } else {
                    "Topic Name".to_owned()
                },
            ));
        }
        let mut settable = BTreeMap::new();
        let mut content_based = false;
        for (k, v) in attributes {
            match k.as_str() {
                "FifoTopic" => {
                    if v != "true" && v != "false" {
                        return Err(SnsError::invalid_parameter(
                            "Attributes Reason: FifoTopic: Invalid value. Must be true or false",
                        ));
                    }
                }
                "ContentBasedDeduplication" => {
                    if !fifo {
                        return Err(SnsError::invalid_parameter(
                            "Attributes Reason: ContentBasedDeduplication is only valid for FIFO topics",
                        ));
                    }
                    content_based = v == "true";
                }
                other if SETTABLE_TOPIC_ATTRIBUTES.contains(&other) => {
                    settable.insert(k.clone(), v.clone());
                }
                other => {
                    return Err(SnsError::invalid_parameter(format!(
                        "Attributes Reason: Unknown attribute {other}"
                    )));
                }
            }
        }
        let mut topics = self.lock();
        if let Some(t) = topics.get(name) {
            let same = t.fifo == fifo
                && t.content_based_deduplication == content_based
                && settable.iter().all(|(k, v)| t.attributes.get(k) == Some(v));
            if !same {
                return Err(SnsError::invalid_parameter(
                    "Attributes Reason: Topic already exists with different attributes",
                ));
            }
            return Ok(self.topic_arn(name));
        }
        topics.insert(
            name.to_owned(),
            TopicState {
                name: name.to_owned(),
                fifo,
                content_based_deduplication: content_based,
                attributes: settable,
                tags,
                subscriptions: Vec::new(),
                declared: false,
                dedup: HashMap::new(),
                sequence: 0,
            },
        );
        self.save(&topics)?;
        Ok(self.topic_arn(name))
    }

    /// `DeleteTopic` (deleting a topic that does not exist succeeds).
    pub fn delete_topic(&self, name: &str) -> Result<(), SnsError> {
        let mut topics = self.lock();
        if topics.remove(name).is_some() {
            self.save(&topics)?;
        }
        Ok(())
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    /// `GetTopicAttributes`.
    pub fn topic_attributes(&self, name: &str) -> Result<BTreeMap<String, String>, SnsError> {
        let topics = self.lock();
        let t = topics.get(name).ok_or_else(SnsError::topic_not_found)?;
        let arn = self.topic_arn(name);
        let mut a = BTreeMap::new();
        a.insert("TopicArn".to_owned(), arn.clone());
        a.insert("Owner".to_owned(), self.account_id.clone());
        a.insert(
            "Policy".to_owned(),
            json!({
                "Version": "2008-10-17",
                "Id": "__default_policy_ID",
                "Statement": [{
                    "Sid": "__default_statement_ID",
                    "Effect": "Allow",
                    "Principal": { "AWS": "*" },
                    "Action": [
                        "SNS:GetTopicAttributes", "SNS:SetTopicAttributes",
                        "SNS:AddPermission", "SNS:RemovePermission", "SNS:DeleteTopic",
                        "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"
                    ],
                    "Resource": arn,
                    "Condition": { "StringEquals": { "AWS:SourceOwner": self.account_id } }
                }]
            })
            .to_string(),
        );
        a.insert("DisplayName".to_owned(), String::new());
        let confirmed = t.subscriptions.iter().filter(|s| s.confirmed).count();
        a.insert("SubscriptionsConfirmed".to_owned(), confirmed.to_string());
        a.insert(
            "SubscriptionsPending".to_owned(),
            (t.subscriptions.len() - confirmed).to_string(),
        );
        a.insert("SubscriptionsDeleted".to_owned(), "0".to_owned());
        a.insert(
            "EffectiveDeliveryPolicy".to_owned(),
            json!({"http": {
                "defaultHealthyRetryPolicy": {
                    "minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3,
                    "numMaxDelayRetries": 0, "numNoDelayRetries": 0,
                    "numMinDelayRetries": 0, "backoffFunction": "linear"
                },
                "disableSubscriptionOverrides": false,
                "defaultRequestPolicy": { "headerContentType": "text/plain; charset=UTF-8" }
            }})
            .to_string(),
        );
        if t.fifo {
            a.insert("FifoTopic".to_owned(), "true".to_owned());
            a.insert(
                "ContentBasedDeduplication".to_owned(),
                t.content_based_deduplication.to_string(),
            );
        }
        for (k, v) in &t.attributes {
            a.insert(k.clone(), v.clone());
        }
        Ok(a)
    }

    /// `SetTopicAttributes`.
    pub fn set_topic_attribute(
        &self,
        name: &str,
        attribute: &str,
        value: &str,
    ) -> Result<(), SnsError> {
        let mut topics = self.lock();
        let t = topics.get_mut(name).ok_or_else(SnsError::topic_not_found)?;
        match attribute {
            "ContentBasedDeduplication" if t.fifo => {
                t.content_based_deduplication = value == "true";
            }
            a if SETTABLE_TOPIC_ATTRIBUTES.contains(&a) => {
                if a == "Policy" || a == "DeliveryPolicy" {
                    serde_json::from_str::<Value>(value).map_err(|_| {
                        SnsError::invalid_parameter(format!(
                            "Attributes Reason: {a}: failed to parse JSON"
                        ))
                    })?;
                }
                t.attributes.insert(a.to_owned(), value.to_owned());
            }
            _ => return Err(SnsError::invalid_parameter("AttributeName")),
        }
        self.save(&topics)
    }

    pub fn tags(&self, name: &str) -> Result<BTreeMap<String, String>, SnsError> {
        let topics = self.lock();
        let t = topics.get(name).ok_or_else(SnsError::resource_not_found)?;
        Ok(t.tags.clone())
    }

    pub fn change_tags(
        &self,
        name: &str,
        add: BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), SnsError> {
        let mut topics = self.lock();
        let t = topics
            .get_mut(name)
            .ok_or_else(SnsError::resource_not_found)?;
        if t.tags.len() + add.len() > 50 {
            return Err(SnsError::batch(
                "TagLimitExceeded",
                "Could not complete request: tag quota of per resource exceeded",
            ));
        }
        t.tags.extend(add);
        for k in remove {
            t.tags.remove(k);
        }
        self.save(&topics)
    }

    // ---- subscriptions ----------------------------------------------------

    /// `Subscribe`: the subscription's ARN, or `None` while it waits for
    /// confirmation (HTTP).
    pub fn subscribe(
        &self,
        topic: &str,
        protocol: &str,
        endpoint: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(String, bool), SnsError> {
        let protocol = protocol.to_ascii_lowercase();
        match protocol.as_str() {
            "sqs" => {
                let ok = endpoint.starts_with("arn:") && Sqs::name_from_arn(endpoint).is_some();
                if !ok {
                    return Err(SnsError::invalid_parameter("SQS endpoint ARN"));
                }
            }
            "lambda" => {
                let ok = endpoint.starts_with("arn:") && endpoint.contains(":lambda:");
                if !ok {
                    return Err(SnsError::invalid_parameter("Lambda endpoint ARN"));
                }
            }
            "http" | "https" => {
                if !endpoint.starts_with(&format!("{protocol}://")) {
                    return Err(SnsError::invalid_parameter(
                        "Endpoint Reason: Endpoint must match the specified protocol",
                    ));
                }
            }
            other => {
                return Err(SnsError::invalid_parameter(format!(
                    "Amazon SNS does not support this protocol string: {other}"
                )));
            }
        }
        let mut sub = SubscriptionState {
            id: uuid::Uuid::new_v4().to_string(),
            protocol: protocol.clone(),
            endpoint: endpoint.to_owned(),
            raw: false,
            filter_policy: None,
            scope: FilterPolicyScope::MessageAttributes,
            dead_letter_arn: None,
            delivery_policy: None,
            confirmed: !protocol.starts_with("http"),
            token: None,
            declared: false,
        };
        for (k, v) in attributes {
            set_subscription_attribute(&mut sub, k, v)?;
        }
        let mut topics = self.lock();
        let t = topics
            .get_mut(topic)
            .ok_or_else(SnsError::topic_not_found)?;
        if t.fifo && protocol != "sqs" {
            return Err(SnsError::invalid_parameter(format!(
                "Invalid protocol type: {protocol}"
            )));
        }
        if !t.fifo && protocol == "sqs" && endpoint.ends_with(".fifo") {
            return Err(SnsError::invalid_parameter(
                "Endpoint Reason: FIFO SQS Queues can not be subscribed to standard SNS topics",
            ));
        }
        let topic_arn = self.topic_arn(topic);
        if let Some(existing) = t
            .subscriptions
            .iter()
            .find(|s| s.protocol == protocol && s.endpoint == endpoint)
        {
            if attributes.is_empty() || existing.same_settings(&sub) {
                return Ok((format!("{topic_arn}:{}", existing.id), existing.confirmed));
            }
            return Err(SnsError::invalid_parameter(
                "Attributes Reason: Subscription already exists with different attributes",
            ));
        }
        let confirmed = sub.confirmed;
        let arn = format!("{topic_arn}:{}", sub.id);
        if !confirmed {
            let token = uuid::Uuid::new_v4().simple().to_string();
            sub.token = Some(token.clone());
            self.send_confirmation(&topic_arn, endpoint, &token);
        }
        t.subscriptions.push(sub);
        self.save(&topics)?;
        Ok((arn, confirmed))
    }

    fn send_confirmation(&self, topic_arn: &str, url: &str, token: &str) {
        let subscribe_url = format!(
            "{}/?Action=ConfirmSubscription&TopicArn={}&Token={token}",
            self.endpoint(),
            percent_encoding::utf8_percent_encode(topic_arn, percent_encoding::NON_ALPHANUMERIC)
        );
        let message_id = uuid::Uuid::new_v4().to_string();
        let mut body = Map::new();
        body.insert("Type".into(), json!("SubscriptionConfirmation"));
        body.insert("MessageId".into(), json!(message_id));
        body.insert("Token".into(), json!(token));
        body.insert("TopicArn".into(), json!(topic_arn));
        body.insert("Message".into(), json!(format!("You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message.")));
        body.insert("SubscribeURL".into(), json!(subscribe_url));
        body.insert("Timestamp".into(), json!(timestamp()));
        self.sign(&mut body);
        let headers = vec![
            (
                "x-amz-sns-message-type",
                "SubscriptionConfirmation".to_owned(),
            ),
            ("x-amz-sns-message-id", message_id),
            ("x-amz-sns-topic-arn", topic_arn.to_owned()),
        ];
        let http = self.http.clone();
        let url = url.to_owned();
        let body = Value::Object(body).to_string();
        tokio::spawn(async move {
            if let Err(e) = post(&http, &url, headers, body).await {
                tracing::warn!(endpoint = %url, "cannot send the subscription confirmation: {e}");
            }
        });
    }

    /// `ConfirmSubscription`.
    pub fn confirm(&self, topic: &str, token: &str) -> Result<String, SnsError> {
        let mut topics = self.lock();
        let t = topics
            .get_mut(topic)
            .ok_or_else(SnsError::topic_not_found)?;
        let topic_arn = self.topic_arn(topic);
        let Some(sub) = t
            .subscriptions
            .iter_mut()
            .find(|s| s.token.as_deref() == Some(token))
        else {
            return Err(SnsError::invalid_parameter("Token"));
        };
        sub.confirmed = true;
        let arn = format!("{topic_arn}:{}", sub.id);
        self.save(&topics)?;
        Ok(arn)
    }

    /// Splits a subscription ARN into topic and id.
    fn find_subscription<'a>(
        &self,
        topics: &'a mut BTreeMap<String, TopicState>,
        arn: &str,
    ) -> Result<(&'a mut TopicState, usize), SnsError> {
        let (topic_arn, id) = arn
            .rsplit_once(':')
            .ok_or_else(|| SnsError::invalid_parameter("SubscriptionArn"))?;
        let name = self.topic_name(topic_arn, "SubscriptionArn")?;
        let t = topics
            .get_mut(name)
            .ok_or_else(SnsError::subscription_not_found)?;
        let i = t
            .subscriptions
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(SnsError::subscription_not_found)?;
        Ok((t, i))
    }

    /// `Unsubscribe`.
    pub fn unsubscribe(&self, arn: &str) -> Result<(), SnsError> {
        let mut topics = self.lock();
        let (t, i) = self.find_subscription(&mut topics, arn)?;
        t.subscriptions.remove(i);
        self.save(&topics)
    }

    /// `GetSubscriptionAttributes`.
    pub fn subscription_attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, SnsError> {
        let mut topics = self.lock();
        let (t, i) = self.find_subscription(&mut topics, arn)?;
        let s = &t.subscriptions[i];
        let mut a = BTreeMap::new();
        a.insert("SubscriptionArn".to_owned(), arn.to_owned());
        a.insert("TopicArn".to_owned(), self.topic_arn(&t.name));
        a.insert("Owner".to_owned(), self.account_id.clone());
        a.insert("Protocol".to_owned(), s.protocol.clone());
        a.insert("Endpoint".to_owned(), s.endpoint.clone());
        a.insert("ConfirmationWasAuthenticated".to_owned(), "true".to_owned());
        a.insert("PendingConfirmation".to_owned(), (!s.confirmed).to_string());
        a.insert("RawMessageDelivery".to_owned(), s.raw.to_string());
        a.insert(
            "SubscriptionPrincipal".to_owned(),
            format!("arn:aws:iam::{}:root", self.account_id),
        );
        if let Some(p) = &s.filter_policy {
            a.insert("FilterPolicy".to_owned(), p.clone());
            a.insert("FilterPolicyScope".to_owned(), s.scope.as_str().to_owned());
        }
        if let Some(d) = &s.dead_letter_arn {
            a.insert(
                "RedrivePolicy".to_owned(),
                json!({ "deadLetterTargetArn": d }).to_string(),
            );
        }
        if let Some(p) = &s.delivery_policy {
            a.insert("DeliveryPolicy".to_owned(), p.clone());
        }
        Ok(a)
    }

    /// `SetSubscriptionAttributes`.
    pub fn set_subscription_attribute(
        &self,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), SnsError> {
        let mut topics = self.lock();
        let (t, i) = self.find_subscription(&mut topics, arn)?;
        set_subscription_attribute(&mut t.subscriptions[i], name, value)?;
        self.save(&topics)
    }

    /// Every subscription, or a topic's (`ListSubscriptions[ByTopic]`).
    pub fn subscriptions(&self, topic: Option<&str>) -> Result<Vec<SubscriptionInfo>, SnsError> {
        let topics = self.lock();
        let list: Vec<&TopicState> = match topic {
            Some(name) => vec![topics.get(name).ok_or_else(SnsError::topic_not_found)?],
            None => topics.values().collect(),
        };
        Ok(list
            .into_iter()
            .flat_map(|t| {
                let topic_arn = self.topic_arn(&t.name);
                t.subscriptions.iter().map(move |s| SubscriptionInfo {
                    subscription_arn: if s.confirmed {
                        format!("{topic_arn}:{}", s.id)
                    } else {
                        "PendingConfirmation".to_owned()
                    },
                    topic_arn: topic_arn.clone(),
                    protocol: s.protocol.clone(),
                    endpoint: s.endpoint.clone(),
                    raw_message_delivery: s.raw,
                    filter_policy: s.filter_policy.clone(),
                    filter_policy_scope: s.scope.as_str(),
                    dead_letter_arn: s.dead_letter_arn.clone(),
                    pending_confirmation: !s.confirmed,
                })
            })
            .collect())
    }

    /// Every topic with its subscriptions, for `woocom-dev topics`.
    pub fn status(&self) -> Vec<TopicInfo> {
        let names = self.topic_names();
        names
            .into_iter()
            .map(|name| {
                // Its own statement: the guard is dropped before
                // `subscriptions` takes the lock again.
                let fifo = self.lock().get(&name).is_some_and(|t| t.fifo);
                TopicInfo {
                    arn: self.topic_arn(&name),
                    fifo,
                    subscriptions: self.subscriptions(Some(&name)).unwrap_or_default(),
                    name,
                }
            })
            .collect()
    }

    /// Creates or updates the topics dev.toml declares and makes their
    /// declared subscriptions those of dev.toml (subscriptions made
    /// through the API stay). Topics dropped from dev.toml are deleted.
    /// Returns what changed.
    pub fn reconcile(
        &self,
        declared: &BTreeMap<String, manifest::Topic>,
        function_arn: &dyn Fn(&str) -> String,
    ) -> Result<Vec<String>, SnsError> {
        let mut changes = Vec::new();
        let mut topics = self.lock();
        let dropped: Vec<String> = topics
            .values()
            .filter(|t| t.declared && !declared.contains_key(&t.name))
            .map(|t| t.name.clone())
            .collect();
        for name in dropped {
            topics.remove(&name);
            changes.push(format!("deleted topic {name}"));
        }
        for (name, topic) in declared {
            let wanted: Vec<SubscriptionState> = topic
                .subscriptions
                .iter()
                .map(|s| self.declared_subscription(s, function_arn))
                .collect();
            match topics.get_mut(name) {
                Some(t) => {
                    if t.fifo != topic.fifo_topic {
                        return Err(SnsError::invalid_parameter(format!(
                            "topic `{name}`: fifo_topic cannot change on an existing topic (AWS needs a new topic); `woocom-dev reset` starts afresh"
                        )));
                    }
                    let before: Vec<&SubscriptionState> =
                        t.subscriptions.iter().filter(|s| s.declared).collect();
                    let same = before.len() == wanted.len()
                        && before.iter().zip(&wanted).all(|(a, b)| {
                            a.protocol == b.protocol
                                && a.endpoint == b.endpoint
                                && a.same_settings(b)
                        });
                    if !same
                        || !t.declared
                        || t.content_based_deduplication != topic.content_based_deduplication
                    {
                        // Keep the ids of subscriptions that stay.
                        let mut kept = Vec::new();
                        for mut w in wanted {
                            if let Some(old) = t.subscriptions.iter().find(|s| {
                                s.declared && s.protocol == w.protocol && s.endpoint == w.endpoint
                            }) {
                                w.id = old.id.clone();
                            }
                            kept.push(w);
                        }
                        t.subscriptions.retain(|s| !s.declared);
                        t.subscriptions.extend(kept);
                        t.declared = true;
                        t.content_based_deduplication = topic.content_based_deduplication;
                        changes.push(format!("updated topic {name}"));
                    }
                }
                None => {
                    topics.insert(
                        name.clone(),
                        TopicState {
                            name: name.clone(),
                            fifo: topic.fifo_topic,
                            content_based_deduplication: topic.content_based_deduplication,
                            attributes: BTreeMap::new(),
                            tags: BTreeMap::new(),
                            subscriptions: wanted,
                            declared: true,
                            dedup: HashMap::new(),
                            sequence: 0,
                        },
                    );
                    changes.push(format!("created topic {name}"));
                }
            }
        }
        if !changes.is_empty() {
            self.save(&topics)?;
        }
        Ok(changes)
    }

    fn declared_subscription(
        &self,
        s: &manifest::TopicSubscription,
        function_arn: &dyn Fn(&str) -> String,
    ) -> SubscriptionState {
        let endpoint = match &s.endpoint {
            Endpoint::Sqs(q) => self.sqs.queue_arn(q),
            Endpoint::Lambda(f) => function_arn(f),
            Endpoint::Http(u) | Endpoint::Https(u) => u.clone(),
        };
        SubscriptionState {
            id: uuid::Uuid::new_v4().to_string(),
            protocol: s.endpoint.protocol().to_owned(),
            endpoint,
            raw: s.raw_message_delivery,
            filter_policy: s.filter_policy.as_ref().map(|p| p.as_str().to_owned()),
            scope: s.filter_policy_scope,
            dead_letter_arn: s.dead_letter_queue.as_ref().map(|q| self.sqs.queue_arn(q)),
            delivery_policy: None,
            confirmed: true,
            token: None,
            declared: true,
        }
    }

    // ---- publishing -------------------------------------------------------

    /// Checks a publish against the topic and the limits, without sending.
    fn validate(t: &TopicState, request: &PublishRequest) -> Result<(), SnsError> {
        if request.message.is_empty() {
            return Err(SnsError::invalid_parameter("Empty message"));
        }
        let size = request.message.len()
            + request
                .attributes
                .iter()
                .map(|(k, v)| {
                    k.len()
                        + v.data_type.len()
                        + v.string_value.as_ref().map_or(0, String::len)
                        + v.binary_value.as_ref().map_or(0, Vec::len)
                })
                .sum::<usize>();
        if size > MAX_MESSAGE_BYTES {
            return Err(SnsError::invalid_parameter("Message too long"));
        }
        if let Some(subject) = &request.subject {
            let ok = !subject.is_empty()
                && subject.len() <= 100
                && subject
                    .chars()
                    .all(|c| c.is_ascii() && !c.is_ascii_control());
            if !ok {
                return Err(SnsError::invalid_parameter("Subject"));
            }
        }
        if request.structure_json {
            let parsed: Value = serde_json::from_str(&request.message).map_err(|_| {
                SnsError::invalid_parameter("Message Structure - JSON message body failed to parse")
            })?;
            if !parsed.get("default").is_some_and(Value::is_string) {
                return Err(SnsError::invalid_parameter(
                    "Message Structure - No default entry in JSON message body",
                ));
            }
        }
        for (name, value) in &request.attributes {
            filter::check_attribute(name, value)?;
        }
        if t.fifo {
            if request.group_id.is_none() {
                return Err(SnsError::invalid_parameter(
                    "The MessageGroupId parameter is required for FIFO topics",
                ));
            }
            if request.dedup_id.is_none() && !t.content_based_deduplication {
                return Err(SnsError::invalid_parameter(
                    "The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ));
            }
        } else if request.group_id.is_some() || request.dedup_id.is_some() {
            let field = if request.group_id.is_some() {
                "MessageGroupId"
            } else {
                "MessageDeduplicationId"
            };
            return Err(SnsError::invalid_parameter(format!(
                "{field} Reason: The request includes {field} parameter that is not valid for this topic type"
            )));
        }
        Ok(())
    }

    /// `Publish`: checks the message, then delivers it to every confirmed
    /// subscription whose filter policy matches.
    pub fn publish(&self, topic: &str, request: PublishRequest) -> Result<Published, SnsError> {
        let (published, deliveries) = {
            let mut topics = self.lock();
            let t = topics
                .get_mut(topic)
                .ok_or_else(SnsError::topic_not_found)?;
            Self::validate(t, &request)?;
            let now = now_ms();
            let dedup_id = if t.fifo {
                Some(
                    request
                        .dedup_id
                        .clone()
                        .unwrap_or_else(|| crate::sqs::sha256_hex(request.message.as_bytes())),
                )
            } else {
                None
            };
            if let Some(id) = &dedup_id {
                t.dedup.retain(|_, (at, _)| now - *at < DEDUP_WINDOW_MS);
                if let Some((_, earlier)) = t.dedup.get(id) {
                    return Ok(earlier.clone());
                }
            }
            let message_id = uuid::Uuid::new_v4().to_string();
            let sequence_number = if t.fifo {
                t.sequence += 1;
                Some(format!("{:020}", t.sequence))
            } else {
                None
            };
            let published = Published {
                message_id: message_id.clone(),
                sequence_number: sequence_number.clone(),
            };
            if let Some(id) = &dedup_id {
                t.dedup.insert(id.clone(), (now, published.clone()));
            }
            let topic_arn = self.topic_arn(topic);
            let stamp = timestamp();
            let deliveries: Vec<Delivery> = t
                .subscriptions
                .iter()
                .filter(|s| s.confirmed)
                .filter(|s| filter::accepts(s.filter_policy.as_deref(), s.scope, &request))
                .map(|s| Delivery {
                    topic_arn: topic_arn.clone(),
                    subscription_arn: format!("{topic_arn}:{}", s.id),
                    sub: s.clone(),
                    message_id: message_id.clone(),
                    sequence_number: sequence_number.clone(),
                    message: message_for(&request, &s.protocol),
                    subject: request.subject.clone(),
                    attributes: request.attributes.clone(),
                    group_id: request.group_id.clone(),
                    dedup_id: dedup_id.clone(),
                    timestamp: stamp.clone(),
                })
                .collect();
            (published, deliveries)
        };
        for d in deliveries {
            self.deliver(d);
        }
        Ok(published)
    }

    /// Publishes a record or event the stack hands on (a destination or
    /// dead-letter topic), with string attributes.
    pub fn publish_internal(
        &self,
        topic: &str,
        message: String,
        attributes: &[(&str, String)],
    ) -> Result<Published, SnsError> {
        self.publish(
            topic,
            PublishRequest {
                message,
                attributes: attributes
                    .iter()
                    .map(|(k, v)| {
                        (
                            (*k).to_owned(),
                            MessageAttribute {
                                data_type: "String".to_owned(),
                                string_value: Some(v.clone()),
                                binary_value: None,
                            },
                        )
                    })
                    .collect(),
                ..PublishRequest::default()
            },
        )
    }

    /// `Signature` and the fields around it (see the module's note).
    fn sign(&self, body: &mut Map<String, Value>) {
        use sha2::Digest;
        let mut to_sign = String::new();
        for key in [
            "Message",
            "MessageId",
            "SubscribeURL",
            "Subject",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ] {
            if let Some(Value::String(v)) = body.get(key) {
                to_sign.push_str(key);
                to_sign.push('\n');
                to_sign.push_str(v);
                to_sign.push('\n');
            }
        }
        let digest = sha2::Sha256::digest(to_sign.as_bytes());
        body.insert("SignatureVersion".into(), json!("1"));
        body.insert("Signature".into(), json!(BASE64.encode(digest)));
        body.insert(
            "SigningCertURL".into(),
            json!(format!(
                "https://sns.{}.amazonaws.com/SimpleNotificationService-local.pem",
                self.region
            )),
        );
    }

    fn unsubscribe_url(&self, subscription_arn: &str) -> String {
        format!(
            "{}/?Action=Unsubscribe&SubscriptionArn={}",
            self.endpoint(),
            percent_encoding::utf8_percent_encode(
                subscription_arn,
                percent_encoding::NON_ALPHANUMERIC
            )
        )
    }

    /// The SNS envelope SQS and HTTP subscribers get.
    fn envelope(&self, d: &Delivery) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("Type".into(), json!("Notification"));
        body.insert("MessageId".into(), json!(d.message_id));
        if let Some(n) = &d.sequence_number {
            body.insert("SequenceNumber".into(), json!(n));
        }
        body.insert("TopicArn".into(), json!(d.topic_arn));
        if let Some(s) = &d.subject {
            body.insert("Subject".into(), json!(s));
        }
        body.insert("Message".into(), json!(d.message));
        body.insert("Timestamp".into(), json!(d.timestamp));
        self.sign(&mut body);
        body.insert(
            "UnsubscribeURL".into(),
            json!(self.unsubscribe_url(&d.subscription_arn)),
        );
        if !d.attributes.is_empty() {
            body.insert(
                "MessageAttributes".into(),
                envelope_attributes(&d.attributes),
            );
        }
        body
    }

    /// The `SNSEvent` a function gets.
    fn lambda_event(&self, d: &Delivery) -> Value {
        let mut sns = self.envelope(d);
        // Lambda's record spells these two in camel case.
        if let Some(v) = sns.remove("SigningCertURL") {
            sns.insert("SigningCertUrl".into(), v);
        }
        if let Some(v) = sns.remove("UnsubscribeURL") {
            sns.insert("UnsubscribeUrl".into(), v);
        }
        sns.entry("Subject").or_insert(Value::Null);
        sns.entry("MessageAttributes").or_insert(json!({}));
        json!({ "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": d.subscription_arn,
            "Sns": Value::Object(sns),
        }]})
    }

    fn deliver(&self, d: Delivery) {
        let result = match d.sub.protocol.as_str() {
            "sqs" => self.deliver_sqs(&d),
            "lambda" => self.deliver_lambda(&d),
            _ => {
                self.deliver_http(d);
                return;
            }
        };
        if let Err(e) = result {
            self.dead_letter(&d, &e);
        }
    }

    fn deliver_sqs(&self, d: &Delivery) -> Result<(), String> {
        let queue = Sqs::name_from_arn(&d.sub.endpoint)
            .ok_or_else(|| format!("{} is not a queue ARN", d.sub.endpoint))?;
        let (body, attributes) = if d.sub.raw {
            (d.message.clone(), sqs_attributes(&d.attributes))
        } else {
            (Value::Object(self.envelope(d)).to_string(), BTreeMap::new())
        };
        let fifo_queue = queue.ends_with(".fifo");
        self.sqs
            .send(
                queue,
                SendRequest {
                    body,
                    attributes,
                    group_id: d.group_id.clone().filter(|_| fifo_queue),
                    dedup_id: d.dedup_id.clone().filter(|_| fifo_queue),
                    ..SendRequest::default()
                },
            )
            .map(|_| ())
            .map_err(|e| e.message)
    }

    fn deliver_lambda(&self, d: &Delivery) -> Result<(), String> {
        let function = d
            .sub
            .endpoint
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let Some(lambda) = self.lambda.upgrade() else {
            return Err("the stack is stopping".to_owned());
        };
        let payload = self.lambda_event(d).to_string();
        lambda
            .invoke_event(
                &function,
                InvokeRequest {
                    payload: payload.into(),
                    ..InvokeRequest::default()
                },
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn deliver_http(self: &Sns, d: Delivery) {
        let (body, raw) = if d.sub.raw {
            (d.message.clone(), true)
        } else {
            (Value::Object(self.envelope(&d)).to_string(), false)
        };
        let mut headers = vec![
            ("x-amz-sns-message-type", "Notification".to_owned()),
            ("x-amz-sns-message-id", d.message_id.clone()),
            ("x-amz-sns-topic-arn", d.topic_arn.clone()),
            ("x-amz-sns-subscription-arn", d.subscription_arn.clone()),
        ];
        if raw {
            headers.push(("x-amz-sns-rawdelivery", "true".to_owned()));
        }
        let http = self.http.clone();
        let dead_letter = self.dead_letter_sender(&d);
        tokio::spawn(async move {
            let mut last = String::new();
            for (attempt, wait) in std::iter::once(Duration::ZERO)
                .chain(HTTP_RETRY_DELAYS)
                .enumerate()
            {
                tokio::time::sleep(wait).await;
                match post(&http, &d.sub.endpoint, headers.clone(), body.clone()).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(endpoint = %d.sub.endpoint, attempt = attempt + 1,
                            message_id = %d.message_id, "SNS delivery failed: {e}");
                        last = e;
                    }
                }
            }
            dead_letter(last);
        });
    }

    /// Sends a delivery that failed for good to the subscription's
    /// dead-letter queue.
    fn dead_letter(&self, d: &Delivery, error: &str) {
        (self.dead_letter_sender(d))(error.to_owned());
    }

    fn dead_letter_sender(&self, d: &Delivery) -> impl FnOnce(String) + Send + 'static {
        let sqs = self.sqs.clone();
        let dlq = d.sub.dead_letter_arn.clone();
        let body = if d.sub.raw {
            d.message.clone()
        } else {
            Value::Object(self.envelope(d)).to_string()
        };
        let attributes = if d.sub.raw {
            sqs_attributes(&d.attributes)
        } else {
            BTreeMap::new()
        };
        let subscription = d.subscription_arn.clone();
        let message_id = d.message_id.clone();
        let group_id = d.group_id.clone();
        let dedup_id = d.dedup_id.clone();
        move |error: String| {
            let Some(queue) = dlq.as_deref().and_then(Sqs::name_from_arn) else {
                tracing::warn!(subscription = %subscription, message_id = %message_id,
                    "SNS message dropped (no dead-letter queue): {error}");
                return;
            };
            let fifo = queue.ends_with(".fifo");
            match sqs.send(
                queue,
                SendRequest {
                    body,
                    attributes,
                    group_id: group_id.filter(|_| fifo),
                    dedup_id: dedup_id.filter(|_| fifo),
                    ..SendRequest::default()
                },
            ) {
                Ok(_) => tracing::warn!(subscription = %subscription, message_id = %message_id,
                    dead_letter_queue = queue, "SNS message sent to the dead-letter queue: {error}"),
                Err(e) => tracing::warn!(subscription = %subscription, message_id = %message_id,
                    "SNS message lost: {error}; and the dead-letter queue refused it: {}", e.message),
            }
        }
    }
}

/// Attributes `SetTopicAttributes` and `CreateTopic` accept besides
/// `FifoTopic` and `ContentBasedDeduplication`.
const SETTABLE_TOPIC_ATTRIBUTES: &[&str] = &[
    "DisplayName",
    "Policy",
    "DeliveryPolicy",
    "KmsMasterKeyId",
    "SignatureVersion",
    "TracingConfig",
    "ArchivePolicy",
    "DataProtectionPolicy",
    "FifoThroughputScope",
    "HTTPSuccessFeedbackRoleArn",
    "HTTPFailureFeedbackRoleArn",
    "HTTPSuccessFeedbackSampleRate",
    "LambdaSuccessFeedbackRoleArn",
    "LambdaFailureFeedbackRoleArn",
    "LambdaSuccessFeedbackSampleRate",
    "SQSSuccessFeedbackRoleArn",
    "SQSFailureFeedbackRoleArn",
    "SQSSuccessFeedbackSampleRate",
];

impl SubscriptionState {
    fn same_settings(&self, other: &SubscriptionState) -> bool {
        self.raw == other.raw
            && self.filter_policy == other.filter_policy
            && self.scope == other.scope
            && self.dead_letter_arn == other.dead_letter_arn
    }
}

fn set_subscription_attribute(
    sub: &mut SubscriptionState,
    name: &str,
    value: &str,
) -> Result<(), SnsError> {
    match name {
        "RawMessageDelivery" => {
            let raw = match value {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(SnsError::invalid_parameter(format!(
                        "Attributes Reason: RawMessageDelivery: Invalid value [{value}]. Must be true or false."
                    )));
                }
            };
            if raw && sub.protocol == "lambda" {
                return Err(SnsError::invalid_parameter(
                    "Attributes Reason: Delivery protocol [lambda] does not support raw message delivery.",
                ));
            }
            sub.raw = raw;
        }
        "FilterPolicy" => {
            if value.is_empty() {
                sub.filter_policy = None;
            } else {
                crate::event_pattern::FilterPattern::parse_with(
                    value,
                    crate::event_pattern::Dialect::Sns,
                )
                .map_err(|problem| {
                    SnsError::invalid_parameter(format!("FilterPolicy: {problem}"))
                })?;
                sub.filter_policy = Some(value.to_owned());
            }
        }
        "FilterPolicyScope" => {
            sub.scope = match value {
                "MessageAttributes" => FilterPolicyScope::MessageAttributes,
                "MessageBody" => FilterPolicyScope::MessageBody,
                _ => {
                    return Err(SnsError::invalid_parameter(format!(
                        "Attributes Reason: FilterPolicyScope: Invalid value [{value}]. Please use either MessageBody or MessageAttributes"
                    )));
                }
            };
        }
        "RedrivePolicy" => {
            if value.is_empty() {
                sub.dead_letter_arn = None;
            } else {
                let policy: Value = serde_json::from_str(value).map_err(|_| {
                    SnsError::invalid_parameter(
                        "RedrivePolicy: Invalid RedrivePolicy: failed to parse JSON",
                    )
                })?;
                let arn = policy["deadLetterTargetArn"].as_str().unwrap_or_default();
                if Sqs::name_from_arn(arn).is_none() {
                    return Err(SnsError::invalid_parameter(
                        "RedrivePolicy: deadLetterTargetArn is an invalid arn",
                    ));
                }
                sub.dead_letter_arn = Some(arn.to_owned());
            }
        }
        "DeliveryPolicy" => {
            serde_json::from_str::<Value>(value)
                .map_err(|_| SnsError::invalid_parameter("DeliveryPolicy: failed to parse JSON"))?;
            sub.delivery_policy = Some(value.to_owned());
        }
        "SubscriptionRoleArn" if sub.protocol == "firehose" => {}
        other => {
            return Err(SnsError::invalid_parameter(format!(
                "AttributeName Reason: Unknown attribute {other}"
            )));
        }
    }
    Ok(())
}

/// The text a protocol gets (`MessageStructure=json` picks its own entry
/// or `default`).
fn message_for(request: &PublishRequest, protocol: &str) -> String {
    if !request.structure_json {
        return request.message.clone();
    }
    let parsed: Value = serde_json::from_str(&request.message).unwrap_or(Value::Null);
    parsed
        .get(protocol)
        .or_else(|| parsed.get("default"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `MessageAttributes` as the envelope writes them.
fn envelope_attributes(attributes: &BTreeMap<String, MessageAttribute>) -> Value {
    let mut out = Map::new();
    for (k, v) in attributes {
        let value = match (&v.string_value, &v.binary_value) {
            (Some(s), _) => s.clone(),
            (None, Some(b)) => BASE64.encode(b),
            (None, None) => String::new(),
        };
        out.insert(k.clone(), json!({ "Type": v.data_type, "Value": value }));
    }
    Value::Object(out)
}

/// Message attributes as SQS gets them with raw delivery.
fn sqs_attributes(
    attributes: &BTreeMap<String, MessageAttribute>,
) -> BTreeMap<String, AttributeValue> {
    attributes
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                AttributeValue {
                    data_type: v.data_type.clone(),
                    string_value: v.string_value.clone(),
                    binary_value: v.binary_value.clone(),
                },
            )
        })
        .collect()
}

/// One `POST` to an HTTP subscriber; a 2xx answer is a delivery.
async fn post(
    http: &HttpClient,
    url: &str,
    headers: Vec<(&'static str, String)>,
    body: String,
) -> Result<(), String> {
    if url.starts_with("https://") {
        return Err("https:// endpoints cannot be reached locally (no TLS client)".to_owned());
    }
    let mut request = http::Request::post(url)
        .header("content-type", "text/plain; charset=UTF-8")
        .header("user-agent", "Amazon Simple Notification Service Agent");
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .map_err(|e| format!("bad endpoint {url}: {e}"))?;
    let response = tokio::time::timeout(Duration::from_secs(15), http.request(request))
        .await
        .map_err(|_| "no answer in 15 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the endpoint answered {status}"))
    }
}
