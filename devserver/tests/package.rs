//! `woocom-dev package` output runs: the packaged `bootstrap` (release,
//! linked against glibc 2.34 by cargo-zigbuild) serves real requests
//! through the devserver's Runtime API, REST API and DynamoDB.
//!
//! Ignored by a plain `cargo test` because it needs the packages (and so
//! cargo-zigbuild and zig); `devserver/tests/smoke/terraform-package.sh`
//! installs those, packages, and runs it with `--ignored`.
//! `WOOCOM_PACKAGE_ARCH` picks the architecture (default: the host's) and
//! `WOOCOM_PACKAGE_RUNNER` a program to run it through (e.g.
//! `qemu-aarch64-static -L /usr/aarch64-linux-gnu` for arm64 on an x86_64
//! machine).

use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};
use woocom_dev::deploy::{package::Arch, zip};
use woocom_dev::lambda::FunctionSpec;
use woocom_dev::{Stack, StackOptions};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test]
async fn packaged_bootstrap_serves_requests_through_the_runtime_api() {
    let dir = PathBuf::from(
        std::env::var("WOOCOM_PACKAGE_DIR")
            .expect("WOOCOM_PACKAGE_DIR = woocom-dev package's output"),
    );
    let arch = std::env::var("WOOCOM_PACKAGE_ARCH")
        .ok()
        .or_else(|| Arch::host().map(|a| a.lambda_name().to_owned()))
        .expect("an architecture");
    let packages: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join(&arch).join("packages.json")).expect("packages.json"),
    )
    .expect("json");
    let entry = &packages["functions"]["products"];
    let zip_path = dir.join(&arch).join(entry["zip"].as_str().expect("zip"));
    let zipped = std::fs::read(&zip_path).expect("zip");
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zipped)),
        entry["sha256"].as_str().expect("sha256"),
        "packages.json's hash is the zip's"
    );
    let (name, mode, bootstrap) = zip::read_first(&zipped).expect("read zip");
    assert_eq!((name.as_str(), mode), ("bootstrap", 0o755));

    let work = std::env::temp_dir().join(format!("woocom-package-test-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("dir");
    let bootstrap_path = work.join("bootstrap");
    std::fs::write(&bootstrap_path, &bootstrap).expect("write");
    let mut executable = bootstrap_path.clone();
    if let Ok(runner) = std::env::var("WOOCOM_PACKAGE_RUNNER") {
        executable = work.join("run-bootstrap");
        std::fs::write(
            &executable,
            format!(
                "#!/bin/sh\nexec {runner} {} \"$@\"\n",
                bootstrap_path.display()
            ),
        )
        .expect("write runner");
    }
    for path in [&bootstrap_path, &executable] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    let options = StackOptions::from_manifest_file(&repo().join("dev.toml"))
        .expect("dev.toml")
        .free_ports()
        .quiet_build();
    let stack = Stack::start(options).await.expect("stack");
    let config = stack.manifest().functions["products"].clone();
    stack.lambda().put_function(FunctionSpec {
        config,
        stamp: FunctionSpec::stamp_of(&executable),
        binary: executable.clone(),
    });

    let http = reqwest::Client::new();
    let url = format!("{}/products/packaged-mug", stack.urls().api);
    let put = http
        .put(&url)
        .header("content-type", "application/json")
        .body(r#"{"name": "Packaged mug", "price": 1200, "stock": 3}"#)
        .send()
        .await
        .expect("PUT");
    let status = put.status();
    let body = put.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}");

    // The instance that answered is the packaged binary.
    let running = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|cmdline| {
            String::from_utf8_lossy(&cmdline).contains(&*bootstrap_path.to_string_lossy())
        });
    assert!(running, "no process runs {}", bootstrap_path.display());

    let got = http.get(&url).send().await.expect("GET");
    assert_eq!(got.status(), 200);
    let product: serde_json::Value = got.json().await.expect("json");
    assert_eq!(product["name"], "Packaged mug");
    assert_eq!(product["stock"], 3);

    stack.shutdown().await;
    let _ = std::fs::remove_dir_all(&work);
}
