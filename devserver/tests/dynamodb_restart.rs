//! DynamoDB data on disk: `woocom-dev up` keeps tables under the project,
//! survives `kill -9` (acknowledged writes stay, transactions stay whole),
//! reconciles dev.toml changes, and `woocom-dev reset` starts clean.

mod dynamodb_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use dynamodb_support::{TempDir, dynamodb, fixture};
use woocom_dev::dynamodb::DataLocation;
use woocom_dev::manifest::Manifest;
use woocom_dev::{Stack, StackOptions};

const BIN: &str = env!("CARGO_BIN_EXE_woocom-dev");

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// A project folder with the DynamoDB fixture as its dev.toml.
fn project(label: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(label);
    let manifest = dir.0.join("dev.toml");
    std::fs::copy(fixture("dynamodb.toml"), &manifest).expect("copy fixture");
    (dir, manifest)
}

struct Up {
    child: Child,
    aws: String,
}

/// Starts `woocom-dev up` and waits (at most 60 s) for its ready file.
fn up(manifest: &Path) -> Up {
    let ready = manifest.with_file_name("ready.json");
    let _ = std::fs::remove_file(&ready);
    let mut child = Command::new(BIN)
        .arg("-m")
        .arg(manifest)
        .args(["up", "--free-ports", "--ready-file"])
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("woocom-dev starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready) {
            let v: serde_json::Value = serde_json::from_str(&text).expect("ready file is JSON");
            let aws = v["aws"].as_str().expect("aws url").to_owned();
            return Up { child, aws };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("woocom-dev up exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "woocom-dev up not ready within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Up {
    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(manifest: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("-m")
        .arg(manifest)
        .args(args)
        .output()
        .expect("woocom-dev runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_and_transactions_stay_whole() {
    let (_dir, manifest) = project("kill9");
    let server = up(&manifest);
    let db = dynamodb(&server.aws).await;
    for i in 0..50 {
        db.put_item()
            .table_name("products")
            .item("sku", s(&format!("sku-{i}")))
            .item("stock", AttributeValue::N(i.to_string()))
            .send()
            .await
            .expect("acknowledged");
    }
    // Writers keep moving two counters together while the server is killed.
    for id in ["a", "b"] {
        db.put_item()
            .table_name("counters")
            .item("id", s(id))
            .item("n", AttributeValue::N("0".into()))
            .send()
            .await
            .expect("put");
    }
    let bump = |db: aws_sdk_dynamodb::Client| async move {
        let update = |id: &str| {
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name("counters")
                        .key("id", s(id))
                        .update_expression("SET n = n + :one")
                        .expression_attribute_values(":one", AttributeValue::N("1".into()))
                        .build()
                        .expect("update"),
                )
                .build()
        };
        let mut acknowledged = 0u64;
        loop {
            let sent = db
                .transact_write_items()
                .transact_items(update("a"))
                .transact_items(update("b"))
                .send()
                .await;
            match sent {
                Ok(_) => acknowledged += 1,
                Err(_) => return acknowledged,
            }
        }
    };
    let writers: Vec<_> = (0..4).map(|_| tokio::spawn(bump(db.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill_9();
    let mut acknowledged = 0;
    for w in writers {
        acknowledged += w.await.expect("writer");
    }
    assert!(
        acknowledged > 0,
        "some transactions were acknowledged before the kill"
    );

    let server = up(&manifest);
    let db = dynamodb(&server.aws).await;
    for i in 0..50 {
        let got = db
            .get_item()
            .table_name("products")
            .key("sku", s(&format!("sku-{i}")))
            .send()
            .await
            .expect("get");
        assert!(got.item().is_some(), "sku-{i} lost by kill -9");
    }
    let count = |id: &'static str| {
        let db = db.clone();
        async move {
            let got = db
                .get_item()
                .table_name("counters")
                .key("id", s(id))
                .consistent_read(true)
                .send()
                .await
                .expect("get");
            match got.item().and_then(|i| i.get("n")) {
                Some(AttributeValue::N(n)) => n.parse::<u64>().expect("number"),
                other => panic!("counter {id}: {other:?}"),
            }
        }
    };
    let (a, b) = (count("a").await, count("b").await);
    assert_eq!(a, b, "a transaction was torn by kill -9");
    assert!(
        a >= acknowledged,
        "acknowledged {acknowledged} transactions, found {a}"
    );
    drop(server);

    // The CLI reads the same data.
    let (ok, out, err) = cli(&manifest, &["tables"]);
    assert!(ok, "{err}");
    let products = out
        .lines()
        .find(|l| l.starts_with("products"))
        .expect("products row");
    assert!(products.split_whitespace().nth(1) == Some("50"), "{out}");
    let (ok, out, err) = cli(&manifest, &["scan", "counters"]);
    assert!(ok, "{err}");
    assert!(out.contains("\"id\": \"a\""), "{out}");

    // reset starts clean: the next up has the tables of dev.toml, empty.
    let (ok, out, err) = cli(&manifest, &["reset"]);
    assert!(ok, "{err}");
    assert!(out.contains("reset stack"), "{out}");
    let server = up(&manifest);
    let db = dynamodb(&server.aws).await;
    let scan = db.scan().table_name("products").send().await.expect("scan");
    assert_eq!(scan.count(), 0);
    drop(server);
}

#[tokio::test]
async fn reset_is_refused_while_the_stack_runs() {
    let (_dir, manifest) = project("reset-busy");
    let server = up(&manifest);
    let (ok, _, err) = cli(&manifest, &["reset"]);
    assert!(!ok);
    assert!(err.contains("in use by another woocom-dev"), "{err}");
    drop(server);
}

#[tokio::test]
async fn faults_command_throttles_a_running_stack() {
    let (_dir, manifest) = project("faults-cli");
    let server = up(&manifest);
    let ready = manifest.with_file_name("ready.json");
    let ready = ready.to_string_lossy().into_owned();
    let faults = |args: &[&str]| {
        let mut all = vec!["faults", "--ready-file", ready.as_str()];
        all.extend_from_slice(args);
        cli(&manifest, &all)
    };
    let db = dynamodb(&server.aws).await;
    let get = || {
        db.get_item()
            .table_name("products")
            .key("sku", s("x"))
            .send()
    };
    let (ok, out, err) = faults(&[
        "set",
        "products",
        "--rate",
        "1",
        "--error",
        "ThrottlingException",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("products: 100%"), "{out}");
    let err = get().await.expect_err("throttled");
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&err),
        Some("ThrottlingException")
    );
    let (ok, out, _) = faults(&["clear"]);
    assert!(ok && out.contains("no faults"), "{out}");
    get().await.expect("cleared");

    // A counted rule ends by itself once it has failed that many requests.
    let (ok, out, err) = faults(&[
        "set",
        "products",
        "--rate",
        "1",
        "--count",
        "1",
        "--operation",
        "GetItem",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("(GetItem, 1 more then off)"), "{out}");
    let (ok, _, err) = faults(&["set", "products", "--rate", "1", "--count", "0"]);
    assert!(!ok && err.contains("--count"), "count 0 refused: {err}");
    let _ = get().await;
    let (ok, out, _) = faults(&["list"]);
    assert!(ok && out.contains("no faults in force"), "{out}");
    drop(server);
}

fn start_in(
    dir: &Path,
    text: &str,
) -> impl std::future::Future<Output = Result<Stack, woocom_dev::stack::StackError>> {
    let path = dir.join("dev.toml");
    std::fs::write(&path, text).expect("write dev.toml");
    let manifest = Manifest::load(&path).expect("valid manifest");
    let mut options = StackOptions::new(manifest).free_ports().quiet_build();
    options.data = DataLocation::Dir(dir.join("data"));
    Stack::start(options)
}

const V1: &str = r#"
[tables.orders]
partition_key = { name = "pk", type = "S" }
sort_key = { name = "sk", type = "S" }
"#;

#[tokio::test]
async fn dev_toml_changes_are_reconciled_or_reported() {
    let dir = TempDir::new("reconcile");
    let stack = start_in(&dir.0, V1).await.expect("v1");
    let db = dynamodb(&stack.urls().aws).await;
    db.put_item()
        .table_name("orders")
        .item("pk", s("1"))
        .item("sk", s("a"))
        .item("customer", s("c"))
        .send()
        .await
        .expect("put");
    stack.shutdown().await;

    // What DynamoDB can change in place is applied; data stays.
    let v2 = format!(
        "{V1}stream = \"NEW_IMAGE\"\nttl_attribute = \"expires\"\n\n[tables.orders.global_indexes.by_customer]\npartition_key = {{ name = \"customer\" }}\n"
    );
    let stack = start_in(&dir.0, &v2).await.expect("v2");
    let db = dynamodb(&stack.urls().aws).await;
    let table = db
        .describe_table()
        .table_name("orders")
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    assert_eq!(
        table.global_secondary_indexes()[0].index_name(),
        Some("by_customer")
    );
    assert_eq!(
        table.stream_specification().map(|s| s.stream_enabled()),
        Some(true)
    );
    let by_customer = db
        .query()
        .table_name("orders")
        .index_name("by_customer")
        .key_condition_expression("customer = :c")
        .expression_attribute_values(":c", s("c"))
        .send()
        .await
        .expect("query the new index");
    assert_eq!(
        by_customer.count(),
        1,
        "the new index covers existing items"
    );
    stack.shutdown().await;

    // What it cannot is reported, and nothing changes.
    let v3 = v2.replace(
        r#"sort_key = { name = "sk", type = "S" }"#,
        r#"sort_key = { name = "created", type = "N" }"#,
    );
    let err = match start_in(&dir.0, &v3).await {
        Ok(_) => panic!("a key change must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("dev.toml:2: table `orders`"), "{err}");
    assert!(err.contains("keys changed"), "{err}");
    assert!(err.contains("woocom-dev reset"), "{err}");

    let stack = start_in(&dir.0, &v2).await.expect("v2 again");
    let db = dynamodb(&stack.urls().aws).await;
    let item = db
        .get_item()
        .table_name("orders")
        .key("pk", s("1"))
        .key("sk", s("a"))
        .send()
        .await
        .expect("get");
    assert!(item.item().is_some(), "data kept");
    stack.shutdown().await;
}

/// SQS shares the data folder: what `SendMessage` and `DeleteMessage`
/// acknowledged before a `kill -9` is there after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_sqs_sends_and_deletes_survive_kill_9() {
    let (_dir, manifest) = project("sqs-kill9");
    let mut text = std::fs::read_to_string(&manifest).expect("manifest");
    text.push_str("\n[queues.jobs]\n");
    std::fs::write(&manifest, text).expect("write");
    let server = up(&manifest);
    let sqs = aws_sdk_sqs::Client::new(&dynamodb_support::sdk::config(&server.aws).await);
    let url = format!("{}/000000000000/jobs", server.aws);
    for i in 0..40 {
        sqs.send_message()
            .queue_url(&url)
            .message_body(format!("job-{i}"))
            .send()
            .await
            .expect("acknowledged");
    }
    let got = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let mut deleted = Vec::new();
    for m in got.messages() {
        sqs.delete_message()
            .queue_url(&url)
            .receipt_handle(m.receipt_handle().expect("receipt"))
            .send()
            .await
            .expect("acknowledged delete");
        deleted.push(m.body().expect("body").to_owned());
    }
    // A sender keeps going while the server is killed.
    let sender = {
        let sqs = sqs.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 40..10_000 {
                match sqs
                    .send_message()
                    .queue_url(&url)
                    .message_body(format!("job-{i}"))
                    .send()
                    .await
                {
                    Ok(_) => acked.push(i),
                    Err(_) => break,
                }
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill_9();
    let acked = sender.await.expect("sender");

    let server = up(&manifest);
    let sqs = aws_sdk_sqs::Client::new(&dynamodb_support::sdk::config(&server.aws).await);
    let url = format!("{}/000000000000/jobs", server.aws);
    let mut bodies = std::collections::BTreeSet::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .send()
            .await
            .expect("receive");
        if got.messages().is_empty() {
            break;
        }
        bodies.extend(
            got.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_owned)),
        );
    }
    for i in (0..40).chain(acked.iter().copied()) {
        let body = format!("job-{i}");
        if deleted.contains(&body) {
            assert!(
                !bodies.contains(&body),
                "{body} was deleted before the kill"
            );
        } else {
            assert!(
                bodies.contains(&body),
                "{body} was acknowledged and is gone"
            );
        }
    }
    assert!(
        acked.len() > 10,
        "the sender was still sending: {}",
        acked.len()
    );
    server.kill_9();
}
