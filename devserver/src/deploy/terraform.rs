//! Running Terraform for one stack: `dev-<name>`, `staging` or
//! `production`. Every stack is the one root `terraform/stack`, given
//! `-var-file=env/<environment>.tfvars` and `-var stack=<stack>`; each has
//! its own S3 state object (`-backend-config=key=…`, native S3 locking) and
//! its own `.terraform` folder under `.woocom/terraform/<stack>`, so stacks
//! never share backend settings.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Environment variable naming the S3 bucket holding Terraform state (the
/// `bootstrap` stack's `state_bucket` output).
pub const STATE_BUCKET_ENV: &str = "WOOCOM_STATE_BUCKET";
/// The state bucket's region when it is not dev.toml's `[stack] region`.
pub const STATE_REGION_ENV: &str = "WOOCOM_STATE_REGION";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackName {
    /// `dev-<name>`: a developer's own stack.
    Developer(String),
    Staging,
    Production,
}

#[derive(Debug, thiserror::Error)]
pub enum TerraformError {
    #[error(
        "unknown stack `{0}`: use `dev-<name>` (your own stack; name = 1-20 lowercase letters, digits or `-`), `staging` or `production`"
    )]
    BadStack(String),
    #[error("{what} not found on PATH. {fix}")]
    Missing { what: String, fix: String },
    #[error(
        "terraform {found} is too old: the stacks need >= {}.{} (S3-native state locking, `use_lockfile`). CI uses 1.11.4 (hashicorp/setup-terraform).",
        MIN_TERRAFORM.0,
        MIN_TERRAFORM.1
    )]
    TooOld { found: String },
    #[error(
        "no Terraform state bucket: set {STATE_BUCKET_ENV} (or --state-bucket) to the bucket the bootstrap stack created (`terraform -chdir=terraform/bootstrap output -raw state_bucket`)"
    )]
    NoStateBucket,
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status})")]
    Failed { command: String, status: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("terraform output: {0}")]
    Output(String),
}

impl std::str::FromStr for StackName {
    type Err = TerraformError;
    fn from_str(s: &str) -> Result<StackName, TerraformError> {
        match s {
            "staging" => Ok(StackName::Staging),
            "production" | "prod" => Ok(StackName::Production),
            _ => {
                let Some(name) = s.strip_prefix("dev-") else {
                    return Err(TerraformError::BadStack(s.to_owned()));
                };
                let ok = (1..=20).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !name.starts_with('-')
                    && !name.ends_with('-');
                if ok {
                    Ok(StackName::Developer(name.to_owned()))
                } else {
                    Err(TerraformError::BadStack(s.to_owned()))
                }
            }
        }
    }
}

impl std::fmt::Display for StackName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StackName::Developer(name) => write!(f, "dev-{name}"),
            StackName::Staging => f.write_str("staging"),
            StackName::Production => f.write_str("production"),
        }
    }
}

impl StackName {
    /// The environment: its settings are `terraform/stack/env/<environment>.tfvars`.
    pub fn environment(&self) -> &'static str {
        match self {
            StackName::Developer(_) => "dev",
            StackName::Staging => "staging",
            StackName::Production => "production",
        }
    }

    /// The state object in the bucket: one per stack, one per developer.
    pub fn state_key(&self) -> String {
        match self {
            StackName::Developer(name) => format!("dev/{name}/terraform.tfstate"),
            StackName::Staging => "staging/terraform.tfstate".to_owned(),
            StackName::Production => "production/terraform.tfstate".to_owned(),
        }
    }

    /// The environment's tfvars file, relative to [`STACK_ROOT`].
    pub fn var_file(&self) -> String {
        format!("env/{}.tfvars", self.environment())
    }

    /// `-var` arguments the stack's variables need beyond its tfvars file.
    pub fn vars(&self) -> Vec<(String, String)> {
        vec![("stack".to_owned(), self.to_string())]
    }
}

/// The Terraform root every stack is deployed from, relative to the
/// repository.
pub const STACK_ROOT: &str = "terraform/stack";

