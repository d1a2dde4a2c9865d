//! EventBridge through `aws-sdk-eventbridge` (and `aws-sdk-sqs` to see
//! where events land) against an in-process stack
//! (tests/fixtures/eventbridge.toml): buses and rules from dev.toml and the
//! API, PutEvents with its per-entry answers, delivery to queues (FIFO
//! included), a function, a topic and another bus, input paths and
//! transformers, dead-letter queues, TestEventPattern, and firing a
//! scheduled rule.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::{DeadLetterConfig, PutEventsRequestEntry, RetryPolicy, Target};
use common::{TempDir, manifest, sdk};
use serde_json::{Value, json};
use woocom_dev::{Stack, StackOptions};

const ACCOUNT: &str = "000000000000";

async fn start(events_log: Option<&std::path::Path>) -> Stack {
    let mut m = manifest("eventbridge.toml");
    if let Some(log) = events_log
        && let Some(f) = m.functions.get_mut("listener")
    {
        f.env
            .insert("PROBE_EVENTS_LOG".into(), log.display().to_string());
    }
    Stack::start(StackOptions::new(m).free_ports().quiet_build())
        .await
        .expect("stack starts")
}

async fn clients(stack: &Stack) -> (aws_sdk_eventbridge::Client, aws_sdk_sqs::Client) {
    let config = sdk::config(&stack.urls().aws).await;
    (
        aws_sdk_eventbridge::Client::new(&config),
        aws_sdk_sqs::Client::new(&config),
    )
}

fn entry(bus: &str, detail_type: &str, detail: Value) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source("woocom.orders")
        .detail_type(detail_type)
        .detail(detail.to_string())
        .build()
}

/// Receives up to `want` messages of `queue` within `wait` (deleting them).
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
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
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

fn body(m: &aws_sdk_sqs::types::Message) -> Value {
    serde_json::from_str(m.body().expect("body")).expect("JSON body")
}

