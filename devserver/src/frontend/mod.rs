//! The web frontend, built and served the way S3 + CloudFront serve it in
//! AWS (`terraform/modules/frontend`): files from the build output, the
//! root answered with `index.html` (CloudFront's default root object), a
//! missing key answered with `/index.html` and status 200 (the
//! distribution's custom error responses for S3's 403/404, which make
//! client-side routes work), only GET and HEAD, and `config.json` with the
//! stack's API URLs, never cached.
//!
//! `woocom-dev up` runs `npm ci` when `node_modules` is missing or older
//! than `package-lock.json`, and `npm run build` when any source file is
//! newer than the last successful build ([`ensure_built`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::services::{ServeDir, ServeFile};

/// What `config.json` holds: the same keys Terraform writes to the bucket.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteConfig {
    pub api_url: String,
    pub websocket_url: String,
    pub stack: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error(
        "cannot run npm in {dir}: {source} (install Node.js 20 or newer, or remove [frontend] from dev.toml)"
    )]
    NoNpm {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("`npm {command}` failed in {dir} ({status}){output}")]
    Failed {
        command: String,
        dir: PathBuf,
        status: std::process::ExitStatus,
        /// npm's output when it was captured (quiet builds), else empty.
        output: String,
    },
    #[error("{dir} has no package.json: [frontend] dir must be a Node project")]
    NotAProject { dir: PathBuf },
}

/// Folders under the frontend project that are not build inputs.
const NOT_SOURCES: &[&str] = &[
    "node_modules",
    "dist",
    "test-results",
    "playwright-report",
    "coverage",
    ".vite",
];

/// What [`ensure_built`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildOutcome {
    /// The last build is newer than every source file.
    UpToDate,
    Built,
}

/// Installs the packages and builds the site when the build output is
/// missing or older than a source file. `stamp` records the last
/// successful build (kept outside `dist`, so it is never deployed).
/// With `quiet`, npm's output is kept and shown only on failure;
/// otherwise it goes to the terminal as progress.
pub fn ensure_built(
    dir: &Path,
    dist: &Path,
    stamp: &Path,
    quiet: bool,
) -> Result<BuildOutcome, FrontendError> {
    if !dir.join("package.json").is_file() {
        return Err(FrontendError::NotAProject {
            dir: dir.to_owned(),
        });
    }
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules").join(".package-lock.json");
    let need_install = match (modified(&lock), modified(&installed)) {
        (_, None) => true,
        (Some(lock), Some(installed)) => lock > installed,
        (None, Some(_)) => false,
    };
    if need_install {
        let verb = if lock.is_file() { "ci" } else { "install" };
        eprintln!("woocom-dev: installing the frontend's packages (npm {verb})");
        npm(dir, &[verb, "--no-audit", "--no-fund"], quiet)?;
    }
    let built = modified(stamp);
    let stale = match built {
        None => true,
        Some(built) => {
            !dist.join("index.html").is_file()
                || newest_source(dir).is_some_and(|source| source > built)
        }
    };
    // package.json and package-lock.json are sources too: a dependency
    // change makes the build stale.
    if !stale {
        return Ok(BuildOutcome::UpToDate);
    }
    eprintln!("woocom-dev: building the frontend (npm run build)");
    npm(dir, &["run", "build"], quiet)?;
    if let Some(parent) = stamp.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(
        stamp,
        b"the last successful `npm run build` of the frontend\n",
    );
    Ok(BuildOutcome::Built)
}

fn npm(dir: &Path, args: &[&str], quiet: bool) -> Result<(), FrontendError> {
    let mut command = Command::new("npm");
    command.args(args).current_dir(dir).stdin(Stdio::null());
    let (status, output) = if quiet {
        let out = command.output().map_err(|source| FrontendError::NoNpm {
            dir: dir.to_owned(),
            source,
        })?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status, text)
    } else {
        // npm's own output is the progress; keep stdout for the stack's
        // table of URLs.
        command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        let status = command.status().map_err(|source| FrontendError::NoNpm {
            dir: dir.to_owned(),
            source,
        })?;
        (status, String::new())
    };
    if status.success() {
        return Ok(());
    }
    let output = if output.trim().is_empty() {
        String::new()
    } else {
        format!(":\n{}", output.trim_end())
    };
    Err(FrontendError::Failed {
        command: args.join(" "),
        dir: dir.to_owned(),
        status,
        output,
    })
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of the project's files, build outputs,
/// packages and test reports excluded.
fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest: Option<SystemTime> = None;
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if folder == dir && NOT_SOURCES.iter().any(|n| name == *n) {
                    continue;
                }
                pending.push(entry.path());
            } else if let Ok(time) = entry.metadata().and_then(|m| m.modified()) {
                newest = Some(newest.map_or(time, |n| n.max(time)));
            }
        }
    }
    newest
}

#[derive(Clone)]
struct Site {
    config: SiteConfig,
    dist: PathBuf,
    /// Why there is nothing to serve, when the first build failed.
    unavailable: Option<String>,
}

