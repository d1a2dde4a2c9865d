//! `woocom-dev deploy --stack <name>`: package the functions, run Terraform
//! for the stack, upload the frontend.
//!
//! Everything it needs is checked first, and a missing piece is named with
//! its fix before anything is built or changed.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use woocom_dev::deploy::package::{self, Arch, PackageOptions};
use woocom_dev::deploy::render;
use woocom_dev::deploy::terraform::{self, StackName, Terraform};
use woocom_dev::manifest::Manifest;

#[derive(clap::Args)]
pub struct DeployArgs {
    /// `dev-<name>` (your own stack), `staging` or `production`.
    #[arg(long)]
    stack: StackName,
    /// Lambda architecture; must match the stack's `architecture` variable
    /// (arm64 unless its tfvars say otherwise).
    #[arg(long, value_enum, default_value_t = Arch::Arm64)]
    arch: Arch,
    /// S3 bucket holding Terraform state (default: $WOOCOM_STATE_BUCKET).
    #[arg(long)]
    state_bucket: Option<String>,
    /// Show the plan only: change nothing, upload nothing.
    #[arg(long)]
    plan: bool,
    /// Apply without Terraform's confirmation prompt (CI).
    #[arg(long)]
    auto_approve: bool,
    /// Use the zips already in target/lambda instead of building.
    #[arg(long)]
    skip_package: bool,
}

/// The absolute package folder passed to Terraform as `package_dir`.
pub fn package_dir(manifest: &Manifest) -> Result<String, Box<dyn std::error::Error>> {
    let dir = manifest.root().join(package::DEFAULT_OUTPUT);
    let absolute = std::path::absolute(&dir)?;
    Ok(absolute.display().to_string())
}

pub async fn run(
    manifest_path: &Path,
    args: DeployArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let manifest = Manifest::load(manifest_path)?;
    let root = manifest.root().to_owned();

    // 1. Everything that can be missing, before anything happens.
    terraform::require_terraform()?;
    let frontend = Frontend::find(&manifest);
    if !args.plan && frontend.is_some() && !terraform::on_path("aws", "--version") {
        return Err("the AWS CLI (`aws`) is needed to upload the frontend and is not on PATH: `pip install awscli` (./scripts/test installs it into .woocom/venv/bin)".into());
    }
    let rendered = root.join(render::DEFAULT_OUTPUT);
    if !render::is_current(&manifest, &rendered)? {
        return Err(format!(
            "{} is stale: run `woocom-dev render` (and commit it) before deploying",
            rendered.display()
        )
        .into());
    }
    let tf = Terraform::new(
        &root,
        args.stack.clone(),
        args.state_bucket.clone(),
        &manifest.stack.region,
    )?;

    // 2. Packages.
    if !args.skip_package {
        let options = PackageOptions {
            arches: vec![args.arch],
            output: PathBuf::from(package::DEFAULT_OUTPUT),
            quiet: false,
        };
        let m = manifest.clone();
        let packages =
            tokio::task::spawn_blocking(move || package::package(&m, &options)).await??;
        eprintln!(
            "woocom-dev: packaged {} function(s) for {}",
            packages.len(),
            args.arch
        );
    }
    let extra = vec![
        ("package_dir".to_owned(), package_dir(&manifest)?),
        (
            "architecture".to_owned(),
            args.arch.lambda_name().to_owned(),
        ),
    ];

    // 3. Terraform, then 4. the frontend files.
    let plan = args.plan;
    let auto_approve = args.auto_approve;
    let outputs = tokio::task::spawn_blocking(move || {
        tf.init()?;
        if plan {
            tf.plan(&extra)?;
            return Ok::<_, terraform::TerraformError>(None);
        }
        tf.apply(&extra, auto_approve)?;
        tf.outputs().map(Some)
    })
    .await??;
    let Some(outputs) = outputs else {
        return Ok(ExitCode::SUCCESS);
    };
    match frontend {
        Some(frontend) => frontend.upload(&outputs)?,
        None => eprintln!(
            "woocom-dev: no [frontend] in {}: the site bucket serves config.json only",
            root.display()
        ),
    }
    for key in ["rest_api_url", "websocket_url", "site_url"] {
        if let Some(url) = outputs.get(key).and_then(|v| v.as_str()) {
            println!("{key:<14} {url}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// dev.toml's `[frontend]`: rebuilt when any source is newer than the last
/// build (the same rule as `woocom-dev up`), so a stale `dist/` is never
/// deployed.
struct Frontend {
    dir: PathBuf,
    dist: PathBuf,
    stamp: PathBuf,
}

impl Frontend {
    fn find(manifest: &Manifest) -> Option<Frontend> {
        let (dir, dist) = manifest.frontend_dirs()?;
        let stamp = manifest.root().join(".woocom").join("frontend-build.stamp");
        Some(Frontend { dir, dist, stamp })
    }

    fn upload(
        &self,
        outputs: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let get = |key: &str| {
            outputs
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| format!("terraform output `{key}` is missing"))
        };
        let bucket = get("site_bucket")?;
        let distribution = get("site_distribution_id")?;
        woocom_dev::frontend::ensure_built(&self.dir, &self.dist, &self.stamp, false)?;
        let dist = &self.dist;
        // config.json belongs to Terraform (it holds the API URLs).
        run_tool(Command::new("aws").args([
            "s3",
            "sync",
            &dist.display().to_string(),
            &format!("s3://{bucket}/"),
            "--delete",
            "--exclude",
            "config.json",
        ]))?;
        run_tool(Command::new("aws").args([
            "cloudfront",
            "create-invalidation",
            "--distribution-id",
            &distribution,
            "--paths",
            "/*",
        ]))?;
        Ok(())
    }
}

fn run_tool(cmd: &mut Command) -> Result<(), Box<dyn std::error::Error>> {
    let shown = format!("{cmd:?}");
    eprintln!("woocom-dev: $ {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})").into())
    }
}
