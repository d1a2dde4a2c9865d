//! Live updates: the topics a browser subscribes to over the WebSocket API,
//! the messages pushed to it, and the connections table that maps one to
//! the other.
//!
//! Table `CONNECTIONS_TABLE`: partition key `topic` (S), sort key
//! `connectionId` (S), one item per (topic, connection). Global index
//! `by_connection` (partition key `connectionId`, keys only) finds a
//! connection's items for `$disconnect`; TTL attribute `expiresAt` (epoch
//! seconds) removes the items of connections whose `$disconnect` never ran.
//!
//! Invariant: a connection's items all carry the same `expiresAt`, the end of
//! the connection's longest possible life (API Gateway closes every
//! connection two hours after it opened).
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html>

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::product::valid_id;

/// How long API Gateway keeps a WebSocket connection open at most.
pub const CONNECTION_LIFETIME_SECS: i64 = 2 * 60 * 60;
/// Topics one connection may follow at once.
pub const MAX_TOPICS: usize = 20;
/// The global index from a connection to its items.
pub const BY_CONNECTION_INDEX: &str = "by_connection";
/// Connection ids read per page of a topic's subscribers.
pub const PAGE_SIZE: i32 = 500;
/// BatchWriteItem takes at most 25 requests.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html>
const BATCH_WRITE_MAX: usize = 25;
/// Rounds of resending a batch's `UnprocessedItems` before giving up.
const UNPROCESSED_ROUNDS: u32 = 6;

const CATALOGUE: &str = "catalogue";
const ORDER_PREFIX: &str = "order:";

/// What a connection can follow: every stock change, or one order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Topic {
    /// `catalogue`: every product's stock changes.
    Catalogue,
    /// `order:<orderId>`: that order's status changes.
    Order(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("a topic is empty")]
    Empty,
    #[error("`{0}` is not an order id (letters, digits, - and _, at most 64)")]
    BadOrderId(String),
    #[error("`{0}` is not a topic: use `catalogue` or `order:<orderId>`")]
    Unknown(String),
    #[error("at most {MAX_TOPICS} topics")]
    TooMany,
}

impl Topic {
    pub fn order(order_id: &str) -> Topic {
        Topic::Order(order_id.to_owned())
    }

    /// Validates a list of topics, keeping the first of any duplicates and
    /// the order given.
    pub fn parse_list<'a>(
        topics: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<Topic>, TopicError> {
        let mut out: Vec<Topic> = Vec::new();
        for raw in topics {
            let topic = raw.parse()?;
            if !out.contains(&topic) {
                out.push(topic);
            }
            if out.len() > MAX_TOPICS {
                return Err(TopicError::TooMany);
            }
        }
        Ok(out)
    }

    /// A comma-separated list, as the `topics` query string parameter
    /// carries it.
    pub fn parse_comma_list(list: &str) -> Result<Vec<Topic>, TopicError> {
        Topic::parse_list(list.split(',').map(str::trim))
    }
}

impl FromStr for Topic {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Topic, TopicError> {
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        if s == CATALOGUE {
            return Ok(Topic::Catalogue);
        }
        match s.strip_prefix(ORDER_PREFIX) {
            Some(id) if valid_id(id) => Ok(Topic::Order(id.to_owned())),
            Some(_) => Err(TopicError::BadOrderId(s.to_owned())),
            None => Err(TopicError::Unknown(s.to_owned())),
        }
    }
}

impl TryFrom<String> for Topic {
    type Error = TopicError;

    fn try_from(s: String) -> Result<Topic, TopicError> {
        s.parse()
    }
}

impl From<Topic> for String {
    fn from(t: Topic) -> String {
        t.to_string()
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Catalogue => f.write_str(CATALOGUE),
            Topic::Order(id) => write!(f, "{ORDER_PREFIX}{id}"),
        }
    }
}

