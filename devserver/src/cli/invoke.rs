//! `woocom-dev invoke`: run one function with an event, print the result on
//! stdout and the invocation's log on stderr. Uses the running stack when
//! there is one (so the function sees its tables), else starts one.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use woocom_dev::lambda::{InvokeRequest, InvokeResponse};
use woocom_dev::manifest::Manifest;
use woocom_dev::{Stack, StackOptions};

#[derive(clap::Args)]
pub struct InvokeArgs {
    /// The function's name in dev.toml.
    function: String,
    /// Event JSON file; `-` reads standard input. Without it: standard
    /// input when piped, else `{}`.
    #[arg(long, short = 'e')]
    event: Option<PathBuf>,
    /// AWS endpoint of a running stack (default: the one dev.toml's ports
    /// give, if it answers).
    #[arg(long)]
    endpoint: Option<String>,
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

pub async fn run(
    manifest_path: &Path,
    args: InvokeArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let event = read_event(args.event.as_deref())?;
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&event) {
        return Err(format!("the event is not valid JSON: {e}").into());
    }
    let manifest = Manifest::load(manifest_path)?;
    if !manifest.functions.contains_key(&args.function) {
        let known: Vec<&str> = manifest.functions.keys().map(String::as_str).collect();
        return Err(format!(
            "no function `{}` in {} (declared: {})",
            args.function,
            manifest_path.display(),
            known.join(", ")
        )
        .into());
    }
    let endpoint = args
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", manifest.ports.aws));
    let client: Client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();

    let response = if is_running(&client, &endpoint).await {
        eprintln!(
            "woocom-dev: invoking {} on the running stack at {endpoint}",
            args.function
        );
        invoke_remote(&client, &endpoint, &args.function, event).await?
    } else {
        eprintln!("woocom-dev: no stack at {endpoint}; starting one for this invocation");
        let stack = Stack::start(StackOptions::new(manifest).free_ports()).await?;
        let result = stack
            .lambda()
            .invoke(
                &args.function,
                InvokeRequest {
                    payload: Bytes::from(event),
                    tail_logs: true,
                    ..InvokeRequest::default()
                },
            )
            .await;
        stack.shutdown().await;
        result?
    };

    if let Some(log) = &response.log {
        eprint!("{log}");
    }
    let text = String::from_utf8_lossy(&response.payload);
    match serde_json::from_slice::<serde_json::Value>(&response.payload) {
        Ok(v) => println!(
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| text.to_string())
        ),
        Err(_) => println!("{text}"),
    }
    Ok(match response.function_error {
        Some(kind) => {
            eprintln!("woocom-dev: function error ({kind})");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    })
}

fn read_event(path: Option<&Path>) -> std::io::Result<Vec<u8>> {
    match path {
        Some(p) if p == Path::new("-") => read_stdin(),
        Some(p) => std::fs::read(p).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot read event file {}: {e}", p.display()),
            )
        }),
        None if !std::io::stdin().is_terminal() => read_stdin(),
        None => Ok(b"{}".to_vec()),
    }
}

fn read_stdin() -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf)?;
    Ok(buf)
}

async fn is_running(client: &Client, endpoint: &str) -> bool {
    let Ok(uri) = format!("{endpoint}{}", woocom_dev::aws::HEALTH_PATH).parse::<http::Uri>() else {
        return false;
    };
    let check = client.get(uri);
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(1), check).await,
        Ok(Ok(r)) if r.status().is_success()
    )
}

async fn invoke_remote(
    client: &Client,
    endpoint: &str,
    function: &str,
    event: Vec<u8>,
) -> Result<InvokeResponse, Box<dyn std::error::Error>> {
    let request = http::Request::post(format!(
        "{endpoint}/2015-03-31/functions/{function}/invocations"
    ))
    .header("x-amz-log-type", "Tail")
    .header("content-type", "application/json")
    .body(Full::new(Bytes::from(event)))?;
    let response = client.request(request).await?;
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request_id = header("x-amzn-requestid").unwrap_or_default();
    let function_error = header("x-amz-function-error");
    let log = header("x-amz-log-result")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let payload = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(format!(
            "the Invoke API answered {status}: {}",
            String::from_utf8_lossy(&payload)
        )
        .into());
    }
    Ok(InvokeResponse {
        request_id,
        payload,
        function_error,
        log,
    })
}
