//! The stream consumer (function `notify`): DynamoDB stream records of the
//! products and orders tables become WebSocket pushes through
//! `@connections` (see functions/README.md, "Live updates").
//!
//! - products, `MODIFY` with a different `stock` → `{"type": "stock"}` to
//!   topic `catalogue`;
//! - orders, `INSERT`, or `MODIFY` with a different `status` →
//!   `{"type": "order"}` to topic `order:<id>`;
//! - anything else is not news to a browser and is skipped.
//!
//! Records are handled in stream order. When one cannot be delivered the
//! batch stops there and reports that record's sequence number in
//! `batchItemFailures`: Lambda retries from the lowest sequence number
//! reported, so the records after it come again and stop there too, and
//! pushes keep the order of the changes.
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html>
//!
//! A record whose images cannot be read (no `stock`, no `status`) is logged
//! and skipped: a retry would read the same bytes.

pub mod push;

use std::future::Future;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use woocom_domain::live::{LiveMessage, Topic};
use woocom_domain::{ApiError, aws};

pub use push::Pusher;

/// Stream event names.
pub mod event_name {
    pub const INSERT: &str = "INSERT";
    pub const MODIFY: &str = "MODIFY";
    pub const REMOVE: &str = "REMOVE";
}

/// The tables whose streams this function reads, by their names in this
/// stack (Terraform prefixes them in AWS, so they come from the
/// environment).
#[derive(Debug, Clone, PartialEq)]
pub struct Tables {
    pub products: String,
    pub orders: String,
}

impl Tables {
    pub fn from_env() -> Result<Tables, ApiError> {
        Ok(Tables {
            products: aws::env("PRODUCTS_TABLE")?,
            orders: aws::env("ORDERS_TABLE")?,
        })
    }
}

/// Why a record was not delivered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// Not a stream of a table this function knows: a wiring mistake.
    #[error("record from {0}, not the stream of the products or orders table")]
    UnknownSource(String),
    /// The images do not hold what the table's items always hold.
    #[error("malformed {table} record: {reason}")]
    Malformed { table: String, reason: String },
    /// Some subscribers could not be reached (other than gone ones).
    #[error("delivery failed: {0}")]
    Delivery(String),
}

/// The table a stream ARN belongs to:
/// `arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>`.
pub fn table_of_stream(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":table/")?;
    let (table, _) = rest.split_once("/stream/")?;
    Some(table).filter(|t| !t.is_empty())
}

