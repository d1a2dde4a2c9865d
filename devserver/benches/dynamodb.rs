//! DynamoDB through our HTTP layer (`aws-sdk-dynamodb` against the
//! devserver's AWS endpoint) against the engine's library API, measured in
//! the same run so the cost of the layer shows as a difference and a ratio.
//!
//! `cargo bench -p woocom-dev --bench dynamodb` (about 2 minutes; loopback
//! only). Each case runs for a fixed time at 1 and 16 concurrent clients and
//! prints ops/s, p50 and p99.
//!
//! Targets (issue #3): our layer costs under 100 µs per request at p50;
//! 16 clients reach above 10,000 GetItem/s.
//!
//! Our layer is what a request costs over HTTP beyond the same request
//! made to the library: HTTP p50 minus library p50, with one client. The
//! HTTP path is a minimal client (one hyper keep-alive connection sending
//! the request's JSON as it is), so the figure holds the loopback round
//! trip, the guard, decoding, encoding and the response's CRC, and next to
//! nothing of the client's own. The SDK's own work (signing, building the
//! request, parsing the answer into its types) is no part of our layer: it
//! is the same against DynamoDB. It is measured by running the SDK client
//! against a stub server that answers each operation with the bytes the
//! devserver answered it with (the "SDK floor"), and shows in the SDK−lib
//! column, which counts it.
//!
//! The four paths (library, minimal HTTP client, SDK on the devserver, SDK
//! on the stub) take turns in stretches, the order rotating from round to
//! round: on 2 shared cores a run's latencies drift as a whole, and the
//! rounds put every path on the same machine time, while within a stretch
//! requests run back to back, as a client's do.
//! And `DynamoDb::call` is timed on its own (1 client, the request's bytes
//! in, the response's out: guard, decode, engine, encode, no HTTP), so the
//! handler's cost over the library shows without the client's noise.
//!
//! `--ops get,query` (or `BENCH_OPS`) runs only the operations named
//! (`put`, `get`, `query`, `update`), e.g. to profile one of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use woocom_dev::manifest::Manifest;
use woocom_dev::{Stack, StackOptions};

#[path = "../tests/common/sdk.rs"]
mod sdk;

/// How long each case runs, per concurrency level and path.
const CASE_TIME: Duration = Duration::from_millis(2500);
const TABLE: &str = "bench";

#[derive(Clone, Copy, PartialEq)]
enum Op {
    PutItem,
    GetItem,
    Query100,
    ConditionalUpdate,
}

impl Op {
    const ALL: [Op; 4] = [
        Op::PutItem,
        Op::GetItem,
        Op::Query100,
        Op::ConditionalUpdate,
    ];

    /// The operations `--ops` / `BENCH_OPS` name (all when neither is set).
    fn selected() -> Result<Vec<Op>, String> {
        let mut args = std::env::args().skip_while(|a| a != "--ops").skip(1);
        let list = match args.next().or_else(|| std::env::var("BENCH_OPS").ok()) {
            Some(list) => list,
            None => return Ok(Op::ALL.to_vec()),
        };
        list.split(',')
            .map(|name| match name.trim() {
                "put" => Ok(Op::PutItem),
                "get" => Ok(Op::GetItem),
                "query" => Ok(Op::Query100),
                "update" => Ok(Op::ConditionalUpdate),
                other => Err(format!(
                    "unknown operation `{other}` in --ops (put, get, query, update)"
                )),
            })
            .collect()
    }

    fn name(self) -> &'static str {
        match self {
            Op::PutItem => "PutItem",
            Op::GetItem => "GetItem",
            Op::Query100 => "Query (100 items)",
            Op::ConditionalUpdate => "UpdateItem (conditional)",
        }
    }
}

