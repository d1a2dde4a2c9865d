//! Each `dev.toml` section edited while the stack runs: applied live by the
//! same code that configures the stack at start (`stack::apply`), or
//! reported as needing a restart, naming the line. Functions and routes
//! have their own tests in `reload.rs`.

mod dynamodb_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dynamodb_support::{TempDir, dynamodb, http};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use woocom_dev::manifest::Manifest;
use woocom_dev::reload::ReloadEvent;
use woocom_dev::{Stack, StackOptions};

/// A stack run from a dev.toml of its own (in the build's scratch folder,
/// inside the workspace, so the probe builds as it does for the fixtures).
struct Live {
    dir: TempDir,
    stack: Stack,
    events: broadcast::Receiver<ReloadEvent>,
}

impl Live {
    async fn start(label: &str, manifest: &str) -> Live {
        let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = TempDir(scratch.join(format!(
            "live-{label}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        )));
        std::fs::create_dir_all(&dir.0).expect("scratch folder");
        std::fs::write(dir.join("dev.toml"), manifest).expect("write dev.toml");
        let manifest = Manifest::load(&dir.join("dev.toml")).expect("manifest");
        let stack = Stack::start(
            StackOptions::new(manifest)
                .free_ports()
                .quiet_build()
                .watch(),
        )
        .await
        .expect("stack starts");
        let events = stack.reload_events();
        Live { dir, stack, events }
    }

    /// Writes dev.toml and waits for hot reload's verdict on it.
    async fn edit(&mut self, manifest: &str) -> ReloadEvent {
        std::fs::write(self.dir.join("dev.toml"), manifest).expect("write dev.toml");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = tokio::time::timeout(left, self.events.recv())
                .await
                .expect("a reload event in time")
                .expect("event channel open");
            if matches!(
                event,
                ReloadEvent::ManifestApplied { .. } | ReloadEvent::ManifestRejected { .. }
            ) {
                return event;
            }
        }
    }

    async fn applied(&mut self, manifest: &str) -> (Vec<String>, Vec<String>) {
        match self.edit(manifest).await {
            ReloadEvent::ManifestApplied {
                changes,
                needs_restart,
            } => (changes, needs_restart),
            other => panic!("expected the edit to apply, got {other:?}"),
        }
    }
}

const PORTS: &str = "[ports]\napi = 0\nwebsocket = 0\naws = 0\nfrontend = 0\n";

async fn ws_reply(url: &str, message: &str) -> Value {
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket connects");
    socket
        .send(Message::text(message.to_owned()))
        .await
        .expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
                Some(Ok(_)) => continue,
                other => panic!("no reply: {other:?}"),
            }
        }
    })
    .await
    .expect("a reply in time");
    let _ = socket.close(None).await;
    serde_json::from_str(&reply).expect("JSON reply")
}

