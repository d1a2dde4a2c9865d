//! The DynamoDB stream event Lambda sends: `{"Records": [...]}`, each record
//! typed with `aws_lambda_events::event::dynamodb::EventRecord`, so every
//! event we send deserializes in the crate functions use.
//!
//! Field values follow AWS's recordings (`[ESM-DDB]`, LocalStack's
//! `test_lambda_integration_dynamodbstreams.snapshot.json`): `eventVersion`
//! "1.1", `eventSource` "aws:dynamodb", `awsRegion` the stack's region,
//! `eventSourceARN` the stream ARN, `ApproximateCreationDateTime` in whole
//! seconds; an INSERT has no `OldImage`, a REMOVE no `NewImage`, and only a
//! TTL deletion carries `userIdentity`.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use serde_json::Value;

/// One engine record as Lambda delivers it.
pub fn event_record(
    engine_record: &dynoxide::actions::get_records::Record,
    region: &str,
    stream_arn: &str,
) -> Result<Value, String> {
    let mut value = serde_json::to_value(engine_record).map_err(|e| e.to_string())?;
    if let Some(object) = value.as_object_mut() {
        // The engine reports its own region name ("dynoxide").
        object.insert("awsRegion".into(), Value::String(region.to_owned()));
        object.insert(
            "eventSourceARN".into(),
            Value::String(stream_arn.to_owned()),
        );
    }
    let typed: EventRecord = serde_json::from_value(value)
        .map_err(|e| format!("the engine's stream record does not fit Lambda's shape: {e}"))?;
    let mut value = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    tidy(&mut value);
    Ok(value)
}

/// What the typed record serializes that AWS leaves out: empty images for
/// the side a change does not have, and `null` optional fields.
fn tidy(record: &mut Value) {
    let Some(object) = record.as_object_mut() else {
        return;
    };
    object.retain(|_, v| !v.is_null());
    if let Some(Value::Object(change)) = object.get_mut("dynamodb") {
        change.retain(|k, v| {
            let empty_image =
                (k == "NewImage" || k == "OldImage") && v.as_object().is_some_and(|m| m.is_empty());
            !(empty_image || v.is_null())
        });
    }
}

/// The invocation payload for a batch of event records.
pub fn payload<V: std::borrow::Borrow<Value>>(records: &[V]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + records.iter().map(|_| 512).sum::<usize>());
    out.extend_from_slice(b"{\"Records\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing a Value to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, r.borrow());
    }
    out.extend_from_slice(b"]}");
    out
}

/// Parses a payload back into the crate's type (tests and checks).
pub fn parse_event(payload: &[u8]) -> Result<Event, serde_json::Error> {
    serde_json::from_slice(payload)
}

/// The record's sequence number.
pub fn sequence_number(record: &Value) -> &str {
    record
        .pointer("/dynamodb/SequenceNumber")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynoxide::actions::get_records::{Record, StreamRecord, UserIdentity};

    fn engine_record(name: &str, new: bool, old: bool) -> Record {
        let item: dynoxide::types::Item =
            serde_json::from_value(serde_json::json!({"pk": {"S": "a"}, "n": {"N": "1"}}))
                .expect("item");
        Record {
            event_id: "1".into(),
            event_name: name.into(),
            event_version: "1.1".into(),
            event_source: "aws:dynamodb".into(),
            aws_region: "dynoxide".into(),
            dynamodb: StreamRecord {
                keys: serde_json::from_value(serde_json::json!({"pk": {"S": "a"}})).expect("keys"),
                new_image: new.then(|| item.clone()),
                old_image: old.then(|| item.clone()),
                sequence_number: "100000000000000000042".into(),
                size_bytes: 20,
                stream_view_type: "NEW_AND_OLD_IMAGES".into(),
                approximate_creation_date_time: 1_700_000_000.0,
            },
            user_identity: (name == "REMOVE").then(|| UserIdentity {
                identity_type: "Service".into(),
                principal_id: "dynamodb.amazonaws.com".into(),
            }),
        }
    }

    #[test]
    fn insert_has_no_old_image_and_no_nulls() {
        let r = event_record(&engine_record("INSERT", true, false), "eu-west-1", "arn:x")
            .expect("record");
        assert_eq!(r["awsRegion"], "eu-west-1");
        assert_eq!(r["eventSourceARN"], "arn:x");
        assert_eq!(r["eventSource"], "aws:dynamodb");
        assert!(r["dynamodb"].get("OldImage").is_none());
        assert_eq!(r["dynamodb"]["NewImage"]["n"]["N"], "1");
        assert_eq!(r["dynamodb"]["ApproximateCreationDateTime"], 1_700_000_000);
        assert!(r.get("userIdentity").is_none());
        assert!(r.get("tableName").is_none());
    }

    #[test]
    fn ttl_remove_keeps_its_user_identity_and_round_trips() {
        let r = event_record(&engine_record("REMOVE", false, true), "us-east-1", "arn:x")
            .expect("record");
        assert!(r["dynamodb"].get("NewImage").is_none());
        assert_eq!(r["userIdentity"]["type"], "Service");
        assert_eq!(r["userIdentity"]["principalId"], "dynamodb.amazonaws.com");
        let event = parse_event(&payload(&[r])).expect("aws_lambda_events parses it");
        assert_eq!(event.records.len(), 1);
        assert_eq!(
            event.records[0].change.sequence_number.as_deref(),
            Some("100000000000000000042")
        );
    }
}
