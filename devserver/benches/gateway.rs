//! Warm request throughput and latency through the REST gateway and a Lambda
//! function, next to a plain axum handler measured in the same run (issues
//! #2 and #21):
//!
//! ```text
//! cargo bench -p woocom-dev --bench gateway
//! ```
//!
//! The headline (see `gateway/outside.rs`) is the stack as users run it:
//! the real `woocom-dev up` with its logs on, next to `cargo lambda watch`
//! serving the same `lambda_http` handler and plain axum, each in its own
//! process, loaded from another process. The rows below it measure the
//! devserver in-process, with CPU time per part:
//!
//! The stack is `benches/bench.toml` started in-process on free ports (the
//! stack builds the probe function with cargo, as `woocom-dev up` does);
//! every request is `GET /bench/ping?probe=ok`, which the probe answers at
//! once with `{"ok":true}`. The plain axum server answers the same body.
//! For each connection count, a closed loop of keep-alive HTTP/1.1
//! connections (one hyper client each) runs for a fixed time against each
//! server, after a warm-up that also starts the function's instances. The
//! time is cut into rounds that alternate between the servers (A B B A ..),
//! so that load from elsewhere on the machine falls on both alike.
//! Load goes to 127.0.0.1 only and stops by itself.
//!
//! A third row, "lambda host only", invokes the function through the Lambda
//! host in-process (`LambdaHost::invoke`, the gateway's own call) with the
//! event the gateway builds for the same request, as many at once as there
//! are connections: the Runtime API round trip and the function, without
//! HTTP in front. Each row also shows the CPU time per request of the
//! client, the servers (devserver or axum) and the function processes, read
//! from `/proc`: what bounds the throughput on a machine with few cores.
//! The devserver's share is split into its own code (user time) and the
//! kernel's (sockets: each send on loopback runs the receive path and wakes
//! whoever waits at the other end), and the ratio it would reach if its own
//! code cost nothing is printed: the bound on what work on the devserver
//! can gain.
//!
//! Builds: the devserver and plain axum are built with the bench profile
//! (optimised); the function is a debug build unless `--release-functions`,
//! as `woocom-dev up` builds it unless `up --release`. The output says which.
//!
//! Options, as `--name value` after `--` or as environment variables:
//! - `--secs` / `BENCH_SECS`: seconds per measured run (default 4);
//! - `--warmup` / `BENCH_WARMUP_SECS`: seconds of warm-up per server (1);
//! - `--rounds` / `BENCH_ROUNDS`: rounds the measured time is cut into (4);
//! - `--connections` / `BENCH_CONNECTIONS`: comma list (default `1,32`);
//! - `--concurrency` / `BENCH_CONCURRENCY`: the function's instances
//!   (default: `concurrency` in bench.toml);
//! - `--server-threads` / `BENCH_SERVER_THREADS`: tokio workers of the
//!   servers' runtime (default: one per core, as `woocom-dev up`);
//! - `--release-functions` / `BENCH_RELEASE_FUNCTIONS=1`: build the function
//!   with `--release` (default: a debug build, as `woocom-dev up`);
//! - `--no-cargo-lambda` / `BENCH_NO_CARGO_LAMBDA=1`: leave out
//!   `cargo lambda watch` (otherwise installed from PyPI into
//!   `.woocom/venv` on first use);
//! - `--outside-only` / `BENCH_OUTSIDE_ONLY=1`: only the headline.
//!
//! The devserver's logs are off unless `WOOCOM_LOG` sets a filter (e.g.
//! `WOOCOM_LOG=info`); they are then formatted as `woocom-dev up` formats
//! them and thrown away, so the figures include their cost but not a
//! terminal's.
//!
//! Quick run: `cargo bench -p woocom-dev --bench gateway -- --secs 1 --warmup 0.5`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use woocom_dev::lambda::{InvokeRequest, LambdaHost};
use woocom_dev::{Stack, StackOptions};

#[path = "gateway/outside.rs"]
mod outside;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What both servers answer.
const BODY: &[u8] = br#"{"ok":true}"#;
/// In the probe's answer to `probe=ok`: a 200 proxy response.
const OK_STATUS: &[u8] = br#""statusCode":200"#;
/// A bound on requests per connection and run, so a run stops even if the
/// clock misbehaves.
const MAX_REQUESTS_PER_CONNECTION: usize = 2_000_000;
/// Targets from issue #2.
const TARGET_ADDED_P50_MS: f64 = 0.3;
const TARGET_RATIO: f64 = 1.0 / 6.0;

