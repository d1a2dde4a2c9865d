use lambda_runtime::{Error, run, service_fn};
use woocom_notify::{Handler, handle};

// One batch at a time per instance; the posts of a batch run concurrently
// on this one thread (they wait on the network, not the CPU).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().without_time().init();
    let handler = Handler::from_env().await?;
    run(service_fn(|event| handle(&handler, event))).await
}
