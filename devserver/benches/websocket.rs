//! WebSocket API pushes through `@connections` at many connections (issue
//! #5):
//!
//! ```text
//! cargo bench -p woocom-dev --bench websocket
//! ```
//!
//! The stack runs in this process (a WebSocket API with no routes, so no
//! function runs: what is measured is the gateway). The clients run in a
//! child process (this binary again, in client mode), so that this
//! process's RSS is the server's alone: memory per connection is
//! (VmRSS with N idle connections − VmRSS before) / N, read from
//! /proc/self/status. The child reports its own delta too, for scale.
//!
//! The child opens N connections, the parent hands it their connection ids
//! (from the gateway's table), and the child then, for each round, pushes
//! one message to every connection with `POST /<stage>/@connections/{id}`
//! over several keep-alive HTTP/1.1 connections (as functions would), each
//! message carrying its index. Push-to-receive latency is from just before
//! the POST is written to the moment the WebSocket client has the message,
//! both clocks in the child. Messages per second is N over the time from
//! the first POST to the last message received. Loopback only; every wait
//! is bounded and the run stops by itself.
//!
//! Options, as `--name value` after `--` or as environment variables:
//! - `--connections` / `BENCH_WS_CONNECTIONS`: N (default 1000). Each
//!   connection is a file descriptor on both sides: with N near or above
//!   the open-file limit (`ulimit -n`, often 1024), raise it first, e.g.
//!   `ulimit -n 4096`; the bench refuses to start when it would not fit.
//! - `--rounds` / `BENCH_WS_ROUNDS`: push rounds (default 3).
//! - `--pushers` / `BENCH_WS_PUSHERS`: concurrent `@connections` HTTP
//!   connections (default 16).
//! - `--bytes` / `BENCH_WS_BYTES`: message size (default 64).
//!
//! Quick run: `cargo bench -p woocom-dev --bench websocket -- --connections 200 --rounds 1`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use woocom_dev::manifest::Manifest;
use woocom_dev::{Stack, StackOptions};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Targets from issue #5.
const TARGET_P99_MS: f64 = 50.0;
const TARGET_KB_PER_CONNECTION: f64 = 50.0;
/// Every wait on the other process or the network ends within this.
const BOUND: Duration = Duration::from_secs(60);

const MANIFEST: &str = r#"
[stack]
name = "bench-websocket"

[api]
stage = "bench"

[websocket]
"#;

#[derive(Clone, Copy)]
struct Options {
    connections: usize,
    rounds: usize,
    pushers: usize,
    bytes: usize,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, BoxError> {
        let mut values: Vec<(String, String)> = [
            ("connections", "BENCH_WS_CONNECTIONS"),
            ("rounds", "BENCH_WS_ROUNDS"),
            ("pushers", "BENCH_WS_PUSHERS"),
            ("bytes", "BENCH_WS_BYTES"),
        ]
        .iter()
        .filter_map(|(name, var)| Some(((*name).to_owned(), std::env::var(var).ok()?)))
        .collect();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "--bench" {
                continue;
            }
            let Some(name) = arg.strip_prefix("--") else {
                eprintln!("ignoring argument `{arg}`");
                continue;
            };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => (
                    name.to_owned(),
                    args.next()
                        .ok_or(format!("--{name} needs a value"))?
                        .clone(),
                ),
            };
            values.push((name, value));
        }
        let mut o = Options {
            connections: 1000,
            rounds: 3,
            pushers: 16,
            bytes: 64,
        };
        for (name, value) in values {
            let n: usize = value
                .parse()
                .map_err(|e| format!("bad value `{value}` for {name}: {e}"))?;
            match name.as_str() {
                "connections" => o.connections = n,
                "rounds" => o.rounds = n,
                "pushers" => o.pushers = n,
                "bytes" => o.bytes = n,
                _ => return Err(format!("unknown option --{name}").into()),
            }
        }
        if !(1..=50_000).contains(&o.connections)
            || !(1..=100).contains(&o.rounds)
            || !(1..=256).contains(&o.pushers)
            || !(8..=128 * 1024).contains(&o.bytes)
        {
            return Err("connections 1-50000, rounds 1-100, pushers 1-256, bytes 8-131072".into());
        }
        Ok(o)
    }
}

/// A `/proc/self/status` field in KB (`VmRSS`, `VmHWM`).
fn status_kb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// The soft limit on open files, from /proc/self/limits.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--client-mode") {
        return client::main(&args[1..]);
    }
    let options = Options::parse(&args)?;
    let needed = options.connections + options.pushers + 200;
    if let Some(limit) = open_file_limit()
        && limit < needed
    {
        return Err(format!(
            "{} connections need about {needed} open files per process; the limit is {limit}. Raise it (`ulimit -n {}`) or use --connections {}",
            options.connections,
            needed.next_power_of_two(),
            limit.saturating_sub(options.pushers + 200)
        )
        .into());
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-server")
        .build()?;
    let manifest = Manifest::parse("bench-websocket.toml".as_ref(), MANIFEST)?;
    let stack = runtime.block_on(Stack::start(
        StackOptions::new(manifest).free_ports().quiet_build(),
    ))?;
    let result = run(&stack, options);
    runtime.block_on(stack.shutdown());
    result
}

