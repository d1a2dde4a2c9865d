//! Hot reload end to end: a temporary workspace with one function, the
//! in-process stack watching it, and real edits to its source and to its
//! dev.toml.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use woocom_dev::manifest::Manifest;
use woocom_dev::reload::ReloadEvent;
use woocom_dev::{Stack, StackOptions};

const MANIFEST: &str = r#"
[ports]
api = 0
websocket = 0
aws = 0

[api]
stage = "dev"

[functions.hello]
crate = "hello-NAME"
timeout = 5

[[routes]]
method = "GET"
path = "/hello"
function = "hello"
"#;

/// A function that answers `body`, after `delay_ms`.
fn source(body: &str, delay_ms: u64) -> String {
    format!(
        r#"use lambda_runtime::{{service_fn, Error, LambdaEvent}};
use serde_json::{{json, Value}};

#[tokio::main]
async fn main() -> Result<(), Error> {{
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {{
        tokio::time::sleep(std::time::Duration::from_millis({delay_ms})).await;
        Ok::<Value, Error>(json!({{ "statusCode": 200, "body": "{body}" }}))
    }}))
    .await
}}
"#
    )
}

struct Fixture {
    dir: common::TempDir,
    stack: Stack,
    events: broadcast::Receiver<ReloadEvent>,
}

impl Fixture {
    async fn new(name: &str) -> Fixture {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = common::function_workspace(
            &format!("reload-{name}"),
            "hello",
            &format!("hello-{name}"),
            &source("v1", 0),
        );
        // One package name per test: the tests share a target folder, and
        // so the binaries' paths.
        std::fs::write(dir.join("dev.toml"), MANIFEST.replace("NAME", name)).expect("write");

        let manifest = Manifest::load(&dir.join("dev.toml")).expect("manifest");
        let mut options = StackOptions::new(manifest)
            .free_ports()
            .quiet_build()
            .watch();
        options.target_dir = Some(tmp.join("reload-target"));
        let stack = Stack::start(options).await.expect("stack starts");
        let events = stack.reload_events();
        Fixture { dir, stack, events }
    }

    fn write_source(&self, text: &str) {
        std::fs::write(self.dir.join("hello/src/main.rs"), text).expect("write");
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(format!("{}{path}", self.stack.urls().api))
            .send()
            .await
            .expect("request")
    }

    async fn body(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.text().await.expect("body")
    }

    /// The next reload event, within a bound generous enough for a cold
    /// build on a busy CI machine.
    async fn next_event(&mut self) -> ReloadEvent {
        tokio::time::timeout(Duration::from_secs(300), self.events.recv())
            .await
            .expect("a reload event in time")
            .expect("event channel open")
    }
}

#[tokio::test]
async fn an_edit_is_served_by_the_next_request_and_a_request_during_the_rebuild_succeeds() {
    let mut f = Fixture::new("edit").await;
    assert_eq!(f.body("/hello").await, "v1");

    f.write_source(&source("v2", 0));
    // Sent right after the save: it is held during the build and served by
    // the new binary.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let during = f.body("/hello").await;
    assert_eq!(
        during, "v2",
        "a request during the rebuild gets the new code"
    );
    match f.next_event().await {
        ReloadEvent::Reloaded { functions, .. } => assert_eq!(functions, ["hello"]),
        other => panic!("expected a reload, got {other:?}"),
    }
    assert_eq!(f.body("/hello").await, "v2");
    f.stack.shutdown().await;
}

#[tokio::test]
async fn a_broken_edit_keeps_the_old_version_serving_and_reports_the_error() {
    let mut f = Fixture::new("broken").await;
    assert_eq!(f.body("/hello").await, "v1");

    f.write_source("fn main() { let x: u32 = \"not a number\"; }\n");
    match f.next_event().await {
        ReloadEvent::BuildFailed { functions, errors } => {
            assert_eq!(functions, ["hello"]);
            assert!(errors.contains("mismatched types"), "{errors}");
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    let r = f.get("/hello").await;
    assert_eq!(r.status(), 200);
    let header = r.headers()["x-woocom-build-error"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(header.contains("mismatched types"), "{header}");
    assert_eq!(
        r.text().await.expect("body"),
        "v1",
        "the old version answers"
    );

    f.write_source(&source("v3", 0));
    assert!(matches!(f.next_event().await, ReloadEvent::Reloaded { .. }));
    let r = f.get("/hello").await;
    assert!(
        r.headers().get("x-woocom-build-error").is_none(),
        "error cleared"
    );
    assert_eq!(r.text().await.expect("body"), "v3");
    f.stack.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_saves_gives_one_build() {
    let mut f = Fixture::new("burst").await;
    assert_eq!(f.body("/hello").await, "v1");
    for i in 0..5 {
        f.write_source(&source(&format!("burst{i}"), 0));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(matches!(f.next_event().await, ReloadEvent::Reloaded { .. }));
    // No second build follows.
    let more = tokio::time::timeout(Duration::from_secs(2), f.events.recv()).await;
    assert!(more.is_err(), "a second reload happened: {more:?}");
    assert_eq!(f.body("/hello").await, "burst4");
    f.stack.shutdown().await;
}

#[tokio::test]
async fn in_flight_requests_finish_on_the_old_binary() {
    let mut f = Fixture::new("drain").await;
    f.write_source(&source("slow-v1", 1500));
    assert!(matches!(f.next_event().await, ReloadEvent::Reloaded { .. }));
    let api = f.stack.urls().api.clone();
    let slow = tokio::spawn(async move {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(format!("{api}/hello"))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body")
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.write_source(&source("fast-v2", 0));
    assert_eq!(
        slow.await.expect("task"),
        "slow-v1",
        "the in-flight request finished on the old code"
    );
    assert!(matches!(f.next_event().await, ReloadEvent::Reloaded { .. }));
    assert_eq!(f.body("/hello").await, "fast-v2");
    f.stack.shutdown().await;
}

#[tokio::test]
async fn dev_toml_edits_apply_without_restart_and_bad_ones_are_rejected() {
    let mut f = Fixture::new("manifest").await;
    assert_eq!(f.get("/hi").await.status(), 403);

    let with_route = format!(
        "{}\n[[routes]]\nmethod = \"GET\"\npath = \"/hi\"\nfunction = \"hello\"\n",
        MANIFEST.replace("NAME", "manifest")
    );
    std::fs::write(f.dir.join("dev.toml"), &with_route).expect("write");
    let started = Instant::now();
    loop {
        match f.next_event().await {
            ReloadEvent::ManifestApplied { changes, .. } => {
                assert!(changes.iter().any(|c| c.contains("routes")), "{changes:?}");
                break;
            }
            other => assert!(started.elapsed() < Duration::from_secs(60), "{other:?}"),
        }
    }
    assert_eq!(f.body("/hi").await, "v1");

    std::fs::write(
        f.dir.join("dev.toml"),
        with_route
            .replace("function = \"hello\"\n\"\n", "")
            .replace("path = \"/hi\"", "path = \"/hi/{\""),
    )
    .expect("write");
    match f.next_event().await {
        ReloadEvent::ManifestRejected { error } => {
            assert!(
                error.contains("dev.toml:") && error.contains("route path `/hi/{`"),
                "{error}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(f.body("/hi").await, "v1", "the running configuration stays");
    f.stack.shutdown().await;
}
