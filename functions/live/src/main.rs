use lambda_runtime::{Error, run, service_fn};
use woocom_live::{Handler, handle};

// One invocation at a time per instance: a current-thread runtime avoids
// cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().without_time().init();
    let handler = Handler::from_env().await?;
    run(service_fn(|event| handle(&handler, event))).await
}