#[tokio::test]
async fn buses_and_rules_come_from_dev_toml_and_the_api() {
    let stack = start(None).await;
    let (events, _) = clients(&stack).await;

    let buses = events.list_event_buses().send().await.expect("buses");
    let names: Vec<&str> = buses
        .event_buses()
        .iter()
        .filter_map(|b| b.name())
        .collect();
    assert_eq!(names, ["default", "shop"]);
    let shop = events
        .describe_event_bus()
        .name("shop")
        .send()
        .await
        .expect("describe bus");
    assert_eq!(
        shop.arn(),
        Some(format!("arn:aws:events:us-east-1:{ACCOUNT}:event-bus/shop").as_str())
    );
    assert_eq!(shop.description(), Some("facts of the shop's services"));

    let rule = events
        .describe_rule()
        .event_bus_name("shop")
        .name("large-orders")
        .send()
        .await
        .expect("describe rule");
    assert_eq!(
        rule.arn(),
        Some(format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/shop/large-orders").as_str())
    );
    assert_eq!(rule.state().map(|s| s.as_str()), Some("ENABLED"));
    assert!(
        rule.event_pattern()
            .unwrap_or_default()
            .contains("OrderPlaced")
    );
    let targets = events
        .list_targets_by_rule()
        .event_bus_name("shop")
        .rule("large-orders")
        .send()
        .await
        .expect("targets");
    let ids: Vec<&str> = targets.targets().iter().map(|t| t.id()).collect();
    assert_eq!(
        ids,
        [
            "orders",
            "transformed",
            "grouped.fifo",
            "listener",
            "order-topic"
        ]
    );
    let fifo = &targets.targets()[2];
    assert_eq!(
        fifo.sqs_parameters().and_then(|p| p.message_group_id()),
        Some("orders")
    );
    assert_eq!(fifo.input_path(), Some("$.detail"));
    let listed = events.list_rules().send().await.expect("default rules");
    let rules: Vec<&str> = listed.rules().iter().filter_map(|r| r.name()).collect();
    assert_eq!(rules, ["forward", "tick"]);

    // The API: a rule, its targets, and AWS's errors.
    let arn = events
        .put_rule()
        .name("audit")
        .event_pattern(r#"{"source": ["woocom.audit"]}"#)
        .send()
        .await
        .expect("put rule")
        .rule_arn()
        .map(str::to_owned);
    assert_eq!(
        arn.as_deref(),
        Some(format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/audit").as_str())
    );
    let put = events
        .put_targets()
        .rule("audit")
        .targets(
            Target::builder()
                .id("q")
                .arn(format!("arn:aws:sqs:us-east-1:{ACCOUNT}:orders"))
                .build()
                .expect("target"),
        )
        .targets(
            Target::builder()
                .id("bad")
                .arn(format!("arn:aws:sqs:us-east-1:{ACCOUNT}:orders"))
                .input("not json")
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("put targets");
    assert_eq!(put.failed_entry_count(), 1);
    assert_eq!(put.failed_entries()[0].target_id(), Some("bad"));
    let err = events
        .delete_rule()
        .name("audit")
        .send()
        .await
        .expect_err("a rule with targets");
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    assert_eq!(
        err.message(),
        Some("Rule can't be deleted since it has targets.")
    );
    events
        .disable_rule()
        .name("audit")
        .send()
        .await
        .expect("disable");
    let described = events
        .describe_rule()
        .name("audit")
        .send()
        .await
        .expect("describe");
    assert_eq!(described.state().map(|s| s.as_str()), Some("DISABLED"));
    events
        .remove_targets()
        .rule("audit")
        .ids("q")
        .send()
        .await
        .expect("remove");
    events
        .delete_rule()
        .name("audit")
        .send()
        .await
        .expect("delete");

    let err = events
        .describe_rule()
        .name("nope")
        .send()
        .await
        .expect_err("no such rule");
    assert_eq!(err.code(), Some("ResourceNotFoundException"), "{err:?}");
    assert_eq!(
        err.message(),
        Some("Rule nope does not exist on EventBus default.")
    );
    let err = events
        .put_rule()
        .name("bad")
        .event_pattern(r#"{"source": "not-an-array"}"#)
        .send()
        .await
        .expect_err("bad pattern");
    assert_eq!(err.code(), Some("InvalidEventPatternException"), "{err:?}");
    assert!(
        err.message()
            .unwrap_or_default()
            .starts_with("Event pattern is not valid. Reason:")
    );
    let err = events
        .put_rule()
        .name("x")
        .event_bus_name("nope")
        .event_pattern(r#"{"source": ["a"]}"#)
        .send()
        .await
        .expect_err("no such bus");
    assert_eq!(err.message(), Some("Event bus nope does not exist."));
    let err = events
        .create_event_bus()
        .name("shop")
        .send()
        .await
        .expect_err("exists");
    assert_eq!(
        err.code(),
        Some("ResourceAlreadyExistsException"),
        "{err:?}"
    );

    let matched = events
        .test_event_pattern()
        .event_pattern(r#"{"detail": {"total": [{"numeric": [">", 100]}]}}"#)
        .event(
            json!({
                "id": "1", "account": ACCOUNT, "source": "s", "time": "2026-12-05T00:00:00Z",
                "region": "us-east-1", "resources": [], "detail-type": "t", "detail": {"total": 150}
            })
            .to_string(),
        )
        .send()
        .await
        .expect("test pattern");
    assert!(matched.result());
    let err = events
        .test_event_pattern()
        .event_pattern(r#"{"source": ["s"]}"#)
        .event(r#"{"source": "s"}"#)
        .send()
        .await
        .expect_err("an event without its fields");
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    stack.shutdown().await;
}

#[tokio::test]
async fn put_events_reaches_every_target_with_its_input() {
    let dir = TempDir::new("events-log");
    let log = dir.join("events.jsonl");
    let stack = start(Some(&log)).await;
    let (events, sqs) = clients(&stack).await;

    let out = events
        .put_events()
        .entries(entry(
            "shop",
            "OrderPlaced",
            json!({"orderId": "o-1", "total": 150}),
        ))
        .entries(entry(
            "shop",
            "OrderPlaced",
            json!({"orderId": "o-2", "total": 50}),
        ))
        .send()
        .await
        .expect("put events");
    assert_eq!(out.failed_entry_count(), 0);
    let id = out.entries()[0].event_id().expect("event id").to_owned();

    // The event as it is, once: o-2 is under the pattern's threshold.
    let got = drain(&sqs, &stack, "orders", 2, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let event = body(&got[0]);
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["version"], "0");
    assert_eq!(event["source"], "woocom.orders");
    assert_eq!(event["detail-type"], "OrderPlaced");
    assert_eq!(event["account"], ACCOUNT);
    assert_eq!(event["region"], "us-east-1");
    assert_eq!(event["resources"], json!([]));
    assert_eq!(event["detail"], json!({"orderId": "o-1", "total": 150}));
    assert!(
        event["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{event}"
    );

    let got = drain(&sqs, &stack, "transformed", 1, Duration::from_secs(5)).await;
    assert_eq!(
        body(&got[0]),
        json!({"order": "o-1", "total": 150, "rule": "large-orders"})
    );
    let got = drain(&sqs, &stack, "grouped.fifo", 1, Duration::from_secs(5)).await;
    assert_eq!(body(&got[0]), json!({"orderId": "o-1", "total": 150}));
    let attributes = got[0].attributes().expect("system attributes");
    assert_eq!(
        attributes
            .get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
            .map(String::as_str),
        Some("orders")
    );
    let got = drain(&sqs, &stack, "from-topic", 1, Duration::from_secs(5)).await;
    assert_eq!(body(&got[0])["id"], id.as_str());

    // The function got the event (asynchronously), in the shape
    // aws_lambda_events reads.
    let deadline = Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if !text.is_empty() || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let line: Value =
        serde_json::from_str(lines.lines().next().expect("an invocation")).expect("JSON");
    assert_eq!(line["event"]["id"], id.as_str());
    assert_eq!(lines.lines().count(), 1, "{lines}");
    stack.shutdown().await;
}

#[tokio::test]
async fn put_events_answers_each_entry_as_eventbridge_does() {
    let stack = start(None).await;
    let (events, _) = clients(&stack).await;
    let out = events
        .put_events()
        .entries(entry("shop", "OrderPlaced", json!({"orderId": "o-1"})))
        .entries(
            PutEventsRequestEntry::builder()
                .source("s")
                .detail_type("t")
                .build(),
        )
        .entries(
            PutEventsRequestEntry::builder()
                .source("s")
                .detail_type("t")
                .detail("[1, 2]")
                .build(),
        )
        .entries(
            PutEventsRequestEntry::builder()
                .detail_type("t")
                .detail("{}")
                .build(),
        )
        .entries(entry("nope", "t", json!({})))
        .send()
        .await
        .expect("put events");
    // An event for a bus that does not exist is accepted and dropped, as
    // EventBridge does (aws/aws-cli#9186).
    assert_eq!(out.failed_entry_count(), 3);
    let e = out.entries();
    assert!(e[0].event_id().is_some());
    assert_eq!(e[1].error_code(), Some("InvalidArgument"));
    assert_eq!(
        e[1].error_message(),
        Some("Parameter Detail is not valid. Reason: Detail is a required argument.")
    );
    assert_eq!(e[2].error_code(), Some("MalformedDetail"));
    assert_eq!(e[2].error_message(), Some("Detail is malformed."));
    assert_eq!(
        e[3].error_message(),
        Some("Parameter Source is not valid. Reason: Source is a required argument.")
    );
    assert!(e[4].event_id().is_some(), "{:?}", e[4]);
    assert_eq!(e[4].error_code(), None);

    let mut too_many = events.put_events();
    for i in 0..11 {
        too_many = too_many.entries(entry("default", "t", json!({ "i": i })));
    }
    let err = too_many.send().await.expect_err("eleven entries");
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_rule_forwards_to_another_bus() {
    let stack = start(None).await;
    let (events, sqs) = clients(&stack).await;
    let out = events
        .put_events()
        .entries(entry(
            "default",
            "OrderPlaced",
            json!({"orderId": "o-9", "total": 500}),
        ))
        .send()
        .await
        .expect("put events");
    let id = out.entries()[0].event_id().expect("id").to_owned();
    let got = drain(&sqs, &stack, "orders", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        body(&got[0])["id"],
        id.as_str(),
        "the same event, on the shop's bus"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn undeliverable_events_go_to_the_dead_letter_queue_with_eventbridges_attributes() {
    let stack = start(None).await;
    let (events, sqs) = clients(&stack).await;
    events
        .put_rule()
        .name("lost")
        .event_pattern(r#"{"detail-type": ["Lost"]}"#)
        .send()
        .await
        .expect("rule");
    let dlq_arn = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:events-dlq");
    events
        .put_targets()
        .rule("lost")
        .targets(
            Target::builder()
                .id("gone")
                .arn(format!("arn:aws:sqs:us-east-1:{ACCOUNT}:no-such-queue"))
                .dead_letter_config(DeadLetterConfig::builder().arn(&dlq_arn).build())
                .retry_policy(RetryPolicy::builder().maximum_retry_attempts(3).build())
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("targets");
    let out = events
        .put_events()
        .entries(entry("default", "Lost", json!({"n": 1})))
        .send()
        .await
        .expect("put");
    let id = out.entries()[0].event_id().expect("id").to_owned();
    let got = drain(&sqs, &stack, "events-dlq", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(body(&got[0])["id"], id.as_str());
    let attrs = got[0].message_attributes().expect("attributes");
    let attr = |k: &str| {
        attrs
            .get(k)
            .and_then(|v| v.string_value())
            .unwrap_or_default()
    };
    assert_eq!(
        attr("RULE_ARN"),
        format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/lost")
    );
    assert_eq!(
        attr("TARGET_ARN"),
        format!("arn:aws:sqs:us-east-1:{ACCOUNT}:no-such-queue")
    );
    assert_eq!(attr("ERROR_CODE"), "RESOURCE_NOT_FOUND");
    assert!(!attr("ERROR_MESSAGE").is_empty());
    // A target that does not exist is not retried.
    assert_eq!(attr("RETRY_ATTEMPTS"), "0");

    // `woocom-dev events` lists the failure.
    let view: Value = common::http()
        .get(format!("{}/_woocom/events", stack.urls().aws))
        .send()
        .await
        .expect("events view")
        .json()
        .await
        .expect("json");
    let failures = view["failures"].as_array().expect("failures");
    assert!(
        failures
            .iter()
            .any(|f| f["eventId"] == id.as_str() && f["deadLetterArn"] == dlq_arn.as_str()),
        "{view}"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_scheduled_rule_can_be_fired_now() {
    let stack = start(None).await;
    let (_, sqs) = clients(&stack).await;
    let fired: Value = common::http()
        .post(format!(
            "{}/_woocom/events/fire?rule=tick",
            stack.urls().aws
        ))
        .send()
        .await
        .expect("fire")
        .json()
        .await
        .expect("json");
    let got = drain(&sqs, &stack, "ticks", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    let event = body(&got[0]);
    assert_eq!(event["id"], fired["eventId"]);
    assert_eq!(event["detail-type"], "Scheduled Event");
    assert_eq!(event["source"], "aws.events");
    assert_eq!(
        event["resources"],
        json!([format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/tick")])
    );
    assert_eq!(event["detail"], json!({}));
    let missing = common::http()
        .post(format!(
            "{}/_woocom/events/fire?rule=nope",
            stack.urls().aws
        ))
        .send()
        .await
        .expect("fire");
    assert_eq!(missing.status(), 404);
    stack.shutdown().await;
}

#[tokio::test]
async fn archived_events_are_replayed_to_the_rules_and_survive_a_restart() {
    let dir = TempDir::new("events-archive");
    let options = || {
        let mut o = StackOptions::new(manifest("eventbridge.toml"))
            .free_ports()
            .quiet_build();
        o.data = woocom_dev::dynamodb::DataLocation::Dir(dir.join("data"));
        o
    };
    let stack = Stack::start(options()).await.expect("stack starts");
    let (events, sqs) = clients(&stack).await;
    let bus_arn = format!("arn:aws:events:us-east-1:{ACCOUNT}:event-bus/shop");
    let archive = events
        .create_archive()
        .archive_name("orders-archive")
        .event_source_arn(&bus_arn)
        .event_pattern(r#"{"detail-type": ["OrderPlaced"]}"#)
        .retention_days(7)
        .send()
        .await
        .expect("create archive");
    let archive_arn = archive.archive_arn().expect("arn").to_owned();
    let before = aws_smithy_types_now(-60);
    let out = events
        .put_events()
        .entries(entry(
            "shop",
            "OrderPlaced",
            json!({"orderId": "o-1", "total": 300}),
        ))
        .entries(entry("shop", "OrderShipped", json!({"orderId": "o-1"})))
        .send()
        .await
        .expect("put");
    let id = out.entries()[0].event_id().expect("id").to_owned();
    assert_eq!(
        drain(&sqs, &stack, "orders", 1, Duration::from_secs(5))
            .await
            .len(),
        1
    );
    let described = events
        .describe_archive()
        .archive_name("orders-archive")
        .send()
        .await
        .expect("describe archive");
    assert_eq!(
        described.event_count(),
        1,
        "only what the archive's pattern matches"
    );
    // A rule made through the API, kept across the restart.
    events
        .put_rule()
        .name("kept")
        .event_bus_name("shop")
        .event_pattern(r#"{"source": ["kept"]}"#)
        .send()
        .await
        .expect("rule");
    stack.shutdown().await;

    let stack = Stack::start(options()).await.expect("stack restarts");
    let (events, sqs) = clients(&stack).await;
    let described = events
        .describe_rule()
        .name("kept")
        .event_bus_name("shop")
        .send()
        .await
        .expect("the rule is kept");
    assert_eq!(described.event_pattern(), Some(r#"{"source": ["kept"]}"#));
    let described = events
        .describe_archive()
        .archive_name("orders-archive")
        .send()
        .await
        .expect("the archive is kept");
    assert_eq!(described.event_count(), 1);

    events
        .start_replay()
        .replay_name("again")
        .event_source_arn(&archive_arn)
        .event_start_time(before)
        .event_end_time(aws_smithy_types_now(60))
        .destination(
            aws_sdk_eventbridge::types::ReplayDestination::builder()
                .arn(&bus_arn)
                .filter_arns(format!(
                    "arn:aws:events:us-east-1:{ACCOUNT}:rule/shop/large-orders"
                ))
                .build()
                .expect("destination"),
        )
        .send()
        .await
        .expect("start replay");
    let got = drain(&sqs, &stack, "orders", 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    let replayed = body(&got[0]);
    assert_eq!(replayed["id"], id.as_str());
    assert_eq!(replayed["replay-name"], "again");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = events
            .describe_replay()
            .replay_name("again")
            .send()
            .await
            .expect("describe replay");
        if r.state().map(|s| s.as_str()) == Some("COMPLETED") {
            assert!(r.event_last_replayed_time().is_some());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replay did not complete: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = events
        .start_replay()
        .replay_name("elsewhere")
        .event_source_arn(&archive_arn)
        .event_start_time(before)
        .event_end_time(aws_smithy_types_now(60))
        .destination(
            aws_sdk_eventbridge::types::ReplayDestination::builder()
                .arn(format!(
                    "arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"
                ))
                .build()
                .expect("destination"),
        )
        .send()
        .await
        .expect_err("another bus");
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    // Replayed events are not archived again.
    let described = events
        .describe_archive()
        .archive_name("orders-archive")
        .send()
        .await
        .expect("describe archive");
    assert_eq!(described.event_count(), 1);
    stack.shutdown().await;
}

/// Now plus `seconds`, as the SDK's timestamps.
fn aws_smithy_types_now(seconds: i64) -> aws_sdk_eventbridge::primitives::DateTime {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    aws_sdk_eventbridge::primitives::DateTime::from_secs(now + seconds)
}
