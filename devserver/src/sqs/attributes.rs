//! Queue attributes as `CreateQueue` / `SetQueueAttributes` take them (a
//! map of strings) and as the queue keeps them (typed), with SQS's names,
//! defaults and ranges.
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html>

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::SqsError;
use crate::manifest::queues::MAX_MESSAGE_SIZE;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: String,
    pub max_receive_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueAttributes {
    pub delay_seconds: u32,
    pub maximum_message_size: u32,
    pub message_retention_period: u32,
    pub receive_message_wait_time_seconds: u32,
    pub visibility_timeout: u32,
    pub redrive_policy: Option<RedrivePolicy>,
    /// The `RedriveAllowPolicy` JSON, as given.
    pub redrive_allow_policy: Option<String>,
    pub fifo_queue: bool,
    pub content_based_deduplication: bool,
}

impl Default for QueueAttributes {
    fn default() -> Self {
        QueueAttributes {
            delay_seconds: 0,
            maximum_message_size: MAX_MESSAGE_SIZE,
            message_retention_period: 345_600,
            receive_message_wait_time_seconds: 0,
            visibility_timeout: 30,
            redrive_policy: None,
            redrive_allow_policy: None,
            fifo_queue: false,
            content_based_deduplication: false,
        }
    }
}

/// Attributes a client may set (others are read-only or unknown).
const SETTABLE: &[&str] = &[
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "Policy",
];

fn number(name: &str, value: &str, range: std::ops::RangeInclusive<u32>) -> Result<u32, SqsError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| SqsError::invalid_attribute_value(name))
}

fn boolean(name: &str, value: &str) -> Result<bool, SqsError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(SqsError::invalid_attribute_value(name)),
    }
}

impl QueueAttributes {
    /// Applies a client's attribute map; `creating` allows `FifoQueue`.
    pub fn apply(
        &mut self,
        attributes: &BTreeMap<String, String>,
        creating: bool,
    ) -> Result<(), SqsError> {
        for (name, value) in attributes {
            if !SETTABLE.contains(&name.as_str()) {
                return Err(SqsError::invalid_attribute_name(name));
            }
            match name.as_str() {
                "DelaySeconds" => self.delay_seconds = number(name, value, 0..=900)?,
                "MaximumMessageSize" => {
                    self.maximum_message_size = number(name, value, 1024..=MAX_MESSAGE_SIZE)?;
                }
                "MessageRetentionPeriod" => {
                    self.message_retention_period = number(name, value, 60..=1_209_600)?;
                }
                "ReceiveMessageWaitTimeSeconds" => {
                    self.receive_message_wait_time_seconds = number(name, value, 0..=20)?;
                }
                "VisibilityTimeout" => self.visibility_timeout = number(name, value, 0..=43_200)?,
                "RedrivePolicy" => {
                    self.redrive_policy = if value.is_empty() {
                        None
                    } else {
                        Some(parse_redrive_policy(value)?)
                    };
                }
                "RedriveAllowPolicy" => {
                    self.redrive_allow_policy = (!value.is_empty()).then(|| value.clone());
                }
                "FifoQueue" => {
                    let fifo = boolean(name, value)?;
                    if !creating && fifo != self.fifo_queue {
                        return Err(SqsError::invalid_attribute_name(name));
                    }
                    self.fifo_queue = fifo;
                }
                "ContentBasedDeduplication" => {
                    self.content_based_deduplication = boolean(name, value)?;
                }
                // Accepted and kept by AWS; nothing to do locally.
                _ => {}
            }
        }
        if self.content_based_deduplication && !self.fifo_queue {
            return Err(SqsError::invalid_attribute_name(
                "ContentBasedDeduplication",
            ));
        }
        Ok(())
    }

    /// The settable attributes as `GetQueueAttributes` shows them.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("DelaySeconds".into(), self.delay_seconds.to_string());
        m.insert(
            "MaximumMessageSize".into(),
            self.maximum_message_size.to_string(),
        );
        m.insert(
            "MessageRetentionPeriod".into(),
            self.message_retention_period.to_string(),
        );
        m.insert(
            "ReceiveMessageWaitTimeSeconds".into(),
            self.receive_message_wait_time_seconds.to_string(),
        );
        m.insert(
            "VisibilityTimeout".into(),
            self.visibility_timeout.to_string(),
        );
        m.insert("SqsManagedSseEnabled".into(), "true".into());
        if let Some(p) = &self.redrive_policy {
            m.insert(
                "RedrivePolicy".into(),
                serde_json::json!({
                    "deadLetterTargetArn": p.dead_letter_target_arn,
                    "maxReceiveCount": p.max_receive_count,
                })
                .to_string(),
            );
        }
        if let Some(p) = &self.redrive_allow_policy {
            m.insert("RedriveAllowPolicy".into(), p.clone());
        }
        if self.fifo_queue {
            m.insert("FifoQueue".into(), "true".into());
            m.insert(
                "ContentBasedDeduplication".into(),
                self.content_based_deduplication.to_string(),
            );
            m.insert("DeduplicationScope".into(), "queue".into());
            m.insert("FifoThroughputLimit".into(), "perQueue".into());
        }
        m
    }
}

/// `{"deadLetterTargetArn": "...", "maxReceiveCount": "5"}` (the count as
/// a number or a string, as SQS accepts both).
fn parse_redrive_policy(text: &str) -> Result<RedrivePolicy, SqsError> {
    let bad = || {
        SqsError::invalid_parameter(format!(
            "Value {text} for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a valid JSON map."
        ))
    };
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| bad())?;
    let arn = v["deadLetterTargetArn"]
        .as_str()
        .ok_or_else(bad)?
        .to_owned();
    let count = match &v["maxReceiveCount"] {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|c| (1..=1000).contains(c))
    .ok_or_else(|| {
        SqsError::invalid_parameter(format!(
            "Value {text} for parameter RedrivePolicy is invalid. Reason: Invalid value for maxReceiveCount: {}, valid values are from 1 to 1000 both inclusive.",
            v["maxReceiveCount"]
        ))
    })?;
    Ok(RedrivePolicy {
        dead_letter_target_arn: arn,
        max_receive_count: count as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn values_are_checked_against_sqss_ranges() {
        let mut a = QueueAttributes::default();
        a.apply(&map(&[("VisibilityTimeout", "60")]), true)
            .expect("ok");
        assert_eq!(a.visibility_timeout, 60);
        let e = a
            .apply(&map(&[("VisibilityTimeout", "43201")]), true)
            .expect_err("range");
        assert_eq!(e.code, "InvalidAttributeValue");
        let e = a.apply(&map(&[("Nonsense", "1")]), true).expect_err("name");
        assert_eq!(e.code, "InvalidAttributeName");
    }

    #[test]
    fn redrive_policies_take_the_count_as_a_number_or_a_string() {
        let mut a = QueueAttributes::default();
        a.apply(
            &map(&[(
                "RedrivePolicy",
                r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#,
            )]),
            true,
        )
        .expect("ok");
        assert_eq!(
            a.redrive_policy.as_ref().map(|p| p.max_receive_count),
            Some(3)
        );
        assert!(
            a.apply(&map(&[("RedrivePolicy", r#"{"maxReceiveCount":0}"#)]), true)
                .is_err()
        );
    }
}