impl From<TopicError> for ApiError {
    fn from(e: TopicError) -> ApiError {
        ApiError::validation(BTreeMap::from([("topics".to_owned(), e.to_string())]))
    }
}

/// Every message the WebSocket API sends to a browser, told apart by
/// `type` (see functions/README.md, "Live updates").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum LiveMessage {
    /// A product's stock changed (topic `catalogue`).
    Stock { product_id: String, stock: i64 },
    /// An order's status changed (topic `order:<orderId>`).
    Order {
        order_id: String,
        status: String,
        updated_at: String,
    },
    /// The answer to `{"action": "subscribe"}`: what the connection now
    /// follows.
    Subscribed { topics: Vec<Topic> },
    /// A message the API could not act on; `error` has the shape of the
    /// REST API's errors.
    Error { error: WireError },
}

impl LiveMessage {
    pub fn to_json(&self) -> String {
        // Strings, integers and string lists only: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `{"code", "message", "fields"?}`, as in the REST API's errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl From<&ApiError> for WireError {
    fn from(e: &ApiError) -> WireError {
        WireError {
            code: e.code.to_owned(),
            message: e.message.clone(),
            fields: e.fields.clone(),
        }
    }
}

/// When a connection's items expire: two hours after it opened
/// (`connected_at_ms`, the event's `requestContext.connectedAt`), or after
/// `now_secs` when the event does not say.
pub fn expires_at(connected_at_ms: i64, now_secs: i64) -> i64 {
    let opened = if connected_at_ms > 0 {
        connected_at_ms / 1000
    } else {
        now_secs
    };
    opened + CONNECTION_LIFETIME_SECS
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One item of the connections table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscription {
    topic: String,
    connection_id: String,
    /// Epoch seconds; DynamoDB's TTL deletes the item some time after.
    expires_at: i64,
}

/// Where the next page of a topic's connections starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionCursor(HashMap<String, AttributeValue>);

/// One page of the connections following a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionPage {
    pub connection_ids: Vec<String>,
    pub next: Option<ConnectionCursor>,
}

pub struct ConnectionRepo {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl ConnectionRepo {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        ConnectionRepo { client, table }
    }

    /// Adds the connection to each topic (items already there are
    /// overwritten, so this is idempotent).
    pub async fn subscribe(
        &self,
        connection_id: &str,
        topics: &[Topic],
        expires_at: i64,
    ) -> Result<(), ApiError> {
        let mut writes = Vec::with_capacity(topics.len());
        for topic in topics {
            let item = serde_dynamo::to_item(Subscription {
                topic: topic.to_string(),
                connection_id: connection_id.to_owned(),
                expires_at,
            })
            .map_err(|e| ApiError::internal(format!("cannot encode a subscription: {e}")))?;
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| ApiError::internal(format!("cannot build a put request: {e}")))?;
            writes.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write(writes).await
    }