/// Serves `dist` as CloudFront serves the bucket, with `config`.
/// `unavailable` (a failed build's message) is shown for every page while
/// no `index.html` exists.
pub fn router(dist: PathBuf, config: SiteConfig, unavailable: Option<String>) -> Router {
    let index = dist.join("index.html");
    // A missing key: S3 answers 403 through the origin access control and
    // the distribution turns it into /index.html with 200.
    let files = ServeDir::new(&dist)
        .append_index_html_on_directories(false)
        .fallback(ServeFile::new(index));
    let site = Site {
        config,
        dist,
        unavailable,
    };
    Router::new()
        .route("/config.json", get(config_json))
        .fallback_service(files)
        .layer(middleware::from_fn_with_state(site.clone(), guard))
        .with_state(site)
}

async fn config_json(State(site): State<Site>) -> Response {
    let mut response = axum::Json(site.config).into_response();
    // The distribution's /config.json behaviour uses CachingDisabled.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The distribution allows GET and HEAD only; a site that was never built
/// explains itself instead of answering 404.
async fn guard(State(site): State<Site>, request: Request, next: Next) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return (
            StatusCode::FORBIDDEN,
            "This distribution is not configured to allow the HTTP request method that was used for this request. The distribution supports only cachable requests.\n",
        )
            .into_response();
    }
    if request.uri().path() != "/config.json" && !site.dist.join("index.html").is_file() {
        let why = site
            .unavailable
            .clone()
            .unwrap_or_else(|| format!("{} has no index.html", site.dist.display()));
        let body = format!(
            "The frontend has not been built, so there is nothing to serve.\n\n{why}\n\nFix the error above and restart `woocom-dev up`, or run `npm run build` in the frontend folder.\n"
        );
        return Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from(body))
            .unwrap_or_default();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn site() -> (tempdir::Dir, Router) {
        let dir = tempdir::Dir::new("site");
        let dist = dir.path().to_owned();
        std::fs::write(
            dist.join("index.html"),
            "<!doctype html><title>shop</title>",
        )
        .expect("test setup");
        std::fs::create_dir_all(dist.join("assets")).expect("test setup");
        std::fs::write(dist.join("assets/app.js"), "console.log(1)").expect("test setup");
        let config = SiteConfig {
            api_url: "http://127.0.0.1:1/local".into(),
            websocket_url: "ws://127.0.0.1:2/local".into(),
            stack: "woocom".into(),
        };
        (dir, router(dist, config, None))
    }

    async fn get(router: &Router, method: Method, path: &str) -> (StatusCode, String, String) {
        let response = router
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::empty())
                    .expect("test setup"),
            )
            .await
            .expect("test setup");
        let status = response.status();
        let kind = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().expect("test setup").to_owned())
            .unwrap_or_default();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("test setup")
            .to_bytes();
        (status, kind, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn serves_files_with_their_content_type() {
        let (_dir, router) = site();
        let (status, kind, body) = get(&router, Method::GET, "/assets/app.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(kind.starts_with("text/javascript"), "{kind}");
        assert_eq!(body, "console.log(1)");
    }

    #[tokio::test]
    async fn root_and_client_side_routes_get_index_html_with_200() {
        let (_dir, router) = site();
        for path in ["/", "/orders/o-1", "/assets/", "/missing.png"] {
            let (status, kind, body) = get(&router, Method::GET, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(kind.starts_with("text/html"), "{path}: {kind}");
            assert!(body.contains("<title>shop</title>"), "{path}");
        }
    }

    #[tokio::test]
    async fn config_json_has_the_api_urls_and_is_not_cached() {
        let (_dir, router) = site();
        let response = router
            .clone()
            .oneshot(
                Request::builder()
                    .uri("/config.json")
                    .body(Body::empty())
                    .expect("test setup"),
            )
            .await
            .expect("test setup");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("test setup")
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).expect("test setup");
        assert_eq!(
            json,
            serde_json::json!({"apiUrl": "http://127.0.0.1:1/local",
                "websocketUrl": "ws://127.0.0.1:2/local", "stack": "woocom"})
        );
    }

    #[tokio::test]
    async fn other_methods_are_refused_like_cloudfront() {
        let (_dir, router) = site();
        let (status, _, _) = get(&router, Method::POST, "/").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn an_unbuilt_site_explains_why() {
        let dir = tempdir::Dir::new("unbuilt");
        let config = SiteConfig {
            api_url: String::new(),
            websocket_url: String::new(),
            stack: "woocom".into(),
        };
        let router = router(
            dir.path().join("dist"),
            config,
            Some("`npm run build` failed: src/App.tsx(3,1): error TS1005".into()),
        );
        let (status, _, body) = get(&router, Method::GET, "/").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("error TS1005"), "{body}");
    }

    #[test]
    fn sources_newer_than_the_stamp_make_the_build_stale() {
        let dir = tempdir::Dir::new("sources");
        std::fs::create_dir_all(dir.path().join("src")).expect("test setup");
        std::fs::create_dir_all(dir.path().join("node_modules/x")).expect("test setup");
        std::fs::write(dir.path().join("node_modules/x/index.js"), "").expect("test setup");
        let before = newest_source(dir.path());
        assert_eq!(before, None, "node_modules is not a source");
        std::fs::write(dir.path().join("src/App.tsx"), "").expect("test setup");
        assert!(newest_source(dir.path()).is_some());
    }

    /// A temporary folder removed on drop.
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new(tag: &str) -> Dir {
                let path = std::env::temp_dir()
                    .join(format!("woocom-frontend-{tag}-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&path).expect("test setup");
                Dir(path)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
