//! SNS through `aws-sdk-sns` (and `aws-sdk-sqs`, `aws-sdk-lambda` to see
//! where messages land) against an in-process stack
//! (tests/fixtures/sns.toml): topics from dev.toml and the API, fan-out to
//! queues (raw and enveloped) and to a function, filter policies, HTTP
//! subscriptions with their confirmation, dead-letter queues of
//! subscriptions, PublishBatch, FIFO topics, SNS's error codes, and
//! asynchronous invocation destinations that name a topic.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sns::error::ProvideErrorMetadata;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use common::{TempDir, manifest, sdk};
use serde_json::Value;
use woocom_dev::{Stack, StackOptions};

async fn start(sns_log: Option<&std::path::Path>) -> Stack {
    let mut m = manifest("sns.toml");
    if let Some(log) = sns_log
        && let Some(f) = m.functions.get_mut("listener")
    {
        f.env
            .insert("PROBE_SNS_LOG".into(), log.display().to_string());
    }
    Stack::start(StackOptions::new(m).free_ports().quiet_build())
        .await
        .expect("stack starts")
}

async fn clients(stack: &Stack) -> (aws_sdk_sns::Client, aws_sdk_sqs::Client) {
    let config = sdk::config(&stack.urls().aws).await;
    (
        aws_sdk_sns::Client::new(&config),
        aws_sdk_sqs::Client::new(&config),
    )
}

const ACCOUNT: &str = "000000000000";

fn topic_arn(name: &str) -> String {
    format!("arn:aws:sns:us-east-1:{ACCOUNT}:{name}")
}

fn string(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("attribute")
}

fn number(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(value)
        .build()
        .expect("attribute")
}

/// Receives what `queue` holds within `wait` (deleting it).
async fn drain(
    sqs: &aws_sdk_sqs::Client,
    stack: &Stack,
    queue: &str,
    want: usize,
    wait: Duration,
) -> Vec<aws_sdk_sqs::types::Message> {
    let url = format!("{}/{ACCOUNT}/{queue}", stack.urls().aws);
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().expect("receipt"))
                .send()
                .await
                .expect("delete");
            got.push(m.clone());
        }
    }
    got
}

#[tokio::test]
async fn topics_come_from_dev_toml_and_the_api_with_their_attributes() {
    let stack = start(None).await;
    let (sns, _) = clients(&stack).await;
    let listed = sns.list_topics().send().await.expect("list");
    let arns: Vec<&str> = listed
        .topics()
        .iter()
        .filter_map(|t| t.topic_arn())
        .collect();
    assert_eq!(
        arns,
        [
            topic_arn("events.fifo"),
            topic_arn("failures"),
            topic_arn("orders")
        ]
    );

    let created = sns
        .create_topic()
        .name("audit")
        .attributes("DisplayName", "Audit")
        .send()
        .await
        .expect("create");
    assert_eq!(created.topic_arn(), Some(topic_arn("audit").as_str()));
    // CreateTopic is idempotent for the same attributes...
    let again = sns
        .create_topic()
        .name("audit")
        .attributes("DisplayName", "Audit")
        .send()
        .await
        .expect("create again");
    assert_eq!(again.topic_arn(), created.topic_arn());
    // ...and refuses other ones.
    let err = sns
        .create_topic()
        .name("audit")
        .attributes("DisplayName", "Other")
        .send()
        .await
        .expect_err("different attributes");
    assert_eq!(err.code(), Some("InvalidParameter"), "{err:?}");

    let attributes = sns
        .get_topic_attributes()
        .topic_arn(topic_arn("orders"))
        .send()
        .await
        .expect("attributes");
    let a = attributes.attributes().expect("attributes");
    assert_eq!(a["TopicArn"], topic_arn("orders"));
    assert_eq!(a["SubscriptionsConfirmed"], "3");
    assert_eq!(a["Owner"], ACCOUNT);
    let fifo = sns
        .get_topic_attributes()
        .topic_arn(topic_arn("events.fifo"))
        .send()
        .await
        .expect("attributes");
    let a = fifo.attributes().expect("attributes");
    assert_eq!(a["FifoTopic"], "true");
    assert_eq!(a["ContentBasedDeduplication"], "true");

    let subs = sns
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn("orders"))
        .send()
        .await
        .expect("subscriptions");
    let protocols: Vec<&str> = subs
        .subscriptions()
        .iter()
        .filter_map(|s| s.protocol())
        .collect();
    assert_eq!(protocols, ["sqs", "sqs", "lambda"]);
    let raw = &subs.subscriptions()[0];
    let a = sns
        .get_subscription_attributes()
        .subscription_arn(raw.subscription_arn().expect("arn"))
        .send()
        .await
        .expect("subscription attributes");
    let a = a.attributes().expect("attributes");
    assert_eq!(a["RawMessageDelivery"], "true");
    assert_eq!(
        a["Endpoint"],
        format!("arn:aws:sqs:us-east-1:{ACCOUNT}:raw")
    );
    assert!(a["FilterPolicy"].contains("OrderPlaced"), "{a:?}");

    // What `woocom-dev topics` reads: every topic with its subscriptions,
    // and the stack still answers afterwards.
    let view: Value = tokio::time::timeout(Duration::from_secs(10), async {
        common::http()
            .get(format!("{}/_woocom/topics", stack.urls().aws))
            .send()
            .await
            .expect("topics view")
            .json()
            .await
            .expect("json")
    })
    .await
    .expect("the topics view answers");
    let topics = view["topics"].as_array().expect("topics");
    let orders = topics
        .iter()
        .find(|t| t["name"] == "orders")
        .expect("orders listed");
    assert_eq!(orders["subscriptions"].as_array().map(Vec::len), Some(3));
    assert!(
        topics
            .iter()
            .any(|t| t["name"] == "events.fifo" && t["fifo"] == true),
        "{view}"
    );
    tokio::time::timeout(Duration::from_secs(10), sns.list_topics().send())
        .await
        .expect("the stack answers after the topics view")
        .expect("list");

    sns.delete_topic()
        .topic_arn(topic_arn("audit"))
        .send()
        .await
        .expect("delete");
    // Deleting a topic that is gone succeeds, as in SNS.
    sns.delete_topic()
        .topic_arn(topic_arn("audit"))
        .send()
        .await
        .expect("delete again");
    stack.shutdown().await;
}

