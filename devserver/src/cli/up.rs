//! `woocom-dev up`: run the stack until Ctrl-C or SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use woocom_dev::{Stack, StackOptions};

#[derive(clap::Args)]
pub struct UpArgs {
    /// Pick free ports for every listener instead of those in dev.toml.
    #[arg(long)]
    free_ports: bool,
    /// Once every listener is ready, write the base URLs there as JSON.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Build the functions with --release.
    #[arg(long)]
    release: bool,
    /// Do not rebuild and reload functions when their source or dev.toml
    /// changes.
    #[arg(long)]
    no_watch: bool,
    /// Keep the DynamoDB tables in this folder instead of
    /// `.woocom/data/<stack>` (e.g. a scratch folder for a test run).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Do not build or serve dev.toml's [frontend].
    #[arg(long)]
    no_frontend: bool,
    /// Do not load seed data into tables this start creates.
    #[arg(long)]
    no_seed: bool,
}

pub async fn run(manifest: &Path, args: UpArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut options = StackOptions::from_manifest_file(manifest)?;
    if args.free_ports {
        options = options.free_ports();
    }
    options.release = args.release;
    options.watch = !args.no_watch;
    options.data = match args.data {
        Some(dir) => woocom_dev::dynamodb::DataLocation::Dir(dir),
        None => woocom_dev::dynamodb::DataLocation::project(&options.manifest),
    };
    options.frontend = !args.no_frontend;
    options.seed_new_tables = !args.no_seed;
    // Tools that follow the running stack (the frontend's dev server, say)
    // read `.woocom/ready.json` unless told another file.
    let default_ready = options.manifest.root().join(".woocom").join("ready.json");
    eprintln!(
        "woocom-dev: building {} function(s) from {}",
        options.manifest.functions.len(),
        manifest.display()
    );
    let stack = Stack::start(options).await?;
    print_table(&stack);
    if let Some(path) = &args.ready_file {
        write_ready_file(path, &stack)?;
    }
    let wrote_default =
        args.ready_file.is_none() && write_ready_file(&default_ready, &stack).is_ok();

    wait_for_signal().await;
    eprintln!("woocom-dev: shutting down");
    stack.shutdown().await;
    if let Some(path) = &args.ready_file {
        let _ = std::fs::remove_file(path);
    }
    if wrote_default {
        let _ = std::fs::remove_file(&default_ready);
    }
    eprintln!("woocom-dev: stopped");
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Written to a temporary name and renamed, so a reader never sees half.
fn write_ready_file(path: &Path, stack: &Stack) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut value = serde_json::to_value(stack.urls()).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("pid".into(), std::process::id().into());
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&value).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}

fn print_table(stack: &Stack) {
    let urls = stack.urls();
    let m = stack.manifest();
    let mut out = String::new();
    out.push_str(&format!("\n  WooCom stack `{}` is up\n\n", m.stack.name));
    out.push_str(&format!("  REST API   {}\n", urls.api));
    out.push_str(&format!("  WebSocket  {}\n", urls.websocket));
    out.push_str(&format!(
        "  AWS        {}   (endpoint_url for the AWS SDKs and CLI)\n",
        urls.aws
    ));
    out.push_str(&format!(
        "  S3         {}   (AWS_ENDPOINT_URL_S3; secret access key woocom-local-secret)\n",
        urls.s3
    ));
    out.push_str(&format!("  Health     {}\n", urls.health));
    if let Some(site) = &urls.frontend {
        out.push_str(&format!(
            "  Shop       {site}   (the frontend, as CloudFront serves it)\n"
        ));
    }
    out.push('\n');
    if !m.routes.is_empty() {
        out.push_str("  Routes\n");
        let width = m.routes.iter().map(|r| r.method.len()).max().unwrap_or(3);
        for r in &m.routes {
            out.push_str(&format!(
                "    {:width$}  {}{}  ->  {}\n",
                r.method, urls.api, r.path, r.function
            ));
        }
        out.push('\n');
    }
    if !m.functions.is_empty() {
        out.push_str("  Functions\n");
        for f in m.functions.values() {
            out.push_str(&format!(
                "    {:20} crate {:24} timeout {:>5.1}s  memory {:>5} MB  concurrency {}\n",
                f.name,
                f.package,
                f.timeout.as_secs_f64(),
                f.memory_mb,
                f.concurrency
            ));
        }
        out.push('\n');
    }
    out.push_str("  Ctrl-C stops everything.\n");
    println!("{out}");
}
