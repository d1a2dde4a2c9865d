//! `woocom-dev render`: writes `terraform/manifest.json` from dev.toml;
//! `--check` fails when the file is stale instead of writing it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use woocom_dev::deploy::render;
use woocom_dev::manifest::Manifest;

#[derive(clap::Args)]
pub struct RenderArgs {
    /// Where to write (default: terraform/manifest.json beside dev.toml).
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Do not write; exit 1 when the file differs from what dev.toml renders.
    #[arg(long)]
    check: bool,
}

pub fn output_path(manifest: &Manifest, output: Option<PathBuf>) -> PathBuf {
    output.unwrap_or_else(|| manifest.root().join(render::DEFAULT_OUTPUT))
}

pub async fn run(
    manifest_path: &Path,
    args: RenderArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let manifest = Manifest::load(manifest_path)?;
    let output = output_path(&manifest, args.output);
    if args.check {
        if render::is_current(&manifest, &output)? {
            eprintln!("woocom-dev: {} is current", output.display());
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "error: {} is stale: it does not match {}. Run `woocom-dev render` and commit the result.",
            output.display(),
            manifest_path.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let changed = render::write(&manifest, &output)?;
    eprintln!(
        "woocom-dev: {} {}",
        output.display(),
        if changed {
            "written"
        } else {
            "already current"
        }
    );
    Ok(ExitCode::SUCCESS)
}
