//! Where a running stack answers: written to `--ready-file`, served by the
//! health endpoint, printed by `up`. A leaf module, so the services that
//! report the URLs need not know the stack that starts them.

/// The base URLs of a running stack, as `--ready-file` writes them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StackUrls {
    /// REST API invoke URL with the stage: `http://127.0.0.1:<port>/<stage>`.
    pub api: String,
    /// WebSocket API URL with the stage.
    pub websocket: String,
    /// The AWS endpoint for the SDKs (`endpoint_url`): Lambda, DynamoDB, ...
    pub aws: String,
    /// The S3 endpoint (path-style: `<s3>/<bucket>/<key>`).
    #[serde(default)]
    pub s3: String,
    /// Health endpoint.
    pub health: String,
    /// The built frontend, served as CloudFront serves it (with
    /// `StackOptions::frontend` and a `[frontend]` section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend: Option<String>,
}
