//! `woocom-dev package`: every function built for Lambda and zipped.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use woocom_dev::deploy::package::{self, Arch, PackageOptions};
use woocom_dev::manifest::Manifest;

#[derive(clap::Args)]
pub struct PackageArgs {
    /// Architectures to build (repeat the flag); default: arm64 and x86_64.
    #[arg(long = "arch", value_enum)]
    arches: Vec<Arch>,
    /// Output folder, relative to the workspace (default target/lambda).
    #[arg(long, default_value = package::DEFAULT_OUTPUT)]
    output: PathBuf,
    /// Hide cargo's progress.
    #[arg(long)]
    quiet: bool,
}

pub async fn run(
    manifest_path: &Path,
    args: PackageArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let manifest = Manifest::load(manifest_path)?;
    let arches = if args.arches.is_empty() {
        Arch::ALL.to_vec()
    } else {
        args.arches
    };
    let options = PackageOptions {
        arches,
        output: args.output,
        quiet: args.quiet,
    };
    let packages =
        tokio::task::spawn_blocking(move || package::package(&manifest, &options)).await??;
    for p in &packages {
        println!(
            "{:<8} {:<20} {:>9} bytes  glibc {:<5} sha256 {}  {}",
            p.arch,
            p.function,
            p.size,
            p.glibc.as_deref().unwrap_or("none"),
            p.sha256,
            p.zip.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
