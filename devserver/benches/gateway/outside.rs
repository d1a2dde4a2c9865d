//! The headline of the gateway benchmark (issue #21): the stack as users run
//! it, next to the tool they would otherwise pick, measured from outside.
//!
//! - `woocom-dev up` is the real binary (this bench's build of it), started
//!   with `benches/hello.toml` as a user starts it: logs on (the default
//!   filter), written to its stderr, which goes to a file here as it would
//!   go to a terminal. A second `up` with `WOOCOM_LOG=off` shows what the
//!   logs cost.
//! - `cargo lambda watch --concurrency 8` serves the same `lambda_http`
//!   handler (`devserver/hello`), installed from PyPI into `.woocom/venv`
//!   as the test command installs its Python tools.
//! - Plain axum answering the same body is the ceiling.
//! - The load generator is this bench binary started again as a child
//!   process (`BENCH_LOADGEN`), so no row shares a process with its client.
//!
//! Each row's function is a debug build unless `--release-functions`, for
//! both tools alike.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{BoxError, Options, Run, Target, load, start_plain_axum, url_parts};

/// Set in the environment of the child that generates load:
/// `<addr> <path> <connections> <seconds>`.
pub const LOADGEN_ENV: &str = "BENCH_LOADGEN";

/// How long a tool may take to build the function and answer.
const START_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// The targets.
const TARGET_LOG_COST: f64 = 0.10;
const TARGET_VS_CARGO_LAMBDA_1: f64 = 1.3;
const TARGET_VS_CARGO_LAMBDA_32: f64 = 2.0;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The child: loads `spec` and prints the run as one JSON line.
pub fn loadgen_child(spec: &str) -> Result<(), BoxError> {
    let parts: Vec<&str> = spec.split(' ').collect();
    let [addr, path, connections, secs] = parts[..] else {
        return Err(
            format!("{LOADGEN_ENV}: expected `addr path connections secs`, got `{spec}`").into(),
        );
    };
    let target = Target {
        name: "outside",
        addr: addr.parse()?,
        path: path.to_owned(),
    };
    let connections: usize = connections.parse()?;
    let duration = Duration::from_secs_f64(secs.parse()?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let run = runtime.block_on(load(&target, connections, duration))?;
    let latencies: Vec<u64> = run.latencies.iter().map(|d| d.as_nanos() as u64).collect();
    let line = serde_json::json!({
        "requests": run.requests,
        "errors": run.errors,
        "first_error": run.first_error,
        "elapsed_ns": run.elapsed.as_nanos() as u64,
        "latencies_ns": latencies,
    });
    println!("{line}");
    Ok(())
}

/// One load run by a child process.
async fn load_from_child(
    target: &Target,
    connections: usize,
    duration: Duration,
) -> Result<Run, BoxError> {
    let spec = format!(
        "{} {} {connections} {}",
        target.addr,
        target.path,
        duration.as_secs_f64()
    );
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .env(LOADGEN_ENV, spec)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!("the load generator failed ({})", out.status).into());
    }
    let value: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let n = |key: &str| value[key].as_u64().unwrap_or(0);
    Ok(Run {
        requests: n("requests") as usize,
        errors: n("errors") as usize,
        first_error: value["first_error"].as_str().map(str::to_owned),
        elapsed: Duration::from_nanos(n("elapsed_ns")),
        latencies: value["latencies_ns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_u64().map(Duration::from_nanos))
                    .collect()
            })
            .unwrap_or_default(),
        cpu: Default::default(),
    })
}

/// A server in another process (or plain axum in this one).
struct Server {
    name: &'static str,
    target: Target,
    process: Option<tokio::process::Child>,
    log: Option<PathBuf>,
}

impl Server {
    /// Peak resident memory of the server process and of its descendants
    /// (the function instances), in MB.
    fn peak_memory_mb(&self) -> Option<(u64, u64)> {
        let pid = self.process.as_ref()?.id()?;
        let own = vm_hwm_kb(pid)?;
        let children: u64 = descendants(pid).into_iter().filter_map(vm_hwm_kb).sum();
        Some((own.div_ceil(1024), children.div_ceil(1024)))
    }

    async fn stop(mut self) {
        let Some(mut child) = self.process.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            // SIGTERM: `up` stops its functions and exits.
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn descendants(pid: u32) -> Vec<u32> {
    let mut all = Vec::new();
    let mut next = vec![pid];
    while let Some(p) = next.pop() {
        let tasks = std::fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                all.push(child);
                next.push(child);
            }
        }
    }
    all
}

fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// `woocom-dev up` with the hello stack; logs on unless `logs_off`.
async fn start_up(
    name: &'static str,
    dir: &Path,
    release: bool,
    logs_off: bool,
) -> Result<Server, BoxError> {
    let label = if logs_off { "up-logs-off" } else { "up" };
    let ready = dir.join(format!("{label}.ready.json"));
    // stdout has the table `up` prints; stderr the logs. Both go to files,
    // as a terminal would take them.
    let log = dir.join(format!("{label}.stderr.log"));
    let _ = std::fs::remove_file(&ready);
    let data = dir.join(format!("{label}-data"));
    let _ = std::fs::remove_dir_all(&data);
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/hello.toml");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_woocom-dev"));
    command
        .arg("--manifest")
        .arg(&manifest)
        .args([
            "up",
            "--free-ports",
            "--no-watch",
            "--no-frontend",
            "--no-seed",
        ])
        .arg("--ready-file")
        .arg(&ready)
        .arg("--data")
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join(format!("{label}.log")))?)
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true);
    if release {
        command.arg("--release");
    }
    if logs_off {
        command.env("WOOCOM_LOG", "off");
    } else {
        command.env_remove("WOOCOM_LOG");
    }
    let mut child = command.spawn()?;
    let started = Instant::now();
    let urls: serde_json::Value = loop {
        if let Ok(bytes) = std::fs::read(&ready)
            && let Ok(value) = serde_json::from_slice(&bytes)
        {
            break value;
        }
        if let Some(status) = child.try_wait()? {
            return Err(format!(
                "woocom-dev up exited ({status}) before it was ready; its log {}:\n{}",
                log.display(),
                log_tail(&log)
            )
            .into());
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!("woocom-dev up was not ready within {START_TIMEOUT:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let api = url_parts::parse(urls["api"].as_str().ok_or("ready file without api")?)?;
    Ok(Server {
        name,
        target: Target {
            name,
            addr: api.addr,
            path: format!("{}/hello", api.path.trim_end_matches('/')),
        },
        process: Some(child),
        log: Some(log),
    })
}

/// `.woocom/venv/bin/cargo-lambda`, installed from PyPI on first use.
fn cargo_lambda() -> Result<PathBuf, BoxError> {
    let venv = workspace_root().join(".woocom/venv");
    let exe = venv.join("bin/cargo-lambda");
    if exe.is_file() {
        return Ok(exe);
    }
    eprintln!("installing cargo-lambda from PyPI into .woocom/venv (first run only)...");
    if !venv.join("bin/pip").is_file() {
        let status = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()?;
        if !status.success() {
            return Err("python3 -m venv failed".into());
        }
    }
    let status = std::process::Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "cargo-lambda",
        ])
        .status()?;
    if !status.success() || !exe.is_file() {
        return Err("pip install cargo-lambda failed".into());
    }
    Ok(exe)
}

