//! S3 event notifications
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventNotifications.html>):
//! each object change of a bucket is matched against the bucket's
//! configurations from dev.toml (event type, prefix, suffix) and handed to
//! the matching function (asynchronous invocation, so Lambda's retries and
//! destinations apply), queue or topic, as an `S3Event` built with
//! `aws_lambda_events` — one record per message, as S3 sends them
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, Weak};

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};

use super::{EventSink, ObjectEvent, S3};
use crate::lambda::{InvokeRequest, LambdaHost};
use crate::manifest::buckets::{Bucket, Notification, NotificationTarget};
use crate::sns::Sns;
use crate::sqs::{SendRequest, Sqs};

/// The subject S3 gives its SNS notifications.
pub const SNS_SUBJECT: &str = "Amazon S3 Notification";

/// Hands object events to the stack's functions, queues and topics.
pub struct Notifier {
    region: String,
    configurations: RwLock<BTreeMap<String, Vec<Notification>>>,
    lambda: Weak<LambdaHost>,
    sqs: Arc<Sqs>,
    sns: Arc<Sns>,
}

impl Notifier {
    pub fn new(
        region: &str,
        lambda: Weak<LambdaHost>,
        sqs: Arc<Sqs>,
        sns: Arc<Sns>,
    ) -> Arc<Notifier> {
        Arc::new(Notifier {
            region: region.to_owned(),
            configurations: RwLock::new(BTreeMap::new()),
            lambda,
            sqs,
            sns,
        })
    }

    /// The configurations now in force (dev.toml's buckets).
    pub fn configure(&self, buckets: &BTreeMap<String, Bucket>) {
        let map = buckets
            .iter()
            .map(|(name, b)| (name.clone(), b.notifications.clone()))
            .collect();
        *self
            .configurations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = map;
    }

    fn deliver(&self, n: &Notification, body: String) {
        let outcome = match &n.target {
            NotificationTarget::Function(f) => match self.lambda.upgrade() {
                Some(lambda) => lambda
                    .invoke_event(
                        f,
                        InvokeRequest {
                            payload: body.into(),
                            ..InvokeRequest::default()
                        },
                    )
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => Err("the stack is stopping".to_owned()),
            },
            NotificationTarget::Queue(q) => self
                .sqs
                .send(
                    q,
                    SendRequest {
                        body,
                        ..SendRequest::default()
                    },
                )
                .map(|_| ())
                .map_err(|e| e.message),
            NotificationTarget::Topic(t) => self
                .sns
                .publish(
                    t,
                    crate::sns::PublishRequest {
                        message: body,
                        subject: Some(SNS_SUBJECT.to_owned()),
                        structure_json: false,
                        attributes: BTreeMap::new(),
                        group_id: None,
                        dedup_id: None,
                    },
                )
                .map(|_| ())
                .map_err(|e| e.message),
        };
        if let Err(e) = outcome {
            tracing::warn!(target: "s3", configuration = %n.id, "notification not delivered: {e}");
        }
    }
}

