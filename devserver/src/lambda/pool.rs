//! Per-function scheduling: a queue of invocations, the instances waiting
//! in `/next`, and scaling up to the function's reserved concurrency.
//!
//! Invariants (all under `FunctionPool::state`):
//! - an invocation is in exactly one place: `queue`, an instance's
//!   `current`, or completed (its `done` sender consumed);
//! - `idle` holds only instances blocked in `/next` with no `current`;
//! - `starting` counts instances spawned that have not reached `/next` yet,
//!   and `starting <= live <= concurrency` (old generations may exceed the
//!   new concurrency until they retire).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::http::HeaderValue;
use bytes::Bytes;
use tokio::sync::{Notify, oneshot};

use super::instance::{self, Instance, Scheduler};
use super::invocation::{Completion, Dispatch, Pending};
use super::{FunctionSpec, HostSettings, InvokeRequest, InvokeResponse, LambdaError};

struct Waiter {
    instance: Arc<Instance>,
    tx: oneshot::Sender<Dispatch>,
}

struct PoolState {
    spec: Arc<FunctionSpec>,
    generation: u64,
    queue: VecDeque<Pending>,
    idle: Vec<Waiter>,
    live: usize,
    starting: usize,
    next_instance_id: u64,
    shutting_down: bool,
    instances: Vec<Weak<Instance>>,
}

pub(crate) struct FunctionPool {
    pub settings: HostSettings,
    /// The function's ARN as `/next` sends it; a function keeps its name
    /// for the life of its pool.
    pub arn_header: HeaderValue,
    state: Mutex<PoolState>,
    all_stopped: Notify,
    me: Weak<FunctionPool>,
}

