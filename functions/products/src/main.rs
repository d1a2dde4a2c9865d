use lambda_http::{Error, run, service_fn};
use woocom_products::{Handler, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().without_time().init();
    let handler = Handler::from_env().await?;
    run(service_fn(|request| handle(&handler, request))).await
}
