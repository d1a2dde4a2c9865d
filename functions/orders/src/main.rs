use lambda_http::{Error, run, service_fn};
use woocom_orders::{Handler, handle};

// One invocation at a time per instance (and at most one vCPU at small
// memory sizes): a current-thread runtime avoids cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().without_time().init();
    let handler = Handler::from_env().await?;
    run(service_fn(|request| handle(&handler, request))).await
}