impl FunctionPool {
    pub fn new(spec: FunctionSpec, settings: HostSettings) -> Arc<FunctionPool> {
        let arn = super::function_arn(&settings, &spec.config.name);
        let arn_header = HeaderValue::from_str(&arn)
            .unwrap_or_else(|_| HeaderValue::from_static("arn:aws:lambda:invalid"));
        Arc::new_cyclic(|me| FunctionPool {
            settings,
            arn_header,
            state: Mutex::new(PoolState {
                spec: Arc::new(spec),
                generation: 0,
                queue: VecDeque::new(),
                idle: Vec::new(),
                live: 0,
                starting: 0,
                next_instance_id: 1,
                shutting_down: false,
                instances: Vec::new(),
            }),
            all_stopped: Notify::new(),
            me: me.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn spec(&self) -> Arc<FunctionSpec> {
        self.lock().spec.clone()
    }

    /// New configuration or binary: idle instances of the old version stop
    /// now, busy ones once their invocation ends; new work gets new ones.
    pub fn replace_spec(&self, spec: FunctionSpec) {
        let retired = {
            let mut state = self.lock();
            if *state.spec == spec {
                return;
            }
            state.spec = Arc::new(spec);
            state.generation += 1;
            let retired: Vec<Waiter> = state.idle.drain(..).collect();
            self.scale(&mut state);
            retired
        };
        for waiter in retired {
            waiter.instance.stop();
        }
    }

    pub fn live_instances(&self) -> usize {
        self.lock().live
    }

    pub async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse, LambdaError> {
        let request_id = request
            .request_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let (done, rx) = oneshot::channel();
        let log = request
            .tail_logs
            .then(|| Arc::new(Mutex::new(String::new())));
        let mut pending = Pending {
            dispatch: Dispatch {
                request_id: request_id.clone(),
                payload: request.payload,
                client_context: request.client_context,
                trace_id: request.trace_id.unwrap_or_else(super::new_trace_id),
                deadline_ms: 0,
            },
            done,
            log: log.clone(),
        };
        {
            let mut state = self.lock();
            if state.shutting_down {
                return Err(LambdaError::ShuttingDown);
            }
            loop {
                let Some(waiter) = state.idle.pop() else {
                    state.queue.push_back(pending);
                    self.scale(&mut state);
                    break;
                };
                match waiter.instance.assign(pending, waiter.tx) {
                    Ok(()) => break,
                    Err(back) => pending = back,
                }
            }
        }
        let completion = rx.await.map_err(|_| LambdaError::ShuttingDown)?;
        let (payload, function_error) = match completion {
            Completion::Response(body) => (body, None),
            Completion::Error(body) => (body, Some("Unhandled".to_owned())),
        };
        let log = match log {
            Some(buffer) => {
                // The process writes its last lines just before it answers;
                // give the log readers a moment to catch up.
                tokio::time::sleep(Duration::from_millis(5)).await;
                let text = buffer
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                Some(text)
            }
            None => None,
        };
        Ok(InvokeResponse {
            request_id,
            payload,
            function_error,
            log,
        })
    }

    /// Starts instances while queued work outnumbers the instances already
    /// starting for it, up to the reserved concurrency.
    fn scale(&self, state: &mut PoolState) {
        while !state.shutting_down
            && state.queue.len() > state.starting
            && state.live < state.spec.config.concurrency
        {
            let id = state.next_instance_id;
            state.next_instance_id += 1;
            state.live += 1;
            state.starting += 1;
            let scheduler: Weak<dyn Scheduler> = self.me.clone();
            let instance = Instance::new(id, state.generation, scheduler);
            state.instances.retain(|w| w.strong_count() > 0);
            state.instances.push(Arc::downgrade(&instance));
            let spec = state.spec.clone();
            tokio::spawn(instance::run(instance, spec, self.settings.clone()));
        }
    }

    /// Called by an instance in `/next`: the next invocation, or `None` when
    /// the instance should stop (old version, shutdown).
    pub async fn next(&self, instance: &Arc<Instance>, first: bool) -> Option<Dispatch> {
        let rx = {
            let mut state = self.lock();
            if first {
                state.starting -= 1;
            }
            if state.shutting_down || instance.generation != state.generation {
                return None;
            }
            if let Some(pending) = state.queue.pop_front() {
                return Some(instance.take_now(pending));
            }
            let (tx, rx) = oneshot::channel();
            state.idle.push(Waiter {
                instance: instance.clone(),
                tx,
            });
            rx
        };
        rx.await.ok()
    }

    /// Called once an instance's process has exited.
    pub fn instance_exited(
        &self,
        instance: &Instance,
        reached_next: bool,
        init_error: Option<Bytes>,
    ) {
        let mut state = self.lock();
        state.live -= 1;
        if !reached_next {
            state.starting -= 1;
        }
        state.idle.retain(|w| w.instance.id != instance.id);
        if !reached_next && !state.shutting_down {
            // A function that fails during init fails the invocation it was
            // started for, as Lambda reports init errors to the first caller;
            // without this a crash at start-up would respawn forever.
            if let Some(pending) = state.queue.pop_front() {
                let payload = init_error.unwrap_or_else(|| {
                    super::error_payload(
                        "Runtime.ExitError",
                        &format!(
                            "RequestId: {} Error: Runtime exited without providing a reason",
                            pending.dispatch.request_id
                        ),
                    )
                });
                let _ = pending.done.send(Completion::Error(payload));
            }
        }
        self.scale(&mut state);
        if state.live == 0 {
            self.all_stopped.notify_waiters();
        }
    }

    pub fn shutdown(&self) {
        let (waiters, queued, instances) = {
            let mut state = self.lock();
            state.shutting_down = true;
            let waiters: Vec<Waiter> = state.idle.drain(..).collect();
            let queued: Vec<Pending> = state.queue.drain(..).collect();
            let instances: Vec<Arc<Instance>> =
                state.instances.iter().filter_map(Weak::upgrade).collect();
            (waiters, queued, instances)
        };
        drop(waiters);
        drop(queued);
        for instance in instances {
            instance.stop();
        }
    }

    pub async fn wait_stopped(&self, limit: Duration) {
        let wait = async {
            loop {
                let notified = self.all_stopped.notified();
                if self.lock().live == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }
}

impl Scheduler for FunctionPool {
    fn next<'a>(
        &'a self,
        instance: &'a Arc<Instance>,
        first: bool,
    ) -> futures_util::future::BoxFuture<'a, Option<Dispatch>> {
        Box::pin(FunctionPool::next(self, instance, first))
    }

    fn instance_exited(&self, instance: &Instance, reached_next: bool, init_error: Option<Bytes>) {
        FunctionPool::instance_exited(self, instance, reached_next, init_error);
    }

    fn arn_header(&self) -> HeaderValue {
        self.arn_header.clone()
    }
}