/// `cargo lambda watch` serving `woocom-hello` as a function URL.
async fn start_cargo_lambda(dir: &Path, release: bool) -> Result<Server, BoxError> {
    let exe = cargo_lambda()?;
    let port = free_port()?;
    let log = dir.join("cargo-lambda.stderr.log");
    let mut command = tokio::process::Command::new(&exe);
    command
        .args([
            "lambda",
            "watch",
            "--package",
            "woocom-hello",
            "--ignore-changes",
        ])
        .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
        .arg(port.to_string())
        .args(["--concurrency", "8"])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("cargo-lambda.log"))?)
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true);
    if release {
        command.arg("--release");
    }
    let mut child = command.spawn()?;
    let target = Target {
        name: "cargo lambda watch",
        addr: format!("127.0.0.1:{port}").parse()?,
        path: "/lambda-url/woocom-hello/hello".to_owned(),
    };
    eprintln!("starting cargo lambda watch (it builds woocom-hello first)...");
    let started = Instant::now();
    loop {
        if let Ok(Ok(mut sender)) =
            tokio::time::timeout(Duration::from_secs(2), super::connect(target.addr)).await
            && let Ok(Ok((200, body))) =
                tokio::time::timeout(Duration::from_secs(600), super::get(&mut sender, &target))
                    .await
            && body == super::BODY
        {
            break;
        }
        if let Some(status) = child.try_wait()? {
            return Err(format!(
                "cargo lambda watch exited ({status}); its log {}:\n{}",
                log.display(),
                log_tail(&log)
            )
            .into());
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(
                format!("cargo lambda watch did not answer within {START_TIMEOUT:?}").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(Server {
        name: "cargo lambda watch",
        target,
        process: Some(child),
        log: Some(log),
    })
}

/// Runs the headline comparison and prints it.
pub async fn measure(options: &Options) -> Result<(), BoxError> {
    let dir = workspace_root().join("target/tmp/gateway-bench");
    std::fs::create_dir_all(&dir)?;
    let release = options.release_functions;
    eprintln!(
        "starting woocom-dev up twice (logs on, WOOCOM_LOG=off); the first start builds woocom-hello..."
    );
    let mut servers = vec![
        start_up("woocom-dev up", &dir, release, false).await?,
        start_up("up, WOOCOM_LOG=off", &dir, release, true).await?,
    ];
    let mut cargo_lambda_skipped = None;
    if options.cargo_lambda {
        match start_cargo_lambda(&dir, release).await {
            Ok(server) => servers.push(server),
            Err(e) => cargo_lambda_skipped = Some(e.to_string()),
        }
    } else {
        cargo_lambda_skipped = Some("--no-cargo-lambda".to_owned());
    }
    let plain = start_plain_axum().await?;
    servers.push(Server {
        name: "plain axum",
        target: Target {
            name: "plain axum",
            addr: plain,
            path: "/ping?probe=ok".to_owned(),
        },
        process: None,
        log: None,
    });

    let warmup = Duration::from_secs_f64(options.warmup);
    let round_time = Duration::from_secs_f64(options.secs / f64::from(options.rounds));
    let most = options.connections.iter().copied().max().unwrap_or(1);
    println!();
    println!(
        "as users run it: each server in its own process, load from another process; GET, keep-alive, {} s per server in {} alternating rounds",
        options.secs, options.rounds
    );
    println!(
        "function woocom-hello (lambda_http): {} build for both tools; 8 instances at most; woocom-dev's logs go to {}",
        if release { "release" } else { "debug" },
        dir.join("up.stderr.log").display()
    );
    if let Some(reason) = &cargo_lambda_skipped {
        println!("cargo lambda watch: SKIPPED ({reason})");
    }
    println!();
    println!(
        "{:>5}  {:<22} {:>9} {:>9} {:>8} {:>8}",
        "conns", "server", "requests", "req/s", "p50 ms", "p99 ms"
    );
    let mut failed = false;
    for &connections in &options.connections {
        if !warmup.is_zero() {
            for server in &servers {
                load_from_child(&server.target, most.max(connections), warmup).await?;
            }
        }
        let mut runs: Vec<Run> = servers.iter().map(|_| Run::default()).collect();
        for round in 0..options.rounds {
            let mut order: Vec<usize> = (0..servers.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let run = load_from_child(&servers[i].target, connections, round_time).await?;
                runs[i].add(run);
            }
        }
        for (server, run) in servers.iter().zip(&mut runs) {
            run.finish();
            println!(
                "{connections:>5}  {:<22} {:>9} {:>9.0} {:>8.3} {:>8.3}",
                server.name,
                run.requests,
                run.per_second(),
                run.percentile_ms(0.50),
                run.percentile_ms(0.99),
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
        let rate = |name: &str| {
            servers
                .iter()
                .position(|s| s.name == name)
                .map(|i| runs[i].per_second())
        };
        let (on, off) = (
            rate("woocom-dev up").unwrap_or(f64::NAN),
            rate("up, WOOCOM_LOG=off").unwrap_or(f64::NAN),
        );
        let cost = 1.0 - on / off;
        println!(
            "       logs on cost {:.1}% of logs-off throughput (target: within {:.0}%: {})",
            cost * 100.0,
            TARGET_LOG_COST * 100.0,
            super::verdict(cost <= TARGET_LOG_COST)
        );
        if let Some(peer) = rate("cargo lambda watch") {
            let want = if connections == 1 {
                TARGET_VS_CARGO_LAMBDA_1
            } else {
                TARGET_VS_CARGO_LAMBDA_32
            };
            println!(
                "       woocom-dev up / cargo lambda watch: {:.2}x (target at {connections} connection(s): {want}x: {})",
                on / peer,
                super::verdict(on / peer >= want)
            );
        }
    }
    for server in &servers {
        if let Some((own, functions)) = server.peak_memory_mb() {
            println!(
                "       peak memory of {}: {own} MB, its function processes {functions} MB in all",
                server.name
            );
        }
    }
    println!();
    for server in servers {
        if let Some(log) = &server.log
            && server.name == "woocom-dev up"
        {
            let lines = std::fs::read_to_string(log)
                .map(|t| t.lines().count())
                .unwrap_or(0);
            println!("woocom-dev up wrote {lines} log lines to {}", log.display());
        }
        server.stop().await;
    }
    if failed {
        return Err("some requests failed (see above)".into());
    }
    Ok(())
}
