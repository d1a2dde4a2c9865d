//! Starts and stops the services of one stack, in order: build the
//! functions, bind every listener (so a busy port fails before anything
//! runs), start the Lambda host, then serve.
//!
//! The same code runs `woocom-dev up` and in-process test stacks:
//!
//! ```no_run
//! # async fn demo() -> Result<(), woocom_dev::stack::StackError> {
//! let options = woocom_dev::stack::StackOptions::from_manifest_file("dev.toml".as_ref())?
//!     .free_ports();
//! let stack = woocom_dev::stack::Stack::start(options).await?;
//! println!("{}", stack.urls().api);
//! stack.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::aws::{self, AwsEndpoint};
use crate::dynamodb::{DataLocation, DynamoDb, DynamoDbError};
use crate::event_source_mapping::EventSourceMappings;
use crate::gateway::rest::{self, RestApi};
use crate::gateway::websocket::{self, WebSocketGateway};
use crate::lambda::build::{self, BinTarget, BuildError};
use crate::lambda::{FunctionSpec, HostSettings, Invoker, LambdaHost};
use crate::manifest::{LoadError, Manifest, Ports};
use crate::reload::{ReloadError, ReloadEvent, Reloader};
use crate::s3::S3;
use crate::services::{self, ApplyError, Services};
use crate::sns::Sns;
use crate::sqs::Sqs;
pub use crate::urls::StackUrls;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StackError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Manifest(#[from] LoadError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Build(#[from] BuildError),
    #[error("port {port} ({listener}) is already in use on 127.0.0.1")]
    #[diagnostic(
        code(woocom::port_in_use),
        help(
            "stop what holds it, change [ports] {listener} in dev.toml, or run with --free-ports"
        )
    )]
    PortInUse { listener: &'static str, port: u16 },
    #[error("cannot listen on 127.0.0.1:{port} ({listener}): {source}")]
    #[diagnostic(
        code(woocom::listen),
        help("pick another [ports] {listener} in dev.toml, or run with --free-ports")
    )]
    Bind {
        listener: &'static str,
        port: u16,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    DynamoDb(#[from] DynamoDbError),
    #[error("hot reload cannot start: {0}")]
    #[diagnostic(
        code(woocom::watch),
        help(
            "raise the inotify watch limit (fs.inotify.max_user_watches), or run `up --no-watch`"
        )
    )]
    Reload(#[from] ReloadError),
    #[error("cannot open the stack's topics: {0}")]
    Sns(String),
    #[error("cannot open the stack's event buses: {0}")]
    #[diagnostic(
        code(woocom::events),
        help("if the file is damaged, `woocom-dev reset` starts the stack's data afresh")
    )]
    Events(String),
    #[error("cannot open the stack's buckets: {0}")]
    #[diagnostic(
        code(woocom::buckets),
        help(
            "if the store is damaged, remove .woocom/data/<stack>/s3 to start the stack's buckets afresh (`woocom-dev reset` clears DynamoDB only)"
        )
    )]
    S3(String),
    #[error("cannot open the stack's queues: {0}")]
    #[diagnostic(
        code(woocom::queues),
        help("if the file is damaged, `woocom-dev reset` starts the stack's data afresh")
    )]
    Sqs(String),
    #[error(transparent)]
    #[diagnostic(code(woocom::seed), help("fix the seed file at the item named"))]
    Seed(#[from] crate::seed::SeedError),
    #[error(transparent)]
    #[diagnostic(
        code(woocom::table_change),
        help(
            "DynamoDB cannot make this change in place: give the table a new name, or start clean with `woocom-dev reset`"
        )
    )]
    Apply(#[from] ApplyError),
}

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub manifest: Manifest,
    pub ports: Ports,
    /// Build functions with `--release`.
    pub release: bool,
    /// Hide cargo's progress output (errors still show).
    pub quiet_build: bool,
    /// Where the DynamoDB tables live: in memory unless set (`woocom-dev up`
    /// sets the project's `.woocom/data/<stack>/`).
    pub data: DataLocation,
    /// Cargo's `--target-dir`, when not the workspace's own.
    pub target_dir: Option<PathBuf>,
    /// Watch the function crates and dev.toml and reload on change.
    pub watch: bool,
    /// Build (when stale) and serve dev.toml's `[frontend]`.
    pub frontend: bool,
    /// Load the seed data of the tables this start creates.
    pub seed_new_tables: bool,
    /// Connection bound and read timeouts of every listener, and the
    /// WebSocket outbound buffer (tests shorten them).
    pub limits: crate::listener::Limits,
}

