//! `woocom-dev destroy --stack dev-<name>`: removes a developer's stack and
//! nothing else (its own state object, its own prefixed resources).
//! Staging and production are not destroyed from a laptop.

use std::path::Path;
use std::process::ExitCode;

use woocom_dev::deploy::terraform::{self, StackName, Terraform};
use woocom_dev::manifest::Manifest;

#[derive(clap::Args)]
pub struct DestroyArgs {
    /// The developer stack: `dev-<name>`.
    #[arg(long)]
    stack: StackName,
    /// S3 bucket holding Terraform state (default: $WOOCOM_STATE_BUCKET).
    #[arg(long)]
    state_bucket: Option<String>,
    /// Do not ask Terraform for confirmation.
    #[arg(long)]
    auto_approve: bool,
}

pub async fn run(
    manifest_path: &Path,
    args: DestroyArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if !matches!(args.stack, StackName::Developer(_)) {
        return Err(format!(
            "refusing to destroy `{}`: only developer stacks (dev-<name>) are destroyed with woocom-dev; shared stacks are removed through their pipeline",
            args.stack
        )
        .into());
    }
    let manifest = Manifest::load(manifest_path)?;
    terraform::require_terraform()?;
    let tf = Terraform::new(
        manifest.root(),
        args.stack,
        args.state_bucket,
        &manifest.stack.region,
    )?;
    let package_dir = super::deploy::package_dir(&manifest)?;
    let extra = vec![("package_dir".to_owned(), package_dir)];
    tokio::task::spawn_blocking(move || {
        tf.init()?;
        tf.destroy(&extra, args.auto_approve)
    })
    .await??;
    Ok(ExitCode::SUCCESS)
}
