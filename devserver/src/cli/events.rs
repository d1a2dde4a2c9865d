//! `woocom-dev events`: EventBridge in a running stack.
//!
//! ```text
//! woocom-dev events list                          # buses, rules, targets, failed deliveries, archives
//! woocom-dev events put order.json                # PutEvents entries from a file (`-`: stdin)
//! woocom-dev events put --bus shop --source woocom.orders --detail-type OrderPlaced --detail '{"id":"o-1"}'
//! woocom-dev events tail [--bus shop]             # every event as it arrives, with the rules it matched
//! woocom-dev events test-pattern '<pattern>' event.json   # no stack needed
//! woocom-dev events fire <rule> [--bus <bus>]     # run a (scheduled) rule now
//! woocom-dev events replay <archive> --from 2h [--to <time>] [--rule <rule>]...
//! ```
//!
//! `put` and `replay` go through EventBridge's own API (`PutEvents`,
//! `StartReplay`) on the stack's AWS endpoint; the others through
//! `/_woocom/events`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use woocom_dev::eventbridge::EventBridge;
use woocom_dev::eventbridge::control::{EVENTS_PATH, FIRE_PATH, TAIL_PATH};

use super::running::{RunningStack, encode, request};

#[derive(clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    stack: RunningStack,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Buses, rules with their targets, failed deliveries, archives.
    List,
    /// Put events: `PutEvents` entries (one object or an array) from a
    /// file or stdin (`-`), or one event from the flags.
    Put {
        /// A JSON file of entries (`Source`, `DetailType`, `Detail` as an
        /// object or a string, `EventBusName`, `Resources`); `-` reads stdin.
        file: Option<PathBuf>,
        /// The bus, for entries that do not name one (default: `default`).
        #[arg(long)]
        bus: Option<String>,
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        detail_type: Option<String>,
        /// The detail, a JSON object.
        #[arg(long)]
        detail: Option<String>,
    },
    /// Print every event as it arrives, with the rules it matched (Ctrl-C
    /// stops).
    Tail {
        #[arg(long)]
        bus: Option<String>,
    },
    /// Whether an event pattern matches an event, as TestEventPattern
    /// answers (no running stack needed).
    TestPattern {
        /// The pattern, as JSON text (or `@file`).
        pattern: String,
        /// A JSON file holding the event; `-` (default) reads stdin.
        #[arg(default_value = "-")]
        event: PathBuf,
    },
    /// Fire a rule now with a `Scheduled Event`, as its schedule would.
    Fire {
        rule: String,
        #[arg(long)]
        bus: Option<String>,
    },
    /// Replay an archive's events to its bus's rules.
    Replay {
        archive: String,
        /// Start of the range: RFC 3339 (`2026-12-05T10:00:00Z`) or a time
        /// ago (`90s`, `15m`, `2h`, `1d`).
        #[arg(long)]
        from: String,
        /// End of the range (default: now).
        #[arg(long)]
        to: Option<String>,
        /// Replay only to these rules (default: every rule of the bus).
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// The replay's name (default: `<archive>-<time>`).
        #[arg(long)]
        name: Option<String>,
    },
}

