//! The SNS API in the query protocol: `POST /` with a form body
//! (`Action=Publish&Version=2010-03-31&TopicArn=...`), answered in XML.
//! Lists and maps are flattened as the protocol does
//! (`Attributes.entry.1.key`, `Tags.member.1.Key`,
//! `MessageAttributes.entry.1.Value.DataType`, ...).
//! <https://docs.aws.amazon.com/sns/latest/api/API_Operations.html>

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::xml::{Xml, respond};
use super::{MessageAttribute, PublishRequest, Sns, SnsError};

/// Answers one request given its form (or query) parameters.
pub fn serve(sns: &Sns, form: &[u8]) -> Response {
    let params: HashMap<String, String> = form_urlencoded::parse(form).into_owned().collect();
    let action = params.get("Action").cloned().unwrap_or_default();
    match dispatch(sns, &action, &Params(params)) {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(action = %action, "SNS {}: {}", e.code, e.message);
            e.into_response()
        }
    }
}

/// Whether a form names an SNS action (the endpoint tells SNS's query
/// requests apart from other services' by it).
pub fn is_sns_action(action: &str) -> bool {
    ACTIONS.contains(&action)
}

const ACTIONS: &[&str] = &[
    "CreateTopic",
    "DeleteTopic",
    "ListTopics",
    "GetTopicAttributes",
    "SetTopicAttributes",
    "Subscribe",
    "ConfirmSubscription",
    "Unsubscribe",
    "ListSubscriptions",
    "ListSubscriptionsByTopic",
    "GetSubscriptionAttributes",
    "SetSubscriptionAttributes",
    "Publish",
    "PublishBatch",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

struct Params(HashMap<String, String>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn required(&self, name: &str) -> Result<&str, SnsError> {
        self.get(name)
            .ok_or_else(|| SnsError::missing_parameter(name))
    }

    /// `{prefix}.entry.N.key` / `.value` pairs.
    fn entries(&self, prefix: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for n in 1.. {
            let Some(key) = self.get(&format!("{prefix}.entry.{n}.key")) else {
                break;
            };
            let value = self
                .get(&format!("{prefix}.entry.{n}.value"))
                .unwrap_or_default();
            out.insert(key.to_owned(), value.to_owned());
        }
        out
    }

    /// `{prefix}.member.N` values.
    fn members(&self, prefix: &str) -> Vec<String> {
        (1..)
            .map_while(|n| self.get(&format!("{prefix}.member.{n}")).map(str::to_owned))
            .collect()
    }

    /// `Tags.member.N.Key` / `.Value`.
    fn tags(&self) -> BTreeMap<String, String> {
        (1..)
            .map_while(|n| {
                let key = self.get(&format!("Tags.member.{n}.Key"))?;
                let value = self
                    .get(&format!("Tags.member.{n}.Value"))
                    .unwrap_or_default();
                Some((key.to_owned(), value.to_owned()))
            })
            .collect()
    }

    /// `{prefix}.entry.N.Name` and `.Value.DataType` / `.StringValue` /
    /// `.BinaryValue`.
    fn message_attributes(
        &self,
        prefix: &str,
    ) -> Result<BTreeMap<String, MessageAttribute>, SnsError> {
        let mut out = BTreeMap::new();
        for n in 1.. {
            let at = format!("{prefix}.entry.{n}");
            let Some(name) = self.get(&format!("{at}.Name")) else {
                break;
            };
            let Some(data_type) = self.get(&format!("{at}.Value.DataType")) else {
                return Err(SnsError::invalid_parameter_value(format!(
                    "The message attribute '{name}' must contain a DataType."
                )));
            };
            let binary = match self.get(&format!("{at}.Value.BinaryValue")) {
                Some(b) => Some(BASE64.decode(b).map_err(|_| {
                    SnsError::invalid_parameter_value(format!(
                        "The message attribute '{name}' has a BinaryValue that is not base64."
                    ))
                })?),
                None => None,
            };
            out.insert(
                name.to_owned(),
                MessageAttribute {
                    data_type: data_type.to_owned(),
                    string_value: self
                        .get(&format!("{at}.Value.StringValue"))
                        .map(str::to_owned),
                    binary_value: binary,
                },
            );
        }
        Ok(out)
    }
}

/// A page of 100, after `NextToken` (an index).
fn page<T>(items: Vec<T>, token: Option<&str>) -> Result<(Vec<T>, Option<String>), SnsError> {
    let start = match token {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| SnsError::invalid_parameter("NextToken"))?,
        None => 0,
    };
    let total = items.len();
    let items: Vec<T> = items.into_iter().skip(start).take(100).collect();
    let next = (start + items.len() < total).then(|| (start + items.len()).to_string());
    Ok((items, next))
}

