//! The gateway benchmark's function (`cargo bench -p woocom-dev --bench
//! gateway`): the smallest `lambda_http` handler, so that what is measured
//! is the tool serving it (woocom-dev's gateway and Lambda host, or
//! `cargo lambda watch`), not the function.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"ok":true}"#))
            .map_err(Error::from)
    }))
    .await
}
