use lambda_runtime::{Error, run, service_fn};
use woocom_fulfilment::{Handler, handle};

// One batch at a time per instance; its messages are handled in turn.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().without_time().init();
    let handler = Handler::from_env().await?;
    run(service_fn(|event| handle(&handler, event))).await
}
