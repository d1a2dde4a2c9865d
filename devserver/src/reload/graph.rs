//! Which workspace crates each function binary is built from, read from
//! `cargo metadata`: a change in a crate rebuilds the functions whose
//! package depends on it (directly or through other workspace crates).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("cannot run cargo metadata: {0}")]
    Spawn(std::io::Error),
    #[error("cargo metadata failed: {0}")]
    Failed(String),
    #[error("cargo metadata printed something unexpected: {0}")]
    Parse(String),
}

#[derive(Debug, Clone, Default)]
pub struct CrateGraph {
    /// Workspace package name → its folder.
    pub dirs: BTreeMap<String, PathBuf>,
    /// Workspace package name → the workspace packages it depends on.
    deps: BTreeMap<String, BTreeSet<String>>,
}

impl CrateGraph {
    pub fn load(root: &Path) -> Result<CrateGraph, GraphError> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(root)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .map_err(GraphError::Spawn)?;
        if !out.status.success() {
            return Err(GraphError::Failed(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| GraphError::Parse(e.to_string()))?;
        CrateGraph::from_metadata(&meta)
    }

    fn from_metadata(meta: &serde_json::Value) -> Result<CrateGraph, GraphError> {
        let packages = meta["packages"]
            .as_array()
            .ok_or_else(|| GraphError::Parse("no `packages` list".to_owned()))?;
        let mut dirs = BTreeMap::new();
        let mut deps = BTreeMap::new();
        for p in packages {
            let name = p["name"].as_str().unwrap_or_default().to_owned();
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap_or_default());
            if let Some(dir) = manifest.parent() {
                dirs.insert(name.clone(), dir.to_owned());
            }
            // With --no-deps only workspace members are listed; a dependency
            // with a `path` is one of them.
            let local: BTreeSet<String> = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["path"].is_string())
                .filter_map(|d| d["name"].as_str().map(str::to_owned))
                .collect();
            deps.insert(name, local);
        }
        Ok(CrateGraph { dirs, deps })
    }

    /// The package and every workspace package it depends on.
    pub fn closure(&self, package: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![package.to_owned()];
        while let Some(p) = todo.pop() {
            if !seen.insert(p.clone()) {
                continue;
            }
            if let Some(d) = self.deps.get(&p) {
                todo.extend(d.iter().cloned());
            }
        }
        seen.retain(|p| self.dirs.contains_key(p));
        seen
    }

    /// The workspace package a file belongs to: the one with the deepest
    /// folder containing it (crates may sit inside other crates' folders).
    pub fn owner(&self, file: &Path) -> Option<&str> {
        self.dirs
            .iter()
            .filter(|(_, dir)| file.starts_with(dir))
            .max_by_key(|(_, dir)| dir.components().count())
            .map(|(name, _)| name.as_str())
    }
}

/// Whether a changed path can change a build: sources and manifests, not
/// build output, VCS data or editor scratch files.
pub fn relevant(path: &Path) -> bool {
    let ignored_dir = path.components().any(|c| {
        let c = c.as_os_str().to_string_lossy();
        c == "target" || c == ".git" || c == "node_modules" || c == ".woocom"
    });
    if ignored_dir {
        return false;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scratch = name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name == "4913";
    !scratch
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn graph() -> CrateGraph {
        CrateGraph::from_metadata(&json!({ "packages": [
            { "name": "domain", "manifest_path": "/w/functions/domain/Cargo.toml", "dependencies": [
                { "name": "serde" } ] },
            { "name": "products", "manifest_path": "/w/functions/products/Cargo.toml", "dependencies": [
                { "name": "domain", "path": "/w/functions/domain" }, { "name": "tokio" } ] },
            { "name": "orders", "manifest_path": "/w/functions/orders/Cargo.toml", "dependencies": [] },
            { "name": "devserver", "manifest_path": "/w/devserver/Cargo.toml", "dependencies": [] },
            { "name": "probe", "manifest_path": "/w/devserver/probe/Cargo.toml", "dependencies": [] }
        ]}))
        .expect("graph")
    }

    #[test]
    fn a_function_is_built_from_its_crate_and_its_workspace_dependencies() {
        let g = graph();
        assert_eq!(
            g.closure("products"),
            ["domain", "products"].map(String::from).into()
        );
        assert_eq!(g.closure("orders"), ["orders"].map(String::from).into());
    }

    #[test]
    fn files_belong_to_the_deepest_crate() {
        let g = graph();
        assert_eq!(
            g.owner(Path::new("/w/devserver/probe/src/main.rs")),
            Some("probe")
        );
        assert_eq!(
            g.owner(Path::new("/w/devserver/src/lib.rs")),
            Some("devserver")
        );
        assert_eq!(g.owner(Path::new("/w/README.md")), None);
    }

    #[test]
    fn build_output_and_editor_files_are_ignored() {
        assert!(relevant(Path::new("/w/functions/products/src/lib.rs")));
        assert!(!relevant(Path::new("/w/target/debug/x")));
        assert!(!relevant(Path::new(
            "/w/functions/products/src/.lib.rs.swp"
        )));
        assert!(!relevant(Path::new("/w/functions/products/src/lib.rs~")));
    }
}
