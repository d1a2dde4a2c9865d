//! What the subcommands that talk to a running stack share: where its AWS
//! endpoint is (`--endpoint`, `--ready-file`, or dev.toml's `[ports] aws`)
//! and one JSON request to it.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use woocom_dev::manifest::Manifest;

#[derive(clap::Args)]
pub struct RunningStack {
    /// The running stack's AWS endpoint (default: dev.toml's [ports] aws).
    #[arg(long, global = true)]
    endpoint: Option<String>,
    /// Read the endpoint from the file `woocom-dev up --ready-file` wrote.
    #[arg(long, global = true, conflicts_with = "endpoint")]
    ready_file: Option<PathBuf>,
    /// Print the server's JSON answer as is.
    #[arg(long, global = true)]
    pub json: bool,
}

impl RunningStack {
    /// The AWS endpoint's base URL, without a final `/`.
    pub fn endpoint(&self, manifest_path: &Path) -> Result<String, Box<dyn std::error::Error>> {
        Ok(match (&self.endpoint, &self.ready_file) {
            (Some(e), _) => e.trim_end_matches('/').to_owned(),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                let ready: Value = serde_json::from_str(&text)?;
                ready["aws"]
                    .as_str()
                    .ok_or_else(|| format!("{} has no `aws` URL", file.display()))?
                    .trim_end_matches('/')
                    .to_owned()
            }
            (None, None) => {
                let manifest = Manifest::load(manifest_path)?;
                format!("http://127.0.0.1:{}", manifest.ports.aws)
            }
        })
    }
}

pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub async fn request(
    endpoint: &str,
    method: http::Method,
    url: &str,
    body: String,
) -> Result<Value, Box<dyn std::error::Error>> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    // Replays and redrives wait for the function.
    let response =
        tokio::time::timeout(std::time::Duration::from_secs(900), client.request(request))
            .await
            .map_err(|_| format!("{endpoint} did not answer"))?
            .map_err(|e| {
                format!("cannot reach woocom-dev at {endpoint} (is `woocom-dev up` running?): {e}")
            })?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(value["message"]
            .as_str()
            .unwrap_or("request refused")
            .to_owned()
            .into());
    }
    Ok(value)
}
