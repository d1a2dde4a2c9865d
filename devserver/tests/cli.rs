//! The `woocom-dev` binary as scripts and CI use it: `up --free-ports
//! --ready-file`, SIGTERM, `invoke`, and the errors for a bad manifest or a
//! busy port.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fixture;

fn woocom_dev() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_woocom-dev"));
    cmd.env("WOOCOM_LOG", "warn");
    cmd
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("woocom-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn wait_for_file(path: &Path, child: &mut Child, limit: Duration) -> serde_json::Value {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(v) = serde_json::from_str(&text)
        {
            return v;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("woocom-dev exited early: {status}");
        }
        assert!(started.elapsed() < limit, "no ready file after {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn children_of(pid: u32) -> Vec<u32> {
    let out = Command::new("pgrep")
        .arg("-P")
        .arg(pid.to_string())
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

#[tokio::test]
async fn up_with_ready_file_serves_and_sigterm_stops_everything() {
    let dir = temp_dir("up");
    let ready = dir.join("ready.json");
    let mut child = woocom_dev()
        .arg("--manifest")
        .arg(fixture("probe.toml"))
        .args(["up", "--free-ports", "--ready-file"])
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start woocom-dev");
    let urls = wait_for_file(&ready, &mut child, Duration::from_secs(120));
    let api = urls["api"].as_str().expect("api url");
    assert!(
        api.starts_with("http://127.0.0.1:") && api.ends_with("/test"),
        "{api}"
    );
    assert!(
        urls["websocket"]
            .as_str()
            .is_some_and(|u| u.starts_with("ws://127.0.0.1:") && u.ends_with("/test"))
    );
    let aws = urls["aws"].as_str().expect("aws url");
    assert!(aws.starts_with("http://127.0.0.1:"));

    let client = common::http();
    let health = client
        .get(urls["health"].as_str().expect("health url"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let r = client
        .get(format!("{api}/products/42"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);

    let function_pids = children_of(child.id());
    assert!(!function_pids.is_empty(), "a function instance runs");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "clean exit: {exit}");
    for pid in function_pids {
        assert!(!alive(pid), "function process {pid} outlived the devserver");
    }
    assert!(!ready.exists(), "the ready file is removed on shutdown");
}

#[test]
fn invalid_manifest_names_file_line_and_problem() {
    let dir = temp_dir("bad");
    let manifest = dir.join("dev.toml");
    std::fs::write(
        &manifest,
        "[functions.products]\ncrate = \"woocom-probe\"\n\n[[routes]]\nmethod = \"GET\"\npath = \"/products/{id}\"\nfunction = \"prodcts\"\n",
    )
    .expect("write");
    let out = woocom_dev()
        .arg("--manifest")
        .arg(&manifest)
        .args(["up", "--free-ports"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:7:", manifest.display()))
            && stderr.contains("unknown function `prodcts` (declared: products)"),
        "{stderr}"
    );
}

#[test]
fn busy_port_is_named() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port();
    let dir = temp_dir("port");
    let manifest = dir.join("dev.toml");
    std::fs::write(
        &manifest,
        format!("[ports]\napi = {port}\nwebsocket = 0\naws = 0\n"),
    )
    .expect("write");
    let out = woocom_dev()
        .arg("--manifest")
        .arg(&manifest)
        .arg("up")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error[woocom::port_in_use]: port {port} (api) is already in use"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "help: stop what holds it, change [ports] api in dev.toml, or run with --free-ports"
        ),
        "{stderr}"
    );
}

#[test]
fn invoke_prints_result_on_stdout_and_logs_on_stderr() {
    let dir = temp_dir("invoke");
    let event = dir.join("event.json");
    std::fs::write(&event, r#"{"hello":"world"}"#).expect("write");
    let out = woocom_dev()
        .arg("--manifest")
        .arg(fixture("probe.toml"))
        .args([
            "invoke",
            "probe",
            "--endpoint",
            "http://127.0.0.1:9",
            "--event",
        ])
        .arg(&event)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let result: serde_json::Value = serde_json::from_str(&stdout).expect("JSON result");
    assert_eq!(result["event"]["hello"], "world");
    assert!(
        stderr.contains("START RequestId: ") && stderr.contains("REPORT RequestId: "),
        "{stderr}"
    );
    assert!(stderr.contains("probe: mode echo"), "{stderr}");

    // A failing function: its error object on stdout, a non-zero exit.
    let out = woocom_dev()
        .arg("--manifest")
        .arg(fixture("probe.toml"))
        .args([
            "invoke",
            "probe",
            "--endpoint",
            "http://127.0.0.1:9",
            "--event",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(br#"{"probe":"error"}"#)?;
            child.wait_with_output()
        })
        .expect("run");
    assert!(!out.status.success());
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error object");
    assert_eq!(result["errorMessage"], "probe failed on purpose");
}

#[tokio::test]
async fn seed_loads_the_seed_files_with_or_without_a_running_stack() {
    let dir = temp_dir("seed");
    std::fs::write(
        dir.join("dev.toml"),
        "[stack]\nname = \"seed-test\"\n\n[tables.products]\npartition_key = { name = \"id\", type = \"S\" }\nseed = \"products.json\"\n",
    )
    .expect("dev.toml");
    std::fs::write(
        dir.join("products.json"),
        r#"[{"id": "mug", "stock": 4}, {"id": "cup", "stock": 9}]"#,
    )
    .expect("seed file");
    let manifest = dir.join("dev.toml");

    // No stack: straight into the data folder (an address nothing answers
    // on stands for "not running").
    let out = woocom_dev()
        .arg("--manifest")
        .arg(&manifest)
        .args(["seed", "--endpoint", "http://127.0.0.1:9"])
        .output()
        .expect("seed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "seeded `products`: 2 items"
    );
    let scan = woocom_dev()
        .arg("--manifest")
        .arg(&manifest)
        .args(["scan", "products"])
        .output()
        .expect("scan");
    let printed = String::from_utf8_lossy(&scan.stdout);
    assert!(
        printed.contains("\"mug\"") && printed.contains("\"cup\""),
        "{printed}"
    );

    // A bad seed file is named with the item at fault, and nothing is written.
    std::fs::write(dir.join("products.json"), r#"[{"id": "a"}, {"stock": 1}]"#).expect("edit");
    let out = woocom_dev()
        .arg("--manifest")
        .arg(&manifest)
        .args(["seed", "--endpoint", "http://127.0.0.1:9"])
        .output()
        .expect("seed");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("products.json: item 1: missing key attribute `id`"),
        "{err}"
    );

    // A running stack: through its DynamoDB endpoint.
    std::fs::write(
        dir.join("products.json"),
        r#"[{"id": "teapot", "stock": 1}]"#,
    )
    .expect("edit");
    let ready = dir.join("ready.json");
    let mut child = woocom_dev()
        .arg("--manifest")
        .arg(&manifest)
        .args(["up", "--free-ports", "--no-frontend", "--ready-file"])
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("up");
    let urls = wait_for_file(&ready, &mut child, Duration::from_secs(60));
    let out = woocom_dev()
        .arg("--manifest")
        .arg(&manifest)
        .args(["seed", "--ready-file"])
        .arg(&ready)
        .output()
        .expect("seed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("seeded `products`: 1 items (through"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let aws = urls["aws"].as_str().expect("aws url");
    let body = r#"{"TableName": "products"}"#;
    let mut scan = common::http()
        .post(aws)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "DynamoDB_20120810.Scan");
    for (name, value) in woocom_dev::dynamodb::sigv4::sign(
        aws.trim_start_matches("http://"),
        &[],
        body.as_bytes(),
        "us-east-1",
        "test",
        "test",
        chrono::Utc::now(),
    ) {
        scan = scan.header(name, value);
    }
    let scan: serde_json::Value = scan
        .body(body)
        .send()
        .await
        .expect("scan")
        .json()
        .await
        .expect("json");
    assert_eq!(scan["Count"], 3, "{scan}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_dev_toml_is_reported_with_its_line_a_code_and_a_hint() {
    let dir = temp_dir("bad-manifest");
    let manifest = dir.join("dev.toml");
    std::fs::write(
        &manifest,
        "[functions.hello]\ncrate = \"hello\"\n\n[[routes]]\nmethod = \"GET\"\npath = \"/hi\"\nfunction = \"helo\"\n",
    )
    .expect("write");
    let out = woocom_dev()
        .arg("--manifest")
        .arg(&manifest)
        .arg("up")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error[woocom::manifest]: {}:7:12: route GET /hi: unknown function `helo` (declared: hello)",
            manifest.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: fix dev.toml at the line shown"),
        "{stderr}"
    );
}
