//! A function rebuilt by hot reload keeps its subscriptions.

use super::*;

/// A stream function for the hot reload test: appends `<version> <id>` for
/// each record it gets to the file named by `RELAY_LOG`.
fn relay_source(version: &str) -> String {
    format!(
        r#"use std::io::Write;

use lambda_runtime::{{service_fn, Error, LambdaEvent}};
use serde_json::{{json, Value}};

#[tokio::main]
async fn main() -> Result<(), Error> {{
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {{
        let mut lines = String::new();
        for r in event.payload["Records"].as_array().into_iter().flatten() {{
            let id = r["dynamodb"]["Keys"]["id"]["S"].as_str().unwrap_or("?");
            lines.push_str(&format!("{version} {{id}}\n"));
        }}
        let path = std::env::var("RELAY_LOG")?;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        file.write_all(lines.as_bytes())?;
        Ok::<Value, Error>(json!({{}}))
    }}))
    .await
}}
"#
    )
}

#[tokio::test]
async fn a_hot_reloaded_function_keeps_its_subscriptions() {
    use woocom_dev::reload::ReloadEvent;
    // A workspace of its own with one function, as the reload tests make
    // them; its builds share their target folder.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = dynamodb_support::function_workspace(
        "streams-reload",
        "relay",
        "relay-streams",
        &relay_source("v1"),
    );
    let log = dir.join("relay.log");
    std::fs::write(
        dir.join("dev.toml"),
        format!(
            r#"[stack]
name = "streams-reload"
[ports]
api = 0
websocket = 0
aws = 0

[functions.relay]
crate = "relay-streams"
env = {{ RELAY_LOG = "{}" }}

[tables.items]
partition_key = {{ name = "id" }}
stream = "NEW_IMAGE"

[[subscriptions]]
table = "items"
function = "relay"
starting_position = "TRIM_HORIZON"
"#,
            log.display()
        ),
    )
    .expect("write");
    let manifest = woocom_dev::manifest::Manifest::load(&dir.join("dev.toml")).expect("manifest");
    let mut options = StackOptions::new(manifest)
        .free_ports()
        .quiet_build()
        .watch();
    options.target_dir = Some(tmp.join("reload-target"));
    let stack = Stack::start(options).await.expect("stack starts");
    let mut events = stack.reload_events();
    let db = dynamodb(&stack.urls().aws).await;
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait_line = |line: &'static str| {
        let lines = &lines;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !lines().lines().any(|l| l == line) {
                assert!(Instant::now() < deadline, "no `{line}`: {}", lines());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    put(&db, "items", &[("id", "before")]).await;
    wait_line("v1 before").await;
    std::fs::write(dir.join("relay/src/main.rs"), relay_source("v2")).expect("write");
    let reloaded = tokio::time::timeout(Duration::from_secs(300), events.recv())
        .await
        .expect("a reload event in time")
        .expect("event channel open");
    assert!(
        matches!(&reloaded, ReloadEvent::Reloaded { functions, .. } if functions == &["relay"]),
        "{reloaded:?}"
    );
    // The mapping delivers to the new binary, from where it was.
    put(&db, "items", &[("id", "after")]).await;
    wait_line("v2 after").await;
    assert_eq!(lines(), "v1 before\nv2 after\n");
    let mapping = settled(&stack.urls().aws, "relay-items").await;
    assert_eq!(mapping["records_delivered"], 2, "{mapping:#}");
    assert_eq!(mapping["function_errors"], 0, "{mapping:#}");
    stack.shutdown().await;
}
