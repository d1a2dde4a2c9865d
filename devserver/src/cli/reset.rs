//! `woocom-dev reset`: deletes the stack's local DynamoDB data, so the next
//! `woocom-dev up` starts with the tables of `dev.toml`, empty.

use std::path::Path;
use std::process::ExitCode;

use woocom_dev::dynamodb::{self, DataLocation};
use woocom_dev::manifest::Manifest;

#[derive(clap::Args)]
pub struct ResetArgs {}

pub async fn run(
    manifest_path: &Path,
    _args: ResetArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let manifest = Manifest::load(manifest_path)?;
    let location = DataLocation::project(&manifest);
    let removed = dynamodb::reset(&location)?;
    let DataLocation::Dir(dir) = &location else {
        return Ok(ExitCode::SUCCESS);
    };
    if removed.is_empty() {
        println!("nothing to reset: no data in {}", dir.display());
    } else {
        println!(
            "reset stack `{}`: deleted the DynamoDB data in {}",
            manifest.stack.name,
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
