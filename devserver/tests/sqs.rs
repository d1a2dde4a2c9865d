//! SQS through `aws-sdk-sqs` against an in-process stack
//! (tests/fixtures/sqs.toml): queues from dev.toml, messages, visibility,
//! long polling, FIFO, dead-letter queues and their redrive, SQS's error
//! codes, and a queue delivered to a function by an event source mapping.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use common::{TempDir, manifest, sdk};
use serde_json::Value;
use woocom_dev::{Stack, StackOptions};

async fn start(log: Option<&std::path::Path>) -> Stack {
    let mut m = manifest("sqs.toml");
    if let Some(log) = log
        && let Some(f) = m.functions.get_mut("consumer")
    {
        f.env
            .insert("PROBE_SQS_LOG".into(), log.display().to_string());
    }
    Stack::start(StackOptions::new(m).free_ports().quiet_build())
        .await
        .expect("stack starts")
}

async fn client(stack: &Stack) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk::config(&stack.urls().aws).await)
}

async fn url(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.get_queue_url()
        .queue_name(name)
        .send()
        .await
        .expect("queue url")
        .queue_url()
        .expect("url")
        .to_owned()
}

/// All of a queue's attributes.
async fn attributes(sqs: &aws_sdk_sqs::Client, url: &str) -> HashMap<QueueAttributeName, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes()
        .cloned()
        .unwrap_or_default()
}

fn md5(bytes: &[u8]) -> String {
    format!("{:x}", md5::compute(bytes))
}

#[tokio::test]
async fn queues_from_dev_toml_exist_with_their_attributes() {
    let stack = start(None).await;
    let sqs = client(&stack).await;
    let listed = sqs.list_queues().send().await.expect("list");
    let urls = listed.queue_urls();
    assert_eq!(urls.len(), 6, "{urls:?}");
    let orders = url(&sqs, "orders").await;
    assert_eq!(
        orders,
        format!("{}/000000000000/orders", stack.urls().aws),
        "queue URLs point at the devserver"
    );
    let a = attributes(&sqs, &orders).await;
    assert_eq!(a[&QueueAttributeName::VisibilityTimeout], "30");
    assert_eq!(a[&QueueAttributeName::MaximumMessageSize], "1048576");
    assert_eq!(
        a[&QueueAttributeName::QueueArn],
        "arn:aws:sqs:us-east-1:000000000000:orders"
    );
    let redrive: Value =
        serde_json::from_str(&a[&QueueAttributeName::RedrivePolicy]).expect("JSON");
    assert_eq!(
        redrive["deadLetterTargetArn"],
        "arn:aws:sqs:us-east-1:000000000000:orders-dlq"
    );
    assert_eq!(redrive["maxReceiveCount"], 2);
    let fifo = url(&sqs, "payments.fifo").await;
    let a = sqs
        .get_queue_attributes()
        .queue_url(&fifo)
        .attribute_names(QueueAttributeName::FifoQueue)
        .send()
        .await
        .expect("attributes");
    assert_eq!(
        a.attributes().expect("attributes")[&QueueAttributeName::FifoQueue],
        "true"
    );
    let sources = sqs
        .list_dead_letter_source_queues()
        .queue_url(url(&sqs, "orders-dlq").await)
        .send()
        .await
        .expect("sources");
    assert_eq!(sources.queue_urls(), [orders]);
    stack.shutdown().await;
}