struct Options {
    secs: f64,
    warmup: f64,
    connections: Vec<usize>,
    rounds: u32,
    concurrency: Option<usize>,
    server_threads: Option<usize>,
    release_functions: bool,
    cargo_lambda: bool,
    outside_only: bool,
}

impl Options {
    fn parse() -> Result<Options, BoxError> {
        let mut values: Vec<(String, String)> = [
            ("secs", "BENCH_SECS"),
            ("warmup", "BENCH_WARMUP_SECS"),
            ("connections", "BENCH_CONNECTIONS"),
            ("rounds", "BENCH_ROUNDS"),
            ("concurrency", "BENCH_CONCURRENCY"),
            ("server-threads", "BENCH_SERVER_THREADS"),
            ("release-functions", "BENCH_RELEASE_FUNCTIONS"),
            ("no-cargo-lambda", "BENCH_NO_CARGO_LAMBDA"),
            ("outside-only", "BENCH_OUTSIDE_ONLY"),
        ]
        .iter()
        .filter_map(|(name, var)| Some(((*name).to_owned(), std::env::var(var).ok()?)))
        .collect();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            // `cargo bench` passes `--bench` to every bench binary.
            if arg == "--bench" {
                continue;
            }
            let Some(name) = arg.strip_prefix("--") else {
                eprintln!("ignoring argument `{arg}`");
                continue;
            };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None if matches!(
                    name,
                    "release-functions" | "no-cargo-lambda" | "outside-only"
                ) =>
                {
                    (name.to_owned(), "1".to_owned())
                }
                None => (
                    name.to_owned(),
                    args.next().ok_or(format!("--{name} needs a value"))?,
                ),
            };
            values.push((name, value));
        }
        let mut options = Options {
            secs: 4.0,
            warmup: 1.0,
            connections: vec![1, 32],
            rounds: 4,
            concurrency: None,
            server_threads: None,
            release_functions: false,
            cargo_lambda: true,
            outside_only: false,
        };
        for (name, value) in values {
            let bad = |e: &dyn std::fmt::Display| format!("bad value `{value}` for {name}: {e}");
            match name.as_str() {
                "secs" => options.secs = value.parse().map_err(|e| bad(&e))?,
                "warmup" => options.warmup = value.parse().map_err(|e| bad(&e))?,
                "connections" => {
                    options.connections = value
                        .split(',')
                        .map(|c| c.trim().parse::<usize>())
                        .collect::<Result<_, _>>()
                        .map_err(|e| bad(&e))?;
                }
                "rounds" => options.rounds = value.parse().map_err(|e| bad(&e))?,
                "concurrency" => options.concurrency = Some(value.parse().map_err(|e| bad(&e))?),
                "server-threads" => {
                    options.server_threads = Some(value.parse().map_err(|e| bad(&e))?);
                }
                "release-functions" => options.release_functions = value == "1",
                "no-cargo-lambda" => options.cargo_lambda = value != "1",
                "outside-only" => options.outside_only = value == "1",
                _ => return Err(format!("unknown option --{name}").into()),
            }
        }
        let secs_ok = |s: f64| s.is_finite() && (0.0..=600.0).contains(&s);
        if !secs_ok(options.secs) || options.secs == 0.0 || !secs_ok(options.warmup) {
            return Err("durations must be between 0 and 600 seconds".into());
        }
        if options.connections.iter().any(|&c| c == 0 || c > 1024) {
            return Err("connection counts must be between 1 and 1024".into());
        }
        if !(1..=100).contains(&options.rounds) {
            return Err("rounds must be between 1 and 100".into());
        }
        if options.concurrency.is_some_and(|c| c == 0 || c > 256) {
            return Err("concurrency must be between 1 and 256".into());
        }
        Ok(options)
    }
}

/// Where to send `GET`s.
#[derive(Clone)]
struct Target {
    name: &'static str,
    addr: SocketAddr,
    /// Path and query.
    path: String,
}

/// What one closed-loop task returns: its latencies, how many requests
/// failed, and the first failure.
type LoopResult = (Vec<Duration>, usize, Option<String>);

