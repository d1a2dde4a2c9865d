//! The SQS operations as the JSON protocol (`application/x-amz-json-1.0`,
//! `X-Amz-Target: AmazonSQS.<Operation>`) carries them, with SQS's member
//! names, limits and error codes.
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_Operations.html>

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use super::error::SqsError;
use super::message::{self, AttributeValue, Message};
use super::{ReceiveRequest, SendRequest, Sqs};

/// Answers one request: `operation` from `X-Amz-Target` (after the prefix).
pub async fn serve(sqs: Arc<Sqs>, operation: &str, body: &[u8]) -> Response {
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return SqsError::malformed("The request body is not a JSON object.")
                    .into_response();
            }
        }
    };
    match call(&sqs, operation, &request).await {
        Ok(answer) => {
            let mut response = answer.to_string().into_response();
            let h = response.headers_mut();
            h.insert(
                "content-type",
                HeaderValue::from_static("application/x-amz-json-1.0"),
            );
            if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
                h.insert("x-amzn-requestid", v);
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

fn str_field<'a>(r: &'a Value, name: &str) -> Result<&'a str, SqsError> {
    r.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| SqsError::missing_parameter(name))
}

fn queue_name(r: &Value) -> Result<&str, SqsError> {
    let url = str_field(r, "QueueUrl")?;
    Sqs::name_from_url(url).ok_or_else(SqsError::queue_does_not_exist)
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn int(
    r: &Value,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
    rule: &str,
) -> Result<Option<i64>, SqsError> {
    match r.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = v.as_i64().ok_or_else(|| {
                SqsError::invalid_parameter(format!(
                    "Value {v} for parameter {name} is invalid. Reason: {rule}"
                ))
            })?;
            if range.contains(&n) {
                Ok(Some(n))
            } else {
                Err(SqsError::invalid_parameter(format!(
                    "Value {n} for parameter {name} is invalid. Reason: {rule}"
                )))
            }
        }
    }
}

