//! One execution environment: a function process, its own Runtime API
//! listener (as each Lambda sandbox has), its log readers, and a monitor
//! that enforces the timeout and notices when the process dies.

use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::HeaderValue;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::process::Command;
use tokio::sync::{Notify, oneshot};

use super::invocation::{Completion, Dispatch, Pending};
use super::logs::{self, LogTarget};
use super::{FunctionSpec, HostSettings, LATEST};

/// What an instance needs from whoever schedules it (its function's pool).
pub(crate) trait Scheduler: Send + Sync {
    /// The next invocation for `instance`, waiting for one; `None` when the
    /// instance should stop (old version, shutdown). `first` is its first
    /// call to `/next` (it has finished starting).
    fn next<'a>(
        &'a self,
        instance: &'a Arc<Instance>,
        first: bool,
    ) -> BoxFuture<'a, Option<Dispatch>>;

    /// The instance's process has exited.
    fn instance_exited(&self, instance: &Instance, reached_next: bool, init_error: Option<Bytes>);

    /// The function's ARN as `/next` sends it.
    fn arn_header(&self) -> HeaderValue;
}

struct InFlight {
    request_id: String,
    done: oneshot::Sender<Completion>,
    started: Instant,
    /// When the function's timeout ends this invocation.
    deadline: Instant,
}

#[derive(Default)]
struct InstanceState {
    current: Option<InFlight>,
    reached_next: bool,
    init_error: Option<Bytes>,
    log_target: Option<LogTarget>,
    stopping: bool,
}

pub(crate) struct Instance {
    pub id: u64,
    pub generation: u64,
    /// Whoever schedules this instance (its function's pool).
    pub scheduler: Weak<dyn Scheduler>,
    state: Mutex<InstanceState>,
    stop: Notify,
    /// Wakes the monitor when an invocation starts, so it can watch the
    /// deadline. The monitor is not woken when one ends: it looks at the
    /// current invocation when its timer fires (see [`run`]).
    started: Notify,
    function: Mutex<Option<Arc<FunctionSpec>>>,
    /// `/proc/<pid>/status` of the process, kept open: REPORT reads the
    /// peak memory from it after every invocation, and opening it each
    /// time cost more than reading it.
    status: Mutex<Option<std::fs::File>>,
}

/// Why an invocation ended without the function answering.
enum Abort {
    Timeout,
}