impl StackOptions {
    pub fn new(manifest: Manifest) -> StackOptions {
        StackOptions {
            ports: manifest.ports,
            manifest,
            release: false,
            quiet_build: false,
            data: DataLocation::Memory,
            target_dir: None,
            watch: false,
            frontend: false,
            seed_new_tables: false,
            limits: crate::listener::Limits::default(),
        }
    }

    /// Reload functions and dev.toml on change (see [`crate::reload`]).
    pub fn watch(mut self) -> StackOptions {
        self.watch = true;
        self
    }

    pub fn build_settings(&self) -> build::BuildSettings {
        build::BuildSettings {
            release: self.release,
            quiet: self.quiet_build,
            target_dir: self.target_dir.clone(),
        }
    }

    pub fn from_manifest_file(path: &Path) -> Result<StackOptions, StackError> {
        Ok(StackOptions::new(Manifest::load(path)?))
    }

    /// Every listener on a port the OS picks (for tests and CI).
    pub fn free_ports(mut self) -> StackOptions {
        self.ports = Ports::free();
        self
    }

    pub fn quiet_build(mut self) -> StackOptions {
        self.quiet_build = true;
        self
    }
}

pub struct Stack {
    urls: Arc<StackUrls>,
    manifest: Manifest,
    lambda: Arc<LambdaHost>,
    rest: Arc<RestApi>,
    websocket: Arc<WebSocketGateway>,
    dynamodb: Arc<DynamoDb>,
    sqs: Arc<Sqs>,
    s3: Arc<S3>,
    events: Arc<crate::eventbridge::EventBridge>,
    mappings: Arc<EventSourceMappings>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    reload_events: tokio::sync::broadcast::Sender<crate::reload::ReloadEvent>,
}

/// The REST API id: ten characters, stable per stack name, as API Gateway
/// ids look (`a1b2c3d4e5`).
fn api_id(stack_name: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stack_name.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    rest::base36(hash, 10)
}

async fn bind(listener: &'static str, port: u16) -> Result<TcpListener, StackError> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AddrInUse => StackError::PortInUse { listener, port },
            _ => StackError::Bind {
                listener,
                port,
                source,
            },
        })
}

fn port_of(listener: &TcpListener) -> u16 {
    listener.local_addr().map_or(0, |a| a.port())
}

/// Builds the function crates named in the manifest (one cargo run).
pub fn build_functions(
    manifest: &Manifest,
    settings: &build::BuildSettings,
) -> Result<Vec<FunctionSpec>, BuildError> {
    let targets: BTreeMap<&str, BinTarget> = manifest
        .functions
        .values()
        .map(|f| {
            (
                f.name.as_str(),
                BinTarget {
                    package: f.package.clone(),
                    bin: f.bin.clone().unwrap_or_else(|| f.package.clone()),
                },
            )
        })
        .collect();
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<BinTarget> = targets.values().cloned().collect();
    let binaries = build::build(manifest.root(), &list, settings)?;
    Ok(manifest
        .functions
        .values()
        .filter_map(|f| {
            let target = targets.get(f.name.as_str())?;
            let binary = binaries.get(target)?.clone();
            Some(FunctionSpec {
                config: f.clone(),
                stamp: FunctionSpec::stamp_of(&binary),
                binary,
            })
        })
        .collect())
}