/// One stack's Terraform, ready to run.
pub struct Terraform {
    pub stack: StackName,
    /// [`STACK_ROOT`].
    pub dir: PathBuf,
    /// `TF_DATA_DIR`.
    pub data_dir: PathBuf,
    pub state_bucket: String,
    pub state_region: String,
    pub vars: Vec<(String, String)>,
}

/// Whether `program --version` runs.
pub fn on_path(program: &str, version_arg: &str) -> bool {
    Command::new(program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The oldest Terraform the roots accept (their `required_version`):
/// S3-native state locking (`use_lockfile`) came with 1.11.
pub const MIN_TERRAFORM: (u64, u64) = (1, 11);

/// `major.minor` of a version such as `1.11.4` or `1.12.0-beta1`.
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim_start_matches('v').split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Terraform is on PATH and new enough, said before anything changes.
pub fn require_terraform() -> Result<(), TerraformError> {
    let missing = || {
        TerraformError::Missing {
        what: format!("terraform (>= {}.{})", MIN_TERRAFORM.0, MIN_TERRAFORM.1),
        fix: "Install it from HashiCorp's releases or your package manager; CI uses hashicorp/setup-terraform.".into(),
    }
    };
    let out = Command::new("terraform")
        .args(["version", "-json"])
        .stderr(Stdio::null())
        .output()
        .map_err(|_| missing())?;
    if !out.status.success() {
        return Err(missing());
    }
    let found = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v["terraform_version"].as_str().map(str::to_owned))
        .unwrap_or_default();
    match major_minor(&found) {
        Some(v) if v >= MIN_TERRAFORM => Ok(()),
        _ => Err(TerraformError::TooOld { found }),
    }
}

impl Terraform {
    /// `region` is dev.toml's `[stack] region`, where the state bucket is
    /// unless `WOOCOM_STATE_REGION` says otherwise.
    pub fn new(
        root: &Path,
        stack: StackName,
        state_bucket: Option<String>,
        region: &str,
    ) -> Result<Terraform, TerraformError> {
        let state_region = std::env::var(STATE_REGION_ENV)
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| region.to_owned());
        let state_bucket = state_bucket
            .or_else(|| std::env::var(STATE_BUCKET_ENV).ok())
            .filter(|b| !b.is_empty())
            .ok_or(TerraformError::NoStateBucket)?;
        let dir = root.join(STACK_ROOT);
        let data_dir = root.join(".woocom/terraform").join(stack.to_string());
        let vars = stack.vars();
        Ok(Terraform {
            stack,
            dir,
            data_dir,
            state_bucket,
            state_region,
            vars,
        })
    }

    fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new("terraform");
        cmd.arg(format!("-chdir={}", self.dir.display()))
            .args(args)
            .env("TF_DATA_DIR", &self.data_dir)
            .env("TF_IN_AUTOMATION", "1");
        cmd
    }

    fn run(&self, args: Vec<String>) -> Result<(), TerraformError> {
        let shown = format!("terraform {}", args.join(" "));
        eprintln!("woocom-dev: {} $ {shown}", self.stack);
        let status = self
            .command(&args)
            .status()
            .map_err(|source| TerraformError::Spawn {
                program: "terraform".into(),
                source,
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(TerraformError::Failed {
                command: shown,
                status: status.to_string(),
            })
        }
    }

    /// `terraform init` against this stack's own state object.
    pub fn init(&self) -> Result<(), TerraformError> {
        std::fs::create_dir_all(&self.data_dir).map_err(|source| TerraformError::Io {
            path: self.data_dir.clone(),
            source,
        })?;
        self.run(vec![
            "init".into(),
            "-input=false".into(),
            "-reconfigure".into(),
            format!("-backend-config=bucket={}", self.state_bucket),
            format!("-backend-config=key={}", self.stack.state_key()),
            format!("-backend-config=region={}", self.state_region),
        ])
    }

    /// The environment's tfvars file, then `-var`s (which override it).
    pub fn var_args(&self, extra: &[(String, String)]) -> Vec<String> {
        std::iter::once(format!("-var-file={}", self.stack.var_file()))
            .chain(
                self.vars
                    .iter()
                    .chain(extra)
                    .map(|(k, v)| format!("-var={k}={v}")),
            )
            .collect()
    }

    pub fn plan(&self, extra: &[(String, String)]) -> Result<(), TerraformError> {
        let mut args = vec!["plan".into(), "-input=false".into()];
        args.extend(self.var_args(extra));
        self.run(args)
    }

    pub fn apply(
        &self,
        extra: &[(String, String)],
        auto_approve: bool,
    ) -> Result<(), TerraformError> {
        let mut args = vec!["apply".into(), "-input=false".into()];
        if auto_approve {
            args.push("-auto-approve".into());
        }
        args.extend(self.var_args(extra));
        self.run(args)
    }

    pub fn destroy(
        &self,
        extra: &[(String, String)],
        auto_approve: bool,
    ) -> Result<(), TerraformError> {
        let mut args = vec!["destroy".into(), "-input=false".into()];
        if auto_approve {
            args.push("-auto-approve".into());
        }
        args.extend(self.var_args(extra));
        self.run(args)
    }

    /// `terraform output -json`, as a map of output name → value.
    pub fn outputs(&self) -> Result<serde_json::Map<String, serde_json::Value>, TerraformError> {
        let out = self
            .command(&["output".into(), "-json".into()])
            .stderr(Stdio::inherit())
            .output()
            .map_err(|source| TerraformError::Spawn {
                program: "terraform".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(TerraformError::Failed {
                command: "terraform output -json".into(),
                status: out.status.to_string(),
            });
        }
        let value: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| TerraformError::Output(e.to_string()))?;
        let Some(map) = value.as_object() else {
            return Err(TerraformError::Output("not a JSON object".into()));
        };
        Ok(map
            .iter()
            .map(|(k, v)| (k.clone(), v["value"].clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names() {
        assert_eq!(
            "dev-alice".parse::<StackName>().ok(),
            Some(StackName::Developer("alice".into()))
        );
        assert_eq!(
            "staging".parse::<StackName>().ok(),
            Some(StackName::Staging)
        );
        assert_eq!(
            "production".parse::<StackName>().ok(),
            Some(StackName::Production)
        );
        for bad in [
            "dev-",
            "dev-Alice",
            "alice",
            "dev-a_b",
            "dev--x",
            "dev-abcdefghijklmnopqrstu",
        ] {
            assert!(bad.parse::<StackName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn terraform_versions_are_compared_by_major_and_minor() {
        assert_eq!(major_minor("1.11.4"), Some((1, 11)));
        assert_eq!(major_minor("1.12.0-beta1"), Some((1, 12)));
        assert_eq!(major_minor("v1.10.5"), Some((1, 10)));
        assert_eq!(major_minor(""), None);
        assert!(major_minor("1.10.5") < Some(MIN_TERRAFORM));
        assert!(major_minor("1.11.0") >= Some(MIN_TERRAFORM));
        assert!(major_minor("2.0.0") >= Some(MIN_TERRAFORM));
    }

    #[test]
    fn every_stack_has_its_own_state_object() {
        let keys: Vec<String> = ["dev-alice", "dev-bob", "staging", "production"]
            .iter()
            .filter_map(|s| s.parse::<StackName>().ok())
            .map(|s| s.state_key())
            .collect();
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 4, "{keys:?}");
    }

    #[test]
    fn every_stack_is_the_one_root_with_its_environment_and_name() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (stack, env) in [
            ("dev-alice", "dev"),
            ("staging", "staging"),
            ("production", "production"),
        ] {
            let name: StackName = stack.parse().expect("stack name");
            assert_eq!(name.environment(), env);
            let tf =
                Terraform::new(&root, name, Some("bucket".into()), "eu-west-1").expect("terraform");
            assert_eq!(tf.dir, root.join(STACK_ROOT));
            assert_eq!(
                tf.var_args(&[]),
                [
                    format!("-var-file=env/{env}.tfvars"),
                    format!("-var=stack={stack}")
                ]
            );
            assert!(
                tf.dir.join(tf.stack.var_file()).is_file(),
                "{} has no {}",
                tf.dir.display(),
                tf.stack.var_file()
            );
        }
    }
}