impl Instance {
    pub fn new(id: u64, generation: u64, scheduler: Weak<dyn Scheduler>) -> Arc<Instance> {
        Arc::new(Instance {
            id,
            generation,
            scheduler,
            state: Mutex::new(InstanceState::default()),
            stop: Notify::new(),
            started: Notify::new(),
            function: Mutex::new(None),
            status: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, InstanceState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn spec(&self) -> Option<Arc<FunctionSpec>> {
        self.function
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Asks the process to stop (idempotent); the monitor reaps it.
    pub fn stop(&self) {
        self.lock().stopping = true;
        self.stop.notify_one();
    }

    /// Makes `pending` this instance's current invocation, starting its
    /// clock. Returns the event for the runtime.
    fn start(&self, mut pending: Pending) -> Dispatch {
        let timeout = self
            .spec()
            .map_or(Duration::from_secs(3), |s| s.config.timeout);
        let now = Instant::now();
        let deadline = now + timeout;
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        pending.dispatch.deadline_ms = epoch_ms + timeout.as_millis() as u64;
        {
            let mut state = self.lock();
            state.current = Some(InFlight {
                request_id: pending.dispatch.request_id.clone(),
                done: pending.done,
                started: now,
                deadline,
            });
            state.log_target = Some(LogTarget {
                request_id: pending.dispatch.request_id.clone(),
                buffer: pending.log,
            });
        }
        self.started.notify_one();
        self.log(format_args!(
            "START RequestId: {} Version: {LATEST}",
            pending.dispatch.request_id
        ));
        pending.dispatch
    }

    /// For an invocation taken from the queue by this instance's `/next`.
    pub fn take_now(self: &Arc<Self>, pending: Pending) -> Dispatch {
        self.start(pending)
    }

    /// Hands `pending` to this instance, waiting in `/next` on `tx`. Gives it
    /// back when the waiting request is gone (connection closed).
    // The invocation moves back to the queue by value on that rare path;
    // boxing it would cost an allocation on every hand-off.
    #[allow(clippy::result_large_err)]
    pub fn assign(&self, pending: Pending, tx: oneshot::Sender<Dispatch>) -> Result<(), Pending> {
        if tx.is_closed() {
            return Err(pending);
        }
        let log = pending.log.clone();
        let dispatch = self.start(pending);
        match tx.send(dispatch) {
            Ok(()) => Ok(()),
            Err(dispatch) => {
                let in_flight = self.lock().current.take();
                match in_flight {
                    Some(f) => Err(Pending {
                        dispatch,
                        done: f.done,
                        log,
                    }),
                    // Unreachable: nothing else completes an invocation that
                    // was never delivered. Fail it rather than lose it.
                    None => Err(Pending {
                        dispatch,
                        done: oneshot::channel().0,
                        log,
                    }),
                }
            }
        }
    }

    /// The runtime reached `/next`. Returns whether this is the first time.
    pub fn mark_reached_next(&self) -> Result<bool, &'static str> {
        let mut state = self.lock();
        if state.current.is_some() {
            return Err("invocation/next called before the current invocation was answered");
        }
        let first = !state.reached_next;
        state.reached_next = true;
        Ok(first)
    }

    /// Whether `request_id` is the invocation this instance is running.
    pub fn is_current(&self, request_id: &str) -> bool {
        self.lock()
            .current
            .as_ref()
            .is_some_and(|f| f.request_id == request_id)
    }

    /// Ends the current invocation if its id is `request_id`.
    pub fn complete(&self, request_id: &str, completion: Completion) -> Result<(), ()> {
        let in_flight = {
            let mut state = self.lock();
            match &state.current {
                Some(f) if f.request_id == request_id => state.current.take(),
                _ => return Err(()),
            }
        };
        if let Some(f) = in_flight {
            self.report(&f);
            let _ = f.done.send(completion);
        }
        Ok(())
    }

    pub fn record_init_error(&self, body: Bytes) {
        self.lock().init_error = Some(body);
    }

    /// Logs a line of the platform's own (START, END, REPORT); formats it
    /// only when someone reads it.
    fn log(&self, line: std::fmt::Arguments<'_>) {
        let target = {
            let state = self.lock();
            if !logs::wanted(state.log_target.as_ref()) {
                return;
            }
            state.log_target.clone()
        };
        if let Some(spec) = self.spec() {
            logs::emit(&spec.config.name, target.as_ref(), &line.to_string());
        }
    }

    fn report(&self, f: &InFlight) {
        let Some(spec) = self.spec() else { return };
        if !logs::wanted(self.lock().log_target.as_ref()) {
            return;
        }
        let elapsed = f.started.elapsed();
        let ms = elapsed.as_secs_f64() * 1000.0;
        let max_mb = self
            .status
            .lock()
            .ok()
            .and_then(|f| f.as_ref().and_then(logs::peak_memory_mb))
            .unwrap_or(0);
        self.log(format_args!("END RequestId: {}", f.request_id));
        self.log(format_args!(
                "REPORT RequestId: {}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {max_mb} MB\t",
                f.request_id,
                ms.ceil() as u64,
                spec.config.memory_mb,
        ));
    }

    /// When the current invocation's timeout ends it, if one is running.
    fn current_deadline(&self) -> Option<Instant> {
        self.lock().current.as_ref().map(|f| f.deadline)
    }

    /// Ends the current invocation if its deadline has passed.
    fn abort_overdue(&self, now: Instant, why: Abort) -> bool {
        let in_flight = {
            let mut state = self.lock();
            match &state.current {
                Some(f) if f.deadline <= now => state.current.take(),
                _ => None,
            }
        };
        let aborted = in_flight.is_some();
        if let Some(f) = in_flight {
            let payload = match why {
                Abort::Timeout => {
                    let secs = self.spec().map_or(3.0, |s| s.config.timeout.as_secs_f64());
                    super::error_payload(
                        "Sandbox.Timedout",
                        &format!(
                            "RequestId: {} Error: Task timed out after {secs:.2} seconds",
                            f.request_id
                        ),
                    )
                }
            };
            self.report(&f);
            let _ = f.done.send(Completion::Error(payload));
        }
        aborted
    }

    pub(super) fn exited(&self, status: Option<std::process::ExitStatus>) {
        let (in_flight, reached_next, init_error, stopping) = {
            let mut state = self.lock();
            (
                state.current.take(),
                state.reached_next,
                state.init_error.take(),
                state.stopping,
            )
        };
        let reason = match status.and_then(|s| s.code()) {
            Some(0) | None => "Runtime exited without providing a reason".to_owned(),
            Some(code) => format!("Runtime exited with error: exit status {code}"),
        };
        if let Some(f) = in_flight {
            self.report(&f);
            let payload = super::error_payload(
                "Runtime.ExitError",
                &format!("RequestId: {} Error: {reason}", f.request_id),
            );
            let _ = f.done.send(Completion::Error(payload));
        }
        if let Some(spec) = self.spec()
            && !stopping
        {
            tracing::warn!(
                function = %spec.config.name,
                instance = self.id,
                "instance exited: {reason}"
            );
        }
        if let Some(pool) = self.scheduler.upgrade() {
            let init_error = init_error.or_else(|| {
                (!reached_next)
                    .then(|| super::error_payload("Runtime.ExitError", &format!("Error: {reason}")))
            });
            pool.instance_exited(self, reached_next, init_error);
        }
    }
}

/// Starts the process and supervises it until it exits.
pub(crate) async fn run(instance: Arc<Instance>, spec: Arc<FunctionSpec>, settings: HostSettings) {
    *instance
        .function
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(spec.clone());
    let name = spec.config.name.clone();

    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(function = %name, "cannot bind a Runtime API listener: {e}");
            instance.exited(None);
            return;
        }
    };
    let runtime_api = match listener.local_addr() {
        Ok(addr) => addr.to_string(),
        Err(e) => {
            tracing::error!(function = %name, "Runtime API listener has no address: {e}");
            instance.exited(None);
            return;
        }
    };
    let router = super::runtime_api::router(instance.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let mut command = Command::new(&spec.binary);
    command
        .env_clear()
        .envs(lambda_environment(&spec, &settings, &runtime_api))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = spec.binary.parent() {
        command.current_dir(dir);
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                function = %name,
                "cannot start {}: {e}",
                spec.binary.display()
            );
            server.abort();
            instance.record_init_error(super::error_payload(
                "Runtime.InvalidEntrypoint",
                &format!("cannot start {}: {e}", spec.binary.display()),
            ));
            instance.exited(None);
            return;
        }
    };
    *instance
        .status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = child
        .id()
        .and_then(|pid| std::fs::File::open(format!("/proc/{pid}/status")).ok());
    let readers = [
        child.stdout.take().map(|out| {
            let instance = instance.clone();
            tokio::spawn(logs::read(move || instance.log_target(), name.clone(), out))
        }),
        child.stderr.take().map(|err| {
            let instance = instance.clone();
            tokio::spawn(logs::read(move || instance.log_target(), name.clone(), err))
        }),
    ];

