//! The Runtime API's error paths, driven with `oneshot` against one
//! instance whose scheduler is a fake handing out invocations: the answers
//! a runtime gets for a wrong request id, a second answer, an oversized
//! response and an init error, and what the caller of the invocation sees.

use std::sync::{Arc, Mutex, Weak};

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tower::ServiceExt;

use super::MAX_RUNTIME_RESPONSE;
use super::instance::{Instance, Scheduler};
use super::invocation::{Completion, Dispatch, Pending};
use super::runtime_api::{self, API_VERSION};

/// Hands out the invocations it is given, then waits forever.
#[derive(Default)]
struct FakeScheduler {
    queue: Mutex<Vec<Pending>>,
    exits: Mutex<Vec<Option<Bytes>>>,
}

impl Scheduler for FakeScheduler {
    fn next<'a>(
        &'a self,
        instance: &'a Arc<Instance>,
        _first: bool,
    ) -> BoxFuture<'a, Option<Dispatch>> {
        let pending = self.queue.lock().expect("queue").pop();
        Box::pin(async move {
            match pending {
                Some(p) => Some(instance.take_now(p)),
                None => std::future::pending().await,
            }
        })
    }

    fn instance_exited(&self, _: &Instance, _: bool, init_error: Option<Bytes>) {
        self.exits.lock().expect("exits").push(init_error);
    }

    fn arn_header(&self) -> HeaderValue {
        HeaderValue::from_static("arn:aws:lambda:us-east-1:000000000000:function:f")
    }
}

struct Fixture {
    scheduler: Arc<FakeScheduler>,
    instance: Arc<Instance>,
    router: axum::Router,
}

impl Fixture {
    fn new() -> Fixture {
        let scheduler = Arc::new(FakeScheduler::default());
        let weak: Weak<dyn Scheduler> = Arc::downgrade(&(scheduler.clone() as Arc<dyn Scheduler>));
        let instance = Instance::new(1, 0, weak);
        let router = runtime_api::router(instance.clone());
        Fixture {
            scheduler,
            instance,
            router,
        }
    }

    /// Queues an invocation; the receiver gets how it ended.
    fn queue(&self, request_id: &str) -> oneshot::Receiver<Completion> {
        let (done, rx) = oneshot::channel();
        self.scheduler.queue.lock().expect("queue").push(Pending {
            dispatch: Dispatch {
                request_id: request_id.to_owned(),
                payload: Bytes::from_static(b"{}"),
                client_context: None,
                trace_id: "Root=1-00000000-000000000000000000000000".into(),
                deadline_ms: 0,
            },
            done,
            log: None,
        });
        rx
    }

    async fn call(&self, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(format!("/{API_VERSION}/runtime/{path}"))
            .body(Body::from(body))
            .expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

fn error(kind: &str) -> Value {
    Value::String(kind.to_owned())
}

#[tokio::test]
async fn a_response_for_another_request_id_is_invalid_request_id() {
    let f = Fixture::new();
    let _rx = f.queue("req-1");
    let (status, _) = f.call("GET", "invocation/next", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = f
        .call("POST", "invocation/req-2/response", b"{}".to_vec())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errorType"], error("InvalidRequestID"));
    assert!(f.instance.is_current("req-1"), "the invocation still runs");
}

#[tokio::test]
async fn a_second_answer_is_refused_and_the_first_stands() {
    let f = Fixture::new();
    let rx = f.queue("req-1");
    f.call("GET", "invocation/next", Vec::new()).await;
    let (status, body) = f
        .call("POST", "invocation/req-1/response", br#"{"n":1}"#.to_vec())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"status": "OK"}));
    for path in ["invocation/req-1/response", "invocation/req-1/error"] {
        let (status, body) = f.call("POST", path, br#"{"n":2}"#.to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["errorType"], error("InvalidRequestID"));
    }
    match rx.await.expect("completed") {
        Completion::Response(body) => assert_eq!(&body[..], br#"{"n":1}"#),
        Completion::Error(body) => panic!("the first answer stands, got an error {body:?}"),
    }
}

#[tokio::test]
async fn next_before_answering_is_invalid_state_transition() {
    let f = Fixture::new();
    let _rx = f.queue("req-1");
    f.call("GET", "invocation/next", Vec::new()).await;
    let (status, body) = f.call("GET", "invocation/next", Vec::new()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["errorType"], error("InvalidStateTransition"));
}

#[tokio::test]
async fn an_oversized_response_is_413_and_the_caller_gets_response_size_too_large() {
    let f = Fixture::new();
    let rx = f.queue("req-1");
    f.call("GET", "invocation/next", Vec::new()).await;
    let (status, body) = f
        .call(
            "POST",
            "invocation/req-1/response",
            vec![b'x'; MAX_RUNTIME_RESPONSE + 1],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["errorType"], error("RequestEntityTooLarge"));
    match rx.await.expect("completed") {
        Completion::Error(body) => {
            let e: Value = serde_json::from_slice(&body).expect("error object");
            assert_eq!(e["errorType"], "Function.ResponseSizeTooLarge");
        }
        Completion::Response(_) => panic!("an oversized response is an error"),
    }
}

#[tokio::test]
async fn an_error_without_a_json_body_takes_its_type_from_the_header() {
    let f = Fixture::new();
    let rx = f.queue("req-1");
    f.call("GET", "invocation/next", Vec::new()).await;
    let request = Request::builder()
        .method("POST")
        .uri(format!("/{API_VERSION}/runtime/invocation/req-1/error"))
        .header(runtime_api::headers::ERROR_TYPE, "Runtime.Oops")
        .body(Body::from("plain words"))
        .expect("request");
    let response = f.router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    match rx.await.expect("completed") {
        Completion::Error(body) => {
            let e: Value = serde_json::from_slice(&body).expect("error object");
            assert_eq!(
                e,
                json!({"errorType": "Runtime.Oops", "errorMessage": "plain words"})
            );
        }
        Completion::Response(_) => panic!("expected an error"),
    }
}

#[tokio::test]
async fn an_init_error_is_accepted_and_kept_for_the_first_caller() {
    let f = Fixture::new();
    let (status, body) = f
        .call(
            "POST",
            "init/error",
            br#"{"errorType":"Runtime.InitError","errorMessage":"no config"}"#.to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"status": "OK"}));
    // The process exits without reaching /next: the scheduler hears of it
    // with the runtime's own error, which fails the queued invocation.
    f.instance.exited(None);
    let exits = f.scheduler.exits.lock().expect("exits").clone();
    let init: Value = serde_json::from_slice(
        exits
            .first()
            .and_then(Option::as_ref)
            .expect("the init error reaches the scheduler"),
    )
    .expect("JSON");
    assert_eq!(init["errorType"], "Runtime.InitError");
}