#[tokio::test]
async fn websocket_routes_added_to_dev_toml_answer_without_a_restart() {
    let base = format!(
        "[stack]\nname = \"live-ws\"\n{PORTS}\n[functions.ws]\ncrate = \"woocom-probe\"\n\n[websocket]\nroute_selection_expression = \"$request.body.action\"\n"
    );
    let mut live = Live::start("ws", &base).await;
    let url = live.stack.urls().websocket.clone();
    let before = ws_reply(&url, r#"{"action":"echo"}"#).await;
    assert_eq!(before["message"], "Forbidden", "{before}");

    let with_route = format!(
        "{base}\n[[websocket.routes]]\nroute_key = \"echo\"\nfunction = \"ws\"\ntwo_way = true\n"
    );
    let (changes, _) = live.applied(&with_route).await;
    assert!(
        changes.iter().any(|c| c.contains("WebSocket")),
        "{changes:?}"
    );
    let after = ws_reply(&url, r#"{"action":"echo"}"#).await;
    assert_eq!(after["requestContext"]["routeKey"], "echo", "{after}");
    live.stack.shutdown().await;
}

/// The batches the probe logged: each the records' `id`s.
fn batches(log: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let line: Value = serde_json::from_str(l).expect("log line is JSON");
            line["records"]
                .as_array()
                .map(|records| {
                    records
                        .iter()
                        .filter_map(|r| r["dynamodb"]["NewImage"]["id"]["S"].as_str())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

async fn wait_for(log: &std::path::Path, ids: usize) -> Vec<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = batches(log);
        if seen.iter().map(Vec::len).sum::<usize>() >= ids {
            return seen;
        }
        assert!(Instant::now() < deadline, "only {seen:?} delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn put(db: &aws_sdk_dynamodb::Client, id: &str) {
    db.put_item()
        .table_name("items")
        .item(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(id.to_owned()),
        )
        .send()
        .await
        .expect("put");
}

#[tokio::test]
async fn subscriptions_added_changed_and_removed_in_dev_toml_take_effect() {
    let scratch = TempDir::new("live-subscriptions-log");
    let log = scratch.join("batches.log");
    let base = format!(
        "[stack]\nname = \"live-subs\"\n{PORTS}\n[functions.relay]\ncrate = \"woocom-probe\"\nenv = {{ PROBE_STREAM_LOG = \"{}\" }}\n\n[tables.items]\npartition_key = {{ name = \"id\" }}\nstream = \"NEW_IMAGE\"\n\n[streams]\nretry_backoff_ms = 10\n",
        log.display()
    );
    let subscription = |batch: u32, window: u32| {
        format!(
            "\n[[subscriptions]]\ntable = \"items\"\nfunction = \"relay\"\nstarting_position = \"TRIM_HORIZON\"\nbatch_size = {batch}\nmaximum_batching_window_in_seconds = {window}\n"
        )
    };
    let mut live = Live::start("subs", &base).await;
    let db = dynamodb(&live.stack.urls().aws).await;
    put(&db, "a").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(batches(&log).is_empty(), "nothing subscribed yet");

    // A new subscription delivers, from the trim horizon.
    let (changes, _) = live.applied(&format!("{base}{}", subscription(1, 0))).await;
    assert!(
        changes
            .iter()
            .any(|c| c == "subscription relay-items started"),
        "{changes:?}"
    );
    assert_eq!(wait_for(&log, 1).await, [["a"]]);

    // A changed batch size and window are used, from the checkpoint.
    let (changes, _) = live
        .applied(&format!("{base}{}", subscription(10, 1)))
        .await;
    assert!(
        changes.iter().any(|c| c.contains("relay-items restarted")),
        "{changes:?}"
    );
    for id in ["b", "c", "d"] {
        put(&db, id).await;
    }
    let seen = wait_for(&log, 4).await;
    assert_eq!(seen, [vec!["a"], vec!["b", "c", "d"]], "one batch of three");

    // A removed subscription stops.
    let (changes, _) = live.applied(&base).await;
    assert!(
        changes
            .iter()
            .any(|c| c == "subscription relay-items stopped"),
        "{changes:?}"
    );
    put(&db, "e").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(batches(&log).len(), 2, "nothing delivered after removal");
    assert!(
        live.stack
            .event_source_mappings()
            .subscriptions()
            .is_empty()
    );
    live.stack.shutdown().await;
}

#[tokio::test]
async fn streams_settings_edited_restart_the_mappings_from_their_checkpoint() {
    let scratch = TempDir::new("live-streams-log");
    let log = scratch.join("batches.log");
    let base = format!(
        "[stack]\nname = \"live-streams\"\n{PORTS}\n[functions.relay]\ncrate = \"woocom-probe\"\nenv = {{ PROBE_STREAM_LOG = \"{}\" }}\n\n[tables.items]\npartition_key = {{ name = \"id\" }}\nstream = \"NEW_IMAGE\"\n\n[[subscriptions]]\ntable = \"items\"\nfunction = \"relay\"\nstarting_position = \"TRIM_HORIZON\"\n",
        log.display()
    );
    let mut live = Live::start("streams", &base).await;
    let db = dynamodb(&live.stack.urls().aws).await;
    put(&db, "a").await;
    wait_for(&log, 1).await;
    let (changes, _) = live
        .applied(&format!("{base}\n[streams]\nretry_backoff_ms = 5\n"))
        .await;
    assert!(
        changes.iter().any(|c| c.contains("relay-items restarted")),
        "{changes:?}"
    );
    put(&db, "b").await;
    // Delivered once each: the restart resumed from the checkpoint.
    assert_eq!(wait_for(&log, 2).await, [["a"], ["b"]]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(batches(&log).len(), 2);
    live.stack.shutdown().await;
}

#[tokio::test]
async fn ports_stack_and_frontend_edits_say_they_need_a_restart_and_name_the_line() {
    let base = format!("[stack]\nname = \"live-restart\"\n{PORTS}");
    let mut live = Live::start("restart", &base).await;
    let aws = live.stack.urls().aws.clone();
    let edited = "[stack]\nname = \"renamed\"\n\n[ports]\napi = 0\nwebsocket = 0\naws = 4999\nfrontend = 0\n\n[frontend]\ndir = \"site\"\n";
    let (_, needs_restart) = live.applied(edited).await;
    let path = live.dir.join("dev.toml");
    for (section, line) in [("stack", 1), ("ports", 4), ("frontend", 10)] {
        let expected = format!("{}:{line}: [{section}] changed", path.display());
        assert!(
            needs_restart
                .iter()
                .any(|m| m.starts_with(&expected)
                    && m.contains("applies at the next `woocom-dev up`")),
            "no `{expected}` in {needs_restart:?}"
        );
    }
    // The running stack keeps its values: same endpoint, same name.
    let health = http()
        .get(format!("{aws}/_woocom/health"))
        .send()
        .await
        .expect("the AWS endpoint still answers where it was");
    assert_eq!(health.status(), 200);
    live.stack.shutdown().await;
}

#[tokio::test]
async fn tables_queues_and_function_settings_added_to_dev_toml_apply_without_a_restart() {
    let base = format!(
        "[stack]\nname = \"live-resources\"\n{PORTS}\n[functions.probe]\ncrate = \"woocom-probe\"\n"
    );
    let mut live = Live::start("resources", &base).await;
    let aws = live.stack.urls().aws.clone();
    let edited = format!(
        "[stack]\nname = \"live-resources\"\n{PORTS}\n[functions.probe]\ncrate = \"woocom-probe\"\nenv = {{ PROBE_COLOR = \"blue\" }}\n\n[tables.items]\npartition_key = {{ name = \"id\" }}\n\n[queues.jobs]\nvisibility_timeout_seconds = 45\n"
    );
    let (changes, needs_restart) = live.applied(&edited).await;
    assert!(needs_restart.is_empty(), "{needs_restart:?}");
    for expected in [
        "created table items",
        "created queue jobs",
        "function probe settings",
    ] {
        assert!(
            changes.iter().any(|c| c == expected),
            "no `{expected}` in {changes:?}"
        );
    }
    let db = dynamodb(&aws).await;
    let tables = db.list_tables().send().await.expect("list tables");
    assert_eq!(tables.table_names(), ["items"]);
    let sqs = aws_sdk_sqs::Client::new(&dynamodb_support::sdk::config(&aws).await);
    let a = sqs
        .get_queue_attributes()
        .queue_url(format!("{aws}/000000000000/jobs"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .expect("the new queue answers");
    assert_eq!(
        a.attributes().expect("attributes")
            [&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout],
        "45"
    );
    // New instances of the function get its new settings.
    let lambda = aws_sdk_lambda::Client::new(&dynamodb_support::sdk::config(&aws).await);
    let out = lambda
        .invoke()
        .function_name("probe")
        .payload(aws_sdk_lambda::primitives::Blob::new(r#"{"probe":"echo"}"#))
        .send()
        .await
        .expect("invoke");
    let report: Value =
        serde_json::from_slice(out.payload().expect("payload").as_ref()).expect("JSON");
    assert_eq!(report["env"]["PROBE_COLOR"], "blue", "{report}");
    live.stack.shutdown().await;
}

#[tokio::test]
async fn buckets_added_to_dev_toml_get_their_cors_rules_and_notifications_without_a_restart() {
    let base = format!("[stack]\nname = \"live-buckets\"\n{PORTS}\n[queues.removed]\n");
    let mut live = Live::start("buckets", &base).await;
    let with_bucket = format!(
        "{base}\n[buckets.live-photos]\ncors_rule = [{{ allowed_origins = [\"http://localhost:4003\"], allowed_methods = [\"PUT\"] }}]\nqueue = [{{ queue = \"removed\", events = [\"s3:ObjectRemoved:*\"] }}]\n"
    );
    let (changes, needs_restart) = live.applied(&with_bucket).await;
    assert!(needs_restart.is_empty(), "{needs_restart:?}");
    assert!(
        changes.iter().any(|c| c == "created bucket live-photos"),
        "{changes:?}"
    );

    let urls = live.stack.urls().clone();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&urls.s3)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "AKIALIVE",
            woocom_dev::s3::LOCAL_SECRET_ACCESS_KEY,
            None,
            None,
            "live",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::new(&config);
    let cors = s3
        .get_bucket_cors()
        .bucket("live-photos")
        .send()
        .await
        .expect("the bucket and its CORS rules exist");
    assert_eq!(cors.cors_rules()[0].allowed_methods(), ["PUT"]);
    s3.put_object()
        .bucket("live-photos")
        .key("a.jpg")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("put");
    s3.delete_object()
        .bucket("live-photos")
        .key("a.jpg")
        .send()
        .await
        .expect("delete");
    let sqs = aws_sdk_sqs::Client::new(&dynamodb_support::sdk_config(&urls.aws, 1).await);
    let got = sqs
        .receive_message()
        .queue_url(format!("{}/000000000000/removed", urls.aws))
        .wait_time_seconds(5)
        .send()
        .await
        .expect("receive");
    let body = got.messages()[0].body().expect("body");
    assert!(
        body.contains("\"eventName\":\"ObjectRemoved:Delete\""),
        "{body}"
    );

    // The CORS rules removed from dev.toml are gone; the bucket stays.
    let without_cors = with_bucket.replace(
        "cors_rule = [{ allowed_origins = [\"http://localhost:4003\"], allowed_methods = [\"PUT\"] }]\n",
        "",
    );
    let (changes, _) = live.applied(&without_cors).await;
    assert!(
        changes
            .iter()
            .any(|c| c == "bucket live-photos CORS rules removed"),
        "{changes:?}"
    );
    let e = s3
        .get_bucket_cors()
        .bucket("live-photos")
        .send()
        .await
        .expect_err("no CORS rules");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&e),
        Some("NoSuchCORSConfiguration")
    );

    // A notification naming a missing queue is rejected with its line.
    let bad = without_cors.replace("queue = \"removed\"", "queue = \"nope\"");
    match live.edit(&bad).await {
        ReloadEvent::ManifestRejected { error, .. } => {
            assert!(error.contains("no queue `nope`"), "{error}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}
