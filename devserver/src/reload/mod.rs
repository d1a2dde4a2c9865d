//! Hot reload: watch the function crates (and the workspace crates they
//! depend on) and `dev.toml`; rebuild what changed in one cargo run; swap
//! the new binaries in without failing a request.
//!
//! Invariants:
//! - from the first change event touching a function until its rebuild
//!   ends, new invocations of that function wait (`LambdaHost::hold`), so
//!   none runs the old code once the new one is ready, and none fails;
//! - a new binary replaces the function's spec (`put_function`): idle old
//!   instances stop at once, busy ones after their invocation (drained);
//! - a failed build changes nothing that runs: the previous version keeps
//!   serving and the error is shown (terminal, `x-woocom-build-error`);
//! - an invalid `dev.toml` edit is rejected whole; the running
//!   configuration stays. A valid one is applied by the same function that
//!   configures the stack at start ([`crate::services::apply`]).

pub mod graph;

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use tokio::sync::{broadcast, mpsc};

use crate::lambda::FunctionSpec;
use crate::lambda::build::{self, BinTarget, BuildError, BuildSettings};
use crate::manifest::Manifest;
use crate::services::{self, Services};
use graph::CrateGraph;

/// Quiet time after the last file event before a build starts: an editor's
/// save is often several writes (temp file, rename, metadata).
pub const DEBOUNCE: Duration = Duration::from_millis(80);

/// What a reload did, for tests and tools (`Stack::reload_events`).
#[derive(Debug, Clone)]
pub enum ReloadEvent {
    /// New binaries serve these functions.
    Reloaded {
        functions: Vec<String>,
        /// From the first file event to the new version being in place.
        elapsed: Duration,
        /// Of which cargo took this long.
        build: Duration,
    },
    /// The build failed; the previous versions keep serving.
    BuildFailed {
        functions: Vec<String>,
        errors: String,
    },
    /// A `dev.toml` edit was applied; `needs_restart` names the changed
    /// sections that apply only at the next start (file:line and why).
    ManifestApplied {
        changes: Vec<String>,
        needs_restart: Vec<String>,
    },
    /// A `dev.toml` edit was rejected; the running configuration stays.
    ManifestRejected { error: String },
}