pub async fn run(
    manifest_path: &Path,
    args: EventsArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if let Action::TestPattern { pattern, event } = &args.action {
        return test_pattern(pattern, event);
    }
    let endpoint = args.stack.endpoint(manifest_path)?;
    match args.action {
        Action::List => {
            let url = format!("{endpoint}{EVENTS_PATH}");
            let value = request(&endpoint, http::Method::GET, &url, String::new()).await?;
            if args.stack.json {
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_list(&value);
            }
        }
        Action::Put {
            file,
            bus,
            source,
            detail_type,
            detail,
        } => {
            let entries = entries(file, bus, source, detail_type, detail)?;
            let mut failed = 0;
            for chunk in entries.chunks(10) {
                let answer = aws_call(&endpoint, "PutEvents", &json!({ "Entries": chunk })).await?;
                if args.stack.json {
                    println!("{}", serde_json::to_string_pretty(&answer)?);
                    continue;
                }
                for e in answer["Entries"].as_array().cloned().unwrap_or_default() {
                    match e["EventId"].as_str() {
                        Some(id) => println!("put {id}"),
                        None => {
                            failed += 1;
                            println!(
                                "refused: {}: {}",
                                e["ErrorCode"].as_str().unwrap_or("?"),
                                e["ErrorMessage"].as_str().unwrap_or("?")
                            );
                        }
                    }
                }
            }
            if failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        Action::Tail { bus } => tail(&endpoint, bus.as_deref(), args.stack.json).await?,
        Action::Fire { rule, bus } => {
            let mut url = format!("{endpoint}{FIRE_PATH}?rule={}", encode(&rule));
            if let Some(b) = &bus {
                url.push_str(&format!("&bus={}", encode(b)));
            }
            let value = request(&endpoint, http::Method::POST, &url, String::new()).await?;
            println!(
                "fired {} on bus {}: event {}",
                rule,
                value["bus"].as_str().unwrap_or("default"),
                value["eventId"].as_str().unwrap_or("?")
            );
        }
        Action::Replay {
            archive,
            from,
            to,
            rules,
            name,
        } => {
            let now = chrono::Utc::now();
            let start = parse_time(&from, now)?;
            let end = to.as_deref().map_or(Ok(now), |t| parse_time(t, now))?;
            let described = aws_call(
                &endpoint,
                "DescribeArchive",
                &json!({ "ArchiveName": archive }),
            )
            .await?;
            let bus_arn = described["EventSourceArn"].as_str().unwrap_or_default();
            let rule_arns: Vec<String> = rules
                .iter()
                .map(|r| {
                    // arn:...:event-bus/<bus> -> arn:...:rule/[<bus>/]<rule>
                    let (prefix, bus) = bus_arn.rsplit_once(":event-bus/").unwrap_or(("", ""));
                    if bus == "default" {
                        format!("{prefix}:rule/{r}")
                    } else {
                        format!("{prefix}:rule/{bus}/{r}")
                    }
                })
                .collect();
            let name = name.unwrap_or_else(|| format!("{archive}-{}", now.format("%Y%m%d%H%M%S")));
            let mut destination = json!({ "Arn": bus_arn });
            if !rule_arns.is_empty() {
                destination["FilterArns"] = json!(rule_arns);
            }
            let answer = aws_call(
                &endpoint,
                "StartReplay",
                &json!({
                    "ReplayName": name,
                    "EventSourceArn": described["ArchiveArn"],
                    "EventStartTime": start.timestamp(),
                    "EventEndTime": end.timestamp(),
                    "Destination": destination,
                }),
            )
            .await?;
            println!(
                "replay {name}: {} event(s) of {archive} from {} to {} ({})",
                described["EventCount"],
                start.format("%Y-%m-%dT%H:%M:%SZ"),
                end.format("%Y-%m-%dT%H:%M:%SZ"),
                answer["State"].as_str().unwrap_or("?")
            );
        }
        Action::TestPattern { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn read_input(path: &Path) -> Result<String, Box<dyn std::error::Error>> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()).into())
    }
}

fn test_pattern(pattern: &str, event: &Path) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let pattern = match pattern.strip_prefix('@') {
        Some(file) => read_input(Path::new(file))?,
        None => pattern.to_owned(),
    };
    let event = read_input(event)?;
    match EventBridge::test_pattern(&pattern, &event) {
        Ok(true) => {
            println!("match");
            Ok(ExitCode::SUCCESS)
        }
        Ok(false) => {
            println!("no match");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(format!("{}: {}", e.code, e.message).into()),
    }
}