#[derive(Debug, Deserialize)]
struct ProductImage {
    id: String,
    stock: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderImage {
    id: String,
    status: Option<String>,
    updated_at: Option<String>,
}

/// What a record means for the browsers: a message for a topic, or
/// nothing.
pub fn push_for(
    record: &EventRecord,
    tables: &Tables,
) -> Result<Option<(Topic, LiveMessage)>, RecordError> {
    let arn = record.event_source_arn.as_deref().unwrap_or_default();
    let table = table_of_stream(arn).ok_or_else(|| RecordError::UnknownSource(arn.to_owned()))?;
    let malformed = |reason: String| RecordError::Malformed {
        table: table.to_owned(),
        reason,
    };
    let image = |item: &serde_dynamo::Item, side: &str| {
        if item.is_empty() {
            return Err(malformed(format!("no {side} image")));
        }
        Ok(item.clone())
    };
    if table == tables.products {
        if record.event_name != event_name::MODIFY {
            return Ok(None);
        }
        let new: ProductImage = serde_dynamo::from_item(image(&record.change.new_image, "new")?)
            .map_err(|e| malformed(format!("new image: {e}")))?;
        let old: ProductImage = serde_dynamo::from_item(image(&record.change.old_image, "old")?)
            .map_err(|e| malformed(format!("old image: {e}")))?;
        let Some(stock) = new.stock else {
            return Err(malformed(format!("product {} has no stock", new.id)));
        };
        if old.stock == Some(stock) {
            return Ok(None);
        }
        Ok(Some((
            Topic::Catalogue,
            LiveMessage::Stock {
                product_id: new.id,
                stock,
            },
        )))
    } else if table == tables.orders {
        let old_status = match record.event_name.as_str() {
            event_name::INSERT => None,
            event_name::MODIFY => {
                let old: OrderImage =
                    serde_dynamo::from_item(image(&record.change.old_image, "old")?)
                        .map_err(|e| malformed(format!("old image: {e}")))?;
                old.status
            }
            _ => return Ok(None),
        };
        let new: OrderImage = serde_dynamo::from_item(image(&record.change.new_image, "new")?)
            .map_err(|e| malformed(format!("new image: {e}")))?;
        let (Some(status), Some(updated_at)) = (new.status, new.updated_at) else {
            return Err(malformed(format!(
                "order {} lacks status or updatedAt",
                new.id
            )));
        };
        if old_status.as_deref() == Some(status.as_str()) {
            return Ok(None);
        }
        // Order ids are slugs (they are in URLs); anything else cannot be a
        // topic anyone subscribed to.
        let topic: Topic = format!("order:{}", new.id)
            .parse()
            .map_err(|e| malformed(format!("{e}")))?;
        Ok(Some((
            topic,
            LiveMessage::Order {
                order_id: new.id,
                status,
                updated_at,
            },
        )))
    } else {
        Err(RecordError::UnknownSource(arn.to_owned()))
    }
}

/// Sends a message to every connection following a topic.
pub trait Deliver {
    fn deliver(
        &self,
        topic: &Topic,
        message: &LiveMessage,
    ) -> impl Future<Output = Result<(), RecordError>>;
}

/// Handles a batch in stream order and reports the first record that
/// could not be delivered (see the module documentation).
pub async fn process(
    deliver: &impl Deliver,
    tables: &Tables,
    event: &Event,
) -> Result<DynamoDbEventResponse, Error> {
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        let outcome = match push_for(record, tables) {
            Ok(Some((topic, message))) => deliver.deliver(&topic, &message).await,
            Ok(None) => Ok(()),
            Err(RecordError::Malformed { table, reason }) => {
                tracing::error!(
                    event_id = %record.event_id,
                    "skipping a malformed {table} record: {reason}"
                );
                Ok(())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            // Lambda retries from this record; without its sequence number
            // only failing the whole batch makes it come again.
            let Some(sequence) = record
                .change
                .sequence_number
                .clone()
                .filter(|s| !s.is_empty())
            else {
                return Err(format!(
                    "record {} failed and has no sequence number: {e}",
                    record.event_id
                )
                .into());
            };
            tracing::warn!(sequence_number = %sequence, "record not delivered: {e}");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            response.batch_item_failures.push(failure);
            break;
        }
    }
    Ok(response)
}

pub struct Handler {
    pub pusher: Pusher,
    pub tables: Tables,
}

impl Handler {
    pub async fn from_env() -> Result<Handler, ApiError> {
        Ok(Handler {
            pusher: Pusher::from_env().await?,
            tables: Tables::from_env()?,
        })
    }
}

pub async fn handle(
    handler: &Handler,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, Error> {
    process(&handler.pusher, &handler.tables, &event.payload).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::sync::Mutex;

    const PRODUCTS_ARN: &str =
        "arn:aws:dynamodb:us-east-1:000000000000:table/products/stream/2026-01-01T00:00:00.000";
    const ORDERS_ARN: &str =
        "arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/2026-01-01T00:00:00.000";

    fn tables() -> Tables {
        Tables {
            products: "products".into(),
            orders: "orders".into(),
        }
    }

    fn record(arn: &str, name: &str, sequence: &str, old: Value, new: Value) -> Value {
        let mut change = json!({
            "ApproximateCreationDateTime": 1_800_000_000,
            "Keys": { "id": new.get("id").or(old.get("id")).cloned().unwrap_or(Value::Null) },
            "SequenceNumber": sequence,
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        });
        if !old.is_null() {
            change["OldImage"] = old;
        }
        if !new.is_null() {
            change["NewImage"] = new;
        }
        json!({
            "eventID": format!("e-{sequence}"),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": arn,
            "dynamodb": change
        })
    }

    fn product(id: &str, stock: i64, price: i64) -> Value {
        json!({
            "id": {"S": id}, "name": {"S": "Mug"}, "description": {"S": ""},
            "price": {"N": price.to_string()}, "currency": {"S": "EUR"},
            "stock": {"N": stock.to_string()}
        })
    }

    fn order(id: &str, status: &str, updated_at: &str) -> Value {
        json!({
            "id": {"S": id}, "basketId": {"S": "b-1"}, "customerRef": {"S": "c"},
            "status": {"S": status}, "createdAt": {"S": "2026-01-01T00:00:00Z"},
            "updatedAt": {"S": updated_at}, "total": {"N": "100"}
        })
    }

    fn one(record: Value) -> EventRecord {
        serde_json::from_value(record).expect("an aws_lambda_events record")
    }

    fn event(records: Vec<Value>) -> Event {
        serde_json::from_value(json!({ "Records": records })).expect("an event")
    }

    #[test]
    fn the_table_comes_from_the_stream_arn() {
        assert_eq!(table_of_stream(PRODUCTS_ARN), Some("products"));
        assert_eq!(
            table_of_stream(
                "arn:aws:dynamodb:eu-west-1:1:table/woocom-prod-orders/stream/2026-01-01T00:00:00.000"
            ),
            Some("woocom-prod-orders")
        );
        assert_eq!(table_of_stream("arn:aws:sqs:us-east-1:1:queue"), None);
        assert_eq!(table_of_stream(""), None);
    }

    #[test]
    fn a_stock_change_is_pushed_to_the_catalogue() {
        let r = one(record(
            PRODUCTS_ARN,
            "MODIFY",
            "100",
            product("mug", 4, 1200),
            product("mug", 3, 1200),
        ));
        assert_eq!(
            push_for(&r, &tables()),
            Ok(Some((
                Topic::Catalogue,
                LiveMessage::Stock {
                    product_id: "mug".into(),
                    stock: 3
                }
            )))
        );
    }

    #[test]
    fn product_changes_other_than_stock_push_nothing() {
        let price_only = one(record(
            PRODUCTS_ARN,
            "MODIFY",
            "100",
            product("mug", 4, 1200),
            product("mug", 4, 1500),
        ));
        assert_eq!(push_for(&price_only, &tables()), Ok(None));
        let insert = one(record(
            PRODUCTS_ARN,
            "INSERT",
            "101",
            Value::Null,
            product("mug", 4, 1200),
        ));
        assert_eq!(push_for(&insert, &tables()), Ok(None));
        let remove = one(record(
            PRODUCTS_ARN,
            "REMOVE",
            "102",
            product("mug", 4, 1200),
            Value::Null,
        ));
        assert_eq!(push_for(&remove, &tables()), Ok(None));
    }

    #[test]
    fn a_new_order_and_a_status_change_are_pushed_to_the_order_topic() {
        let placed = one(record(
            ORDERS_ARN,
            "INSERT",
            "200",
            Value::Null,
            order("o-1", "PLACED", "2026-01-01T00:00:00Z"),
        ));
        assert_eq!(
            push_for(&placed, &tables()),
            Ok(Some((
                Topic::order("o-1"),
                LiveMessage::Order {
                    order_id: "o-1".into(),
                    status: "PLACED".into(),
                    updated_at: "2026-01-01T00:00:00Z".into()
                }
            )))
        );
        let paid = one(record(
            ORDERS_ARN,
            "MODIFY",
            "201",
            order("o-1", "PLACED", "2026-01-01T00:00:00Z"),
            order("o-1", "PAID", "2026-01-01T00:05:00Z"),
        ));
        assert_eq!(
            push_for(&paid, &tables()),
            Ok(Some((
                Topic::order("o-1"),
                LiveMessage::Order {
                    order_id: "o-1".into(),
                    status: "PAID".into(),
                    updated_at: "2026-01-01T00:05:00Z".into()
                }
            )))
        );
    }

    #[test]
    fn order_changes_other_than_status_push_nothing() {
        let touched = one(record(
            ORDERS_ARN,
            "MODIFY",
            "202",
            order("o-1", "PAID", "2026-01-01T00:00:00Z"),
            order("o-1", "PAID", "2026-01-01T00:09:00Z"),
        ));
        assert_eq!(push_for(&touched, &tables()), Ok(None));
        let removed = one(record(
            ORDERS_ARN,
            "REMOVE",
            "203",
            order("o-1", "PAID", "2026-01-01T00:00:00Z"),
            Value::Null,
        ));
        assert_eq!(push_for(&removed, &tables()), Ok(None));
    }

    #[test]
    fn records_of_other_tables_and_malformed_images_are_errors() {
        let other = one(record(
            "arn:aws:dynamodb:us-east-1:0:table/baskets/stream/x",
            "MODIFY",
            "300",
            product("mug", 1, 1),
            product("mug", 2, 1),
        ));
        assert!(matches!(
            push_for(&other, &tables()),
            Err(RecordError::UnknownSource(_))
        ));
        let no_stock = one(record(
            PRODUCTS_ARN,
            "MODIFY",
            "301",
            product("mug", 1, 1),
            json!({"id": {"S": "mug"}}),
        ));
        assert!(matches!(
            push_for(&no_stock, &tables()),
            Err(RecordError::Malformed { .. })
        ));
        let bad_id = one(record(
            ORDERS_ARN,
            "INSERT",
            "302",
            Value::Null,
            order("o/1", "PLACED", "2026-01-01T00:00:00Z"),
        ));
        assert!(matches!(
            push_for(&bad_id, &tables()),
            Err(RecordError::Malformed { .. })
        ));
    }

    /// Records what it delivers; fails for the listed product ids.
    #[derive(Default)]
    struct FakeDeliver {
        fail_for: Vec<String>,
        delivered: Mutex<Vec<(Topic, LiveMessage)>>,
    }

    impl Deliver for FakeDeliver {
        async fn deliver(&self, topic: &Topic, message: &LiveMessage) -> Result<(), RecordError> {
            if let LiveMessage::Stock { product_id, .. } = message
                && self.fail_for.contains(product_id)
            {
                return Err(RecordError::Delivery("503 from @connections".into()));
            }
            self.delivered
                .lock()
                .expect("lock")
                .push((topic.clone(), message.clone()));
            Ok(())
        }
    }

    fn stock_change(sequence: &str, id: &str, stock: i64) -> Value {
        record(
            PRODUCTS_ARN,
            "MODIFY",
            sequence,
            product(id, stock + 1, 1),
            product(id, stock, 1),
        )
    }

    fn delivered_ids(fake: &FakeDeliver) -> Vec<String> {
        fake.delivered
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|(_, m)| match m {
                LiveMessage::Stock { product_id, .. } => Some(product_id.clone()),
                LiveMessage::Order { order_id, .. } => Some(order_id.clone()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_batch_that_delivers_everything_reports_no_failures() {
        let fake = FakeDeliver::default();
        let batch = event(vec![
            stock_change("1", "mug", 3),
            record(
                ORDERS_ARN,
                "INSERT",
                "2",
                Value::Null,
                order("o-1", "PLACED", "2026-01-01T00:00:00Z"),
            ),
            stock_change("3", "cup", 0),
        ]);
        let response = process(&fake, &tables(), &batch).await.expect("response");
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(delivered_ids(&fake), ["mug", "o-1", "cup"]);
        assert_eq!(
            serde_json::to_value(&response).expect("json"),
            json!({"batchItemFailures": []})
        );
    }

    #[tokio::test]
    async fn the_first_undelivered_record_is_reported_and_the_batch_stops_there() {
        let fake = FakeDeliver {
            fail_for: vec!["cup".into()],
            ..FakeDeliver::default()
        };
        let batch = event(vec![
            stock_change("10", "mug", 3),
            stock_change("11", "cup", 2),
            stock_change("12", "pot", 1),
        ]);
        let response = process(&fake, &tables(), &batch).await.expect("response");
        assert_eq!(
            serde_json::to_value(&response).expect("json"),
            json!({"batchItemFailures": [{"itemIdentifier": "11"}]})
        );
        // Lambda sends 11 and 12 again: 12 is not pushed ahead of 11.
        assert_eq!(delivered_ids(&fake), ["mug"]);
    }

    #[tokio::test]
    async fn malformed_records_are_skipped_and_unknown_sources_reported() {
        let fake = FakeDeliver::default();
        let batch = event(vec![
            record(
                PRODUCTS_ARN,
                "MODIFY",
                "20",
                product("mug", 1, 1),
                json!({"id": {"S": "mug"}}),
            ),
            stock_change("21", "cup", 2),
            record(
                "arn:aws:dynamodb:us-east-1:0:table/baskets/stream/x",
                "MODIFY",
                "22",
                product("b", 1, 1),
                product("b", 2, 1),
            ),
            stock_change("23", "pot", 2),
        ]);
        let response = process(&fake, &tables(), &batch).await.expect("response");
        assert_eq!(
            serde_json::to_value(&response).expect("json"),
            json!({"batchItemFailures": [{"itemIdentifier": "22"}]})
        );
        assert_eq!(delivered_ids(&fake), ["cup"]);
    }

    #[tokio::test]
    async fn a_failed_record_without_a_sequence_number_fails_the_batch() {
        let fake = FakeDeliver {
            fail_for: vec!["mug".into()],
            ..FakeDeliver::default()
        };
        let mut r = stock_change("30", "mug", 1);
        r["dynamodb"]
            .as_object_mut()
            .expect("object")
            .remove("SequenceNumber");
        assert!(process(&fake, &tables(), &event(vec![r])).await.is_err());
    }

    /// Golden events (`fixtures/example-dynamodb-*.json`, shaped as Lambda
    /// delivers DynamoDB stream records): each parses, serializes and parses
    /// back to the same event, and yields the pushes it stands for.
    #[test]
    fn golden_events_round_trip_and_yield_their_pushes() {
        let order_id = "o-5f1c2a9e0b7d4e3f8a6b1c2d3e4f5a6b";
        let order_push = |status: &str, updated_at: &str| {
            Some((
                Topic::order(order_id),
                LiveMessage::Order {
                    order_id: order_id.into(),
                    status: status.into(),
                    updated_at: updated_at.into(),
                },
            ))
        };
        let cases = [
            (
                include_str!("../fixtures/example-dynamodb-products-modify.json"),
                vec![Some((
                    Topic::Catalogue,
                    LiveMessage::Stock {
                        product_id: "teapot".into(),
                        stock: 3,
                    },
                ))],
            ),
            (
                include_str!("../fixtures/example-dynamodb-orders-lifecycle.json"),
                vec![
                    order_push("PLACED", "2026-11-23T15:00:00Z"),
                    order_push("PAID", "2026-11-23T15:05:00Z"),
                    None,
                ],
            ),
        ];
        for (raw, expected) in cases {
            let parsed: Event = serde_json::from_str(raw).expect("a DynamoDB event");
            let again: Event =
                serde_json::from_value(serde_json::to_value(&parsed).expect("serializes"))
                    .expect("parses back");
            assert_eq!(again, parsed);
            let pushes: Vec<_> = parsed
                .records
                .iter()
                .map(|r| push_for(r, &tables()).expect("a readable record"))
                .collect();
            assert_eq!(pushes, expected);
        }
    }
}