impl Stack {
    pub async fn start(options: StackOptions) -> Result<Stack, StackError> {
        let manifest = options.manifest.clone();
        let ports = options.ports;

        // Listeners first: a busy port is reported before a long build.
        let api_listener = bind("api", ports.api).await?;
        let ws_listener = bind("websocket", ports.websocket).await?;
        let aws_listener = bind("aws", ports.aws).await?;
        let s3_listener = bind("s3", ports.s3).await?;
        let frontend_dirs = manifest.frontend_dirs().filter(|_| options.frontend);
        let frontend_listener = match &frontend_dirs {
            Some(_) => Some(bind("frontend", ports.frontend).await?),
            None => None,
        };

        let stage = &manifest.api.stage;
        let urls = Arc::new(StackUrls {
            api: format!("http://127.0.0.1:{}/{stage}", port_of(&api_listener)),
            websocket: format!("ws://127.0.0.1:{}/{stage}", port_of(&ws_listener)),
            aws: format!("http://127.0.0.1:{}", port_of(&aws_listener)),
            s3: format!("http://127.0.0.1:{}", port_of(&s3_listener)),
            health: format!(
                "http://127.0.0.1:{}{}",
                port_of(&aws_listener),
                aws::HEALTH_PATH
            ),
            frontend: frontend_listener
                .as_ref()
                .map(|l| format!("http://127.0.0.1:{}", port_of(l))),
        });

        let mut shared_env: BTreeMap<String, String> = [
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
            "AWS_ENDPOINT_URL_LAMBDA",
            "AWS_ENDPOINT_URL_SQS",
            "AWS_ENDPOINT_URL_SNS",
            "AWS_ENDPOINT_URL_EVENTBRIDGE",
        ]
        .iter()
        .map(|k| ((*k).to_owned(), urls.aws.clone()))
        .collect();
        // S3 has a listener of its own; an IP-address endpoint makes the
        // stock SDKs address buckets path-style, so function code needs no
        // `force_path_style`.
        shared_env.insert("AWS_ENDPOINT_URL_S3".to_owned(), urls.s3.clone());
        // The @connections endpoint; Terraform sets the real API's URL.
        let websocket_endpoint = format!("http://127.0.0.1:{}/{stage}", port_of(&ws_listener));
        shared_env.insert("WOOCOM_WEBSOCKET_ENDPOINT".to_owned(), websocket_endpoint);

        // The services, empty; `apply` configures them from dev.toml as
        // hot reload does for an edit.
        let dynamodb = DynamoDb::open_as(
            options.data.clone(),
            crate::dynamodb::Identity {
                region: manifest.stack.region.clone(),
                account: manifest.stack.account_id.clone(),
            },
        )?;
        let sqs = Sqs::open(
            &options.data,
            &manifest.stack.region,
            &manifest.stack.account_id,
        )
        .map_err(|e| StackError::Sqs(e.to_string()))?;
        sqs.set_endpoint(&urls.aws);
        let lambda = LambdaHost::new(
            HostSettings {
                region: manifest.stack.region.clone(),
                account_id: manifest.stack.account_id.clone(),
                shared_env,
            },
            Vec::new(),
        );
        let sns = Sns::open(
            &options.data,
            &manifest.stack.region,
            &manifest.stack.account_id,
            sqs.clone(),
            Arc::downgrade(&lambda),
        )
        .map_err(StackError::Sns)?;
        sns.set_endpoint(&urls.aws);
        let s3 = S3::open(
            &options.data,
            &manifest.stack.region,
            &manifest.stack.account_id,
        )
        .map_err(|e| StackError::S3(e.to_string()))?;
        let events = crate::eventbridge::EventBridge::open(
            &options.data,
            &manifest.stack.region,
            &manifest.stack.account_id,
            sqs.clone(),
            sns.clone(),
            Arc::downgrade(&lambda),
        )
        .map_err(StackError::Events)?;
        events.start_scheduler();
        let destinations: Arc<dyn crate::lambda::DestinationSink> =
            Arc::new(crate::destinations::StackDestinations {
                sqs: sqs.clone(),
                sns: sns.clone(),
                lambda: Arc::downgrade(&lambda),
            });
        lambda.set_destinations(destinations.clone());
        let invoker: Arc<dyn Invoker> = Arc::new(lambda.clone());
        let rest_api = RestApi::new(
            api_id(&manifest.stack.name),
            manifest.stack.account_id.clone(),
            manifest.api.clone(),
            Vec::new(),
            invoker.clone(),
        );
        rest_api
            .port
            .store(port_of(&api_listener), std::sync::atomic::Ordering::Relaxed);
        let websocket_api = WebSocketGateway::new(
            api_id(&format!("{}/websocket", manifest.stack.name)),
            stage.clone(),
            Default::default(),
            std::time::Duration::from_millis(manifest.api.integration_timeout_ms),
            invoker.clone(),
        );
        websocket_api
            .port
            .store(port_of(&ws_listener), std::sync::atomic::Ordering::Relaxed);
        let mappings = EventSourceMappings::new(
            dynamodb.clone(),
            sqs.clone(),
            invoker,
            destinations,
            &manifest.stack.region,
        );
        let s3_notifier = crate::s3::notify::Notifier::new(
            &manifest.stack.region,
            Arc::downgrade(&lambda),
            sqs.clone(),
            sns.clone(),
        );
        s3.set_sink(s3_notifier.clone());
        let services = Services {
            s3: s3.clone(),
            s3_notifier,
            lambda: lambda.clone(),
            rest: rest_api.clone(),
            websocket: websocket_api.clone(),
            dynamodb: dynamodb.clone(),
            sqs: sqs.clone(),
            sns: sns.clone(),
            events: events.clone(),
            mappings: mappings.clone(),
        };

        // Tables are reconciled first: a dev.toml change DynamoDB cannot
        // apply is reported before a long build. Functions are held until
        // built: stream mappings start now and their first batches wait.
        let applied = services::apply(&services, None, &manifest).await?;
        for change in &applied.changes {
            tracing::info!("{change}");
        }
        dynamodb.start_ttl_sweeper();
        if options.seed_new_tables {
            for (table, items) in
                crate::seed::seed_tables(&dynamodb, &manifest, &applied.tables.created).await?
            {
                tracing::info!(table = %table, items, "loaded seed data");
            }
        }

        // The frontend builds (npm) while cargo builds the functions.
        let frontend_build = frontend_dirs.clone().map(|(dir, dist)| {
            let stamp = manifest.root().join(".woocom").join("frontend-build.stamp");
            let quiet = options.quiet_build;
            tokio::task::spawn_blocking(move || {
                crate::frontend::ensure_built(&dir, &dist, &stamp, quiet)
            })
        });

        let build_settings = options.build_settings();
        let functions = {
            let manifest = manifest.clone();
            let settings = build_settings.clone();
            tokio::task::spawn_blocking(move || build_functions(&manifest, &settings))
                .await
                .map_err(|e| {
                    StackError::Build(BuildError::Spawn(std::io::Error::other(e.to_string())))
                })??
        };
        for spec in functions {
            lambda.put_function(spec);
        }
        let held: Vec<String> = applied.to_build.iter().cloned().collect();
        lambda.release(&held);
        let frontend_unavailable = match frontend_build {
            Some(build) => match build.await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => {
                    tracing::error!("the frontend is not served: {e}");
                    Some(e.to_string())
                }
                Err(e) => Some(format!("the frontend build stopped: {e}")),
            },
            None => None,
        };