fn run(stack: &Stack, o: Options) -> Result<(), BoxError> {
    let ws_url = stack.urls().websocket.clone();
    let endpoint = ws_url.replacen("ws://", "http://", 1);
    std::thread::sleep(Duration::from_millis(300));
    let before_kb = status_kb("VmRSS:");

    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--client-mode".to_owned(),
            ws_url,
            endpoint,
            o.connections.to_string(),
            o.rounds.to_string(),
            o.pushers.to_string(),
            o.bytes.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let (Some(mut to_child), Some(from_child)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("no pipes to the client process".into());
    };
    let mut lines = BufReader::new(from_child).lines();
    let mut expect = |what: &str| -> Result<String, BoxError> {
        match lines.next() {
            Some(Ok(line)) if line.starts_with(what) => Ok(line),
            Some(Ok(line)) => Err(format!("client said `{line}`, expected {what}").into()),
            _ => Err(format!("the client process ended before {what}").into()),
        }
    };

    eprintln!("opening {} connections...", o.connections);
    expect("CONNECTED")?;
    let started = Instant::now();
    let ids = loop {
        let ids = stack.websocket().connection_ids();
        if ids.len() >= o.connections || started.elapsed() > BOUND {
            break ids;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if ids.len() != o.connections {
        return Err(format!("{} of {} connections open", ids.len(), o.connections).into());
    }
    std::thread::sleep(Duration::from_millis(500));
    let idle_kb = status_kb("VmRSS:");
    let server_kb_per_connection = (idle_kb - before_kb) / o.connections as f64;

    for id in &ids {
        writeln!(to_child, "{id}")?;
    }
    writeln!(to_child, "GO")?;
    to_child.flush()?;
    eprintln!("pushing {} round(s)...", o.rounds);
    let mut rounds = Vec::new();
    let client_line = loop {
        let line = expect("")?;
        if let Some(json) = line.strip_prefix("ROUND ") {
            rounds.push(serde_json::from_str::<serde_json::Value>(json)?);
        } else if let Some(json) = line.strip_prefix("DONE ") {
            break serde_json::from_str::<serde_json::Value>(json)?;
        }
    };
    let after_kb = status_kb("VmRSS:");
    drop(to_child);
    let _ = child.wait();

    let num = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "\nwebsocket: {} connections, {} round(s) of one {}-byte push each, {} pushers; clients in a child process; loopback",
        o.connections, o.rounds, o.bytes, o.pushers
    );
    println!(
        "server memory: {:.1} MB before, {:.1} MB with the idle connections, {:.1} MB after pushing",
        before_kb / 1024.0,
        idle_kb / 1024.0,
        after_kb / 1024.0
    );
    println!(
        "  per idle connection: {server_kb_per_connection:.1} KB (target < {TARGET_KB_PER_CONNECTION} KB: {})",
        verdict(server_kb_per_connection < TARGET_KB_PER_CONNECTION)
    );
    println!(
        "  client side (child process, not counted above): {:.1} KB per connection",
        num(&client_line, "kb_per_connection")
    );
    for (i, r) in rounds.iter().enumerate() {
        println!(
            "round {}: {} pushes in {:.3} s = {:.0} msg/s; push-to-receive p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            i + 1,
            num(r, "messages"),
            num(r, "seconds"),
            num(r, "per_second"),
            num(r, "p50_ms"),
            num(r, "p99_ms"),
            num(r, "max_ms"),
        );
    }
    let p99 = num(&client_line, "p99_ms");
    println!(
        "all rounds: p50 {:.2} ms, p99 {p99:.2} ms (target < {TARGET_P99_MS} ms: {}), {:.0} msg/s",
        num(&client_line, "p50_ms"),
        verdict(p99 < TARGET_P99_MS),
        num(&client_line, "per_second"),
    );
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// The client process: connects, reports, pushes when told, measures.
mod client {
    use super::*;

    pub fn main(args: &[String]) -> Result<(), BoxError> {
        let [ws_url, endpoint, n, rounds, pushers, bytes] = args else {
            return Err("client mode takes 6 arguments".into());
        };
        let o = Options {
            connections: n.parse()?,
            rounds: rounds.parse()?,
            pushers: pushers.parse()?,
            bytes: bytes.parse()?,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("bench-client")
            .build()?;
        runtime.block_on(run(ws_url, endpoint, o))
    }

    /// Receive times (ns since `epoch`) by message index, 0 = not yet.
    struct Board {
        epoch: Instant,
        sent: Vec<AtomicU64>,
        received: Vec<AtomicU64>,
        count: AtomicUsize,
    }

    impl Board {
        fn now(&self) -> u64 {
            self.epoch.elapsed().as_nanos() as u64
        }
    }

    async fn run(ws_url: &str, endpoint: &str, o: Options) -> Result<(), BoxError> {
        let n = o.connections;
        let board = Arc::new(Board {
            epoch: Instant::now(),
            sent: (0..n).map(|_| AtomicU64::new(0)).collect(),
            received: (0..n).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicUsize::new(0),
        });
        let before_kb = status_kb("VmRSS:");

        // Connect, 50 handshakes at a time; each socket gets a reader task.
        let mut sockets = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
            let handshakes = chunk.iter().map(|_| async {
                tokio::time::timeout(BOUND, tokio_tungstenite::connect_async(ws_url)).await
            });
            for result in futures_util::future::join_all(handshakes).await {
                let (socket, _) = result.map_err(|_| "handshake timed out")??;
                sockets.push(socket);
            }
        }
        let readers: Vec<_> = sockets
            .into_iter()
            .map(|socket| {
                let board = board.clone();
                tokio::spawn(async move {
                    let (_write, mut read) = socket.split();
                    while let Some(Ok(message)) = read.next().await {
                        let index = message
                            .to_text()
                            .ok()
                            .and_then(|t| t.split(' ').next())
                            .and_then(|i| i.parse::<usize>().ok());
                        if let Some(slot) = index.and_then(|i| board.received.get(i)) {
                            slot.store(board.now().max(1), Ordering::Relaxed);
                            board.count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let kb_per_connection = (status_kb("VmRSS:") - before_kb) / n as f64;
        println!("CONNECTED");

        // The connection ids, from the parent, then GO.
        let ids: Vec<String> = tokio::task::spawn_blocking(|| {
            let mut ids = Vec::new();
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line == "GO" {
                    break;
                }
                ids.push(line);
            }
            ids
        })
        .await?;
        let ids = Arc::new(ids);
        let addr = endpoint
            .strip_prefix("http://")
            .and_then(|r| r.split_once('/'))
            .ok_or("bad endpoint")?;
        let (host, stage) = (addr.0.to_owned(), addr.1.to_owned());
        let pad = "x".repeat(o.bytes);

        let mut all: Vec<f64> = Vec::new();
        let mut total_secs = 0.0;
        for _ in 0..o.rounds {
            for i in 0..n {
                board.sent[i].store(0, Ordering::Relaxed);
                board.received[i].store(0, Ordering::Relaxed);
            }
            board.count.store(0, Ordering::Relaxed);
            let next = Arc::new(AtomicUsize::new(0));
            let start = Instant::now();
            let mut pushers = Vec::new();
            for _ in 0..o.pushers.min(n) {
                let (board, ids, next) = (board.clone(), ids.clone(), next.clone());
                let (host, stage, pad) = (host.clone(), stage.clone(), pad.clone());
                pushers.push(tokio::spawn(async move {
                    push_loop(&host, &stage, &pad, &ids, &board, &next).await
                }));
            }
            for p in pushers {
                p.await??;
            }
            let deadline = Instant::now() + BOUND;
            while board.count.load(Ordering::Relaxed) < n && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            let secs = start.elapsed().as_secs_f64();
            let mut latencies: Vec<f64> = (0..n)
                .filter_map(|i| {
                    let sent = board.sent[i].load(Ordering::Relaxed);
                    let got = board.received[i].load(Ordering::Relaxed);
                    (sent > 0 && got > 0).then(|| got.saturating_sub(sent) as f64 / 1e6)
                })
                .collect();
            if latencies.len() < n {
                return Err(format!("{} of {n} pushes arrived", latencies.len()).into());
            }
            latencies.sort_by(f64::total_cmp);
            println!(
                "ROUND {}",
                serde_json::json!({
                    "messages": n,
                    "seconds": secs,
                    "per_second": n as f64 / secs,
                    "p50_ms": percentile(&latencies, 0.50),
                    "p99_ms": percentile(&latencies, 0.99),
                    "max_ms": latencies.last().copied().unwrap_or(f64::NAN),
                })
            );
            total_secs += secs;
            all.extend(latencies);
        }
        all.sort_by(f64::total_cmp);
        println!(
            "DONE {}",
            serde_json::json!({
                "kb_per_connection": kb_per_connection,
                "p50_ms": percentile(&all, 0.50),
                "p99_ms": percentile(&all, 0.99),
                "per_second": (n * o.rounds) as f64 / total_secs,
            })
        );
        for reader in readers {
            reader.abort();
        }
        Ok(())
    }

    fn percentile(sorted: &[f64], p: f64) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
    }

    /// One keep-alive HTTP/1.1 connection pushing the next unsent index.
    async fn push_loop(
        host: &str,
        stage: &str,
        pad: &str,
        ids: &[String],
        board: &Board,
        next: &AtomicUsize,
    ) -> Result<(), BoxError> {
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(id) = ids.get(i) else {
                return Ok(());
            };
            let body = Bytes::from(format!("{i} {pad}"));
            let request =
                http::Request::post(format!("/{stage}/@connections/{}", id.replace('=', "%3D")))
                    .header("host", host)
                    .body(Full::new(body))?;
            sender.ready().await?;
            board.sent[i].store(board.now().max(1), Ordering::Relaxed);
            let response = tokio::time::timeout(BOUND, sender.send_request(request)).await??;
            let status = response.status();
            let _ = response.into_body().collect().await?;
            if status != 200 {
                return Err(format!("@connections answered {status} for {id}").into());
            }
        }
    }
}
