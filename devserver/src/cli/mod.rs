//! Command-line interface: one module per subcommand.

mod buckets;
mod deploy;
mod destroy;
mod events;
mod faults;
mod invoke;
mod logging;
mod package;
mod queues;
mod render;
mod reset;
mod running;
mod scan;
mod seed;
mod streams;
mod tables;
mod topics;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "woocom-dev",
    version,
    about = "Run the WooCom serverless stack locally"
)]
struct Cli {
    /// The stack manifest.
    #[arg(
        long,
        short = 'm',
        global = true,
        default_value = "dev.toml",
        env = "WOOCOM_MANIFEST"
    )]
    manifest: PathBuf,
    /// Terminal log format: readable text or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Build the functions and run the whole stack until Ctrl-C / SIGTERM.
    Up(up::UpArgs),
    /// Invoke one function with an event and print its result and logs.
    Invoke(invoke::InvokeArgs),
    /// List the stack's DynamoDB tables with their item counts.
    Tables(tables::TablesArgs),
    /// Print a table's items.
    Scan(scan::ScanArgs),
    /// Load the tables' seed data again (the catalogue), keeping other items.
    Seed(seed::SeedArgs),
    /// Delete the stack's local DynamoDB data (the next `up` starts clean).
    Reset(reset::ResetArgs),
    /// Inject DynamoDB errors into a running stack (throttling, 500s).
    Faults(faults::FaultsArgs),
    /// Stream delivery: mapping status, dead-letter queues, replay.
    Streams(streams::StreamsArgs),
    /// SQS queues: depth and in-flight counts, peek, purge, redrive a DLQ.
    Queues(queues::QueuesArgs),
    /// SNS topics and their subscriptions.
    Topics(topics::TopicsArgs),
    /// S3 buckets: objects and bytes per bucket, a bucket's objects.
    Buckets(buckets::BucketsArgs),
    /// EventBridge: rules, failed deliveries, put, tail, test a pattern,
    /// fire a rule, replay an archive.
    Events(events::EventsArgs),
    /// Render dev.toml to terraform/manifest.json (--check: fail when stale).
    Render(render::RenderArgs),
    /// Build every function for Lambda (arm64, x86_64) into zips.
    Package(package::PackageArgs),
    /// Package, run Terraform for a stack and upload the frontend.
    Deploy(deploy::DeployArgs),
    /// Destroy a developer stack (dev-<name>).
    Destroy(destroy::DestroyArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            drop(log);
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::run(&cli.manifest, args).await,
            Command::Invoke(args) => invoke::run(&cli.manifest, args).await,
            Command::Tables(args) => tables::run(&cli.manifest, args).await,
            Command::Scan(args) => scan::run(&cli.manifest, args).await,
            Command::Seed(args) => seed::run(&cli.manifest, args).await,
            Command::Reset(args) => reset::run(&cli.manifest, args).await,
            Command::Faults(args) => faults::run(&cli.manifest, args).await,
            Command::Streams(args) => streams::run(&cli.manifest, args).await,
            Command::Queues(args) => queues::run(&cli.manifest, args).await,
            Command::Topics(args) => topics::run(&cli.manifest, args).await,
            Command::Buckets(args) => buckets::run(&cli.manifest, args).await,
            Command::Events(args) => events::run(&cli.manifest, args).await,
            Command::Render(args) => render::run(&cli.manifest, args).await,
            Command::Package(args) => package::run(&cli.manifest, args).await,
            Command::Deploy(args) => deploy::run(&cli.manifest, args).await,
            Command::Destroy(args) => destroy::run(&cli.manifest, args).await,
        }
    });
    // Stop the tasks that log, then write what is still queued, before the
    // error goes to stderr after it.
    drop(runtime);
    drop(log);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", report(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// An error as the terminal shows it: `error[code]: message` and, when the
/// error knows one, a `help:` line saying what to do.
fn report(e: &(dyn std::error::Error + 'static)) -> String {
    use miette::Diagnostic;
    use woocom_dev::dynamodb::DynamoDbError;
    use woocom_dev::lambda::build::BuildError;
    use woocom_dev::manifest::LoadError;
    use woocom_dev::stack::StackError;

    let diagnostic: Option<&dyn Diagnostic> = None
        .or_else(|| e.downcast_ref::<StackError>().map(|d| d as &dyn Diagnostic))
        .or_else(|| e.downcast_ref::<LoadError>().map(|d| d as &dyn Diagnostic))
        .or_else(|| e.downcast_ref::<BuildError>().map(|d| d as &dyn Diagnostic))
        .or_else(|| {
            e.downcast_ref::<DynamoDbError>()
                .map(|d| d as &dyn Diagnostic)
        });
    let code = diagnostic
        .and_then(|d| d.code())
        .map_or_else(|| "woocom::error".to_owned(), |c| c.to_string());
    let mut out = format!("error[{code}]: {e}\n");
    if let Some(help) = diagnostic.and_then(|d| d.help()) {
        out.push_str(&format!("  help: {help}\n"));
    }
    out
}