        let limits = &options.limits;
        websocket_api.set_outbound_limits(
            limits.websocket_outbound_bytes,
            limits.websocket_write_timeout,
        );

        let (shutdown, _) = watch::channel(false);
        let serve = |listener: TcpListener, router: axum::Router| {
            let (limits, stop) = (options.limits.clone(), shutdown.subscribe());
            tokio::spawn(crate::listener::serve(listener, router, limits, stop))
        };
        let mut servers = vec![
            serve(api_listener, rest::router(rest_api.clone())),
            serve(ws_listener, websocket::router(websocket_api.clone())),
            serve(
                aws_listener,
                aws::router(AwsEndpoint {
                    lambda: lambda.clone(),
                    urls: urls.clone(),
                    dynamodb: dynamodb.clone(),
                    sqs: sqs.clone(),
                    sns: sns.clone(),
                    events: events.clone(),
                })
                .merge(crate::event_source_mapping::http::router(mappings.clone()))
                .merge(crate::sqs::control::router(sqs.clone()))
                .merge(crate::sns::control::router(sns.clone()))
                .merge(crate::eventbridge::control::router(events.clone()))
                .merge(crate::s3::control::router(s3.clone())),
            ),
            serve(s3_listener, crate::s3::http::router(s3.clone())),
        ];
        if let (Some(listener), Some((_, dist))) = (frontend_listener, frontend_dirs) {
            let config = crate::frontend::SiteConfig {
                api_url: urls.api.clone(),
                websocket_url: urls.websocket.clone(),
                stack: manifest.stack.name.clone(),
            };
            servers.push(serve(
                listener,
                crate::frontend::router(dist, config, frontend_unavailable),
            ));
        }
        let (reload_events, _) = tokio::sync::broadcast::channel(64);
        if options.watch {
            let reloader = Reloader {
                manifest: applied.running,
                services,
                build: build_settings,
                events: reload_events.clone(),
            };
            servers.push(reloader.spawn()?);
        }
        Ok(Stack {
            urls,
            manifest,
            lambda,
            rest: rest_api,
            websocket: websocket_api,
            dynamodb,
            sqs,
            s3,
            events,
            mappings,
            shutdown,
            servers,
            reload_events,
        })
    }

    /// What hot reload does, as it happens (only with `StackOptions::watch`).
    pub fn reload_events(&self) -> tokio::sync::broadcast::Receiver<ReloadEvent> {
        self.reload_events.subscribe()
    }

    pub fn urls(&self) -> &StackUrls {
        &self.urls
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn lambda(&self) -> &Arc<LambdaHost> {
        &self.lambda
    }

    pub fn rest_api(&self) -> &Arc<RestApi> {
        &self.rest
    }

    /// The WebSocket API: its open connections, for tests and benchmarks.
    pub fn websocket(&self) -> &Arc<WebSocketGateway> {
        &self.websocket
    }

    /// The DynamoDB service: its change signal and engine, for the stream
    /// poller and tests.
    pub fn dynamodb(&self) -> &Arc<DynamoDb> {
        &self.dynamodb
    }

    /// The SQS service: its queues, for tests and benchmarks.
    pub fn sqs(&self) -> &Arc<Sqs> {
        &self.sqs
    }

    /// The S3 service: its buckets, for tests and benchmarks.
    pub fn s3(&self) -> &Arc<S3> {
        &self.s3
    }

    pub fn events(&self) -> &Arc<crate::eventbridge::EventBridge> {
        &self.events
    }

    /// Event source mappings (stream delivery): each subscription's
    /// position, the dead-letter queues, replay.
    pub fn event_source_mappings(&self) -> &Arc<EventSourceMappings> {
        &self.mappings
    }

    /// Stops the listeners and every function process, and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.mappings.shutdown().await;
        self.websocket.shutdown().await;
        self.lambda.shutdown().await;
        for server in self.servers.drain(..) {
            // Keep-alive connections may hold graceful shutdown open; the
            // functions are gone, so nothing more is served.
            server.abort();
            let _ = server.await;
        }
        self.dynamodb.close();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.websocket.stop();
        for server in &self.servers {
            server.abort();
        }
        self.dynamodb.close();
        // LambdaHost's own Drop stops the instances once the last
        // reference goes; stop them now in case a handler still holds one.
        let lambda = self.lambda.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { lambda.shutdown().await });
        }
    }
}