/// The `PutEvents` entries `put` sends.
fn entries(
    file: Option<PathBuf>,
    bus: Option<String>,
    source: Option<String>,
    detail_type: Option<String>,
    detail: Option<String>,
) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let mut list = match &file {
        Some(path) => {
            let text = read_input(path)?;
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
            match value {
                Value::Array(items) => items,
                item @ Value::Object(_) => vec![item],
                _ => {
                    return Err(format!(
                        "{}: give a PutEvents entry (an object) or an array of them",
                        path.display()
                    )
                    .into());
                }
            }
        }
        None => {
            let (Some(source), Some(detail_type)) = (source, detail_type) else {
                return Err(
                    "give a file of entries, or --source and --detail-type (and --detail)".into(),
                );
            };
            vec![json!({
                "Source": source,
                "DetailType": detail_type,
                "Detail": detail.unwrap_or_else(|| "{}".to_owned()),
            })]
        }
    };
    for (i, e) in list.iter_mut().enumerate() {
        let Some(o) = e.as_object_mut() else {
            return Err(format!("entry {}: not a JSON object", i + 1).into());
        };
        // `Detail` may be written as an object; PutEvents takes a string.
        if let Some(d @ Value::Object(_)) = o.get("Detail") {
            let text = d.to_string();
            o.insert("Detail".to_owned(), Value::String(text));
        }
        if let Some(b) = &bus {
            o.entry("EventBusName").or_insert_with(|| json!(b));
        }
    }
    Ok(list)
}