/// One measured run, or the sum of several rounds.
#[derive(Default)]
struct Run {
    requests: usize,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    /// Request latencies; sorted by [`Run::finish`].
    latencies: Vec<Duration>,
    cpu: Cpu,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        self.latencies[index].as_secs_f64() * 1000.0
    }

    fn add(&mut self, round: Run) {
        self.requests += round.requests;
        self.errors += round.errors;
        if self.first_error.is_none() {
            self.first_error = round.first_error;
        }
        self.elapsed += round.elapsed;
        self.latencies.extend(round.latencies);
        self.cpu = self.cpu.plus(round.cpu);
    }

    fn finish(&mut self) {
        self.latencies.sort_unstable();
    }

    /// One run from the closed-loop tasks started at `started`, each
    /// returning its latencies, error count and first error.
    async fn gather(
        tasks: Vec<tokio::task::JoinHandle<LoopResult>>,
        started: Instant,
    ) -> Result<Run, BoxError> {
        let mut run = Run::default();
        for task in tasks {
            let (latencies, errors, first_error) = task.await?;
            run.requests += latencies.len();
            run.latencies.extend(latencies);
            run.errors += errors;
            if run.first_error.is_none() {
                run.first_error = first_error;
            }
        }
        run.elapsed = started.elapsed();
        Ok(run)
    }

    fn cpu_per_request_total(&self) -> f64 {
        self.cpu_per_request(self.cpu.client + self.cpu.servers + self.cpu.functions)
    }

    /// CPU microseconds per request.
    fn cpu_per_request(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
}

/// CPU time (user + system) of the bench's parts, from `/proc`.
#[derive(Default, Clone, Copy)]
struct Cpu {
    /// The main thread: the HTTP load generator.
    client: Duration,
    /// The other threads of this process: the devserver's runtime (with
    /// the in-process invokers of "lambda host only") and plain axum.
    servers: Duration,
    /// The part of `servers` spent in user space (the servers' own code;
    /// the rest is the kernel's: socket I/O and waking other tasks).
    servers_user: Duration,
    /// This process's children: the function instances.
    functions: Duration,
}

impl Cpu {
    fn now() -> Cpu {
        let pid = std::process::id();
        let process = proc_cpu(&format!("/proc/{pid}/stat")).unwrap_or_default();
        let main_thread = proc_cpu(&format!("/proc/{pid}/task/{pid}/stat")).unwrap_or_default();
        let user = |path: String| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|stat| stat_ticks(&stat, 14))
                .unwrap_or_default()
        };
        let servers_user = user(format!("/proc/{pid}/stat"))
            .saturating_sub(user(format!("/proc/{pid}/task/{pid}/stat")));
        let mut functions = Duration::ZERO;
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(child) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                    continue;
                };
                if stat_field(&stat, 4).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
                    functions += stat_cpu(&stat).unwrap_or_default();
                }
            }
        }
        Cpu {
            client: main_thread,
            servers: process.saturating_sub(main_thread),
            servers_user,
            functions,
        }
    }

    fn since(self, start: Cpu) -> Cpu {
        Cpu {
            client: self.client.saturating_sub(start.client),
            servers: self.servers.saturating_sub(start.servers),
            servers_user: self.servers_user.saturating_sub(start.servers_user),
            functions: self.functions.saturating_sub(start.functions),
        }
    }

    fn plus(self, other: Cpu) -> Cpu {
        Cpu {
            client: self.client + other.client,
            servers: self.servers + other.servers,
            servers_user: self.servers_user + other.servers_user,
            functions: self.functions + other.functions,
        }
    }
}

fn proc_cpu(path: &str) -> Option<Duration> {
    stat_cpu(&std::fs::read_to_string(path).ok()?)
}

/// utime + stime of a `/proc/.../stat` line, in clock ticks of 10 ms
/// (`USER_HZ` is 100 on Linux).
fn stat_cpu(stat: &str) -> Option<Duration> {
    Some(stat_ticks(stat, 14)? + stat_ticks(stat, 15)?)
}

/// A clock-tick field of a stat line (14: utime, 15: stime) as time.
fn stat_ticks(stat: &str, n: usize) -> Option<Duration> {
    let ticks = stat_field(stat, n)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Field `n` (1-based, as `man proc` numbers them) of a stat line; the
/// command name (field 2) may hold spaces, so counting starts after it.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(n.checked_sub(3)?)
}