    // The monitor sleeps until the current invocation's deadline and is not
    // woken when an invocation ends (two wake-ups per request saved). When
    // its timer fires, a later invocation may be running: invocations on one
    // instance follow each other with the same timeout, so the later one's
    // deadline is later, and the monitor sleeps again until it. Idle, it
    // waits for the next start.
    let status = loop {
        let deadline = instance.current_deadline();
        tokio::select! {
            status = child.wait() => break status.ok(),
            () = instance.stop.notified() => {
                let _ = child.start_kill();
            }
            () = instance.started.notified(), if deadline.is_none() => {}
            () = sleep_until(deadline) => {
                if instance.abort_overdue(Instant::now(), Abort::Timeout) {
                    let _ = child.start_kill();
                }
            }
        }
    };
    server.abort();
    for reader in readers.into_iter().flatten() {
        // The pipes close with the process; the readers end by themselves.
        let _ = tokio::time::timeout(Duration::from_millis(200), reader).await;
    }
    instance.exited(status);
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

impl Instance {
    /// The invocation output is attributed to now.
    fn log_target(&self) -> Option<LogTarget> {
        self.lock().log_target.clone()
    }
}

/// The environment Lambda gives a `provided.al2023` function, plus the
/// function's own variables and the stack's shared ones (endpoints).
/// <https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html>
pub(crate) fn lambda_environment(
    spec: &FunctionSpec,
    settings: &HostSettings,
    runtime_api: &str,
) -> Vec<(String, String)> {
    let c = &spec.config;
    let task_root = spec
        .binary
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let today = chrono::Utc::now().format("%Y/%m/%d");
    let stream = uuid::Uuid::new_v4().simple().to_string();
    let mut env: Vec<(String, String)> = vec![
        ("AWS_LAMBDA_FUNCTION_NAME".into(), c.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            c.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), LATEST.into()),
        ("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{}", c.name),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME".into(),
            format!("{today}/[{LATEST}]{stream}"),
        ),
        ("AWS_REGION".into(), settings.region.clone()),
        ("AWS_DEFAULT_REGION".into(), settings.region.clone()),
        ("_HANDLER".into(), "bootstrap".into()),
        ("LAMBDA_TASK_ROOT".into(), task_root),
        ("LAMBDA_RUNTIME_DIR".into(), "/var/runtime".into()),
        // Dummy credentials: the local endpoints accept any signature.
        ("AWS_ACCESS_KEY_ID".into(), "AKIAWOOCOMLOCAL00000".into()),
        ("AWS_ACCESS_KEY".into(), "AKIAWOOCOMLOCAL00000".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "woocom-local-secret".into()),
        ("AWS_SESSION_TOKEN".into(), "woocom-local-session".into()),
        ("TZ".into(), ":UTC".into()),
        ("LANG".into(), "en_US.UTF-8".into()),
        (
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin/:/bin".into()),
        ),
    ];
    // Developer conveniences that do not exist in Lambda but change no
    // behaviour of the code: log filters and backtraces.
    for key in ["RUST_LOG", "RUST_BACKTRACE"] {
        if let Ok(value) = std::env::var(key) {
            env.push((key.into(), value));
        }
    }
    env.extend(
        settings
            .shared_env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    env.extend(c.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}