    /// The topics the connection follows, as stored (read through the
    /// `by_connection` index, which is eventually consistent in DynamoDB: an
    /// item written a moment ago may be missing).
    pub async fn topics_of(&self, connection_id: &str) -> Result<Vec<String>, ApiError> {
        let mut topics = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_CONNECTION_INDEX)
                .key_condition_expression("connectionId = :c")
                .expression_attribute_values(":c", AttributeValue::S(connection_id.to_owned()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(ApiError::storage)?;
            for item in out.items.unwrap_or_default() {
                if let Some(AttributeValue::S(topic)) = item.get("topic") {
                    topics.push(topic.clone());
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(topics),
            }
        }
    }

    /// Makes `topics` the connection's topics: adds the new ones (and
    /// refreshes the kept ones), then removes those no longer asked for.
    pub async fn replace(
        &self,
        connection_id: &str,
        topics: &[Topic],
        expires_at: i64,
    ) -> Result<(), ApiError> {
        let current = self.topics_of(connection_id).await?;
        self.subscribe(connection_id, topics, expires_at).await?;
        let wanted: Vec<String> = topics.iter().map(Topic::to_string).collect();
        let stale = current.into_iter().filter(|t| !wanted.contains(t));
        self.delete(connection_id, stale).await
    }

    /// Removes every item of the connection; returns how many there were.
    pub async fn remove_connection(&self, connection_id: &str) -> Result<usize, ApiError> {
        let topics = self.topics_of(connection_id).await?;
        let count = topics.len();
        self.delete(connection_id, topics.into_iter()).await?;
        Ok(count)
    }

    /// A page of the connections following `topic` whose items have not
    /// expired at `now_secs` (TTL deletes expired items only eventually).
    pub async fn page(
        &self,
        topic: &Topic,
        start: Option<ConnectionCursor>,
        now_secs: i64,
    ) -> Result<ConnectionPage, ApiError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("topic = :t")
            .filter_expression("expiresAt > :now")
            .projection_expression("connectionId")
            .expression_attribute_values(":t", AttributeValue::S(topic.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now_secs.to_string()))
            .limit(PAGE_SIZE)
            .set_exclusive_start_key(start.map(|c| c.0))
            .send()
            .await
            .map_err(ApiError::storage)?;
        let connection_ids = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mut item| match item.remove("connectionId") {
                Some(AttributeValue::S(id)) => Some(id),
                _ => None,
            })
            .collect();
        let next = out
            .last_evaluated_key
            .filter(|k| !k.is_empty())
            .map(ConnectionCursor);
        Ok(ConnectionPage {
            connection_ids,
            next,
        })
    }