fn dispatch(sns: &Sns, action: &str, p: &Params) -> Result<Response, SnsError> {
    match action {
        "CreateTopic" => {
            let name = p.required("Name")?;
            let arn = sns.create_topic(name, &p.entries("Attributes"), p.tags())?;
            let mut x = Xml::default();
            x.text("TopicArn", &arn);
            Ok(respond(action, Some(x)))
        }
        "DeleteTopic" => {
            let name = sns.topic_name(p.required("TopicArn")?, "TopicArn")?;
            sns.delete_topic(name)?;
            Ok(respond(action, None))
        }
        "ListTopics" => {
            let arns: Vec<String> = sns.topic_names().iter().map(|n| sns.topic_arn(n)).collect();
            let (arns, next) = page(arns, p.get("NextToken"))?;
            let mut x = Xml::default();
            x.element("Topics", |x| {
                for arn in &arns {
                    x.element("member", |m| {
                        m.text("TopicArn", arn);
                    });
                }
            });
            if let Some(next) = next {
                x.text("NextToken", &next);
            }
            Ok(respond(action, Some(x)))
        }
        "GetTopicAttributes" => {
            let name = sns.topic_name(p.required("TopicArn")?, "TopicArn")?;
            let attributes = sns.topic_attributes(name)?;
            let mut x = Xml::default();
            x.entries("Attributes", &attributes);
            Ok(respond(action, Some(x)))
        }
        "SetTopicAttributes" => {
            let name = sns.topic_name(p.required("TopicArn")?, "TopicArn")?;
            sns.set_topic_attribute(
                name,
                p.required("AttributeName")?,
                p.get("AttributeValue").unwrap_or_default(),
            )?;
            Ok(respond(action, None))
        }
        "Subscribe" => {
            let name = sns.topic_name(p.required("TopicArn")?, "TopicArn")?;
            let protocol = p.required("Protocol")?;
            let endpoint = p.get("Endpoint").unwrap_or_default();
            let (arn, confirmed) =
                sns.subscribe(name, protocol, endpoint, &p.entries("Attributes"))?;
            let return_arn = p.get("ReturnSubscriptionArn") == Some("true");
            let mut x = Xml::default();
            x.text(
                "SubscriptionArn",
                if confirmed || return_arn {
                    &arn
                } else {
                    "pending confirmation"
                },
            );
            Ok(respond(action, Some(x)))
        }
        "ConfirmSubscription" => {
            let name = sns.topic_name(p.required("TopicArn")?, "TopicArn")?;
            let arn = sns.confirm(name, p.required("Token")?)?;
            let mut x = Xml::default();
            x.text("SubscriptionArn", &arn);
            Ok(respond(action, Some(x)))
        }
        "Unsubscribe" => {
            sns.unsubscribe(p.required("SubscriptionArn")?)?;
            Ok(respond(action, None))
        }
        "ListSubscriptions" | "ListSubscriptionsByTopic" => {
            let topic = match action {
                "ListSubscriptionsByTopic" => {
                    Some(sns.topic_name(p.required("TopicArn")?, "TopicArn")?)
                }
                _ => None,
            };
            let subs = sns.subscriptions(topic)?;
            let (subs, next) = page(subs, p.get("NextToken"))?;
            let mut x = Xml::default();
            x.element("Subscriptions", |x| {
                for s in &subs {
                    x.element("member", |m| {
                        m.text("TopicArn", &s.topic_arn)
                            .text("Protocol", &s.protocol)
                            .text("SubscriptionArn", &s.subscription_arn)
                            .text("Owner", &sns.account_id)
                            .text("Endpoint", &s.endpoint);
                    });
                }
            });
            if let Some(next) = next {
                x.text("NextToken", &next);
            }
            Ok(respond(action, Some(x)))
        }
        "GetSubscriptionAttributes" => {
            let attributes = sns.subscription_attributes(p.required("SubscriptionArn")?)?;
            let mut x = Xml::default();
            x.entries("Attributes", &attributes);
            Ok(respond(action, Some(x)))
        }
        "SetSubscriptionAttributes" => {
            sns.set_subscription_attribute(
                p.required("SubscriptionArn")?,
                p.required("AttributeName")?,
                p.get("AttributeValue").unwrap_or_default(),
            )?;
            Ok(respond(action, None))
        }
        "Publish" => {
            let arn = match (p.get("TopicArn"), p.get("TargetArn")) {
                (Some(t), _) => (t, "TopicArn"),
                (None, Some(t)) => (t, "TargetArn"),
                (None, None) => {
                    if p.get("PhoneNumber").is_some() {
                        return Err(SnsError::invalid_parameter(
                            "PhoneNumber Reason: SMS is not emulated by woocom-dev; publish to a topic",
                        ));
                    }
                    return Err(SnsError::invalid_parameter(
                        "TopicArn or TargetArn Reason: no value for required parameter",
                    ));
                }
            };
            let name = sns.topic_name(arn.0, arn.1)?;
            let request = publish_request(p, "")?;
            let published = sns.publish(name, request)?;
            let mut x = Xml::default();
            x.text("MessageId", &published.message_id);
            if let Some(n) = &published.sequence_number {
                x.text("SequenceNumber", n);
            }
            Ok(respond(action, Some(x)))
        }
        "PublishBatch" => publish_batch(sns, p),
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            let name = sns
                .topic_name(p.required("ResourceArn")?, "ResourceArn")
                .map_err(|_| SnsError::resource_not_found())?;
            match action {
                "TagResource" => {
                    sns.change_tags(name, p.tags(), &[])?;
                    Ok(respond(action, Some(Xml::default())))
                }
                "UntagResource" => {
                    sns.change_tags(name, BTreeMap::new(), &p.members("TagKeys"))?;
                    Ok(respond(action, Some(Xml::default())))
                }
                _ => {
                    let tags = sns.tags(name)?;
                    let mut x = Xml::default();
                    x.element("Tags", |x| {
                        for (k, v) in &tags {
                            x.element("member", |m| {
                                m.text("Key", k).text("Value", v);
                            });
                        }
                    });
                    Ok(respond(action, Some(x)))
                }
            }
        }
        "" => Err(SnsError::batch(
            "MissingAction",
            "The request must contain the parameter Action.",
        )),
        other => Err(SnsError::invalid_action(other)),
    }
}