/// `MessageAttributes` of a send: at most 10, types String / Number /
/// Binary (with an optional `.custom` suffix).
fn message_attributes(v: Option<&Value>) -> Result<BTreeMap<String, AttributeValue>, SqsError> {
    let Some(map) = v.and_then(Value::as_object) else {
        return Ok(BTreeMap::new());
    };
    if map.len() > 10 {
        return Err(SqsError::invalid_parameter(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [10].",
            map.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (name, value) in map {
        let ok_name = !name.is_empty()
            && name.len() <= 256
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !ok_name {
            return Err(SqsError::invalid_parameter(format!(
                "Message (user) attribute '{name}' has an invalid name."
            )));
        }
        let data_type = value
            .get("DataType")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                SqsError::invalid_parameter(format!(
                    "The message attribute '{name}' must contain non-empty message attribute type."
                ))
            })?;
        let base = data_type.split('.').next().unwrap_or_default();
        if !["String", "Number", "Binary"].contains(&base) {
            return Err(SqsError::invalid_parameter(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        }
        let attribute =
            if base == "Binary" {
                let raw = value.get("BinaryValue").and_then(Value::as_str).ok_or_else(|| {
                SqsError::invalid_parameter(format!(
                    "The message attribute '{name}' with type 'Binary' must use field 'Binary'."
                ))
            })?;
                let bytes = BASE64.decode(raw).map_err(|_| {
                    SqsError::invalid_parameter(format!(
                        "The message attribute '{name}' has an invalid binary value."
                    ))
                })?;
                AttributeValue {
                    data_type: data_type.to_owned(),
                    string_value: None,
                    binary_value: Some(bytes),
                }
            } else {
                let s = value.get("StringValue").and_then(Value::as_str).ok_or_else(|| {
                SqsError::invalid_parameter(format!(
                    "The message attribute '{name}' with type '{base}' must use field 'String'."
                ))
            })?;
                if base == "Number" && s.parse::<f64>().is_err() {
                    return Err(SqsError::invalid_parameter(format!(
                        "Can't cast the value of message (user) attribute '{name}' to a number."
                    )));
                }
                AttributeValue {
                    data_type: data_type.to_owned(),
                    string_value: Some(s.to_owned()),
                    binary_value: None,
                }
            };
        out.insert(name.clone(), attribute);
    }
    Ok(out)
}

fn send_request(r: &Value) -> Result<SendRequest, SqsError> {
    let body = str_field(r, "MessageBody")?.to_owned();
    let delay = int(
        r,
        "DelaySeconds",
        0..=900,
        "DelaySeconds must be >= 0 and <= 900.",
    )?;
    let trace = r
        .pointer("/MessageSystemAttributes/AWSTraceHeader/StringValue")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(SendRequest {
        body,
        delay_seconds: delay.map(|d| d as u32),
        attributes: message_attributes(r.get("MessageAttributes"))?,
        trace_header: trace,
        group_id: r
            .get("MessageGroupId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        dedup_id: r
            .get("MessageDeduplicationId")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Batch entries: 1 to 10, ids distinct and well-formed.
fn batch_entries<'a>(r: &'a Value, entry_name: &str) -> Result<&'a Vec<Value>, SqsError> {
    let entries = r
        .get("Entries")
        .and_then(Value::as_array)
        .ok_or_else(|| SqsError::empty_batch(entry_name))?;
    if entries.is_empty() {
        return Err(SqsError::empty_batch(entry_name));
    }
    if entries.len() > 10 {
        return Err(SqsError::too_many_entries(entries.len()));
    }
    let mut seen = BTreeSet::new();
    for e in entries {
        let id = e.get("Id").and_then(Value::as_str).unwrap_or_default();
        let ok = !id.is_empty()
            && id.len() <= 80
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(SqsError::invalid_batch_entry_id());
        }
        if !seen.insert(id) {
            return Err(SqsError::batch_ids_not_distinct(id));
        }
    }
    Ok(entries)
}

fn failed(id: &str, e: &SqsError) -> Value {
    json!({ "Id": id, "SenderFault": !e.status.is_server_error(), "Code": e.batch_code(), "Message": e.message })
}

/// Which names a `...Names` list asks for: all, or these (`prefix.*`).
fn wants(list: Option<&Value>) -> impl Fn(&str) -> bool {
    let names: Vec<String> = list
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    move |name: &str| {
        names.iter().any(|n| {
            n == "All"
                || n == ".*"
                || n == name
                || n.strip_suffix(".*")
                    .is_some_and(|p| name.starts_with(&format!("{p}.")))
        })
    }
}

fn message_json(m: &Message, system: &dyn Fn(&str) -> bool, user: &dyn Fn(&str) -> bool) -> Value {
    let mut out = Map::new();
    out.insert("MessageId".into(), json!(m.id));
    out.insert("ReceiptHandle".into(), json!(m.receipt));
    out.insert("MD5OfBody".into(), json!(m.md5_of_body()));
    out.insert("Body".into(), json!(m.body));
    let mut attrs = Map::new();
    for (k, v) in system_attributes(m) {
        if system(&k) {
            attrs.insert(k, json!(v));
        }
    }
    if !attrs.is_empty() {
        out.insert("Attributes".into(), Value::Object(attrs));
    }
    let chosen: BTreeMap<String, AttributeValue> = m
        .attributes
        .iter()
        .filter(|(k, _)| user(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(md5) = message::md5_of_attributes(&chosen) {
        out.insert("MD5OfMessageAttributes".into(), json!(md5));
        out.insert(
            "MessageAttributes".into(),
            Value::Object(
                chosen
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_wire()))
                    .collect(),
            ),
        );
    }
    Value::Object(out)
}

/// The system attributes SQS reports for a received message.
pub fn system_attributes(m: &Message) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert("SenderId".into(), m.sender_id.clone());
    a.insert("SentTimestamp".into(), m.sent_ms.to_string());
    a.insert(
        "ApproximateReceiveCount".into(),
        m.receive_count.to_string(),
    );
    if let Some(t) = m.first_receive_ms {
        a.insert("ApproximateFirstReceiveTimestamp".into(), t.to_string());
    }
    if let Some(t) = &m.trace_header {
        a.insert("AWSTraceHeader".into(), t.clone());
    }
    if let Some(g) = &m.group_id {
        a.insert("MessageGroupId".into(), g.clone());
    }
    if let Some(d) = &m.dedup_id {
        a.insert("MessageDeduplicationId".into(), d.clone());
    }
    if let Some(s) = &m.sequence_number {
        a.insert("SequenceNumber".into(), s.clone());
    }
    if let Some(s) = &m.dead_letter_source_arn {
        a.insert("DeadLetterQueueSourceArn".into(), s.clone());
    }
    a
}

/// Runs `one` for each entry of a batch: `Successful` entries are its
/// answers with their `Id`, `Failed` ones carry the error's code.
fn batch(
    sqs: &Sqs,
    queue: &str,
    entries: &[Value],
    one: impl Fn(&Value) -> Result<Value, SqsError>,
) -> Result<Value, SqsError> {
    if !sqs.exists(queue) {
        return Err(SqsError::queue_does_not_exist());
    }
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for e in entries {
        let id = e.get("Id").and_then(Value::as_str).unwrap_or_default();
        match one(e) {
            Ok(mut answer) => {
                answer["Id"] = json!(id);
                ok.push(answer);
            }
            Err(err) => bad.push(failed(id, &err)),
        }
    }
    Ok(json!({ "Successful": ok, "Failed": bad }))
}

/// `SendMessage`, or one entry of `SendMessageBatch`.
fn send_one(sqs: &Sqs, queue: &str, r: &Value) -> Result<Value, SqsError> {
    let sent = sqs.send(queue, send_request(r)?)?;
    let mut out = json!({ "MessageId": sent.message_id, "MD5OfMessageBody": sent.md5_of_body });
    if let Some(m) = sent.md5_of_attributes {
        out["MD5OfMessageAttributes"] = json!(m);
    }
    if let Some(m) = sent.md5_of_system_attributes {
        out["MD5OfMessageSystemAttributes"] = json!(m);
    }
    if let Some(s) = sent.sequence_number {
        out["SequenceNumber"] = json!(s);
    }
    Ok(out)
}

/// `DeleteMessage`, or one entry of `DeleteMessageBatch`.
fn delete_one(sqs: &Sqs, queue: &str, r: &Value) -> Result<Value, SqsError> {
    sqs.delete_message(queue, str_field(r, "ReceiptHandle")?)?;
    Ok(json!({}))
}

/// `ChangeMessageVisibility`, or one entry of its batch.
fn change_visibility_one(sqs: &Sqs, queue: &str, r: &Value) -> Result<Value, SqsError> {
    let timeout = int(
        r,
        "VisibilityTimeout",
        0..=43_200,
        "Must be between 0 and 43200, if provided.",
    )?
    .ok_or_else(|| SqsError::missing_parameter("VisibilityTimeout"))?;
    sqs.change_visibility(queue, str_field(r, "ReceiptHandle")?, timeout as u32)?;
    Ok(json!({}))
}

async fn call(sqs: &Sqs, operation: &str, r: &Value) -> Result<Value, SqsError> {
    match operation {
        "CreateQueue" => {
            let name = str_field(r, "QueueName")?;
            let attributes = string_map(r.get("Attributes"));
            let tags = string_map(r.get("tags"));
            Ok(json!({ "QueueUrl": sqs.create_queue(name, &attributes, tags)? }))
        }
        "GetQueueUrl" => {
            let name = str_field(r, "QueueName")?;
            if !sqs.exists(name) {
                return Err(SqsError::queue_does_not_exist());
            }
            Ok(json!({ "QueueUrl": sqs.queue_url(name) }))
        }
        "ListQueues" => {
            let prefix = r
                .get("QueueNamePrefix")
                .and_then(Value::as_str)
                .unwrap_or("");
            let max = int(
                r,
                "MaxResults",
                1..=1000,
                "MaxResults must be an integer between 1 and 1000.",
            )?;
            let after = r
                .get("NextToken")
                .and_then(Value::as_str)
                .and_then(|t| BASE64.decode(t).ok())
                .and_then(|b| String::from_utf8(b).ok());
            let names: Vec<String> = sqs
                .queue_names()
                .into_iter()
                .filter(|n| n.starts_with(prefix))
                .filter(|n| after.as_deref().is_none_or(|a| n.as_str() > a))
                .collect();
            let limit = max.map_or(1000, |m| m as usize);
            let page: Vec<String> = names.iter().take(limit).cloned().collect();
            let mut out =
                json!({ "QueueUrls": page.iter().map(|n| sqs.queue_url(n)).collect::<Vec<_>>() });
            if max.is_some()
                && names.len() > limit
                && let Some(last) = page.last()
            {
                out["NextToken"] = json!(BASE64.encode(last));
            }
            Ok(out)
        }
        "GetQueueAttributes" => {
            let name = queue_name(r)?;
            let all = sqs.attributes(name)?;
            let wanted = wants(r.get("AttributeNames"));
            let chosen: Map<String, Value> = all
                .into_iter()
                .filter(|(k, _)| wanted(k))
                .map(|(k, v)| (k, json!(v)))
                .collect();
            Ok(if chosen.is_empty() {
                json!({})
            } else {
                json!({ "Attributes": chosen })
            })
        }
        "SetQueueAttributes" => {
            let name = queue_name(r)?;
            sqs.set_attributes(name, &string_map(r.get("Attributes")))?;
            Ok(json!({}))
        }
        "DeleteQueue" => {
            sqs.delete_queue(queue_name(r)?)?;
            Ok(json!({}))
        }
        "PurgeQueue" => {
            sqs.purge(queue_name(r)?)?;
            Ok(json!({}))
        }
        "TagQueue" => {
            sqs.change_tags(queue_name(r)?, string_map(r.get("Tags")), &[])?;
            Ok(json!({}))
        }
        "UntagQueue" => {
            let keys: Vec<String> = r
                .get("TagKeys")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            sqs.change_tags(queue_name(r)?, BTreeMap::new(), &keys)?;
            Ok(json!({}))
        }
        "ListQueueTags" => {
            let tags = sqs.tags(queue_name(r)?)?;
            Ok(if tags.is_empty() {
                json!({})
            } else {
                json!({ "Tags": tags })
            })
        }
        "ListDeadLetterSourceQueues" => {
            let name = queue_name(r)?;
            if !sqs.exists(name) {
                return Err(SqsError::queue_does_not_exist());
            }
            let urls: Vec<String> = sqs
                .dead_letter_sources(name)
                .iter()
                .map(|n| sqs.queue_url(n))
                .collect();
            Ok(json!({ "queueUrls": urls }))
        }
        "SendMessage" => send_one(sqs, queue_name(r)?, r),
        "SendMessageBatch" => {
            let name = queue_name(r)?;
            let entries = batch_entries(r, "SendMessageBatchRequestEntry")?;
            let total: usize = entries
                .iter()
                .map(|e| {
                    e.get("MessageBody")
                        .and_then(Value::as_str)
                        .map_or(0, str::len)
                })
                .sum();
            let limit = super::attributes::QueueAttributes::default().maximum_message_size as usize;
            if total > limit {
                return Err(SqsError::batch_request_too_long(limit));
            }
            batch(sqs, name, entries, |e| send_one(sqs, name, e))
        }
        "ReceiveMessage" => {
            let name = queue_name(r)?;
            let max = int(
                r,
                "MaxNumberOfMessages",
                1..=10,
                "Must be between 1 and 10, if provided.",
            )?;
            let wait = int(
                r,
                "WaitTimeSeconds",
                0..=20,
                "Must be >= 0 and <= 20, if provided.",
            )?;
            let visibility = int(
                r,
                "VisibilityTimeout",
                0..=43_200,
                "Must be between 0 and 43200, if provided.",
            )?;
            let messages = sqs
                .receive(
                    name,
                    ReceiveRequest {
                        max: max.unwrap_or(1) as usize,
                        visibility_timeout: visibility.map(|v| v as u32),
                        wait: wait.map(|w| Duration::from_secs(w as u64)),
                    },
                )
                .await?;
            let legacy = wants(r.get("AttributeNames"));
            let system = wants(r.get("MessageSystemAttributeNames"));
            let either = |n: &str| legacy(n) || system(n);
            let user = wants(r.get("MessageAttributeNames"));
            let list: Vec<Value> = messages
                .iter()
                .map(|m| message_json(m, &either, &user))
                .collect();
            Ok(if list.is_empty() {
                json!({})
            } else {
                json!({ "Messages": list })
            })
        }
        "DeleteMessage" => delete_one(sqs, queue_name(r)?, r),
        "DeleteMessageBatch" => {
            let name = queue_name(r)?;
            let entries = batch_entries(r, "DeleteMessageBatchRequestEntry")?;
            batch(sqs, name, entries, |e| delete_one(sqs, name, e))
        }
        "ChangeMessageVisibility" => change_visibility_one(sqs, queue_name(r)?, r),
        "ChangeMessageVisibilityBatch" => {
            let name = queue_name(r)?;
            let entries = batch_entries(r, "ChangeMessageVisibilityBatchRequestEntry")?;
            batch(sqs, name, entries, |e| change_visibility_one(sqs, name, e))
        }
        "StartMessageMoveTask" => {
            let source = str_field(r, "SourceArn")?;
            let destination = r.get("DestinationArn").and_then(Value::as_str);
            Ok(json!({ "TaskHandle": sqs.start_move_task(source, destination)? }))
        }
        "ListMessageMoveTasks" => {
            let source = str_field(r, "SourceArn")?;
            let results: Vec<Value> = sqs
                .move_tasks(source)
                .iter()
                .rev()
                .map(|t| {
                    let mut o = json!({
                        "TaskHandle": t.handle,
                        "Status": t.status,
                        "SourceArn": t.source_arn,
                        "ApproximateNumberOfMessagesMoved": t.moved,
                        "ApproximateNumberOfMessagesToMove": t.to_move,
                        "StartedTimestamp": t.started_ms,
                    });
                    if let Some(d) = &t.destination_arn {
                        o["DestinationArn"] = json!(d);
                    }
                    if let Some(f) = &t.failure_reason {
                        o["FailureReason"] = json!(f);
                    }
                    o
                })
                .collect();
            Ok(json!({ "Results": results }))
        }
        "CancelMessageMoveTask" => Err(SqsError::unsupported_operation(
            "The task has already completed: local move tasks finish at once.",
        )),
        other => Err(SqsError::invalid_action(other)),
    }
}