#[tokio::test]
async fn errors_carry_sns_codes() {
    let stack = start(None).await;
    let (sns, _) = clients(&stack).await;
    let err = sns
        .publish()
        .topic_arn(topic_arn("nope"))
        .message("m")
        .send()
        .await
        .expect_err("missing topic");
    assert_eq!(err.code(), Some("NotFound"), "{err:?}");
    assert_eq!(err.message(), Some("Topic does not exist"));
    assert!(matches!(
        err.into_service_error(),
        aws_sdk_sns::operation::publish::PublishError::NotFoundException(_)
    ));

    let err = sns
        .publish()
        .topic_arn("orders")
        .message("m")
        .send()
        .await
        .expect_err("not an ARN");
    assert_eq!(err.code(), Some("InvalidParameter"));
    assert!(
        err.message()
            .is_some_and(|m| m.contains("does not start with arn")),
        "{err:?}"
    );

    let err = sns
        .publish()
        .topic_arn(topic_arn("orders"))
        .message("")
        .send()
        .await
        .expect_err("empty");
    assert_eq!(err.message(), Some("Invalid parameter: Empty message"));

    let err = sns
        .publish()
        .topic_arn(topic_arn("orders"))
        .message("x".repeat(262_145))
        .send()
        .await
        .expect_err("too long");
    assert_eq!(err.message(), Some("Invalid parameter: Message too long"));

    let err = sns
        .publish()
        .topic_arn(topic_arn("events.fifo"))
        .message("m")
        .send()
        .await
        .expect_err("no group");
    assert_eq!(err.code(), Some("InvalidParameter"));
    assert!(
        err.message().is_some_and(|m| m.contains("MessageGroupId")),
        "{err:?}"
    );

    let err = sns
        .publish()
        .topic_arn(topic_arn("orders"))
        .message("m")
        .message_attributes("n", number("ten"))
        .send()
        .await
        .expect_err("bad number");
    assert_eq!(err.code(), Some("ParameterValueInvalid"), "{err:?}");

    let err = sns
        .subscribe()
        .topic_arn(topic_arn("orders"))
        .protocol("carrier-pigeon")
        .endpoint("x")
        .send()
        .await
        .expect_err("protocol");
    assert!(
        err.message()
            .is_some_and(|m| m.contains("does not support this protocol string")),
        "{err:?}"
    );

    let err = sns
        .subscribe()
        .topic_arn(topic_arn("orders"))
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:us-east-1:{ACCOUNT}:raw"))
        .attributes("FilterPolicy", r#"{"type": "not an array"}"#)
        .send()
        .await
        .expect_err("filter policy");
    assert_eq!(err.code(), Some("InvalidParameter"), "{err:?}");
    stack.shutdown().await;
}

#[tokio::test]
async fn publish_fans_out_to_queues_and_a_function_through_filter_policies() {
    let dir = TempDir::new("sns-fanout");
    let log = dir.join("sns.log");
    let stack = start(Some(&log)).await;
    let (sns, sqs) = clients(&stack).await;
    let placed = sns
        .publish()
        .topic_arn(topic_arn("orders"))
        .subject("Order placed")
        .message(r#"{"orderId":"o-1"}"#)
        .message_attributes("type", string("OrderPlaced"))
        .message_attributes("total", number("120"))
        .send()
        .await
        .expect("publish");
    let message_id = placed.message_id().expect("id").to_owned();
    // Filtered out of `raw` (total below 100), delivered to the others.
    sns.publish()
        .topic_arn(topic_arn("orders"))
        .message(r#"{"orderId":"o-2"}"#)
        .message_attributes("type", string("OrderPlaced"))
        .message_attributes("total", number("20"))
        .send()
        .await
        .expect("publish");

    let raw = drain(&sqs, &stack, "raw", 2, Duration::from_secs(2)).await;
    assert_eq!(raw.len(), 1, "the filter policy lets one through: {raw:?}");
    assert_eq!(raw[0].body(), Some(r#"{"orderId":"o-1"}"#));
    let attributes = raw[0].message_attributes().expect("attributes");
    assert_eq!(attributes["type"].string_value(), Some("OrderPlaced"));
    assert_eq!(attributes["total"].data_type(), "Number");

    let enveloped = drain(&sqs, &stack, "enveloped", 2, Duration::from_secs(5)).await;
    assert_eq!(enveloped.len(), 2);
    let envelopes: Vec<Value> = enveloped
        .iter()
        .map(|m| serde_json::from_str(m.body().expect("body")).expect("envelope JSON"))
        .collect();
    let first = envelopes
        .iter()
        .find(|e| e["MessageId"] == message_id.as_str())
        .expect("the first message");
    assert_eq!(first["Type"], "Notification");
    assert_eq!(first["TopicArn"], topic_arn("orders"));
    assert_eq!(first["Subject"], "Order placed");
    assert_eq!(first["Message"], r#"{"orderId":"o-1"}"#);
    assert_eq!(first["SignatureVersion"], "1");
    assert!(
        first["UnsubscribeURL"]
            .as_str()
            .is_some_and(|u| u.contains("Action=Unsubscribe"))
    );
    assert_eq!(
        first["MessageAttributes"]["type"],
        serde_json::json!({ "Type": "String", "Value": "OrderPlaced" })
    );
    assert_eq!(
        first["MessageAttributes"]["total"],
        serde_json::json!({ "Type": "Number", "Value": "120" })
    );

    // The function gets both, as `SNSEvent`s (the probe deserializes them
    // with aws_lambda_events before logging).
    let deadline = Instant::now() + Duration::from_secs(30);
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(lines.len(), 2, "{lines:?}");
    let record = lines
        .iter()
        .map(|l| &l["records"][0])
        .find(|r| r["Sns"]["MessageId"] == message_id.as_str())
        .expect("the first message's event");
    assert_eq!(record["EventSource"], "aws:sns");
    assert_eq!(record["EventVersion"], "1.0");
    assert!(
        record["EventSubscriptionArn"]
            .as_str()
            .is_some_and(|a| a.starts_with(&format!("{}:", topic_arn("orders")))),
        "{record}"
    );
    assert_eq!(record["Sns"]["Type"], "Notification");
    assert_eq!(record["Sns"]["Subject"], "Order placed");
    assert!(record["Sns"]["SigningCertUrl"].is_string(), "{record}");
    assert_eq!(
        record["Sns"]["MessageAttributes"]["type"]["Value"],
        "OrderPlaced"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn message_structure_json_and_publish_batch() {
    let stack = start(None).await;
    let (sns, sqs) = clients(&stack).await;
    sns.publish()
        .topic_arn(topic_arn("orders"))
        .message_structure("json")
        .message(r#"{"default": "for everyone", "sqs": "for queues"}"#)
        .send()
        .await
        .expect("publish");
    let got = drain(&sqs, &stack, "enveloped", 1, Duration::from_secs(5)).await;
    let envelope: Value = serde_json::from_str(got[0].body().expect("body")).expect("JSON");
    assert_eq!(envelope["Message"], "for queues");
    let err = sns
        .publish()
        .topic_arn(topic_arn("orders"))
        .message_structure("json")
        .message(r#"{"sqs": "no default"}"#)
        .send()
        .await
        .expect_err("no default");
    assert!(
        err.message()
            .is_some_and(|m| m.contains("No default entry")),
        "{err:?}"
    );

    let entry = |id: &str, message: &str| {
        PublishBatchRequestEntry::builder()
            .id(id)
            .message(message)
            .build()
            .expect("entry")
    };
    let out = sns
        .publish_batch()
        .topic_arn(topic_arn("orders"))
        .publish_batch_request_entries(entry("a", "one"))
        .publish_batch_request_entries(entry("b", ""))
        .publish_batch_request_entries(entry("c", "three"))
        .send()
        .await
        .expect("batch");
    let ok: Vec<&str> = out.successful().iter().filter_map(|s| s.id()).collect();
    assert_eq!(ok, ["a", "c"]);
    let failed = &out.failed()[0];
    assert_eq!(failed.id(), "b");
    assert_eq!(failed.code(), "InvalidParameter");
    assert!(failed.sender_fault());
    let got = drain(&sqs, &stack, "enveloped", 2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2);

    let err = sns
        .publish_batch()
        .topic_arn(topic_arn("orders"))
        .publish_batch_request_entries(entry("a", "one"))
        .publish_batch_request_entries(entry("a", "two"))
        .send()
        .await
        .expect_err("same ids");
    assert_eq!(err.code(), Some("BatchEntryIdsNotDistinct"), "{err:?}");
    stack.shutdown().await;
}

#[tokio::test]
async fn fifo_topics_keep_order_and_drop_duplicates() {
    let stack = start(None).await;
    let (sns, sqs) = clients(&stack).await;
    let mut sequence = Vec::new();
    for body in ["first", "second", "first"] {
        let out = sns
            .publish()
            .topic_arn(topic_arn("events.fifo"))
            .message(body)
            .message_group_id("g")
            .send()
            .await
            .expect("publish");
        sequence.push(out.sequence_number().expect("sequence").to_owned());
    }
    // The third repeats the first within the deduplication window.
    assert_eq!(sequence[2], sequence[0]);
    assert!(sequence[1] > sequence[0]);
    let got = drain(&sqs, &stack, "ordered.fifo", 3, Duration::from_secs(3)).await;
    let bodies: Vec<&str> = got.iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, ["first", "second"]);
    stack.shutdown().await;
}

/// What an HTTP subscriber received: headers and body of each POST.
type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;

async fn http_subscriber(status: axum::http::StatusCode) -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            async move {
                store.lock().expect("lock").push((headers, body));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, received)
}

async fn wait_for(
    received: &Received,
    n: usize,
    within: Duration,
) -> Vec<(axum::http::HeaderMap, String)> {
    let deadline = Instant::now() + within;
    loop {
        let got = received.lock().expect("lock").clone();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn http_subscriptions_are_confirmed_then_get_notifications() {
    let stack = start(None).await;
    let (sns, _) = clients(&stack).await;
    let (url, received) = http_subscriber(axum::http::StatusCode::OK).await;
    let out = sns
        .subscribe()
        .topic_arn(topic_arn("orders"))
        .protocol("http")
        .endpoint(&url)
        .send()
        .await
        .expect("subscribe");
    assert_eq!(out.subscription_arn(), Some("pending confirmation"));
    let got = wait_for(&received, 1, Duration::from_secs(5)).await;
    let (headers, body) = &got[0];
    assert_eq!(
        headers["x-amz-sns-message-type"],
        "SubscriptionConfirmation"
    );
    let confirmation: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(confirmation["Type"], "SubscriptionConfirmation");
    // Not delivered to before it is confirmed.
    sns.publish()
        .topic_arn(topic_arn("orders"))
        .message("early")
        .send()
        .await
        .expect("publish");
    // Visiting SubscribeURL confirms it, as a subscriber does.
    let subscribe_url = confirmation["SubscribeURL"].as_str().expect("SubscribeURL");
    let answer = common::http()
        .get(subscribe_url)
        .send()
        .await
        .expect("confirm");
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.expect("body");
    assert!(text.contains("<SubscriptionArn>arn:aws:sns:"), "{text}");

    sns.publish()
        .topic_arn(topic_arn("orders"))
        .message("hello")
        .send()
        .await
        .expect("publish");
    let got = wait_for(&received, 2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2, "the early message was not delivered");
    let (headers, body) = &got[1];
    assert_eq!(headers["x-amz-sns-message-type"], "Notification");
    assert_eq!(headers["x-amz-sns-topic-arn"], topic_arn("orders").as_str());
    let envelope: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(envelope["Message"], "hello");
    stack.shutdown().await;
}

#[tokio::test]
async fn undeliverable_messages_go_to_the_subscriptions_dead_letter_queue() {
    let stack = start(None).await;
    let (sns, sqs) = clients(&stack).await;
    let dlq = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:undeliverable");
    sns.create_topic().name("lost").send().await.expect("topic");
    // A queue that does not exist: SQS refuses the delivery.
    sns.subscribe()
        .topic_arn(topic_arn("lost"))
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:us-east-1:{ACCOUNT}:gone"))
        .attributes("RawMessageDelivery", "true")
        .attributes(
            "RedrivePolicy",
            serde_json::json!({ "deadLetterTargetArn": dlq }).to_string(),
        )
        .send()
        .await
        .expect("subscribe");
    sns.publish()
        .topic_arn(topic_arn("lost"))
        .message("nobody home")
        .send()
        .await
        .expect("publish");
    let got = drain(&sqs, &stack, "undeliverable", 1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body(), Some("nobody home"));
    stack.shutdown().await;
}

#[tokio::test]
async fn a_failed_asynchronous_invocation_reaches_its_topic_and_dead_letter_queue() {
    let stack = start(None).await;
    let (_, sqs) = clients(&stack).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk::config(&stack.urls().aws).await);
    let payload = serde_json::json!({ "probe": "error", "order": "o-9" }).to_string();
    let out = lambda
        .invoke()
        .function_name("failing")
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.as_bytes()))
        .send()
        .await
        .expect("invoke");
    assert_eq!(out.status_code(), 202);

    // The on-failure record, through the topic, to its queue.
    let records = drain(&sqs, &stack, "failure-records", 1, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 1);
    let record: Value = serde_json::from_str(records[0].body().expect("body")).expect("JSON");
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestPayload"]["order"], "o-9");
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");

    // The event itself, with the request id and error, in the DLQ.
    let events = drain(&sqs, &stack, "failed-events", 1, Duration::from_secs(10)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].body(), Some(payload.as_str()));
    let attributes = events[0].message_attributes().expect("attributes");
    assert_eq!(
        attributes["RequestID"].string_value(),
        record["requestContext"]["requestId"].as_str()
    );
    assert_eq!(
        attributes["ErrorMessage"].string_value(),
        Some("probe failed on purpose")
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn topics_made_through_the_api_survive_a_restart() {
    let dir = TempDir::new("sns-persist");
    let options = || {
        let mut o = StackOptions::new(manifest("sns.toml"))
            .free_ports()
            .quiet_build();
        o.data = woocom_dev::dynamodb::DataLocation::Dir(dir.join("data"));
        o
    };
    let stack = Stack::start(options()).await.expect("stack starts");
    let (sns, _) = clients(&stack).await;
    sns.create_topic()
        .name("kept")
        .tags(
            aws_sdk_sns::types::Tag::builder()
                .key("team")
                .value("shop")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("create");
    sns.subscribe()
        .topic_arn(topic_arn("kept"))
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:us-east-1:{ACCOUNT}:raw"))
        .send()
        .await
        .expect("subscribe");
    stack.shutdown().await;

    let stack = Stack::start(options()).await.expect("stack restarts");
    let (sns, _) = clients(&stack).await;
    let subs = sns
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn("kept"))
        .send()
        .await
        .expect("subscriptions");
    assert_eq!(subs.subscriptions().len(), 1);
    let tags = sns
        .list_tags_for_resource()
        .resource_arn(topic_arn("kept"))
        .send()
        .await
        .expect("tags");
    assert_eq!(tags.tags()[0].key(), "team");
    stack.shutdown().await;
}