struct Stats {
    ops_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn stats(mut latencies: Vec<Duration>, elapsed: Duration) -> Stats {
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Stats {
        ops_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// One client's request for iteration `i` (client `c`).
async fn sdk_call(client: &aws_sdk_dynamodb::Client, op: Op, c: usize, i: usize) {
    let s = |v: String| AttributeValue::S(v);
    let result = match op {
        Op::PutItem => client
            .put_item()
            .table_name(TABLE)
            .item("pk", s(format!("put-{c}")))
            .item("sk", s(format!("{i}")))
            .item("payload", s("x".repeat(200)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}")),
        Op::GetItem => client
            .get_item()
            .table_name(TABLE)
            .key("pk", s("hot".into()))
            .key("sk", s(format!("{:03}", i % 100)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}")),
        Op::Query100 => client
            .query()
            .table_name(TABLE)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s("hot".into()))
            .send()
            .await
            .map(|out| assert_eq!(out.count(), 100))
            .map_err(|e| format!("{e:?}")),
        Op::ConditionalUpdate => client
            .update_item()
            .table_name(TABLE)
            .key("pk", s("counter".into()))
            .key("sk", s(format!("{c}")))
            .update_expression("SET n = n + :one")
            .condition_expression("n >= :zero")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}")),
    };
    if let Err(e) = result {
        panic!("{}: {e}", op.name());
    }
}

/// The same request as JSON, for the library path.
fn library_request(op: Op, c: usize, i: usize) -> Value {
    match op {
        Op::PutItem => json!({"TableName": TABLE, "Item": {
            "pk": {"S": format!("libput-{c}")}, "sk": {"S": format!("{i}")}, "payload": {"S": "x".repeat(200)}}}),
        Op::GetItem => {
            json!({"TableName": TABLE, "Key": {"pk": {"S": "hot"}, "sk": {"S": format!("{:03}", i % 100)}}})
        }
        Op::Query100 => json!({"TableName": TABLE, "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "hot"}}}),
        Op::ConditionalUpdate => {
            json!({"TableName": TABLE, "Key": {"pk": {"S": "counter"}, "sk": {"S": format!("{c}")}},
            "UpdateExpression": "SET n = n + :one", "ConditionExpression": "n >= :zero",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":zero": {"N": "0"}}})
        }
    }
}

/// The engine's library API: typed request decoded from JSON, then the call.
fn library_call(db: &dynoxide::Database, op: Op, request: &Value) {
    fn de<T: serde::de::DeserializeOwned>(v: &Value) -> T {
        T::deserialize(v).expect("request decodes")
    }
    let ok = match op {
        Op::PutItem => db.put_item(de(request)).is_ok(),
        Op::GetItem => db.get_item(de(request)).is_ok(),
        Op::Query100 => db
            .query(de(request))
            .is_ok_and(|r| r.items.as_ref().map_or(0, Vec::len) == 100),
        Op::ConditionalUpdate => db.update_item(de(request)).is_ok(),
    };
    assert!(ok, "{}: library call failed", op.name());
}

/// What one client measures on each of the four paths.
struct Interleaved {
    lib: Stats,
    http: Stats,
    sdk: Stats,
    floor: Stats,
}

/// Rounds the one-client comparison is cut into.
const ROUNDS: u32 = 10;

/// One client taking four paths, each for a stretch of every round, the
/// order rotating from round to round: the library call, the same request's
/// bytes over HTTP from a minimal client (one hyper keep-alive connection,
/// no SDK), the SDK against the devserver, and the SDK against the stub
/// (the client's floor). On 2 shared cores a run's latencies drift as a
/// whole; the rounds put every path on the same stretches of machine time,
/// while within a stretch a path runs back to back, as a client calling
/// DynamoDB does (a path interleaved request by request would pay for the
/// caches the others leave cold).
async fn run_interleaved(
    db: &dynoxide::Database,
    http: &mut RawClient,
    client: &aws_sdk_dynamodb::Client,
    stub: &aws_sdk_dynamodb::Client,
    op: Op,
) -> Interleaved {
    let start = Instant::now();
    let stretch = CASE_TIME / ROUNDS / 4;
    let mut times: [Vec<Duration>; 4] = Default::default();
    let mut i = 0;
    for round in 0..ROUNDS as usize {
        for k in 0..4 {
            let path = (round + k) % 4;
            let until = Instant::now() + stretch;
            while Instant::now() < until {
                let request = library_request(op, 0, i);
                let body = bytes::Bytes::from(request.to_string());
                let t = Instant::now();
                match path {
                    // The engine call blocks; the runtime hands this
                    // worker's other tasks on meanwhile.
                    0 => tokio::task::block_in_place(|| library_call(db, op, &request)),
                    1 => http.call(target(op), body).await,
                    2 => sdk_call(client, op, 0, i).await,
                    _ => sdk_call(stub, op, 0, i).await,
                }
                times[path].push(t.elapsed());
                i += 1;
            }
        }
    }
    let elapsed = start.elapsed() / 4;
    let [lib, http, sdk, floor] = times.map(|t| stats(t, elapsed));
    Interleaved {
        lib,
        http,
        sdk,
        floor,
    }
}

/// A minimal AWS JSON 1.0 client: one keep-alive HTTP/1.1 connection,
/// driven by the task that sends (no hand-off to a connection task), the
/// request's bytes as they are, the whole answer read.
struct RawClient {
    host: String,
    signature: Vec<(&'static str, String)>,
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    connection: hyper::client::conn::http1::Connection<
        hyper_util::rt::TokioIo<tokio::net::TcpStream>,
        http_body_util::Full<bytes::Bytes>,
    >,
}

impl RawClient {
    async fn connect(endpoint: &str) -> RawClient {
        let host = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let stream = tokio::net::TcpStream::connect(&host)
            .await
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        let signature = woocom_dev::dynamodb::sigv4::sign(
            &host,
            &[],
            b"",
            "us-east-1",
            "bench",
            "bench",
            chrono::Utc::now(),
        );
        RawClient {
            host,
            signature,
            sender,
            connection,
        }
    }

    async fn call(&mut self, operation: &str, body: bytes::Bytes) {
        use http_body_util::BodyExt;
        let mut request = http::Request::post("/")
            .header("host", &self.host)
            .header("x-amz-target", format!("DynamoDB_20120810.{operation}"))
            .header("content-type", "application/x-amz-json-1.0");
        // Signed once per client (the endpoint checks the shape and the
        // time, not the signature): a client's cost stays the request's.
        for (name, value) in &self.signature {
            request = request.header(*name, value);
        }
        let request = request
            .body(http_body_util::Full::new(body))
            .expect("request");
        let sender = &mut self.sender;
        let exchange = async move {
            let response = sender.send_request(request).await.expect("answer");
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            (status, body)
        };
        // The connection makes progress only while polled: poll it with
        // the exchange (it ends only if the server closes).
        let (status, body) = tokio::select! {
            biased;
            answer = exchange => answer,
            end = &mut self.connection => panic!("connection ended: {end:?}"),
        };
        assert!(status.is_success(), "{operation}: {status} {body:?}");
    }
}

async fn run_sdk(client: &aws_sdk_dynamodb::Client, op: Op, clients: usize) -> Stats {
    let start = Instant::now();
    let deadline = start + CASE_TIME;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    sdk_call(&client, op, c, i).await;
                    latencies.push(t.elapsed());
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    stats(all, start.elapsed())
}

fn run_library(db: &dynoxide::Database, op: Op, clients: usize) -> Stats {
    let start = Instant::now();
    let deadline = start + CASE_TIME;
    let all = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut i = 0;
                    while Instant::now() < deadline {
                        let request = library_request(op, c, i);
                        let t = Instant::now();
                        library_call(db, op, &request);
                        latencies.push(t.elapsed());
                        i += 1;
                    }
                    latencies
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("library thread"))
            .collect::<Vec<_>>()
    });
    stats(all, start.elapsed())
}

/// The operation's name in `X-Amz-Target`.
fn target(op: Op) -> &'static str {
    match op {
        Op::PutItem => "PutItem",
        Op::GetItem => "GetItem",
        Op::Query100 => "Query",
        Op::ConditionalUpdate => "UpdateItem",
    }
}

/// `DynamoDb::call` alone, from one task: the handler without HTTP.
async fn run_handler(dynamodb: &Arc<woocom_dev::dynamodb::DynamoDb>, op: Op) -> Stats {
    let start = Instant::now();
    let deadline = start + CASE_TIME;
    let mut latencies = Vec::new();
    let mut i = 0;
    while Instant::now() < deadline {
        let body = bytes::Bytes::from(library_request(op, 0, i).to_string());
        let t = Instant::now();
        dynamodb.call(target(op), body).await.expect("handler call");
        latencies.push(t.elapsed());
        i += 1;
    }
    stats(latencies, start.elapsed())
}

/// The devserver's answer to the library request of each operation, as
/// bytes on the wire.
async fn recorded_answers(endpoint: &str) -> Vec<(String, bytes::Bytes)> {
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for op in Op::ALL {
        let target = target(op);
        let body = library_request(op, 0, 1).to_string();
        let mut request = http
            .post(endpoint)
            .header("x-amz-target", format!("DynamoDB_20120810.{target}"))
            .header("content-type", "application/x-amz-json-1.0");
        for (name, value) in woocom_dev::dynamodb::sigv4::sign(
            endpoint.trim_start_matches("http://").trim_end_matches('/'),
            &[],
            body.as_bytes(),
            "us-east-1",
            "bench",
            "bench",
            chrono::Utc::now(),
        ) {
            request = request.header(name, value);
        }
        let body = request
            .body(body)
            .send()
            .await
            .expect("recording request")
            .bytes()
            .await
            .expect("recorded answer");
        answers.push((format!("DynamoDB_20120810.{target}"), body));
    }
    answers
}

/// A server that answers each operation with its recorded bytes (and the
/// headers the SDK reads), doing no other work: the client's floor.
async fn stub_server(answers: Vec<(String, bytes::Bytes)>) -> String {
    use axum::http::{HeaderMap, HeaderValue};
    let answers = Arc::new(answers);
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, _body: bytes::Bytes| {
            let answers = answers.clone();
            async move {
                let target = headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let body = answers
                    .iter()
                    .find(|(t, _)| t == target)
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                let mut crc = flate2::Crc::new();
                crc.update(&body);
                let mut response = axum::response::Response::new(axum::body::Body::from(body));
                let h = response.headers_mut();
                h.insert(
                    "content-type",
                    HeaderValue::from_static("application/x-amz-json-1.0"),
                );
                h.insert("x-amz-crc32", HeaderValue::from(crc.sum()));
                h.insert("x-amzn-requestid", HeaderValue::from_static("STUB"));
                response
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("stub listener");
    let url = format!("http://{}", listener.local_addr().expect("stub address"));
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("stub server");
    });
    url
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let ops = match Op::selected() {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let manifest = Manifest::parse(
            "bench.toml".as_ref(),
            &format!("[stack]\nname = \"bench\"\n\n[tables.{TABLE}]\npartition_key = {{ name = \"pk\" }}\nsort_key = {{ name = \"sk\" }}\n"),
        )
        .expect("bench manifest");
        let stack = Stack::start(StackOptions::new(manifest).free_ports().quiet_build())
            .await
            .expect("stack starts");
        let config = sdk::config(&stack.urls().aws).await;
        let client = aws_sdk_dynamodb::Client::new(&config);
        for i in 0..100 {
            client
                .put_item()
                .table_name(TABLE)
                .item("pk", AttributeValue::S("hot".into()))
                .item("sk", AttributeValue::S(format!("{i:03}")))
                .item("payload", AttributeValue::S("y".repeat(100)))
                .send()
                .await
                .expect("seed");
        }
        for c in 0..16 {
            client
                .put_item()
                .table_name(TABLE)
                .item("pk", AttributeValue::S("counter".into()))
                .item("sk", AttributeValue::S(c.to_string()))
                .item("n", AttributeValue::N("0".into()))
                .send()
                .await
                .expect("seed");
        }
        let stub_client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .endpoint_url(stub_server(recorded_answers(&stack.urls().aws).await).await)
                .build(),
        );
        let db = stack.dynamodb().database();
        let db = Arc::new(db);

        println!(
            "\nDynamoDB: aws-sdk-dynamodb over HTTP vs the engine's library API ({:.1} s per case, loopback)\n",
            CASE_TIME.as_secs_f64()
        );
        println!(
            "{:26} {:>3}  {:>10} {:>9} {:>9}   {:>10} {:>9} {:>9}   {:>6}",
            "operation", "c", "SDK ops/s", "p50 µs", "p99 µs", "lib ops/s", "p50 µs", "p99 µs", "ratio"
        );
        let mut get16: Option<f64> = None;
        for &op in &ops {
            for clients in [1, 16] {
                let lib = {
                    let db = db.clone();
                    tokio::task::spawn_blocking(move || run_library(&db, op, clients))
                        .await
                        .expect("library run")
                };
                let sdk = run_sdk(&client, op, clients).await;
                if op == Op::GetItem && clients == 16 {
                    get16 = Some(sdk.ops_per_sec);
                }
                println!(
                    "{:26} {:>3}  {:>10.0} {:>9.1} {:>9.1}   {:>10.0} {:>9.1} {:>9.1}   {:>5.1}x",
                    op.name(),
                    clients,
                    sdk.ops_per_sec,
                    us(sdk.p50),
                    us(sdk.p99),
                    lib.ops_per_sec,
                    us(lib.p50),
                    us(lib.p99),
                    us(sdk.p50) / us(lib.p50).max(0.001),
                );
            }
        }

        println!(
            "\nOne client, the paths taking turns (stretches of {} ms, order rotating); p50 µs. HTTP: the same request's bytes from a", CASE_TIME.as_millis() / u128::from(ROUNDS) / 4
        );
        println!(
            "minimal client (hyper, keep-alive). Layer: HTTP minus library. Handler: DynamoDb::call"
        );
        println!(
            "without HTTP. SDK floor: the SDK against a stub answering the devserver's bytes (the client's own work).\n"
        );
        println!(
            "{:26}   {:>9} {:>9} {:>9}   {:>9}   {:>9} {:>9} {:>9}",
            "operation", "library", "HTTP", "layer", "handler", "SDK", "SDK floor", "SDK−lib"
        );
        let mut http = Some(RawClient::connect(&stack.urls().aws).await);
        let mut worst: Option<(f64, &str)> = None;
        let mut floors = Vec::new();
        for &op in &ops {
            // On a runtime worker, like the servers' tasks: the client's
            // wake-ups are then the runtime's own, not a hand-off to the
            // thread that runs `main`.
            let (db, client, stub) = (db.clone(), client.clone(), stub_client.clone());
            let mut raw = http.take().expect("the raw client comes back");
            let (run, raw) = tokio::spawn(async move {
                let run = run_interleaved(&db, &mut raw, &client, &stub, op).await;
                (run, raw)
            })
            .await
            .expect("interleaved run");
            http = Some(raw);
            let handler = run_handler(stack.dynamodb(), op).await;
            let layer = us(run.http.p50) - us(run.lib.p50);
            if worst.is_none_or(|(w, _)| layer > w) {
                worst = Some((layer, op.name()));
            }
            floors.push(us(run.floor.p50));
            println!(
                "{:26}   {:>9.1} {:>9.1} {:>9.1}   {:>9.1}   {:>9.1} {:>9.1} {:>9.1}",
                op.name(),
                us(run.lib.p50),
                us(run.http.p50),
                layer,
                us(handler.p50),
                us(run.sdk.p50),
                us(run.floor.p50),
                us(run.sdk.p50) - us(run.lib.p50),
            );
        }
        if let Some((worst, name)) = worst {
            println!(
                "\nour layer at p50 (HTTP minus library, 1 client), worst operation: {worst:.1} µs, {name} (target < 100 µs: {})",
                if worst < 100.0 { "met" } else { "MISSED" }
            );
        }
        let (lo, hi) = floors
            .iter()
            .fold((f64::MAX, 0.0_f64), |(lo, hi), f| (lo.min(*f), hi.max(*f)));
        println!(
            "the SDK's own work per request (against the stub): {lo:.0}-{hi:.0} µs at p50, the same against any endpoint"
        );
        if let Some(get16) = get16 {
            println!(
                "GetItem with 16 clients: {get16:.0} ops/s (target > 10,000: {})\n",
                if get16 > 10_000.0 { "met" } else { "MISSED" }
            );
        }
        stack.shutdown().await;
    });
}