impl EventSink for Notifier {
    fn object_event(&self, event: ObjectEvent) {
        let matching: Vec<Notification> = self
            .configurations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&event.bucket)
            .map(|list| {
                list.iter()
                    .filter(|n| n.matches(event.event_name, &event.key))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for n in matching {
            let body = event_json(&event, &self.region, &n.id);
            self.deliver(&n, body);
        }
    }
}

/// A key as S3 writes it in events: form-URL-encoded (a space is `+`),
/// `/` kept.
pub fn event_key(key: &str) -> String {
    key.split('/')
        .map(|segment| form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

/// The notification for one event, as JSON text.
pub fn event_json(event: &ObjectEvent, region: &str, configuration_id: &str) -> String {
    let created = event.event_name.starts_with("ObjectCreated");
    let mut record = S3EventRecord::default();
    record.event_version = Some("2.1".to_owned());
    record.event_source = Some("aws:s3".to_owned());
    record.aws_region = Some(region.to_owned());
    record.event_time = event.time;
    record.event_name = Some(event.event_name.to_owned());
    record.principal_id.principal_id = Some(format!("AWS:{}", event.principal));
    record.request_parameters.source_ip_address = Some(event.source_ip.clone());
    let request_id = event.sequencer.clone();
    record
        .response_elements
        .insert("x-amz-request-id".to_owned(), request_id);
    record.response_elements.insert(
        "x-amz-id-2".to_owned(),
        format!("woocom/{}", event.sequencer),
    );
    record.s3.schema_version = Some("1.0".to_owned());
    record.s3.configuration_id = Some(configuration_id.to_owned());
    record.s3.bucket.name = Some(event.bucket.clone());
    record.s3.bucket.arn = Some(S3::bucket_arn(&event.bucket));
    let mut owner = aws_lambda_events::event::s3::S3UserIdentity::default();
    owner.principal_id = Some(super::api::OWNER_ID[..14].to_uppercase());
    record.s3.bucket.owner_identity = Some(owner);
    record.s3.object.key = Some(event_key(&event.key));
    record.s3.object.sequencer = Some(event.sequencer.clone());
    if created {
        record.s3.object.size = Some(event.size as i64);
        record.s3.object.e_tag = Some(event.etag.clone());
    }
    let mut s3_event = S3Event::default();
    s3_event.records = vec![record];
    let mut value = serde_json::to_value(&s3_event).unwrap_or_default();
    // S3's records carry no `urlDecodedKey`, and a removal has no size or
    // ETag: drop what the type serializes as null.
    if let Some(object) = value
        .pointer_mut("/Records/0/s3/object")
        .and_then(|o| o.as_object_mut())
    {
        object.retain(|_, v| !v.is_null());
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &'static str, key: &str) -> ObjectEvent {
        ObjectEvent {
            bucket: "photos".into(),
            key: key.into(),
            event_name: name,
            size: 42,
            etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
            sequencer: "0055AED6DCD90281E5".into(),
            source_ip: "127.0.0.1".into(),
            principal: "AKIAEXAMPLE".into(),
            time: chrono::Utc::now(),
        }
    }

    #[test]
    fn keys_are_url_encoded_as_s3_encodes_them() {
        assert_eq!(event_key("red flower.jpg"), "red+flower.jpg");
        assert_eq!(event_key("a/b c/d(1)=2.png"), "a/b+c/d%281%29%3D2.png");
        assert_eq!(event_key("café.txt"), "caf%C3%A9.txt");
    }

    #[test]
    fn created_and_removed_records_parse_as_s3_events() {
        let text = event_json(
            &event("ObjectCreated:Put", "up loads/a.jpg"),
            "us-east-1",
            "cfg",
        );
        let parsed: S3Event = serde_json::from_str(&text).expect("S3Event");
        let r = &parsed.records[0];
        assert_eq!(r.event_name.as_deref(), Some("ObjectCreated:Put"));
        assert_eq!(r.s3.object.key.as_deref(), Some("up+loads/a.jpg"));
        assert_eq!(r.s3.object.size, Some(42));
        assert_eq!(r.s3.bucket.arn.as_deref(), Some("arn:aws:s3:::photos"));
        assert!(!text.contains("urlDecodedKey"));

        let text = event_json(&event("ObjectRemoved:Delete", "a.jpg"), "us-east-1", "cfg");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        let object = &value["Records"][0]["s3"]["object"];
        assert!(object.get("size").is_none() && object.get("eTag").is_none());
        assert_eq!(object["sequencer"], "0055AED6DCD90281E5");
        let _: S3Event = serde_json::from_str(&text).expect("S3Event");
    }

    #[test]
    fn golden_fixture_of_aws_lambda_events_round_trips() {
        // The crate's own sample event, parsed and re-parsed through the
        // type our records are built with.
        let sample = r#"{"Records":[{"eventVersion":"2.0","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"1970-01-01T00:00:00.123Z","eventName":"ObjectCreated:Put","userIdentity":{"principalId":"EXAMPLE"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},"responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},"s3":{"s3SchemaVersion":"1.0","configurationId":"testConfigRule","bucket":{"name":"sourcebucket","ownerIdentity":{"principalId":"EXAMPLE"},"arn":"arn:aws:s3:::mybucket"},"object":{"key":"HappyFace.jpg","size":1024,"urlDecodedKey":"HappyFace.jpg","versionId":"version","eTag":"d41d8cd98f00b204e9800998ecf8427e","sequencer":"Happy Sequencer"}}}]}"#;
        let parsed: S3Event = serde_json::from_str(sample).expect("parse");
        let again: S3Event =
            serde_json::from_str(&serde_json::to_string(&parsed).expect("serialize"))
                .expect("re-parse");
        assert_eq!(parsed, again);
    }
}