    /// Every connection following `topic`, all pages.
    pub async fn connection_ids(
        &self,
        topic: &Topic,
        now_secs: i64,
    ) -> Result<Vec<String>, ApiError> {
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let page = self.page(topic, start, now_secs).await?;
            ids.extend(page.connection_ids);
            match page.next {
                Some(next) => start = Some(next),
                None => return Ok(ids),
            }
        }
    }

    async fn delete(
        &self,
        connection_id: &str,
        topics: impl Iterator<Item = String>,
    ) -> Result<(), ApiError> {
        let mut writes = Vec::new();
        for topic in topics {
            let delete = DeleteRequest::builder()
                .key("topic", AttributeValue::S(topic))
                .key("connectionId", AttributeValue::S(connection_id.to_owned()))
                .build()
                .map_err(|e| ApiError::internal(format!("cannot build a delete request: {e}")))?;
            writes.push(WriteRequest::builder().delete_request(delete).build());
        }
        self.batch_write(writes).await
    }

    /// BatchWriteItem in chunks of 25, resending what DynamoDB leaves
    /// unprocessed with exponential backoff, as AWS advises.
    /// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/programming-with-python.html#programming-with-python-batch>
    async fn batch_write(&self, writes: Vec<WriteRequest>) -> Result<(), ApiError> {
        for chunk in writes.chunks(BATCH_WRITE_MAX) {
            let mut pending = chunk.to_vec();
            let mut round = 0;
            while !pending.is_empty() {
                if round == UNPROCESSED_ROUNDS {
                    return Err(ApiError::new(
                        503,
                        "storage_unavailable",
                        format!("{} connection writes left unprocessed", pending.len()),
                    ));
                }
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << round)).await;
                }
                round += 1;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(ApiError::storage)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topics_parse_and_print_back() {
        for raw in ["catalogue", "order:o-123", "order:5f3a_b"] {
            let topic: Topic = raw.parse().expect("valid");
            assert_eq!(topic.to_string(), raw);
        }
        assert_eq!("catalogue".parse(), Ok(Topic::Catalogue));
        assert_eq!("order:o-1".parse(), Ok(Topic::order("o-1")));
    }

    #[test]
    fn bad_topics_say_what_is_wrong() {
        assert_eq!("".parse::<Topic>(), Err(TopicError::Empty));
        assert_eq!(
            "order:".parse::<Topic>(),
            Err(TopicError::BadOrderId("order:".into()))
        );
        assert_eq!(
            "order:a/b".parse::<Topic>(),
            Err(TopicError::BadOrderId("order:a/b".into()))
        );
        assert_eq!(
            "Catalogue".parse::<Topic>(),
            Err(TopicError::Unknown("Catalogue".into()))
        );
        assert_eq!(
            "orders:1".parse::<Topic>(),
            Err(TopicError::Unknown("orders:1".into()))
        );
    }

    #[test]
    fn comma_lists_are_trimmed_and_deduplicated_in_order() {
        assert_eq!(
            Topic::parse_comma_list("order:o-1, catalogue,order:o-1"),
            Ok(vec![Topic::order("o-1"), Topic::Catalogue])
        );
        assert_eq!(
            Topic::parse_comma_list("catalogue,,order:o-1"),
            Err(TopicError::Empty)
        );
        let many: Vec<String> = (0..=MAX_TOPICS).map(|i| format!("order:o-{i}")).collect();
        assert_eq!(
            Topic::parse_list(many.iter().map(String::as_str)),
            Err(TopicError::TooMany)
        );
        // Duplicates do not count towards the limit.
        let same = vec!["catalogue"; MAX_TOPICS * 2];
        assert_eq!(Topic::parse_list(same), Ok(vec![Topic::Catalogue]));
    }

    #[test]
    fn a_topic_error_is_a_validation_error_on_topics() {
        let e = ApiError::from(TopicError::Unknown("x".into()));
        assert_eq!(e.status, 400);
        assert_eq!(e.code, "validation_failed");
        assert!(e.fields["topics"].contains("`x` is not a topic"));
    }

    #[test]
    fn messages_have_the_contract_shapes() {
        let stock = LiveMessage::Stock {
            product_id: "mug".into(),
            stock: 3,
        };
        assert_eq!(
            serde_json::to_value(&stock).expect("json"),
            json!({"type": "stock", "productId": "mug", "stock": 3})
        );
        let order = LiveMessage::Order {
            order_id: "o-1".into(),
            status: "PAID".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        };
        assert_eq!(
            serde_json::to_value(&order).expect("json"),
            json!({"type": "order", "orderId": "o-1", "status": "PAID",
                   "updatedAt": "2026-01-01T00:00:00Z"})
        );
        let subscribed = LiveMessage::Subscribed {
            topics: vec![Topic::Catalogue, Topic::order("o-1")],
        };
        assert_eq!(
            serde_json::to_value(&subscribed).expect("json"),
            json!({"type": "subscribed", "topics": ["catalogue", "order:o-1"]})
        );
        let error = LiveMessage::Error {
            error: WireError::from(&ApiError::bad_request("nope")),
        };
        assert_eq!(
            error.to_json(),
            r#"{"type":"error","error":{"code":"bad_request","message":"nope"}}"#
        );
        for message in [stock, order, subscribed, error] {
            let back: LiveMessage = serde_json::from_str(&message.to_json()).expect("round trip");
            assert_eq!(back, message);
        }
        assert!(
            serde_json::from_value::<LiveMessage>(
                json!({"type": "subscribed", "topics": ["nope"]})
            )
            .is_err()
        );
    }

    #[test]
    fn connections_expire_two_hours_after_they_opened() {
        assert_eq!(expires_at(1_700_000_000_123, 1), 1_700_000_000 + 7200);
        assert_eq!(expires_at(0, 1_800_000_000), 1_800_000_000 + 7200);
    }

    #[test]
    fn subscriptions_are_stored_with_camel_case_attributes() {
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(Subscription {
            topic: "catalogue".into(),
            connection_id: "abc=".into(),
            expires_at: 10,
        })
        .expect("item");
        assert_eq!(item["topic"], AttributeValue::S("catalogue".into()));
        assert_eq!(item["connectionId"], AttributeValue::S("abc=".into()));
        assert_eq!(item["expiresAt"], AttributeValue::N("10".into()));
    }
}
