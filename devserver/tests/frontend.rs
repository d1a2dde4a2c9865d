//! `[frontend]` and seed data through a real stack: the site is built when
//! stale (a dependency-free npm project in tests/fixtures/site) and served
//! as S3 + CloudFront serve it, with config.json naming the stack's URLs;
//! seed files load into the tables a start creates.

mod common;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use woocom_dev::manifest::Manifest;
use woocom_dev::{Stack, StackOptions};

/// A scratch project: dev.toml, the site and a seed file, removed on drop.
struct Project(PathBuf);

impl Project {
    fn new() -> Project {
        let root = std::env::temp_dir().join(format!("woocom-frontend-{}", uuid::Uuid::new_v4()));
        let site = root.join("site");
        std::fs::create_dir_all(site.join("src")).expect("mkdir");
        let fixture = common::fixture("site");
        for file in ["package.json", "build.mjs", "src/message.txt"] {
            std::fs::copy(fixture.join(file), site.join(file)).expect("copy fixture");
        }
        std::fs::write(
            root.join("dev.toml"),
            r#"
[stack]
name = "frontend-test"

[frontend]
dir = "site"

[tables.products]
partition_key = { name = "id", type = "S" }
seed = "products.json"
"#,
        )
        .expect("dev.toml");
        std::fs::write(
            root.join("products.json"),
            r#"[{"id": "mug", "name": "Mug", "price": 1200, "stock": 4},
                {"id": "teapot", "name": "Teapot", "price": 3900, "stock": 2, "tags": ["tea"]}]"#,
        )
        .expect("seed");
        Project(root)
    }

    fn options(&self) -> StackOptions {
        let manifest = Manifest::load(&self.0.join("dev.toml")).expect("manifest");
        let mut options = StackOptions::new(manifest).free_ports().quiet_build();
        options.frontend = true;
        options.seed_new_tables = true;
        options.data = woocom_dev::dynamodb::DataLocation::Dir(self.0.join("data"));
        options
    }

    fn site(&self) -> &Path {
        &self.0
    }

    fn builds(&self) -> u32 {
        std::fs::read_to_string(self.0.join("site/builds.txt"))
            .ok()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn get(url: &str) -> (u16, String, String) {
    let response = common::http().get(url).send().await.expect("GET");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, kind, response.text().await.expect("body"))
}

#[tokio::test]
async fn up_builds_a_stale_frontend_and_serves_it_like_cloudfront() {
    let project = Project::new();
    let stack = Stack::start(project.options()).await.expect("stack starts");
    let site = stack.urls().frontend.clone().expect("a frontend URL");
    assert_eq!(project.builds(), 1, "built on first start");

    let (status, kind, body) = get(&format!("{site}/")).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains("first build"), "{body}");
    // A client-side route is answered with index.html and 200.
    let (status, _, body) = get(&format!("{site}/orders/o-123")).await;
    assert_eq!((status, body.contains("first build")), (200, true));
    let (status, kind, _) = get(&format!("{site}/assets/app.js")).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/javascript"), "{kind}");

    let (status, _, body) = get(&format!("{site}/config.json")).await;
    assert_eq!(status, 200);
    let config: Value = serde_json::from_str(&body).expect("config.json is JSON");
    assert_eq!(
        config,
        json!({"apiUrl": stack.urls().api, "websocketUrl": stack.urls().websocket,
               "stack": "frontend-test"})
    );
    let post = common::http()
        .post(format!("{site}/"))
        .send()
        .await
        .expect("POST");
    assert_eq!(
        post.status(),
        403,
        "the distribution allows GET and HEAD only"
    );
    stack.shutdown().await;

    // Unchanged sources: the next start reuses the build.
    let stack = Stack::start(project.options()).await.expect("restart");
    assert_eq!(project.builds(), 1, "an up-to-date build is reused");
    stack.shutdown().await;

    // A changed source file: rebuilt on the next start.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(project.site().join("site/src/message.txt"), "second build").expect("edit");
    let stack = Stack::start(project.options()).await.expect("restart");
    assert_eq!(project.builds(), 2, "a stale build is rebuilt");
    let site = stack.urls().frontend.clone().expect("a frontend URL");
    let (_, _, body) = get(&format!("{site}/")).await;
    assert!(body.contains("second build"), "{body}");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_failed_build_keeps_the_stack_up_and_the_site_explains() {
    let project = Project::new();
    std::fs::write(
        project.site().join("site/build.mjs"),
        "console.error('src/App.tsx(3,1): error TS1005: expected'); process.exit(2);\n",
    )
    .expect("break the build");
    let stack = Stack::start(project.options()).await.expect("stack starts");
    let site = stack.urls().frontend.clone().expect("a frontend URL");
    let (status, _, body) = get(&format!("{site}/")).await;
    assert_eq!(status, 503);
    assert!(
        body.contains("error TS1005"),
        "the build's error is shown: {body}"
    );
    // The APIs still run.
    let (status, _, _) = get(&stack.urls().health).await;
    assert_eq!(status, 200);
    stack.shutdown().await;
}

