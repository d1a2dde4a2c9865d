//! The Terraform side of dev.toml (issue #8): the rendered manifest is
//! current, and the IAM policies it carries are least privilege.
//!
//! The HCL itself (formatting, parsing, cross-module references, the
//! manifest module's expressions) is checked by
//! `devserver/tests/smoke/terraform-hcl.sh`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use woocom_dev::deploy::render;
use woocom_dev::manifest::Manifest;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn rendered_manifest_is_current() {
    let manifest = Manifest::load(&repo().join("dev.toml")).expect("dev.toml");
    let expected = render::render_text(&manifest).expect("render");
    let path = repo().join(render::DEFAULT_OUTPUT);
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} is stale: run `cargo run -p woocom-dev -- render` and commit it",
        path.display()
    );
}

/// What a function may be granted, and on what.
fn check_least_privilege(rendered: &Value) {
    let tables: BTreeSet<&str> = rendered["tables"]
        .as_object()
        .map(|t| t.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let subscriptions = rendered["deploy"]["subscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let websocket = rendered.get("websocket").is_some();
    let websocket_functions: BTreeSet<&str> = rendered["websocket"]["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["function"].as_str())
        .collect();
    let functions = rendered["deploy"]["functions"]
        .as_object()
        .expect("deploy.functions");
    assert!(!functions.is_empty());
    let buses: BTreeSet<&str> = rendered["buses"]
        .as_object()
        .map(|b| b.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for (name, f) in functions {
        // The buses its env references: it may put events there only.
        let referenced_buses: BTreeSet<String> = f["bus_env"]
            .as_object()
            .expect("bus_env")
            .values()
            .filter_map(Value::as_str)
            .inspect(|b| {
                assert!(
                    *b == "default" || buses.contains(b),
                    "{name}: bus_env names undeclared bus {b}"
                );
            })
            .map(|b| arn("bus", b))
            .collect();
        let mut granted_buses = BTreeSet::new();
        let used: BTreeSet<&str> = f["table_env"]
            .as_object()
            .expect("table_env")
            .values()
            .filter_map(Value::as_str)
            .collect();
        let mine: Vec<&Value> = subscriptions
            .iter()
            .filter(|s| s["function"] == name.as_str())
            .collect();
        let sources = |kind: &str| -> BTreeSet<&str> {
            mine.iter()
                .filter(|s| s["source"]["kind"] == kind)
                .filter_map(|s| s["source"]["name"].as_str())
                .collect()
        };
        let streamed = sources("table");
        let polled: BTreeSet<String> = sources("queue").iter().map(|q| arn("queue", q)).collect();
        // Every destination dev.toml names for it: stream mappings'
        // on_failure, and its asynchronous invocations' targets.
        let event_invoke = &rendered["functions"][name.as_str()]["event_invoke"];
        let destinations: BTreeSet<String> = mine
            .iter()
            .map(|s| &s["on_failure"])
            .chain(["on_success", "on_failure", "dead_letter"].map(|k| &event_invoke[k]))
            .filter(|d| !d.is_null())
            .map(|d| {
                arn(
                    d["kind"].as_str().expect("kind"),
                    d["name"].as_str().expect("name"),
                )
            })
            .collect();
        let mut granted_destinations = BTreeSet::new();
        let mut granted_sources = BTreeSet::new();
        let policy = &f["policy"];
        assert_eq!(policy["Version"], "2012-10-17", "{name}");
        let mut granted_tables = BTreeSet::new();
        let mut manages_connections = false;
        for s in policy["Statement"].as_array().expect("statements") {
            assert_eq!(s["Effect"], "Allow", "{name}: {s}");
            assert!(
                s.get("NotAction").is_none() && s.get("NotResource").is_none(),
                "{name}: {s}"
            );
            let sid = s["Sid"].as_str().expect("Sid");
            assert!(
                sid.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{name}: Sid {sid}"
            );
            let actions: Vec<&str> = s["Action"]
                .as_array()
                .expect("Action")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let resources: Vec<&str> = s["Resource"]
                .as_array()
                .expect("Resource")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(!resources.is_empty(), "{name}: {s}");
            for a in &actions {
                assert!(!a.contains('*'), "{name}: wildcard action {a}");
            }
            for r in &resources {
                assert_ne!(*r, "*", "{name}: a statement on every resource: {s}");
                assert!(r.starts_with("arn:${partition}:"), "{name}: {r}");
            }
            let allowed: &[&str] = if actions.iter().all(|a| render::LOG_ACTIONS.contains(a)) {
                for r in &resources {
                    assert_eq!(
                        *r,
                        format!(
                            "arn:${{partition}}:logs:${{region}}:${{account_id}}:log-group:/aws/lambda/${{prefix}}-{name}:*"
                        ),
                        "{name}: logs only to its own log group"
                    );
                }
                render::LOG_ACTIONS
            } else if actions.iter().all(|a| a.starts_with("dynamodb:")) {
                for r in &resources {
                    let rest = r
                        .strip_prefix(
                            "arn:${partition}:dynamodb:${region}:${account_id}:table/${prefix}-",
                        )
                        .unwrap_or_else(|| panic!("{name}: not one of the stack's tables: {r}"));
                    let (table, sub) = rest.split_once('/').unwrap_or((rest, ""));
                    assert!(tables.contains(table), "{name}: undeclared table {table}");
                    match sub {
                        "" => {
                            assert!(
                                used.contains(table),
                                "{name}: table {table} is not in its env"
                            );
                            granted_tables.insert(table.to_owned());
                            assert_eq!(actions, render::TABLE_ACTIONS, "{name}");
                        }
                        "index/*" => {
                            assert!(
                                used.contains(table),
                                "{name}: index of {table} not in its env"
                            );
                            assert_eq!(actions, render::INDEX_ACTIONS, "{name}");
                        }
                        "stream/*" => {
                            assert!(
                                streamed.contains(table),
                                "{name}: stream of {table} without a subscription"
                            );
                            assert_eq!(actions, render::STREAM_ACTIONS, "{name}");
                        }
                        other => panic!("{name}: unexpected table resource /{other}"),
                    }
                }
                continue;
            } else if actions == render::QUEUE_SOURCE_ACTIONS {
                for r in &resources {
                    assert!(
                        polled.contains(*r),
                        "{name}: queue {r} is not the source of one of its mappings"
                    );
                    granted_sources.insert((*r).to_owned());
                }
                continue;
            } else if [
                render::QUEUE_SEND_ACTIONS,
                render::TOPIC_PUBLISH_ACTIONS,
                render::FUNCTION_INVOKE_ACTIONS,
            ]
            .contains(&actions.as_slice())
            {
                let service = actions[0].split(':').next().unwrap_or("");
                for r in &resources {
                    assert!(
                        destinations.contains(*r),
                        "{name}: {r} is none of its destinations {destinations:?}"
                    );
                    assert!(
                        r.starts_with(&format!("arn:${{partition}}:{service}:")),
                        "{name}: {actions:?} on {r}"
                    );
                    granted_destinations.insert((*r).to_owned());
                }
                continue;
            } else if actions == render::BUS_PUT_ACTIONS {
                for r in &resources {
                    assert!(
                        referenced_buses.contains(*r),
                        "{name}: PutEvents on {r}, not a bus its env references"
                    );
                    granted_buses.insert((*r).to_owned());
                }
                continue;
            } else if actions == ["execute-api:ManageConnections"] {
                assert!(websocket, "{name}: @connections without a WebSocket API");
                assert!(
                    websocket_functions.contains(name.as_str()) || !streamed.is_empty(),
                    "{name}: neither a WebSocket route nor a stream consumer"
                );
                assert_eq!(
                    resources,
                    [
                        "arn:${partition}:execute-api:${region}:${account_id}:${websocket_api_id}/${websocket_stage}/*/@connections/*"
                    ],
                    "{name}"
                );
                manages_connections = true;
                continue;
            } else {
                panic!("{name}: unexpected statement {s}");
            };
            for a in &actions {
                assert!(allowed.contains(a), "{name}: {a}");
            }
        }
        let used: BTreeSet<String> = used.iter().map(|t| (*t).to_owned()).collect();
        assert_eq!(
            granted_tables, used,
            "{name}: every table in its env, and only those"
        );
        assert_eq!(f["websocket_endpoint"], manages_connections, "{name}");
        assert_eq!(
            granted_sources, polled,
            "{name}: every queue it polls, and only those"
        );
        assert_eq!(
            granted_destinations, destinations,
            "{name}: every destination, and only those"
        );
        assert_eq!(
            granted_buses, referenced_buses,
            "{name}: every bus in its env, and only those"
        );
    }
}

/// A rendered ARN template of the stack's queue, topic, function or bus.
fn arn(kind: &str, name: &str) -> String {
    match kind {
        "queue" => format!("arn:${{partition}}:sqs:${{region}}:${{account_id}}:${{prefix}}-{name}"),
        "topic" => format!("arn:${{partition}}:sns:${{region}}:${{account_id}}:${{prefix}}-{name}"),
        "function" => format!(
            "arn:${{partition}}:lambda:${{region}}:${{account_id}}:function:${{prefix}}-{name}"
        ),
        "bus" if name == "default" => {
            "arn:${partition}:events:${region}:${account_id}:event-bus/default".to_owned()
        }
        "bus" => format!(
            "arn:${{partition}}:events:${{region}}:${{account_id}}:event-bus/${{prefix}}-{name}"
        ),
        other => panic!("unknown destination kind {other}"),
    }
}

#[test]
fn committed_rendered_policies_are_least_privilege() {
    check_least_privilege(&read_json(&repo().join(render::DEFAULT_OUTPUT)));
}

/// A manifest with every section (WebSocket API, subscriptions, indexes),
/// as the manifest types serialize it, whether or not dev.toml has them yet.
#[test]
fn full_manifest_renders_to_the_golden_file_with_least_privilege() {
    let fixtures = repo().join("terraform/tests/fixtures");
    let source = fixtures.join("full-manifest.json");
    let rendered = render::render_value(&source, read_json(&source)).expect("render");
    check_least_privilege(&rendered);

    let f = &rendered["deploy"]["functions"];
    assert_eq!(
        f["notify"]["websocket_endpoint"], true,
        "a stream consumer pushes"
    );
    assert_eq!(f["live"]["websocket_endpoint"], true, "a WebSocket route");
    assert_eq!(f["products"]["websocket_endpoint"], false);
    assert_eq!(f["orders"]["env"], serde_json::json!({"CURRENCY": "EUR"}));
    assert_eq!(f["orders"]["binary"], "orders");
    assert_eq!(f["orders"]["timeout"], 3);
    let keys: Vec<&str> = rendered["deploy"]["subscriptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["key"].as_str())
        .collect();
    assert_eq!(keys, ["notify-orders", "notify-products"]);
    let queues: Vec<(&str, bool)> = rendered["deploy"]["subscriptions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["on_failure"]["name"].as_str().unwrap_or_default(),
                s["on_failure"]["dedicated"] == true,
            )
        })
        .collect();
    assert_eq!(
        queues,
        [
            ("orders-failures", true),
            ("notify-products-failures", true)
        ]
    );

    assert_golden(&rendered, &fixtures.join("full-rendered.json"), &source);
}

/// The rendered value is the committed golden file (the Terraform tests
/// in terraform/stack/tests plan and apply these files).
fn assert_golden(rendered: &Value, golden: &Path, source: &Path) {
    let mut text = serde_json::to_string_pretty(rendered).expect("json");
    text.push('\n');
    if std::env::var_os("WOOCOM_UPDATE_GOLDEN").is_some() {
        std::fs::write(golden, &text).expect("write golden");
    }
    let expected = std::fs::read_to_string(golden).unwrap_or_default();
    assert!(
        expected == text,
        "{} differs from the render of {}: if the change is intended, rerun with WOOCOM_UPDATE_GOLDEN=1",
        golden.display(),
        source.display()
    );
}

/// A manifest without WebSocket API, CORS or stream subscriptions: the
/// stack must plan and apply without them (terraform/stack/tests).
#[test]
fn minimal_manifest_renders_to_the_golden_file_with_least_privilege() {
    let fixtures = repo().join("terraform/tests/fixtures");
    let source = fixtures.join("minimal-manifest.json");
    let rendered = render::render_value(&source, read_json(&source)).expect("render");
    check_least_privilege(&rendered);
    assert!(rendered.get("websocket").is_none_or(Value::is_null));
    assert!(rendered["api"]["cors"].is_null());
    assert_eq!(rendered["deploy"]["subscriptions"], serde_json::json!([]));
    for (name, f) in rendered["deploy"]["functions"]
        .as_object()
        .expect("functions")
    {
        assert_eq!(f["websocket_endpoint"], false, "{name}");
    }
    assert_golden(&rendered, &fixtures.join("minimal-rendered.json"), &source);
}

/// Queues, a topic with queue, function and HTTPS subscriptions and a
/// dead-letter queue, an SQS mapping, a stream mapping failing to a topic,
/// and asynchronous destinations of every kind (issue #14), loaded from
/// TOML so the manifest's own checks hold: the stack must plan and apply
/// them (terraform/stack/tests), with least-privilege policies.
#[test]
fn events_manifest_renders_to_the_golden_file_with_least_privilege() {
    let fixtures = repo().join("terraform/tests/fixtures");
    let source = fixtures.join("events-manifest.toml");
    let manifest = Manifest::load(&source).expect("events-manifest.toml");
    let rendered = render::render(&manifest).expect("render");
    check_least_privilege(&rendered);

    let subscriptions = &rendered["deploy"]["subscriptions"];
    assert_eq!(
        subscriptions[0]["source"],
        serde_json::json!({"kind": "queue", "name": "orders"})
    );
    assert!(subscriptions[0]["on_failure"].is_null());
    assert_eq!(
        subscriptions[1]["on_failure"],
        serde_json::json!({"kind": "topic", "name": "order-events", "dedicated": false})
    );
    assert_eq!(
        subscriptions[2]["on_failure"],
        serde_json::json!({"kind": "queue", "name": "mail-failures", "dedicated": false})
    );
    let statements =
        |f: &str| rendered["deploy"]["functions"][f]["policy"]["Statement"].to_string();
    assert!(statements("fulfil").contains("sqs:ReceiveMessage"));
    assert!(!statements("notify").contains("sqs:ReceiveMessage"));
    assert!(statements("notify").contains("function:${prefix}-audit"));
    assert!(!statements("audit").contains("lambda:InvokeFunction"));

    assert_golden(&rendered, &fixtures.join("events-rendered.json"), &source);
}

/// Custom buses, rules on them and on the default bus (a pattern, a
/// schedule), targets of every kind with their input, retry policy and
/// dead-letter queue, and a function whose env references a bus: the
/// stack must plan and apply them (terraform/stack/tests), and the
/// function may put events on that bus only.
#[test]
fn eventbridge_manifest_renders_to_the_golden_file_with_least_privilege() {
    let fixtures = repo().join("terraform/tests/fixtures");
    let source = fixtures.join("eventbridge-manifest.toml");
    let manifest = Manifest::load(&source).expect("eventbridge-manifest.toml");
    let rendered = render::render(&manifest).expect("render");
    check_least_privilege(&rendered);

    let functions = &rendered["deploy"]["functions"];
    assert_eq!(
        functions["orders"]["bus_env"],
        serde_json::json!({"EVENT_BUS_NAME": "shop"})
    );
    assert_eq!(
        functions["orders"]["env"],
        serde_json::json!({}),
        "a bus reference is not plain env"
    );
    for f in ["ship", "audit"] {
        assert!(
            !functions[f]["policy"].to_string().contains("events:"),
            "{f}: a rule's target needs no EventBridge permission of its own"
        );
    }
    let rules = &rendered["rules"];
    assert_eq!(rules["order-placed"]["bus"], "shop");
    assert_eq!(
        rules["order-placed"]["targets"].as_array().map(Vec::len),
        Some(5)
    );
    assert_eq!(
        rules["order-placed"]["targets"][3],
        serde_json::json!({
            "id": "to-partners", "kind": "bus", "name": "partners", "input": null,
            "input_path": null, "input_transformer": null, "message_group_id": null,
            "retry_policy": {"maximum_retry_attempts": 185, "maximum_event_age_in_seconds": 86400},
            "dead_letter_queue": null,
        })
    );
    assert_eq!(rules["nightly"]["bus"], "default");
    assert_eq!(rules["nightly"]["state"], "DISABLED");
    assert_eq!(rules["nightly"]["event_pattern"], Value::Null);

    assert_golden(
        &rendered,
        &fixtures.join("eventbridge-rendered.json"),
        &source,
    );
}

#[test]
fn render_check_fails_on_a_stale_file_and_passes_after_render() {
    let dir = std::env::temp_dir().join(format!("woocom-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let toml = dir.join("dev.toml");
    std::fs::write(
        &toml,
        "[functions.f]\ncrate = \"c\"\nenv = { T = \"things\" }\n[tables.things]\npartition_key = { name = \"id\" }\n",
    )
    .expect("write");
    let bin = env!("CARGO_BIN_EXE_woocom-dev");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .arg("--manifest")
            .arg(&toml)
            .args(args)
            .output()
            .expect("run woocom-dev")
    };
    let stale = run(&["render", "--check"]);
    assert!(!stale.status.success());
    assert!(
        String::from_utf8_lossy(&stale.stderr).contains("is stale"),
        "{stale:?}"
    );
    assert!(run(&["render"]).status.success());
    assert!(run(&["render", "--check"]).status.success());
    let rendered = read_json(&dir.join("terraform/manifest.json"));
    assert_eq!(
        rendered["deploy"]["functions"]["f"]["table_env"]["T"],
        "things"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