#[tokio::test]
async fn messages_are_sent_received_and_deleted_with_attributes_and_digests() {
    let stack = start(None).await;
    let sqs = client(&stack).await;
    let q = url(&sqs, "orders").await;
    let body = r#"{"order":"o-1"}"#;
    let sent = sqs
        .send_message()
        .queue_url(&q)
        .message_body(body)
        .message_attributes(
            "kind",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("order")
                .build()
                .expect("attribute"),
        )
        .message_attributes(
            "count",
            MessageAttributeValue::builder()
                .data_type("Number")
                .string_value("3")
                .build()
                .expect("attribute"),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(
        sent.md5_of_message_body(),
        Some(md5(body.as_bytes()).as_str())
    );
    assert!(sent.md5_of_message_attributes().is_some());

    let got = sqs
        .receive_message()
        .queue_url(&q)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let messages = got.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.message_id(), sent.message_id());
    assert_eq!(m.body(), Some(body));
    assert_eq!(m.md5_of_body(), sent.md5_of_message_body());
    assert_eq!(
        m.md5_of_message_attributes(),
        sent.md5_of_message_attributes()
    );
    let attrs = m.attributes().expect("system attributes");
    assert_eq!(
        attrs[&MessageSystemAttributeName::ApproximateReceiveCount],
        "1"
    );
    assert!(attrs.contains_key(&MessageSystemAttributeName::SentTimestamp));
    let user = m.message_attributes().expect("message attributes");
    assert_eq!(user["kind"].string_value(), Some("order"));
    assert_eq!(user["count"].data_type(), "Number");

    // In flight: nothing more to receive; deleted: gone.
    let empty = sqs
        .receive_message()
        .queue_url(&q)
        .send()
        .await
        .expect("receive");
    assert!(empty.messages().is_empty());
    sqs.delete_message()
        .queue_url(&q)
        .receipt_handle(m.receipt_handle().expect("receipt"))
        .send()
        .await
        .expect("delete");
    let a = attributes(&sqs, &q).await;
    assert_eq!(a[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert_eq!(
        a[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
        "0"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn visibility_timeouts_hide_a_message_until_they_end_or_change() {
    let stack = start(None).await;
    let sqs = client(&stack).await;
    // A queue without a redrive policy: it is received three times.
    let q = url(&sqs, "orders-dlq").await;
    sqs.send_message()
        .queue_url(&q)
        .message_body("v")
        .send()
        .await
        .expect("send");
    let first = sqs
        .receive_message()
        .queue_url(&q)
        .visibility_timeout(1)
        .send()
        .await
        .expect("receive");
    let receipt = first.messages()[0]
        .receipt_handle()
        .expect("receipt")
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let again = sqs
        .receive_message()
        .queue_url(&q)
        .send()
        .await
        .expect("receive");
    assert_eq!(again.messages().len(), 1, "visible again after its timeout");
    let receipt2 = again.messages()[0]
        .receipt_handle()
        .expect("receipt")
        .to_owned();
    assert_ne!(receipt, receipt2, "each receive has its own receipt handle");
    sqs.change_message_visibility()
        .queue_url(&q)
        .receipt_handle(&receipt2)
        .visibility_timeout(0)
        .send()
        .await
        .expect("change visibility");
    let third = sqs
        .receive_message()
        .queue_url(&q)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .expect("receive");
    let count = &third.messages()[0].attributes().expect("attributes")
        [&MessageSystemAttributeName::ApproximateReceiveCount];
    assert_eq!(count, "3");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_long_poll_is_woken_by_a_send_not_a_timer() {
    let stack = start(None).await;
    let sqs = client(&stack).await;
    let q = url(&sqs, "orders").await;
    let waiting = {
        let sqs = sqs.clone();
        let q = q.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let got = sqs
                .receive_message()
                .queue_url(&q)
                .wait_time_seconds(10)
                .send()
                .await
                .expect("receive");
            (started.elapsed(), got.messages().len())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqs.send_message()
        .queue_url(&q)
        .message_body("wake")
        .send()
        .await
        .expect("send");
    let (elapsed, n) = waiting.await.expect("task");
    assert_eq!(n, 1);
    assert!(
        elapsed < Duration::from_secs(3),
        "answered {elapsed:?} after the receive started; the wait was 10 s"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn fifo_groups_keep_order_and_duplicates_are_dropped() {
    let stack = start(None).await;
    let sqs = client(&stack).await;
    let q = url(&sqs, "payments.fifo").await;
    let mut ids = Vec::new();
    for (group, body) in [("a", "a1"), ("a", "a2"), ("b", "b1")] {
        let sent = sqs
            .send_message()
            .queue_url(&q)
            .message_group_id(group)
            .message_body(body)
            .send()
            .await
            .expect("send");
        assert!(sent.sequence_number().is_some());
        ids.push(sent.message_id().expect("id").to_owned());
    }
    // Same body within five minutes (content-based deduplication): the
    // first message's id, no second copy.
    let dup = sqs
        .send_message()
        .queue_url(&q)
        .message_group_id("a")
        .message_body("a1")
        .send()
        .await
        .expect("send");
    assert_eq!(dup.message_id(), Some(ids[0].as_str()));

    let first = sqs
        .receive_message()
        .queue_url(&q)
        .max_number_of_messages(2)
        .send()
        .await
        .expect("receive");
    let bodies: Vec<&str> = first.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(
        bodies,
        ["a1", "a2"],
        "a group's messages in order, together"
    );
    let second = sqs
        .receive_message()
        .queue_url(&q)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let bodies: Vec<&str> = second.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, ["b1"], "group a is in flight");

    let missing_group = sqs
        .send_message()
        .queue_url(&q)
        .message_body("x")
        .send()
        .await
        .expect_err("FIFO needs a group");
    assert_eq!(
        aws_sdk_sqs::error::ProvideErrorMetadata::code(&missing_group),
        Some("MissingParameter")
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn messages_received_too_often_move_to_the_dead_letter_queue_and_a_move_task_brings_them_back()
 {
    let stack = start(None).await;
    let sqs = client(&stack).await;
    let q = url(&sqs, "orders").await;
    let dlq = url(&sqs, "orders-dlq").await;
    sqs.send_message()
        .queue_url(&q)
        .message_body("poison")
        .send()
        .await
        .expect("send");
    for _ in 0..2 {
        let got = sqs
            .receive_message()
            .queue_url(&q)
            .visibility_timeout(0)
            .send()
            .await
            .expect("receive");
        assert_eq!(got.messages().len(), 1);
    }
    // maxReceiveCount is 2: the third receive moves it instead.
    let third = sqs
        .receive_message()
        .queue_url(&q)
        .send()
        .await
        .expect("receive");
    assert!(third.messages().is_empty());
    let dead = sqs
        .receive_message()
        .queue_url(&dlq)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .visibility_timeout(0)
        .send()
        .await
        .expect("receive");
    let m = &dead.messages()[0];
    assert_eq!(m.body(), Some("poison"));
    assert_eq!(
        m.attributes().expect("attributes")[&MessageSystemAttributeName::DeadLetterQueueSourceArn],
        "arn:aws:sqs:us-east-1:000000000000:orders"
    );

    let task = sqs
        .start_message_move_task()
        .source_arn("arn:aws:sqs:us-east-1:000000000000:orders-dlq")
        .send()
        .await
        .expect("move task");
    assert!(task.task_handle().is_some());
    let tasks = sqs
        .list_message_move_tasks()
        .source_arn("arn:aws:sqs:us-east-1:000000000000:orders-dlq")
        .send()
        .await
        .expect("tasks");
    let t = &tasks.results()[0];
    assert_eq!(t.status(), Some("COMPLETED"));
    assert_eq!(t.approximate_number_of_messages_moved(), 1);
    let back = sqs
        .receive_message()
        .queue_url(&q)
        .send()
        .await
        .expect("receive");
    assert_eq!(back.messages()[0].body(), Some("poison"));
    stack.shutdown().await;
}

#[tokio::test]
async fn errors_carry_sqss_codes() {
    let stack = start(None).await;
    let sqs = client(&stack).await;
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    let missing = sqs
        .get_queue_url()
        .queue_name("nope")
        .send()
        .await
        .expect_err("no such queue");
    assert!(
        missing
            .as_service_error()
            .is_some_and(|e| e.is_queue_does_not_exist())
    );
    assert_eq!(
        missing.code(),
        Some("AWS.SimpleQueueService.NonExistentQueue")
    );
    let q = url(&sqs, "orders").await;
    let bad = sqs
        .receive_message()
        .queue_url(&q)
        .max_number_of_messages(11)
        .send()
        .await
        .expect_err("range");
    assert_eq!(bad.code(), Some("InvalidParameterValue"));
    assert_eq!(
        bad.message(),
        Some(
            "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
        )
    );
    let entry = |id: &str| {
        SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body("b")
            .build()
            .expect("entry")
    };
    let dup = sqs
        .send_message_batch()
        .queue_url(&q)
        .entries(entry("1"))
        .entries(entry("1"))
        .send()
        .await
        .expect_err("ids repeat");
    assert!(
        dup.as_service_error()
            .is_some_and(|e| e.is_batch_entry_ids_not_distinct())
    );
    let handle = sqs
        .delete_message()
        .queue_url(&q)
        .receipt_handle("not-a-handle")
        .send()
        .await
        .expect_err("bad handle");
    assert!(
        handle
            .as_service_error()
            .is_some_and(|e| e.is_receipt_handle_is_invalid())
    );
    let exists = sqs
        .create_queue()
        .queue_name("orders")
        .attributes(QueueAttributeName::VisibilityTimeout, "99")
        .send()
        .await
        .expect_err("different attributes");
    assert_eq!(exists.code(), Some("QueueAlreadyExists"));
    stack.shutdown().await;
}

/// The probe's log of SQS batches: each the bodies it got.
fn batches(log: &std::path::Path) -> Vec<Vec<Value>> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("JSON line");
            v["records"].as_array().cloned().unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn a_queue_subscription_delivers_batches_deletes_successes_and_redrives_failures() {
    let dir = TempDir::new("sqs-mapping");
    let log = dir.join("sqs.log");
    let stack = start(Some(&log)).await;
    let sqs = client(&stack).await;
    let work = url(&sqs, "work").await;
    let entries: Vec<SendMessageBatchRequestEntry> = ["one", "partial", "two"]
        .iter()
        .enumerate()
        .map(|(i, body)| {
            SendMessageBatchRequestEntry::builder()
                .id(format!("e{i}"))
                .message_body(*body)
                .build()
                .expect("entry")
        })
        .collect();
    let sent = sqs
        .send_message_batch()
        .queue_url(&work)
        .set_entries(Some(entries))
        .send()
        .await
        .expect("batch");
    assert_eq!(sent.successful().len(), 3);

    // The failed one comes back after its 1 s visibility timeout, fails
    // again, and its second failure sends it to the dead-letter queue.
    let dlq = url(&sqs, "work-dlq").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let got = sqs
            .receive_message()
            .queue_url(&dlq)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        if let Some(m) = got.messages().first() {
            break m.body().unwrap_or_default().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "nothing reached the DLQ: {:?}",
            batches(&log)
        );
    };
    assert_eq!(dead, "partial");

    let seen = batches(&log);
    let mut count: HashMap<String, usize> = HashMap::new();
    for r in seen.iter().flatten() {
        *count
            .entry(r["body"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(
            r["eventSourceARN"],
            "arn:aws:sqs:us-east-1:000000000000:work"
        );
        assert!(r["attributes"]["ApproximateReceiveCount"].is_string());
        assert_eq!(
            r["md5OfBody"],
            md5(r["body"].as_str().unwrap_or_default().as_bytes())
        );
    }
    assert_eq!(
        count["one"], 1,
        "a success is deleted, never delivered again"
    );
    assert_eq!(count["two"], 1);
    assert_eq!(count["partial"], 2, "delivered until maxReceiveCount");
    let a = attributes(&sqs, &work).await;
    assert_eq!(a[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert_eq!(
        a[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
        "0"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_mapping_is_refused_when_the_function_outlives_the_visibility_timeout() {
    let text = std::fs::read_to_string(common::fixture("sqs.toml"))
        .expect("fixture")
        .replace("timeout = 1\n", "timeout = 5\n");
    let err =
        woocom_dev::manifest::Manifest::parse("dev.toml".as_ref(), &text).expect_err("refused");
    assert!(
        err.to_string().contains(
            "Queue visibility timeout: 1 seconds is less than Function timeout: 5 seconds"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn acknowledged_sends_survive_a_restart_of_a_persistent_stack() {
    let dir = TempDir::new("sqs-persist");
    let options = || {
        let mut o = StackOptions::new(manifest("sqs.toml"))
            .free_ports()
            .quiet_build();
        o.data = woocom_dev::dynamodb::DataLocation::Dir(dir.join("data"));
        o
    };
    let stack = Stack::start(options()).await.expect("stack starts");
    let sqs = client(&stack).await;
    let q = url(&sqs, "orders").await;
    for i in 0..5 {
        sqs.send_message()
            .queue_url(&q)
            .message_body(format!("m{i}"))
            .send()
            .await
            .expect("send");
    }
    let got = sqs
        .receive_message()
        .queue_url(&q)
        .max_number_of_messages(1)
        .send()
        .await
        .expect("receive");
    sqs.delete_message()
        .queue_url(&q)
        .receipt_handle(got.messages()[0].receipt_handle().expect("receipt"))
        .send()
        .await
        .expect("delete");
    stack.shutdown().await;

    let stack = Stack::start(options()).await.expect("stack restarts");
    let sqs = client(&stack).await;
    let q = url(&sqs, "orders").await;
    let got = sqs
        .receive_message()
        .queue_url(&q)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let mut bodies: Vec<&str> = got.messages().iter().filter_map(|m| m.body()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["m1", "m2", "m3", "m4"]);
    stack.shutdown().await;
}

#[tokio::test]
async fn event_invocations_send_their_record_to_their_destinations() {
    let stack = start(None).await;
    let sqs = client(&stack).await;
    let lambda = common::lambda_client(&stack).await;
    let results = url(&sqs, "async-results").await;
    let mut request_ids = Vec::new();
    for payload in [r#"{"probe":"echo","n":1}"#, r#"{"probe":"error"}"#] {
        let out = lambda
            .invoke()
            .function_name("async")
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .expect("event invoke");
        request_ids.push(
            aws_sdk_lambda::operation::RequestId::request_id(&out)
                .expect("request id")
                .to_owned(),
        );
    }
    let mut records: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while records.len() < 2 && Instant::now() < deadline {
        let got = sqs
            .receive_message()
            .queue_url(&results)
            .wait_time_seconds(2)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        for m in got.messages() {
            records.push(serde_json::from_str(m.body().unwrap_or_default()).expect("JSON record"));
        }
    }
    assert_eq!(records.len(), 2, "{records:?}");
    let by_condition = |c: &str| {
        records
            .iter()
            .find(|r| r["requestContext"]["condition"] == c)
            .cloned()
            .unwrap_or_else(|| panic!("no {c} record in {records:?}"))
    };
    let ok = by_condition("Success");
    assert_eq!(ok["version"], "1.0");
    assert_eq!(ok["requestContext"]["requestId"], request_ids[0].as_str());
    assert_eq!(
        ok["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:async:$LATEST"
    );
    assert_eq!(ok["requestPayload"]["n"], 1);
    assert_eq!(ok["responseContext"]["statusCode"], 200);
    assert_eq!(ok["responsePayload"]["event"]["n"], 1);
    let failed = by_condition("RetriesExhausted");
    assert_eq!(
        failed["requestContext"]["requestId"],
        request_ids[1].as_str()
    );
    assert_eq!(failed["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(failed["responseContext"]["functionError"], "Unhandled");
    assert_eq!(
        failed["responsePayload"]["errorMessage"],
        "probe failed on purpose"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_stream_mapping_sends_its_on_failure_record_to_an_sqs_queue() {
    let text = r#"
[stack]
name = "stream-failures"
[ports]
api = 0
websocket = 0
aws = 0

[functions.sink]
crate = "woocom-probe"

[tables.events]
partition_key = { name = "id" }
stream = "NEW_IMAGE"

[queues.stream-failures]

[[subscriptions]]
table = "events"
function = "sink"
starting_position = "TRIM_HORIZON"
maximum_retry_attempts = 0
on_failure = "queue:stream-failures"

[streams]
retry_backoff_ms = 10
"#;
    // Beside the fixtures, so the probe builds from this workspace.
    let m = woocom_dev::manifest::Manifest::parse(&common::fixture("stream-failures.toml"), text)
        .expect("manifest");
    let stack = Stack::start(StackOptions::new(m).free_ports().quiet_build())
        .await
        .expect("stack starts");
    let db = aws_sdk_dynamodb::Client::new(&sdk::config(&stack.urls().aws).await);
    db.put_item()
        .table_name("events")
        .item(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S("e1".into()),
        )
        .item(
            "fail",
            aws_sdk_dynamodb::types::AttributeValue::S("always".into()),
        )
        .send()
        .await
        .expect("put");
    let sqs = client(&stack).await;
    let q = url(&sqs, "stream-failures").await;
    let got = sqs
        .receive_message()
        .queue_url(&q)
        .wait_time_seconds(10)
        .send()
        .await
        .expect("receive");
    let record: Value =
        serde_json::from_str(got.messages()[0].body().expect("body")).expect("JSON record");
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["DDBStreamBatchInfo"]["batchSize"], 1);
    assert!(
        stack.event_source_mappings().dlq_entries().is_empty(),
        "the record went to the queue, not the local DLQ"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_function_destination_is_invoked_with_the_invocation_record() {
    // `failing` hands its failure record to `relay` (invoked
    // asynchronously, as Lambda does); the probe echoes the record, and
    // relay's own success record lands in a queue where the test reads it.
    let text = r#"
[stack]
name = "function-destinations"
[ports]
api = 0
websocket = 0
aws = 0

[functions.failing]
crate = "woocom-probe"
maximum_retry_attempts = 0
on_failure = "function:relay"

[functions.relay]
crate = "woocom-probe"
maximum_retry_attempts = 0
on_success = "queue:relayed"

[queues.relayed]
"#;
    let m =
        woocom_dev::manifest::Manifest::parse(&common::fixture("function-destinations.toml"), text)
            .expect("manifest");
    let stack = Stack::start(StackOptions::new(m).free_ports().quiet_build())
        .await
        .expect("stack starts");
    let lambda = common::lambda_client(&stack).await;
    let out = lambda
        .invoke()
        .function_name("failing")
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(
            r#"{"probe":"error"}"#,
        ))
        .send()
        .await
        .expect("event invoke");
    let failed_id = aws_sdk_lambda::operation::RequestId::request_id(&out)
        .expect("request id")
        .to_owned();
    let sqs = client(&stack).await;
    let q = url(&sqs, "relayed").await;
    let got = sqs
        .receive_message()
        .queue_url(&q)
        .wait_time_seconds(15)
        .send()
        .await
        .expect("receive");
    let [message] = got.messages() else {
        panic!("one success record of relay, got {:?}", got.messages());
    };
    let outer: Value = serde_json::from_str(message.body().expect("body")).expect("JSON record");
    assert_eq!(outer["requestContext"]["condition"], "Success");
    assert_eq!(
        outer["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:relay:$LATEST"
    );
    // What relay was invoked with: failing's invocation record.
    let record = &outer["requestPayload"];
    assert_eq!(record["version"], "1.0");
    assert_eq!(record["requestContext"]["requestId"], failed_id.as_str());
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(
        record["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:failing:$LATEST"
    );
    assert_eq!(record["requestPayload"]["probe"], "error");
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    stack.shutdown().await;
}
