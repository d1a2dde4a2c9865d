//! An SQS queue as an event source: batches are received with the queue's
//! visibility timeout, delivered as Lambda's `SQSEvent`, deleted once
//! processed; what fails returns to the queue when its visibility timeout
//! ends, and the queue's redrive policy moves it to a dead-letter queue.
//! FIFO queues keep each message group in order (a group in flight gives
//! nothing until it is done).
//! <https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html>

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::source::{EventSource, SourceError, SourceRecord, SourceStatus};
use crate::sqs::{ReceiveRequest, Sqs, api, message::Message};

/// SQS gives at most ten messages per receive.
const RECEIVE_MAX: usize = 10;

pub struct SqsQueue {
    sqs: Arc<Sqs>,
    queue: String,
    region: String,
}

impl SqsQueue {
    pub fn new(sqs: Arc<Sqs>, queue: &str, region: &str) -> SqsQueue {
        SqsQueue {
            sqs,
            queue: queue.to_owned(),
            region: region.to_owned(),
        }
    }

    /// One message as Lambda's `SQSEvent` record carries it.
    fn record(&self, m: &Message) -> SourceRecord {
        let mut attributes = Map::new();
        for (k, v) in api::system_attributes(m) {
            attributes.insert(k, Value::String(v));
        }
        let message_attributes: Map<String, Value> = m
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.to_event()))
            .collect();
        let mut value = json!({
            "messageId": m.id,
            "receiptHandle": m.receipt,
            "body": m.body,
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": m.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.sqs.queue_arn(&self.queue),
            "awsRegion": self.region,
        });
        if let Some(md5) = m.md5_of_attributes() {
            value["md5OfMessageAttributes"] = Value::String(md5);
        }
        let arrival = SystemTime::UNIX_EPOCH + Duration::from_millis(m.sent_ms.max(0) as u64);
        SourceRecord {
            id: m.id.clone(),
            position: m.seq as i64,
            value,
            arrival,
        }
    }
}

impl EventSource for SqsQueue {
    fn changes(&self) -> watch::Receiver<u64> {
        self.sqs.subscribe_changes()
    }

    fn open(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        let exists = self.sqs.exists(&self.queue);
        let queue = self.queue.clone();
        Box::pin(async move {
            if exists {
                Ok(())
            } else {
                Err(SourceError::Missing(format!(
                    "queue `{queue}` does not exist"
                )))
            }
        })
    }

    fn ordered(&self) -> bool {
        false
    }

    fn read(
        &self,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<Vec<SourceRecord>, SourceError>> {
        Box::pin(async move {
            let mut out: Vec<SourceRecord> = Vec::new();
            let mut bytes = 0;
            while out.len() < limit {
                let want = (limit - out.len()).min(RECEIVE_MAX);
                let got = self
                    .sqs
                    .receive(
                        &self.queue,
                        ReceiveRequest {
                            max: want,
                            visibility_timeout: None,
                            wait: Some(Duration::ZERO),
                        },
                    )
                    .await
                    .map_err(|e| SourceError::Read(e.message))?;
                if got.is_empty() {
                    break;
                }
                let n = got.len();
                for m in &got {
                    bytes += m.body.len() + 512;
                    out.push(self.record(m));
                }
                if n < want || bytes >= max_bytes {
                    break;
                }
            }
            Ok(out)
        })
    }

    fn commit<'a>(&'a self, records: &'a [SourceRecord]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for r in records {
                if let Some(receipt) = r.value["receiptHandle"].as_str()
                    && let Err(e) = self.sqs.delete_message(&self.queue, receipt)
                {
                    tracing::warn!(queue = %self.queue, message_id = %r.id, "cannot delete a processed message: {e}");
                }
            }
        })
    }

    fn filter_view<'a>(&self, record: &'a SourceRecord) -> Cow<'a, Value> {
        // Lambda matches `body` patterns against the parsed body when it is
        // JSON, else against the string.
        // <https://docs.aws.amazon.com/lambda/latest/dg/with-sqs-filtering.html>
        let Some(parsed) = record.value["body"]
            .as_str()
            .and_then(|b| serde_json::from_str::<Value>(b).ok())
            .filter(Value::is_object)
        else {
            return Cow::Borrowed(&record.value);
        };
        let mut view = record.value.clone();
        view["body"] = parsed;
        Cow::Owned(view)
    }

    fn payload(&self, records: &[SourceRecord]) -> Vec<u8> {
        let values: Vec<&Value> = records.iter().map(|r| &r.value).collect();
        super::event::payload(&values)
    }

    fn batch_info(
        &self,
        first: &SourceRecord,
        last: &SourceRecord,
        count: usize,
    ) -> (&'static str, Value) {
        (
            "SQSBatchInfo",
            json!({
                "queueArn": self.sqs.queue_arn(&self.queue),
                "firstMessageId": first.id,
                "lastMessageId": last.id,
                "batchSize": count,
            }),
        )
    }

    fn record_of(&self, value: Value) -> SourceRecord {
        SourceRecord {
            id: value["messageId"].as_str().unwrap_or_default().to_owned(),
            position: 0,
            value,
            arrival: SystemTime::now(),
        }
    }

    fn status(&self) -> BoxFuture<'_, SourceStatus> {
        let status = self.sqs.status().into_iter().find(|s| s.name == self.queue);
        let arn = self.sqs.queue_arn(&self.queue);
        Box::pin(async move {
            SourceStatus {
                arn: Some(arn),
                checkpoint: None,
                latest: None,
                lag: status.map_or(0, |s| s.visible + s.in_flight + s.delayed),
                oldest_arrival: None,
            }
        })
    }

    fn parse_position(&self, _text: &str) -> Option<i64> {
        None
    }

    fn read_between(
        &self,
        _after: i64,
        _up_to: i64,
        _limit: usize,
        _max_bytes: usize,
    ) -> BoxFuture<'_, Result<Vec<SourceRecord>, SourceError>> {
        Box::pin(std::future::ready(Err(SourceError::BadRequest(
            "replay reads streams: a queue's messages are gone once processed (`woocom-dev queues peek` shows what waits)".to_owned(),
        ))))
    }
}