pub struct Reloader {
    /// The configuration running now.
    pub manifest: Manifest,
    pub services: Services,
    pub build: BuildSettings,
    pub events: broadcast::Sender<ReloadEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Graph(#[from] graph::GraphError),
    #[error("cannot watch files: {0}")]
    Watch(#[from] notify::Error),
}

enum Change {
    Crate(String),
    Manifest,
}

impl Reloader {
    /// Starts watching; the returned task runs until aborted.
    pub fn spawn(self) -> Result<tokio::task::JoinHandle<()>, ReloadError> {
        let root = absolute(self.manifest.root());
        // Without a cargo workspace (a dev.toml that only declares tables,
        // say) there are no crates to watch; dev.toml still is.
        let graph = match CrateGraph::load(&root) {
            Ok(g) => g,
            Err(e) => {
                if !self.manifest.functions.is_empty() {
                    tracing::warn!(target: "reload", "functions will not reload on change: {e}");
                }
                CrateGraph::default()
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && !matches!(event.kind, notify::EventKind::Access(_))
            {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
        })?;
        let mut state = State {
            reloader: self,
            root,
            graph,
            watcher,
            watched: BTreeSet::new(),
        };
        state.rewatch()?;
        Ok(tokio::spawn(state.run(rx)))
    }
}

struct State {
    reloader: Reloader,
    root: PathBuf,
    graph: CrateGraph,
    watcher: notify::RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

impl State {
    fn manifest_path(&self) -> PathBuf {
        absolute(&self.reloader.manifest.path)
    }

    /// Watches dev.toml's folder and the folder of every crate a function
    /// is built from.
    fn rewatch(&mut self) -> Result<(), ReloadError> {
        let mut wanted: BTreeSet<PathBuf> = BTreeSet::new();
        for f in self.reloader.manifest.functions.values() {
            for krate in self.graph.closure(&f.package) {
                if let Some(dir) = self.graph.dirs.get(&krate) {
                    wanted.insert(dir.clone());
                }
            }
        }
        let manifest_dir = self
            .manifest_path()
            .parent()
            .map_or_else(|| self.root.clone(), Path::to_owned);
        for gone in self
            .watched
            .difference(&wanted)
            .cloned()
            .collect::<Vec<_>>()
        {
            let _ = self.watcher.unwatch(&gone);
            self.watched.remove(&gone);
        }
        for dir in wanted {
            if !self.watched.contains(&dir) {
                self.watcher.watch(&dir, RecursiveMode::Recursive)?;
                self.watched.insert(dir);
            }
        }
        // dev.toml's folder is usually the workspace root: watched without
        // recursion, only the manifest file itself is looked at.
        if !self.watched.contains(&manifest_dir) {
            let _ = self
                .watcher
                .watch(&manifest_dir, RecursiveMode::NonRecursive);
        }
        Ok(())
    }

    fn classify(&self, path: &Path) -> Option<Change> {
        if path == self.manifest_path() {
            return Some(Change::Manifest);
        }
        // Judged below the workspace root: the workspace itself may sit in
        // a folder called `target` (tests do).
        if !graph::relevant(path.strip_prefix(&self.root).unwrap_or(path)) {
            return None;
        }
        self.graph.owner(path).map(|c| Change::Crate(c.to_owned()))
    }

    /// Functions whose binary is built from `krate`.
    fn functions_using(&self, krate: &str) -> Vec<String> {
        self.reloader
            .manifest
            .functions
            .values()
            .filter(|f| self.graph.closure(&f.package).contains(krate))
            .map(|f| f.name.clone())
            .collect()
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<PathBuf>) {
        while let Some(first) = rx.recv().await {
            let started = Instant::now();
            let mut crates = BTreeSet::new();
            let mut manifest_changed = false;
            let mut held: BTreeSet<String> = BTreeSet::new();
            let mut note = |state: &State,
                            path: &Path,
                            crates: &mut BTreeSet<String>,
                            manifest_changed: &mut bool| {
                match state.classify(path) {
                    Some(Change::Manifest) => *manifest_changed = true,
                    Some(Change::Crate(c)) => {
                        let functions = state.functions_using(&c);
                        if !functions.is_empty() {
                            let new: Vec<String> = functions
                                .into_iter()
                                .filter(|f| !held.contains(f))
                                .collect();
                            state.reloader.services.lambda.hold(&new);
                            held.extend(new);
                            crates.insert(c);
                        }
                    }
                    None => {}
                }
            };
            note(&self, &first, &mut crates, &mut manifest_changed);
            loop {
                tokio::select! {
                    more = rx.recv() => match more {
                        Some(path) => note(&self, &path, &mut crates, &mut manifest_changed),
                        None => return,
                    },
                    () = tokio::time::sleep(DEBOUNCE) => break,
                }
            }

            let mut to_build: BTreeSet<String> = BTreeSet::new();
            for c in &crates {
                to_build.extend(self.functions_using(c));
            }
            if manifest_changed {
                to_build.extend(self.apply_manifest().await);
            }
            // A function may have been removed by the manifest change.
            to_build.retain(|f| self.reloader.manifest.functions.contains_key(f));
            if !to_build.is_empty() {
                let list: Vec<String> = to_build.iter().cloned().collect();
                self.reloader.services.lambda.hold(&list);
                held.extend(list);
                self.rebuild(&to_build, started).await;
            }
            let held: Vec<String> = held.into_iter().collect();
            self.reloader.services.lambda.release(&held);
        }
    }

    async fn rebuild(&mut self, functions: &BTreeSet<String>, started: Instant) {
        let manifest = self.reloader.manifest.clone();
        let targets: BTreeMap<String, BinTarget> = functions
            .iter()
            .filter_map(|name| {
                let f = manifest.functions.get(name)?;
                Some((
                    name.clone(),
                    BinTarget {
                        package: f.package.clone(),
                        bin: f.bin.clone().unwrap_or_else(|| f.package.clone()),
                    },
                ))
            })
            .collect();
        let list: Vec<BinTarget> = {
            let mut l: Vec<BinTarget> = targets.values().cloned().collect();
            l.sort();
            l.dedup();
            l
        };
        let packages: Vec<String> = list.iter().map(|t| t.package.clone()).collect();
        let progress = Progress::start(&packages);
        let root = manifest.root().to_owned();
        let mut settings = self.reloader.build.clone();
        // Our own progress line replaces cargo's status lines.
        settings.quiet = true;
        let build_started = Instant::now();
        let result = tokio::task::spawn_blocking(move || build::build(&root, &list, &settings))
            .await
            .unwrap_or_else(|e| Err(BuildError::Joined(e.to_string())));
        let build_time = build_started.elapsed();
        progress.stop();
        let names: Vec<String> = functions.iter().cloned().collect();
        match result {
            Ok(binaries) => {
                for (name, target) in &targets {
                    let (Some(config), Some(binary)) =
                        (manifest.functions.get(name), binaries.get(target))
                    else {
                        continue;
                    };
                    self.reloader.services.lambda.put_function(FunctionSpec {
                        config: config.clone(),
                        stamp: FunctionSpec::stamp_of(binary),
                        binary: binary.clone(),
                    });
                    self.reloader.services.lambda.set_build_error(name, None);
                }
                let elapsed = started.elapsed();
                tracing::info!(
                    target: "reload",
                    "reloaded {} in {:.2} s (cargo {:.2} s)",
                    names.join(", "),
                    elapsed.as_secs_f64(),
                    build_time.as_secs_f64()
                );
                let _ = self.reloader.events.send(ReloadEvent::Reloaded {
                    functions: names,
                    elapsed,
                    build: build_time,
                });
            }
            Err(e) => {
                let errors = match &e {
                    BuildError::Failed { errors, .. } => errors.clone(),
                    other => other.to_string(),
                };
                let summary = build::first_error(&errors)
                    .unwrap_or("build failed")
                    .to_owned();
                for name in &names {
                    self.reloader
                        .services
                        .lambda
                        .set_build_error(name, Some(summary.clone()));
                }
                tracing::error!(
                    target: "reload",
                    "build of {} failed; the previous version keeps serving: {summary}",
                    packages.join(", ")
                );
                let _ = self.reloader.events.send(ReloadEvent::BuildFailed {
                    functions: names,
                    errors,
                });
            }
        }
    }

    /// Applies an edited dev.toml; returns the functions that need a build.
    async fn apply_manifest(&mut self) -> BTreeSet<String> {
        let path = self.reloader.manifest.path.clone();
        let new = match Manifest::load(&path) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(target: "reload", "dev.toml not applied, the running configuration stays: {e}");
                let _ = self.reloader.events.send(ReloadEvent::ManifestRejected {
                    error: e.to_string(),
                });
                return BTreeSet::new();
            }
        };
        let applied = match services::apply(
            &self.reloader.services,
            Some(&self.reloader.manifest),
            &new,
        )
        .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(target: "reload", "dev.toml not applied, the running configuration stays: {e}");
                let _ = self.reloader.events.send(ReloadEvent::ManifestRejected {
                    error: e.to_string(),
                });
                return BTreeSet::new();
            }
        };
        self.reloader.manifest = applied.running;
        let changes = applied.changes;
        let to_build = applied.to_build;
        for warning in &applied.needs_restart {
            tracing::warn!(target: "reload", "{warning}");
        }
        if let Ok(graph) = CrateGraph::load(&self.root) {
            self.graph = graph;
        }
        if let Err(e) = self.rewatch() {
            tracing::warn!(target: "reload", "cannot watch the new crates: {e}");
        }
        if !changes.is_empty() {
            tracing::info!(target: "reload", "dev.toml applied: {}", changes.join("; "));
        }
        let _ = self.reloader.events.send(ReloadEvent::ManifestApplied {
            changes,
            needs_restart: applied.needs_restart,
        });
        to_build
    }
}

/// A one-line indicator on a terminal: which crates, elapsed seconds.
struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(packages: &[String]) -> Progress {
        if !std::io::stderr().is_terminal() {
            tracing::info!(target: "reload", "building {}", packages.join(", "));
            return Progress { task: None };
        }
        let what = packages.join(", ");
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let mut i = 0;
            loop {
                eprint!(
                    "\r\x1b[2K{} building {what}  {:.1} s",
                    frames[i % frames.len()],
                    started.elapsed().as_secs_f64()
                );
                i += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Progress { task: Some(task) }
    }

    fn stop(self) {
        if let Some(task) = self.task {
            task.abort();
            eprint!("\r\x1b[2K");
        }
    }
}