fn main() -> Result<(), BoxError> {
    if let Ok(spec) = std::env::var(outside::LOADGEN_ENV) {
        return outside::loadgen_child(&spec);
    }
    let options = Options::parse()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(outside::measure(&options))?;
    if options.outside_only {
        return Ok(());
    }
    println!("in-process rows (the devserver's stack started inside this bench):");
    if let Ok(filter) = std::env::var("WOOCOM_LOG") {
        // As `woocom-dev up` logs, into a sink.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::sink)
            .compact()
            .init();
    }

    let mut servers = tokio::runtime::Builder::new_multi_thread();
    servers.enable_all().thread_name("bench-server");
    if let Some(n) = options.server_threads {
        servers.worker_threads(n);
    }
    let servers = servers.build()?;
    // The load generator has its own thread, as an outside client would.
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/bench.toml");
    let mut stack_options = StackOptions::from_manifest_file(&manifest)?
        .free_ports()
        .quiet_build();
    stack_options.release = options.release_functions;
    if let Some(concurrency) = options.concurrency {
        for function in stack_options.manifest.functions.values_mut() {
            function.concurrency = concurrency;
        }
    }
    let concurrency = stack_options
        .manifest
        .functions
        .values()
        .map(|f| f.concurrency)
        .max()
        .unwrap_or(0);
    let function = stack_options
        .manifest
        .routes
        .first()
        .map(|r| r.function.clone())
        .ok_or("bench.toml has no route")?;
    eprintln!(
        "building the probe function ({} build)...",
        if options.release_functions {
            "release"
        } else {
            "debug"
        }
    );
    let stack = servers.block_on(Stack::start(stack_options))?;
    let plain_addr = servers.block_on(start_plain_axum())?;

    let api: url_parts::ApiUrl = url_parts::parse(&stack.urls().api)?;
    let gateway = Target {
        name: "gateway + function",
        addr: api.addr,
        path: format!("{}/ping?probe=ok", api.path),
    };
    let plain = Target {
        name: "plain axum",
        addr: plain_addr,
        path: "/ping?probe=ok".to_owned(),
    };
    let invoker = Invoker {
        host: stack.lambda().clone(),
        function,
        runtime: servers.handle().clone(),
        // Filled in from the gateway's own event once the stack answers.
        payload: Bytes::new(),
    };

    let result = client.block_on(measure(&options, concurrency, &gateway, &plain, invoker));
    servers.block_on(stack.shutdown());
    result
}

/// The in-process load: `LambdaHost::invoke` as the gateway calls it.
struct Invoker {
    host: Arc<LambdaHost>,
    function: String,
    runtime: tokio::runtime::Handle,
    payload: Bytes,
}

/// What one row of the table loads.
#[derive(Clone, Copy)]
enum Row<'a> {
    Http(&'a Target),
    Invoke(&'a Invoker),
}

impl Row<'_> {
    fn name(&self) -> &'static str {
        match self {
            Row::Http(target) => target.name,
            Row::Invoke(_) => "lambda host only",
        }
    }

    async fn load(&self, connections: usize, duration: Duration) -> Result<Run, BoxError> {
        let start = Cpu::now();
        let mut run = match self {
            Row::Http(target) => load(target, connections, duration).await?,
            Row::Invoke(invoker) => invoke_load(invoker, connections, duration).await?,
        };
        run.cpu = Cpu::now().since(start);
        Ok(run)
    }
}

/// The event the gateway builds for `GET /ping?probe=ok`, as the probe's
/// echo mode reports it (asked with `probe=echo`, then set back to `ok`).
async fn gateway_event(gateway: &Target) -> Result<Bytes, BoxError> {
    let echo = Target {
        path: gateway.path.replace("probe=ok", "probe=echo"),
        ..gateway.clone()
    };
    let mut sender = connect(echo.addr).await?;
    let (status, body) = get(&mut sender, &echo).await?;
    if status != 200 {
        return Err(format!("echo answered {status}").into());
    }
    let report: serde_json::Value = serde_json::from_slice(&body)?;
    let mut event = report["event"].clone();
    event["queryStringParameters"]["probe"] = "ok".into();
    event["multiValueQueryStringParameters"]["probe"] = serde_json::json!(["ok"]);
    if event["httpMethod"] != "GET" {
        return Err(format!("unexpected echo: {body:?}").into());
    }
    Ok(Bytes::from(serde_json::to_vec(&event)?))
}