#[tokio::test]
async fn seed_data_loads_into_new_tables_only() {
    let project = Project::new();
    let mut options = project.options();
    options.frontend = false;
    let stack = Stack::start(options).await.expect("stack starts");
    let scan = stack
        .dynamodb()
        .call_json("Scan", json!({"TableName": "products"}))
        .await
        .expect("scan");
    assert_eq!(scan["Count"], 2);
    let teapot = stack
        .dynamodb()
        .call_json(
            "GetItem",
            json!({"TableName": "products", "Key": {"id": {"S": "teapot"}}}),
        )
        .await
        .expect("get");
    assert_eq!(
        teapot["Item"],
        json!({"id": {"S": "teapot"}, "name": {"S": "Teapot"}, "price": {"N": "3900"},
               "stock": {"N": "2"}, "tags": {"L": [{"S": "tea"}]}})
    );
    // A change made while running survives a restart: the table exists,
    // so it is not seeded again.
    stack
        .dynamodb()
        .call_json(
            "DeleteItem",
            json!({"TableName": "products", "Key": {"id": {"S": "mug"}}}),
        )
        .await
        .expect("delete");
    stack.shutdown().await;
    let mut options = project.options();
    options.frontend = false;
    let stack = Stack::start(options).await.expect("restart");
    let scan = stack
        .dynamodb()
        .call_json("Scan", json!({"TableName": "products"}))
        .await
        .expect("scan");
    assert_eq!(scan["Count"], 1, "not seeded again");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_new_table_with_ttl_is_reported_as_created_only() {
    // Regression: the first `up` logged "updated table ...: TTL attribute
    // off -> expiresAt" for every table it had just created with a TTL.
    let manifest = Manifest::parse(
        Path::new("dev.toml"),
        "[tables.baskets]\npartition_key = { name = \"id\", type = \"S\" }\nttl_attribute = \"expiresAt\"\n",
    )
    .expect("manifest");
    let db = woocom_dev::dynamodb::DynamoDb::open(woocom_dev::dynamodb::DataLocation::Memory)
        .expect("open");
    let first = db.reconcile(&manifest).await.expect("reconcile");
    assert_eq!(first.created, vec!["baskets".to_owned()]);
    assert!(first.updated.is_empty(), "{:?}", first.updated);
    let ttl = db
        .call_json("DescribeTimeToLive", json!({"TableName": "baskets"}))
        .await
        .expect("describe");
    assert_eq!(ttl["TimeToLiveDescription"]["AttributeName"], "expiresAt");
    let again = db.reconcile(&manifest).await.expect("reconcile");
    assert!(again.created.is_empty() && again.updated.is_empty());
    db.close();
}