/// `90s`, `15m`, `2h`, `1d` ago, or an RFC 3339 time.
fn parse_time(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, Box<dyn std::error::Error>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| {
        format!("`{text}`: give an RFC 3339 time or a time ago such as 90s, 15m, 2h, 1d")
    })?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}`: the unit is s, m, h or d").into()),
    };
    Ok(now - chrono::Duration::seconds(seconds))
}

/// One call of EventBridge's JSON API; its error message on failure.
async fn aws_call(
    endpoint: &str,
    operation: &str,
    body: &Value,
) -> Result<Value, Box<dyn std::error::Error>> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("{endpoint}/"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("AWSEvents.{operation}"))
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = client.request(request).await.map_err(|e| {
        format!("cannot reach woocom-dev at {endpoint} (is `woocom-dev up` running?): {e}")
    })?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!(
            "{}: {}",
            value["__type"].as_str().unwrap_or("error"),
            value["message"].as_str().unwrap_or("request refused")
        )
        .into());
    }
    Ok(value)
}

async fn tail(
    endpoint: &str,
    bus: Option<&str>,
    json: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut url = format!("{endpoint}{TAIL_PATH}");
    if let Some(b) = bus {
        url.push_str(&format!("?bus={}", encode(b)));
    }
    let request = http::Request::builder()
        .uri(url)
        .body(Full::new(Bytes::new()))?;
    let response = client.request(request).await.map_err(|e| {
        format!("cannot reach woocom-dev at {endpoint} (is `woocom-dev up` running?): {e}")
    })?;
    eprintln!(
        "tailing {} (Ctrl-C stops)",
        bus.map_or("every bus".to_owned(), |b| format!("bus {b}"))
    );
    let mut body = response.into_body();
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        pending.extend_from_slice(data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let Ok(value) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if json {
                println!("{value}");
                continue;
            }
            if let Some(n) = value["skipped"].as_u64() {
                println!("... {n} event(s) skipped (the terminal fell behind)");
                continue;
            }
            let e = &value["event"];
            let rules: Vec<&str> = value["rules"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            println!(
                "{} {} {} / {} {}  -> {}",
                e["time"].as_str().unwrap_or("?"),
                value["bus"].as_str().unwrap_or("?"),
                e["source"].as_str().unwrap_or("?"),
                e["detail-type"].as_str().unwrap_or("?"),
                e["id"].as_str().unwrap_or("?"),
                if rules.is_empty() {
                    "no rule".to_owned()
                } else {
                    rules.join(", ")
                }
            );
            println!("    {}", e["detail"]);
        }
    }
    Ok(())
}

fn print_list(value: &Value) {
    let buses: Vec<&str> = value["buses"]
        .as_array()
        .map(|b| b.iter().filter_map(|b| b["name"].as_str()).collect())
        .unwrap_or_default();
    println!("buses: {}", buses.join(", "));
    let rules = value["rules"].as_array().cloned().unwrap_or_default();
    if rules.is_empty() {
        println!("no rules (declare them in dev.toml's [rules], or create them through the API)");
    }
    for r in rules {
        let what = r["eventPattern"]
            .as_str()
            .or(r["scheduleExpression"].as_str())
            .unwrap_or("?");
        println!(
            "{} (bus {}{}): {what}",
            r["name"].as_str().unwrap_or("?"),
            r["bus"].as_str().unwrap_or("?"),
            if r["state"] == "DISABLED" {
                ", disabled"
            } else {
                ""
            },
        );
        for t in r["targets"].as_array().cloned().unwrap_or_default() {
            let arn = t["arn"].as_str().unwrap_or("?");
            let mut notes = Vec::new();
            if let Some(d) = t["dead_letter_arn"].as_str() {
                notes.push(format!(
                    "dead letters -> {}",
                    d.rsplit(':').next().unwrap_or(d)
                ));
            }
            if t["input_transformer"].is_object() {
                notes.push("input transformer".to_owned());
            } else if let Some(p) = t["input_path"].as_str() {
                notes.push(format!("input {p}"));
            } else if t["input"].is_string() {
                notes.push("fixed input".to_owned());
            }
            println!(
                "  -> {} {arn}{}",
                t["id"].as_str().unwrap_or("?"),
                if notes.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", notes.join("; "))
                }
            );
        }
    }
    let failures = value["failures"].as_array().cloned().unwrap_or_default();
    if !failures.is_empty() {
        println!("failed deliveries ({}):", failures.len());
        for f in failures {
            println!(
                "  {} rule {} target {}: {} {} after {} attempt(s); {}",
                f["time"].as_str().unwrap_or("?"),
                f["ruleArn"]
                    .as_str()
                    .and_then(|a| a.rsplit('/').next())
                    .unwrap_or("?"),
                f["targetId"].as_str().unwrap_or("?"),
                f["errorCode"].as_str().unwrap_or("?"),
                f["errorMessage"].as_str().unwrap_or("?"),
                f["attempts"],
                f["deadLetterArn"]
                    .as_str()
                    .map_or("dropped".to_owned(), |d| format!(
                        "sent to {}",
                        d.rsplit(':').next().unwrap_or(d)
                    ))
            );
        }
    }
    for a in value["archives"].as_array().cloned().unwrap_or_default() {
        println!(
            "archive {} of {}: {} event(s), retention {}",
            a["name"].as_str().unwrap_or("?"),
            a["sourceArn"]
                .as_str()
                .and_then(|s| s.rsplit('/').next())
                .unwrap_or("?"),
            a["eventCount"],
            match a["retentionDays"].as_u64() {
                Some(0) | None => "indefinite".to_owned(),
                Some(d) => format!("{d} day(s)"),
            }
        );
    }
    for r in value["replays"].as_array().cloned().unwrap_or_default() {
        println!(
            "replay {} of {}: {} ({} event(s) replayed)",
            r["name"].as_str().unwrap_or("?"),
            r["archive"].as_str().unwrap_or("?"),
            r["state"].as_str().unwrap_or("?"),
            r["replayed"]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{entries, parse_time};

    #[test]
    fn times_ago_and_rfc3339() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_time("2h", now).expect("ago").to_rfc3339(),
            "2026-12-05T10:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-12-01T00:00:00Z", now)
                .expect("rfc3339")
                .to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        assert!(parse_time("yesterday", now).is_err());
    }

    #[test]
    fn flags_make_one_entry_with_a_string_detail() {
        let list = entries(
            None,
            Some("shop".into()),
            Some("s".into()),
            Some("t".into()),
            Some("{\"a\":1}".into()),
        )
        .expect("entries");
        assert_eq!(list[0]["EventBusName"], "shop");
        assert_eq!(list[0]["Detail"], "{\"a\":1}");
        assert!(entries(None, None, None, None, None).is_err());
    }
}