async fn measure(
    options: &Options,
    concurrency: usize,
    gateway: &Target,
    plain: &Target,
    mut invoker: Invoker,
) -> Result<(), BoxError> {
    // A first request shows a misconfigured stack plainly.
    for target in [plain, gateway] {
        let mut sender = connect(target.addr).await?;
        let (status, body) = get(&mut sender, target).await?;
        if status != 200 || body != BODY {
            return Err(format!(
                "{} answered {status} {}",
                target.name,
                String::from_utf8_lossy(&body)
            )
            .into());
        }
    }
    invoker.payload = gateway_event(gateway).await?;
    let rows = [Row::Http(plain), Row::Http(gateway), Row::Invoke(&invoker)];

    let most = options.connections.iter().copied().max().unwrap_or(1);
    let warmup = Duration::from_secs_f64(options.warmup);
    let round_time = Duration::from_secs_f64(options.secs / f64::from(options.rounds));
    println!();
    println!(
        "gateway benchmark: GET /ping, {:?} keep-alive connections, {} s per server in {} alternating rounds, after {} s of warm-up",
        options.connections, options.secs, options.rounds, options.warmup
    );
    println!(
        "builds: devserver and plain axum optimised (bench profile); function: {}",
        if options.release_functions {
            "release build (`woocom-dev up --release`)"
        } else {
            "debug build (what `woocom-dev up` runs; --release-functions for a release build)"
        },
    );
    println!(
        "function instances: {concurrency} at most; devserver logs: {}; server runtime threads: {}; cores: {}",
        std::env::var("WOOCOM_LOG").unwrap_or_else(|_| "off".to_owned()),
        options
            .server_threads
            .map_or_else(|| "default".to_owned(), |n| n.to_string()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "load average before: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!();
    println!(
        "{:>5}  {:<20} {:>9} {:>9} {:>8} {:>8}   {:>27}",
        "conns",
        "server",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "CPU us/req: client servers functions"
    );
    let mut failed = false;
    for &connections in &options.connections {
        if !warmup.is_zero() {
            for row in &rows {
                row.load(most.max(connections), warmup).await?;
            }
        }
        let mut runs: Vec<Run> = rows.iter().map(|_| Run::default()).collect();
        for round in 0..options.rounds {
            // A B C, C B A, ...: each row is measured early and late alike.
            let mut order: Vec<usize> = (0..rows.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let run = rows[i].load(connections, round_time).await?;
                runs[i].add(run);
            }
        }
        for (row, run) in rows.iter().zip(&mut runs) {
            run.finish();
            println!(
                "{connections:>5}  {:<20} {:>9} {:>9.0} {:>8.3} {:>8.3}   {:>11.1} {:>7.1} {:>9.1}",
                row.name(),
                run.requests,
                run.per_second(),
                run.percentile_ms(0.50),
                run.percentile_ms(0.99),
                run.cpu_per_request(run.cpu.client),
                run.cpu_per_request(run.cpu.servers),
                run.cpu_per_request(run.cpu.functions),
            );
            if run.errors > 0 {
                failed = true;
                println!(
                    "       {} failed requests; first: {}",
                    run.errors,
                    run.first_error.as_deref().unwrap_or("?")
                );
            }
        }
        let (plain_run, gateway_run) = (&runs[0], &runs[1]);
        let added = gateway_run.percentile_ms(0.50) - plain_run.percentile_ms(0.50);
        let ratio = gateway_run.per_second() / plain_run.per_second();
        let (plain_cpu, gateway_cpu) = (
            plain_run.cpu_per_request_total(),
            gateway_run.cpu_per_request_total(),
        );
        println!(
            "       CPU per request, all parts: plain {plain_cpu:.1} us, gateway {gateway_cpu:.1} us (1/{:.1}: the throughput ratio when both are CPU-bound)",
            gateway_cpu / plain_cpu
        );
        // What bounds the ratio: the devserver's own code is its user-space
        // time; its kernel time is the sockets' (each send runs the
        // loopback receive path and wakes the task or process waiting on
        // the other end), the functions' is the Lambda runtime's and theirs.
        let (own, kernel) = (
            gateway_run.cpu_per_request(gateway_run.cpu.servers_user),
            gateway_run.cpu_per_request(
                gateway_run
                    .cpu
                    .servers
                    .saturating_sub(gateway_run.cpu.servers_user),
            ),
        );
        println!(
            "       gateway's devserver: {own:.1} us/request in its own code, {kernel:.1} us in the kernel; \
             with its own code costing nothing, the ratio would be 1/{:.1}",
            (gateway_cpu - own) / plain_cpu
        );
        let target_note = if connections == 1 {
            format!(
                "target: added p50 < {TARGET_ADDED_P50_MS} ms: {}",
                verdict(added < TARGET_ADDED_P50_MS)
            )
        } else {
            format!(
                "target: ratio >= 1/6 at 32 connections ({} function): {}",
                if options.release_functions {
                    "release"
                } else {
                    "debug"
                },
                verdict(ratio >= TARGET_RATIO)
            )
        };
        println!(
            "       added p50 {added:.3} ms; throughput ratio {ratio:.3} (1/{:.1}); {target_note}",
            1.0 / ratio
        );
    }
    println!(
        "load average after: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!();
    if failed {
        return Err("some requests failed (see above)".into());
    }
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

async fn start_plain_axum() -> Result<SocketAddr, BoxError> {
    let app = axum::Router::new().route(
        "/ping",
        axum::routing::get(|| async { ([("content-type", "application/json")], BODY) }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn get(
    sender: &mut SendRequest<Empty<Bytes>>,
    target: &Target,
) -> Result<(u16, Bytes), BoxError> {
    let request = http::Request::get(target.path.as_str())
        .header(http::header::HOST, target.addr.to_string())
        .header(http::header::USER_AGENT, "woocom-bench")
        .header(http::header::ACCEPT, "*/*")
        .body(Empty::<Bytes>::new())?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// A closed loop: each connection sends its next request when the last one
/// is answered, until `duration` has passed.
async fn load(target: &Target, connections: usize, duration: Duration) -> Result<Run, BoxError> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(target.addr).await?);
    }
    let shared = Arc::new(target.clone());
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let target = shared.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                let mut first_error = None;
                while Instant::now() < deadline && latencies.len() < MAX_REQUESTS_PER_CONNECTION {
                    let sent = Instant::now();
                    let problem = match get(&mut sender, &target).await {
                        Ok((200, body)) if body == BODY => None,
                        Ok((status, body)) => {
                            Some(format!("{status} {}", String::from_utf8_lossy(&body)))
                        }
                        Err(e) => Some(e.to_string()),
                    };
                    latencies.push(sent.elapsed());
                    if let Some(problem) = problem {
                        errors += 1;
                        first_error.get_or_insert(problem);
                        // A broken connection stays broken.
                        if sender.is_closed() {
                            break;
                        }
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    Run::gather(tasks, started).await
}

/// The closed loop of [`load`], with `LambdaHost::invoke` in place of an
/// HTTP connection; the tasks run on the servers' runtime.
async fn invoke_load(
    invoker: &Invoker,
    connections: usize,
    duration: Duration,
) -> Result<Run, BoxError> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let host = invoker.host.clone();
            let function = invoker.function.clone();
            let payload = invoker.payload.clone();
            invoker.runtime.spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                let mut first_error = None;
                while Instant::now() < deadline && latencies.len() < MAX_REQUESTS_PER_CONNECTION {
                    let sent = Instant::now();
                    let request = InvokeRequest {
                        payload: payload.clone(),
                        trace_id: Some(woocom_dev::lambda::new_trace_id()),
                        ..InvokeRequest::default()
                    };
                    let problem = match host.invoke(&function, request).await {
                        Ok(r)
                            if r.function_error.is_none()
                                && r.payload.windows(OK_STATUS.len()).any(|w| w == OK_STATUS) =>
                        {
                            None
                        }
                        Ok(r) => Some(String::from_utf8_lossy(&r.payload).into_owned()),
                        Err(e) => Some(e.to_string()),
                    };
                    latencies.push(sent.elapsed());
                    if let Some(problem) = problem {
                        errors += 1;
                        first_error.get_or_insert(problem);
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    Run::gather(tasks, started).await
}

mod url_parts {
    use std::net::SocketAddr;

    pub struct ApiUrl {
        pub addr: SocketAddr,
        /// `/stage`
        pub path: String,
    }

    /// `http://127.0.0.1:4000/local` → its address and path.
    pub fn parse(url: &str) -> Result<ApiUrl, super::BoxError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("unexpected API URL {url}"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        Ok(ApiUrl {
            addr: authority.parse()?,
            path: format!("/{path}"),
        })
    }
}
