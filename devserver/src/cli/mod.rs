//! Command-line interface: one module per subcommand.

mod invoke;
mod logging;
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
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::run(&cli.manifest, args).await,
            Command::Invoke(args) => invoke::run(&cli.manifest, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