/// A publish's fields, at `prefix` (empty for `Publish`, the entry's for
/// `PublishBatch`).
fn publish_request(p: &Params, prefix: &str) -> Result<PublishRequest, SnsError> {
    let field = |name: &str| p.get(&format!("{prefix}{name}")).map(str::to_owned);
    let Some(message) = field("Message") else {
        return Err(SnsError::missing_parameter("Message"));
    };
    let structure = field("MessageStructure");
    if let Some(s) = &structure
        && s != "json"
    {
        return Err(SnsError::invalid_parameter(format!(
            "MessageStructure Reason: Invalid value [{s}]; the only one is json"
        )));
    }
    Ok(PublishRequest {
        message,
        subject: field("Subject"),
        structure_json: structure.is_some(),
        attributes: p.message_attributes(&format!("{prefix}MessageAttributes"))?,
        group_id: field("MessageGroupId"),
        dedup_id: field("MessageDeduplicationId"),
    })
}

fn publish_batch(sns: &Sns, p: &Params) -> Result<Response, SnsError> {
    let name = sns.topic_name(p.required("TopicArn")?, "TopicArn")?;
    let prefix = |n: usize| format!("PublishBatchRequestEntries.member.{n}.");
    let count = (1..)
        .take_while(|n| p.get(&format!("{}Id", prefix(*n))).is_some())
        .count();
    if count == 0 {
        return Err(SnsError::batch(
            "EmptyBatchRequest",
            "The batch request doesn't contain any entries.",
        ));
    }
    if count > 10 {
        return Err(SnsError::batch(
            "TooManyEntriesInBatchRequest",
            "The batch request contains more entries than permissible.",
        ));
    }
    let mut ids = HashSet::new();
    let mut total = 0;
    for n in 1..=count {
        let id = p.get(&format!("{}Id", prefix(n))).unwrap_or_default();
        let id_ok = !id.is_empty()
            && id.len() <= 80
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(SnsError::batch(
                "InvalidBatchEntryId",
                "The Id of a batch entry in a batch request doesn't abide by the specification.",
            ));
        }
        if !ids.insert(id) {
            return Err(SnsError::batch(
                "BatchEntryIdsNotDistinct",
                "Two or more batch entries in the request have the same Id.",
            ));
        }
        total += p.get(&format!("{}Message", prefix(n))).map_or(0, str::len);
    }
    if total > super::MAX_MESSAGE_BYTES {
        return Err(SnsError::batch(
            "BatchRequestTooLong",
            "The length of all the messages put together is more than the limit.",
        ));
    }
    let mut ok = Xml::default();
    let mut failed = Xml::default();
    for n in 1..=count {
        let id = p.get(&format!("{}Id", prefix(n))).unwrap_or_default();
        let result = publish_request(p, &prefix(n)).and_then(|request| sns.publish(name, request));
        match result {
            Ok(published) => {
                ok.element("member", |m| {
                    m.text("Id", id).text("MessageId", &published.message_id);
                    if let Some(s) = &published.sequence_number {
                        m.text("SequenceNumber", s);
                    }
                });
            }
            Err(e) if e.status.is_client_error() && e.code != "NotFound" => {
                failed.element("member", |m| {
                    m.text("Id", id)
                        .text("Code", e.code)
                        .text("Message", &e.message)
                        .text("SenderFault", "true");
                });
            }
            Err(e) => return Err(e),
        }
    }
    let mut x = Xml::default();
    x.element("Successful", |x| x.push(ok));
    x.element("Failed", |x| x.push(failed));
    Ok(respond("PublishBatch", Some(x)))
}
