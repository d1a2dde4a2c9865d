//! EventBridge's operations as the JSON protocol carries them
//! (`application/x-amz-json-1.1`, `X-Amz-Target: AWSEvents.<Operation>`),
//! with EventBridge's member names, limits and error codes.
//! <https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_Operations.html>

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{
    EntryResult, EventBridge, EventEntry, EventsError, MAX_ENTRIES, MAX_REQUEST_BYTES, TargetState,
};
use crate::manifest::events::{InputTransformer, RetryPolicy};

impl IntoResponse for EventsError {
    fn into_response(self) -> Response {
        let status = if self.code == "InternalException" {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut response = (
            status,
            json!({ "__type": self.code, "message": self.message }).to_string(),
        )
            .into_response();
        response.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        response
    }
}

/// Answers one request: `operation` from `X-Amz-Target` (after the prefix).
pub fn serve(events: &EventBridge, operation: &str, body: &[u8]) -> Response {
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return EventsError::new(
                    "SerializationException",
                    "The request body is not a JSON object.",
                )
                .into_response();
            }
        }
    };
    match call(events, operation, &request) {
        Ok(answer) => {
            let mut response = answer.to_string().into_response();
            let h = response.headers_mut();
            h.insert(
                "content-type",
                HeaderValue::from_static("application/x-amz-json-1.1"),
            );
            if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
                h.insert("x-amzn-requestid", v);
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

fn required<'a>(r: &'a Value, name: &str) -> Result<&'a str, EventsError> {
    r.get(name).and_then(Value::as_str).ok_or_else(|| {
        EventsError::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(name)
        ))
    })
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn optional(r: &Value, name: &str) -> Option<String> {
    r.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn tags(r: &Value) -> BTreeMap<String, String> {
    r.get("Tags")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|t| {
                    Some((
                        t["Key"].as_str()?.to_owned(),
                        t["Value"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `Limit` and `NextToken` (the index of the first item) over `items`.
fn page<T>(r: &Value, items: Vec<T>) -> Result<(Vec<T>, Option<String>), EventsError> {
    let limit = match r.get("Limit").and_then(Value::as_i64) {
        Some(l) if (1..=100).contains(&l) => usize::try_from(l).unwrap_or(100),
        Some(_) => {
            return Err(EventsError::validation(
                "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value between 1 and 100",
            ));
        }
        None => 100,
    };
    let start = match r.get("NextToken").and_then(Value::as_str) {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| EventsError::validation("The NextToken is not valid."))?,
        None => 0,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next = (start + limit < total).then(|| (start + limit).to_string());
    Ok((page, next))
}

fn with_token(mut v: Value, token: Option<String>) -> Value {
    if let (Some(t), Some(o)) = (token, v.as_object_mut()) {
        o.insert("NextToken".to_owned(), Value::String(t));
    }
    v
}

fn epoch_seconds(ms: i64) -> Value {
    // The JSON protocol's timestamps: seconds since the epoch.
    json!(ms as f64 / 1000.0)
}

fn call(events: &EventBridge, operation: &str, r: &Value) -> Result<Value, EventsError> {
    let bus = || events.bus_name(r.get("EventBusName").and_then(Value::as_str));
    match operation {
        "PutEvents" => put_events(events, r),
        "PutRule" => {
            let name = required(r, "Name")?;
            let arn = events.put_rule(
                &bus(),
                name,
                optional(r, "EventPattern"),
                optional(r, "ScheduleExpression"),
                optional(r, "State"),
                optional(r, "Description"),
                optional(r, "RoleArn"),
                tags(r),
            )?;
            Ok(json!({ "RuleArn": arn }))
        }
        "DescribeRule" => {
            let rule = events.rule(&bus(), required(r, "Name")?)?;
            let mut out = rule_json(&rule);
            if let Some(o) = out.as_object_mut() {
                o.insert("CreatedBy".to_owned(), json!(events.account_id));
            }
            Ok(out)
        }
        "ListRules" => {
            let prefix = optional(r, "NamePrefix").unwrap_or_default();
            let rules: Vec<Value> = events
                .rules(&bus())?
                .iter()
                .filter(|rule| rule.name.starts_with(&prefix))
                .map(rule_json)
                .collect();
            let (rules, next) = page(r, rules)?;
            Ok(with_token(json!({ "Rules": rules }), next))
        }
        "ListRuleNamesByTarget" => {
            let names = events.rule_names_by_target(&bus(), required(r, "TargetArn")?)?;
            let (names, next) = page(r, names)?;
            Ok(with_token(json!({ "RuleNames": names }), next))
        }
        "EnableRule" | "DisableRule" => {
            events.set_state(&bus(), required(r, "Name")?, operation == "EnableRule")?;
            Ok(json!({}))
        }
        "DeleteRule" => {
            let force = r.get("Force").and_then(Value::as_bool).unwrap_or(false);
            events.delete_rule(&bus(), required(r, "Name")?, force)?;
            Ok(json!({}))
        }
        "PutTargets" => {
            let rule = required(r, "Rule")?;
            let list = r
                .get("Targets")
                .and_then(Value::as_array)
                .filter(|t| !t.is_empty() && t.len() <= 10)
                .ok_or_else(|| {
                    EventsError::validation(
                        "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length between 1 and 10",
                    )
                })?;
            let targets = list
                .iter()
                .map(target_from)
                .collect::<Result<Vec<_>, _>>()?;
            let failed = events.put_targets(&bus(), rule, targets)?;
            Ok(failed_entries(&failed))
        }
        "RemoveTargets" => {
            let rule = required(r, "Rule")?;
            let ids: Vec<String> = r
                .get("Ids")
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let failed = events.remove_targets(&bus(), rule, &ids)?;
            Ok(failed_entries(&failed))
        }
        "ListTargetsByRule" => {
            let rule = events.rule(&bus(), required(r, "Rule")?)?;
            let targets: Vec<Value> = rule.targets.iter().map(target_json).collect();
            let (targets, next) = page(r, targets)?;
            Ok(with_token(json!({ "Targets": targets }), next))
        }
        "CreateEventBus" => {
            let arn =
                events.create_bus(required(r, "Name")?, optional(r, "Description"), tags(r))?;
            Ok(json!({ "EventBusArn": arn }))
        }
        "DescribeEventBus" => {
            let b = events.bus(&events.bus_name(r.get("Name").and_then(Value::as_str)))?;
            Ok(json!({
                "Name": b.name,
                "Arn": b.arn,
                "Description": b.description,
                "CreationTime": epoch_seconds(b.created_ms),
                "LastModifiedTime": epoch_seconds(b.created_ms),
            }))
        }
        "DeleteEventBus" => {
            events.delete_bus(required(r, "Name")?)?;
            Ok(json!({}))
        }
        "ListEventBuses" => {
            let prefix = optional(r, "NamePrefix").unwrap_or_default();
            let buses: Vec<Value> = events
                .buses()
                .into_iter()
                .filter(|b| b.name.starts_with(&prefix))
                .map(|b| {
                    let mut o = Map::new();
                    o.insert("Name".into(), json!(b.name));
                    o.insert("Arn".into(), json!(b.arn));
                    if let Some(d) = b.description {
                        o.insert("Description".into(), json!(d));
                    }
                    o.insert("CreationTime".into(), epoch_seconds(b.created_ms));
                    o.insert("LastModifiedTime".into(), epoch_seconds(b.created_ms));
                    Value::Object(o)
                })
                .collect();
            let (buses, next) = page(r, buses)?;
            Ok(with_token(json!({ "EventBuses": buses }), next))
        }
        "TestEventPattern" => {
            let result =
                EventBridge::test_pattern(required(r, "EventPattern")?, required(r, "Event")?)?;
            Ok(json!({ "Result": result }))
        }
        "CreateArchive" => {
            let a = events.create_archive(
                required(r, "ArchiveName")?,
                required(r, "EventSourceArn")?,
                optional(r, "Description"),
                optional(r, "EventPattern"),
                retention(r)?.unwrap_or(0),
            )?;
            Ok(json!({
                "ArchiveArn": a.arn,
                "State": "ENABLED",
                "CreationTime": epoch_seconds(a.created_ms),
            }))
        }
        "DescribeArchive" => {
            let a = events.describe_archive(required(r, "ArchiveName")?)?;
            Ok(archive_json(&a, true))
        }
        "ListArchives" => {
            let prefix = optional(r, "NamePrefix").unwrap_or_default();
            let source = optional(r, "EventSourceArn");
            let list: Vec<Value> = events
                .list_archives()
                .iter()
                .filter(|a| a.name.starts_with(&prefix))
                .filter(|a| source.as_ref().is_none_or(|s| *s == a.source_arn))
                .map(|a| archive_json(a, false))
                .collect();
            let (list, next) = page(r, list)?;
            Ok(with_token(json!({ "Archives": list }), next))
        }
        "UpdateArchive" => {
            let a = events.update_archive(
                required(r, "ArchiveName")?,
                optional(r, "Description"),
                optional(r, "EventPattern"),
                retention(r)?,
            )?;
            Ok(json!({
                "ArchiveArn": a.arn,
                "State": "ENABLED",
                "CreationTime": epoch_seconds(a.created_ms),
            }))
        }
        "DeleteArchive" => {
            events.delete_archive(required(r, "ArchiveName")?)?;
            Ok(json!({}))
        }
        "StartReplay" => {
            let time = |k: &str| -> Result<i64, EventsError> {
                r.get(k)
                    .and_then(Value::as_f64)
                    .map(|s| (s * 1000.0) as i64)
                    .ok_or_else(|| {
                        EventsError::validation(format!(
                            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                            lower_first(k)
                        ))
                    })
            };
            let destination = r.get("Destination").cloned().unwrap_or(Value::Null);
            let filter: Vec<String> = destination
                .get("FilterArns")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|a| a.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let replay = events.start_replay(
                required(r, "ReplayName")?,
                required(r, "EventSourceArn")?,
                optional(r, "Description"),
                time("EventStartTime")?,
                time("EventEndTime")?,
                required(&destination, "Arn")?,
                filter,
            )?;
            Ok(json!({
                "ReplayArn": events.replay_arn(&replay.name),
                "State": replay.state,
                "ReplayStartTime": epoch_seconds(replay.replay_start_ms),
            }))
        }
        "DescribeReplay" => {
            let replay = events.describe_replay(required(r, "ReplayName")?)?;
            Ok(replay_json(events, &replay, true))
        }
        "ListReplays" => {
            let prefix = optional(r, "NamePrefix").unwrap_or_default();
            let state = optional(r, "State");
            let list: Vec<Value> = events
                .list_replays()
                .iter()
                .filter(|x| x.name.starts_with(&prefix))
                .filter(|x| state.as_ref().is_none_or(|s| *s == x.state))
                .map(|x| replay_json(events, x, false))
                .collect();
            let (list, next) = page(r, list)?;
            Ok(with_token(json!({ "Replays": list }), next))
        }
        "CancelReplay" => {
            let replay = events.cancel_replay(required(r, "ReplayName")?)?;
            Ok(json!({
                "ReplayArn": events.replay_arn(&replay.name),
                "State": replay.state,
            }))
        }
        other => Err(EventsError::new(
            "UnknownOperationException",
            format!("the devserver's EventBridge does not support {other}"),
        )),
    }
}

fn put_events(events: &EventBridge, r: &Value) -> Result<Value, EventsError> {
    let list = r
        .get("Entries")
        .and_then(Value::as_array)
        .ok_or_else(|| EventsError::validation(
            "1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null",
        ))?;
    if list.is_empty() || list.len() > MAX_ENTRIES {
        return Err(EventsError::validation(format!(
            "1 validation error detected: Value '{}' at 'entries' failed to satisfy constraint: Member must have length less than or equal to {MAX_ENTRIES}",
            list.len()
        )));
    }
    let size: usize = list.iter().map(entry_size).sum();
    if size > MAX_REQUEST_BYTES {
        return Err(EventsError::validation(format!(
            "Total size of the entries in the request is over the limit ({size} bytes; the limit is {MAX_REQUEST_BYTES})."
        )));
    }
    let entries: Vec<EventEntry> = list
        .iter()
        .map(|e| EventEntry {
            source: optional(e, "Source"),
            detail_type: optional(e, "DetailType"),
            detail: optional(e, "Detail"),
            resources: e
                .get("Resources")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            time_ms: e
                .get("Time")
                .and_then(Value::as_f64)
                .map(|s| (s * 1000.0) as i64),
            bus: optional(e, "EventBusName"),
            trace_header: optional(e, "TraceHeader"),
        })
        .collect();
    let results = events.put_events(entries);
    let failed = results
        .iter()
        .filter(|r| matches!(r, EntryResult::Failed { .. }))
        .count();
    let entries: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            EntryResult::Accepted(id) => json!({ "EventId": id }),
            EntryResult::Failed { code, message } => {
                json!({ "ErrorCode": code, "ErrorMessage": message })
            }
        })
        .collect();
    Ok(json!({ "FailedEntryCount": failed, "Entries": entries }))
}

/// An entry's size as EventBridge counts it: its time (14 bytes), source,
/// detail type, detail and resources, in UTF-8 bytes.
/// <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html>
fn entry_size(e: &Value) -> usize {
    let s = |k: &str| e.get(k).and_then(Value::as_str).map_or(0, str::len);
    let resources: usize = e.get("Resources").and_then(Value::as_array).map_or(0, |l| {
        l.iter().filter_map(Value::as_str).map(str::len).sum()
    });
    let time = if e.get("Time").is_some() { 14 } else { 0 };
    time + s("Source") + s("DetailType") + s("Detail") + resources
}

fn failed_entries(failed: &[(String, String, String)]) -> Value {
    let entries: Vec<Value> = failed
        .iter()
        .map(|(id, code, message)| json!({ "TargetId": id, "ErrorCode": code, "ErrorMessage": message }))
        .collect();
    json!({ "FailedEntryCount": failed.len(), "FailedEntries": entries })
}

fn rule_json(rule: &super::RuleInfo) -> Value {
    let mut o = Map::new();
    o.insert("Name".into(), json!(rule.name));
    o.insert("Arn".into(), json!(rule.arn));
    if let Some(p) = &rule.event_pattern {
        o.insert("EventPattern".into(), json!(p));
    }
    if let Some(s) = &rule.schedule_expression {
        o.insert("ScheduleExpression".into(), json!(s));
    }
    o.insert("State".into(), json!(rule.state));
    if let Some(d) = &rule.description {
        o.insert("Description".into(), json!(d));
    }
    if let Some(a) = &rule.role_arn {
        o.insert("RoleArn".into(), json!(a));
    }
    o.insert("EventBusName".into(), json!(rule.bus));
    Value::Object(o)
}

fn target_from(t: &Value) -> Result<TargetState, EventsError> {
    let id = required(t, "Id")?.to_owned();
    let arn = required(t, "Arn")?.to_owned();
    let input_transformer = match t.get("InputTransformer") {
        Some(tr) => Some(InputTransformer {
            input_paths: tr
                .get("InputPathsMap")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
            input_template: required(tr, "InputTemplate")?.to_owned(),
        }),
        None => None,
    };
    let retry = t.get("RetryPolicy");
    let retry_policy = RetryPolicy {
        maximum_retry_attempts: retry
            .and_then(|p| p.get("MaximumRetryAttempts"))
            .and_then(Value::as_u64)
            .map_or(
                crate::manifest::events::DEFAULT_MAXIMUM_RETRY_ATTEMPTS,
                |n| u32::try_from(n).unwrap_or(u32::MAX),
            ),
        maximum_event_age_in_seconds: retry
            .and_then(|p| p.get("MaximumEventAgeInSeconds"))
            .and_then(Value::as_u64)
            .map_or(crate::manifest::events::DEFAULT_MAXIMUM_EVENT_AGE, |n| {
                u32::try_from(n).unwrap_or(u32::MAX)
            }),
    };
    Ok(TargetState {
        id,
        arn,
        input: optional(t, "Input"),
        input_path: optional(t, "InputPath"),
        input_transformer,
        message_group_id: t
            .get("SqsParameters")
            .and_then(|p| p.get("MessageGroupId"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        retry_policy,
        dead_letter_arn: t
            .get("DeadLetterConfig")
            .and_then(|d| d.get("Arn"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        role_arn: optional(t, "RoleArn"),
    })
}

fn target_json(t: &TargetState) -> Value {
    let mut o = Map::new();
    o.insert("Id".into(), json!(t.id));
    o.insert("Arn".into(), json!(t.arn));
    if let Some(i) = &t.input {
        o.insert("Input".into(), json!(i));
    }
    if let Some(p) = &t.input_path {
        o.insert("InputPath".into(), json!(p));
    }
    if let Some(tr) = &t.input_transformer {
        let mut m = Map::new();
        if !tr.input_paths.is_empty() {
            m.insert("InputPathsMap".into(), json!(tr.input_paths));
        }
        m.insert("InputTemplate".into(), json!(tr.input_template));
        o.insert("InputTransformer".into(), Value::Object(m));
    }
    if let Some(g) = &t.message_group_id {
        o.insert("SqsParameters".into(), json!({ "MessageGroupId": g }));
    }
    o.insert(
        "RetryPolicy".into(),
        json!({
            "MaximumRetryAttempts": t.retry_policy.maximum_retry_attempts,
            "MaximumEventAgeInSeconds": t.retry_policy.maximum_event_age_in_seconds,
        }),
    );
    if let Some(d) = &t.dead_letter_arn {
        o.insert("DeadLetterConfig".into(), json!({ "Arn": d }));
    }
    if let Some(a) = &t.role_arn {
        o.insert("RoleArn".into(), json!(a));
    }
    Value::Object(o)
}

fn retention(r: &Value) -> Result<Option<u32>, EventsError> {
    match r.get("RetentionDays") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .map(Some)
            .ok_or_else(|| {
                EventsError::validation(
                    "1 validation error detected: Value at 'retentionDays' failed to satisfy constraint: Member must have value greater than or equal to 0",
                )
            }),
    }
}

fn archive_json(a: &super::archive::ArchiveInfo, full: bool) -> Value {
    let mut o = Map::new();
    o.insert("ArchiveName".into(), json!(a.name));
    if full {
        o.insert("ArchiveArn".into(), json!(a.arn));
        if let Some(d) = &a.description {
            o.insert("Description".into(), json!(d));
        }
        if let Some(p) = &a.event_pattern {
            o.insert("EventPattern".into(), json!(p));
        }
    }
    o.insert("EventSourceArn".into(), json!(a.source_arn));
    o.insert("State".into(), json!("ENABLED"));
    o.insert("RetentionDays".into(), json!(a.retention_days));
    o.insert("SizeBytes".into(), json!(a.size_bytes));
    o.insert("EventCount".into(), json!(a.event_count));
    o.insert("CreationTime".into(), epoch_seconds(a.created_ms));
    Value::Object(o)
}

fn replay_json(events: &EventBridge, x: &super::archive::Replay, full: bool) -> Value {
    let mut o = Map::new();
    o.insert("ReplayName".into(), json!(x.name));
    if full {
        o.insert("ReplayArn".into(), json!(events.replay_arn(&x.name)));
        if let Some(d) = &x.description {
            o.insert("Description".into(), json!(d));
        }
        let mut destination = Map::new();
        destination.insert("Arn".into(), json!(events.bus_arn(&x.bus)));
        if !x.filter_arns.is_empty() {
            destination.insert("FilterArns".into(), json!(x.filter_arns));
        }
        o.insert("Destination".into(), Value::Object(destination));
    }
    o.insert(
        "EventSourceArn".into(),
        json!(events.archive_arn(&x.archive)),
    );
    o.insert("State".into(), json!(x.state));
    if let Some(reason) = &x.state_reason {
        o.insert("StateReason".into(), json!(reason));
    }
    o.insert("EventStartTime".into(), epoch_seconds(x.start_ms));
    o.insert("EventEndTime".into(), epoch_seconds(x.end_ms));
    if let Some(t) = x.last_replayed_ms {
        o.insert("EventLastReplayedTime".into(), epoch_seconds(t));
    }
    o.insert("ReplayStartTime".into(), epoch_seconds(x.replay_start_ms));
    if let Some(t) = x.replay_end_ms {
        o.insert("ReplayEndTime".into(), epoch_seconds(t));
    }
    Value::Object(o)
}
